"""The truth about background work, in plain words: one state per unit of work, and the parts of the
installation it depends on.

Every unit of background work (a mailbox now; a call source, a calendar account, a mailing later)
reports one state through :func:`work_state`, from the same columns: its claim (``claimed_until``),
its progress, its failures and when it is next due. "OK" is never said while no worker is alive:
work that nobody can do is *waiting for a worker*, and work that is due but does not move is
*stalled*, so a silent stall cannot hide behind an old success.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update

from hub.db import Database
from hub.i18n import _, shown
from hub.models.base import utcnow

# No progress for this long while a sync runs, or no start this long after work fell due: stalled.
STALL_AFTER = timedelta(minutes=5)
# A worker's or beat's sign of life older than this means it is gone.
ALIVE_WITHIN = timedelta(seconds=90)


class State(enum.StrEnum):
    syncing = "syncing"
    ok = "ok"
    waiting_first = "waiting_first"
    waiting_for_worker = "waiting_for_worker"
    failing = "failing"
    stalled = "stalled"
    paused = "paused"


@dataclass(frozen=True)
class WorkHealth:
    state: State
    words: str  # the state in plain words, in the reader's language
    done: int = 0
    total: int = 0

    @property
    def problem(self) -> bool:
        return self.state in (State.failing, State.stalled, State.waiting_for_worker)


@dataclass(frozen=True)
class Work:
    """What :func:`work_state` reads of a unit of work (its model's columns)."""

    active: bool
    claimed_until: datetime | None
    last_progress_at: datetime | None
    progress_done: int
    progress_total: int
    failures: int
    error: str  # the last error, as the reader may see it
    next_attempt_at: datetime | None
    last_success_at: datetime | None
    created_at: datetime | None


def work_state(work: Work, *, workers_alive: bool, now: datetime | None = None) -> WorkHealth:
    """The one state of a unit of work (see the module's rules)."""
    now = now or utcnow()
    progress = {"done": work.progress_done, "total": work.progress_total}
    if not work.active:
        return WorkHealth(State.paused, _("Paused"))
    if work.claimed_until is not None and work.claimed_until > now:
        moved = work.last_progress_at or work.created_at
        if moved is not None and moved < now - STALL_AFTER:
            minutes = int((now - moved).total_seconds() // 60)
            return WorkHealth(State.stalled, _("Stalled: no progress for %(n)s minutes", n=minutes), **progress)
        if work.progress_total:
            return WorkHealth(
                State.syncing,
                _("Syncing: %(done)s of %(total)s", done=f"{work.progress_done:,}", total=f"{work.progress_total:,}"),
                **progress,
            )
        return WorkHealth(State.syncing, _("Syncing"), **progress)
    if work.failures:
        return WorkHealth(State.failing, _("Failing: %(reason)s", reason=shown(work.error) or _("unknown error")))
    due_since = work.next_attempt_at if work.next_attempt_at is not None else (work.last_success_at or work.created_at)
    due = work.next_attempt_at is None or work.next_attempt_at <= now
    if due and not workers_alive:
        return WorkHealth(State.waiting_for_worker, _("Waiting for a worker: no worker is running"))
    if due and due_since is not None and due_since < now - STALL_AFTER:
        minutes = int((now - due_since).total_seconds() // 60)
        return WorkHealth(State.stalled, _("Stalled: due for %(n)s minutes and not started", n=minutes), **progress)
    if work.last_success_at is None:
        if not workers_alive:
            return WorkHealth(State.waiting_for_worker, _("Waiting for a worker: no worker is running"))
        return WorkHealth(State.waiting_first, _("Waiting for the first sync"))
    if not workers_alive:
        return WorkHealth(State.waiting_for_worker, _("Waiting for a worker: no worker is running"))
    return WorkHealth(State.ok, _("OK"))


# --- the installation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    ok: bool
    words: str


@dataclass
class Installation:
    database: Check
    broker: Check
    workers: list[str]
    beat: Check
    queues: dict[str, int] = field(default_factory=dict)
    # Calendar accounts, one state each (hub.calendar.accounts.account_health_rows).

    @property
    def workers_alive(self) -> bool:
        return bool(self.workers)

    @property
    def ok(self) -> bool:
        return self.database.ok and self.broker.ok and self.workers_alive and self.beat.ok


def check_database(db: Database) -> Check:
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return Check(False, _("Database unreachable: %(reason)s", reason=type(exc).__name__))
    return Check(True, _("Database reachable"))


def check_broker(celery_app: Any) -> Check:
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    except Exception as exc:
        return Check(False, _("Broker unreachable: %(reason)s", reason=type(exc).__name__))
    return Check(True, _("Broker reachable"))


def alive_workers(celery_app: Any, timeout: float = 1.0) -> list[str]:
    """The workers that answer a ping (Celery's own remote control) within ``timeout``."""
    try:
        replies = celery_app.control.ping(timeout=timeout) or []
    except Exception:
        return []
    return sorted(name for reply in replies for name in reply)


def queue_lengths(celery_app: Any, queues: list[str]) -> dict[str, int]:
    """Messages waiting per queue (what workers have not taken yet)."""
    lengths: dict[str, int] = {}
    try:
        with celery_app.connection_for_read() as connection:
            channel = connection.default_channel
            for name in queues:
                try:
                    lengths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                except Exception:
                    lengths[name] = 0  # a queue nobody declared yet holds nothing
    except Exception:
        return {}
    return lengths


def record_heartbeat(db: Database, name: str) -> None:
    """``name`` is alive now (beat calls this with its ticks)."""
    from hub.db import insert_ignore
    from hub.models import ServiceHeartbeat

    now = utcnow()
    with db.transaction() as session:
        insert_ignore(session, ServiceHeartbeat, [{"name": name, "seen_at": now}], ["name"])
        session.execute(update(ServiceHeartbeat).where(ServiceHeartbeat.name == name).values(seen_at=now))


def last_heartbeat(db: Database, name: str) -> datetime | None:
    from hub.models import ServiceHeartbeat

    try:
        with db.transaction() as session:
            return session.scalar(select(ServiceHeartbeat.seen_at).where(ServiceHeartbeat.name == name))
    except Exception:
        return None


def installation(db: Database, celery_app: Any, queues: list[str]) -> Installation:
    """Every part the background work needs, probed now (answers cached for a few seconds)."""
    parts = Installation(
        database=check_database(db),
        broker=cached("broker", 5, lambda: check_broker(celery_app)),
        workers=cached("workers", 5, lambda: alive_workers(celery_app)),
        beat=beat_state(last_heartbeat(db, "beat")),
        queues=cached("queues", 5, lambda: queue_lengths(celery_app, queues)),
    )
    return parts


def beat_state(last_tick: datetime | None, now: datetime | None = None) -> Check:
    now = now or utcnow()
    if last_tick is None:
        return Check(False, _("Beat has never run: scheduled work and the safety sweep do not happen"))
    if last_tick < now - ALIVE_WITHIN:
        minutes = max(1, int((now - last_tick).total_seconds() // 60))
        return Check(False, _("Beat stopped: last tick %(n)s minutes ago", n=minutes))
    return Check(True, _("Beat alive"))


_cache: dict[str, tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def cached(key: str, seconds: float, compute: Callable[[], Any]) -> Any:
    """A probe's answer for a few seconds: a busy health page must not ping every worker per view."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < seconds:
            return hit[1]
    value = compute()
    with _cache_lock:
        _cache[key] = (now, value)
    return value


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
