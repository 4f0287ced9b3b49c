"""A search sends the same number of SQL statements however many rows match (no N+1 queries), on
SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask

from hub.accounts.users import UserInput, create_token, create_user
from hub.config import Settings
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Email, EmailRelation, Mailbox, MailboxEmail, MailSecurity, User
from tests.conftest import PASSWORD, EnglishClient, csrf_token
from tests.integration.test_query_counts import counting

_n = itertools.count(1)

URLS = [
    "/search?q=zoe",
    "/search?q=zoe&kind=contacts",
    "/search?q=zoe&kind=relations",
    "/search?q=zoe&kind=projects",
    "/search?q=zoe&kind=emails",
    "/search?q=030 231",
    "/api/v1/search?q=zoe",
    "/api/v1/search?q=zoe&kind=contacts&per_page=50",
]


@pytest.fixture
def site(any_db: Database, settings: Settings) -> Iterator[Flask]:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    yield app


def _seed(db: Database, user: User, n: int) -> None:
    """n of every kind matching "zoe" (contacts also by phone), each with what its page shows."""
    with db.transaction() as s:
        box = Mailbox(
            name=f"shared {n}",
            owner_id=None,
            host="imap.example",
            port=993,
            security=MailSecurity.ssl,
            username=f"sales{n}@example.nl",
            password_encrypted="x",
        )
        s.add(box)
        s.flush()
        for _i in range(n):
            k = next(_n)
            relation = save_relation(s, RelationInput(name=f"Zoë {k}", city="Zoeterwoude", phones=["071 580 0000"]))
            save_contact(
                s,
                relation,
                ContactInput(name=f"Zoë Contact {k}", emails=[f"zoe{k}@klant.example"], phones=[f"030 231 {k:04d}"]),
            )
            save_project(s, user, ProjectInput(relation_id=relation.id, name=f"Zoë plan {k}"))
            mail = Email(
                message_key=f"c:{k}",
                subject=f"Zoë offerte {k}",
                from_address=f"zoe{k}@klant.example",
                sent_at=datetime(2026, 11, 1, tzinfo=UTC),
                raw_sha256="0" * 64,
            )
            s.add(mail)
            s.flush()
            s.add(MailboxEmail(mailbox_id=box.id, email_id=mail.id))
            s.add(EmailRelation(email_id=mail.id, relation_id=relation.id))


def _counts(app: Flask, client: object, headers: dict[str, str]) -> dict[str, int]:
    result = {}
    for url in URLS:
        with counting(app) as statements:
            response = client.get(url, headers=headers if url.startswith("/api/") else {})  # type: ignore[attr-defined]
        assert response.status_code == 200, url
        result[url] = len(statements)
    return result


def test_a_search_costs_the_same_statements_with_ten_times_the_matches(site: Flask, any_db: Database) -> None:
    with any_db.transaction() as s:
        user = create_user(s, UserInput(email="counter@staff.example", name="Counter", password=PASSWORD))
        headers = {"Authorization": "Bearer " + create_token(s, user)}
    client = site.test_client()
    page = client.get("/login")
    client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)})
    # The token's last-used time is written once a minute; do that write before counting.
    assert client.get("/api/v1/search?q=x", headers=headers).status_code == 200
    _seed(any_db, user, 3)
    small = _counts(site, client, headers)
    _seed(any_db, user, 30)  # 33 of each: more than a page of every kind
    large = _counts(site, client, headers)
    assert large == small
    assert client.get("/search?q=zoe&kind=emails").text.count('rel="next"') == 1
