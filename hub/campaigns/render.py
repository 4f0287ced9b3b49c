"""Personal mailings from templates written by marketing: Jinja2's immutable sandbox, nothing else.

A template sees plain dictionaries of the recipient's contact, relation and owner fields and the
unsubscribe link, never model objects: there is no attribute to walk to the database, the
session or Python's internals. The sandbox refuses underscore attributes and mutation; the
globals Jinja offers by default (range, dict, lipsum, cycler, joiner, namespace) are removed,
and there is no loader, so ``include``/``import``/``extends`` cannot read a file.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

from hub.i18n import _

# The fields a template may use, for the editor's help text.
FIELDS = {
    "contact": ("name", "first_name", "last_name", "function", "email"),
    "relation": ("name", "street", "postcode", "city", "country", "website"),
    "owner": ("name", "email"),
    "": ("unsubscribe_url",),
}


class TemplateProblem(ValueError):
    """A template that does not compile or does not render for a recipient; the text is for the user."""


def _environment(html: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(autoescape=html, undefined=StrictUndefined, loader=None)
    env.globals.clear()
    return env


_HTML = _environment(True)
_TEXT = _environment(False)


# Between the parts of the combined template: a per-process random marker no field can contain.
_SEPARATOR = f"\x1e{secrets.token_hex(12)}\x1e"


# --- the fill-in form: a template that only places fields, rendered once per mailing ----------------------


@dataclass(frozen=True)
class Slot:
    """One personal field in a template's output: ``values[key]`` (``key`` as in :func:`field_values`),
    or ``default`` when the value is empty (``{{ contact.function or 'a customer' }}``)."""

    key: str
    default: str | None
    escaped: bool  # an HTML part (autoescape): the value is HTML-escaped, as Jinja does

    def text(self, values: dict[str, str]) -> str:
        value: Any = values[self.key]
        if self.default is not None and not value:
            value = self.default
        return str(escape(value)) if self.escaped else str(value)


Piece = str | Slot


@dataclass(frozen=True)
class Form:
    """A template in fill-in form: its constant text with ``{0}``, ``{1}``… where its slots go, so
    filling in is one ``str.format`` (in C) instead of a loop over the pieces."""

    pieces: tuple[Piece, ...]
    pattern: str
    slots: tuple[Slot, ...]

    @classmethod
    def of(cls, pieces: tuple[Piece, ...]) -> Form:
        slots = tuple(piece for piece in pieces if isinstance(piece, Slot))
        numbers = iter(range(len(slots)))
        pattern = "".join(
            piece.replace("{", "{{").replace("}", "}}") if isinstance(piece, str) else f"{{{next(numbers)}}}"
            for piece in pieces
        )
        return cls(pieces, pattern, slots)


def _field_key(node: nodes.Node) -> str | None:
    """``contact.name`` / ``contact['name']`` / ``unsubscribe_url`` as a key of FIELDS, else None."""
    if isinstance(node, nodes.Name) and node.name in FIELDS[""]:
        return node.name
    if isinstance(node, nodes.Getattr | nodes.Getitem) and isinstance(node.node, nodes.Name):
        attribute = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if node.node.name in FIELDS and node.node.name and attribute in FIELDS[node.node.name]:
            return f"{node.node.name}.{attribute}"
    return None


def fill_in_form(source: str, html: bool) -> Form | None:
    """The template's output as constant text and :class:`Slot` s, when that is all it is (fields of
    FIELDS, optionally ``or 'a constant'``); None for anything else (conditions, loops, filters,
    unknown fields), which is rendered by Jinja's sandbox per recipient as before.

    Rendering by filling in gives exactly what the sandbox renders: the same values, HTML-escaped
    the same way (markupsafe) in the HTML part; the constant text is the template's own, after
    Jinja's lexer (comments, whitespace control, the final newline) has had its say."""
    if not source.strip():
        return Form.of(())
    try:
        tree = (_HTML if html else _TEXT).parse(source)
    except TemplateError:
        return None
    pieces: list[Piece] = []
    for statement in tree.body:
        if not isinstance(statement, nodes.Output):
            return None
        for node in statement.nodes:
            if isinstance(node, nodes.TemplateData):
                pieces.append(node.data)
                continue
            if isinstance(node, nodes.Const) and isinstance(node.value, str):  # {{ ' ' }}
                pieces.append(str(escape(node.value)) if html else node.value)
                continue
            default: str | None = None
            if isinstance(node, nodes.Or) and isinstance(node.right, nodes.Const) and isinstance(node.right.value, str):
                default, node = node.right.value, node.left
            key = _field_key(node)
            if key is None:
                return None
            pieces.append(Slot(key, default, html))
    return Form.of(tuple(pieces))


def fill(form: Form, values: dict[str, str]) -> str:
    """The part as the sandbox would render it for these values (see :func:`fill_in_form`)."""
    return form.pattern.format(*[slot.text(values) for slot in form.slots])


def field_values(
    *,
    contact_name: str,
    contact_function: str,
    address: str,
    relation: dict[str, str],
    owner_name: str,
    owner_email: str,
    unsubscribe_url: str,
) -> dict[str, str]:
    """The fields of one recipient by key (``contact.first_name``), as :func:`context_for` offers them."""
    first, _space, last = contact_name.strip().partition(" ")
    values = {
        "contact.name": contact_name,
        "contact.first_name": first,
        "contact.last_name": last,
        "contact.function": contact_function,
        "contact.email": address,
        "owner.name": owner_name,
        "owner.email": owner_email,
        "unsubscribe_url": unsubscribe_url,
    }
    for name, value in relation.items():  # (the keys made once, not per recipient)
        values[_RELATION_KEYS.get(name) or f"relation.{name}"] = value
    return values


_RELATION_KEYS = {name: f"relation.{name}" for name in FIELDS["relation"]}


@dataclass(frozen=True)
class Templates:
    """The compiled subject, HTML and text templates of one mailing (compiled once per send run).

    For sending, the three are also compiled as one template (the HTML part in an autoescape block,
    the parts split by a random marker): one render per recipient instead of three, which was most
    of a message's rendering cost. Each part was compiled on its own first, so the combined one says
    nothing the parts do not; a failing render is repeated part by part for the exact reason.
    """

    subject: Any
    html: Any
    text: Any
    combined: Any = None
    # (subject, html, text) in fill-in form when all three only place fields; None otherwise.
    fills: tuple[Form, Form, Form] | None = None

    @classmethod
    def compile(cls, subject: str, html: str, text: str) -> Templates:
        try:
            parts = (
                _TEXT.from_string(subject),
                _HTML.from_string(html) if html.strip() else None,
                _TEXT.from_string(text) if text.strip() else None,
            )
        except TemplateError as exc:
            raise TemplateProblem(_("The template has an error: %(reason)s", reason=_reason(exc))) from None
        try:
            combined = _TEXT.from_string(
                f"{subject}{_SEPARATOR}{{% autoescape true %}}{html if html.strip() else ''}"
                f"{{% endautoescape %}}{_SEPARATOR}{text if text.strip() else ''}"
            )
        except TemplateError:  # parts that only compile apart (a tag closed in another part): apart
            combined = None
        forms = (fill_in_form(subject, False), fill_in_form(html, True), fill_in_form(text, False))
        subject_form, html_form, text_form = forms
        fills = None
        if subject_form is not None and html_form is not None and text_form is not None:
            fills = (subject_form, html_form, text_form)
        return cls(*parts, combined=combined, fills=fills)

    def render(self, context: dict[str, Any]) -> tuple[str, str, str]:
        """(subject, html, text) for one recipient; :class:`TemplateProblem` says why not."""
        if self.combined is not None:
            try:
                pieces = self.combined.render(context).split(_SEPARATOR)
            except Exception:  # rendered again part by part below, for the exact reason
                pieces = []
            if len(pieces) == 3:
                return " ".join(pieces[0].split()), pieces[1], pieces[2]
        try:
            subject = " ".join(self.subject.render(context).split())
            html = self.html.render(context) if self.html is not None else ""
            text = self.text.render(context) if self.text is not None else ""
        except Exception as exc:  # a template can raise anything its expressions raise
            raise TemplateProblem(_reason(exc)) from None
        return subject, html, text


def _reason(exc: BaseException) -> str:
    message = str(exc) or exc.__class__.__name__
    if exc.__class__.__name__ == "SecurityError":
        return _("not allowed in a template: %(what)s", what=message[:200])
    if exc.__class__.__name__ == "UndefinedError":
        return _("unknown field: %(what)s", what=message[:200])
    if exc.__class__.__name__ == "TemplateNotFound" or "no loader" in message.lower():
        return _("templates cannot include or import other files")
    lineno = getattr(exc, "lineno", None)
    return f"{message[:300]} (line {lineno})" if lineno else message[:300]


def context_for(**fields: Any) -> dict[str, Any]:
    """The sandbox's context for one recipient: :func:`field_values` (the same keyword arguments), its
    dotted keys as attributes of ``contact``, ``relation`` and ``owner``."""
    parts: dict[str, dict[str, str]] = {"contact": {}, "relation": {}, "owner": {}}
    context: dict[str, Any] = {}
    for key, value in field_values(**fields).items():
        head, dot, name = key.partition(".")
        if dot:
            parts[head][name] = value
        else:
            context[key] = value
    # Plain attribute holders, not dicts: the sandbox reads contact.name as an attribute first, and
    # a dict made it fail (an exception) before looking the key up, for every field of every message.
    # contact['name'] still works (the sandbox falls back to its checked attribute look-up).
    context.update({head: SimpleNamespace(**names) for head, names in parts.items()})
    return context


def sample_context() -> dict[str, Any]:
    """A made-up recipient for checking that a template renders before any recipient is chosen."""
    return context_for(
        contact_name="Anna de Vries",
        contact_function="Director",
        address="anna@example.nl",
        relation={
            "name": "Voorbeeld BV",
            "street": "Dorpsstraat 1",
            "postcode": "1234 AB",
            "city": "Utrecht",
            "country": "NL",
            "website": "https://example.nl",
        },
        owner_name="Bram Jansen",
        owner_email="bram@example.nl",
        unsubscribe_url="https://hub.example/u/example",
    )


def check(subject: str, html: str, text: str) -> Templates:
    """Compile and render against the sample recipient: the editor's check before saving or scheduling."""
    templates = Templates.compile(subject, html, text)
    try:
        templates.render(sample_context())
    except TemplateProblem as exc:
        raise TemplateProblem(_("The template has an error: %(reason)s", reason=str(exc))) from None
    return templates
