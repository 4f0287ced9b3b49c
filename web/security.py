"""Login, the access decorator every page uses, and security headers."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, abort, request
from flask_login import LoginManager, current_user
from flask_login import login_required as _login_required

from hub.models import User
from web.context import db_session

F = TypeVar("F", bound=Callable[..., Any])

# Pages render e-mail HTML only inside sandboxed frames; everything else is our own.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


def login_required(view: F) -> F:
    return _login_required(view)


def admin_required(view: F) -> F:
    """Admins only; others get 404 like any page they may not see."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager_unauthorized()
        if not current_user.is_admin:
            abort(404)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def login_manager_unauthorized() -> Any:
    from flask import current_app

    return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]


def user() -> User:
    """The logged-in user as a hub model (for service calls)."""
    return current_user._get_current_object()


def _load_user(session_id: str) -> User | None:
    """The user of a login session: its id as ``User.get_id`` wrote it, "<user id>.<session epoch>".

    A session whose epoch is not the user's current one was ended (logout or password change,
    here or in another browser) and counts as logged out; so does one of a deactivated user.
    """
    user_id, _dot, epoch = session_id.partition(".")
    try:
        found = db_session().get(User, int(user_id))
        # Sessions made before epochs existed carry the bare id: valid until the first ending.
        session_epoch = int(epoch) if epoch else 0
    except ValueError:
        return None
    if found is None or not found.is_active or found.session_epoch != session_epoch:
        return None
    return found


def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.login_message = None
    manager.session_protection = "strong"
    manager.user_loader(_load_user)
    app.after_request(_headers)
