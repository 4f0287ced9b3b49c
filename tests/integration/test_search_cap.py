"""A very common word: each kind is counted up to hub.crm.search.CAP matches ("100+"; were CAP a
thousand "1,000+", Dutch "1.000+"; the API's total_capped), only what the user may see is counted,
and following Next lists every match the user may see, each once; on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from babel.numbers import format_decimal
from flask import Flask

from hub.accounts.users import UserInput, create_token, create_user
from hub.config import Settings
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.crm.search import CAP, search
from hub.db import Database
from hub.mail.privacy import email_visible
from hub.models import User
from tests.conftest import PASSWORD, EnglishClient, csrf_token

HIDDEN, OPEN = CAP + 20, CAP - 20  # together more than CAP; the viewer sees fewer than CAP


@pytest.fixture
def site(any_db: Database, settings: Settings) -> Iterator[Flask]:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    yield app


def _user(db: Database, name: str, language: str = "en") -> User:
    with db.transaction() as s:
        return create_user(s, UserInput(email=f"{name}@staff.example", name=name, password=PASSWORD, language=language))


def _seed(db: Database, colleague: User) -> None:
    """A colleague's restricted relation with HIDDEN contacts named Hollander (made first: the lowest
    ids), then an open one with OPEN more."""
    with db.transaction() as s:
        hidden = save_relation(s, RelationInput(name="Verborgen BV", owner_id=colleague.id))
        set_relation_linked(s, hidden, [colleague.id], [])
        for k in range(HIDDEN):
            save_contact(s, hidden, ContactInput(name=f"Hollander geheim {k:04d}"))
        shown = save_relation(s, RelationInput(name="Open BV"))
        for k in range(OPEN):
            save_contact(s, shown, ContactInput(name=f"Hollander open {k:04d}"))


def _every_page(db: Database, user: User) -> tuple[list[str], int, bool]:
    names: list[str] = []
    cursor = None
    with db.transaction() as s:
        viewer = s.get_one(User, user.id)
        while True:
            group = search(
                s, viewer, "hollander", kinds=("contacts",), cursor=cursor, per_page=100, emails_visible=email_visible
            ).group("contacts")
            assert group is not None
            names += [item.name for item in group.items]
            if group.next_cursor is None:
                return names, group.total, group.capped
            cursor = group.next_cursor


def test_a_common_word_is_counted_up_to_the_cap_and_pages_list_each_once(site: Flask, any_db: Database) -> None:
    viewer, colleague = _user(any_db, "viewer"), _user(any_db, "colleague", language="nl")
    _seed(any_db, colleague)

    # The viewer may see fewer than CAP: the exact count, every one of them, nothing hidden.
    names, total, capped = _every_page(any_db, viewer)
    assert (total, capped) == (OPEN, False)
    assert sorted(names) == [f"Hollander open {k:04d}" for k in range(OPEN)]

    # The colleague sees more than CAP: CAP counted, every one of them listed, each once.
    names, total, capped = _every_page(any_db, colleague)
    assert (total, capped) == (CAP, True)
    assert len(names) == len(set(names)) == HIDDEN + OPEN
    assert set(names) == {f"Hollander geheim {k:04d}" for k in range(HIDDEN)} | {
        f"Hollander open {k:04d}" for k in range(OPEN)
    }

    client = site.test_client()
    for user, language in ((viewer, "en"), (colleague, "nl")):
        page = client.get("/login")
        client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)})
        overview = client.get("/search?q=hollander", headers={"Accept-Language": language}).text
        kind_page = client.get("/search?q=hollander&kind=contacts", headers={"Accept-Language": language}).text
        with any_db.transaction() as s:
            headers = {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id))}
        api = client.get("/api/v1/search?q=hollander&kind=contacts&per_page=100", headers=headers).get_json()
        if user is viewer:
            assert re.search(rf'Contacts <span class="count">{OPEN}</span>', overview)
            assert "geheim" not in overview and "geheim" not in kind_page
            assert "Refine your search" not in overview
            assert api["groups"][0]["total"] == OPEN and api["groups"][0]["total_capped"] is False
        else:
            dutch = re.escape(format_decimal(CAP, locale="nl"))
            assert re.search(rf'Contactpersonen <span class="count">{dutch}\+</span>', overview), overview
            assert 'rel="next"' in kind_page
            assert api["groups"][0]["total"] == CAP and api["groups"][0]["total_capped"] is True
        client.post("/logout", data={"csrf_token": csrf_token(client.get("/").text)})


def test_the_page_says_cap_plus_in_english(site: Flask, any_db: Database) -> None:
    colleague = _user(any_db, "colleague")
    _seed(any_db, colleague)
    client = site.test_client()
    page = client.get("/login")
    client.post("/login", data={"email": colleague.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)})
    overview = client.get("/search?q=hollander").text
    english = format_decimal(CAP, locale="en")
    assert re.search(rf'Contacts <span class="count">{re.escape(english)}\+</span>', overview)
    assert re.search(rf'All <span class="count">{re.escape(english)}\+</span>', overview)
    assert f"Show all {english}+" in overview
    assert "only the first" not in overview  # every match is reachable by paging
