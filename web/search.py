"""The search box: contacts, relations, projects and e-mails matching a text (hub.crm.search), only
those the user may see. ``/search?q=`` shows the first few of each kind with their counts;
``&kind=`` one kind, page by page."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, current_app, render_template, request
from flask_babel import format_decimal
from markupsafe import Markup, escape

from hub.crm.search import CAP, KINDS, search
from hub.mail.privacy import email_visible
from hub.paging import BadCursor
from hub.text import fold
from web.context import db_session, settings
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
    return render_template(
        "search/index.html", results=results, q=results.text, kind=kind, contact_page=contact_page, cap=CAP
    )


def _fold_char(ch: str) -> str:
    decomposed = unicodedata.normalize("NFKD", ch.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@bp.app_template_filter("found")
def found(total: int, capped: bool = False) -> str:
    """A count of matches in the locale's digits; "1,000+" (Dutch "1.000+") when there are more
    than were counted (hub.crm.search.CAP)."""
    return format_decimal(total) + ("+" if capped else "")


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
