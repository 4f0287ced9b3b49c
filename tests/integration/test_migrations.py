"""The Alembic migrations and the models agree, on SQLite and on PostgreSQL.

Each database starts empty and is migrated here (not copied from the fixtures' template), so the
test covers exactly what ``hub db upgrade`` does on a new installation.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, text

from hub.migrate import alembic_config, upgrade
from hub.models import Base

_names = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    from tests.servers import create_database

    return create_database(request.getfixturevalue("pg_server"), f"hub_empty_{next(_names)}")


def fts5_tables(conn: Connection) -> set[str]:
    """SQLite's FTS5 virtual tables and their shadow tables (FTS5 keeps an index in those)."""
    if conn.dialect.name != "sqlite":
        return set()
    virtual = conn.scalars(text("SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%USING fts5%'"))
    shadows = ("data", "idx", "content", "docsize", "config")
    return {table for name in virtual for table in (name, *(f"{name}_{shadow}" for shadow in shadows))}


def for_this_database(item: object, dialect: str) -> bool:
    """Whether a model's index is made on ``dialect``: one declared for another database only
    (Index.ddl_if, such as PostgreSQL's newest-first e-mail index) is not compared here, as
    Alembic's comparison does not know ddl_if."""
    only = getattr(item, "_ddl_if", None)
    return only is None or only.dialect is None or only.dialect == dialect


def test_migrating_an_empty_database_gives_the_models_schema(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
        upgrade(empty_url)
        with engine.connect() as conn:
            search_index = fts5_tables(conn)
            tables = set(inspect(conn).get_table_names()) - {"alembic_version"} - search_index
            assert tables == set(Base.metadata.tables)
            # SQLite's search index (migration 0014): FTS5 tables, which no model describes.
            include = {
                "include_name": lambda name, kind, _parents: kind != "table" or name not in search_index,
                "include_object": lambda item, _name, kind, reflected, _other: (
                    reflected or for_this_database(item, conn.dialect.name)
                ),
            }
            context = MigrationContext.configure(conn, opts={"compare_type": True, **include})
            head = ScriptDirectory.from_config(alembic_config(empty_url)).get_current_head()
            assert context.get_current_revision() == head
            # What `alembic revision --autogenerate` would write: nothing.
            differences = compare_metadata(context, Base.metadata)
        assert differences == [], "models changed without a migration: run alembic revision --autogenerate"
        upgrade(empty_url)  # running it again (every `make run` does) is harmless
    finally:
        engine.dispose()
