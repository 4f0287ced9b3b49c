"""Migration 0010 (search) goes down and up again on SQLite and on PostgreSQL, and search works after."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from hub.accounts.users import UserInput, create_user
from hub.crm.relations import RelationInput, save_relation
from hub.crm.search import search
from hub.db import Database
from hub.migrate import alembic_config, upgrade
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
