"""Every page loads its user by a statement built once (web.security), every API call its token and
the token's user in one (hub.accounts.users.token_for). Reading must write nothing; the objects must
still take changes (a profile's language, the token's last use, at most once a minute); a
deactivated user is let in neither way."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from hub.accounts.users import create_token
from hub.db import Database
from hub.models import User
from tests.conftest import csrf_token
from tests.integration.test_query_counts import counting

Login = Callable[[FlaskClient, User], FlaskClient]
WRITES = ("INSERT", "UPDATE", "DELETE")


def test_reading_writes_nothing_and_changes_still_save(
    app: Flask, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    anna = make_user("Anna", language="en")
    with db.transaction() as s:
        token = create_token(s, s.get_one(User, anna.id), "t", scope="read")
    client = login(app.test_client(), anna)
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=bearer).status_code == 200  # records the first use
    with counting(app) as statements:
        for url in ("/projects", "/relations", "/profile"):
            assert client.get(url).status_code == 200
        for _ in range(3):
            assert client.get("/api/v1/me", headers=bearer).get_json()["name"] == "Anna"
    assert not [s for s in statements if s.lstrip().upper().startswith(WRITES)]
    # The page's user takes a change: the profile's language is saved and used from then on.
    saved = client.post("/profile", data={"language": "nl", "csrf_token": csrf_token(client.get("/profile").text)})
    assert saved.status_code == 302
    assert "Projecten" in client.get("/projects").text
    with db.transaction() as s:
        assert s.get_one(User, anna.id).language == "nl"
    # A deactivated user: logged out on the next page, his token refused.
    with db.transaction() as s:
        s.get_one(User, anna.id).is_active = False
    assert client.get("/projects").status_code == 302
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
