"""Personal mailings from templates written by marketing: Jinja2's immutable sandbox, nothing else.

A template sees plain dictionaries of the recipient's contact, relation and owner fields and the
unsubscribe link, never model objects: there is no attribute to walk to the database, the
session or Python's internals. The sandbox refuses underscore attributes and mutation; the
globals Jinja offers by default (range, dict, lipsum, cycler, joiner, namespace) are removed,
and there is no loader, so ``include``/``import``/``extends`` cannot read a file.

The sandbox keeps a template from reaching Python, not from making the server work forever: a
colleague's ``{{ 'x' * 10**10 }}``, ``{{ 9**(9**9) }}`` (both folded when the template was compiled,
when the mailing was saved), a ``replace`` or ``~`` that doubles a text forty times, or loops and
macros nested five deep took the web process or the sending worker down. :class:`_Bounded` caps
every text a template makes (MAX_TEXT characters) and what one render may do in all (MAX_WORK:
characters made, and a cost for each loop step and call); going over is a template error like
any other.
"""

from __future__ import annotations

import functools
import re
import secrets
import string
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
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


# --- limits of one render ------------------------------------------------------------------------------

MAX_TEXT = 5_000_000  # characters in any one text (or list) a template makes, and in a rendered part
MAX_WORK = 50_000_000  # per render: characters made, plus STEP_COST a loop step and CALL_COST a call
STEP_COST = 100  # (at most half a million loop steps, or 200,000 calls of a macro: a second or two,
CALL_COST = 250  # not the hours a few nested loops or a macro calling itself twice took)
MAX_WIDTH = 10_000  # a width in a format, or a number that sizes text (center, indent, batch …)
# Tags ({{ … }} and {% … %}) in one part, and characters inside them. Jinja's parser and compiler take
# seconds for a few hundred kilobytes of expressions (a 1.6 MB part of {% if %}s took 25 s, one tag
# of 150,000 "~ 'a'" 5 s, on every save, preview and send run); a newsletter has dozens of tags. Text
# outside tags costs next to nothing and is not limited here.
MAX_TAGS = 5_000
MAX_TAG_TEXT = 100_000
_MAX_BITS = 64 * 1024  # an integer a template makes (10**4000 is 13,000 bits; str() stops at 4,300 digits)


class TemplateTooBig(SecurityError):
    """A template that makes more text or does more work than any mailing needs."""


class _Budget:
    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_WORK

    def spend(self, amount: int) -> None:
        self.left -= amount
        if self.left < 0:
            raise TemplateTooBig(_("too much work for one message"))


# The budget of the render under way (set by _BoundedTemplate.render; None outside one, where only
# the limits on each single text apply).
_BUDGET: ContextVar[_Budget | None] = ContextVar("hub_template_budget", default=None)


def _spend(amount: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend(amount)


def _size(value: Any, depth: int = 0) -> int:
    """Characters (and items) a value holds, as far as memory goes: what a template may multiply."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() // 8
    if isinstance(value, dict):
        value = list(value.items())
    if isinstance(value, list | tuple | set | frozenset):
        if depth >= 3:
            return len(value)
        return len(value) + sum(_size(item, depth + 1) for item in value)
    return 1


def _made(value: Any) -> Any:
    """``value`` a template made, once it is known to be of a bearable size (and paid for)."""
    size = _size(value)
    if size > MAX_TEXT:
        raise TemplateTooBig(_("a text of more than %(n)s characters", n=MAX_TEXT))
    _spend(size)
    return value


def _refuse_beyond(size: int) -> None:
    """Before making something of (at most) ``size``: refused when that is beyond the limit."""
    if size > MAX_TEXT:
        raise TemplateTooBig(_("a text of more than %(n)s characters", n=MAX_TEXT))


def _number_argument(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_WIDTH:
        raise TemplateTooBig(_("a number above %(n)s where it sizes text", n=MAX_WIDTH))


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def _printf_widths(template: str) -> None:
    """``template % values`` (and ``|format``) makes at most its text and its widths: refused with a
    width from the values (``%*s``) or beyond MAX_WIDTH."""
    total = len(template)
    for match in _PRINTF_SPEC.finditer(template):
        for width in match.groups():
            if width == "*":
                raise TemplateTooBig(_("a width taken from the values"))
            if width:
                _number_argument(int(width))
                total += int(width)
    _refuse_beyond(total)


def _format_widths(template: str) -> None:
    """The same for ``str.format``: no width from the values (``{:{}}``), none beyond MAX_WIDTH."""
    total = len(template)
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return  # (str.format says what is wrong with it)
    for _literal, _field, spec, _conversion in fields:
        if spec and "{" in spec:
            raise TemplateTooBig(_("a width taken from the values"))
        for width in re.findall(r"\d+", spec or ""):
            _number_argument(int(width))
            total += int(width)
    _refuse_beyond(total)


def _items_size(value: Any) -> int:
    return sum(_size(item) for item in value) if isinstance(value, list | tuple) else _size(value)


def _replaced_size(text: str, old: Any, new: Any, count: Any = -1) -> int:
    if not isinstance(old, str) or not isinstance(new, str) or not isinstance(count, int):
        return len(text)
    found = text.count(old) if old else len(text) + 1
    if count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new) - len(old), 0)


def _before_method(owner: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """What a method of a text or list would make, refused before it is made when too much."""
    for value in (*args, *kwargs.values()):
        _number_argument(value)
    if not isinstance(owner, str):
        return
    if name in ("format", "format_map"):
        _format_widths(owner)
    elif name == "replace" and len(args) >= 2:
        _refuse_beyond(_replaced_size(owner, *args[:3]))
    elif name == "join" and args:
        items = args[0] if isinstance(args[0], list | tuple) else []
        _refuse_beyond(_items_size(items) + len(owner) * len(items))
    elif name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else 8
        _refuse_beyond(len(owner) + owner.count("\t") * size)


def _before_filter(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """What a filter would make of ``value``, refused before it is made when too much."""
    for argument in (*args, *kwargs.values()):
        _number_argument(argument)
    text = value if isinstance(value, str) else ""
    longest = max((len(a) for a in (*args, *kwargs.values()) if isinstance(a, str)), default=0)
    if name == "format":
        _printf_widths(text)
    elif name == "replace" and len(args) >= 2:
        _refuse_beyond(_replaced_size(text, *args[:3]))
    elif name == "indent":
        width = args[0] if args else kwargs.get("width", 4)
        width = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        _refuse_beyond(len(text) + (text.count("\n") + 1) * width)
    elif name in ("wordwrap", "join"):
        # (a separator between words, or between items, as long as the longest text argument)
        _refuse_beyond(_items_size(value) * (1 + longest))


def _tag_text(source: str) -> int:
    """Characters inside the tags of ``source`` (to the end for a tag never closed). Linear: each
    kind of opening is looked for from where the last tag ended, only when passed."""
    total = at = 0
    openings = {"{{": source.find("{{"), "{%": source.find("{%")}
    while True:
        for mark, found in openings.items():
            if -1 < found < at:
                openings[mark] = source.find(mark, at)
        waiting = [found for found in openings.values() if found != -1]
        if not waiting:
            return total
        start = min(waiting)
        end = source.find("}}" if source.startswith("{{", start) else "%}", start + 2)
        if end == -1:
            return total + len(source) - start
        total += end + 2 - start
        at = end + 2


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    # The argument Jinja passes before the value (context, eval context or environment), if any.
    skip = 0 if getattr(function, "jinja_pass_arg", None) is None else 1

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _before_filter(name, args[skip], args[skip + 1 :], kwargs)
        return _made(function(*args, **kwargs))

    return bounded


def _counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """A loop's items, each step paid for."""
    for item in iterable:
        _spend(STEP_COST)
        yield item


def _bounded_concat(parts: Iterable[str]) -> str:
    """The environment's ``concat`` (a rendered template, a block ``set``, a macro's output), measured
    before the whole is made. (Listing the parts first costs no more than references: each text a
    part is was made, and paid for, by itself; a loop repeating one only repeats the reference.)"""
    listed = parts if isinstance(parts, list) else list(parts)
    total = sum(map(len, listed))
    _refuse_beyond(total)
    _spend(total)
    return "".join(listed)


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, ``a ~ b`` measured before it is joined."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.bounded_join({join}, (")
        for argument in node.nodes:
            self.visit(argument, frame)
            self.write(", ")
        self.write("))")


class _BoundedTemplate(Template):
    def render(self, *args: Any, **kwargs: Any) -> str:
        token = _BUDGET.set(_Budget())
        try:
            return super().render(*args, **kwargs)
        finally:
            _BUDGET.reset(token)


class _Bounded(ImmutableSandboxedEnvironment):
    """The immutable sandbox with a budget: see the module's doc and MAX_TEXT, MAX_WORK."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    concat = staticmethod(_bounded_concat)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.template_class = _BoundedTemplate
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.filters["hub_counted"] = _counted

    @staticmethod
    def bounded_join(join: Callable[[Any], str], parts: tuple[Any, ...]) -> str:
        _refuse_beyond(sum(_size(part) for part in parts))
        return _made(join(parts))

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        if source.count("{{") + source.count("{%") > MAX_TAGS:
            raise TemplateTooBig(_("more than %(n)s tags in one part", n=MAX_TAGS))
        if _tag_text(source) > MAX_TAG_TEXT:
            raise TemplateTooBig(_("more than %(n)s characters inside tags in one part", n=MAX_TAG_TEXT))
        try:
            tree = super()._parse(source, name, filename)
        except RecursionError:  # (Jinja's parser and compiler recurse once per level)
            raise TemplateTooBig(_("nested too deep")) from None
        except ValueError:  # (an integer literal of more than 4,300 digits: int() refuses it)
            raise TemplateTooBig(_("a number too large")) from None
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "hub_counted", [], [], None, None, lineno=loop.iter.lineno)
        return tree

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
            if right > 0 and left.bit_length() * right > _MAX_BITS:
                raise TemplateTooBig(_("a number too large"))
        elif operator == "*":
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > _MAX_BITS:
                    raise TemplateTooBig(_("a number too large"))
            elif isinstance(right, int):
                _refuse_beyond(_size(left) * right)
            elif isinstance(left, int):
                _refuse_beyond(_size(right) * left)
        elif operator == "+":
            _refuse_beyond(_size(left) + _size(right))
        elif operator == "%" and isinstance(left, str):
            _printf_widths(left)
        return _made(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend(CALL_COST)
        method = getattr(__obj, "__wrapped__", __obj)  # (the sandbox's wrapper of str.format)
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str | bytes | list | tuple):
            _before_method(owner, getattr(method, "__name__", ""), args, kwargs)
        return _made(super().call(__context, __obj, *args, **kwargs))


def _environment(html: bool) -> ImmutableSandboxedEnvironment:
    env = _Bounded(autoescape=html, undefined=StrictUndefined, loader=None)
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
        except (TemplateError, RecursionError) as exc:  # (Jinja's compiler recurses once per level)
            raise TemplateProblem(_("The template has an error: %(reason)s", reason=_reason(exc))) from None
        try:
            combined = _TEXT.from_string(
                f"{subject}{_SEPARATOR}{{% autoescape true %}}{html if html.strip() else ''}"
                f"{{% endautoescape %}}{_SEPARATOR}{text if text.strip() else ''}"
            )
        except (TemplateError, RecursionError):  # parts that only compile apart (a tag closed in
            # another part, one level of nesting too many): apart
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
            except TemplateTooBig as exc:  # (not again part by part: that would be the work twice)
                raise TemplateProblem(_reason(exc)) from None
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
    if isinstance(exc, RecursionError):
        message = _("nested too deep")
    if isinstance(exc, TemplateTooBig | MemoryError | OverflowError | RecursionError):
        return _("the template makes more than any mailing needs (%(what)s)", what=message[:200])
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
