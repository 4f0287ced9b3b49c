"""The CSRF token in every page (the logout button, each form) is signed once per session and given
again (web.security.csrf_token): a form opened long ago still submits after the user went through
other pages, while a token still belongs to its own session only: another user's is refused."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from hub.models import User
from tests.conftest import csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]


def _new_relation(client: FlaskClient, token: str, name: str) -> int:
    form = {"name": name, "kind": "company", "status": "lead", "country": "NL", "csrf_token": token}
    return client.post("/relations/new", data=form).status_code


def test_a_page_token_stays_valid_in_its_session_only(app: Flask, make_user: Callable[..., User], login: Login) -> None:
    anna, bert = make_user("Anna"), make_user("Bert")
    first = login(app.test_client(), anna)
    opened = csrf_token(first.get("/relations/new").text)
    for url in ("/projects", "/relations", "/projects?sort=name", "/profile"):
        assert csrf_token(first.get(url).text) == opened  # one per session, not one per page
    assert _new_relation(first, opened, "Opened long ago BV") == 302
    # Another user's session has its own token; Anna's is refused there.
    second = login(app.test_client(), bert)
    assert csrf_token(second.get("/projects").text) != opened
    assert _new_relation(second, opened, "Forged BV") == 400
    # Bert's own token works in his session.
    assert _new_relation(second, csrf_token(second.get("/relations/new").text), "Fresh BV") == 302
    listed = first.get("/relations?q=BV").text
    assert "Opened long ago BV" in listed and "Fresh BV" in listed and "Forged BV" not in listed
