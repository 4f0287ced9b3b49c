"""Per-request access to hub's database, blob store and settings.

Each request is one unit of work: the session is opened on first use with the one transaction
helper (:meth:`hub.db.Database.transaction`). It commits before the response is sent when the
response is a success or a redirect, and rolls back for errors (4xx/5xx) or exceptions, so a form
that fails validation never leaves half a change behind.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, abort, current_app, g, render_template, request
from sqlalchemy.orm import Session

from hub.blobs import BlobStore
from hub.config import Settings
from hub.db import Database
from hub.errors import NotFound


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


def _method_not_allowed(error: Exception) -> Any:
    if request.path.startswith("/api/"):
        return {"error": {"message": "Method not allowed", "field": None}}, 405
    return error


def init_app(app: Flask) -> None:
    app.after_request(_commit_before_response)
    app.teardown_request(_rollback_on_teardown)
    app.register_error_handler(NotFound, _not_found)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(405, _method_not_allowed)


def or_404(value: Any) -> Any:
    if value is None:
        abort(404)
    return value
