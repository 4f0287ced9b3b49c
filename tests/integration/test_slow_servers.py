"""Servers that drip their answer (a tarpit, or a hostile sender's image server): one byte every
fraction of a second keeps every single wait short, so a socket timeout alone never fires, and
http.client and imaplib read a line at a time. The image proxy (a web worker), a webhook delivery (a
worker holding a claim) and a mailbox's connection up to its login (a sync worker) must give up when
their whole time is spent, over plain connections and TLS, and say why; once logged in, a real
Dovecot connection keeps working past that time. Real sockets on 127.0.0.1; each call runs in a
thread the test waits for a bounded time, so the old behaviour fails the test instead of hanging
the suite."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.accounts.users import UserInput, create_user
from hub.db import Database
from hub.i18n import english
from hub.mail import imap
from hub.mail.image_proxy import ImageRefused, fetch_image
from hub.mail.imap import MailServerError, connect
from hub.models.webhooks import WebhookAttempt
from hub.webhooks.delivery import post, send_due
from hub.webhooks.subscriptions import SubscriptionInput, create_subscription, send_test_event
from tests.mail_server import ImapServer
from tests.servers import self_signed_certificate

ALLOWED = "127.0.0.1,localhost"
KEY = "test-secret-key-0123456789"
DRIP_EVERY = 0.2  # seconds between two bytes: far below any per-wait timeout used here
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@dataclass
class Dripper:
    """A TCP server that answers every connection slowly, in one of two ways: ``headers`` sends a
    status line and then a header one byte at a time for ever; ``body`` sends complete headers of an
    image of 100 kB and then its body one byte at a time."""

    mode: str
    port: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    connections: int = 0

    def serve(self, listener: socket.socket, wrap: Callable[[socket.socket], socket.socket] | None) -> None:
        listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn, wrap), daemon=True).start()

    def _drip(self, conn: socket.socket, wrap: Callable[[socket.socket], socket.socket] | None) -> None:
        try:
            if wrap is not None:
                conn = wrap(conn)
            conn.settimeout(5)
            if self.mode != "greeting":  # (an IMAP server speaks first)
                conn.recv(65536)  # the request (small enough to come in one read)
            if self.mode == "greeting":  # an IMAP server (or a tarpit on the wrong port) greeting slowly
                conn.sendall(b"* OK")
            elif self.mode == "headers":
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n")
            while not self.stop.is_set():
                conn.sendall(b"a")
                time.sleep(DRIP_EVERY)
        except OSError:
            pass  # the client gave up, as it should
        finally:
            conn.close()


def _start(mode: str, wrap: Callable[[socket.socket], socket.socket] | None = None) -> Iterator[Dripper]:
    dripper = Dripper(mode)
    listener = socket.create_server(("127.0.0.1", 0))
    dripper.port = listener.getsockname()[1]
    thread = threading.Thread(target=dripper.serve, args=(listener, wrap), daemon=True)
    thread.start()
    yield dripper
    dripper.stop.set()
    thread.join(5)
    listener.close()


@pytest.fixture(params=["headers", "body"])
def dripper(request: pytest.FixtureRequest) -> Iterator[Dripper]:
    yield from _start(request.param)


@pytest.fixture
def tls_dripper(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dripper]:
    """A dripper behind TLS (headers, or an IMAP greeting when the test is parametrized so), with
    a certificate for "localhost" hub is made to trust."""
    cert_path, key_path = self_signed_certificate(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    default_context = ssl.create_default_context

    def trusting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = default_context(*args, **kwargs)
        context.load_verify_locations(cert_path)
        return context

    monkeypatch.setattr(ssl, "create_default_context", trusting)
    mode = getattr(request, "param", "headers")
    yield from _start(mode, lambda conn: server_context.wrap_socket(conn, server_side=True))


def _within(seconds: float, call: Callable[[], Any]) -> tuple[Any, float]:
    """``call()``'s result (or the exception it raised) and how long it took; fails the test when it
    is still running after ``seconds`` (the call is left behind in its daemon thread)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # (returned for the test to look at)
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting on the dripping server after {seconds} s"
    return outcome[0], time.monotonic() - started


def test_the_image_proxy_gives_up_on_a_server_that_drips_its_answer(dripper: Dripper) -> None:
    url = f"http://127.0.0.1:{dripper.port}/pixel.png"
    result, took = _within(15, lambda: fetch_image(url, allowed_hosts=ALLOWED, timeout=1.5))
    assert isinstance(result, ImageRefused)
    assert str(result) == "The image server is too slow."
    assert took < 6
    assert dripper.connections == 1


def test_the_image_proxy_gives_up_on_a_tls_server_that_drips_its_headers(tls_dripper: Dripper) -> None:
    url = f"https://localhost:{tls_dripper.port}/pixel.png"
    result, took = _within(15, lambda: fetch_image(url, allowed_hosts=ALLOWED, timeout=1.5))
    assert isinstance(result, ImageRefused)
    assert str(result) == "The image server is too slow."
    assert took < 6


def test_a_webhook_post_to_a_dripping_receiver_ends_within_its_timeout(dripper: Dripper) -> None:
    url = f"http://127.0.0.1:{dripper.port}/hook"
    outcome, took = _within(
        15, lambda: post(url, "{}", {"Content-Type": "application/json"}, allowed_hosts=ALLOWED, timeout=1.5)
    )
    assert not outcome.ok and outcome.status_code is None
    assert english(outcome.error) == "The receiver did not answer within 1.5 seconds."
    assert took < 6


def test_a_webhook_post_to_a_dripping_tls_receiver_ends_within_its_timeout(tls_dripper: Dripper) -> None:
    url = f"https://localhost:{tls_dripper.port}/hook"
    outcome, took = _within(
        15, lambda: post(url, "{}", {"Content-Type": "application/json"}, allowed_hosts=ALLOWED, timeout=1.5)
    )
    assert english(outcome.error) == "The receiver did not answer within 1.5 seconds."
    assert took < 6


def test_a_delivery_to_a_dripping_receiver_is_logged_as_failed_and_retried_later(any_db: Database) -> None:
    """The whole delivery (claim, post, record) ends well inside the claim's lease: no second worker
    can take the same attempt over while the first still waits (which would send it twice)."""
    stream = _start("headers")
    dripper = next(stream)
    try:
        with any_db.transaction() as s:
            admin = create_user(
                s, UserInput(email="admin@staff.example", name="Admin", password="long enough pw", is_admin=True)
            )
            subscription, _secret = create_subscription(
                s,
                SubscriptionInput(url=f"http://127.0.0.1:{dripper.port}/hook", events=["relation.created"]),
                by=admin,
                secret_key=KEY,
                allowed_hosts=ALLOWED,
            )
            send_test_event(s, subscription)
        attempted, took = _within(
            20, lambda: send_due(any_db, secret_key=KEY, allowed_hosts=ALLOWED, timeout=1.5, delays=[60.0])
        )
        assert attempted == 1 and took < 8
        with any_db.transaction() as s:
            [(number, code, error)] = s.execute(
                select(WebhookAttempt.number, WebhookAttempt.status_code, WebhookAttempt.error)
            ).all()
        assert (number, code, english(error)) == (1, None, "The receiver did not answer within 1.5 seconds.")
        # Not due again yet (backing off), and nothing else waits.
        assert send_due(any_db, secret_key=KEY, allowed_hosts=ALLOWED, timeout=1.5) == 0
    finally:
        next(stream, None)


@pytest.fixture
def quick_imap(monkeypatch: pytest.MonkeyPatch) -> float:
    """Mail connections that must be logged in within 1.5 s (60 s in hub)."""
    monkeypatch.setattr(imap, "TIMEOUT_SECONDS", 1.5)
    return 1.5


def _slow_mail_server(exc: object) -> str:
    assert isinstance(exc, MailServerError), exc
    return str(exc)


def test_a_mail_server_that_drips_its_greeting_is_given_up_on(quick_imap: float) -> None:
    stream = _start("greeting")
    dripper = next(stream)
    try:
        result, took = _within(
            15,
            lambda: connect("127.0.0.1", dripper.port, "none", "user", "secret", allowed_hosts=ALLOWED).__enter__(),
        )
        assert _slow_mail_server(result) == "The server 127.0.0.1 did not answer within 1.5 seconds."
        assert took < 6
    finally:
        next(stream, None)


@pytest.mark.parametrize("tls_dripper", ["greeting"], indirect=True)
def test_a_tls_mail_server_that_drips_its_greeting_is_given_up_on(quick_imap: float, tls_dripper: Dripper) -> None:
    result, took = _within(
        15, lambda: connect("localhost", tls_dripper.port, "ssl", "user", "secret", allowed_hosts=ALLOWED).__enter__()
    )
    assert _slow_mail_server(result) == "The server localhost did not answer within 1.5 seconds."
    assert took < 6


def test_once_logged_in_a_mail_connection_outlives_the_connecting_deadline(
    quick_imap: float, dovecot: ImapServer
) -> None:
    """A first sync of a big mailbox takes minutes: only connecting and logging in are bounded as a
    whole; afterwards each wait has its own timeout, as before."""
    with connect(dovecot.host, dovecot.port, "none", "user99", "imap-secret", allowed_hosts=ALLOWED) as client:
        time.sleep(quick_imap + 0.5)
        assert any(name == "INBOX" for _flags, _delimiter, name in client.list_folders())
        time.sleep(0.5)
        assert client.select_folder("INBOX")[b"EXISTS"] >= 0
