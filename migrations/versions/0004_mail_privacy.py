"""mail privacy and health: mailbox sharing, the mailboxes an e-mail came from, message kinds,
quarantine raw, short renewed claims and sync progress

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 13:00:00

Existing personal mailboxes start as "only me": their owners never chose to share, and a colleague
could steer their mail onto his own relations. They switch sharing on in the mailbox's settings.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mailbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sharing", sa.String(length=20), nullable=False, server_default="only_me"))
        batch_op.add_column(sa.Column("never_share", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=80), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("progress_done", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("progress_total", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_progress_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=80), nullable=False, server_default=""))
    with op.batch_alter_table("email", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=20), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("details", sa.Text(), nullable=False, server_default=""))
        batch_op.create_index("ix_email_message_id", ["message_id"], unique=False)
    with op.batch_alter_table("mail_quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw_pack", sa.String(length=40), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("raw_offset", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("raw_length", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("retry", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "mailbox_email",
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("email_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("withheld", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.ForeignKeyConstraint(
            ["email_id"], ["email.id"], name=op.f("fk_mailbox_email_email_id_email"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"], ["mailbox.id"], name=op.f("fk_mailbox_email_mailbox_id_mailbox"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("mailbox_id", "email_id", name=op.f("pk_mailbox_email")),
    )
    with op.batch_alter_table("mailbox_email", schema=None) as batch_op:
        batch_op.create_index("ix_mailbox_email_email_id", ["email_id"], unique=False)
    op.create_table(
        "service_heartbeat",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_heartbeat")),
    )
    # Where the mail already stored came from (its locations).
    op.execute(
        "INSERT INTO mailbox_email (mailbox_id, email_id, size, private, withheld) "
        "SELECT DISTINCT mail_folder.mailbox_id, email_location.email_id, 0, false, false "
        "FROM email_location JOIN mail_folder ON mail_folder.id = email_location.folder_id"
    )


def downgrade() -> None:
    op.drop_table("service_heartbeat")
    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
    with op.batch_alter_table("mailbox_email", schema=None) as batch_op:
        batch_op.drop_index("ix_mailbox_email_email_id")
    op.drop_table("mailbox_email")
    with op.batch_alter_table("mail_quarantine", schema=None) as batch_op:
        for name in ("retry", "raw_length", "raw_offset", "raw_pack"):
            batch_op.drop_column(name)
    with op.batch_alter_table("email", schema=None) as batch_op:
        batch_op.drop_index("ix_email_message_id")
        batch_op.drop_column("details")
        batch_op.drop_column("kind")
    with op.batch_alter_table("mailbox", schema=None) as batch_op:
        for name in ("last_progress_at", "progress_total", "progress_done", "claimed_by"):
            batch_op.drop_column(name)
        batch_op.drop_column("never_share")
        batch_op.drop_column("sharing")
