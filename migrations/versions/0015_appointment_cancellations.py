"""Cancellations owed to people taken off an appointment

Revision ID: 0015
Revises: 0014

``appointment_cancellation``: someone removed from an appointment after an invitation by e-mail
reached him is sent a CANCEL (his own calendar keeps the appointment until told); the row says to
whom and whether it went out (``sent``, claimed before sending).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appointment_cancellation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("email_key", sa.String(length=254), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
            name=op.f("fk_appointment_cancellation_appointment_id_appointment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_cancellation")),
        sa.UniqueConstraint("appointment_id", "email_key", name="uq_appointment_cancellation_email"),
    )
    op.create_index(
        "ix_appointment_cancellation_sent", "appointment_cancellation", ["sent", "appointment_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_appointment_cancellation_sent", table_name="appointment_cancellation")
    op.drop_table("appointment_cancellation")
