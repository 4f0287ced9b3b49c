"""Search: SQLite reads contacts' and projects' names in folded order from an index

Revision ID: 0018
Revises: 0017

SQLite only. A search lists first the rows whose name is the text, then those whose name starts with
it, each by folded name (hub.crm.search). Relations keep their folded name in ``search_name``, which
is indexed; contacts and projects get an index on ``hub_fold(name)``, so those rows are read as a
range of it, in order, however many there are (at 300,000 contacts "bakker" matches 27,000: ranking
the matches found was what made a search slow). ``hub_fold`` is hub.text.fold, which hub.db
registers on every connection it opens; a connection without it (the sqlite3 shell) cannot write
these tables, as migration 0014's triggers already require.

PostgreSQL: nothing; its trigram indexes on ``hub_fold(name)`` (migration 0010) find a name's start,
and the rows found are sorted.
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

INDEXES = (("ix_contact_fold_name", "contact"), ("ix_project_fold_name", "project"))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    # The connection Alembic was given may not come from hub.db (which registers it on connect).
    from hub.db import sqlite_fold

    bind.connection.driver_connection.create_function("hub_fold", 1, sqlite_fold, deterministic=True)
    for name, table in INDEXES:
        op.execute(f'CREATE INDEX IF NOT EXISTS {name} ON "{table}" (hub_fold(name))')


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name, _table in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
