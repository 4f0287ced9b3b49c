"""A real Xandikos CalDAV server for the tests: the second, independent server hub is proven on.

Xandikos (from the project's .venv) is a strict CalDAV/CardDAV server that keeps each calendar in a
git repository. It runs in a temp dir on a free loopback port, in its single-user mode with its
``--defaults`` (principal ``/user/``, calendar home ``/user/calendars/`` holding one calendar named
``calendar``), optionally under a ``route_prefix`` as behind a reverse proxy. It has no
authentication of its own (the proxy in front of it does that): hub's Basic credentials are sent
and ignored, so every login reaches the same principal. One server per test keeps tests apart.

It offers what tests.caldav_server.RadicaleServer offers (``url``, ``port``, ``add_user``,
``client``, ``make_calendar``, ``objects``), so tests.caldav_server.connect_calendar works with it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import caldav

from tests.servers import free_port, wait_for_port

XANDIKOS = Path(sys.executable).parent / "xandikos"


class XandikosServer:
    def __init__(self, base: Path, route_prefix: str = "/") -> None:
        self.base = base
        self.route_prefix = "/" + route_prefix.strip("/") + "/" if route_prefix.strip("/") else "/"
        self.users: dict[str, str] = {}
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's root, as a user would type it."""
        return f"http://127.0.0.1:{self.port}{self.route_prefix}"

    @property
    def home_url(self) -> str:
        """The calendar home of the one principal."""
        return self.url + "user/calendars/"

    def start(self) -> None:
        log = open(self.base / "xandikos.log", "ab")  # noqa: SIM115  (kept open for the process's life)
        self.proc = subprocess.Popen(
            [
                str(XANDIKOS),
                "serve",
                "-d",
                str(self.base / "data"),
                "--state-dir",
                str(self.base / "state"),
                "-l",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--defaults",
                "--route-prefix",
                self.route_prefix,
                "--no-detect-systemd",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
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
        """Remembered for :meth:`client`; Xandikos itself takes any login (see the module's doc)."""
        self.users[username] = password

    def client(self, username: str = "") -> caldav.DAVClient:
        """A plain caldav client, as another calendar app of the user's would be."""
        return caldav.DAVClient(
            url=self.url, username=username or None, password=self.users.get(username), enable_rfc6764=False
        )

    def make_calendar(self, username: str = "", name: str = "Work") -> str:
        """A new calendar (MKCALENDAR in the calendar home, named ``name``); its URL."""
        with self.client(username) as client:
            cal = client.principal().make_calendar(name=name)
            return str(cal.url)

    def objects(self, calendar_url: str, username: str = "") -> list[bytes]:
        """Every event in the calendar, as the server stores it (for checks outside hub)."""
        with self.client(username) as client:
            cal = client.calendar(url=calendar_url)
            return [obj.data.encode() if isinstance(obj.data, str) else obj.data for obj in cal.events()]


@contextmanager
def xandikos(route_prefix: str = "/") -> Iterator[XandikosServer]:
    base = Path(tempfile.mkdtemp(prefix="hub-test-xandikos-"))
    server = XandikosServer(base, route_prefix)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
