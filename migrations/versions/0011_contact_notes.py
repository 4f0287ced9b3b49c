"""Contact notes and visit reports; why an e-mail was filed where it is

Revision ID: 0011
Revises: 0010

- ``contact_note``: dated conversation notes and visit reports on a contact (author, version).
- ``email_project_undone``: a link the matching rules made (the relation's single open project) that
  someone undid; remembered so a later sync or a new contact does not put it back. Why a link was
  made is already on the link row (``email_project.how``: token, thread, single-open, one-off, manual).
- ``setting``: installation-wide switches an admin sets (first: the single-open-project rule).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_contact_note_contact_id_contact"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["user.id"], name=op.f("fk_contact_note_author_id_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_note")),
    )
    op.create_index("ix_contact_note_contact_date", "contact_note", ["contact_id", "date"])
    op.create_index(op.f("ix_contact_note_author_id"), "contact_note", ["author_id"])
    op.create_table(
        "email_project_undone",
        sa.Column("email_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("how", sa.String(length=20), nullable=False),
        sa.Column("undone_by_id", sa.Integer(), nullable=True),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["email_id"], ["email.id"], name=op.f("fk_email_project_undone_email_id_email"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_email_project_undone_project_id_project"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["undone_by_id"], ["user.id"], name=op.f("fk_email_project_undone_undone_by_id_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("email_id", "project_id", name=op.f("pk_email_project_undone")),
    )
    op.create_index(op.f("ix_email_project_undone_project_id"), "email_project_undone", ["project_id"])
    op.create_table(
        "setting",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_setting")),
    )


def downgrade() -> None:
    op.drop_table("setting")
    op.drop_index(op.f("ix_email_project_undone_project_id"), table_name="email_project_undone")
    op.drop_table("email_project_undone")
    op.drop_index(op.f("ix_contact_note_author_id"), table_name="contact_note")
    op.drop_index("ix_contact_note_contact_date", table_name="contact_note")
    op.drop_table("contact_note")
