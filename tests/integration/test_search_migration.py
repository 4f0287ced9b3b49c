"""Migration 0010 (search) goes down and up again on SQLite and on PostgreSQL, and search works after."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from hub.accounts.users import UserInput, create_user
from hub.crm.relations import RelationInput, save_relation
from hub.crm.search import KINDS, search
from hub.db import Database
from hub.migrate import alembic_config, upgrade
from hub.models import User
from hub.models.crm import SEARCH_INDEXES

_names = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'search.db'}"
    from tests.servers import create_database

    return create_database(request.getfixturevalue("pg_server"), f"hub_search_{next(_names)}")


def _search_objects(url: str) -> tuple[set[str], bool]:
    """The search indexes present, and whether hub_fold() exists (PostgreSQL)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name != "postgresql":
                return set(), False
            indexes = set(conn.scalars(text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_search_%'")))
            fold = bool(conn.scalar(text("SELECT count(*) FROM pg_proc WHERE proname = 'hub_fold'")))
            return indexes, fold
    finally:
        engine.dispose()


def test_search_migration_downgrades_and_upgrades(fresh_url: str) -> None:
    upgrade(fresh_url)
    postgres = fresh_url.startswith("postgresql")
    expected = {str(index.name) for index in SEARCH_INDEXES}
    assert _search_objects(fresh_url) == ((expected, True) if postgres else (set(), False))
    command.downgrade(alembic_config(fresh_url), "0009")
    assert _search_objects(fresh_url) == (set(), False)
    upgrade(fresh_url)
    assert _search_objects(fresh_url) == ((expected, True) if postgres else (set(), False))
    database = Database(fresh_url)
    try:
        with database.transaction() as s:
            user = create_user(s, UserInput(email="m@staff.example", name="M", password="pw-123456789"))
            save_relation(s, RelationInput(name="Ĳssel Straße Café"))
            results = search(s, user, "IJSSEL STRASSE CAFE", kinds=("relations",))
            assert [r.name for r in results.groups[1].items] == ["Ĳssel Straße Café"]
    finally:
        database.dispose()


def test_postgresql_answers_from_the_trigram_indexes(pg_db: Database) -> None:
    """The query's folded columns are the indexes' very expressions (else every search scans)."""
    from sqlalchemy import func, select

    from hub.crm import search as service
    from hub.models import Contact, Email, Project, Relation

    with pg_db.transaction() as s:
        user = create_user(s, UserInput(email="ix@staff.example", name="Ix", password="pw-123456789", is_admin=True))
        save_relation(s, RelationInput(name="Café Zoë"))
        s.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table: make the planner show it can
        terms = service.read_terms("zoë", folded=s.scalar(select(func.hub_fold("zoë"))))
        assert terms is not None and terms.folded == "zoe"
        match = service._Match(sqlite=False)
        for model, column, index in [
            (Relation, Relation.name, "ix_search_relation_name"),
            (Contact, Contact.name, "ix_search_contact_name"),
            (Project, Project.free_text_2, "ix_search_project_free_text_2"),
            (Email, Email.subject, "ix_search_email_subject"),
        ]:
            query = select(model.id).where(match.contains(column, terms.contains))
            compiled = query.compile(s.bind, compile_kwargs={"literal_binds": True})
            plan = "\n".join(s.scalars(text(f"EXPLAIN {compiled}")))
            assert index in plan, plan
        assert [r.name for r in service.search(s, user, "CAFE", kinds=("relations",)).groups[1].items] == ["Café Zoë"]


def test_sqlite_index_is_filled_from_existing_rows_and_goes_down_and_up(tmp_path: Path) -> None:
    """Migration 0014 indexes the rows already there; down, the tables and triggers go and writing
    still works; up again, what was written meanwhile is indexed too."""
    url = f"sqlite:///{tmp_path / 'index.db'}"
    upgrade(url, "0013")
    database = Database(url)
    try:
        with database.transaction() as s:
            user = create_user(s, UserInput(email="m@staff.example", name="M", password="pw-123456789"))
            save_relation(s, RelationInput(name="Bakkerij Zoë", city="Zierikzee"))
        upgrade(url)
        with database.transaction() as s:
            assert s.scalar(text("SELECT count(*) FROM search_relation WHERE search_relation MATCH '\"zoe\"'")) == 1
            assert [r.name for r in search(s, user, "bakkerij zoe", kinds=("relations",)).groups[1].items] == [
                "Bakkerij Zoë"
            ]
        command.downgrade(alembic_config(url), "0013")
        with database.transaction() as s:
            leftovers = s.scalars(text("SELECT name FROM sqlite_master WHERE name LIKE 'search_%'")).all()
            assert leftovers == []
            save_relation(s, RelationInput(name="Zeeuwse Bakkerij"))
        upgrade(url)
        with database.transaction() as s:
            assert {r.name for r in search(s, user, "bakkerij", kinds=("relations",)).groups[1].items} == {
                "Bakkerij Zoë",
                "Zeeuwse Bakkerij",
            }
    finally:
        database.dispose()


def test_sqlite_answers_from_its_index(db: Database) -> None:
    """No search statement reads a searched table from end to end (SQLite's plan says SCAN for that);
    texts of one or two characters excepted, which scan the index's folded copies."""
    from sqlalchemy import event

    from hub.crm.relations import ContactInput, save_contact
    from hub.mail.privacy import email_visible

    searched = {"relation", "contact", "email_address", "phone_number", "project", "email"}
    with db.transaction() as s:
        user = create_user(s, UserInput(email="plan@staff.example", name="Plan", password="pw-123456789"))
        relation = save_relation(s, RelationInput(name="Bakkerij Zoë", phones=["020 123 4567"]))
        save_contact(s, relation, ContactInput(name="Piet Bakker", emails=["piet@bakker.example"]))
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        for typed, kinds in [
            ("bakker", KINDS),
            ("zoe", ("contacts",)),
            ("020 123", KINDS),
            ("1234", KINDS),
            ("42", KINDS),
        ]:
            with db.transaction() as s:
                search(s, s.get_one(User, user.id), typed, kinds=kinds, emails_visible=email_visible)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    with db.transaction() as s:
        for statement, parameters in statements:
            plan = [row[3] for row in s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
            scans = [step for step in plan if step.startswith("SCAN ") and step.split()[1] in searched]
            assert scans == [], (statement, plan)
