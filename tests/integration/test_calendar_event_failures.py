"""One event the calendar server will not hand over (a 500 to its GET) is that event's failure, not
the account's: the other events are pulled, the failing one keeps its reason (push row, history,
sync-health page) and is read again at the next pull. A calendar whose listing fails still fails
the account, with backoff. The server is a small HTTP server of the test's own that speaks just
enough CalDAV (a sync-collection REPORT, GETs)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from hub.calendar.accounts import account_health_rows
from hub.calendar.appointments import AppointmentInput, history, save_appointment
from hub.calendar.dav import CalendarError
from hub.calendar.sync import sync_account
from hub.config import Settings
from hub.db import Database
from hub.models import Appointment, CalendarAccount, CalendarPush, User
from tests.caldav_server import LOOPBACK_HOSTS
from tests.conftest import new_user
from tests.servers import free_port

pytestmark = pytest.mark.timeout(120)


def _event(uid: str, title: str) -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\n"
        f"SUMMARY:{title}\r\nLAST-MODIFIED:20990101T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


class _Calendar:
    """What the server holds: path → (status of its GET, ETag, body); the status of its listing
    (the sync-collection REPORT and the PROPFIND hub lists by when that fails)."""

    def __init__(self) -> None:
        self.events: dict[str, tuple[int, str, bytes]] = {}
        self.listing_status = 207
        self.sync_collection = True  # False: a server without it, which hub lists by ETags (PROPFIND)
        self.token = 1
        self.gets: list[str] = []
        self.lock = threading.Lock()

    def listing(self, since: str | None) -> bytes:
        """The sync-collection answer (a token given), or the PROPFIND one (None)."""
        # A known token lists nothing new: the test changes nothing in between, so an event read
        # again at the next pull is read because hub remembered it, not because it was listed.
        names = [] if since == f"http://x/sync/{self.token}" else list(self.events)
        rows = "".join(
            f"<d:response><d:href>{path}</d:href><d:propstat><d:prop><d:getetag>{self.events[path][1]}"
            "</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
            for path in names
        )
        token = "" if since is None else f"<d:sync-token>http://x/sync/{self.token}</d:sync-token>"
        head = '<?xml version="1.0" encoding="utf-8"?>\n<d:multistatus xmlns:d="DAV:">'
        return f"{head}{rows}{token}</d:multistatus>".encode()


def _handler(calendar: _Calendar) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_REPORT(self) -> None:
            request = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            since = request.split("sync-token>", 2)[1].rsplit("</", 1)[0] if "sync-token>" in request else ""
            if calendar.listing_status != 207 or not calendar.sync_collection:
                status = calendar.listing_status if calendar.sync_collection else 501
                self._send(status, b"<html>oops</html>", {"Content-Type": "text/html"})
                return
            self._send(207, calendar.listing(since), {"Content-Type": "application/xml; charset=utf-8"})

        def do_GET(self) -> None:
            with calendar.lock:
                calendar.gets.append(self.path)
            status, etag, body = calendar.events.get(self.path, (404, "", b""))
            if status != 200:
                self._send(status, b"<html>Internal Server Error</html>", {"Content-Type": "text/html"})
                return
            self._send(200, body, {"Content-Type": "text/calendar; charset=utf-8", "ETag": etag})

        def do_PROPFIND(self) -> None:  # hub's listing by ETags, after a REPORT that failed
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if calendar.listing_status != 207:
                self._send(calendar.listing_status, b"<html>oops</html>", {"Content-Type": "text/html"})
                return
            body = calendar.listing(None) if self.headers.get("Depth") == "1" else b'<d:multistatus xmlns:d="DAV:"/>'
            self._send(207, body, {"Content-Type": "application/xml; charset=utf-8"})

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def _calendar_server(calendar: _Calendar) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _handler(calendar))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _appointment(db: Database, user: User, title: str) -> tuple[int, str]:
    with db.transaction() as session:
        me = session.get_one(User, user.id)
        data = AppointmentInput(title=title, start=datetime(2026, 12, 1, 10, 0), end=datetime(2026, 12, 1, 11, 0))
        appointment = save_appointment(session, me, data)
        return appointment.id, appointment.uid


def _connected(db: Database, owner: User, url: str, appointments: dict[str, int]) -> int:
    """An account on ``url`` in which hub wrote each appointment to /cal/<name>.ics earlier."""
    with db.transaction() as session:
        account = CalendarAccount(
            owner_id=owner.id, url=url, username="anna", calendar_url=url + "cal/", calendar_name="Work"
        )
        session.add(account)
        session.flush()
        for name, appointment_id in appointments.items():
            session.add(
                CalendarPush(
                    appointment_id=appointment_id,
                    account_id=account.id,
                    state="synced",
                    href=f"{url}cal/{name}.ics",
                    etag='"written-by-hub"',
                    pushed_fields="{}",
                )
            )
        return account.id


def _pull(db: Database, settings: Settings, account_id: int) -> Any:
    return sync_account(
        db, account_id, secret_key=settings.secret_key, allowed_hosts=LOOPBACK_HOSTS, timeout=5, push=False
    )


@pytest.mark.parametrize("sync_collection", [True, False], ids=["sync-collection", "etags"])
def test_an_event_the_server_will_not_hand_over_fails_alone_and_is_read_again_at_the_next_pull(
    any_db: Database, settings: Settings, sync_collection: bool
) -> None:
    db = any_db
    anna = new_user(db, "Anna")
    good_id, good_uid = _appointment(db, anna, "Visit")
    bad_id, bad_uid = _appointment(db, anna, "Roof inspection")
    calendar = _Calendar()
    calendar.sync_collection = sync_collection
    calendar.events = {
        "/cal/good.ics": (200, '"g2"', _event(good_uid, "Visit, moved by Anna")),
        "/cal/bad.ics": (500, '"b2"', _event(bad_uid, "Roof inspection, moved by Anna")),
    }
    with _calendar_server(calendar) as url:
        account_id = _connected(db, anna, url, {"good": good_id, "bad": bad_id})

        result = _pull(db, settings, account_id)

        # The other event is pulled; the account syncs; the failing one says why.
        assert result is not None and result.pulled == 1
        assert result.errors == [
            f"{bad_uid}: The calendar server answered HTTP 500 to reading the event; hub tries again at the next pull."
        ]
        with db.transaction() as session:
            assert session.get_one(Appointment, good_id).title == "Visit, moved by Anna"
            bad = session.get_one(Appointment, bad_id)
            assert bad.title == "Roof inspection"  # hub's version stands meanwhile
            assert "HTTP 500" in history(session, bad)[0].summary
            account = session.get_one(CalendarAccount, account_id)
            assert (account.last_error, account.failures, account.next_attempt_at) == ("", 0, None)
            pushes = {
                p.appointment_id: p
                for p in session.scalars(select(CalendarPush).where(CalendarPush.account_id == account_id))
            }
            assert "HTTP 500" in pushes[bad_id].last_error and pushes[bad_id].etag == '"written-by-hub"'
            assert pushes[good_id].last_error == "" and pushes[good_id].etag == '"g2"'
        (row,) = [r for r in account_health_rows(db, workers_alive=True) if r.id == account_id]
        assert "1 event(s) in the calendar could not be read; the last: The calendar server answered HTTP 500" in (
            row.health.words
        )

        # Still failing at the next pull (the listing names nothing new): read again, one history line.
        calendar.gets.clear()
        result = _pull(db, settings, account_id)
        assert result is not None and result.pulled == 0 and len(result.errors) == 1
        assert calendar.gets == ["/cal/bad.ics"]
        with db.transaction() as session:
            assert sum("HTTP 500" in h.summary for h in history(session, session.get_one(Appointment, bad_id))) == 1

        # The server hands it over again: pulled, and the reason is gone from the sync-health page.
        calendar.events["/cal/bad.ics"] = (200, '"b2"', calendar.events["/cal/bad.ics"][2])
        calendar.gets.clear()
        result = _pull(db, settings, account_id)
        assert result is not None and result.pulled == 1 and result.errors == []
        assert calendar.gets == ["/cal/bad.ics"]
        with db.transaction() as session:
            assert session.get_one(Appointment, bad_id).title == "Roof inspection, moved by Anna"
            push = session.scalar(select(CalendarPush).where(CalendarPush.appointment_id == bad_id))
            assert push is not None and (push.last_error, push.attempts, push.etag) == ("", 0, '"b2"')
        (row,) = [r for r in account_health_rows(db, workers_alive=True) if r.id == account_id]
        assert "could not be read" not in row.health.words

        # Nothing left to read again.
        calendar.gets.clear()
        result = _pull(db, settings, account_id)
        assert result is not None and result.errors == [] and calendar.gets == []


def test_a_calendar_whose_listing_fails_still_fails_the_account_with_backoff(
    db: Database, settings: Settings, make_user: Callable[..., User]
) -> None:
    anna = make_user("Anna")
    good_id, good_uid = _appointment(db, anna, "Visit")
    calendar = _Calendar()
    calendar.events = {"/cal/good.ics": (200, '"g2"', _event(good_uid, "Visit, moved by Anna"))}
    calendar.listing_status = 500
    with _calendar_server(calendar) as url:
        account_id = _connected(db, anna, url, {"good": good_id})
        with pytest.raises(CalendarError) as failed:
            _pull(db, settings, account_id)
    assert "HTTP 500" in failed.value.words
    assert calendar.gets == []
    with db.transaction() as session:
        account = session.get_one(CalendarAccount, account_id)
        assert account.failures == 1 and account.next_attempt_at is not None and "HTTP 500" in account.last_error
        good = session.get_one(Appointment, good_id)
        assert (good.title, good.status) == ("Visit", "planned")  # nothing taken for deleted
