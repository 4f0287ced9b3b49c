"""Login rate limiting, CSRF on forms, cookie flags, security headers, no open redirect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from hub.db import Database
from hub.models import User
from tests.conftest import PASSWORD, csrf_token, make_settings


def _login(client: FlaskClient, email: str, password: str, **kwargs: object) -> object:
    token = csrf_token(client.get("/login", **kwargs).text)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token}, **kwargs)


def test_login_is_blocked_after_repeated_failures(client: FlaskClient, make_user: Callable[..., User]) -> None:
    user = make_user()
    for _ in range(5):
        response = _login(client, user.email, "wrong password")
        assert response.status_code == 200 and "password is wrong" in response.text
    blocked = _login(client, user.email, PASSWORD)  # even the right password, for now
    assert blocked.status_code == 429 and "Too many failed attempts" in blocked.text
    other = make_user()
    assert _login(client, other.email, PASSWORD).status_code == 302  # others are not locked out


def test_forms_without_a_csrf_token_are_refused(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[[FlaskClient, User], FlaskClient]
) -> None:
    login(client, make_user())
    response = client.post("/relations/new", data={"name": "No token BV", "kind": "company", "status": "lead"})
    assert response.status_code == 400 and "CSRF" in response.text
    assert "No token BV" not in client.get("/relations").text


def test_session_cookie_flags_and_headers(tmp_path: Path, db: Database, make_user: Callable[..., User]) -> None:
    from web import create_app

    settings = make_settings(tmp_path / "secure", HUB_SESSION_COOKIE_SECURE="true")
    app: Flask = create_app(settings, database=db, TESTING=True)
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    user = make_user()
    # Over HTTPS Flask-WTF also checks the Referer, which browsers send on same-origin posts.
    response = _login(
        client, user.email, PASSWORD, base_url="https://hub.example", headers={"Referer": "https://hub.example/login"}
    )
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    page = client.get("/projects", base_url="https://hub.example")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_login_does_not_redirect_off_site(client: FlaskClient, make_user: Callable[..., User]) -> None:
    user = make_user()
    token = csrf_token(client.get("/login").text)
    response = client.post(
        "/login?next=https://evil.example/phish", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/projects"
