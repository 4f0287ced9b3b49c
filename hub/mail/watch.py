"""Near-real-time mail: IMAP connections that wake a mailbox's sync as soon as one of its folders changes.

The watcher only says "something changed"; the sync itself (STATUS, fetch, store) runs as usual,
so a missed notification costs a delay until the next poll, never mail.

Every folder the sync syncs (:func:`hub.mail.imap.folders_to_sync`) is watched:

- the server advertises NOTIFY (RFC 5465) and the other folders' names are ASCII: one connection selects
  the first folder and asks for the others' new, expunged and re-flagged messages, which arrive as
  untagged STATUS during IDLE;
- otherwise one IDLE connection per folder, at most :data:`MAX_CONNECTIONS` per mailbox (servers
  limit connections per user and address, and the user's own mail programs count too), and the first
  connection asks the remaining folders' STATUS every :data:`POLL_SECONDS` between IDLE rounds;
- the server does not offer IDLE (some Exchange and hosted servers): one connection asks every folder's
  STATUS every :data:`POLL_SECONDS`, and the state says so (a client must not use an extension the
  server does not advertise, and imapclient refuses to).

A dropped connection is noticed at once, not when an IDLE round ends: imapclient's ``idle_check``
swallows end of file, so a readable socket that yields nothing ends the round and the DONE that
follows proves whether the server is still there; TCP keepalive catches peers that vanish without a
word, and a NOOP between rounds catches them where keepalive is not available. The watcher then
reconnects with backoff and wakes the sync once the server is back, since mail may have arrived
in between.

Each watcher's state is kept in memory in plain words (:func:`watcher_states`) and logged when it
changes; it is not stored in the database.
"""

from __future__ import annotations

import imaplib
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from imapclient import IMAPClient
from imapclient.imapclient import _parse_untagged_response
from sqlalchemy import select as sql_select
from sqlalchemy.exc import SQLAlchemyError

from hub.db import Database
from hub.mail.imap import MailServerError, connect, folders_to_sync
from hub.models import Mailbox
from hub.secrets import SecretUnreadable, decrypt

log = logging.getLogger(__name__)

IDLE_SECONDS = 60  # one IDLE round; between rounds a NOOP, the polls, and a look at the mailbox settings
POLL_SECONDS = 60  # folders beyond MAX_CONNECTIONS on servers without NOTIFY
MAX_CONNECTIONS = 3  # per mailbox; Dovecot allows 10 per user and address, shared with mail programs
RELOAD_SECONDS = 60  # how often the list of active mailboxes and a mailbox's settings are re-read
CHECK_SECONDS = 1.0  # how long one wait for the socket lasts: bounds how late the stop event is seen
STOP_SECONDS = 5.0  # how long watch() waits for its threads once stopped
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
GOOD_SECONDS = 30.0  # a connection that watched this long resets the backoff; a flapping server does not
# A peer that vanishes without closing (power cut, NAT timeout) is declared dead after about
# KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT seconds of silence.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 20, 5, 3

CHANGE_EVENTS = b"(MessageNew MessageExpunge FlagChange)"


@dataclass(frozen=True)
class WatcherState:
    """What a mailbox's watcher is doing, in plain words, and since when (UTC)."""

    text: str
    since: datetime


_states: dict[int, WatcherState] = {}
_states_lock = threading.Lock()


def watcher_states() -> dict[int, WatcherState]:
    """The state of every mailbox watcher running in this process, by mailbox id."""
    with _states_lock:
        return dict(_states)


@dataclass(frozen=True)
class _Account:
    host: str
    port: int
    security: str
    username: str
    password: str = field(repr=False)
    folders: str


@dataclass(frozen=True)
class _Plan:
    """Which connection watches which folders; equal plans keep the running connections."""

    account: _Account
    notify: bool
    folders: tuple[str, ...]
    idle: bool = True

    @property
    def connections(self) -> int:
        if self.notify or not self.idle:
            return 1
        return max(1, min(len(self.folders), MAX_CONNECTIONS))

    @property
    def polled(self) -> tuple[str, ...]:
        if not self.idle:
            return self.folders
        return () if self.notify else self.folders[MAX_CONNECTIONS:]

    def describe(self) -> str:
        if not self.folders:
            return "no folder to watch"
        if not self.idle:
            return f"polling {', '.join(self.folders)} every {POLL_SECONDS} s (the server does not offer IDLE)"
        if self.notify:
            return f"watching {', '.join(self.folders)} (NOTIFY)"
        idle = self.folders[: self.connections]
        text = f"watching {', '.join(idle)} (IDLE, {len(idle)} connection{'s' if len(idle) > 1 else ''})"
        if self.polled:
            text += f", polling {', '.join(self.polled)} every {POLL_SECONDS} s"
        return text


class _Backoff:
    def __init__(self) -> None:
        self.delay = BACKOFF_FIRST

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, BACKOFF_MAX)
        return delay

    def reset(self) -> None:
        self.delay = BACKOFF_FIRST


class MailboxWatch(threading.Thread):
    """Watches one mailbox. This thread holds the first connection and starts the others its plan needs.

    It ends when ``stop`` is set or the mailbox is removed or deactivated (``watch`` starts a new
    one if it comes back).
    """

    def __init__(
        self,
        database: Database,
        secret_key: str,
        allowed_hosts: str,
        mailbox_id: int,
        on_change: Callable[[int], None],
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"watch-mailbox-{mailbox_id}", daemon=True)
        self.database, self.secret_key, self.mailbox_id = database, secret_key, mailbox_id
        self.allowed_hosts = allowed_hosts
        self.on_change, self.stop = on_change, stop
        self.plan: _Plan | None = None
        self._retired = False
        self._notify_refused = False
        self._extra: dict[int, threading.Thread] = {}
        self._watching_since: dict[int, float] = {}
        self._problems: dict[int, str] = {}  # by connection: what is wrong with it, in words
        self._problems_lock = threading.Lock()  # the connections' threads all report

    # --- threads and reconnecting ----------------------------------------------------------------

    def run(self) -> None:
        try:
            self._keep_connected(0)
        finally:
            self._retired = True
            deadline = time.monotonic() + STOP_SECONDS
            for thread in list(self._extra.values()):
                thread.join(max(0.0, deadline - time.monotonic()))
            with self._problems_lock:
                self._problems.clear()
            self._set_state("stopped" if self.stop.is_set() else "mailbox removed or inactive; not watched")

    def _finished(self, connection: int) -> bool:
        if self.stop.is_set() or self._retired:
            return True
        return connection > 0 and (self.plan is None or connection >= self.plan.connections)

    def _keep_connected(self, connection: int) -> None:
        backoff = _Backoff()
        while not self._finished(connection):
            try:
                self._connection(connection)
            except (MailServerError, SecretUnreadable, OSError, SQLAlchemyError) as exc:
                if self.stop.is_set():
                    return
                since = self._watching_since.pop(connection, None)
                if since is not None and time.monotonic() - since >= GOOD_SECONDS:
                    backoff.reset()
                delay = backoff.next()
                what = "connection dropped" if since is not None else "cannot connect"
                self._report(connection, f"{what} ({exc}); reconnecting in {delay:.0f} s")
                self.stop.wait(delay)
            else:
                # Ended on purpose (new settings, new plan, stop): reconnect at once if still wanted.
                self._watching_since.pop(connection, None)
        if connection > 0:
            self._report(connection, None)  # a connection the plan no longer needs has no problem

    def _start_extra_connections(self, plan: _Plan) -> None:
        for connection in range(1, plan.connections):
            thread = self._extra.get(connection)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(
                    target=self._keep_connected,
                    args=(connection,),
                    name=f"{self.name}-{connection + 1}",
                    daemon=True,
                )
                self._extra[connection] = thread
                thread.start()

    # --- one connection ----------------------------------------------------------------------------

    def _load(self) -> _Account | None:
        with self.database.transaction() as session:
            box = session.get(Mailbox, self.mailbox_id)
            if box is None or not box.active:
                return None
            return _Account(
                box.host,
                box.port,
                box.security.value,
                box.username,
                decrypt(self.secret_key, box.password_encrypted),
                box.folders or "",
            )

    def _connection(self, connection: int) -> None:
        """Connect, watch until stop, new settings or a new plan; a dropped connection raises."""
        if connection == 0:
            account = self._load()
            if account is None:
                self._retired = True
                return
        else:
            if self.plan is None:
                return
            account = self.plan.account
        with connect(
            account.host,
            account.port,
            account.security,
            account.username,
            account.password,
            allowed_hosts=self.allowed_hosts,
        ) as client:
            _keep_alive(client.socket())
            if connection == 0:
                idle = client.has_capability("IDLE")
                folders = tuple(name for name, _use in folders_to_sync(client, account.folders))
                notify = (
                    idle
                    and b"NOTIFY" in client.capabilities()
                    and not self._notify_refused
                    # Dovecot 2.3 compares NOTIFY's folder names without decoding modified UTF-7 (and
                    # reports such folders in raw UTF-8): a non-ASCII folder ("Offertes €") would never
                    # wake the sync. IDLE and STATUS handle those names well.
                    and all(name.isascii() for name in folders[1:])
                )
                found = _Plan(account, notify, folders, idle)
                if found != self.plan:
                    self.plan = found
            plan = self.plan
            if plan is None or plan.account != account:
                return  # connection 0 found new settings meanwhile: connect again with those
            self._listen(client, connection, plan)

    def _listen(self, client: IMAPClient, connection: int, plan: _Plan) -> None:
        if not plan.folders:
            self._report(connection, None)
            self.stop.wait(RELOAD_SECONDS)
            return
        folder = plan.folders[connection]
        client.select_folder(folder, readonly=True)
        if connection == 0 and plan.notify and len(plan.folders) > 1 and not self._notify_set(client, plan):
            return
        statuses = _statuses(client, plan.polled)
        # Anything that arrived while nobody was listening (first start, or the server was away).
        self._wake()
        self._report(connection, None)
        if connection == 0:
            self._start_extra_connections(plan)
        self._watching_since[connection] = time.monotonic()
        next_poll = time.monotonic() + POLL_SECONDS
        next_reload = time.monotonic() + RELOAD_SECONDS
        while not self._finished(connection) and self.plan is plan:
            # The connection that polls ends its round when the poll is due.
            ends = time.monotonic() + IDLE_SECONDS
            if connection == 0 and plan.polled:
                ends = min(ends, next_poll)
            if plan.idle:
                changed = self._idle_round(client, connection, plan, ends)
            else:  # nothing to listen to: wait for the poll (or stop)
                self.stop.wait(max(0.0, ends - time.monotonic()))
                changed = False
            if self._finished(connection):
                return
            # Proves the connection is alive where keepalive is not available, and collects what
            # the server said between DONE and now.
            _text, responses = client.noop()
            changed = changed or any(_is_change(r) for r in responses)
            if connection == 0 and plan.polled and time.monotonic() >= next_poll:
                now = _statuses(client, plan.polled)
                changed = changed or now != statuses
                statuses, next_poll = now, time.monotonic() + POLL_SECONDS
            if changed:
                self._wake()
            if connection == 0 and time.monotonic() >= next_reload:
                next_reload = time.monotonic() + RELOAD_SECONDS
                if self._load() != plan.account:
                    return  # new settings, or the mailbox was deactivated: start over

    def _notify_set(self, client: IMAPClient, plan: _Plan) -> bool:
        """Ask for the other folders' changes (RFC 5465); False if the server refused, after which
        the IDLE-per-folder plan is used."""
        names = b" ".join(client._normalise_folder(name) for name in plan.folders[1:])
        try:
            typ, data = client._raw_command(
                b"NOTIFY",
                [b"SET", b"(selected " + CHANGE_EVENTS + b")", b"(mailboxes (" + names + b") " + CHANGE_EVENTS + b")"],
                uid=False,
            )
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:  # BAD
            typ, data = "BAD", [str(exc).encode()]
        if typ == "OK":
            return True
        self._notify_refused = True
        log.warning(
            "mailbox %s watcher: the server refused NOTIFY (%r); watching each folder on its own", self.mailbox_id, data
        )
        return False

    def _idle_round(self, client: IMAPClient, connection: int, plan: _Plan, ends: float) -> bool:
        """One IDLE round until ``ends`` (monotonic); True if the server reported a change.

        Raises when the connection is gone."""
        client.idle()
        # What the server sent right behind "+ idling" may already sit in imaplib's read buffer,
        # where poll() cannot see it: read that first.
        responses = _idle_responses(client)
        changed = _check(responses)
        sock = client.socket()
        while not changed and time.monotonic() < ends and not self._finished(connection) and self.plan is plan:
            if not _readable(sock, CHECK_SECONDS):
                continue
            responses = _idle_responses(client)
            if not responses:
                # Readable, and yet nothing came: the server has most likely closed the connection
                # (over TLS it may also have been a record without data). The DONE below tells
                # which: it raises on a closed connection.
                break
            changed = _check(responses)
        _text, responses = client.idle_done()
        return changed or any(_is_change(r) for r in responses)

    # --- waking and health -------------------------------------------------------------------------

    def _wake(self) -> None:
        try:
            self.on_change(self.mailbox_id)
        except Exception:
            # A broker hiccup must not end the watcher: the mail waits for the next poll at worst.
            log.exception("mailbox %s watcher: could not wake the sync", self.mailbox_id)

    def _report(self, connection: int, problem: str | None) -> None:
        """Record how one connection is doing (``None``: watching) and update the mailbox's state."""
        plan = self.plan
        problems = []
        with self._problems_lock:
            if problem is None:
                self._problems.pop(connection, None)
            else:
                self._problems[connection] = problem
            for number, text in sorted(self._problems.items()):
                if number > 0 and plan is not None and number < len(plan.folders):
                    text = f"{plan.folders[number]}: {text}"
                problems.append(text)
        if problems:
            self._set_state("; ".join(problems), logging.WARNING)
        elif plan is not None:
            self._set_state(plan.describe())

    def _set_state(self, text: str, level: int = logging.INFO) -> None:
        with _states_lock:
            previous = _states.get(self.mailbox_id)
            if previous is not None and previous.text == text:
                return
            _states[self.mailbox_id] = WatcherState(text, datetime.now(UTC))
        log.log(level, "mailbox %s watcher: %s", self.mailbox_id, text)


def _idle_responses(client: IMAPClient) -> list[object]:
    """The untagged responses that can be read now without waiting (parsed as imapclient does).

    Like ``IMAPClient.idle_check``, whose loop this is, except that it also reads what imaplib
    has buffered; and, as there, end of file ends the list: the caller tells it from "nothing yet".
    """
    sock = client.socket()
    timeout = sock.gettimeout()
    sock.setblocking(False)
    responses: list[object] = []
    try:
        while True:
            try:
                line = client._imap._get_line()
            except imaplib.IMAP4.abort as exc:
                if "EOF" in str(exc):  # imaplib's words for "read nothing": no data now, or closed
                    break
                raise
            except OSError:  # would block (BlockingIOError, ssl.SSLWantReadError)
                break
            responses.append(_parse_untagged_response(line))
    finally:
        sock.settimeout(timeout)
    return responses


def _check(responses: list[object]) -> bool:
    """Whether the responses report a change; raises if the server said goodbye."""
    if any(isinstance(r, tuple) and r and r[0] == b"BYE" for r in responses):
        raise EOFError("the server closed the connection")
    return any(_is_change(r) for r in responses)


def _is_change(response: object) -> bool:
    if not isinstance(response, tuple) or len(response) < 2:
        return False
    # STATUS: NOTIFY reporting a folder that is not selected.
    return response[0] == b"STATUS" or response[1] in (b"EXISTS", b"EXPUNGE", b"FETCH", b"RECENT")


def _statuses(client: IMAPClient, folders: Iterable[str]) -> dict[str, tuple[object, ...]]:
    items = [b"UIDNEXT", b"MESSAGES"] + ([b"HIGHESTMODSEQ"] if client.has_capability("CONDSTORE") else [])
    result = {}
    for folder in folders:
        status = client.folder_status(folder, items)
        result[folder] = tuple(status.get(item) for item in items)
    return result


def _readable(sock: socket.socket, timeout: float) -> bool:
    """Whether the socket has data, end of file or an error, waiting at most ``timeout`` seconds."""
    if hasattr(select, "poll"):
        # poll, not select: select cannot watch descriptors above 1024, which many mailboxes reach.
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(timeout * 1000))
    readable, _w, errored = select.select([sock], [], [sock], timeout)
    return bool(readable or errored)


def _keep_alive(sock: socket.socket) -> None:
    """Let the kernel probe a silent connection, so a vanished server is noticed in under a minute."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPALIVE", KEEPALIVE_IDLE),  # macOS's name for TCP_KEEPIDLE
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    ):
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def watch(
    database: Database,
    secret_key: str,
    on_change: Callable[[int], None],
    stop: threading.Event,
    *,
    allowed_hosts: str,
) -> None:
    """Keep one watcher per active mailbox until ``stop`` is set; picks up new mailboxes as they come.

    Returns within about :data:`STOP_SECONDS` of ``stop`` being set, its threads ended.
    """
    watchers: dict[int, MailboxWatch] = {}
    try:
        while not stop.is_set():
            for mailbox_id in [m for m, w in watchers.items() if not w.is_alive()]:
                del watchers[mailbox_id]
            try:
                with database.transaction() as session:
                    active = set(session.scalars(sql_select(Mailbox.id).where(Mailbox.active.is_(True))))
            except SQLAlchemyError as exc:
                # The running watchers go on; the list is read again at the next reload.
                log.warning("mail watch: cannot read the mailboxes (%s); trying again in %s s", exc, RELOAD_SECONDS)
                active = set(watchers)
            for mailbox_id in active - watchers.keys():
                watchers[mailbox_id] = MailboxWatch(database, secret_key, allowed_hosts, mailbox_id, on_change, stop)
                watchers[mailbox_id].start()
            stop.wait(RELOAD_SECONDS)
    finally:
        if stop.is_set():
            deadline = time.monotonic() + STOP_SECONDS
            for watcher in watchers.values():
                watcher.join(max(0.0, deadline - time.monotonic()))
