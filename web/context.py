"""Per-request access to hub's database, blob store and settings.

Each request is one unit of work: the session is opened on first use with the one transaction
helper (:meth:`hub.db.Database.transaction`). It commits before the response is sent when the
response is a success or a redirect, and rolls back for errors (4xx/5xx) or exceptions, so a form
that fails validation never leaves half a change behind.
"""

from __future__ import annotations

import functools
from typing import Any

from flask import Flask, Response, abort, current_app, g, has_request_context, render_template, request
from sqlalchemy.orm import Session
from werkzeug.datastructures import ImmutableMultiDict

from hub.blobs import BlobStore
from hub.config import Settings
from hub.db import Database
from hub.errors import NotFound
from hub.paging import MAX_ID


class _Rollback(Exception):
    """Thrown into the unit of work to make it roll back instead of commit."""


def settings() -> Settings:
    return current_app.extensions["hub.settings"]


def database() -> Database:
    return current_app.extensions["hub.db"]


def blobs() -> BlobStore:
    return current_app.extensions["hub.blobs"]


def celery() -> Any:
    """The Celery app the views enqueue through (the same broker as the workers)."""
    return current_app.extensions["hub.celery"]


def installation() -> Any:
    """The installation's health (database, broker, workers, beat, queues), probed now."""
    from hub.ops.health import installation as probe
    from workers.app import QUEUES

    return probe(database(), celery(), list(QUEUES))


def db_session() -> Session:
    """The request's session, opened on first use."""
    if "hub_session" not in g:
        g.hub_uow = database().transaction()
        g.hub_session = g.hub_uow.__enter__()
    return g.hub_session


def _finish(commit: bool) -> None:
    uow = g.pop("hub_uow", None)
    g.pop("hub_session", None)
    if uow is None:
        return
    if commit:
        uow.__exit__(None, None, None)
    else:
        error = _Rollback()
        uow.__exit__(_Rollback, error, None)


def _commit_before_response(response: Response) -> Response:
    _finish(commit=response.status_code < 400)
    return response


def _rollback_on_teardown(_exc: BaseException | None) -> None:
    _finish(commit=False)


def _not_found(_error: Exception) -> Any:
    if request.path.startswith("/api/"):
        return {"error": {"message": "Not found", "field": None}}, 404
    return render_template("errors/404.html"), 404


def _id_beyond_every_row() -> None:
    """A page's id beyond any stored one (``/projects/99999999999999999999``) is a missing object:
    404 before the view runs. Handed to the database it is an error there (SQLite cannot bind it,
    PostgreSQL's integer column refuses it), which was a 500. The API checks its own ids the same way
    (web.api.errors) with its JSON body."""
    if request.path.startswith("/api/"):
        return
    for value in (request.view_args or {}).values():
        if isinstance(value, int) and value > MAX_ID:
            abort(404)


def _form_without_nul() -> None:
    """No one types a NUL byte, and PostgreSQL can neither store nor look for one: a NUL in a form
    field was a 500 there (and stored on SQLite). A posted form's NULs become spaces before any view
    reads them, as hub.crm.tags does with control characters; an empty field stays empty. (Query
    strings are read by each view: a search box drops them, an id with one is no id. The API refuses
    them with a 400 naming the field, web.api.errors.)"""
    if request.method not in {"POST", "PUT", "PATCH"} or request.path.startswith("/api/"):
        return
    form = request.form
    if any("\x00" in key or "\x00" in value for key, value in form.items(multi=True)):
        request.form = ImmutableMultiDict(
            (key.replace("\x00", " "), value.replace("\x00", " ")) for key, value in form.items(multi=True)
        )


def _method_not_allowed(error: Exception) -> Any:
    if request.path.startswith("/api/"):
        return {"error": {"message": "Method not allowed", "field": None}}, 405
    return error


# URLs the templates build, kept: a list page builds one or two per row (each a few microseconds of
# Werkzeug's rule matching), and the same rows and menus come back on every request.
URLS_KEPT = 8192


def _template_url_for(app: Flask) -> Any:
    """Flask's ``url_for`` for templates, remembering what it built.

    A URL without ``_external``/``_scheme``/``_anchor``/``_method`` and with an absolute endpoint is a
    function of the endpoint, its values and the script root alone (hub registers no url_defaults:
    while any are registered nothing is remembered), the same for every user: nothing private is kept,
    only what any request with the same values builds anyway.
    """
    build = app.url_for

    # Each value with its type: True, 1 and 1.0 are equal keys but build different URLs (?page=True,
    # ?page=1, ?page=1.0).
    @functools.lru_cache(maxsize=URLS_KEPT)
    def remembered(script_root: str, endpoint: str, values: tuple[tuple[str, type, Any], ...]) -> str:
        return build(endpoint, **{name: value for name, _kind, value in values})

    def url_for(endpoint: str, **values: Any) -> str:
        if (
            endpoint[:1] == "."
            or any(app.url_default_functions.values())
            or any(k[:1] == "_" for k in values)
            or not has_request_context()  # outside a request Flask builds full URLs from SERVER_NAME
        ):
            return build(endpoint, **values)
        try:
            # In the order given: the query string keeps it.
            return remembered(request.script_root, endpoint, tuple((k, type(v), v) for k, v in values.items()))
        except TypeError:  # a value that cannot be a dict key (a list): built each time
            return build(endpoint, **values)

    return url_for


def init_app(app: Flask) -> None:
    app.jinja_env.globals["url_for"] = _template_url_for(app)
    app.before_request(_id_beyond_every_row)
    app.before_request(_form_without_nul)
    app.after_request(_commit_before_response)
    app.teardown_request(_rollback_on_teardown)
    app.register_error_handler(NotFound, _not_found)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(405, _method_not_allowed)


def or_404(value: Any) -> Any:
    if value is None:
        abort(404)
    return value
