"""The search box: contacts, relations, projects and e-mails matching a text (hub.crm.search), only
those the user may see. ``/search?q=`` shows the first few of each kind with their counts;
``&kind=`` one kind, page by page."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import babel.numbers
from flask import Blueprint, current_app, render_template, request
from flask_babel import get_locale, get_translations
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

from hub.crm.search import KINDS, search
from hub.mail.privacy import email_visible
from hub.paging import BadCursor
from hub.text import fold
from web.context import db_session, settings
from web.i18n import moment
from web.lists import row_link
from web.security import login_required, user

bp = Blueprint("search", __name__)

# The overview shows this many of each kind; one kind's own page this many per page.
PREVIEW = 5
PER_PAGE = 25


@bp.route("/search")
@login_required
def index() -> Any:
    kind = request.args.get("kind", "")
    kind = kind if kind in KINDS else ""
    cursor = request.args.get("cursor") or None
    text = request.args.get("q", "")

    def run(cursor: str | None) -> Any:
        return search(
            db_session(),
            user(),
            text,
            kinds=(kind,) if kind else KINDS,
            cursor=cursor if kind else None,
            per_page=PER_PAGE if kind else PREVIEW,
            region=settings().default_phone_region,
            emails_visible=email_visible,
        )

    try:
        results = run(cursor)
    except BadCursor:
        # A cursor from an old or altered link: start at the first page rather than fail.
        results = run(None)
    # Contacts link to their own page where it exists, else to their relation's.
    contact_page = "contacts.show" in current_app.view_functions
    return render_template("search/index.html", results=results, q=results.text, kind=kind, contact_page=contact_page)


def _fold_char(ch: str) -> str:
    decomposed = unicodedata.normalize("NFKD", ch.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@bp.app_template_filter("found")
def found(total: int, capped: bool = False) -> str:
    """A count of matches in the locale's digits; "100+" when there are more than were counted
    (hub.crm.search.CAP; "1,000+", Dutch "1.000+", were it a thousand)."""
    return _decimal(total, str(get_locale() or "nl")) + ("+" if capped else "")


@functools.lru_cache(maxsize=4096)
def _decimal(number: int, locale: str) -> str:
    # What flask_babel.format_decimal gives, kept: a results page shows a dozen counts, the same few
    # on every search, and Babel's pattern work cost 20 µs each.
    return babel.numbers.format_decimal(number, locale=locale)


# --- the results, rendered in Python -------------------------------------------------------------------
# What the template's ``item`` macro gave for each result, byte for byte (tests/integration/
# test_search_rendering.py holds the macro and compares): as a Jinja macro it cost a results page a
# tenth of its time.


@bp.app_template_global("search_items")
@pass_context
def search_items(context: Context, kind: str, items: Sequence[Any]) -> Markup:
    """A group's results as the list's ``<li>`` elements. ``q`` (what to mark) and ``contact_page``
    (whether contacts have their own page) come from the page's context."""
    q, translations = context.get("q") or "", get_translations()

    def text(message: str) -> Markup:
        # As the template's _() gives a text without variables: the translation is markup.
        return Markup(translations.ugettext(message))

    show = _SHOW[kind]
    # Each result links to its page (a contact to its relation's where contacts have none).
    endpoint, argument, attribute = _LINKS[kind]
    if kind == "contacts" and not context.get("contact_page"):
        endpoint, argument, attribute = "relations.show", "relation_id", "relation_id"
    link = row_link(endpoint, argument)
    return Markup("".join(f"<li>{show(o, q, link % getattr(o, attribute), text)}</li>" for o in items))


_LINKS = {
    "contacts": ("contacts.show", "contact_id", "id"),
    "relations": ("relations.show", "relation_id", "id"),
    "projects": ("projects.show", "project_id", "id"),
    "emails": ("mail.show", "email_id", "id"),
}
_Text = Callable[[str], Markup]


def _contact(o: Any, q: str, href: str, _: _Text) -> str:
    # Plain strings of escaped parts throughout: a str added to Markup would be escaped again.
    muted = (f"{escape(o.function)} · " if o.function else "") + str(escape(o.relation.name))
    details = [str(highlight(e.address, q)) for e in o.emails] + [str(escape(p.number)) for p in o.phones]
    detail = f'<span class="search-detail">{" · ".join(details)}</span>' if details else ""
    return f'\n  <a href="{href}">{highlight(o.name, q)}</a>\n  <span class="muted">{muted}</span>\n  {detail}\n'


def _relation(o: Any, q: str, href: str, _: _Text) -> str:
    # (The texts outside the f-strings, where extraction finds them.)
    kvk, vat = (_("KvK") if o.coc_number else ""), (_("VAT") if o.vat_number else "")
    details = [f"{kvk} {highlight(o.coc_number, q)}"] if o.coc_number else []
    details += [f"{vat} {highlight(o.vat_number, q)}"] if o.vat_number else []
    details += [str(escape(p.number)) for p in o.phones]
    detail = f'<span class="search-detail">{" · ".join(details)}</span>' if details else ""
    return (
        f'\n  <a href="{href}">{highlight(o.name, q)}</a>\n'
        f'  <span class="muted">{highlight(o.city, q)}</span>\n  \n  {detail}\n'
    )


def _project(o: Any, q: str, href: str, _: _Text) -> str:
    muted = f"P-{o.id} · {escape(o.relation.name)}"
    muted += f" · {escape(o.status.name)}" if o.status else ""
    closed = _("closed") if o.closed else ""
    muted += f" · {closed}" if o.closed else ""
    texts = [str(highlight(t, q)) for t in (o.free_text_1, o.free_text_2, o.free_text_3, o.free_text_4) if t]
    detail = f'<span class="search-detail">{" · ".join(texts)}</span>' if texts else ""
    return f'\n  <a href="{href}">{highlight(o.name, q)}</a>\n  <span class="muted">{muted}</span>\n  \n  {detail}\n'


def _email(o: Any, q: str, href: str, _: _Text) -> str:
    muted = f"{highlight(o.from_name, q)} " if o.from_name else ""
    muted += f"&lt;{highlight(o.from_address, q)}&gt;"
    muted += f" · {escape(moment(o.sent_at))}" if o.sent_at else ""
    subject = highlight(o.subject or _("(no subject)"), q)
    return f'\n  <a href="{href}">{subject}</a>\n  <span class="muted">{muted}</span>\n'


_SHOW: dict[str, Callable[[Any, str, str, _Text], str]] = {
    "contacts": _contact,
    "relations": _relation,
    "projects": _project,
    "emails": _email,
}


@bp.app_template_filter("highlight")
def highlight(value: Any, query: str) -> Markup:
    """``value`` escaped, with each place that matches ``query`` (as search matches: case and
    accents ignored) in <mark>."""
    text = "" if value is None else str(value)
    needle = fold(query or "")
    if not needle or not text:
        return escape(text)
    owner: Sequence[int]
    if text.isascii():
        # Each ASCII character folds to itself in lower case: the same places, found without
        # folding the text character by character (most names and addresses).
        haystack, owner = text.lower(), range(len(text))
    else:
        folded, places = [], []
        for index, ch in enumerate(text):
            part = _fold_char(ch)
            folded.append(part)
            places.extend([index] * len(part))
        haystack, owner = "".join(folded), places
    out, done, start = Markup(""), 0, haystack.find(needle)
    while start >= 0:
        first, last = owner[start], owner[start + len(needle) - 1] + 1
        if first >= done:
            out += escape(text[done:first]) + Markup("<mark>") + escape(text[first:last]) + Markup("</mark>")
            done = last
        start = haystack.find(needle, start + len(needle))
    return out + escape(text[done:])
