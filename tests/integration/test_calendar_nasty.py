"""Nasty events in a staff member's calendar (a real Radicale), and hostile calendar servers (a small
HTTP server of the test's own): hub skips what it cannot read with the reason on the sync-health page
and in the appointment's history, pulls the rest, and never crashes, hangs or loses an appointment."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import niquests
import pytest
from icalendar import Calendar
from sqlalchemy import select

from hub.calendar import ical
from hub.calendar.accounts import account_health_rows
from hub.calendar.appointments import AppointmentInput, get_appointment, history, save_appointment
from hub.calendar.dav import CalendarError
from hub.calendar.sync import pull_now, push_now, sync_account
from hub.config import Settings
from hub.db import Database
from hub.i18n import N_, shown
from hub.models import Appointment, CalendarAccount, CalendarPush, User
from tests.caldav_server import LOOPBACK_HOSTS, RadicaleServer, connect_calendar
from tests.conftest import new_user
from tests.servers import free_port

# A guard against a hang (the old code searched a FREQ=MINUTELY rule until the year 9999), not a
# speed requirement.
pytestmark = pytest.mark.timeout(300)

# What clients and hostile users put into the calendar over hub's events (Radicale stores them all;
# recurrence bombs hang Radicale itself, so they are tests/unit/test_ical_nasty.py's).
NASTY = {
    "Daily series": ["RRULE:FREQ=DAILY;COUNT=400"],
    "Year 9999": ["DTSTART:99991231T230000Z", "DTEND:99991231T235959Z"],
    "To-do now": None,  # replaced by a VTODO with the same UID
    "Override only": ["RECURRENCE-ID:20261208T090000Z"],
}


def _make(db: Database, user: User, title: str) -> int:
    with db.transaction() as session:
        me = session.get_one(User, user.id)
        data = AppointmentInput(title=title, start=datetime(2026, 12, 1, 10, 0), end=datetime(2026, 12, 1, 11, 0))
        return save_appointment(session, me, data).id


def _body(uid: str, lines: list[str] | None) -> bytes:
    if lines is None:
        return (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTODO\r\n"
            f"UID:{uid}\r\nSUMMARY:Now a to-do\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
        ).encode()
    times = [] if any(line.startswith("DTSTART") for line in lines) else ["DTSTART:20261215T090000Z"]
    if not any(line.startswith("SUMMARY") for line in lines):
        times.append("SUMMARY:Changed")
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        + "".join(line + "\r\n" for line in [*times, *lines])
        + "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def _session(server: RadicaleServer, calendar_url: str) -> niquests.Session:
    """What a calendar client does: its own login, writing straight into the calendar."""
    login = calendar_url.rstrip("/").split("/")[-2]
    session = niquests.Session()
    session.auth = (login, server.users[login])
    return session


def _pushes(db: Database, account_id: int) -> dict[int, CalendarPush]:
    with db.transaction() as session:
        rows = session.scalars(select(CalendarPush).where(CalendarPush.account_id == account_id))
        return {p.appointment_id: p for p in rows}


def test_events_hub_cannot_read_are_skipped_with_their_reason_and_the_rest_comes_back(
    any_db: Database, settings: Settings, caldav_server: RadicaleServer
) -> None:
    db = any_db
    keys = {"secret_key": settings.secret_key, "allowed_hosts": LOOPBACK_HOSTS}
    anna = new_user(db, "Anna")
    account_id, calendar_url = connect_calendar(db, settings.secret_key, caldav_server, anna)
    ids = {title: _make(db, anna, title) for title in [*NASTY, "Long text", "Outlook zone", "Good"]}
    assert push_now(db, **keys).appointments == len(ids)
    pull_now(db, **keys)
    pushes = _pushes(db, account_id)
    with db.transaction() as session:
        uids = {title: session.get_one(Appointment, i).uid for title, i in ids.items()}
    client = _session(caldav_server, calendar_url)
    for title, lines in NASTY.items():
        answer = client.put(pushes[ids[title]].href, data=_body(uids[title], lines))
        assert answer.status_code in (201, 204), title
    # Readable, but more than hub's columns hold (PostgreSQL refuses a too long value).
    long_text = [
        "DTSTART:20261201T090000Z",
        "DTEND:20261201T100000Z",
        "SUMMARY:" + "T" * 300,
        "DESCRIPTION:before\\nthe bell\x07after",
        f"ATTENDEE;PARTSTAT={'X' * 60}:mailto:{anna.email}",
        "LAST-MODIFIED:" + (datetime.now(UTC) + timedelta(seconds=5)).strftime("%Y%m%dT%H%M%SZ"),
    ]
    assert client.put(pushes[ids["Long text"]].href, data=_body(uids["Long text"], long_text)).status_code == 204
    # Outlook's own zone names.
    outlook = [
        "DTSTART;TZID=W. Europe Standard Time:20261201T140000",
        "DTEND;TZID=W. Europe Standard Time:20261201T150000",
        "LAST-MODIFIED:" + (datetime.now(UTC) + timedelta(seconds=5)).strftime("%Y%m%dT%H%M%SZ"),
    ]
    assert client.put(pushes[ids["Outlook zone"]].href, data=_body(uids["Outlook zone"], outlook)).status_code == 204
    good = Calendar.from_ical(client.get(pushes[ids["Good"]].href).content)
    event = good.walk("VEVENT")[0]
    event.pop("location", None)
    event.add("location", "Amersfoort")
    event.pop("last-modified", None)
    event.add("last-modified", datetime.now(UTC) + timedelta(seconds=5))
    assert client.put(pushes[ids["Good"]].href, data=good.to_ical()).status_code == 204

    result = pull_now(db, **keys)

    assert result.pulled == 3  # Long text, Outlook zone and Good
    assert len(result.errors) == len(NASTY)
    pushes = _pushes(db, account_id)
    with db.transaction() as session:
        me = session.get_one(User, anna.id)
        for title in NASTY:
            appointment = get_appointment(session, me, ids[title])
            # Hub's version stands: the same times, title and (no) series.
            assert (appointment.title, appointment.rrule) == (title, "")
            assert appointment.start_at == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
            assert pushes[ids[title]].last_error, title
            assert "could not be read" in history(session, appointment)[0].summary
        assert "weekly or monthly" in ical.NotAnEvent(pushes[ids["Daily series"]].last_error).args[0]
        long = get_appointment(session, me, ids["Long text"])
        assert len(long.title) == 200 and "\x07" not in long.description and long.description.startswith("before")
        assert {a.partstat for a in long.attendees} == {"NEEDS-ACTION"}  # the odd answer is not taken
        outlook_one = get_appointment(session, me, ids["Outlook zone"])
        assert outlook_one.tzid == "Europe/Berlin"
        assert outlook_one.start_at == datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
        assert get_appointment(session, me, ids["Good"]).location == "Amersfoort"
        account = session.get_one(CalendarAccount, account_id)
        assert account.last_error == "" and account.failures == 0  # the account itself syncs
    (row,) = [r for r in account_health_rows(db, workers_alive=True) if r.id == account_id]
    assert "4 event(s) in the calendar could not be read" in row.health.words

    # The next pull does not read them again; hub's next change of one writes its version back.
    assert pull_now(db, **keys).errors == []
    with db.transaction() as session:
        me = session.get_one(User, anna.id)
        appointment = get_appointment(session, me, ids["Daily series"])
        save_appointment(
            session,
            me,
            AppointmentInput(
                title="Daily series, fixed", start=datetime(2026, 12, 1, 10, 0), end=datetime(2026, 12, 1, 12, 0)
            ),
            appointment,
        )
    push_now(db, **keys)
    stored = client.get(pushes[ids["Daily series"]].href).content
    assert ical.parse(stored).fields["title"] == "Daily series, fixed"
    assert _pushes(db, account_id)[ids["Daily series"]].last_error == ""
    (row,) = [r for r in account_health_rows(db, workers_alive=True) if r.id == account_id]
    assert "3 event(s) in the calendar could not be read" in row.health.words


def test_an_unreadable_version_met_while_pushing_loses_to_hubs_change(
    db: Database, settings: Settings, caldav_server: RadicaleServer, make_user: Callable[..., User]
) -> None:
    """The calendar's version changed (a 412) into something hub cannot read while hub changed the
    appointment too: hub's version is written, the reason kept in the history, the push goes on."""
    keys = {"secret_key": settings.secret_key, "allowed_hosts": LOOPBACK_HOSTS}
    anna = make_user("Anna")
    account_id, calendar_url = connect_calendar(db, settings.secret_key, caldav_server, anna)
    first, second = _make(db, anna, "First"), _make(db, anna, "Second")
    push_now(db, **keys)
    pushes = _pushes(db, account_id)
    with db.transaction() as session:
        uid = session.get_one(Appointment, first).uid
    client = _session(caldav_server, calendar_url)
    assert client.put(pushes[first].href, data=_body(uid, NASTY["Daily series"])).status_code == 204
    with db.transaction() as session:
        me = session.get_one(User, anna.id)
        for appointment_id, title in ((first, "First, moved"), (second, "Second, moved")):
            save_appointment(
                session,
                me,
                AppointmentInput(title=title, start=datetime(2026, 12, 2, 10, 0), end=datetime(2026, 12, 2, 11, 0)),
                get_appointment(session, me, appointment_id),
            )
    result = push_now(db, **keys)
    assert result.appointments == 2 and result.conflicts == 1
    assert ical.parse(client.get(pushes[first].href).content).fields["title"] == "First, moved"
    with db.transaction() as session:
        summaries = [h.summary for h in history(session, session.get_one(Appointment, first))]
        assert any("could not be read, so hub's version stands" in s for s in summaries)


# --- hostile servers --------------------------------------------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode() for i in range(1, 10)
    )
    + b']>\n<d:multistatus xmlns:d="DAV:"><d:response><d:href>&lol9;</d:href></d:response></d:multistatus>'
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b'<d:multistatus xmlns:d="DAV:"><d:response><d:href>&xxe;</d:href>'
    b"<d:propstat><d:prop><d:getetag>1</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
    b"</d:response></d:multistatus>"
)


class _Hostile(http.server.BaseHTTPRequestHandler):
    """Answers every request the way the test says: a status, a body, headers; or not at all."""

    status = 207
    body = b""
    headers_out: dict[str, str] = {}
    silent = False
    announce = 0  # a Content-Length to announce instead of the body's
    seen: list[str] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).seen.append(f"{self.command} {self.path}")
        if self.silent:
            threading.Event().wait(30)  # longer than hub waits (the test sets a 1 s timeout)
            return
        self.send_response(self.status)
        for name, value in {"Content-Type": "application/xml", **self.headers_out}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(self.announce or len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_PUT = do_DELETE = do_PROPFIND = do_REPORT = do_OPTIONS = _answer

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _hostile_server(**behaviour: Any) -> Iterator[str]:
    handler = type("Handler", (_Hostile,), {"seen": [], **behaviour})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _account_on(db: Database, settings: Settings, anna: User, url: str) -> int:
    with db.transaction() as session:
        account = CalendarAccount(
            owner_id=anna.id, url=url, username="anna", calendar_url=url + "cal/", calendar_name="Work"
        )
        session.add(account)
        session.flush()
        return account.id


HOSTILE = {
    "500 with an HTML page": ({"status": 500, "body": b"<html>oops"}, "HTTP 500"),
    "404": ({"status": 404, "body": b"gone"}, "not found"),
    "207 with garbage XML": (
        {"status": 207, "body": b"<d:multistatus xmlns:d='DAV:'><d:response><unclosed>"},
        "did not understand",
    ),
    "207 that is not XML": ({"status": 207, "body": b"\x00\xff not xml at all"}, "did not understand"),
    "billion laughs": ({"status": 207, "body": BILLION_LAUGHS}, "did not understand"),
    "redirect to another host": (
        {"status": 301, "headers_out": {"Location": "http://169.254.169.254/latest/"}},
        "another server (169.254.169.254)",
    ),
    "an answer of 200 MB": ({"status": 207, "announce": 200_000_000, "body": b"<x/>"}, "larger than 100 MB"),
    "no answer": ({"silent": True}, "did not answer in time"),
}


def test_an_external_entity_in_the_servers_xml_is_not_read(
    db: Database, settings: Settings, make_user: Callable[..., User]
) -> None:
    """caldav parses with lxml, resolve_entities=False and no_network: the entity stays unread (a
    well-formed answer listing nothing is just that: nothing changed)."""
    anna = make_user("Anna")
    with _hostile_server(status=207, body=EXTERNAL_ENTITY) as url:
        account_id = _account_on(db, settings, anna, url)
        result = sync_account(db, account_id, secret_key=settings.secret_key, allowed_hosts=LOOPBACK_HOSTS, timeout=1)
    assert result is not None and result.pulled == 0 and not result.errors


def test_a_hostile_server_gives_a_clear_failure_on_the_account_never_a_crash_or_hang(
    db: Database, settings: Settings, make_user: Callable[..., User]
) -> None:
    for name, (behaviour, reason) in HOSTILE.items():
        owner = make_user("Anna")  # one account each (an account per staff member)
        _make(db, owner, "Visit")
        with _hostile_server(**behaviour) as url:
            account_id = _account_on(db, settings, owner, url)
            with pytest.raises(CalendarError) as failed:
                sync_account(
                    db, account_id, secret_key=settings.secret_key, allowed_hosts=LOOPBACK_HOSTS, timeout=1, push=False
                )
        words = failed.value.words
        assert reason in words, name
        assert "root:" not in words and "lollol" not in words, name  # no file content, no expanded entity
        with db.transaction() as session:
            account = session.get_one(CalendarAccount, account_id)
            assert shown(account.last_error) == words and account.failures == 1, name
            assert account.claimed_until is None, name  # released: the next run may try after the backoff


def test_appointments_stored_before_the_checks_still_show_in_the_feed_and_the_week(
    db: Database, make_user: Callable[..., User]
) -> None:
    """Rows an older hub took from calendars unchecked (a Microsoft zone name, a rule that never
    matches, one of every minute): the feed and the week view stay up, in bounded work."""
    from hub.calendar.appointments import entries
    from hub.calendar.feed import feed_ics

    anna = make_user("Anna")
    ids = [_make(db, anna, title) for title in ("Zone", "Never", "Minutely", "Fine", "Zone series")]
    with db.transaction() as session:
        zone, never, minutely, _fine, zone_series = (session.get_one(Appointment, i) for i in ids)
        zone.tzid = "W. Europe Standard Time"
        zone_series.tzid, zone_series.rrule = "W. Europe Standard Time", "FREQ=WEEKLY;COUNT=3"
        never.rrule, never.series_end_at = "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", None
        minutely.rrule, minutely.series_end_at = "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30;COUNT=3", None
    now = datetime(2026, 11, 28, tzinfo=UTC)
    with db.transaction() as session:
        me = session.get_one(User, anna.id)
        feed = Calendar.from_ical(feed_ics(session, me, now=now))
        titles = sorted(str(e["summary"]) for e in feed.walk("VEVENT"))
        assert titles == ["Fine", "Minutely", "Never", "Zone", "Zone series"]
        shown = entries(session, me, [anna.id], datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC))
        # The series that never match show no occurrence; the others show as they are.
        assert sorted(e.appointment.title for e in shown if e.appointment is not None) == [
            "Fine",
            "Zone",
            "Zone series",
        ]


def test_the_sync_health_page_says_why_in_the_readers_language(
    db: Database, settings: Settings, app: Any, make_user: Callable[..., User], login: Callable[..., Any]
) -> None:
    """The worker stores the reasons (an account's failure, an event it could not read) in a form
    each reader sees in his own language: Dutch for a Dutch admin."""
    anna = make_user("Anna")
    admin = make_user("Beheerder", admin=True, language="nl")
    appointment_id = _make(db, anna, "Visit")
    with _hostile_server(silent=True) as url:
        account_id = _account_on(db, settings, anna, url)
        with pytest.raises(CalendarError):
            sync_account(db, account_id, secret_key=settings.secret_key, allowed_hosts=LOOPBACK_HOSTS, timeout=1)
    with db.transaction() as session:
        session.add(
            CalendarPush(
                appointment_id=appointment_id,
                account_id=account_id,
                state="synced",
                href=url + "cal/x.ics",
                last_error=N_("The event has no UID."),
            )
        )
    page = login(app.test_client(), admin).get("/mail/health").text
    assert "De agendaserver antwoordde niet op tijd" in page
    assert "De afspraak heeft geen UID." in page
