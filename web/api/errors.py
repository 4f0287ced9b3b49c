"""Token authentication and errors for the API: every error is {"error": {"message": …, "field": …}}.

These handlers are registered on the api blueprint only, so pages keep their HTML error pages.
404/405 for URLs that match no rule at all never reach a blueprint; web.context answers those with
the same JSON body for any /api/ path.
"""

from __future__ import annotations

from typing import Any

from flask import g, request
from werkzeug.exceptions import HTTPException

from hub.accounts.users import user_for_token
from hub.errors import NotFound, ValidationError
from web.api import bp
from web.context import db_session

# The same body as web.context gives for an unknown /api/ URL, so "does not exist", "you may not
# see it" and "no such route" cannot be told apart.
NOT_FOUND = "Not found"


class ApiError(Exception):
    """An error a view raises to answer with ``status`` and a message naming ``field``."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def error_body(message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "field": field, **extra}}


def not_found() -> ApiError:
    return ApiError(404, NOT_FOUND)


def _bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@bp.before_request
def _authenticate() -> Any:
    """Bearer tokens only: a browser's session cookie does not authenticate the API, so a page on
    another site cannot make a logged-in browser call it (no CSRF risk)."""
    if request.endpoint == "api.openapi":
        return None
    token = _bearer_token()
    found = user_for_token(db_session(), token) if token else None
    if found is None:
        body = error_body("A valid API token is required (Authorization: Bearer <token>).")
        return body, 401, {"WWW-Authenticate": 'Bearer realm="hub"'}
    g.api_user = found
    return None


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Any:
    extra = {"fields": {error.field: error.message}} if error.field else {}
    return error_body(error.message, error.field, **extra), error.status


@bp.errorhandler(ValidationError)
def _validation(error: ValidationError) -> Any:
    # "" is the service's key for a message about the input as a whole: it names no field.
    fields = {name: message for name, message in error.errors.items() if name}
    return error_body(error.message, error.field or None, fields=fields), 400


@bp.errorhandler(NotFound)
def _not_found(_error: NotFound) -> Any:
    return error_body(NOT_FOUND), 404


# Code-specific handlers: the app registers its own 404/405/413 handlers (HTML pages), and Flask
# prefers a code-specific handler over a class-based one, so the API names these codes itself.
@bp.errorhandler(404)
def _http_not_found(_error: HTTPException) -> Any:
    return error_body(NOT_FOUND), 404


@bp.errorhandler(405)
def _method_not_allowed(_error: HTTPException) -> Any:
    return error_body("Method not allowed"), 405


@bp.errorhandler(413)
def _too_large(_error: HTTPException) -> Any:
    from hub.crm.documents import human_size
    from web.context import settings

    limit = human_size(settings().upload_max_bytes)
    return error_body(f"The upload is larger than the limit of {limit}.", "file"), 413


@bp.errorhandler(HTTPException)
def _http(error: HTTPException) -> Any:
    return error_body(error.description or error.name), error.code or 500
