"""How far a drop-folder file's records have been imported, beside where its next read starts

Revision ID: 0021
Revises: 0020

A CEL file's cursor (``call_file.offset``/``line``) stays at the first event of a channel still open,
so the next poll can read that channel whole. The calls and rejected rows after it were imported
already, and each poll (every minute, all day while anyone is on the phone) imported them again and
wrote a report of them. ``read_line`` is the line after the last record whose calls were stored: a
read from the cursor rebuilds the open channels from the records before it without importing
anything of them again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_file") as batch:
        batch.add_column(sa.Column("read_line", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("call_file") as batch:
        batch.drop_column("read_line")
