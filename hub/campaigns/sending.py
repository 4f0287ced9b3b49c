"""Sending a mailing exactly once per recipient.

The schedule lives in the database: beat's tick starts due mailings with one conditional UPDATE
(scheduled → sending), and in the same transaction fills the ledger from the target group with one
INSERT … SELECT … ON CONFLICT DO NOTHING (the database streams the group; nothing is held in
memory). A run claims the mailing (hub.claims: short, renewed), then each of its connections
claims ledger rows in small chunks with a conditional UPDATE (pending → sending) and sends them in
id order, marking each row sent, with its Message-ID, in its own commit right after the relay
accepted it. A second beat, a redelivered task or the sweep finds the mailing claimed and does
nothing; pause and cancel are seen within two messages of each connection (every ledger mark
returns the mailing's state). The connections (SMTP sessions) run
as threads of the run, or, with more sessions than one on a machine with more cores than one, in
sending processes the run starts (:func:`session_plan`, "sending processes" below): the rules
here hold per session either way.

**The one case that cannot be known** (research/campaigns_and_celery.md §A7.4): a worker that dies
after the relay accepted a message but before its row was marked. SMTP has no idempotency key, and
the relay may or may not have queued the message. The rule here:

* A connection works through its chunk strictly in order and settles each row (sent, failed,
  skipped, deferred) before it hands the next one to the relay. So of a dead run's rows still in
  ``sending``, per connection only the *first* can have reached the relay; the others never left.
* When the next run takes the mailing over (the dead run's claim lapsed), rows it finds in
  ``sending`` go back to ``pending`` and are sent; the first of each dead chunk is marked
  ``in_doubt`` ("may have received it twice"), visible in the ledger. This is at-least-once with a
  duplicate window of at most one message per connection that died at that instant: the
  recommendation of the research notes, and never a silent skip (listmonk's failure, which lost up
  to a batch per crash). The same holds for a connection lost in the middle of a transaction.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import queue
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from select import select as wait_for_io
from typing import Any

from sqlalchemy import Connection as DbConnection
from sqlalchemy import (
    Table,
    any_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.campaigns import messages, processes
from hub.campaigns.groups import first_address, member_condition
from hub.campaigns.pipelining import BodySent, PipeliningConnection
from hub.campaigns.ratelimit import Limiter
from hub.campaigns.render import TemplateProblem, Templates, context_for, field_values
from hub.claims import heartbeat, try_claim
from hub.config import Settings
from hub.db import Database
from hub.i18n import N_
from hub.models import Contact, Relation, User
from hub.models.base import utcnow
from hub.models.campaigns import (
    Mailing,
    MailingRecipient,
    MailingState,
    RecipientStatus,
    Suppression,
    SuppressionReason,
    TargetGroup,
)
from hub.outbound import Refused, Relay, relay_for

log = logging.getLogger(__name__)

CHUNK = 100
# A temporary refusal is retried this many times, backing off from RETRY_BASE_SECONDS doubling up to an hour.
MAX_ATTEMPTS = 8
RETRY_BASE_SECONDS = 60.0
RETRY_MAX_SECONDS = 3600.0
# This many temporary failures in a row with no message taken in between: the relay is refusing or
# gone, and the mailing pauses with the reason instead of burning every recipient's attempts.
PAUSE_AFTER_FAILURES = 3
# Refusals of one recipient each (a 4xx to RCPT: greylisting, a full mailbox) say little about the
# relay, and are retried per recipient; this many in a row do (every RCPT refused: throttled, or
# its own trouble), and pause the mailing as above.
PAUSE_AFTER_RECIPIENT_FAILURES = 25
STATE_CHECK_SECONDS = 1.0
# The visible unsubscribe link's words, in the company's language (HUB_DEFAULT_LANGUAGE).
_UNSUBSCRIBE_LABEL = {"nl": "Afmelden", "en": "Unsubscribe"}
R: Table = MailingRecipient.__table__  # type: ignore[assignment]  # (a FromClause to mypy)
M: Table = Mailing.__table__  # type: ignore[assignment]


@dataclass
class SendResult:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    seconds: float = 0.0
    state: str = ""
    paused_reason: str = ""
    next_attempt_at: datetime | None = None


ProgressFn = Callable[[int, int], None]  # (done, total)


# --- starting --------------------------------------------------------------------------------------------


def _insert(session: Session) -> Any:
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(MailingRecipient)


def fill_ledger(session: Session, mailing: Mailing) -> int:
    """Add every member of the mailing's target group to its ledger (one statement; idempotent).

    Contacts without an e-mail address go in as skipped with the reason, so they are counted and
    never silently missing. Returns the ledger's size.
    """
    group = session.get(TargetGroup, mailing.target_group_id) if mailing.target_group_id else None
    if group is None:
        raise ValueError("the mailing has no target group")
    addressed = (
        select(Contact.id.label("contact_id"), first_address().label("address"))
        .join(Relation, Relation.id == Contact.relation_id)
        .where(true(), member_condition(session, group))
        # OFFSET 0 keeps the databases from merging this query into the INSERT's, which wrote the
        # address look-up out four times (once for each use of it below) and ran it four times a row.
        .offset(0)
        .subquery()
    )
    address = func.coalesce(addressed.c.address, "")
    no_address = addressed.c.address.is_(None)
    rows = select(
        literal(mailing.id),
        addressed.c.contact_id,
        address,
        func.lower(address),
        case((no_address, literal(RecipientStatus.skipped.value)), else_=literal(RecipientStatus.pending.value)),
        case((no_address, literal(N_("no e-mail address"))), else_=literal("")),
    ).where(true())
    statement = (
        _insert(session)
        .from_select(["mailing_id", "contact_id", "address", "address_key", "status", "error"], rows)
        .on_conflict_do_nothing(index_elements=["mailing_id", "contact_id"])
    )
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        # The INSERT's estimated cost (a row per member) makes PostgreSQL compile it to machine
        # code first: 160 ms at 20,000 members and more after, for a statement that mostly writes
        # index entries. For this transaction only.
        session.execute(text("SET LOCAL jit = off"))
    session.execute(statement)
    if postgresql:
        # Statistics for the rows just added, as after any bulk load: without them PostgreSQL took
        # the ledger for nearly empty and claimed each chunk by sorting every pending row of the
        # mailing instead of reading the first hundred along the work index (9 ms a chunk at 20,000).
        session.execute(text("ANALYZE mailing_recipient"))
    total = session.scalar(select(func.count()).where(MailingRecipient.mailing_id == mailing.id)) or 0
    mailing.progress_total = total
    return total


def start(session: Session, mailing_id: int, now: datetime | None = None) -> bool:
    """scheduled → sending for a due mailing, with its ledger filled in the same transaction.
    False when it is not due, not scheduled or already started (a second beat does nothing)."""
    now = now or utcnow()
    result = session.execute(
        update(Mailing)
        .where(Mailing.id == mailing_id, Mailing.state == MailingState.scheduled.value, Mailing.scheduled_at <= now)
        .values(state=MailingState.sending.value, started_at=func.coalesce(Mailing.started_at, now), paused_reason="")
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    mailing = session.get(Mailing, mailing_id)
    assert mailing is not None
    session.refresh(mailing)
    fill_ledger(session, mailing)
    return True


def start_due(db: Database, now: datetime | None = None) -> list[int]:
    """Beat's tick: start every due scheduled mailing; return the ids of mailings that need a run
    (just started, or sending with nobody holding them and work due)."""
    now = now or utcnow()
    with db.transaction() as session:
        due = list(
            session.scalars(
                select(Mailing.id).where(Mailing.state == MailingState.scheduled.value, Mailing.scheduled_at <= now)
            )
        )
    for mailing_id in due:
        try:
            with db.transaction() as session:
                start(session, mailing_id, now)
        except ValueError as exc:  # no target group (any more): say so on the mailing, start the others
            _pause(db, "", mailing_id, str(exc), from_state=MailingState.scheduled)
    with db.transaction() as session:
        return list(
            session.scalars(
                select(Mailing.id)
                .where(
                    Mailing.state == MailingState.sending.value,
                    or_(Mailing.claimed_until.is_(None), Mailing.claimed_until < now),
                    or_(Mailing.next_attempt_at.is_(None), Mailing.next_attempt_at <= now),
                )
                .order_by(Mailing.id)
            )
        )


# --- recovering a dead run's rows ---------------------------------------------------------------------------


def recover(session: Session, mailing_id: int, token: str) -> int:
    """Rows a dead run left in ``sending`` go back to ``pending``; the first of each of its chunks is
    marked in doubt (see the module's rule). Returns how many rows were recovered."""
    rows = session.execute(
        select(MailingRecipient.id, MailingRecipient.claimed_by)
        .where(
            MailingRecipient.mailing_id == mailing_id,
            MailingRecipient.status == RecipientStatus.sending.value,
            ~MailingRecipient.claimed_by.startswith(token),
        )
        .order_by(MailingRecipient.id)
    ).all()
    if not rows:
        return 0
    first_of_chunk: dict[str, int] = {}
    for row_id, chunk in rows:
        first_of_chunk.setdefault(chunk, row_id)
    doubtful = set(first_of_chunk.values())
    ids = [row_id for row_id, _chunk in rows]
    for start_at in range(0, len(ids), 500):
        part = ids[start_at : start_at + 500]
        session.execute(
            update(MailingRecipient)
            .where(MailingRecipient.id.in_(part), MailingRecipient.status == RecipientStatus.sending.value)
            .values(
                status=RecipientStatus.pending.value,
                claimed_by="",
                claimed_until=None,
                in_doubt=case((MailingRecipient.id.in_(doubtful), true()), else_=MailingRecipient.in_doubt),
            )
            .execution_options(synchronize_session=False)
        )
    log.warning("mailing %s: %s rows of a stopped run sent again (%s in doubt)", mailing_id, len(ids), len(doubtful))
    return len(ids)


# --- the run ----------------------------------------------------------------------------------------------


@dataclass
class _Job:
    """What every connection of one run shares."""

    db: Database
    settings: Settings
    mailing_id: int
    token: str
    templates: Templates
    skeleton: messages.Skeleton | None
    envelope: messages.Envelope
    sender: str
    consent_required: bool
    relay: Relay
    dkim: messages.Dkim | None
    retry_base: float
    deadline: float | None
    progress: ProgressFn | None
    writer: _Writer | None  # SQLite's; on PostgreSQL each session has its own (_SentAheadWriter)
    total: int
    done_before: int
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    result: SendResult = field(default_factory=SendResult)
    failures_in_a_row: int = 0
    pause_reason: str = ""
    error: BaseException | None = None

    def count(self, outcome: str) -> None:
        with self.lock:
            setattr(self.result, outcome, getattr(self.result, outcome) + 1)
            if outcome == "sent":
                self.failures_in_a_row = 0
            done = self.done_before + self.result.sent + self.result.failed + self.result.skipped
        if self.progress is not None:
            self.progress(done, self.total)

    def temporary_failure(self, reason: str, *, recipient: bool = False) -> None:
        """A temporary refusal; ``recipient``: of one recipient (RCPT), not of the session."""
        with self.lock:
            self.failures_in_a_row += 1
            enough = PAUSE_AFTER_RECIPIENT_FAILURES if recipient else PAUSE_AFTER_FAILURES
            if self.failures_in_a_row >= enough and not self.pause_reason:
                self.pause_reason = reason
                self.stop.set()


# Settling a row is conditional on still holding it (claimed_by): a run that stalled past its claim
# and was overtaken cannot release or overwrite what the run that took over now holds.
_DEFER = (
    R.update()
    .where(
        R.c.id == bindparam("row_id"),
        R.c.status == RecipientStatus.sending.value,
        R.c.claimed_by == bindparam("token"),
    )
    .values(
        status=bindparam("new_status"),
        error=bindparam("why"),
        attempts=R.c.attempts + 1,
        next_attempt_at=bindparam("when"),
        in_doubt=bindparam("doubt"),
        claimed_by="",
        claimed_until=None,
    )
)
_RELEASE = (
    R.update()
    .where(
        R.c.id == bindparam("row_id"),
        R.c.status == RecipientStatus.sending.value,
        R.c.claimed_by == bindparam("token"),
    )
    .values(status=RecipientStatus.pending.value, claimed_by="", claimed_until=None)
)


class _Writer:
    """Writes the per-message ledger marks of one run, each committed before its sender goes on.

    On SQLite one thread with its own connection takes the marks of every sending connection of the
    process and commits what has arrived together (group commit): each sender waits until its row
    is durable before it hands its next message to the relay, which keeps the rule in the module's
    note, while the database sees one commit per batch instead of one per message and SQLite's
    single writer is never fought over (:class:`_InlineWriter` for a single session; on PostgreSQL
    each session sends its own marks ahead, :class:`_SentAheadWriter`). The statements run through
    the driver (SQLAlchemy's per-statement work cost more than the statement); the SQL is the same
    on SQLite and PostgreSQL but for the placeholder.
    """

    def __init__(self, db: Database, *, thread: bool = True) -> None:
        self._conn = db.engine.connect()
        self._sqlite = self._conn.dialect.name == "sqlite"
        if not self._sqlite:
            # One round trip per mark: in autocommit the UPDATE is its own transaction, durable when
            # it returns; otherwise psycopg sends BEGIN and COMMIT as two more, and a durable commit
            # is what a sender waits for. Batches still commit together (see _commit). The pool
            # puts the connection back to its isolation level when it is returned.
            self._conn = self._conn.execution_options(isolation_level="AUTOCOMMIT")
        self._raw: Any = self._conn.connection.driver_connection
        self._mark = "?" if self._sqlite else "%s"
        if self._sqlite:
            # SQLite's own wait for a database another process is writing sleeps 1 ms, then 2, 5,
            # 10 … between tries: with sending processes taking turns at a commit of ~50 µs, 4 % of
            # the marks waited 1 to 170 ms and the marks took a third of the time. This connection
            # tries again itself after 50 µs (doubling), see :meth:`_commit`.
            raw: Any = self._raw
            self._busy_timeout = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
            raw.execute("PRAGMA busy_timeout = 0")
        mark = self._mark
        self.moment = R.c.sent_at.type.bind_processor(self._conn.dialect) or (lambda value: value)
        # "Sent" is the truth once the relay took the message, whoever holds the row now (a run that
        # took over and put it back to pending must not send it again); the other outcomes are this
        # connection's only while it still holds the row. Each mark returns the mailing's state as
        # it commits: pause and cancel are seen by the next message with no statement of their own.
        self.sent_sql = (
            f"UPDATE mailing_recipient SET status = 'sent', message_id = {mark}, sent_at = {mark},"
            f" attempts = attempts + 1, claimed_until = NULL, error = ''"
            f" WHERE id = {mark} AND status IN ('sending', 'pending') {_RETURNING_STATE}"
        )
        self.done_sql = (
            f"UPDATE mailing_recipient SET status = {mark}, error = {mark}, claimed_until = NULL"
            f" WHERE id = {mark} AND status = 'sending' AND claimed_by = {mark} {_RETURNING_STATE}"
        )
        self._queue: queue.SimpleQueue[tuple[str, tuple[Any, ...], _Waiter] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        if thread:
            self._thread.start()

    def sent(self, waiter: _Waiter, row_id: int, message_id: str) -> None:
        self._submit(waiter, "sent", self.sent_sql, (message_id, self.moment(utcnow()), row_id))

    def done(self, waiter: _Waiter, row_id: int, status: str, why: str) -> None:
        outcome = "skipped" if status == RecipientStatus.skipped.value else "failed"
        self._submit(waiter, outcome, self.done_sql, (status, why, row_id, waiter.token))

    def _submit(self, waiter: _Waiter, outcome: str, sql: str, params: tuple[Any, ...]) -> None:
        """Queue a mark without waiting for it: the sender renders its next message meanwhile and
        calls :meth:`_Waiter.settle` before that message goes to the relay."""
        waiter.settle()
        waiter.event.clear()
        waiter.error = None
        waiter.outcome = outcome
        self._queue.put((sql, params, waiter))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(more)
            error, states = self._commit([(sql, params) for sql, params, _waiter in batch])
            for index, (_sql, _params, waiter) in enumerate(batch):
                waiter.finish(error, states[index] if error is None else "")

    def _commit(self, statements: list[tuple[str, tuple[Any, ...]]]) -> tuple[BaseException | None, list[str]]:
        """Run and commit the marks: (None, the mailing's state seen by each mark, "" where the row
        was not this connection's to mark), or (the error, []) when that failed (nothing marked)."""
        pause, waited = _BUSY_FIRST_PAUSE, 0.0
        while True:
            try:
                if self._sqlite:
                    cursor = self._raw.cursor()
                    try:
                        states = []
                        for sql, params in statements:
                            cursor.execute(sql, params)
                            states.append(_first(cursor.fetchall()))
                    finally:
                        cursor.close()
                    self._raw.commit()
                else:
                    states = self._commit_postgresql(statements)
                return None, states
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    self._raw.rollback()
                if not (self._sqlite and _busy(exc)) or waited >= self._busy_timeout / 1000:
                    return exc, []
            time.sleep(pause)  # another process is committing: its turn takes tens of µs
            waited += pause
            pause = min(pause * 2, _BUSY_MAX_PAUSE)

    def _commit_postgresql(self, statements: list[tuple[str, tuple[Any, ...]]]) -> list[str]:
        # Prepared on the server (a primary-key update: its generic plan is the plan), so each mark
        # is one Bind/Execute. A batch of several marks is one transaction sent in one go (pipeline).
        if len(statements) == 1:
            sql, params = statements[0]
            return [_first(self._raw.execute(sql, params, prepare=True).fetchall())]
        with self._raw.pipeline(), self._raw.transaction():
            cursors = [self._raw.execute(sql, params, prepare=True) for sql, params in statements]
        return [_first(cursor.fetchall()) for cursor in cursors]

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._sqlite:  # the connection goes back to the pool as it came
            with contextlib.suppress(Exception):
                self._raw.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout)}")
        self._conn.close()


_RETURNING_STATE = "RETURNING (SELECT state FROM mailing WHERE mailing.id = mailing_recipient.mailing_id)"
_BUSY_FIRST_PAUSE = 0.00005
_BUSY_MAX_PAUSE = 0.002


def _first(rows: list[Any]) -> str:
    """The state a mark returned; "" when it changed no row (not this connection's to mark)."""
    return str(rows[0][0]) if rows else ""


def _busy(exc: BaseException) -> bool:
    """SQLite's "database is locked": another connection is writing."""
    return getattr(exc, "sqlite_errorcode", None) == 5 or "database is locked" in str(exc)


class _InlineWriter(_Writer):
    """The marks of a process with one session on SQLite, committed in that session's thread before
    it goes on: with nobody to share a commit with, handing each mark to a writer thread and waiting
    for it cost more (two thread switches a message) than the commit itself (see :func:`_writer`)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, thread=False)

    def _submit(self, waiter: _Waiter, outcome: str, sql: str, params: tuple[Any, ...]) -> None:
        waiter.settle()
        waiter.outcome = outcome
        # An error is raised by the session's next settle, as the writer thread's is.
        error, states = self._commit([(sql, params)])
        waiter.finish(error, states[0] if states else "")


def _writer(db: Database, sessions: int) -> _Writer | None:
    """The writer the sessions of a process on SQLite share; None on PostgreSQL, where each session
    sends its marks ahead on a connection of its own (:class:`_SentAheadWriter`)."""
    if db.engine.dialect.name != "sqlite":
        return None
    return _InlineWriter(db) if sessions == 1 else _Writer(db)


class _SentAheadWriter(_Writer):
    """PostgreSQL, one per session: each mark goes to the server at once, on the session's own
    connection (libpq's asynchronous send of a prepared statement; in autocommit the UPDATE is its
    own transaction, durable when it answers), and its answer is read when the session settles it,
    after the relay answered the next envelope. The commit (a log flush with durability on) runs
    while the relay answers; committed inline the two waits came one after the other, and a writer
    thread to hand the mark to cost two thread switches a message (measured: more hub CPU per
    message than the overlap saved with fsync off)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, thread=False)
        self._pq: Any = self._raw.pgconn
        self._names: dict[str, bytes] = {}
        for sql in (self.sent_sql, self.done_sql):
            # A name of its own: the connection goes back to the pool (DEALLOCATEd in close).
            name = f"hub_mark_{id(self):x}_{len(self._names)}".encode()
            numbered = sql.replace("%s", "{}").format(*(f"${n}" for n in range(1, sql.count("%s") + 1)))
            _check(self._pq.prepare(name, numbered.encode()))
            self._names[sql] = name
        self._waiting = False

    def sent(self, waiter: _Waiter, row_id: int, message_id: str) -> None:
        # (the parameters as text, as _pq_text makes them, without its per-value type tests)
        moment = datetime.now(UTC).isoformat().encode()
        self._send(waiter, "sent", self.sent_sql, [message_id.encode(), moment, b"%d" % row_id])

    def _submit(self, waiter: _Waiter, outcome: str, sql: str, params: tuple[Any, ...]) -> None:
        self._send(waiter, outcome, sql, [_pq_text(value) for value in params])

    def _send(self, waiter: _Waiter, outcome: str, sql: str, params: list[bytes | None]) -> None:
        waiter.settle()
        waiter.outcome = outcome
        try:
            self._pq.send_query_prepared(self._names[sql], params)
        except BaseException as exc:  # (raised by the session's next settle, as any failed mark)
            waiter.event.clear()
            waiter.finish(exc)
            return
        self._waiting = True
        waiter.collect = self._answer

    def _answer(self) -> tuple[BaseException | None, str]:
        """The outstanding mark's outcome: (None, the mailing's state) or (the error, "")."""
        self._waiting = False
        result: Any = None
        try:
            while True:
                self._pq.consume_input()
                while not self._pq.is_busy():
                    answer = self._pq.get_result()
                    if answer is None:
                        # Only now, the server ready for the next query (the implicit transaction
                        # ended at Sync), is the mark committed; the UPDATE's own result comes first.
                        _check(result)
                        return None, result.get_value(0, 0).decode() if result.ntuples else ""
                    result = answer
                wait_for_io([self._pq.socket], [], [])  # (without holding the GIL)
        except BaseException as exc:
            return exc, ""

    def close(self) -> None:
        if self._waiting:
            self._answer()
        with contextlib.suppress(Exception):
            for name in self._names.values():
                _check(self._pq.exec_(b"DEALLOCATE " + name))
        super().close()


def _pq_text(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text format."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().encode()
    return str(value).encode()


def _check(result: Any) -> None:
    if result is None or result.status not in _ANSWERED:
        from psycopg import DatabaseError

        message = result.error_message.decode("utf-8", "replace") if result is not None else "no answer"
        raise DatabaseError(f"the ledger mark failed: {message.strip()}")


_ANSWERED = (1, 2)  # psycopg.pq.ExecStatus.COMMAND_OK, TUPLES_OK (libpq's PGRES_ values; not imported on SQLite)


@dataclass
class _Waiter:
    """A sending connection's one outstanding mark: :meth:`settle` returns once it is committed
    (and counts it), raising if the commit failed."""

    job: _Job | None = None
    token: str = ""  # the connection's chunk claim (claimed_by)
    event: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    outcome: str = ""
    writer: Any = None  # where its marks go (a _Writer)
    # A mark sent ahead (_SentAheadWriter): reads its outcome, (error, state).
    collect: Callable[[], tuple[BaseException | None, str]] | None = None
    # The mailing's state as the last committed mark saw it ("" until one did): how a connection
    # sees a pause or cancel between two messages without a statement of its own.
    state: str = ""

    def finish(self, error: BaseException | None, state: str = "") -> None:
        self.error = error
        if state:
            self.state = state
        self.event.set()

    def settle(self) -> None:
        if not self.outcome:
            return
        if self.collect is not None:  # read here, in this thread: no event to wait for
            collect, self.collect = self.collect, None
            self.error, state = collect()
            if state:
                self.state = state
        else:
            self.event.wait()
        outcome, self.outcome = self.outcome, ""
        if self.error is not None:
            raise self.error
        if self.job is not None:
            self.job.count(outcome)


def _claim_statements(postgresql: bool) -> tuple[Any, Any]:
    """The chunk claim and the chunk's read, built once with bound parameters (building them per
    chunk cost SQLAlchemy more than the database took to run them)."""
    now: Any = bindparam("now")
    # The rows after the last one this connection claimed ("after"), along the work index
    # (mailing, id): no index holds the status (see MailingRecipient), so without a place to start
    # each claim would walk past every row already sent.
    due = (
        select(R.c.id)
        .where(
            R.c.mailing_id == bindparam("mailing"),
            R.c.id > bindparam("after"),
            R.c.status == RecipientStatus.pending.value,
            or_(R.c.next_attempt_at.is_(None), R.c.next_attempt_at <= now),
        )
        .order_by(R.c.id)
        .limit(CHUNK)
    )
    if postgresql:
        due = due.with_for_update(skip_locked=True)
    # Only while the run still holds the mailing: a sending process whose run died or was overtaken
    # claims nothing more (the run that took over may be recovering this very mailing's rows).
    # A paused or cancelled mailing gets no new chunk (its state is read here, not per message).
    held = (
        select(M.c.id)
        .where(
            M.c.id == bindparam("mailing"),
            M.c.claimed_by == bindparam("run"),
            M.c.claimed_until > now,
            M.c.state == MailingState.sending.value,
        )
        .exists()
    )
    chosen: Any = due.scalar_subquery()
    if postgresql:
        # "= ANY(ARRAY(…))": the chunk's ids first, then each row by its primary key. Written as
        # IN (…), PostgreSQL joined the chunk's 100 ids to a scan of the whole ledger (measured:
        # 7.5 ms a chunk on a ledger of 40,000, 75 µs of the server's time a message).
        chosen = any_(func.array(chosen))
        in_chunk = R.c.id == chosen
    else:
        in_chunk = R.c.id.in_(chosen)
    claim = (
        R.update()
        .where(in_chunk, R.c.status == RecipientStatus.pending.value, held)
        .values(status=RecipientStatus.sending.value, claimed_by=bindparam("chunk"), claimed_until=bindparam("until"))
        .returning(R.c.id)
    )
    owner = User.__table__.alias("owner")
    suppressed = select(Suppression.reason).where(Suppression.address_key == R.c.address_key).limit(1).scalar_subquery()
    read = (
        select(
            R.c.id,
            R.c.address,
            R.c.attempts,
            Contact.name,
            Contact.function,
            Contact.marketing_consent,
            Relation.name,
            Relation.street,
            Relation.postcode,
            Relation.city,
            Relation.country,
            Relation.website,
            owner.c.name,
            owner.c.email,
            suppressed,
        )
        .join(Contact.__table__, Contact.id == R.c.contact_id)
        .join(Relation.__table__, Relation.id == Contact.relation_id)
        .outerjoin(owner, owner.c.id == Relation.owner_id)
        # Between the chunk's first and last row (the work index finds them; rows of other
        # connections in between are not this chunk's).
        .where(
            R.c.mailing_id == bindparam("mailing"),
            R.c.id.between(bindparam("first"), bindparam("last")),
            R.c.status == RecipientStatus.sending.value,
            R.c.claimed_by == bindparam("chunk"),
        )
        .order_by(R.c.id)
    )
    return claim, read


_CLAIM = {postgresql: _claim_statements(postgresql) for postgresql in (False, True)}


def _claim_chunk(conn: DbConnection, job: _Job, chunk_token: str, after: int) -> tuple[list[Any], int]:
    """The next chunk of due rows after row ``after``, claimed and read, and the new ``after``. When
    none is left after it, once more from the start: rows put back (a stopped connection's, a
    recovered run's) or deferred rows now due lie behind it. ([], 0) when nothing is due."""
    claim, read = _CLAIM[conn.dialect.name == "postgresql"]
    for start in (after, 0) if after else (0,):
        now = utcnow()
        ids = (
            conn.execute(
                claim,
                {
                    "now": now,
                    "mailing": job.mailing_id,
                    "after": start,
                    "run": job.token,
                    "chunk": chunk_token,
                    "until": now + timedelta(minutes=10),
                },
            )
            .scalars()
            .all()
        )
        conn.commit()
        if ids:
            first, last = min(ids), max(ids)
            rows = conn.execute(
                read, {"mailing": job.mailing_id, "chunk": chunk_token, "first": first, "last": last}
            ).all()
            conn.commit()
            return list(rows), last
    return [], 0


_SUPPRESSED_WORDS = {
    SuppressionReason.unsubscribed.value: N_("unsubscribed"),
    SuppressionReason.hard_bounce.value: N_("suppressed: hard bounce"),
    SuppressionReason.soft_bounces.value: N_("suppressed: repeated soft bounces"),
    SuppressionReason.complaint.value: N_("suppressed: complaint"),
    SuppressionReason.manual.value: N_("suppressed"),
}


def _label(settings: Settings) -> str:
    return _UNSUBSCRIBE_LABEL.get(settings.default_language, "Unsubscribe")


def _skeleton(settings: Settings, envelope: messages.Envelope, templates: Templates) -> messages.Skeleton | None:
    return messages.Skeleton(envelope, templates.fills, _label(settings)) if templates.fills is not None else None


def _backoff(job: _Job, attempts: int) -> datetime:
    seconds = min(job.retry_base * (2 ** max(attempts - 1, 0)), RETRY_MAX_SECONDS)
    return utcnow() + timedelta(seconds=seconds)


def _skip_reason(job: _Job, row: Any) -> str:
    """Why this row is not sent at all ("" when it is)."""
    address, consent, suppressed_reason = row[1], row[5], row[14]
    if suppressed_reason:
        return _SUPPRESSED_WORDS.get(suppressed_reason, N_("suppressed"))
    if job.consent_required and not consent:
        return N_("no marketing consent")
    if not address.isascii():
        return N_(
            "%(address)s has characters outside ASCII, which need SMTPUTF8; hub does not send with it",
            address=address[:100],
        )
    if not messages.valid_address(address):
        return N_("not a valid e-mail address: %(address)s", address=address[:100])
    return ""


@dataclass(slots=True)
class _Made:
    """A recipient's message, ready for the relay."""

    data: bytes
    message_id: str
    sender: str  # the return path (VERP when there is a bounce mailbox)


def _make(job: _Job, row: Any) -> _Made | str:
    """The row's message, or why its template failed for it."""
    row_id, address, name, function = row[0], row[1], row[3], row[4]
    rel_name, street, postcode, city, country, website, owner_name, owner_email = row[6:14]
    settings = job.settings
    url = messages.unsubscribe_url(settings.base_url, settings.secret_key, row_id)
    relation = {
        "name": rel_name,
        "street": street,
        "postcode": postcode,
        "city": city,
        "country": country,
        "website": website,
    }
    fields: dict[str, Any] = {
        "contact_name": name,
        "contact_function": function,
        "address": address,
        "relation": relation,
        "owner_name": owner_name or "",
        "owner_email": owner_email or "",
        "unsubscribe_url": url,
    }
    mid = messages.message_id(settings.secret_key, job.mailing_id, row_id, job.envelope.domain)
    # "=_" never occurs in quoted-printable text (it writes "=" as =3D): no random part needed.
    boundary = f"=_hub_{job.mailing_id}_{row_id}"
    if job.skeleton is not None:  # the templates only place fields: filled in, not rendered
        _subject, data = job.skeleton.build(
            field_values(**fields),
            to_name=name,
            to_address=address,
            message_id=mid,
            list_unsubscribe=url,
            date=utcnow(),
            boundary=boundary,
        )
    else:
        try:
            subject, html, text = job.templates.render(context_for(**fields))
        except TemplateProblem as exc:
            return N_("template: %(reason)s", reason=str(exc))
        html, text = messages.with_unsubscribe_footer(html, text, url, _label(settings))
        data = messages.build(
            job.envelope,
            to_name=name,
            to_address=address,
            subject=subject,
            html=html,
            text=text,
            message_id=mid,
            list_unsubscribe=url,
            date=utcnow(),
            boundary=boundary,
        )
    if job.dkim is not None:
        data = job.dkim.sign(data)
    sender = messages.verp_address(settings.bounce_address, row_id, mid) if settings.bounce_address else job.sender
    return _Made(data, mid, sender)


def _make_ahead(job: _Job, row: Any, made: dict[int, _Made | str]) -> None:
    """Make the next row's message while the relay reads this one (see :func:`_send_row`): the
    session would otherwise sit idle until the relay's answer. Only what is pure work: the row is
    settled in its turn, and whatever goes wrong here happens again there, where it is handled."""
    try:
        if not _skip_reason(job, row):
            made[row[0]] = _make(job, row)
    except Exception:  # (handled in its turn; never in the middle of this row's exchange)
        made.pop(row[0], None)


def _send_row(
    job: _Job,
    conn: DbConnection,
    waiter: _Waiter,
    smtp: PipeliningConnection,
    limiter: Limiter,
    row: Any,
    made: _Made | str | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> None:
    """Send one row's message and settle the row. ``made``: its message, made ahead; ``meanwhile``:
    work for the time the relay reads the message (the next row's message)."""
    row_id, address, attempts = row[0], row[1], row[2]

    def done(status: str, why: str) -> None:
        waiter.writer.done(waiter, row_id, status, why)

    skipped = _skip_reason(job, row)
    if skipped:
        return done(RecipientStatus.skipped.value, skipped)
    if made is None:
        made = _make(job, row)
    if isinstance(made, str):
        return done(RecipientStatus.failed.value, made)
    data, mid, sender = made.data, made.message_id, made.sender
    limiter.wait()
    pipelined = isinstance(smtp, PipeliningConnection) and smtp._smtp is not None and smtp._smtp.has_extn("pipelining")
    try:
        # The previous message's outcome is durable before this one can reach the relay: settled
        # after the relay's answer to MAIL, RCPT and DATA, before the text goes (pipelining.py).
        smtp.send(data, sender=sender, recipients=[address], ready=waiter.settle, meanwhile=meanwhile)
    except Refused as exc:
        waiter.settle()  # (refused before the text went: the previous mark was not waited for yet)
        cause = exc.__cause__
        replied = isinstance(cause, smtplib.SMTPResponseException)
        if exc.temporary:
            # A connection lost after the message went out may have delivered it: sent again, and
            # marked in doubt. (Through smtplib's plain send any lost session counts as that.)
            in_doubt = not replied and (
                isinstance(cause, BodySent) or (not pipelined and isinstance(cause, smtplib.SMTPServerDisconnected))
            )
            tries = attempts + 1
            if tries >= MAX_ATTEMPTS:
                conn.execute(
                    _DEFER,
                    {
                        "row_id": row_id,
                        "new_status": RecipientStatus.failed.value,
                        "why": N_("gave up after %(n)s temporary refusals: %(reason)s", n=tries, reason=str(exc)),
                        "when": None,
                        "doubt": in_doubt,
                        "token": waiter.token,
                    },
                )
                conn.commit()
                job.count("failed")
            else:
                conn.execute(
                    _DEFER,
                    {
                        "row_id": row_id,
                        "new_status": RecipientStatus.pending.value,
                        "why": str(exc)[:1000],
                        "when": _backoff(job, tries),
                        "doubt": in_doubt,
                        "token": waiter.token,
                    },
                )
                conn.commit()
                with job.lock:
                    job.result.deferred += 1
            job.temporary_failure(str(exc), recipient=exc.recipient)
            return None
        waiter.writer.done(waiter, row_id, RecipientStatus.failed.value, str(exc)[:1000])
        if exc.code in (550, 551, 553) and " 5.1." in f" {exc.reason}":
            _record_refusal_bounce(job, row_id, address, exc)
        job.count("failed")
        with job.lock:
            job.failures_in_a_row = 0
        return None
    waiter.writer.sent(waiter, row_id, mid)
    return None


def _record_refusal_bounce(job: _Job, row_id: int, address: str, exc: Refused) -> None:
    from hub.campaigns.bounces import record_bounce

    with job.db.transaction() as session:
        record_bounce(
            session,
            address=address,
            kind="hard",
            status=str(exc.code),
            diagnostic=str(exc),
            recipient_id=row_id,
            email_id=None,
        )


def _connection_loop(job: _Job, label: str) -> None:
    chunk_token = f"{job.token}/{label}"
    waiter = _Waiter(job, chunk_token, writer=job.writer)
    limiter = Limiter(job.db, f"{job.relay.host}:{job.relay.port}", job.settings.smtp_rate_per_minute)
    smtp = PipeliningConnection(job.relay)
    own: _Writer | None = None
    try:
        if waiter.writer is None:
            waiter.writer = own = _SentAheadWriter(job.db)
        with job.db.engine.connect() as conn, smtp:
            after = 0  # the last row this connection claimed
            while not job.stop.is_set():
                if job.deadline is not None and time.monotonic() > job.deadline:
                    break
                rows, after = _claim_chunk(conn, job, chunk_token, after)
                if not rows:
                    break
                made: dict[int, _Made | str] = {}  # messages made ahead, by row
                for position, row in enumerate(rows):
                    # Pause and cancel are seen within two messages: every mark returns the state.
                    if waiter.state not in ("", MailingState.sending.value):
                        job.stop.set()
                    if job.stop.is_set():
                        # Never handed to the relay: simply back to pending.
                        waiter.settle()
                        for rest in rows[position:]:
                            conn.execute(_RELEASE, {"row_id": rest[0], "token": chunk_token})
                        conn.commit()
                        break
                    following = rows[position + 1] if position + 1 < len(rows) else None
                    ahead = None if following is None else partial(_make_ahead, job, following, made)
                    _send_row(job, conn, waiter, smtp, limiter, row, made.pop(row[0], None), ahead)
                waiter.settle()
    except BaseException as exc:  # the run stops; rows left in "sending" are recovered by the next run
        log.exception("mailing %s: connection %s stopped", job.mailing_id, label)
        with job.lock:
            job.error = job.error or exc
        job.stop.set()
    finally:
        if own is not None:
            with contextlib.suppress(Exception):  # (a connection already lost: nothing to give back)
                own.close()


def session_plan(connections: int, cores: int | None = None) -> list[int]:
    """How many SMTP sessions each sending process runs: one process per core at most (``cores``,
    the machine's by default), the sessions spread over them. One process keeps everything in this
    one (no process to start).

    Per message hub spends more on the processor (the template, the message, the ledger) than the
    relay needs; sessions in one interpreter share one core, so a mailing with more sessions than
    one uses every core of the machine (``HUB_CAMPAIGN_CONNECTIONS``)."""
    count = processes.how_many(connections, cores)
    base, extra = divmod(connections, count)
    return [base + (1 if index < extra else 0) for index in range(count)]


def _start_sessions(job: _Job, process: int, count: int) -> list[threading.Thread]:
    threads = [
        threading.Thread(
            target=_connection_loop,
            args=(job, f"{process}.{index}"),
            name=f"mailing-{job.mailing_id}-{process}.{index}",
            daemon=True,
        )
        for index in range(count)
    ]
    for thread in threads:
        thread.start()
    return threads


# --- sending processes ------------------------------------------------------------------------------------
#
# A run with sessions in more than one process starts one child per process (``python -c``, so it
# works from a Celery pool process as from the command line) and stays the one that holds the
# mailing's claim: it recovered the rows before the children started, renews the claim, watches
# pause/cancel and keeps the progress. A child claims chunks only while the run holds the mailing
# (the EXISTS in :func:`_claim_chunk`), settles its rows exactly as a thread does (the in-doubt rule
# holds per session), reports its counts on stdout and stops when told to, when its stdin closes
# (the run died: no process sends on for a dead run) or when its own sessions end.


class SendingProcessFailed(Exception):
    """A sending process of the run stopped with an error or ended without saying how it went."""


_COUNTS = ("sent", "failed", "skipped", "deferred")
_REPORT_SECONDS = 0.05  # a child's counts reach the run (progress, pause on failures) this often at most;
# every 5 ms (400 lines a second from two children) cost the children 5 % of their time


@dataclass(frozen=True)
class _ChildSpec:
    settings: Settings
    mailing_id: int
    token: str
    sources: tuple[str, str, str]  # subject, html, text templates
    envelope: messages.Envelope
    sender: str
    consent_required: bool
    retry_base: float
    budget_seconds: float | None
    total: int
    done_before: int
    index: int = 0
    sessions: int = 1


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    index: int
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))
    finished: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tell(self, line: str) -> None:
        with self.lock, contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.write(line.encode() + b"\n")
            self.process.stdin.flush()

    @classmethod
    def start(cls, spec: _ChildSpec, index: int, sessions: int) -> _Child:
        process = processes.take()
        assert process.stdin is not None
        data = pickle.dumps(replace(spec, index=index, sessions=sessions))
        process.stdin.write(len(data).to_bytes(8, "big") + data)
        process.stdin.flush()
        return cls(process, index)

    def stop(self) -> None:
        """Ask the child to stop before its next message (it settles what it has and gives the rest back)."""
        self.tell("stop")

    def wait(self) -> None:
        with self.lock, contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        self.process.wait()

    def follow(self, job: _Job) -> threading.Thread:
        """A thread that adds the child's reports to the run's counts until the child ends."""
        thread = threading.Thread(
            target=self._follow, args=(job,), name=f"mailing-{job.mailing_id}-process-{self.index}"
        )
        thread.start()
        return thread

    def _follow(self, job: _Job) -> None:
        try:
            self._reports(job)
        except BaseException as exc:  # (a progress callback that raised): the child is let go
            with job.lock:
                job.error = job.error or exc
            job.stop.set()
            self.wait()  # its stdin closed: a mark it waits for fails, and it stops
        code = self.process.wait()
        if not self.finished:
            with job.lock:
                job.error = job.error or SendingProcessFailed(f"a sending process ended with exit code {code}")
            job.stop.set()

    def _reports(self, job: _Job) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                report = json.loads(line)
            except ValueError:
                continue
            with job.lock:
                for name in _COUNTS:
                    setattr(job.result, name, getattr(job.result, name) + report[name] - self.counts[name])
                    self.counts[name] = report[name]
                done = job.done_before + job.result.sent + job.result.failed + job.result.skipped
                if report.get("pause_reason") and not job.pause_reason:
                    job.pause_reason = report["pause_reason"]
                if report.get("error") and job.error is None:
                    job.error = SendingProcessFailed(report["error"])
                self.finished = self.finished or bool(report.get("finished"))
            if job.progress is not None:
                job.progress(done, job.total)
            if job.pause_reason or job.error is not None:
                job.stop.set()


def _stop_children(job: _Job, children: list[_Child]) -> None:
    # Whatever stops the run (pause, cancel, the claim lost, a child's failures) stops every child.
    job.stop.wait()
    for child in children:
        child.stop()


def child_main() -> None:
    """A sending process of a run (see above): the spec comes pickled on stdin, from the run."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the run, which stops its children
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        spec: _ChildSpec = pickle.loads(_read(int.from_bytes(_read(8), "big")))
    except EOFError:  # started ahead (hub.campaigns.processes) for a run that did not come
        return
    out = _Out()
    lock = threading.Lock()
    reported = [0.0]
    db = Database(spec.settings.database_url)
    job: _Job | None = None

    def report(finished: bool = False, force: bool = False) -> None:
        assert job is not None
        moment = time.monotonic()
        with lock:
            if not (force or finished) and moment - reported[0] < _REPORT_SECONDS:
                return
            reported[0] = moment
            with job.lock:
                line: dict[str, Any] = {name: getattr(job.result, name) for name in _COUNTS}
                line.update(pause_reason=job.pause_reason, finished=finished)
                if job.error is not None:
                    line["error"] = f"{type(job.error).__name__}: {job.error}"
            out.write(line)

    try:
        templates = Templates.compile(*spec.sources)
        job = _Job(
            db=db,
            settings=spec.settings,
            mailing_id=spec.mailing_id,
            token=spec.token,
            templates=templates,
            skeleton=_skeleton(spec.settings, spec.envelope, templates),
            envelope=spec.envelope,
            sender=spec.sender,
            consent_required=spec.consent_required,
            relay=relay_for(spec.settings),
            dkim=_dkim(spec.settings),
            retry_base=spec.retry_base,
            deadline=None if spec.budget_seconds is None else time.monotonic() + spec.budget_seconds,
            progress=lambda _done, _total: report(),
            writer=_writer(db, spec.sessions),
            total=spec.total,
            done_before=spec.done_before,
        )
        threading.Thread(target=_listen, args=(job,), daemon=True).start()
        threads = _start_sessions(job, spec.index, spec.sessions)
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(0.2)
            report(force=True)
        if job.writer is not None:
            job.writer.close()
    except BaseException as exc:  # said to the run, which records it on the mailing
        if job is None:
            out.write({**dict.fromkeys(_COUNTS, 0), "error": f"{type(exc).__name__}: {exc}"})
            raise
        with job.lock:
            job.error = job.error or exc
    report(finished=True)
    db.dispose()


def _read(size: int) -> bytes:
    # Straight from the descriptor (no buffered reader: the stop watcher reads it too, until exit).
    data = b""
    while len(data) < size:
        more = os.read(0, size - len(data))
        if not more:
            raise EOFError("the run ended before it said what to send")
        data += more
    return data


def _listen(job: _Job) -> None:
    # "stop" from the run, or the end of stdin: the run stopped or died; either way no new message.
    while True:
        more = os.read(0, 4096)
        if not more or b"stop" in more:
            break
    job.stop.set()


class _Out:
    """A child's stdout: one JSON line at a time, from any thread. Never raises: when the run is gone
    (its end of the pipe closed) there is nobody to tell, and the child's stdin ends too, which
    stops its sessions the clean way (rows settled or given back), not through an error mid-message."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.gone = False

    def write(self, line: dict[str, Any]) -> None:
        data = (json.dumps(line) + "\n").encode()
        with self.lock:
            try:
                while data and not self.gone:
                    data = data[os.write(1, data) :]
            except OSError:
                self.gone = True


def _dkim(settings: Settings) -> messages.Dkim | None:
    if not settings.dkim_key_file:
        return None
    return messages.Dkim(settings.dkim_selector, settings.dkim_domain, settings.dkim_key_file)


def _watch(job: _Job, claim_lost: threading.Event, threads: list[threading.Thread]) -> None:
    """Until the connections end: stop them when the mailing is paused or cancelled (from the page,
    the API, another process) or the claim was lost; keep the progress on the mailing row."""
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(STATE_CHECK_SECONDS / max(len(threads), 1))
        if claim_lost.is_set():
            job.stop.set()
        with job.db.transaction() as session:
            state = session.scalar(select(Mailing.state).where(Mailing.id == job.mailing_id))
            with job.lock:
                done = job.done_before + job.result.sent + job.result.failed + job.result.skipped
            session.execute(
                update(Mailing)
                .where(Mailing.id == job.mailing_id, Mailing.claimed_by == job.token)
                .values(progress_done=done, last_progress_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        if state != MailingState.sending.value:
            job.stop.set()


def _finished_count(session: Session, mailing_id: int) -> int:
    return (
        session.scalar(
            select(func.count()).where(
                MailingRecipient.mailing_id == mailing_id,
                MailingRecipient.status.in_(
                    [RecipientStatus.sent.value, RecipientStatus.failed.value, RecipientStatus.skipped.value]
                ),
            )
        )
        or 0
    )


def send_mailing(
    db: Database,
    settings: Settings,
    mailing_id: int,
    *,
    budget_seconds: float | None = None,
    progress: ProgressFn | None = None,
    retry_base: float = RETRY_BASE_SECONDS,
    connections: int | None = None,
) -> SendResult | None:
    """Send what is due of a mailing in ``sending`` state; None when another run holds it or it is
    not sending. Ends when nothing is due, the budget is spent, or the mailing is paused/cancelled."""
    began = time.monotonic()
    claim = try_claim(db, Mailing, mailing_id, Mailing.state == MailingState.sending.value)
    if claim is None:
        return None
    with heartbeat(claim):
        with db.transaction() as session:
            recover(session, mailing_id, claim.token)
            mailing = session.get(Mailing, mailing_id)
            assert mailing is not None
            group = session.get(TargetGroup, mailing.target_group_id) if mailing.target_group_id else None
            done_before = _finished_count(session, mailing_id)
            total = mailing.progress_total
            subject, html, text = mailing.subject, mailing.html_body, mailing.text_body
            from_name, from_address, reply_to = mailing.from_name, mailing.from_address, mailing.reply_to
        try:
            templates = Templates.compile(subject, html, text)
            relay = relay_for(settings)
        except (TemplateProblem, Exception) as exc:
            _pause(db, claim.token, mailing_id, str(exc))
            claim.release()
            return SendResult(state=MailingState.paused.value, paused_reason=str(exc))
        dkim = _dkim(settings)
        envelope = messages.Envelope.of(from_name, from_address, reply_to)
        # SQLite (one writer): every session in this process. Sending processes that each commit
        # their marks take turns at SQLite's write lock and re-read each other's pages: measured
        # at 490 µs a message against 300 µs in one process, more than a second core gives back.
        cores = 1 if settings.embedded else None
        plan = session_plan(max(1, connections or settings.campaign_connections), cores)
        job = _Job(
            db=db,
            settings=settings,
            mailing_id=mailing_id,
            token=claim.token,
            templates=templates,
            skeleton=_skeleton(settings, envelope, templates),
            envelope=envelope,
            sender=from_address,
            consent_required=group.consent_required if group is not None else True,
            relay=relay,
            dkim=dkim,
            retry_base=retry_base,
            deadline=began + budget_seconds if budget_seconds else None,
            progress=progress,
            # (with sending processes, each writes its own marks)
            writer=_writer(db, plan[0]) if len(plan) == 1 else None,
            total=total,
            done_before=done_before,
        )
        children: list[_Child] = []
        if len(plan) == 1:
            threads = _start_sessions(job, 0, plan[0])
        else:
            spec = _ChildSpec(
                settings=settings,
                mailing_id=mailing_id,
                token=claim.token,
                sources=(subject, html, text),
                envelope=job.envelope,
                sender=job.sender,
                consent_required=job.consent_required,
                retry_base=retry_base,
                budget_seconds=None if job.deadline is None else job.deadline - time.monotonic(),
                total=total,
                done_before=done_before,
            )
            children = [_Child.start(spec, index, sessions) for index, sessions in enumerate(plan)]
            threads = [child.follow(job) for child in children]
            threading.Thread(target=_stop_children, args=(job, children), daemon=True).start()
        try:
            _watch(job, claim.lost, threads)
        finally:
            job.stop.set()
            for child in children:
                child.stop()
            for thread in threads:
                thread.join()
            for child in children:
                child.wait()
            if job.writer is not None:
                job.writer.close()
        result = job.result
        result.seconds = time.monotonic() - began
        if job.pause_reason:
            reason = N_(
                "The relay did not take the messages (%(reason)s); sending was paused.", reason=job.pause_reason
            )
            _pause(db, claim.token, mailing_id, reason)
        result.state, result.paused_reason, result.next_attempt_at = _settle(db, claim.token, mailing_id, job)
        claim.release()
        if job.error is not None and not isinstance(job.error, Exception):
            raise job.error
        return result


def _pause(
    db: Database, token: str, mailing_id: int, reason: str, from_state: MailingState = MailingState.sending
) -> None:
    with db.transaction() as session:
        session.execute(
            update(Mailing)
            .where(Mailing.id == mailing_id, Mailing.state == from_state.value)
            .values(state=MailingState.paused.value, paused_reason=reason[:2000], last_error=reason[:2000])
            .execution_options(synchronize_session=False)
        )


def _settle(db: Database, token: str, mailing_id: int, job: _Job) -> tuple[str, str, datetime | None]:
    """After a run: sent when no row is left to send; otherwise when the next deferred row is due."""
    now = utcnow()
    with db.transaction() as session:
        mailing = session.get(Mailing, mailing_id)
        assert mailing is not None
        left = session.execute(
            select(func.count(), func.min(MailingRecipient.next_attempt_at)).where(
                MailingRecipient.mailing_id == mailing_id,
                MailingRecipient.status.in_([RecipientStatus.pending.value, RecipientStatus.sending.value]),
            )
        ).one()
        mailing.progress_done = _finished_count(session, mailing_id)
        mailing.last_progress_at = now
        next_at: datetime | None = None
        if job.error is not None:
            mailing.failures += 1
            mailing.last_error = f"{type(job.error).__name__}: {job.error}"[:2000]
            next_at = now + timedelta(seconds=30)
        elif mailing.state == MailingState.sending.value and not left[0]:
            mailing.state = MailingState.sent.value
            mailing.finished_at = now
            mailing.last_success_at = now
            mailing.failures = 0
            mailing.last_error = ""
        elif mailing.state == MailingState.sending.value:
            next_at = left[1] if left[1] is not None and left[1] > now else None
            mailing.failures = 0
            mailing.last_success_at = now
        mailing.next_attempt_at = next_at
        return mailing.state, mailing.paused_reason, next_at


# --- the foreground (``hub campaign send MAILING --now``) ------------------------------------------------


def find_mailing(db: Database, name_or_id: str) -> int:
    """The id of the mailing with this id or name (LookupError if none, or if the name is not unique)."""
    with db.transaction() as session:
        by_id = name_or_id.isdigit() and len(name_or_id) < 10
        query = select(Mailing.id).where(Mailing.id == int(name_or_id) if by_id else Mailing.name == name_or_id)
        found = list(session.scalars(query.limit(2)))
    if not found:
        raise LookupError(f"no mailing {name_or_id}")
    if len(found) > 1:
        raise LookupError(f"more than one mailing is named {name_or_id}; give its id")
    return found[0]


def start_now(db: Database, name_or_id: str) -> int:
    """The mailing's id, started at once if it is a draft or scheduled for later (LookupError if none)."""
    mailing_id = find_mailing(db, name_or_id)
    with db.transaction() as session:
        mailing = session.get_one(Mailing, mailing_id)
        if mailing.state == MailingState.draft.value:
            from hub.campaigns.mailings import MailingError, schedule

            try:
                schedule(session, mailing, utcnow())
            except MailingError as exc:
                raise LookupError(str(exc)) from None
        elif mailing.state == MailingState.scheduled.value:
            mailing.scheduled_at = utcnow()
        elif mailing.state not in (MailingState.sending.value,):
            raise LookupError(f"mailing {mailing.id} is {mailing.state}")
        mailing_id = mailing.id
    with db.transaction() as session:
        start(session, mailing_id)
    return mailing_id


def ledger_counts(db: Database, mailing_id: int) -> dict[str, int]:
    with db.transaction() as session:
        return {
            status: count
            for status, count in session.execute(
                select(MailingRecipient.status, func.count())
                .where(MailingRecipient.mailing_id == mailing_id)
                .group_by(MailingRecipient.status)
            )
        }


def send_foreground(
    db: Database,
    settings: Settings,
    mailing_id: int,
    *,
    progress: ProgressFn | None = None,
    counted_before: dict[str, int] | None = None,
) -> SendResult:
    """Send until the mailing is sent, paused or cancelled, waiting out deferrals in between. The
    counts are the ledger's change since ``counted_before`` (so recipients skipped when the ledger
    was filled, for having no address, are counted too)."""
    began = time.monotonic()
    total = SendResult()
    before = ledger_counts(db, mailing_id) if counted_before is None else counted_before
    while True:
        result = send_mailing(db, settings, mailing_id, progress=progress)
        if result is None:
            with db.transaction() as session:
                state = session.scalar(select(Mailing.state).where(Mailing.id == mailing_id))
            if state != MailingState.sending.value:
                total.state = state or ""
                break
            time.sleep(2)  # another run holds it (a worker); wait for it to end or lapse
            continue
        total.deferred += result.deferred
        total.state, total.paused_reason = result.state, result.paused_reason
        if result.state != MailingState.sending.value:
            break
        if result.next_attempt_at is not None:
            time.sleep(max(0.0, min((result.next_attempt_at - utcnow()).total_seconds(), 60.0)))
    after = ledger_counts(db, mailing_id)
    for status in (RecipientStatus.sent, RecipientStatus.failed, RecipientStatus.skipped):
        setattr(total, status.value, after.get(status.value, 0) - before.get(status.value, 0))
    total.seconds = time.monotonic() - began
    return total
