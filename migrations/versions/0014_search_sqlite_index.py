"""Search: SQLite's index (FTS5 trigram tables of the folded texts, kept by triggers)

Revision ID: 0014
Revises: 0013

SQLite: one FTS5 table per searched table, ``search_<table>``, whose rowid is the row's id and whose
columns hold the searched columns folded by ``hub_fold`` (hub.text.fold: lower case, accents off),
tokenized by FTS5's ``trigram`` tokenizer. A text of three or more characters is then found as a
phrase of its trigrams (``search_contact MATCH '"bakker"'``): exactly the rows holding it as a
substring, read from the index, so a search costs what its matches cost, not what the tables hold
(at 300,000 contacts a scan took about half a second a search). Why this shape:

- the tokenizer folds no accents before SQLite 3.45 (Python's bundled SQLite here is 3.40), so it is
  given text hub has folded already, and told ``case_sensitive 1`` so that it changes nothing more
  (the typed text is folded the same way, and a substring of the one is a substring of the other);
- the tables keep their own copy of the folded text (not contentless, not external content): a row
  is removed by its rowid alone, so a changed ``hub.text.fold`` can never leave a row the index cannot
  delete, and texts of one or two characters (no trigram) are matched by a scan of these narrow
  folded copies (FTS5's ``_content`` table) with SQLite's LIKE, with no call into Python;
- triggers keep them: every write path (the services, the CSV import, the API, mail sync, the
  benchmark's seed, bulk SQL) updates the index in the same transaction without knowing of it. They
  fold with ``hub_fold``, which hub.db registers on every SQLite connection it opens: a connection
  without it (the sqlite3 shell) cannot write the searched tables;
- phone numbers are matched as a prefix of E.164 from the B-tree index on ``phone_number.e164``, bare
  digits anywhere in it from ``search_phone_number`` (always three digits or more).

What it costs: space (at the benchmark's 100,000 relations, 300,000 contacts and 200,000 projects
the database grows from 330 to 430 MB), and each indexed
row written costs some 20 µs more (FTS5 writes its pending terms out at every statement that fires a
trigger; filling it here, in one statement per table, costs a tenth of that a row). Interactive
writes do not notice; the benchmark's seed of 1.2 million indexed rows takes about 90 s longer.

A later migration that recreates one of these tables on SQLite (Alembic's batch mode copies, drops
and renames a table) drops its triggers with it and must create them again (see ``triggers``).

The tables are filled from the existing rows by INSERT … SELECT: SQLite streams the rows, none are
held in Python. The virtual tables and their shadow tables (``_data``, ``_idx``, ``_content``,
``_config``) are not described by the models; tests/integration/test_migrations.py leaves them out.

PostgreSQL: nothing; its pg_trgm GIN indexes on ``hub_fold(column)`` (migration 0010) do the same.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# (index table, table, searched columns, whether they are folded): the rowid is the table's id.
INDEXED = (
    ("search_relation", "relation", ("name", "city", "coc_number", "vat_number"), True),
    ("search_contact", "contact", ("name",), True),
    ("search_email_address", "email_address", ("address_key",), True),
    # E.164 is digits and "+": nothing to fold.
    ("search_phone_number", "phone_number", ("e164",), False),
    ("search_project", "project", ("name", "free_text_1", "free_text_2", "free_text_3", "free_text_4"), True),
    ("search_email", "email", ("subject", "from_name", "from_address"), True),
)


def _value(row: str, column: str, folded: bool) -> str:
    return f'hub_fold({row}."{column}")' if folded else f'{row}."{column}"'


def triggers(index: str, table: str, columns: tuple[str, ...], folded: bool) -> list[str]:
    """The three triggers that keep ``index`` equal to ``table``'s searched columns."""
    names = ", ".join(f'"{c}"' for c in columns)
    new_values = ", ".join(_value("new", c, folded) for c in columns)
    assignments = ", ".join(f'"{c}" = {_value("new", c, folded)}' for c in columns)
    return [
        f'CREATE TRIGGER {index}_insert AFTER INSERT ON "{table}" BEGIN '
        f"INSERT INTO {index}(rowid, {names}) VALUES (new.id, {new_values}); END",
        f'CREATE TRIGGER {index}_update AFTER UPDATE OF {names} ON "{table}" BEGIN '
        f"UPDATE {index} SET {assignments} WHERE rowid = new.id; END",
        f'CREATE TRIGGER {index}_delete AFTER DELETE ON "{table}" BEGIN DELETE FROM {index} WHERE rowid = old.id; END',
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    # The connection Alembic was given may not come from hub.db (which registers it on connect).
    from hub.db import sqlite_fold

    bind.connection.driver_connection.create_function("hub_fold", 1, sqlite_fold, deterministic=True)
    for index, table, columns, folded in INDEXED:
        names = ", ".join(f'"{c}"' for c in columns)
        # columnsize=0: no per-row sizes (only ranking by bm25 would read them), one write less a row.
        op.execute(
            f"CREATE VIRTUAL TABLE {index} USING fts5({names}, tokenize='trigram case_sensitive 1', columnsize=0)"
        )
        values = ", ".join(_value(table, c, folded) for c in columns)
        op.execute(f'INSERT INTO {index}(rowid, {names}) SELECT "{table}".id, {values} FROM "{table}"')
        for statement in triggers(index, table, columns, folded):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for index, _table, _columns, _folded in INDEXED:
        for action in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {index}_{action}")
        op.execute(f"DROP TABLE IF EXISTS {index}")
