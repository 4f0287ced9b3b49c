"""Campaigns: target groups, campaigns, mailings, the per-recipient ledger, suppression and bounces.

The ledger (:class:`MailingRecipient`) is what makes a mailing exactly-once: one row per
(mailing, contact), filled in one statement when the mailing starts, claimed in chunks with a
conditional UPDATE and marked sent right after the relay accepts the message
(research/campaigns_and_celery.md §A7). States are plain strings so rows can be bulk-inserted.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.models.base import Base, Timestamps, utcnow
from hub.models.users import User


class MailingState(enum.StrEnum):
    draft = "draft"
    scheduled = "scheduled"
    sending = "sending"
    sent = "sent"
    paused = "paused"
    cancelled = "cancelled"


class RecipientStatus(enum.StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    skipped = "skipped"


class SuppressionReason(enum.StrEnum):
    unsubscribed = "unsubscribed"
    hard_bounce = "hard_bounce"
    soft_bounces = "soft_bounces"
    complaint = "complaint"
    manual = "manual"


class TargetGroup(Timestamps, Base):
    """A saved selection of contacts: by rules over relations, contacts and projects (``rules`` JSON),
    or a static list imported from CSV (``static``); minus the contacts of its exclusion groups."""

    __tablename__ = "target_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    static: Mapped[bool] = mapped_column(default=False)
    rules: Mapped[str] = mapped_column(Text, default="{}")
    # GDPR: only contacts who consented to marketing mail, unless the group says otherwise (e.g. a
    # service announcement to customers); checked again at send time.
    consent_required: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(default=1, server_default="1")


class TargetGroupExclusion(Base):
    __tablename__ = "target_group_exclusion"

    group_id: Mapped[int] = mapped_column(ForeignKey("target_group.id", ondelete="CASCADE"), primary_key=True)
    excluded_id: Mapped[int] = mapped_column(ForeignKey("target_group.id", ondelete="CASCADE"), primary_key=True)


class TargetGroupMember(Base):
    """A contact on a static list."""

    __tablename__ = "target_group_member"

    group_id: Mapped[int] = mapped_column(ForeignKey("target_group.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, index=True)


class Campaign(Timestamps, Base):
    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    goal: Mapped[str] = mapped_column(Text, default="")
    starts_on: Mapped[date | None] = mapped_column(default=None)
    ends_on: Mapped[date | None] = mapped_column(default=None)
    budget_planned: Mapped[Decimal | None] = mapped_column(Numeric(14, 2), default=None)
    costs_actual: Mapped[Decimal | None] = mapped_column(Numeric(14, 2), default=None)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    # Printed material (folder, flyer) for this campaign: stock and when to order more.
    material_name: Mapped[str] = mapped_column(String(200), default="")
    material_quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    material_used: Mapped[int] = mapped_column(BigInteger, default=0)
    material_reorder_level: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    mailings: Mapped[list[Mailing]] = relationship(back_populates="campaign", order_by="Mailing.id")


class Mailing(Timestamps, Base):
    """One message to a target group. The health columns carry the same names as a mailbox's, so
    :mod:`hub.claims` and :func:`hub.ops.health.work_state` apply unchanged."""

    __tablename__ = "mailing"
    __table_args__ = (Index("ix_mailing_state_scheduled", "state", "scheduled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), index=True)
    target_group_id: Mapped[int | None] = mapped_column(ForeignKey("target_group.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(String(500), default="")
    from_name: Mapped[str] = mapped_column(String(200), default="")
    from_address: Mapped[str] = mapped_column(String(254), default="")
    reply_to: Mapped[str] = mapped_column(String(254), default="")
    html_body: Mapped[str] = mapped_column(Text, default="")
    text_body: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(12), default=MailingState.draft.value)
    scheduled_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # Why sending stopped by itself (the relay refused or vanished), shown with the resume button.
    paused_reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    # Health and claim (same names as Mailbox / CallSource).
    last_error: Mapped[str] = mapped_column(Text, default="")
    failures: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    claimed_by: Mapped[str] = mapped_column(String(80), default="")
    progress_done: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_total: Mapped[int] = mapped_column(BigInteger, default=0)
    last_progress_at: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)

    campaign: Mapped[Campaign] = relationship(back_populates="mailings")
    target_group: Mapped[TargetGroup | None] = relationship()
    created_by: Mapped[User | None] = relationship()


class MailingRecipient(Base):
    """The ledger: one row per (mailing, contact), the address it was filled with and what happened."""

    __tablename__ = "mailing_recipient"
    __table_args__ = (
        UniqueConstraint("mailing_id", "contact_id", name="uq_mailing_recipient_mailing_contact"),
        # No index holds a column that claiming or marking a row changes (status, claimed_by,
        # message_id, sent_at …): PostgreSQL then updates the row in place (HOT), twice per
        # recipient, instead of adding an entry to every index each time (migration 0016, which
        # also gives the table a fill factor of 70 on PostgreSQL, the room for those updates).
        # A run claims the rows after the last one it claimed, in id order: (mailing, id).
        Index("ix_mailing_recipient_work", "mailing_id", "id"),
        Index("ix_mailing_recipient_address", "address_key"),
        # Replies and bounces quote the Message-ID, which names its row: found by primary key.
    )

    # SQLite numbers rows only for an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT for big ledgers.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailing.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(254), default="")
    address_key: Mapped[str] = mapped_column(String(254), default="")
    status: Mapped[str] = mapped_column(String(10), default=RecipientStatus.pending.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    claimed_by: Mapped[str] = mapped_column(String(100), default="")
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    # Why it failed or was skipped, or the last temporary refusal.
    error: Mapped[str] = mapped_column(Text, default="")
    # The worker stopped while this message may have been with the relay: it was sent again, so
    # the recipient may have it twice (the one case exactly-once cannot be known; see sending.py).
    in_doubt: Mapped[bool] = mapped_column(default=False)
    message_id: Mapped[str] = mapped_column(String(300), default="")
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    bounced_at: Mapped[datetime | None] = mapped_column(default=None)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(default=None)
    replied_at: Mapped[datetime | None] = mapped_column(default=None)


class Suppression(Base):
    """An address that gets no marketing mail any more; applied at send time."""

    __tablename__ = "suppression"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_key: Mapped[str] = mapped_column(String(254), unique=True)
    reason: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"), index=True)
    mailing_id: Mapped[int | None] = mapped_column(ForeignKey("mailing.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BounceEvent(Base):
    """A bounce or complaint received for an address (shown on the contact)."""

    __tablename__ = "bounce_event"
    __table_args__ = (UniqueConstraint("email_id", "address_key", name="uq_bounce_event_email_address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address_key: Mapped[str] = mapped_column(String(254), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # hard, soft, complaint
    status: Mapped[str] = mapped_column(String(20), default="")
    diagnostic: Mapped[str] = mapped_column(Text, default="")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"), index=True)
    mailing_id: Mapped[int | None] = mapped_column(ForeignKey("mailing.id", ondelete="SET NULL"), index=True)
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("mailing_recipient.id", ondelete="SET NULL"))
    email_id: Mapped[int | None] = mapped_column(ForeignKey("email.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SendRate(Base):
    """The shared rate limit of one relay: the moment its next message may leave (epoch seconds),
    moved forward by one atomic UPDATE per batch of messages, so it holds across every worker on
    SQLite and PostgreSQL alike (the generic cell rate algorithm)."""

    __tablename__ = "send_rate"

    relay: Mapped[str] = mapped_column(String(300), primary_key=True)
    next_free: Mapped[float] = mapped_column(Float(53), default=0.0)
