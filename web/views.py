"""Small helpers shared by the page blueprints (argument parsing, list arguments, safe redirects)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import request, url_for
from sqlalchemy import Select

from hub.paging import BadCursor, KeysetPage, Sort, keyset_page, pick_sort
from web.context import db_session


def int_arg(name: str, default: int | None = None) -> int | None:
    raw = request.args.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


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
