"""Webhook subscriptions as the settings pages use them: make, change, delete, test, read the log."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from hub.errors import NotFound, ValidationError
from hub.i18n import _
from hub.models import User
from hub.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookSubscription
from hub.net import refused_address
from hub.secrets import encrypt
from hub.webhooks.catalog import TEST_EVENT, event_names
from hub.webhooks.outbox import add_and_send, new_delivery

MAX_URL = 2000


@dataclass
class SubscriptionInput:
    url: str
    events: list[str] = field(default_factory=list)
    name: str = ""
    owner_id: int | None = None
    active: bool = True


def _validate(session: Session, data: SubscriptionInput, allowed_hosts: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    data.url = data.url.strip()
    data.name = data.name.strip()
    parts = urlsplit(data.url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    if parts.scheme not in ("http", "https") or not parts.hostname or not port or len(data.url) > MAX_URL:
        errors["url"] = _("Enter a URL that starts with https:// (or http://).")
    elif parts.username or parts.password:
        # The signature proves who sends; a password in the URL would sit in logs and in this page.
        errors["url"] = _("Leave user name and password out of the URL: the signature shows the receiver it is hub.")
    else:
        refused = refused_address(parts.hostname, port, allowed_hosts)
        if refused:
            errors["url"] = refused
    known = set(event_names())
    if not data.events:
        errors["events"] = _("Choose at least one event.")
    elif any(name not in known for name in data.events):
        errors["events"] = _("Choose events from the list.")
    if len(data.name) > 120:
        errors["name"] = _("At most %(n)s characters.", n=120)
    owner = session.get(User, data.owner_id) if data.owner_id is not None else None
    if owner is None or not owner.is_active:
        errors["owner_id"] = _("Choose an active user.")
    return errors


def create_subscription(
    session: Session, data: SubscriptionInput, *, by: User, secret_key: str, allowed_hosts: str
) -> tuple[WebhookSubscription, str]:
    """Make a subscription; returns it and its signing secret, which is shown this once only."""
    if data.owner_id is None:
        data.owner_id = by.id
    errors = _validate(session, data, allowed_hosts)
    if errors:
        raise ValidationError(errors)
    secret = "whsec_" + secrets.token_urlsafe(32)
    subscription = WebhookSubscription(
        name=data.name,
        url=data.url,
        events=",".join(sorted(set(data.events), key=event_names().index)),
        owner_id=data.owner_id,
        created_by_id=by.id,
        secret_encrypted=encrypt(secret_key, secret),
        active=data.active,
    )
    session.add(subscription)
    session.flush()
    return subscription, secret


def update_subscription(
    session: Session, subscription: WebhookSubscription, data: SubscriptionInput, *, allowed_hosts: str
) -> WebhookSubscription:
    errors = _validate(session, data, allowed_hosts)
    if errors:
        raise ValidationError(errors)
    subscription.name = data.name
    subscription.url = data.url
    subscription.events = ",".join(sorted(set(data.events), key=event_names().index))
    assert data.owner_id is not None
    subscription.owner_id = data.owner_id
    subscription.active = data.active
    session.flush()
    return subscription


def new_secret(session: Session, subscription: WebhookSubscription, *, secret_key: str) -> str:
    """Replace the signing secret (the old one stops working at once); the new one is shown once."""
    secret = "whsec_" + secrets.token_urlsafe(32)
    subscription.secret_encrypted = encrypt(secret_key, secret)
    session.flush()
    return secret


def get_subscription(session: Session, subscription_id: int) -> WebhookSubscription:
    found = session.get(WebhookSubscription, subscription_id)
    if found is None:
        raise NotFound(subscription_id)
    return found


def all_subscriptions(session: Session) -> list[WebhookSubscription]:
    query = (
        select(WebhookSubscription)
        .options(selectinload(WebhookSubscription.owner))
        .order_by(WebhookSubscription.name, WebhookSubscription.id)
    )
    return list(session.scalars(query))


def delete_subscription(session: Session, subscription: WebhookSubscription) -> None:
    """Delete it with its deliveries and their log (the database cascades)."""
    session.delete(subscription)
    session.flush()


def send_test_event(session: Session, subscription: WebhookSubscription) -> int:
    """Queue a ``hub.test`` delivery (sent once committed, like any other); its id."""
    data = {"subscription_id": subscription.id, "message": "This is a test event from hub."}
    return add_and_send(session, [new_delivery(subscription.id, TEST_EVENT, data)])[0]


@dataclass(frozen=True)
class LogEntry:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


def delivery_log(session: Session, subscription: WebhookSubscription, limit: int = 50) -> list[LogEntry]:
    """The subscription's latest deliveries, newest first, each with its attempts (two queries)."""
    deliveries = list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == subscription.id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )
    attempts: dict[int, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        for attempt in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(attempts))
            .order_by(WebhookAttempt.number.desc(), WebhookAttempt.id.desc())
        ):
            attempts[attempt.delivery_id].append(attempt)
    return [LogEntry(d, attempts[d.id]) for d in deliveries]


def delivery_counts(session: Session) -> dict[int, dict[str, int]]:
    """Per subscription: how many deliveries are pending, delivered, failed."""
    counts: dict[int, dict[str, int]] = {}
    for subscription_id, status, n in session.execute(
        select(WebhookDelivery.subscription_id, WebhookDelivery.status, func.count()).group_by(
            WebhookDelivery.subscription_id, WebhookDelivery.status
        )
    ):
        counts.setdefault(subscription_id, {})[status] = n
    return counts
