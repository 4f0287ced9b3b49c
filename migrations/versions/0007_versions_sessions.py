"""versions and sessions: a version on projects (and their notepad), relations, contacts and
activities, so a save based on an older version is refused; a session epoch per user, so logout and a
password change end every other session

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 10:00:00

Existing rows start at version 1 and epoch 0: sessions made before this migration stay valid until
the user logs out or changes his password.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSIONED = ("relation", "contact", "project", "activity")


def upgrade() -> None:
    for table in VERSIONED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
            if table == "project":
                batch_op.add_column(sa.Column("notepad_version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")
    for table in reversed(VERSIONED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table == "project":
                batch_op.drop_column("notepad_version")
            batch_op.drop_column("version")
