"""Token authentication, strict input and errors for the API: every error is
{"error": {"message": …, "field": …, "fields": {…}}}.

These handlers are registered on the api blueprint only, so pages keep their HTML error pages.
404/405 for URLs that match no rule at all never reach a blueprint; web.context answers those with
the same JSON body for any /api/ path (and ``_allow_header`` below adds the Allow header to a 405).

Before a view's declared models see the request, ``_authenticate`` checks, in this order: the token;
the object the path names (a hidden one is a 404 whatever the body says, as a missing one is);
admin-only operations (404 for staff, as admin pages); and input no model should ever see — JSON
nested deeper than anyone sends, NUL bytes and lone surrogates (PostgreSQL refuses them in text,
which would be a 500), integers beyond what an id column holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import current_app, g, request
from flask.wrappers import Response
from pydantic import ValidationError as ModelError
from werkzeug.exceptions import HTTPException

from hub.accounts.users import token_for
from hub.errors import NotFound, ValidationError
from hub.i18n import _
from hub.models.users import TokenScope
from hub.paging import MAX_ID
from web.api import bp, spec
from web.context import db_session

# The same body as web.context gives for an unknown /api/ URL, so "does not exist", "you may not
# see it" and "no such route" cannot be told apart.
NOT_FOUND = "Not found"
# Nobody's CRM object is nested deeper than this; Python's JSON parser recurses and would fail
# (RecursionError, a 500) at around a thousand levels.
MAX_DEPTH = 32
PUBLIC_ENDPOINTS = {"api.openapi"}
# What a read-only token may do.
READ_METHODS = {"GET", "HEAD", "OPTIONS"}
# URL argument → loader of the object it names, run before the body is read; raises NotFound for a
# missing or hidden object. Filled by web.api.routes; the views find the objects in g.path_objects.
LOADERS: dict[str, Callable[[int], Any]] = {}
ADMIN_ONLY: set[str] = set()


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
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def bad_text(value: str) -> bool:
    """NUL bytes and lone surrogates: no user typed them, and PostgreSQL cannot store them."""
    return any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in value)


def _check_value(value: Any, field: str | None, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ApiError(400, _("The request body is nested too deeply."), field)
    if isinstance(value, str):
        if bad_text(value):
            raise ApiError(400, _("%(name)s contains characters that are not allowed.", name=field or "body"), field)
    elif isinstance(value, int) and not isinstance(value, bool):
        # Bodies: beyond 64 bits no column holds it (ids are bounded tighter by their models).
        if abs(value) > 2**63 - 1:
            raise ApiError(400, _("%(name)s is too large.", name=field or "body"), field)
    elif isinstance(value, dict):
        for key, item in value.items():
            if bad_text(key):
                raise ApiError(400, _("The request body contains characters that are not allowed."))
            _check_value(item, field or key, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_value(item, field, depth + 1)


def _read_json_body() -> None:
    """Parse the body as a JSON object once, strictly; the declared model then validates the fields."""
    if not request.is_json:
        raise ApiError(400, _("The request body must be a JSON object."))
    try:
        data = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, RecursionError):
        raise ApiError(400, _("The request body must be a JSON object.")) from None
    if not isinstance(data, dict):
        raise ApiError(400, _("The request body must be a JSON object."))
    _check_value(data, None)
    # Flask caches get_json() here; spectree reads the body through it, so it sees this object.
    request._cached_json = (data, data)


@bp.before_request
def _authenticate() -> Any:
    """Bearer tokens only: a browser's session cookie does not authenticate the API, so a page on
    another site cannot make a logged-in browser call it (no CSRF risk)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    token = _bearer_token()
    row = token_for(db_session(), token) if token and not bad_text(token) else None
    if row is None:
        body = error_body(_("A valid API token is required (Authorization: Bearer <token>)."))
        return body, 401, {"WWW-Authenticate": 'Bearer realm="hub"'}
    if row.scope != TokenScope.write and request.method not in READ_METHODS:
        # Before any object is looked up: the answer is the same whether the object exists or not.
        return error_body(_("This API token is read-only; it cannot change anything.")), 403
    found = row.user
    g.api_user = found
    g.path_objects = {}
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int) and value > MAX_ID:
            raise not_found()
        if name in LOADERS:
            g.path_objects[name] = LOADERS[name](value)
    endpoint = request.endpoint or ""
    if endpoint in ADMIN_ONLY and not found.is_admin:
        raise not_found()
    for key, values in request.args.lists():
        if bad_text(key) or any(bad_text(v) for v in values):
            raise ApiError(400, _("%(name)s contains characters that are not allowed.", name=key), key)
    view = current_app.view_functions.get(endpoint)
    metadata = spec.get_function_metadata(view) if view else None
    if metadata is not None and metadata.json and request.method in {"POST", "PUT", "PATCH"}:
        _read_json_body()
    return None


def _message(error: dict[str, Any]) -> str:
    """One error of a declared model, in the user's language."""
    name = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return _("%(name)s is not a known field or parameter.", name=name)
    if kind == "missing":
        return _("%(name)s is required.", name=name)
    if kind.startswith("string"):
        return (
            _("%(name)s must be a string.", name=name)
            if kind == "string_type"
            else _("%(name)s is too long.", name=name)
        )
    if kind.startswith("bool"):
        return _("%(name)s must be true or false.", name=name)
    if kind.startswith("int") or kind in {"greater_than_equal", "less_than_equal"}:
        return _("%(name)s must be a whole number in range.", name=name)
    if kind.startswith("list") or kind == "too_long":
        return _("%(name)s must be a list (of at most the allowed length).", name=name)
    if kind in {"enum", "literal_error"}:
        expected = error.get("ctx", {}).get("expected", "")
        return _("%(name)s must be one of %(names)s.", name=name, names=expected)
    if kind.startswith("datetime"):
        return _("%(name)s must be a moment in ISO 8601 (2026-02-01T09:00:00+01:00).", name=name)
    if kind == "value_error":
        # Our own validators (dates, amounts) say what they expect.
        return f"{name} {error.get('ctx', {}).get('error', '')}".strip()
    return _("%(name)s is not valid.", name=name)


def _model_error(_req: Any, _resp: Any, error: Exception | None, _instance: Any, _adapter: Any = None) -> None:
    """spectree calls this before the view; a declared model's complaint becomes our 400."""
    if not isinstance(error, ModelError):
        return
    fields: dict[str, str] = {}
    for item in error.errors(include_url=False):
        # A choice given as {"id": …}, or a list item: the top-level key is the field the user sent.
        top = str(item["loc"][0]) if item["loc"] else ""
        if top not in fields:
            fields[top] = _message({**item, "loc": item["loc"][:1]})
    first = next(iter(fields))
    raise ModelInputError(fields[first], first or None, fields)


class ModelInputError(Exception):
    def __init__(self, message: str, field: str | None, fields: dict[str, str]) -> None:
        super().__init__(message)
        self.message, self.field, self.fields = message, field, fields


spec.before = _model_error


@bp.errorhandler(ModelInputError)
def _bad_input(error: ModelInputError) -> Any:
    return error_body(error.message, error.field, fields=error.fields), 400


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
def _method_not_allowed(error: HTTPException) -> Any:
    return error_body(_("Method not allowed")), 405, error.get_headers()


@bp.errorhandler(413)
def _too_large(_error: HTTPException) -> Any:
    from hub.crm.documents import human_size
    from web.context import settings

    limit = human_size(settings().upload_max_bytes)
    return error_body(_("The upload is larger than the limit of %(limit)s.", limit=limit), "file"), 413


@bp.errorhandler(HTTPException)
def _http(error: HTTPException) -> Any:
    return error_body(error.description or error.name), error.code or 500


@bp.after_app_request
def _allow_header(response: Response) -> Response:
    """A 405 names the methods the URL does take (RFC 9110), also when web.context answered it."""
    if response.status_code == 405 and "Allow" not in response.headers and request.path.startswith("/api/"):
        adapter = current_app.url_map.bind_to_environ(request.environ)
        methods = adapter.allowed_methods()
        if methods:
            response.headers["Allow"] = ", ".join(sorted(methods))
    return response
