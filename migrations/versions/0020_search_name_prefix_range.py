"""Search: PostgreSQL reads the names that start with the text as a range of a btree, in order

Revision ID: 0020
Revises: 0019

PostgreSQL only. A search lists first the rows whose name is the text, then those whose name starts
with it, each by folded name in code point order (hub.crm.search). The "starts with" test went
through the trigram index on ``hub_fold(name)`` (migration 0010), which proposes every row whose
name CONTAINS the text ("bakker": 8,247 of 90,000 contacts), each folded again to be checked, and
the rows starting with it were then sorted. These btree indexes hold ``hub_fold(name)`` in the "C"
collation (code point order, whatever the database's collation), so the names that start with the
text are one range of each, read in the order shown: as SQLite reads its own (migration 0018).

Relations too on ``hub_fold(name)``, not ``search_name``: that column is folded in Python
(hub.text.fold: NFKD, casefold, stripped), which is not always what PostgreSQL's ``hub_fold`` gives,
and search ranks by the latter.

SQLite: nothing (migration 0018).
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_contact_fold_name_c", "contact"),
    ("ix_project_fold_name_c", "project"),
    ("ix_relation_fold_name_c", "relation"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table in INDEXES:
        op.execute(f'CREATE INDEX IF NOT EXISTS {name} ON "{table}" (hub_fold(name) COLLATE "C")')


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _table in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
