"""Login, the access decorator every page uses, and security headers."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Request, Response, abort, current_app, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import LoginManager, current_user
from flask_login import login_required as _login_required
from flask_wtf.csrf import generate_csrf
from itsdangerous import BadSignature
from sqlalchemy import bindparam, select

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


# Built once: every page asks it first, and Session.get (which builds its query each time) cost twice
# what running this one does.
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))


def _load_user(session_id: str) -> User | None:
    """The user of a login session: its id as ``User.get_id`` wrote it, "<user id>.<session epoch>".

    A session whose epoch is not the user's current one was ended (logout or password change,
    here or in another browser) and counts as logged out; so does one of a deactivated user.
    """
    user_id, _dot, epoch = session_id.partition(".")
    try:
        found = db_session().scalars(_USER_BY_ID, {"user_id": int(user_id)}).one_or_none()
        # Sessions made before epochs existed carry the bare id: valid until the first ending.
        session_epoch = int(epoch) if epoch else 0
    except ValueError:
        return None
    if found is None or not found.is_active or found.session_epoch != session_epoch:
        return None
    return found


# Sessions whose signed CSRF token is kept (each a few dozen bytes).
CSRF_TOKENS_KEPT = 4096


def csrf_token() -> str:
    """Flask-WTF's ``csrf_token()`` for templates, signed once per session rather than per page.

    Every page has one (the logout button), and signing it was a twelfth of a project page. The
    signed token stands for the session's own random token, which it is checked against; hub sets
    no time limit on it (WTF_CSRF_TIME_LIMIT None), so the moment it was signed at does not matter
    and the token signed for a session serves all its pages. With a time limit configured, each
    page signs its own, as Flask-WTF does.
    """
    from web.menu import kept

    raw = session.get(current_app.config["WTF_CSRF_FIELD_NAME"])
    if raw is None or current_app.config["WTF_CSRF_TIME_LIMIT"] is not None:
        return str(generate_csrf())
    return kept("csrf", raw, lambda: str(generate_csrf()), CSRF_TOKENS_KEPT)


# Session cookies whose check is kept (a few hundred bytes each).
SESSIONS_KEPT = 4096
_PLAIN = (str, int, float, bool, type(None))


class KeptSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, each cookie's signature checked once rather than on every
    request: checking it and decoding its JSON was a fifteenth of a page.

    A cookie is its own key: the same cookie always carries the same signed data, so what it was
    found to hold is kept (with the moment it was signed, so an expired cookie is still refused, as
    Flask refuses it) and each request gets its own copy. Only sessions of plain values are kept (a
    list, such as pending flash messages, could be changed in place by the request holding it).
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not app.secret_key:
            return None
        cookie = request.cookies.get(self.get_cookie_name(app))
        if not cookie:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        key = (cookie, app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        kept: dict[Any, tuple[dict[str, Any], float]] = app.extensions.setdefault("hub.kept.sessions", {})
        if (found := kept.get(key)) is not None and 0 <= time.time() - found[1] <= max_age:
            return self.session_class(found[0])
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        try:
            data, signed = serializer.loads(cookie, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if isinstance(data, dict) and all(isinstance(value, _PLAIN) for value in data.values()):
            if len(kept) >= SESSIONS_KEPT:
                kept.clear()
            kept[key] = (dict(data), signed.timestamp())
        return self.session_class(data)


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
    app.session_interface = KeptSessionInterface()


def init_csrf(app: Flask) -> None:
    """After CSRFProtect: templates' ``csrf_token()`` is :func:`csrf_token` (a context processor,
    as Flask-WTF gives its own: the later one wins)."""
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.context_processor(lambda: {"csrf_token": csrf_token})
