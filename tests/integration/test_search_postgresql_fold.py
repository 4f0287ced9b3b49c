"""Migration 0017: PostgreSQL's ``hub_fold`` is inlined (superuser) or PL/pgSQL (any other owner), folds
exactly as 0010's did, keeps the search indexes in use, and goes down and up again."""

from __future__ import annotations

import itertools

import psycopg
import pytest
from alembic import command
from sqlalchemy import create_engine, text

from hub.accounts.users import UserInput, create_user
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.crm.search import search
from hub.db import Database
from hub.migrate import alembic_config, upgrade

_names = itertools.count(1)

# Texts unaccent folds in every way it does: accents, ligatures, letters of two, other scripts, symbols.
HOSTILE = [
    "Ĳssel Straße Café",
    "ÆØÅ æøå Łódź",
    "Zoë Ångström ﬁne",
    "Ελληνικά Кириллица",
    "emoji 🍞 and tab\tand %_\\",
    "",
    "ẞ Œuvre ǅ",
]


_LANGUAGE = "SELECT lanname FROM pg_proc JOIN pg_language ON pg_language.oid = prolang WHERE proname = 'hub_fold'"


def _server_connection(server_url: str, database: str = "postgres") -> psycopg.Connection:
    port = server_url.rsplit(":", 1)[1]
    return psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname={database}", autocommit=True)


def _fold_language(url: str) -> tuple[str, bool]:
    """hub_fold's language, and whether hub_unaccent (unaccent's C function, IMMUTABLE) exists."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            language = conn.scalar(text(_LANGUAGE))
            c_function = bool(conn.scalar(text("SELECT count(*) FROM pg_proc WHERE proname = 'hub_unaccent'")))
            return str(language), c_function
    finally:
        engine.dispose()


def _assert_folds_as_unaccent(url: str) -> None:
    """hub_fold gives what 0010's body gave (lower(unaccent(…))) for every hostile text."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for value in HOSTILE:
                folded, expected = conn.execute(
                    text("SELECT hub_fold(:v), lower(unaccent('unaccent'::regdictionary, :v))"), {"v": value}
                ).one()
                assert folded == expected, value
            assert conn.scalar(text("SELECT hub_fold(NULL)")) is None
    finally:
        engine.dispose()


def _search_finds_accented_names(url: str, email: str) -> None:
    database = Database(url)
    try:
        with database.transaction() as s:
            user = create_user(s, UserInput(email=email, name="M", password="pw-123456789", is_admin=True))
            relation = save_relation(s, RelationInput(name="Ĳssel Straße Café"))
            save_contact(s, relation, ContactInput(name="Zoë Łódź"))
            relations = search(s, user, "IJSSEL STRASSE CAFE", kinds=("relations",)).group("relations")
            assert relations is not None and [r.name for r in relations.items] == ["Ĳssel Straße Café"]
            contacts = search(s, user, "zoe lodz", kinds=("contacts",)).group("contacts")
            assert contacts is not None and [c.name for c in contacts.items] == ["Zoë Łódź"]
            s.rollback()
    finally:
        database.dispose()


def test_a_superuser_gets_an_inlined_fold_that_the_indexes_still_answer(pg_db: Database) -> None:
    url = pg_db.engine.url.render_as_string(hide_password=False)
    assert _fold_language(url) == ("sql", True)
    _assert_folds_as_unaccent(url)
    with pg_db.transaction() as s:
        # Inlined: the plan shows the body, not a call of hub_fold (which cost the SQL-function executor
        # a microsecond a row), and the trigram index still matches the query's expression.
        s.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(s.scalars(text("EXPLAIN VERBOSE SELECT id FROM contact WHERE hub_fold(name) LIKE '%bakker%'")))
        assert "hub_unaccent" in plan and "hub_fold" not in plan, plan
        assert "ix_search_contact_name" in plan, plan
    _search_finds_accented_names(url, "super@staff.example")


def test_downgrade_restores_0010s_fold_and_upgrade_inlines_it_again(pg_db: Database) -> None:
    url = pg_db.engine.url.render_as_string(hide_password=False)
    pg_db.dispose()
    command.downgrade(alembic_config(url), "0016")
    assert _fold_language(url) == ("sql", False)
    _assert_folds_as_unaccent(url)
    _search_finds_accented_names(url, "down@staff.example")
    upgrade(url)
    assert _fold_language(url) == ("sql", True)
    _search_finds_accented_names(url, "up@staff.example")


@pytest.fixture
def owner_url(pg_server: str) -> str:
    """An empty database owned by a role that is no superuser (as a hosted PostgreSQL gives): it may
    create trusted extensions (unaccent, pg_trgm) but no C functions."""
    n = next(_names)
    role, name = f"hub_owner_{n}", f"hub_owned_{n}"
    with _server_connection(pg_server) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER')
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
    with _server_connection(pg_server, name) as conn:
        conn.execute(f'GRANT ALL ON SCHEMA public TO "{role}"')
    return pg_server.replace("//postgres@", f"//{role}@") + f"/{name}"


def test_an_owner_without_superuser_gets_a_plpgsql_fold(owner_url: str) -> None:
    upgrade(owner_url)
    assert _fold_language(owner_url) == ("plpgsql", False)
    _assert_folds_as_unaccent(owner_url)
    _search_finds_accented_names(owner_url, "owner@staff.example")
    command.downgrade(alembic_config(owner_url), "0016")
    assert _fold_language(owner_url) == ("sql", False)
    _search_finds_accented_names(owner_url, "owner-down@staff.example")
    upgrade(owner_url)
    assert _fold_language(owner_url) == ("plpgsql", False)


def test_a_fold_without_unaccent_is_left_as_it_is(pg_db: Database) -> None:
    """Where 0010 could not create unaccent, hub_fold is plain SQL (translate(); already inlined):
    0017 leaves it alone, up and down."""
    url = pg_db.engine.url.render_as_string(hide_password=False)
    pg_db.dispose()
    command.downgrade(alembic_config(url), "0016")
    plain = (
        "CREATE OR REPLACE FUNCTION hub_fold(text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE "
        "AS $fold$ SELECT lower(translate($1, 'éë', 'ee')) $fold$"
    )
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(plain))

        def body() -> str:
            with engine.connect() as conn:
                return str(conn.scalar(text("SELECT prosrc FROM pg_proc WHERE proname = 'hub_fold'")))

        before = body()
        upgrade(url)
        assert body() == before and _fold_language(url) == ("sql", False)
        command.downgrade(alembic_config(url), "0016")
        assert body() == before
    finally:
        engine.dispose()
