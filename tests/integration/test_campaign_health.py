"""A mailing is a unit of background work like a mailbox: a scheduled one that no worker takes says
so on the sync-health page and in /api/v1/health, in the same words."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from hub.accounts.users import create_token
from hub.db import Database
from hub.models import User
from tests.integration.test_campaign_sending import make_mailing, seed_contacts

Login = Callable[[FlaskClient, User], FlaskClient]


def test_a_scheduled_mailing_without_a_worker_is_shown_waiting(
    app: Flask, client: FlaskClient, db: Database, make_user: Callable[..., User], login: Login
) -> None:
    seed_contacts(db, 3)
    mailing_id = make_mailing(db)  # scheduled for now; no worker runs in this test
    staff = make_user()
    login(client, staff)
    page = client.get("/mail/health").text
    assert f'href="/campaigns/mailings/{mailing_id}"' in page
    with db.transaction() as s:
        token = create_token(s, s.get_one(User, staff.id))
    health = client.get("/api/v1/health", headers={"Authorization": f"Bearer {token}"}).get_json()
    (item,) = health["mailings"]
    assert item["id"] == mailing_id and item["state"] == "scheduled"
    assert item["health"] == "waiting_for_worker" and item["health_words"] in page
