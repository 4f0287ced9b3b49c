"""Ranking without ranking every match (hub.crm.search ``_tiered_page``), on SQLite and PostgreSQL.

More than CAP contacts match: the first page lists the exact names, then the names starting with
the text (each by folded name), then names with a later word starting with it, then the rest (each
in the order they were added); following Next lists every match the user may see exactly once,
never one of a relation hidden from them, and the count says "CAP+" without counting hidden ones.
CAP or fewer: every match ranked in those tiers, each by name. E-mails past the first CAP found
follow them. Texts people paste (wildcards, quotes, NUL, accents, FTS5 syntax) give results or a
clear page, never a 500.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from hub.accounts.users import UserInput, create_token, create_user
from hub.config import Settings
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.crm.search import ANYWHERE, CAP, EXACT, PREFIX, WORD, Group, search
from hub.db import Database
from hub.mail.privacy import email_visible
from hub.models import Contact, Email, Mailbox, MailboxEmail, MailSecurity, MailSharing, User
from hub.text import fold
from tests.conftest import PASSWORD, EnglishClient, csrf_token

_n = itertools.count(1)

# Open contacts by id order, cycling: exact (as typed, accented, upper case), starting with the text,
# a later word starting with it (after a space, after a dash), holding it inside a word.
NAMES = (
    "Bakker",
    "Bakkerij {k:04d}",
    "Jan Bakker {k:04d}",
    "Bäkker",
    "Zus van-Bakker {k:04d}",
    "Ambakkers {k:04d}",
    "BAKKER",
    "Bakker & Zn {k:04d}",
)
OPEN = 1200  # more than CAP, and many pages
HIDDEN = 150


@pytest.fixture
def site(any_db: Database, settings: Settings) -> Iterator[Flask]:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    yield app


def _user(db: Database, name: str) -> User:
    with db.transaction() as s:
        return create_user(s, UserInput(email=f"{name}{next(_n)}@staff.example", name=name, password=PASSWORD))


def _tier(name: str, text: str = "bakker") -> int:
    folded = fold(name)
    if folded == text:
        return EXACT
    if folded.startswith(text):
        return PREFIX
    return WORD if f" {text}" in folded or f"-{text}" in folded else ANYWHERE


def _expected(rows: list[tuple[int, str]], everything_ranked: bool) -> list[int]:
    """The order a user sees: tier, then folded name (all tiers when CAP or fewer match, else the first
    two), then id."""

    def order(row: tuple[int, str]) -> tuple[int, str, int]:
        row_id, name = row
        tier = _tier(name)
        return tier, fold(name) if everything_ranked or tier <= PREFIX else "", row_id

    return [row_id for row_id, _name in sorted(rows, key=order)]


def _every_page(db: Database, user: User, text: str, kind: str, per_page: int) -> tuple[list[int], list[Group]]:
    ids: list[int] = []
    groups: list[Group] = []
    cursor = None
    with db.transaction() as s:
        viewer = s.get_one(User, user.id)
        while True:
            group = search(
                s, viewer, text, kinds=(kind,), cursor=cursor, per_page=per_page, emails_visible=email_visible
            ).group(kind)
            assert group is not None
            groups.append(group)
            ids += [item.id for item in group.items]
            if group.next_cursor is None:
                return ids, groups
            cursor = group.next_cursor


def _seed_contacts(db: Database, colleague: User) -> list[tuple[int, str]]:
    """A colleague's restricted relation with HIDDEN contacts that would rank first ("Bakker geheim"),
    made first (the lowest ids), then OPEN open ones; the open ones as (id, name)."""
    with db.transaction() as s:
        hidden = save_relation(s, RelationInput(name="Verborgen BV", owner_id=colleague.id))
        set_relation_linked(s, hidden, [colleague.id], [])
        for k in range(HIDDEN):
            save_contact(s, hidden, ContactInput(name="Bakker" if k % 2 else f"Bakker geheim {k:04d}"))
        shown = save_relation(s, RelationInput(name="Open BV"))
        for k in range(OPEN):
            save_contact(s, shown, ContactInput(name=NAMES[k % len(NAMES)].format(k=k)))
        save_contact(s, shown, ContactInput(name="Jansen"))  # matches nothing
        rows = s.execute(select(Contact.id, Contact.name).where(Contact.relation_id == shown.id)).tuples()
        return [(row_id, name) for row_id, name in rows if name != "Jansen"]


def test_more_than_cap_matches_are_listed_best_first_each_once_and_hidden_never(any_db: Database) -> None:
    viewer, colleague = _user(any_db, "viewer"), _user(any_db, "colleague")
    visible = _seed_contacts(any_db, colleague)
    assert OPEN > CAP

    listed, groups = _every_page(any_db, viewer, "BAKKER", "contacts", per_page=90)
    assert listed == _expected(visible, everything_ranked=False)
    assert len(listed) == len(set(listed)) == OPEN  # every open one, each once, no hidden one
    assert all((g.total, g.capped) == (CAP, True) for g in groups)
    names = dict(visible)
    tiers = [_tier(names[i]) for i in listed]
    assert all(tiers.count(t) for t in (EXACT, PREFIX, WORD, ANYWHERE))
    # The exact names first (as typed, accented, upper case), then "Bakker & Zn …" before "Bakkerij …".
    assert {fold(names[i]) for i in listed[:90]} == {"bakker"}
    assert fold(names[listed[tiers.index(PREFIX)]]).startswith("bakker & zn")

    # The colleague also sees the hidden relation's contacts, exact ones first.
    listed, _groups = _every_page(any_db, colleague, "bakker", "contacts", per_page=200)
    assert len(listed) == len(set(listed)) == OPEN + HIDDEN
    with any_db.transaction() as s:
        first_names = s.scalars(select(Contact.name).where(Contact.id.in_(listed[:10]))).all()
    assert {fold(n) for n in first_names} == {"bakker"}


def test_cap_or_fewer_matches_are_all_ranked_by_name_within_each_tier(any_db: Database) -> None:
    viewer, colleague = _user(any_db, "viewer"), _user(any_db, "colleague")
    with any_db.transaction() as s:
        hidden = save_relation(s, RelationInput(name="Verborgen BV", owner_id=colleague.id))
        set_relation_linked(s, hidden, [colleague.id], [])
        save_contact(s, hidden, ContactInput(name="Bakker"))
        shown = save_relation(s, RelationInput(name="Open BV"))
        names = ["Zus Bakker", "Ambakkers", "Bakkerij", "bakker", "Anna van-Bakker", "BÄKKER", "Abakker", "Bakker 2"]
        names += [f"Piet Bakker {k}" for k in range(30)]
        for name in names:
            save_contact(s, shown, ContactInput(name=name))
        rows = [
            (row_id, name)
            for row_id, name in s.execute(select(Contact.id, Contact.name).where(Contact.relation_id == shown.id))
        ]
    listed, groups = _every_page(any_db, viewer, "Bakker", "contacts", per_page=7)
    assert listed == _expected(rows, everything_ranked=True)
    assert [g.total for g in groups] == [len(names)] * len(groups) and not groups[0].capped


def test_an_exact_e_mail_address_or_project_number_ranks_first(any_db: Database) -> None:
    viewer = _user(any_db, "viewer")
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Open BV"))
        for k in range(CAP + 20):  # addresses holding the text, made first
            save_contact(s, relation, ContactInput(name=f"Klant {k:04d}", emails=[f"x{k}info@piet.example"]))
        owner = save_contact(s, relation, ContactInput(name="Zus Jansen", emails=["info@piet.example"]))
        owner_id = owner.id
        project_ids = [
            save_project(s, viewer, ProjectInput(relation_id=relation.id, name=f"Project {k}")).id for k in range(3)
        ]
    with any_db.transaction() as s:
        user = s.get_one(User, viewer.id)
        contacts = search(s, user, "INFO@piet.example", kinds=("contacts",)).group("contacts")
        assert contacts is not None and contacts.capped and len(contacts.items) == 10
        assert contacts.items[0].id == owner_id
        numbered = search(s, user, f"P-{project_ids[1]}", kinds=("projects",)).group("projects")
        assert numbered is not None and numbered.items[0].id == project_ids[1]


def test_e_mails_past_the_first_cap_found_follow_them_each_once(any_db: Database) -> None:
    viewer, colleague = _user(any_db, "viewer"), _user(any_db, "colleague")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with any_db.transaction() as s:
        boxes = [
            Mailbox(
                name=name,
                owner_id=owner,
                sharing=MailSharing.only_me,
                host="imap.example",
                port=993,
                security=MailSecurity.ssl,
                username=f"{name}@example.nl",
                password_encrypted="x",
            )
            for name, owner in (("shared", None), ("private", colleague.id))
        ]
        s.add_all(boxes)
        s.flush()
        for k in range(CAP + 40):
            private = k % 7 == 3
            mail = Email(
                message_key=f"m:{k}",
                subject=f"Offerte {k:04d}" if k % 2 else f"Uw offerte {k:04d}",
                from_address=f"klant{k}@example.nl",
                sent_at=start + timedelta(hours=k),
                raw_sha256="0" * 64,
            )
            s.add(mail)
            s.flush()
            s.add(MailboxEmail(mailbox_id=boxes[1 if private else 0].id, email_id=mail.id))
        shown = set(s.scalars(select(MailboxEmail.email_id).where(MailboxEmail.mailbox_id == boxes[0].id)))
    listed, groups = _every_page(any_db, viewer, "offerte", "emails", per_page=50)
    assert len(listed) == len(set(listed)) and set(listed) == shown
    assert all((g.total, g.capped) == (CAP, True) for g in groups)
    listed, _groups = _every_page(any_db, colleague, "offerte", "emails", per_page=50)
    assert len(listed) == len(set(listed)) == CAP + 40


HOSTILE = [
    "%",
    "_",
    "%%__",
    "\\",
    '"',
    "'",
    '" OR "a',
    'bakker" OR name : "x',
    "{name} : bakker",
    "NEAR(a b)",
    "a\x00b",
    "\x00",
    "-",
    " - ",
    "x" * 5000,
    "b" * 199 + "é",
    "ä",
    "😀 bakker",
]


def test_texts_people_paste_give_results_or_a_clear_page(site: Flask, any_db: Database) -> None:
    viewer = _user(any_db, "viewer")
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="100% Müller & Zn_1"))
        for name in ("Müller", "Muller", "Jan Mueller", "Anna Müller-Bakker"):
            save_contact(s, relation, ContactInput(name=name))
        headers = {"Authorization": "Bearer " + create_token(s, s.get_one(User, viewer.id))}
    client = site.test_client()
    page = client.get("/login")
    client.post("/login", data={"email": viewer.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)})
    for text in HOSTILE:
        for kind in ("", "contacts", "relations"):
            response = client.get("/search", query_string={"q": text, "kind": kind})
            assert response.status_code == 200, (text, kind)
        api = client.get("/api/v1/search", query_string={"q": text}, headers=headers)
        # The API refuses what it cannot take (a NUL byte) with a JSON error, never a 500.
        assert api.status_code in (200, 400, 422) and api.is_json, text
    with any_db.transaction() as s:
        user = s.get_one(User, viewer.id)
        for text in ("Müller", "muller", "MULLER"):
            group = search(s, user, text, kinds=("contacts",)).group("contacts")
            assert group is not None
            # Accents aside both exact names first (by id), then the later word.
            assert [c.name for c in group.items] == ["Müller", "Muller", "Anna Müller-Bakker"], text
        for text, name in (("100%", "100% Müller & Zn_1"), ("zn_1", "100% Müller & Zn_1"), ("r_", None)):
            relations = search(s, user, text, kinds=("relations",)).group("relations")
            assert relations is not None
            assert [r.name for r in relations.items] == ([name] if name else []), text
