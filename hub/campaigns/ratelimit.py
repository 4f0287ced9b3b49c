"""A rate limit per relay that holds across every worker: the database keeps the next free moment.

Generic cell rate algorithm with the state in one row (``send_rate``): reserving ``n`` messages is
one atomic UPDATE that moves ``next_free`` to ``max(next_free, now) + n * interval`` and returns it,
so two workers (threads, processes, machines) can never get the same slots, on SQLite (one writer)
and PostgreSQL (row lock) alike, without Redis. Slots are reserved a second's worth at a time, so the
database sees one write per batch, not per message; a slot reserved and then not used is lost,
which only ever makes sending slower than the limit, never faster.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import case, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from hub.db import Database
from hub.models.campaigns import SendRate

BATCH_SECONDS = 1.0


def reserve(db: Database, relay: str, per_minute: int, count: int, now: float | None = None) -> float:
    """Reserve ``count`` consecutive slots; returns the moment (epoch seconds) the first may be used.
    Slot i (0-based) may be used at ``start + i * 60 / per_minute``."""
    interval = 60.0 / per_minute
    now = time.time() if now is None else now
    for _attempt in range(2):
        with db.transaction() as session:
            new_free = session.execute(
                update(SendRate)
                .where(SendRate.relay == relay)
                .values(
                    next_free=case((SendRate.next_free < now, literal(now)), else_=SendRate.next_free)
                    + count * interval
                )
                .returning(SendRate.next_free)
            ).scalar()
            if new_free is not None:
                return float(new_free) - count * interval
        try:
            with db.transaction() as session:
                session.execute(insert(SendRate).values(relay=relay, next_free=0.0))
        except IntegrityError:
            pass  # another worker made the row first: the next UPDATE uses it
    raise RuntimeError("the rate limit row could not be made")  # pragma: no cover


def next_free(db: Database, relay: str) -> float:
    with db.transaction() as session:
        return float(session.scalar(select(SendRate.next_free).where(SendRate.relay == relay)) or 0.0)


class Limiter:
    """Per sending thread: hands out slots from batches reserved in the database, sleeping until each."""

    def __init__(
        self,
        db: Database,
        relay: str,
        per_minute: int,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.relay = relay
        self.per_minute = per_minute
        self.sleep = sleep
        self.clock = clock
        self._slots: list[float] = []

    def wait(self) -> None:
        """Return when the next message may leave (at once when there is no limit)."""
        if self.per_minute <= 0:
            return
        if not self._slots:
            interval = 60.0 / self.per_minute
            count = max(1, int(BATCH_SECONDS / interval))
            start = reserve(self.db, self.relay, self.per_minute, count, now=self.clock())
            self._slots = [start + i * interval for i in range(count)][::-1]
        slot = self._slots.pop()
        delay = slot - self.clock()
        if delay > 0:
            self.sleep(delay)
