"""Links of a list page (its sort links and the URLs Next and Previous use), as template globals.

A list page has a sort link per sortable column and a pager; as Jinja macros, each link was a macro
calling a macro calling url_for with dictionaries merged in the template, a tenth of a project list
page. These build the same links in Python.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, request
from markupsafe import Markup

_SORT_LINK = Markup('<a href="{href}" class="{css}">{label}{arrow}</a>')


def list_url(args: dict[str, Any], changes: dict[str, Any]) -> str:
    """The current list's URL with ``args`` (its filters and sort) and ``changes``. The path's own
    arguments (relation_id, project_id …) come from the request: url_for cannot build a tab's URL
    without them."""
    url_for: Any = current_app.jinja_env.globals["url_for"]  # the templates' one, which remembers URLs
    return str(url_for(request.endpoint, **{**(request.view_args or {}), **args, **changes}))


def sort_link(label: str, key: str, current: str, args: dict[str, Any]) -> Markup:
    """A column's sort link: by ``key``, or the other way round when the list is sorted by it now.
    It starts the list over (page=1: the first page); it never carries a cursor, which belongs to
    one sort."""
    descending = current == f"-{key}"
    next_sort = f"-{key}" if current == key else key
    return _SORT_LINK.format(
        href=list_url(args, {"sort": next_sort, "page": 1}),
        css="sort sorted" if current.lstrip("-") == key else "sort",
        label=label,
        arrow=" ▲" if current == key else (" ▼" if descending else ""),
    )


def init_app(app: Flask) -> None:
    app.add_template_global(list_url, "list_url")
    app.add_template_global(sort_link, "sort_link")
    app.add_template_global(sort_link, "column_sort_link")  # for macros/forms.html's sort_link
