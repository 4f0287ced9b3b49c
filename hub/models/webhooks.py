"""Outbound webhooks: subscriptions (a URL and the events it wants), the outbox of deliveries, and the
log of every attempt to deliver one.

A delivery is written in the same transaction as the change it tells about (the outbox): a broker
that is down loses nothing, beat's sweep sends what is due. Its body is fixed when it is written, so
every retry sends the same bytes (only the signature's timestamp changes).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.models.base import Base, Timestamps, utcnow
from hub.models.users import User


class DeliveryStatus(enum.StrEnum):
    pending = "pending"  # waiting for its (next) attempt
    delivered = "delivered"  # the receiver answered 2xx
    failed = "failed"  # every retry used up, or the subscription is gone or off


class WebhookSubscription(Timestamps, Base):
    __tablename__ = "webhook_subscription"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    url: Mapped[str] = mapped_column(String(2000))
    # Event names ("relation.created", "email.linked", …), comma-separated.
    events: Mapped[str] = mapped_column(Text, default="")
    # Whose eyes the subscription has: it only hears about objects this user may see.
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), default=None)
    # The HMAC key, Fernet-encrypted (hub.secrets); shown once when the subscription is made.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)

    owner: Mapped[User] = relationship(foreign_keys=[owner_id])

    @property
    def event_list(self) -> list[str]:
        return [name for name in self.events.split(",") if name]


class WebhookDelivery(Base):
    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscription.id", ondelete="CASCADE"), index=True)
    # The event's id, in the body and in X-Hub-Delivery: a receiver drops a repeated delivery by it.
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    event: Mapped[str] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default=DeliveryStatus.pending.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # hub.claims: one sender per delivery at a time.
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    claimed_by: Mapped[str] = mapped_column(String(80), default="")

    subscription: Mapped[WebhookSubscription] = relationship()


class WebhookAttempt(Base):
    """One try to deliver: the log a subscription's page shows."""

    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_delivery.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(default=1)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(default=None)
    # Why it failed, in plain words ("" when it worked).
    error: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(default=0)
