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

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

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
        return cls(*parts, combined=combined)

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


def context_for(
    *,
    contact_name: str,
    contact_function: str,
    address: str,
    relation: dict[str, str],
    owner_name: str,
    owner_email: str,
    unsubscribe_url: str,
) -> dict[str, Any]:
    first, _space, last = contact_name.strip().partition(" ")
    # Plain attribute holders, not dicts: the sandbox reads contact.name as an attribute first, and
    # a dict made it fail (an exception) before looking the key up, for every field of every message.
    # contact['name'] still works (the sandbox falls back to its checked attribute look-up).
    return {
        "contact": SimpleNamespace(
            name=contact_name, first_name=first, last_name=last, function=contact_function, email=address
        ),
        "relation": SimpleNamespace(**relation),
        "owner": SimpleNamespace(name=owner_name, email=owner_email),
        "unsubscribe_url": unsubscribe_url,
    }


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
