"""One-click unsubscribe (RFC 8058) over real HTTP, the way a mail provider calls it: a POST with
``List-Unsubscribe=One-Click`` and no cookie, no CSRF token, to the URL of the message's
List-Unsubscribe header. GET only shows a page; POST unsubscribes, idempotently, and the next send
skips the address; a forged or altered token changes nothing."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from hub.campaigns import sending
from hub.campaigns.bounces import is_suppressed
from hub.db import Database
from hub.models.campaigns import MailingRecipient
from tests.integration.test_campaign_sending import (
    mailing_settings,
    make_mailing,
    run_to_end,
    seed_contacts,
)
from tests.servers import free_port


@pytest.fixture
def http_app(app: Flask) -> Iterator[str]:
    """The web app on a real HTTP server (werkzeug) on a free loopback port."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(10)


def _request(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_one_click_unsubscribe_as_a_mail_provider_calls_it(
    tmp_path: Path, db: Database, smtp_server: Any, http_app: str
) -> None:
    seed_contacts(db, 5)
    settings = mailing_settings(tmp_path, db, smtp_server.url)
    first = make_mailing(db)
    run_to_end(db, settings, first)
    message = next(m for m in smtp_server.messages() if m["To"].addresses[0].addr_spec == "r3@example.test")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = message["List-Unsubscribe"].strip().strip("<>")
    assert link.startswith("https://hub.example/u/")
    path = urlsplit(link).path

    # A link scanner (GET) changes nothing.
    status, page, _headers = _request(http_app + path)
    assert status == 200 and "r3@example.test" in page
    with db.transaction() as s:
        assert is_suppressed(s, "r3@example.test") == ""

    # The provider's one-click POST: no cookie, no CSRF token; answered 200, never a redirect.
    status, page, headers = _request(http_app + path, "POST", b"List-Unsubscribe=One-Click")
    assert status == 200, page
    assert "Location" not in headers
    with db.transaction() as s:
        assert is_suppressed(s, "r3@example.test") == "unsubscribed"
        row = s.scalars(select(MailingRecipient).where(MailingRecipient.address == "r3@example.test")).one()
        assert row.unsubscribed_at is not None
    # Again (providers retry): the same answer, nothing changes.
    status, _page, _headers = _request(http_app + path, "POST", b"List-Unsubscribe=One-Click")
    assert status == 200

    # A forged or altered token is a 404 and unsubscribes nobody.
    token = path.rsplit("/", 1)[1]
    recipient_id, _dot, signature = token.partition(".")
    other = str(int(recipient_id) + 1)
    for forged in (f"{other}.{signature}", f"{recipient_id}.{signature[:-2]}xx", "x" * 300, "%00"):
        status, _page, _headers = _request(f"{http_app}/u/{forged}", "POST", b"List-Unsubscribe=One-Click")
        assert status == 404
    with db.transaction() as s:
        assert is_suppressed(s, "r4@example.test") == ""

    # The next mailing skips the address.
    smtp_server.clear()
    second = make_mailing(db)
    results = run_to_end(db, settings, second)
    assert results[-1].state == "sent"
    assert sorted(smtp_server.recipients()) == [f"r{i}@example.test" for i in (0, 1, 2, 4)]


def test_unsubscribe_effective_for_the_rest_of_a_mailing_already_sending(
    tmp_path: Path, db: Database, smtp_server: Any
) -> None:
    from hub.campaigns.bounces import recipient_for_token, unsubscribe
    from hub.campaigns.messages import unsubscribe_token

    seed_contacts(db, 30)
    settings = mailing_settings(tmp_path, db, smtp_server.url)
    mailing_id = make_mailing(db)
    sending.start_due(db)
    with db.transaction() as s:
        row_id = s.scalar(select(MailingRecipient.id).where(MailingRecipient.address == "r29@example.test"))
        assert row_id is not None
        recipient = recipient_for_token(s, settings.secret_key, unsubscribe_token(settings.secret_key, row_id))
        assert recipient is not None
        assert unsubscribe(s, recipient) is True
        assert unsubscribe(s, recipient) is False  # idempotent
    run_to_end(db, settings, mailing_id)
    assert "r29@example.test" not in smtp_server.recipients()
    assert len(smtp_server.recipients()) == 29
