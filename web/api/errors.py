"""Every API error is JSON: {"error": {"message": …, "field": …}}."""

from __future__ import annotations

from typing import Any

from flask import g, request
from werkzeug.exceptions import HTTPException

from hub.accounts.users import user_for_token
from hub.errors import NotFound, ValidationError
from web.api import bp
from web.context import db_session


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def error_body(message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "field": field, **extra}}


@bp.before_request
def _authenticate() -> Any:
    """Bearer tokens only: a browser's session cookie does not authenticate the API (no CSRF risk)."""
    if request.endpoint == "api.openapi":
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    found = user_for_token(db_session(), token.strip()) if scheme.lower() == "bearer" and token else None
    if found is None:
        return error_body("A valid API token is required (Authorization: Bearer <token>)."), 401
    g.api_user = found
    return None


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Any:
    return error_body(error.message, error.field), error.status


@bp.errorhandler(ValidationError)
def _validation(error: ValidationError) -> Any:
    field = error.field or None
    return error_body(error.message, field, fields=error.errors), 400


@bp.errorhandler(NotFound)
def _not_found(_error: NotFound) -> Any:
    return error_body("Not found."), 404


@bp.errorhandler(HTTPException)
def _http(error: HTTPException) -> Any:
    return error_body(error.description or error.name), error.code or 500
