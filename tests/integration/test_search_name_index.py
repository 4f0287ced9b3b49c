"""Migration 0018 (SQLite's index on contacts' and projects' folded names) goes down and up again on
SQLite and on PostgreSQL (where it does nothing) with rows in the tables, SQLite reads the names that
start with a text from it, and search ranks the same after either way."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from hub.accounts.users import UserInput, create_user
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.crm.search import search
from hub.db import Database
from hub.migrate import alembic_config, upgrade
from hub.models import User

_names = itertools.count(1)
INDEXES = {"ix_contact_fold_name", "ix_project_fold_name"}


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'names.db'}"
    from tests.servers import create_database

    return create_database(request.getfixturevalue("pg_server"), f"hub_names_{next(_names)}")


def _indexes(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                query = "SELECT name FROM sqlite_master WHERE type = 'index'"
            else:
                query = "SELECT indexname FROM pg_indexes"
            return set(conn.scalars(text(query))) & INDEXES
    finally:
        engine.dispose()


def _listed(url: str, user_id: int) -> tuple[list[str], list[str]]:
    database = Database(url)
    try:
        with database.transaction() as s:
            user = s.get_one(User, user_id)
            results = search(s, user, "Bakker", kinds=("contacts", "projects"), per_page=50)
            contacts, projects = results.group("contacts"), results.group("projects")
            assert contacts is not None and projects is not None
            return [c.name for c in contacts.items], [p.name for p in projects.items]
    finally:
        database.dispose()


def test_the_name_index_goes_down_and_up_with_rows_and_search_ranks_alike(fresh_url: str) -> None:
    sqlite = fresh_url.startswith("sqlite")
    upgrade(fresh_url, "0017")
    assert _indexes(fresh_url) == set()
    database = Database(fresh_url)
    try:
        with database.transaction() as s:
            user = create_user(s, UserInput(email="n@staff.example", name="N", password="pw-123456789"))
            relation = save_relation(s, RelationInput(name="Klant"))
            for name in ("Jan Bakker", "Bakkerij Zoë", "bäkker", "Abakker", "Bakker"):
                save_contact(s, relation, ContactInput(name=name))
                save_project(s, user, ProjectInput(relation_id=relation.id, name=name))
            user_id = user.id
    finally:
        database.dispose()
    ranked = ["bäkker", "Bakker", "Bakkerij Zoë", "Jan Bakker", "Abakker"]

    upgrade(fresh_url)  # 0018: made over the rows already there
    assert _indexes(fresh_url) == (INDEXES if sqlite else set())
    assert _listed(fresh_url, user_id) == (ranked, ranked)
    if sqlite:
        engine = create_engine(fresh_url)
        try:
            with engine.connect() as conn:
                from hub.db import sqlite_fold

                conn.connection.driver_connection.create_function("hub_fold", 1, sqlite_fold, deterministic=True)  # type: ignore[union-attr]
                plan = " ".join(
                    str(row[-1])
                    for row in conn.execute(
                        text(
                            "EXPLAIN QUERY PLAN SELECT id FROM contact WHERE hub_fold(name) >= 'bakker' "
                            "AND hub_fold(name) < 'bakkes' ORDER BY hub_fold(name), id LIMIT 3"
                        )
                    )
                )
        finally:
            engine.dispose()
        assert "ix_contact_fold_name" in plan and "TEMP B-TREE" not in plan, plan

    command.downgrade(alembic_config(fresh_url), "0017")
    assert _indexes(fresh_url) == set()
    assert _listed(fresh_url, user_id) == (ranked, ranked)  # slower on SQLite, the same results
    upgrade(fresh_url)
    assert _indexes(fresh_url) == (INDEXES if sqlite else set())
    assert _listed(fresh_url, user_id) == (ranked, ranked)
