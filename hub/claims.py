"""Short claims on background work, renewed while the work runs: the one pattern every worker uses.

A unit of background work (a mailbox's sync, an import job, and later a call source, a calendar
account, a mailing) is claimed with a conditional UPDATE that sets ``claimed_until`` a short lease
ahead and ``claimed_by`` to a token of this run. While the work runs, a heartbeat thread renews the
lease; so a claim outlives its worker by one lease at most, and work whose worker was killed is taken
again within a minute — by the redelivered task message, or by beat's sweep as the safety net —
instead of waiting out a lease long enough for the slowest batch.

The renewal only extends a claim that is still this run's (``claimed_by``): a run that stalled past
its lease and was overtaken learns so (:attr:`Claim.lost`) and stops instead of working on beside
the new owner. Work stays idempotent regardless; the claim only keeps two runs from doing it twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update

from hub.db import Database
from hub.models.base import utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=45)
# Renewed three times per lease: one missed beat (a slow database moment) does not lose the claim.
BEATS_PER_LEASE = 3


def new_token() -> str:
    """Who holds a claim: host, process and run, shown on the health page while work runs."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Claim:
    """This run's claim on one row of ``model`` (a model with ``id``, ``claimed_until``, ``claimed_by``)."""

    db: Database
    model: Any
    object_id: int
    token: str
    lease: timedelta = LEASE
    lost: threading.Event = field(default_factory=threading.Event)

    def _mine(self) -> list[ColumnElement[bool]]:
        return [self.model.id == self.object_id, self.model.claimed_by == self.token]

    def renew(self) -> bool:
        """Extend the lease if the claim is still ours; False (and :attr:`lost`) if it is not."""
        with self.db.transaction() as session:
            result = session.execute(
                update(self.model)
                .where(*self._mine())
                .values(claimed_until=utcnow() + self.lease)
                .execution_options(synchronize_session=False)
            )
        if not result.rowcount:  # type: ignore[attr-defined]
            self.lost.set()
        return not self.lost.is_set()

    def release(self, **values: Any) -> bool:
        """Give the claim up (and set ``values`` with it) if it is still ours; False otherwise."""
        with self.db.transaction() as session:
            result = session.execute(
                update(self.model)
                .where(*self._mine())
                .values(claimed_until=None, claimed_by="", **values)
                .execution_options(synchronize_session=False)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def try_claim(
    db: Database, model: Any, object_id: int, *conditions: ColumnElement[bool], lease: timedelta = LEASE, **values: Any
) -> Claim | None:
    """Claim the row if nobody holds it (and ``conditions`` hold); None if it is not ours to take."""
    now = utcnow()
    token = new_token()
    with db.transaction() as session:
        result = session.execute(
            update(model)
            .where(
                model.id == object_id,
                or_(model.claimed_until.is_(None), model.claimed_until < now),
                *conditions,
            )
            .values(claimed_until=now + lease, claimed_by=token, **values)
            .execution_options(synchronize_session=False)
        )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return Claim(db, model, object_id, token, lease)


def held_until(db: Database, model: Any, object_id: int) -> datetime | None:
    """When another run's claim on the row lapses (None if nobody holds it now)."""
    with db.transaction() as session:
        until = session.scalar(select(model.claimed_until).where(model.id == object_id))
    return until if until is not None and until > utcnow() else None


@contextmanager
def heartbeat(claim: Claim) -> Iterator[Claim]:
    """Renew ``claim`` on a background thread while the block runs.

    A renewal that fails (the database briefly away) is tried again at the next beat; the lease is
    long enough for a missed beat or two. A claim found taken by another run sets ``claim.lost``.
    """
    stop = threading.Event()
    interval = claim.lease.total_seconds() / BEATS_PER_LEASE

    def beat() -> None:
        while not stop.wait(interval):
            try:
                if not claim.renew():
                    log.warning("claim on %s %s was taken over; stopping", claim.model.__name__, claim.object_id)
                    return
            except Exception as exc:  # the database may be restarting: the next beat tries again
                log.warning("could not renew the claim on %s %s: %s", claim.model.__name__, claim.object_id, exc)

    thread = threading.Thread(target=beat, name=f"claim-{claim.model.__name__}-{claim.object_id}", daemon=True)
    thread.start()
    try:
        yield claim
    finally:
        stop.set()
        thread.join(timeout=interval + 5)
