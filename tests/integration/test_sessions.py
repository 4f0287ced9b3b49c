"""Sessions end when they should: logout and a password change end every session of the user, a copied
cookie too; a login for an unknown account does the same work (a password hash) as for a real one.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.accounts import users as accounts
from hub.accounts.users import UserInput, authenticate, update_user
from hub.db import Database
from hub.models import User
from tests.conftest import PASSWORD, csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]


def _copy_session(source: FlaskClient, target: FlaskClient) -> None:
    cookie = source.get_cookie("session")
    assert cookie is not None
    target.set_cookie("session", cookie.value)


def _logged_in(client: FlaskClient) -> bool:
    response = client.get("/projects")
    assert response.status_code in {200, 302}
    return response.status_code == 200


def test_logout_ends_every_session_of_the_user_also_a_copied_cookie(
    app: Flask, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user()
    browser, elsewhere = login(app.test_client(), user), login(app.test_client(), user)
    thief = app.test_client()
    _copy_session(browser, thief)
    assert _logged_in(browser) and _logged_in(elsewhere) and _logged_in(thief)
    token = csrf_token(browser.get("/profile").text)
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302
    assert not _logged_in(browser)
    assert not _logged_in(thief)  # the copied cookie no longer works
    assert not _logged_in(elsewhere)  # nor the user's other sessions
    # Others are not affected, and logging in again works.
    assert _logged_in(login(app.test_client(), make_user()))
    assert _logged_in(login(browser, user))


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(
    app: Flask, db: Database, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user()
    mine, other = login(app.test_client(), user), login(app.test_client(), user)
    page = mine.get("/profile").text
    changed = mine.post(
        "/profile",
        data={
            "csrf_token": csrf_token(page),
            "language": "en",
            "current_password": PASSWORD,
            "new_password": "a new long password",
        },
    )
    assert changed.status_code == 302
    assert _logged_in(mine)
    assert not _logged_in(other)
    wrong = mine.post(
        "/profile",
        data={
            "csrf_token": csrf_token(mine.get("/profile").text),
            "current_password": "not it",
            "new_password": "another long one",
        },
    )
    assert wrong.status_code == 400 and "The current password is wrong." in wrong.text
    assert _logged_in(mine)


def test_an_admin_setting_a_password_ends_the_users_sessions(
    app: Flask, db: Database, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user()
    client = login(app.test_client(), user)
    with db.transaction() as s:
        target = s.get_one(User, user.id)
        update_user(s, target, UserInput(email=target.email, name=target.name, password="reset password 1"))
    assert not _logged_in(client)


def test_an_unknown_account_is_checked_against_a_password_hash_too(
    db: Database, make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing: without the hash an unknown address would answer at once and so reveal which
    addresses have accounts. The code path is tested, not the wall clock."""
    calls: list[str] = []
    real = accounts.verify_password

    def counting(stored: str, password: str) -> bool:
        calls.append(stored)
        return real(stored, password)

    monkeypatch.setattr(accounts, "verify_password", counting)
    user = make_user()
    with db.transaction() as s:
        assert authenticate(s, "nobody@staff.example", PASSWORD, "10.0.0.1") is None
        assert len(calls) == 1 and calls[0].startswith("scrypt$")  # a real hash of the same cost
        assert authenticate(s, user.email, "wrong password", "10.0.0.1") is None
        assert authenticate(s, user.email, PASSWORD, "10.0.0.1") is not None
    assert len(calls) == 3
    # The dummy has the same parameters as a real password hash, so the work is the same.
    with db.transaction() as s:
        stored = s.get_one(User, user.id).password_hash
    assert calls[0].split("$")[:4] == stored.split("$")[:4]


def test_login_page_for_an_unknown_account_hashes_too(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = accounts.verify_password

    def counting(stored: str, password: str) -> bool:
        calls.append(stored)
        return real(stored, password)

    monkeypatch.setattr(accounts, "verify_password", counting)
    token = csrf_token(client.get("/login").text)
    response = client.post("/login", data={"email": "ghost@staff.example", "password": "x" * 10, "csrf_token": token})
    assert response.status_code == 200 and "password is wrong" in response.text
    assert len(calls) == 1
