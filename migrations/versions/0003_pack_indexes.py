"""pack indexes: find the packs no row points into

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("email", schema=None) as batch_op:
        batch_op.create_index("ix_email_raw_pack", ["raw_pack"], unique=False)
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.create_index("ix_attachment_pack", ["pack"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.drop_index("ix_attachment_pack")
    with op.batch_alter_table("email", schema=None) as batch_op:
        batch_op.drop_index("ix_email_raw_pack")
