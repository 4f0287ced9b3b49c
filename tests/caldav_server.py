"""A real Radicale CalDAV server for the tests and the benchmark, with authentication on.

Radicale (from the project's .venv) runs in a temp dir on a free loopback port, with an htpasswd
file of users (plain passwords: bcrypt would need a module hub itself does not use) and its
storage in the temp dir. ``users`` log in; a calendar is made with :meth:`RadicaleServer.make_calendar`.

:class:`AnswerDroppingProxy` sits in front of it for the fault tests: it passes requests on, and for
the ones it is told to, lets Radicale store the event but closes the connection before the answer
reaches hub, which is what a timeout after the server stored the event looks like to a client.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import caldav

from hub.db import Database
from hub.models import User
from tests.servers import free_port, wait_for_port

RADICALE = Path(sys.executable).parent / "radicale"


class RadicaleServer:
    def __init__(self, base: Path, users: dict[str, str]) -> None:
        self.base = base
        self.users = dict(users)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        (self.base / "htpasswd").write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
        (self.base / "config").write_text(
            "\n".join(
                [
                    "[server]",
                    f"hosts = 127.0.0.1:{self.port}",
                    "[auth]",
                    "type = htpasswd",
                    f"htpasswd_filename = {self.base / 'htpasswd'}",
                    "htpasswd_encryption = plain",
                    "delay = 0",
                    "[rights]",
                    "type = owner_only",
                    "[storage]",
                    f"filesystem_folder = {self.base / 'collections'}",
                    "[web]",
                    "type = none",
                    "[logging]",
                    "level = warning",
                    "",
                ]
            )
        )
        log = open(self.base / "radicale.log", "ab")  # noqa: SIM115  (kept open for the process's life)
        self.proc = subprocess.Popen(
            [str(RADICALE), "--config", str(self.base / "config")], stdout=log, stderr=subprocess.STDOUT
        )
        wait_for_port(self.port, 30, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def add_user(self, username: str, password: str) -> None:
        """A new login (Radicale reads the htpasswd file again when it changes)."""
        self.users[username] = password
        (self.base / "htpasswd").write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))

    def client(self, username: str) -> caldav.DAVClient:
        return caldav.DAVClient(url=self.url, username=username, password=self.users[username], enable_rfc6764=False)

    def make_calendar(self, username: str, name: str = "Work") -> str:
        """A new calendar in the user's home; its URL."""
        with self.client(username) as client:
            cal = client.principal().make_calendar(name=name)
            return str(cal.url)

    def objects(self, calendar_url: str, username: str) -> list[bytes]:
        """Every event in the calendar, as the server stores it (for checks outside hub)."""
        with self.client(username) as client:
            cal = client.calendar(url=calendar_url)
            return [obj.data.encode() if isinstance(obj.data, str) else obj.data for obj in cal.events()]


@contextmanager
def radicale(users: dict[str, str] | None = None) -> Iterator[RadicaleServer]:
    base = Path(tempfile.mkdtemp(prefix="hub-test-radicale-"))
    server = RadicaleServer(base, users or {})
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


class AnswerDroppingProxy:
    """A TCP proxy to ``port``; :meth:`drop_answers` makes the next requests of a method reach the
    server but lose their answer (the connection is closed before it is passed back)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.port = free_port()
        self.drops: dict[str, int] = {}
        self.errors: dict[str, tuple[int, int]] = {}  # method → (skip this many, then fail this many)
        self.hold_after: dict[str, int] = {}
        self.holding = threading.Event()  # a request is being held
        self.released = threading.Event()
        self.dropped = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def drop_answers(self, method: str, times: int = 1) -> None:
        with self._lock:
            self.drops[method] = times

    def fail_with_503(self, method: str, *, after: int, times: int = 1) -> None:
        """Let ``after`` requests of ``method`` through, then answer the next ``times`` with a 503
        without passing them on (a server failing mid-batch)."""
        with self._lock:
            self.errors[method] = (after, times)

    def hold(self, method: str, *, after: int) -> None:
        """Let ``after`` requests of ``method`` through, then hold the next one (the client waits for
        its answer) until :meth:`release`; it then reaches the server, as a request in flight does."""
        with self._lock:
            self.hold_after[method] = after

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        with suppress(OSError):
            self._server.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _sep, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _c, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _handle(self, conn: socket.socket) -> None:
        # One request per connection, closed after its answer (the client simply reconnects), so
        # an answer is always whole and never needs re-framing here.
        with conn:
            request = self._read_request(conn)
            if not request:
                return
            method = request.split(b" ", 1)[0].decode()
            with self._lock:
                skip, fail = self.errors.get(method, (0, 0))
                if fail and not skip:
                    self.errors[method] = (0, fail - 1)
                elif fail:
                    self.errors[method] = (skip - 1, fail)
            with self._lock:
                held = self.hold_after.get(method)
                if held is not None:
                    self.hold_after[method] = held - 1
                    if held == 0:
                        del self.hold_after[method]
            if held == 0:
                self.holding.set()
                self.released.wait()
            if fail and not skip:
                conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            head, _sep, body = request.partition(b"\r\n\r\n")
            lines = [
                line for line in head.split(b"\r\n") if not line.lower().startswith((b"connection:", b"keep-alive:"))
            ]
            upstream_request = b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body
            with socket.create_connection(("127.0.0.1", self.target)) as upstream:
                upstream.sendall(upstream_request)
                answer = b""
                while chunk := upstream.recv(65536):
                    answer += chunk
            with self._lock:
                drop = self.drops.get(method, 0) > 0
                if drop:
                    self.drops[method] -= 1
                    self.dropped += 1
            if not drop:  # a dropped answer: the server stored it, the client never hears so
                with suppress(OSError):  # the client may be gone (a killed worker)
                    conn.sendall(answer)


# --- hub's side: a staff member connected to a calendar on the server ------------------------------------

_names = itertools.count(1)
# Radicale runs on loopback, which hub refuses unless allowed (tests.conftest allows the same).
LOOPBACK_HOSTS = "127.0.0.1,localhost,::1"


def connect_calendar(
    db: Database, secret_key: str, server: RadicaleServer, user: User, *, url: str = ""
) -> tuple[int, str]:
    """A login and a calendar on ``server`` for ``user``, and his calendar account in hub (as
    ``hub calendar account add`` makes it); the account's id and the calendar's URL."""
    from hub.calendar.accounts import AccountInput, discover, save_account

    login = f"staff{next(_names)}"
    server.add_user(login, f"pw-{login}")
    calendar_url = server.make_calendar(login, "Work")
    found = discover(url or server.url, login, f"pw-{login}", allowed_hosts=LOOPBACK_HOSTS)
    with db.transaction() as session:
        owner = session.get_one(User, user.id)
        account = save_account(
            session,
            secret_key,
            owner,
            AccountInput(url=url or server.url, username=login, password=f"pw-{login}", calendar="Work"),
            found=found,
        )
        return account.id, calendar_url
