"""What a list page shows around and in its rows, built in Python: its sort links, its pager (Next and
Previous) and the URLs they use, as template globals; and the helpers a list's rows rendered in
Python use (the reader's ``day``, link patterns, rendered rows kept per what they show).

A list page has a sort link per sortable column and a pager; as Jinja macros, each link was a macro
calling a macro calling url_for with dictionaries merged in the template, a tenth of a project list
page, and the 25 rows as a Jinja loop were a fifth. These build the same HTML in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Flask, current_app, request
from flask_babel import get_timezone, get_translations
from jinja2.runtime import Context
from markupsafe import Markup, escape

from web.i18n import link_pattern, short_day
from web.menu import kept


def list_url(args: dict[str, Any], changes: dict[str, Any]) -> str:
    """The current list's URL with ``args`` (its filters and sort) and ``changes``. The path's own
    arguments (relation_id, project_id …) come from the request: url_for cannot build a tab's URL
    without them."""
    url_for: Any = current_app.jinja_env.globals["url_for"]  # the templates' one, which remembers URLs
    return str(url_for(request.endpoint, **{**(request.view_args or {}), **args, **changes}))


def sort_link(label: str, key: str, current: str, args: dict[str, Any]) -> Markup:
    """A column's sort link: by ``key``, or the other way round when the list is sorted by it now.
    It starts the list over (page=1: the first page); it never carries a cursor, which belongs to
    one sort. Kept per everything it shows (the page's URL and arguments, the label in the reader's
    language, the sort): a list's six links are the same on every page of it."""
    try:
        kept_key = (request.script_root, request.endpoint, *(request.view_args or {}).items(), *args.items())
        return kept("sort_links", (kept_key, label, key, current), lambda: _sort_link(label, key, current, args))
    except TypeError:  # an argument that cannot be a key (a list): made each time
        return _sort_link(label, key, current, args)


def _sort_link(label: str, key: str, current: str, args: dict[str, Any]) -> Markup:
    descending = current == f"-{key}"
    next_sort = f"-{key}" if current == key else key
    href = escape(list_url(args, {"sort": next_sort, "page": 1}))
    css = "sort sorted" if current.lstrip("-") == key else "sort"
    arrow = " ▲" if current == key else (" ▼" if descending else "")
    # An f-string of escaped values: what Markup.format gave, at a third of its cost.
    return Markup(f'<a href="{href}" class="{css}">{escape(label)}{arrow}</a>')


def row_link(endpoint: str, name: str) -> str:
    """:func:`web.i18n.link_pattern` escaped for an attribute, kept per script root: a list's rows
    link to the same page kind on every request."""
    return kept("row_links", (request.script_root, endpoint, name), lambda: str(escape(link_pattern(endpoint, name))))


def day_of_key(context: Context) -> tuple[Any, Any]:
    """What :func:`day_of` depends on: the reader's language and zone."""
    return context.get("current_language") or "nl", context.get("current_zone") or get_timezone()


def pager(page: Any, args: dict[str, Any]) -> Markup:
    """Next and Previous of a list (macros/forms.html's ``pager``; the HTML that macro gave, byte for
    byte). A list paged by cursor (a KeysetPage: next_cursor / prev_cursor) links ?cursor= (the page
    after its last row) and ?before= (the page before its first row, read backwards just as cheaply);
    a list still paged by number (a Page) links ?page=N. As a macro it was a twentieth of a list page."""
    translations = get_translations()

    def _(text: str, **variables: Any) -> Markup:
        # As the template's _() gives it: the translation is markup, its variables are escaped.
        return Markup(translations.ugettext(text)) % variables

    def link(changes: dict[str, Any], rel: str, text: Markup) -> str:
        return f'<a href="{escape(list_url(args, changes))}" rel="{rel}">{text}</a>'

    previous, following = _("Previous"), _("Next")
    if hasattr(page, "next_cursor"):
        before = link({"before": page.prev_cursor}, "prev", Markup("← ") + previous) if page.prev_cursor else ""
        after = link({"cursor": page.next_cursor}, "next", following + " →") if page.next_cursor else ""
        inner = f"\n  {before}\n  {after}\n"
    else:
        before = link({"page": page.page - 1}, "prev", Markup("← ") + previous) if page.has_prev else ""
        after = link({"page": page.page + 1}, "next", following + " →") if page.has_next else ""
        inner = f"\n  {before}\n  <span>{_('Page %(n)s', n=page.page)}</span>\n  {after}\n"
    return Markup(f'\n<nav class="pager" aria-label="{_("Pages")}">\n{inner}\n</nav>\n')


def day_of(context: Context) -> Callable[[date | None], str]:
    """The ``day`` filter of this rendering (web/i18n.py) as a function of the value alone, for a
    list's rows rendered in Python: the reader's language and zone are looked up once per page."""
    language, zone = context.get("current_language") or "nl", context.get("current_zone") or get_timezone()
    return lambda value: "" if value is None else short_day(value, language, zone)


# Rows of a list, rendered, per what they show: 160 pages' worth per list and language (some 2 MB),
# for at most KEPT_ROW_LISTS lists and languages (script roots, zones) at once.
ROWS_KEPT = 4096
KEPT_ROW_LISTS = 8


def kept_rows(name: str, page_key: tuple[Any, ...]) -> dict[Any, str]:
    """The rendered rows of list ``name`` kept for what a page gives them all alike (``page_key``:
    language, zone, link patterns, fixed words), each under the row's own values: a row is shown as
    it was before only when everything it shows is the same, so a changed row is a new key, never a
    stale one. The same rows come back on every request (page 1 of a list, the page after it), and
    one kept row costs a fifth of one rendered. Kept on the app; emptied when it holds ``ROWS_KEPT``."""
    lists: dict[Any, dict[Any, str]] = current_app.extensions.setdefault("hub.kept_rows", {})
    rows = lists.get((name, page_key))
    if rows is None or len(rows) >= ROWS_KEPT:
        if len(lists) >= KEPT_ROW_LISTS:
            lists.clear()
        rows = lists[(name, page_key)] = {}
    return rows


def init_app(app: Flask) -> None:
    app.add_template_global(list_url, "list_url")
    app.add_template_global(sort_link, "sort_link")
    app.add_template_global(sort_link, "column_sort_link")  # for macros/forms.html's sort_link
    app.add_template_global(pager, "list_pager")  # for macros/forms.html's pager
