"""The top bar's menu: rendered once per language, section and kind of reader, and kept.

Every page shows the menu: nine links, each a URL built and a text translated, and which one is
current. What it shows depends on the script root, the reader's language, the page's section and
whether the reader is an admin, nothing else (no names, no tokens), so it is rendered once for each
such combination and the same text is given again: it was a tenth of a project page.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from flask import Flask, current_app, render_template, request
from flask_login import current_user
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from hub.kept import kept as keep

T = TypeVar("T")

# Sections, languages and admin or not, with room for several script roots.
KEPT = 512


def kept(name: str, key: Hashable, make: Callable[[], T], size: int = KEPT) -> T:
    """``make()``, or what it gave before for ``key``, kept on the app (not in a module-level cache,
    which would keep every app a test run creates alive, with its database engine); at most
    ``size`` kept, then they are made anew."""
    store: dict[Hashable, T] = current_app.extensions.setdefault(f"hub.kept.{name}", {})
    return keep(store, key, make, size)


@pass_context
def main_menu(context: Context) -> Markup:
    """The menu for this page's reader (the template global ``main_menu()``)."""
    section = request.blueprint or ""
    on_sources = request.endpoint == "telephony.sources"
    is_admin = bool(current_user.is_admin)
    key = (request.script_root, context.get("current_language") or "", section, on_sources, is_admin)
    # The script root and language are part of the key only: this request renders with them.
    return kept(
        "menu",
        key,
        lambda: Markup(render_template("_menu.html", section=section, on_sources=on_sources, is_admin=is_admin)),
    )


def init_app(app: Flask) -> None:
    app.add_template_global(main_menu, "main_menu")
