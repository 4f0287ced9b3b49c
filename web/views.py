"""Small helpers shared by the page blueprints (argument parsing, list arguments, safe redirects)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import request, url_for
from sqlalchemy import Select

from hub.paging import MAX_ID, BadCursor, KeysetPage, Sort, keyset_page, pick_sort
from web.context import db_session


def int_arg(name: str, default: int | None = None) -> int | None:
    """``?name=`` as a whole number; ``default`` when absent, not a number, or beyond any id or page
    (a 20-digit number cannot be bound by SQLite nor compared with PostgreSQL's integer columns)."""
    raw = request.args.get(name, "")
    try:
        value = int(raw) if raw and len(raw) <= 20 else default
    except ValueError:
        return default
    return value if value is None or -MAX_ID <= value <= MAX_ID else default


def posted_id(value: str | None) -> int | None:
    """An id picked in a form: None when empty; -1, which names no row, when it is not a whole number
    from 1 to :data:`~hub.paging.MAX_ID` (letters, or 25 digits the database cannot even compare:
    SQLite cannot bind them, PostgreSQL refuses them for an integer column, a 500 either way)."""
    if not value:
        return None
    try:
        number = int(value) if len(value) <= 20 else -1
    except ValueError:
        return -1
    return number if 1 <= number <= MAX_ID else -1


# The longest search typed into a page's search box that is looked for; the rest is ignored.
SEARCH_LIMIT = 200


def search_arg(name: str = "q") -> str:
    """A search box's text (``?q=``), without NUL bytes (PostgreSQL refuses them in a LIKE: a 500)
    and at most :data:`SEARCH_LIMIT` characters (SQLite refuses a LIKE pattern over 50,000 bytes)."""
    return request.values.get(name, "").replace("\x00", "")[:SEARCH_LIMIT]


def page_arg() -> int:
    return max(int_arg("page", 1) or 1, 1)


def cursor_page(
    query: Select[Any],
    sorts: dict[str, Sort],
    sort: str,
    default: str,
    per_page: int = 25,
    *,
    rows: bool = False,
    kept: bool = False,
    params: dict[str, Any] | None = None,
) -> tuple[KeysetPage[Any], str]:
    """One page of a web list by cursor: ``?cursor=`` (a page's Next) or ``?before=`` (its Previous),
    the API's keyset paging (:func:`hub.paging.keyset_page`). ``?page=N`` still opens an old link
    (by OFFSET; its Next is a cursor again). A cursor of another sort, or a broken one, opens the
    first page rather than an error: it comes from an old or edited link. Returns the sort used.
    ``rows``: the query selects a list's plain columns; ``kept``: it is a kept statement, run with
    ``params`` (see :func:`hub.paging.keyset_page`)."""
    sort, chosen = pick_sort(sorts, sort, default)
    cursor, before = request.args.get("cursor") or None, request.args.get("before") or None
    offset = 0 if cursor or before else (page_arg() - 1) * per_page
    try:
        page = keyset_page(
            db_session(),
            query,
            sort_name=sort,
            sort=chosen,
            cursor=cursor,
            before=before,
            per_page=per_page,
            offset=offset,
            rows=rows,
            kept=kept,
            params=params,
        )
    except BadCursor:
        page = keyset_page(
            db_session(),
            query,
            sort_name=sort,
            sort=chosen,
            cursor=None,
            per_page=per_page,
            rows=rows,
            kept=kept,
            params=params,
        )
    return page, sort


def list_args(*names: str) -> dict[str, Any]:
    """The current list's query arguments, so sort and page links keep the filters."""
    return {name: request.args[name] for name in names if request.args.get(name)}


def lines(text: str | None) -> list[str]:
    """A textarea with one value per line (or comma-separated) → the values."""
    return [part.strip() for line in (text or "").splitlines() for part in line.split(",") if part.strip()]


def safe_next(default_endpoint: str, **values: Any) -> str:
    target = request.values.get("next", "")
    if target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for(default_endpoint, **values)
