"""Campaigns: target groups, campaigns, mailings, the per-recipient ledger, suppression and consent

Revision ID: 0009
Revises: 0008

The ledger (mailing_recipient) is unique on (mailing, contact): a mailing reaches a contact once.
Contacts get marketing consent (with its source and date); existing contacts have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_rate",
        sa.Column("relay", sa.String(length=300), nullable=False),
        sa.Column("next_free", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("relay", name=op.f("pk_send_rate")),
    )
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("goal", sa.Text(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("budget_planned", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("costs_actual", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("material_name", sa.String(length=200), nullable=False),
        sa.Column("material_quantity", sa.BigInteger(), nullable=False),
        sa.Column("material_used", sa.BigInteger(), nullable=False),
        sa.Column("material_reorder_level", sa.BigInteger(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user.id"], name=op.f("fk_campaign_created_by_id_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
    )
    op.create_table(
        "target_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("static", sa.Boolean(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("consent_required", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user.id"], name=op.f("fk_target_group_created_by_id_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_target_group")),
    )
    op.create_table(
        "mailing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("target_group_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("from_name", sa.String(length=200), nullable=False),
        sa.Column("from_address", sa.String(length=254), nullable=False),
        sa.Column("reply_to", sa.String(length=254), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_reason", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=80), nullable=False),
        sa.Column("progress_done", sa.BigInteger(), nullable=False),
        sa.Column("progress_total", sa.BigInteger(), nullable=False),
        sa.Column("last_progress_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaign.id"], name=op.f("fk_mailing_campaign_id_campaign"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user.id"], name=op.f("fk_mailing_created_by_id_user"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["target_group_id"],
            ["target_group.id"],
            name=op.f("fk_mailing_target_group_id_target_group"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailing")),
    )
    op.create_index(op.f("ix_mailing_campaign_id"), "mailing", ["campaign_id"], unique=False)
    op.create_index("ix_mailing_state_scheduled", "mailing", ["state", "scheduled_at"], unique=False)
    op.create_table(
        "target_group_exclusion",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("excluded_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["excluded_id"],
            ["target_group.id"],
            name=op.f("fk_target_group_exclusion_excluded_id_target_group"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["target_group.id"],
            name=op.f("fk_target_group_exclusion_group_id_target_group"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "excluded_id", name=op.f("pk_target_group_exclusion")),
    )
    op.create_table(
        "mailing_recipient",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("mailing_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("address_key", sa.String(length=254), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("in_doubt", sa.Boolean(), nullable=False),
        sa.Column("message_id", sa.String(length=300), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_mailing_recipient_contact_id_contact"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["mailing_id"], ["mailing.id"], name=op.f("fk_mailing_recipient_mailing_id_mailing"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailing_recipient")),
        sa.UniqueConstraint("mailing_id", "contact_id", name="uq_mailing_recipient_mailing_contact"),
    )
    op.create_index("ix_mailing_recipient_address", "mailing_recipient", ["address_key"], unique=False)
    op.create_index("ix_mailing_recipient_message_id", "mailing_recipient", ["message_id"], unique=False)
    op.create_index(op.f("ix_mailing_recipient_contact_id"), "mailing_recipient", ["contact_id"], unique=False)
    op.create_index("ix_mailing_recipient_work", "mailing_recipient", ["mailing_id", "status", "id"], unique=False)
    op.create_table(
        "suppression",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_key", sa.String(length=254), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("mailing_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_suppression_contact_id_contact"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["mailing_id"], ["mailing.id"], name=op.f("fk_suppression_mailing_id_mailing"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppression")),
        sa.UniqueConstraint("address_key", name=op.f("uq_suppression_address_key")),
    )
    op.create_index(op.f("ix_suppression_contact_id"), "suppression", ["contact_id"], unique=False)
    op.create_table(
        "target_group_member",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_target_group_member_contact_id_contact"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["target_group.id"],
            name=op.f("fk_target_group_member_group_id_target_group"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "contact_id", name=op.f("pk_target_group_member")),
    )
    op.create_index(op.f("ix_target_group_member_contact_id"), "target_group_member", ["contact_id"], unique=False)
    op.create_table(
        "bounce_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_key", sa.String(length=254), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("diagnostic", sa.Text(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("mailing_id", sa.Integer(), nullable=True),
        sa.Column("recipient_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("email_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_bounce_event_contact_id_contact"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["email_id"], ["email.id"], name=op.f("fk_bounce_event_email_id_email"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["mailing_id"], ["mailing.id"], name=op.f("fk_bounce_event_mailing_id_mailing"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["mailing_recipient.id"],
            name=op.f("fk_bounce_event_recipient_id_mailing_recipient"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounce_event")),
        sa.UniqueConstraint("email_id", "address_key", name="uq_bounce_event_email_address"),
    )
    op.create_index(op.f("ix_bounce_event_address_key"), "bounce_event", ["address_key"], unique=False)
    op.create_index(op.f("ix_bounce_event_contact_id"), "bounce_event", ["contact_id"], unique=False)
    op.create_index(op.f("ix_bounce_event_mailing_id"), "bounce_event", ["mailing_id"], unique=False)
    op.add_column("contact", sa.Column("marketing_consent", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column(
        "contact", sa.Column("marketing_consent_source", sa.String(length=200), server_default="", nullable=False)
    )
    op.add_column("contact", sa.Column("marketing_consent_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contact") as batch_op:
        batch_op.drop_column("marketing_consent_at")
        batch_op.drop_column("marketing_consent_source")
        batch_op.drop_column("marketing_consent")
    op.drop_index(op.f("ix_bounce_event_mailing_id"), table_name="bounce_event")
    op.drop_index(op.f("ix_bounce_event_contact_id"), table_name="bounce_event")
    op.drop_index(op.f("ix_bounce_event_address_key"), table_name="bounce_event")
    op.drop_table("bounce_event")
    op.drop_index(op.f("ix_target_group_member_contact_id"), table_name="target_group_member")
    op.drop_table("target_group_member")
    op.drop_index(op.f("ix_suppression_contact_id"), table_name="suppression")
    op.drop_table("suppression")
    op.drop_index("ix_mailing_recipient_work", table_name="mailing_recipient")
    op.drop_index(op.f("ix_mailing_recipient_contact_id"), table_name="mailing_recipient")
    op.drop_index("ix_mailing_recipient_message_id", table_name="mailing_recipient")
    op.drop_index("ix_mailing_recipient_address", table_name="mailing_recipient")
    op.drop_table("mailing_recipient")
    op.drop_table("target_group_exclusion")
    op.drop_index("ix_mailing_state_scheduled", table_name="mailing")
    op.drop_index(op.f("ix_mailing_campaign_id"), table_name="mailing")
    op.drop_table("mailing")
    op.drop_table("target_group")
    op.drop_table("campaign")
    op.drop_table("send_rate")
