"""The outbox: a delivery row per subscription for every event it wants, in the changing transaction.

The CRM core announces what changed (:class:`~hub.crm.events.RecordChanged`,
:class:`~hub.crm.events.EmailsLinked`); :mod:`hub.wiring` subscribes the functions below. A delivery
is only written when the subscription's owner may see the object (hub.crm.access; e-mail by the mail
rule): an event about a hidden object writes nothing, so no receiver learns it exists.

When: a deletion is judged at once (the object is still there to read); a creation, change or link
is collected and judged just before the transaction commits, so what is delivered is what was
committed — a project saved and then linked to its users in the same request is judged as linked,
and a synced e-mail is judged once the mailbox it came from is recorded (the mail rule's anchor).
Once committed, the deliveries are handed to the sender (a Celery task, see :func:`set_waker`);
if that fails, beat's sweep sends them (:func:`hub.webhooks.delivery.due_deliveries`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hub.crm.events import EmailsLinked, RecordChanged
from hub.db import after_commit, among, insert_ignore_returning
from hub.models import Call
from hub.models.base import utcnow
from hub.models.webhooks import WebhookDelivery, WebhookSubscription
from hub.webhooks.catalog import KINDS

log = logging.getLogger(__name__)

_PENDING = "hub_webhook_pending"  # session.info: (kind, id, action) judged before commit
_NEW = "hub_webhook_new"  # session.info: ids of deliveries written in this transaction
_waker: Callable[[list[int]], None] | None = None
_listening = False


def set_waker(waker: Callable[[list[int]], None] | None) -> None:
    """What hands committed deliveries to the sender (the Celery app registers its task). Without one
    (the CLI, tests calling services), beat's sweep sends them."""
    global _waker
    _waker = waker


def record_change(session: Session, event: RecordChanged) -> None:
    """Subscriber of :class:`RecordChanged` (wired in hub.wiring)."""
    if event.kind not in KINDS:
        return
    if event.action == "deleted":
        # Judged now: after the DELETE there is nothing left to judge or to describe.
        write_deliveries(session, event.kind, "deleted", [event.id])
        return
    _pending(session).append((event.kind, event.id, event.action))


def record_links(session: Session, event: EmailsLinked) -> None:
    """Subscriber of :class:`EmailsLinked` (wired in hub.wiring)."""
    if event.items:
        _pending(session).extend(("email", item.email_id, "linked") for item in event.items)


# Calls are told while they are news: one that started longer ago than this is history (a first
# import of a year of call records, a contact import linking a year of calls), which a receiver
# reads through GET /api/v1/calls?since=… instead of hundreds of thousands of deliveries.
RECENT_CALLS = timedelta(hours=24)


def record_calls(session: Session, action: str, call_ids: Iterable[int], *, told: Iterable[int] = ()) -> None:
    """Calls stored (``action`` "created", by every import path) or linked anew ("updated"), in the
    storing transaction: told to the subscriptions to ``call.<action>`` whose owner may see them,
    when they started within :data:`RECENT_CALLS` (``told``: calls a user linked by hand, told
    whenever they started). Without such a subscription this is one query, and none of the calls
    is read (an import stays a bulk insert)."""
    ids, always = list(call_ids), set(told)
    if not (ids or always) or not _subscriptions(session, f"call.{action}"):
        return
    recent = (
        set(
            session.scalars(
                select(Call.id).where(among(session, Call.id, ids), Call.started_at >= utcnow() - RECENT_CALLS)
            )
        )
        if ids
        else set()
    )
    _pending(session).extend(("call", call_id, action) for call_id in sorted(recent | always))


def _listen() -> None:
    global _listening
    if not _listening:
        # Once per process, for every session: cheap when nothing is pending (one dict look-up).
        sa_event.listen(Session, "before_commit", _before_commit)
        sa_event.listen(Session, "after_commit", _forget)
        sa_event.listen(Session, "after_rollback", _forget)
        _listening = True


def _pending(session: Session) -> list[tuple[str, int, str]]:
    _listen()
    pending: list[tuple[str, int, str]] = session.info.setdefault(_PENDING, [])
    return pending


def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_NEW, None)


def _before_commit(session: Session) -> None:
    pending: list[tuple[str, int, str]] = session.info.pop(_PENDING, [])
    if not pending:
        return
    # One delivery per object and event: saved twice in one transaction is told once, and a
    # creation that was then changed is still a creation.
    grouped: dict[tuple[str, str], dict[int, None]] = {}  # ordered sets
    created = {(kind, object_id) for kind, object_id, action in pending if action == "created"}
    for kind, object_id, action in pending:
        if action == "updated" and (kind, object_id) in created:
            continue
        grouped.setdefault((kind, action), {})[object_id] = None
    for (kind, action), ids in grouped.items():
        write_deliveries(session, kind, action, list(ids))


def _subscriptions(session: Session, event_name: str) -> list[WebhookSubscription]:
    # LIKE narrows in the database; the exact test below keeps "project.created" from matching
    # a hypothetical "project.created_x".
    rows = session.scalars(
        select(WebhookSubscription)
        .where(WebhookSubscription.active, WebhookSubscription.events.like(f"%{event_name}%"))
        .options(selectinload(WebhookSubscription.owner))
    )
    return [row for row in rows if event_name in row.event_list]


def write_deliveries(session: Session, kind: str, action: str, ids: Iterable[int]) -> list[int]:
    """Write a delivery for each subscription to ``kind.action`` whose owner may see the object;
    returns the new deliveries' ids (sent once the transaction commits)."""
    event_name = f"{kind}.{action}"
    ids = list(ids)
    subscriptions = _subscriptions(session, event_name) if ids else []
    rows: list[dict[str, Any]] = []
    for subscription in subscriptions:
        visible = KINDS[kind].load(session, subscription.owner, ids)
        for object_id in ids:
            data = visible.get(object_id)
            if data is not None:
                rows.append(_delivery_values(subscription.id, event_name, data))
    if not rows:
        return []
    # In bulk (COPY on PostgreSQL), not an ORM object per row: a busy day's calls imported at once
    # are thousands of deliveries in the import's transaction (hub.telephony.ingest). Event ids
    # are new uuids: the "ignore" never skips one.
    inserted = insert_ignore_returning(session, WebhookDelivery, rows, ["event_id"], ["id"])
    return _sent_once_committed(session, [delivery_id for (delivery_id,) in inserted])


def _delivery_values(subscription_id: int, event_name: str, data: dict[str, Any]) -> dict[str, Any]:
    """A delivery's columns, its body fixed now: every retry sends these same bytes."""
    event_id = "evt_" + uuid.uuid4().hex
    body = json.dumps(
        {"id": event_id, "type": event_name, "occurred_at": utcnow().isoformat(), "data": data},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return {"subscription_id": subscription_id, "event_id": event_id, "event": event_name, "body": body}


def new_delivery(subscription_id: int, event_name: str, data: dict[str, Any]) -> WebhookDelivery:
    """A delivery whose body is fixed now: every retry sends these same bytes."""
    return WebhookDelivery(**_delivery_values(subscription_id, event_name, data))


def _add(session: Session, rows: list[WebhookDelivery]) -> list[int]:
    if not rows:
        return []
    session.add_all(rows)
    session.flush()
    return _sent_once_committed(session, [row.id for row in rows])


def _sent_once_committed(session: Session, ids: list[int]) -> list[int]:
    """Hand these new deliveries to the sender once the transaction commits."""
    if not ids:
        return []
    _listen()
    new: list[int] = session.info.setdefault(_NEW, [])
    if not new:
        after_commit(session, lambda: _wake(new))
    new.extend(ids)
    return ids


def add_and_send(session: Session, rows: list[WebhookDelivery]) -> list[int]:
    """Write deliveries made elsewhere (the test event) and send them once committed."""
    return _add(session, rows)


def _wake(ids: list[int]) -> None:
    if _waker is None or not ids:
        return
    try:
        _waker(list(ids))
    except Exception as exc:  # the broker away: the rows are committed, beat's sweep sends them
        log.warning("could not hand %s webhook deliveries to a worker (%s); the sweep will", len(ids), exc)
