"""A session cookie's signature is checked once and what it holds kept (web.security.KeptSessionInterface):
the session must still end when it expires or the user logs out, a tampered cookie must still be
refused, and a message shown once (flash) must still be shown only once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.models import User
from tests.conftest import csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]


def _cookie(client: FlaskClient) -> str:
    found = client.get_cookie("session")
    assert found is not None
    return found.value


def test_kept_sessions_still_end_and_refuse_tampering(app: Flask, make_user: Callable[..., User], login: Login) -> None:
    client = login(app.test_client(), make_user("Anna"))
    for _ in range(3):
        assert client.get("/projects").status_code == 200
    cookie = _cookie(client)
    # A cookie with one character changed is not the kept one: its signature is checked, and fails.
    forged = app.test_client()
    forged.set_cookie("session", cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1])
    assert forged.get("/projects").status_code == 302
    # The same cookie in another browser works (it is the session), until the session expires.
    copy = app.test_client()
    copy.set_cookie("session", cookie)
    assert copy.get("/projects").status_code == 200
    lifetime = app.permanent_session_lifetime
    app.permanent_session_lifetime = timedelta(seconds=-1)  # every cookie is now older than allowed
    try:
        assert copy.get("/projects").status_code == 302
    finally:
        app.permanent_session_lifetime = lifetime
    assert copy.get("/projects").status_code == 200
    # Logging out ends every session of the user, the copied cookie's too.
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/projects").text)})
    assert copy.get("/projects").status_code == 302
    assert client.get("/projects").status_code == 302


def test_a_flashed_message_is_shown_once(
    app: Flask, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    anna = make_user("Anna")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakker BV"))
        project = save_project(s, anna, ProjectInput(relation_id=relation.id, name="Warehouse"))
    client = login(app.test_client(), anna)
    for _ in range(2):  # the session before and after the message are kept sessions
        assert client.get("/projects/board").status_code == 200
    token = csrf_token(client.get("/projects/board").text)
    # A card moved from a stale board: refused, and the board says so once.
    moved = client.post(f"/projects/{project.id}/status", data={"csrf_token": token, "version": "99", "status_id": ""})
    assert moved.status_code == 303
    message = "Someone changed this project meanwhile"
    assert message in client.get("/projects/board").text
    assert message not in client.get("/projects/board").text
    assert message not in client.get("/projects/board").text
