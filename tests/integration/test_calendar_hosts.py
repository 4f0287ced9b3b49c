"""A colleague's CalDAV address cannot make hub talk to internal services: an internal server is
refused unless an admin allowed it (HUB_MAIL_ALLOWED_HOSTS, as for mail servers), the checked
address is the one connected to, and a redirect to another server is not followed."""

from __future__ import annotations

import http.server
import socketserver
import threading
from collections.abc import Iterator

import pytest

from hub.calendar import accounts
from hub.calendar.dav import CalendarError


class _Redirect(http.server.BaseHTTPRequestHandler):
    target = ""
    seen: list[str] = []

    def _answer(self) -> None:
        _Redirect.seen.append(self.command)
        self.send_response(301)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PROPFIND = do_OPTIONS = do_REPORT = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def redirecting() -> Iterator[int]:
    server = socketserver.TCPServer(("127.0.0.1", 0), _Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_an_internal_calendar_server_is_refused_unless_allowed(redirecting: int) -> None:
    url = f"http://127.0.0.1:{redirecting}/dav/"
    with pytest.raises(CalendarError) as refused:
        accounts.discover(url, "u", "p", allowed_hosts="")
    assert "internal network" in refused.value.words and "HUB_MAIL_ALLOWED_HOSTS" in refused.value.words
    assert not refused.value.temporary
    ok, words = accounts.test_connection(f"http://localhost:{redirecting}/dav/", "u", "p", allowed_hosts="")
    assert not ok and "internal network" in words
    assert _Redirect.seen == []  # nothing was sent to it


def test_a_redirect_to_another_server_is_not_followed(redirecting: int) -> None:
    _Redirect.target = "http://127.0.0.2:6379/"  # an internal service elsewhere
    _Redirect.seen = []
    with pytest.raises(CalendarError) as refused:
        accounts.discover(f"http://127.0.0.1:{redirecting}/dav/", "u", "p", allowed_hosts="127.0.0.1")
    assert "another server" in refused.value.words
    assert _Redirect.seen  # the allowed server was asked; where it pointed was not
