"""Sending a delivery: signed, to an address checked the way mail hosts are, retried with backoff.

Signature (the README and the settings page describe it for receivers)::

    X-Hub-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>

The timestamp is signed with the body, so a receiver that refuses a ``t`` older than a few minutes
cannot be fed a recorded delivery again; ``X-Hub-Delivery`` (also the body's ``id``) is the same on
every retry of one event, so a receiver can drop a repeat.

The receiving URL is an address a user typed: like a mailbox host it must resolve to public
addresses only, unless an administrator allowed it in ``HUB_MAIL_ALLOWED_HOSTS`` (hub.net, one
list); the connection goes to the checked address, not to a fresh look-up (no DNS rebinding), and
redirects are not followed (a redirect could point anywhere).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from hub.claims import try_claim
from hub.db import Database
from hub.i18n import N_, english
from hub.models.base import utcnow
from hub.models.webhooks import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookSubscription
from hub.net import AddressRefused, NotAWebAddress, pinned_http
from hub.secrets import SecretUnreadable, decrypt

log = logging.getLogger(__name__)

# Wait after failed attempt 1, 2, …: 1 min, 5 min, 30 min, 2 h, 6 h, 13 h — the last attempt comes
# about 22 hours after the first; when it fails too, the delivery is failed.
RETRY_DELAYS: tuple[float, ...] = (60, 300, 1800, 7200, 21600, 46800)
TIMEOUT_SECONDS = 10.0
SIGNATURE_TOLERANCE = 300  # what the README advises receivers to accept
USER_AGENT = "hub-webhooks/1"
KEEP_LOG_DAYS = 30  # a finished delivery stays in the delivery log this long (see prune_log)


def signature(secret: str, timestamp: int, body: str) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under ``secret``."""
    return hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()


def signature_header(secret: str, body: str, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


def verify_signature(secret: str, header: str, body: str, *, tolerance: int = SIGNATURE_TOLERANCE) -> bool:
    """What a receiver does (shown in the README): check the HMAC and that ``t`` is recent."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        t = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(time.time() - t) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, t, body), parts.get("v1", ""))


@dataclass(frozen=True)
class Outcome:
    """One attempt: the receiver's status code (None if none came) and why it failed ("" if not)."""

    status_code: int | None
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return not self.error


def post(url: str, body: str, headers: dict[str, str], *, allowed_hosts: str, timeout: float) -> Outcome:
    """POST ``body`` to ``url`` once, pinned to checked addresses; never raises. ``timeout`` bounds
    the whole exchange, however slowly the receiver drips its answer (hub.net), so a delivery ends
    well inside its claim's lease and no second worker sends the same attempt meanwhile."""
    started = time.monotonic()

    def done(code: int | None, error: str) -> Outcome:
        return Outcome(code, error, int((time.monotonic() - started) * 1000))

    try:
        connection, path = pinned_http(url, allowed_hosts, timeout)
    except NotAWebAddress:
        return done(None, N_("The URL must start with http:// or https:// and name a host."))
    except AddressRefused as refused:
        return done(None, str(refused))
    except (OSError, ValueError, UnicodeError):
        return done(None, N_("The host name %(host)s cannot be found.", host=urlsplit(url).hostname or ""))
    try:
        connection.request("POST", path, body=body.encode(), headers=headers)
        response = connection.getresponse()
        response.read(64 * 1024)  # a polite read; what the receiver says is not kept
        status = response.status
    except ssl.SSLCertVerificationError as exc:
        return done(None, N_("The receiver's certificate is not valid: %(reason)s.", reason=exc.verify_message or ""))
    except ssl.SSLError as exc:
        return done(None, N_("The secure connection failed: %(reason)s.", reason=str(exc.reason or exc)))
    except TimeoutError:
        return done(None, N_("The receiver did not answer within %(seconds)s seconds.", seconds=f"{timeout:g}"))
    except ConnectionRefusedError:
        return done(None, N_("The receiver refused the connection (nothing listens at that address and port)."))
    except (OSError, http.client.HTTPException) as exc:
        return done(None, N_("The connection failed: %(reason)s.", reason=str(exc) or type(exc).__name__))
    finally:
        connection.close()
    if 200 <= status < 300:
        return done(status, "")
    if 300 <= status < 400:
        return done(
            status,
            N_(
                "The receiver answered %(code)s, a redirect; hub does not follow redirects (use the final URL).",
                code=status,
            ),
        )
    return done(status, N_("The receiver answered %(code)s.", code=status))


def due_deliveries(session: Session, limit: int = 500) -> list[int]:
    """Deliveries whose (next) attempt is due and that nobody is sending: beat's sweep sends these."""

    now = utcnow()
    query = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status == DeliveryStatus.pending.value,
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def deliver(
    db: Database,
    delivery_id: int,
    *,
    secret_key: str,
    allowed_hosts: str,
    delays: Sequence[float] = RETRY_DELAYS,
    timeout: float = TIMEOUT_SECONDS,
) -> str | None:
    """Make the next attempt of a due delivery; its status afterwards, or None when it was not ours
    to send (not due, already delivered or failed, or another worker is sending it).

    The network call happens outside any transaction; the claim keeps a second worker (a duplicated
    message, the sweep) from sending the same attempt twice.
    """
    now = utcnow()
    claim = try_claim(
        db,
        WebhookDelivery,
        delivery_id,
        WebhookDelivery.status == DeliveryStatus.pending.value,
        or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= now),
        lease=timedelta(seconds=max(45.0, timeout * 3)),
    )
    if claim is None:
        return None
    with db.transaction() as session:
        delivery = session.get_one(WebhookDelivery, delivery_id)
        subscription = session.get(WebhookSubscription, delivery.subscription_id)
        attempt = delivery.attempts + 1
        body, event_name, event_id = delivery.body, delivery.event, delivery.event_id
        url = subscription.url if subscription else ""
        active = bool(subscription and subscription.active)
        secret_encrypted = subscription.secret_encrypted if subscription else ""
    if not active:
        outcome = Outcome(None, "The subscription is switched off; the delivery was not sent.", 0)
        return _finish(db, claim.token, delivery_id, attempt, outcome, final=True, delays=delays)
    try:
        secret = decrypt(secret_key, secret_encrypted)
    except SecretUnreadable:
        outcome = Outcome(None, N_("The signing secret cannot be read (HUB_SECRET_KEY changed); make a new secret."), 0)
        return _finish(db, claim.token, delivery_id, attempt, outcome, final=False, delays=delays)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Hub-Event": event_name,
        "X-Hub-Delivery": event_id,
        "X-Hub-Attempt": str(attempt),
        "X-Hub-Signature": signature_header(secret, body),
    }
    outcome = post(url, body, headers, allowed_hosts=allowed_hosts, timeout=timeout)
    if not outcome.ok:
        # Plain words, never the secret or the body.
        log.info("webhook delivery %s attempt %s: %s", delivery_id, attempt, english(outcome.error))
    return _finish(db, claim.token, delivery_id, attempt, outcome, final=False, delays=delays)


def _finish(
    db: Database, token: str, delivery_id: int, attempt: int, outcome: Outcome, *, final: bool, delays: Sequence[float]
) -> str | None:
    """Record the attempt and what comes next, if the claim is still this run's."""
    now = utcnow()
    values: dict[str, object] = {
        "attempts": attempt,
        "last_attempt_at": now,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "claimed_until": None,
        "claimed_by": "",
    }
    if outcome.ok:
        values.update(status=DeliveryStatus.delivered.value, delivered_at=now, next_attempt_at=None)
    elif final or attempt > len(delays):
        values.update(status=DeliveryStatus.failed.value, next_attempt_at=None)
    else:
        values.update(next_attempt_at=now + timedelta(seconds=delays[attempt - 1]))
    with db.transaction() as session:
        result = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.claimed_by == token)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return None  # overtaken after the lease ran out: the other run records its own attempt
        session.execute(
            insert(WebhookAttempt).values(
                delivery_id=delivery_id,
                number=attempt,
                at=now,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
    return str(values.get("status", DeliveryStatus.pending.value))


def prune_log(db: Database, *, keep_days: int = KEEP_LOG_DAYS, batch: int = 1000) -> int:
    """Forget finished deliveries (delivered, or failed after their last retry) made more than
    ``keep_days`` ago, with their attempts: the log shows what happened lately, and a busy hub writes
    thousands of deliveries a day. One still waiting for a retry is kept whatever its age. In
    batches, each its own transaction, so the tidy-up never holds a long lock. Returns how many."""
    cutoff = utcnow() - timedelta(days=keep_days)
    removed = 0
    while True:
        with db.transaction() as session:
            ids = session.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.status != DeliveryStatus.pending.value, WebhookDelivery.created_at < cutoff)
                .order_by(WebhookDelivery.id)
                .limit(batch)
            ).all()
            if not ids:
                return removed
            session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
            session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
        removed += len(ids)


def send_due(
    db: Database,
    *,
    secret_key: str,
    allowed_hosts: str,
    delays: Sequence[float] = RETRY_DELAYS,
    timeout: float = TIMEOUT_SECONDS,
) -> int:
    """Send every due delivery here and now (no broker: the CLI and tests); how many were attempted."""
    with db.transaction() as session:
        ids = due_deliveries(session)
    sent = 0
    for delivery_id in ids:
        status = deliver(
            db, delivery_id, secret_key=secret_key, allowed_hosts=allowed_hosts, delays=delays, timeout=timeout
        )
        sent += status is not None
    return sent
