"""A mailbox form is no port scanner: internal hosts are refused, and a non-admin cannot tell an open
port from a closed one by the error text. Real sockets on loopback; loopback allowed where noted."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from hub.config import Settings
from hub.mail import imap
from hub.mail.imap import MailServerError, connect, public_error
from hub.models import User
from tests.conftest import csrf_token, make_settings
from tests.mail_server import ImapServer
from tests.servers import free_port

LOOPBACK = "127.0.0.1,localhost,::1"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """This file's app allows no internal host at all (the other tests pass their own allow-list)."""
    return make_settings(tmp_path / "var", HUB_MAIL_ALLOWED_HOSTS="")


@contextlib.contextmanager
def tcp_server(port: int, handle: Callable[[socket.socket], None]) -> Iterator[list[socket.socket]]:
    """A one-thread TCP server on 127.0.0.1:port that gives every connection to ``handle``."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(conn)
            handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield accepted
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in accepted:
            conn.close()


def failure(port: int) -> str:
    with pytest.raises(MailServerError) as caught, connect("127.0.0.1", port, "none", "u", "p", allowed_hosts=LOOPBACK):
        pass
    return str(caught.value)


def test_connect_refuses_an_internal_host_before_connecting() -> None:
    port = free_port()
    with tcp_server(port, lambda conn: conn.sendall(b"* OK IMAP ready\r\n")) as accepted:
        with (
            pytest.raises(MailServerError, match="on an internal network"),
            connect("127.0.0.1", port, "none", "u", "p"),
        ):
            pass
        with (
            pytest.raises(MailServerError, match="on an internal network"),
            connect("localhost", port, "none", "u", "p"),
        ):
            pass
        # Allowed for another port only: still refused.
        with (
            pytest.raises(MailServerError, match="on an internal network"),
            connect("127.0.0.1", port, "none", "u", "p", allowed_hosts=f"127.0.0.1:{port + 1}"),
        ):
            pass
    assert accepted == [], "nothing may reach the internal host"


def test_a_non_admin_cannot_tell_open_closed_and_dropped_ports_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imap, "TIMEOUT_SECONDS", 1)
    port = free_port()
    details = {}
    with tcp_server(port, lambda conn: conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")):
        details["open, not IMAP"] = failure(port)
    with tcp_server(port, lambda conn: None):  # accepts and never says a word
        details["open, silent"] = failure(port)
    with tcp_server(port, lambda conn: conn.close()):
        details["dropped"] = failure(port)
    details["closed"] = failure(port)

    # Admins see what happened ...
    assert len(set(details.values())) >= 3, details
    assert "connection refused" in details["closed"]
    # ... a non-admin reads one and the same sentence for all of them.
    public = {kind: public_error(detail, "127.0.0.1", port) for kind, detail in details.items()}
    assert set(public.values()) == {f"Cannot connect to 127.0.0.1:{port}."}, public


def test_a_refused_login_is_still_said_plainly(dovecot: ImapServer) -> None:
    with (
        pytest.raises(MailServerError) as caught,
        connect(dovecot.host, dovecot.port, "none", "user1", "wrong", allowed_hosts=LOOPBACK),
    ):
        pass
    detail = str(caught.value)
    assert public_error(detail, dovecot.host, dovecot.port) == detail == "The server refused the user name or password."
    assert public_error("", dovecot.host, dovecot.port) == ""


def test_an_allowed_host_connects_to_the_checked_address(dovecot: ImapServer) -> None:
    with connect("localhost", dovecot.port, "none", "user1", "imap-secret", allowed_hosts="localhost") as client:
        assert client.socket().getpeername()[0] in {"127.0.0.1", "::1"}
        assert client.select_folder("INBOX")


def test_saving_a_mailbox_on_an_internal_host_is_refused(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[[FlaskClient, User], FlaskClient]
) -> None:
    login(client, make_user())
    form = client.get("/mail/mailboxes/new")
    response = client.post(
        "/mail/mailboxes/new",
        data={
            "csrf_token": csrf_token(form.text),
            "host": "127.0.0.1",
            "port": "143",
            "security": "none",
            "username": "me",
            "password": "pw",
            "poll_interval_seconds": "300",
        },
    )
    assert response.status_code == 400
    assert "The server 127.0.0.1 is on an internal network" in response.text
    assert "hub only connects to public servers" in response.text
