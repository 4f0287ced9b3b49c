"""Tags on relations and contacts

Revision ID: 0013
Revises: 0012

- ``tag``: a name as first typed, its case- and accent-folded key (unique: "Beurs" and "beürs" are one
  tag) and an optional colour.
- ``relation_tag``, ``contact_tag``: the links; deleting a relation, contact or tag deletes its links.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("name_key", sa.String(length=60), nullable=False),
        sa.Column("colour", sa.String(length=7), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag")),
        sa.UniqueConstraint("name_key", name=op.f("uq_tag_name_key")),
    )
    for owner in ("relation", "contact"):
        table = f"{owner}_tag"
        op.create_table(
            table,
            sa.Column(f"{owner}_id", sa.Integer(), nullable=False),
            sa.Column("tag_id", sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint(
                [f"{owner}_id"], [f"{owner}.id"], name=op.f(f"fk_{table}_{owner}_id_{owner}"), ondelete="CASCADE"
            ),
            sa.ForeignKeyConstraint(["tag_id"], ["tag.id"], name=op.f(f"fk_{table}_tag_id_tag"), ondelete="CASCADE"),
            sa.PrimaryKeyConstraint(f"{owner}_id", "tag_id", name=op.f(f"pk_{table}")),
        )
        op.create_index(op.f(f"ix_{table}_tag_id"), table, ["tag_id"])


def downgrade() -> None:
    for table in ("contact_tag", "relation_tag"):
        op.drop_index(op.f(f"ix_{table}_tag_id"), table_name=table)
        op.drop_table(table)
    op.drop_table("tag")
