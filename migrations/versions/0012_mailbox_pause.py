"""Mailboxes that can be paused and removed

Revision ID: 0012
Revises: 0011

Pausing needs nothing new: ``mailbox.active`` already stops the sweep, the claim and the watcher.
Removing adds when the mailbox was removed and how far its removal is ("keep"/"delete" while its
folders and mail are cleared in batches, "done" once only the row is left to say whose the kept mail
is). Existing mailboxes are in use: no removal.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("removal", sa.String(length=10), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("mailbox", schema=None) as batch_op:
        batch_op.drop_column("removal")
        batch_op.drop_column("removed_at")
