"""API tokens in the UI: each user makes, names, lists and revokes their own (shown once), read-only or
read and write; admins see and revoke everyone's. A read-only token may read but not change (403)."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.accounts.users import create_token, token_for
from hub.db import Database
from hub.models import ApiToken, User
from tests.conftest import csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]
TOKEN = re.compile(r'id="new-token">(hub_[A-Za-z0-9_-]+)<')


def _create(client: FlaskClient, name: str, scope: str) -> str:
    page = client.get("/profile/tokens")
    response = client.post("/profile/tokens", data={"csrf_token": csrf_token(page.text), "name": name, "scope": scope})
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    found = TOKEN.search(response.text)
    assert found, "the new token is shown on the page"
    return found.group(1)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_user_creates_lists_and_revokes_own_tokens_shown_once(
    app: Flask, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    me = make_user("Tess")
    client = login(app.test_client(), me)
    assert 'href="/profile/tokens"' in client.get("/profile").text
    token = _create(client, "ledger sync", "write")

    # Shown once: the list shows its name and first characters, never the token again.
    listing = client.get("/profile/tokens").text
    assert "ledger sync" in listing and token[:8] in listing
    assert token not in listing
    with db.transaction() as s:
        row = s.scalars(select(ApiToken).where(ApiToken.user_id == me.id)).one()
        assert row.token_hash != token and len(row.token_hash) == 64  # only a hash is stored
        assert row.scope == "write" and row.last_used_at is None

    api = app.test_client()
    assert api.get("/api/v1/me", headers=_bearer(token)).get_json()["email"] == me.email
    with db.transaction() as s:
        assert s.get_one(ApiToken, row.id).last_used_at is not None  # last-used time recorded
    assert "never" not in client.get("/profile/tokens").text

    # Revoking needs the CSRF token like every form.
    assert client.post(f"/profile/tokens/{row.id}/revoke").status_code == 400
    page = client.get("/profile/tokens")
    response = client.post(f"/profile/tokens/{row.id}/revoke", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    revoked = api.get("/api/v1/me", headers=_bearer(token))
    assert revoked.status_code == 401 and revoked.get_json()["error"]["message"]
    assert "ledger sync" not in client.get("/profile/tokens").text


def test_creating_a_token_needs_the_csrf_token_and_a_name(
    app: Flask, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    client = login(app.test_client(), make_user())
    assert client.post("/profile/tokens", data={"name": "x", "scope": "write"}).status_code == 400
    page = client.get("/profile/tokens")
    nameless = client.post("/profile/tokens", data={"csrf_token": csrf_token(page.text), "name": "", "scope": "read"})
    assert nameless.status_code == 400 and not TOKEN.search(nameless.text)
    bad_scope = client.post("/profile/tokens", data={"csrf_token": csrf_token(page.text), "name": "n", "scope": "all"})
    assert bad_scope.status_code == 400
    with db.transaction() as s:
        assert s.scalars(select(ApiToken)).all() == []


def test_a_read_only_token_reads_but_every_change_is_403(
    app: Flask, make_user: Callable[..., User], login: Login
) -> None:
    me = make_user("Reader", admin=True)
    read = _create(login(app.test_client(), me), "dashboard", "read")
    api = app.test_client()
    assert api.get("/api/v1/relations", headers=_bearer(read)).status_code == 200

    created = api.post("/api/v1/relations", json={"name": "Nope BV"}, headers=_bearer(read))
    assert created.status_code == 403
    assert created.get_json()["error"]["message"] == "This API token is read-only; it cannot change anything."
    # The same answer whether the object exists or not: a read-only token learns nothing by writing.
    for method, url in (
        ("patch", "/api/v1/relations/1"),
        ("delete", "/api/v1/relations/1"),
        ("put", "/api/v1/projects/999999/notepad"),
        ("delete", "/api/v1/projects/999999"),
    ):
        response = getattr(api, method)(url, json={"notepad": "x"}, headers=_bearer(read))
        assert response.status_code == 403, (method, url)
        assert set(response.get_json()["error"]) >= {"message", "field"}
    assert api.get("/api/v1/relations", headers=_bearer(read)).get_json()["items"] == []

    write = _create(login(app.test_client(), me), "sync", "write")
    assert api.post("/api/v1/relations", json={"name": "Yes BV"}, headers=_bearer(write)).status_code == 201


def test_admins_see_and_revoke_every_token_others_cannot(
    app: Flask, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    anna, bert = make_user("Anna"), make_user("Bert")
    admin = login(app.test_client(), make_user("Root", admin=True))
    anna_client = login(app.test_client(), anna)
    anna_token = _create(anna_client, "anna's script", "read")
    bert_token = _create(login(app.test_client(), bert), "bert's sync", "write")

    listing = admin.get("/settings/tokens")
    assert listing.status_code == 200
    assert "anna&#39;s script" in listing.text and "bert&#39;s sync" in listing.text
    assert anna.email in listing.text and bert.email in listing.text
    assert anna_token not in listing.text and bert_token not in listing.text
    assert 'href="/settings/tokens"' in admin.get("/settings/").text

    # Staff: no admin list (404 like every settings page), and someone else's token is "not found".
    assert anna_client.get("/settings/tokens").status_code == 404
    with db.transaction() as s:
        bert_row = s.scalars(select(ApiToken).where(ApiToken.user_id == bert.id)).one()
    page = anna_client.get("/profile/tokens")
    stolen = anna_client.post(f"/profile/tokens/{bert_row.id}/revoke", data={"csrf_token": csrf_token(page.text)})
    assert stolen.status_code == 404
    assert "bert&#39;s sync" not in page.text

    response = admin.post(f"/settings/tokens/{bert_row.id}/revoke", data={"csrf_token": csrf_token(listing.text)})
    assert response.status_code == 302
    assert app.test_client().get("/api/v1/me", headers=_bearer(bert_token)).status_code == 401
    assert app.test_client().get("/api/v1/me", headers=_bearer(anna_token)).status_code == 200


def test_the_cli_token_is_read_write_by_default_and_can_be_read_only(
    db: Database, make_user: Callable[..., User]
) -> None:
    user = make_user()
    with db.transaction() as s:
        default = create_token(s, s.get_one(User, user.id), "cli")
        read = create_token(s, s.get_one(User, user.id), "cli", scope="read")
    with db.transaction() as s:
        first, second = token_for(s, default), token_for(s, read)
        assert first is not None and first.scope == "write"
        assert second is not None and second.scope == "read"
