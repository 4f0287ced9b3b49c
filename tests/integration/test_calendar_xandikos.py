"""hub's calendar on a second, independent CalDAV server: a real Xandikos (tests/xandikos_server.py).

The flows a staff member relies on, end to end through hub's own services, as the Radicale tests
do them: connecting (from the server's root, a calendar's own address, behind a path prefix, a task
list left out); appointments pushed (timed, all-day, another time zone, attendees, a series with a
moved occurrence; updated, moved, deleted) and seen by a plain CalDAV client; changes made in the
calendar by another app pulled back (edited, moved, deleted; an event that is not hub's left alone)
over more events than one push batch; an event deleted or changed in the calendar while hub updates
it; a second sync that changes nothing. And where Xandikos and Radicale answer the same situation
differently (a forgotten sync-token: 412 or 403; a UID already in the calendar: 412 or 409; a
deleted calendar: a 207 saying 404, or a 404), hub is checked on both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from icalendar import Calendar, Event

from hub.calendar import accounts
from hub.calendar.appointments import (
    AppointmentInput,
    delete_appointment,
    get_appointment,
    history,
    move_occurrence,
    save_appointment,
)
from hub.calendar.dav import CalendarError, Found
from hub.calendar.sync import BATCH, pull_now, pull_with_etags, push_now, sync_account
from hub.config import Settings
from hub.db import Database
from hub.models import Appointment, CalendarAccount, CalendarPush, User
from tests.caldav_server import LOOPBACK_HOSTS, connect_calendar
from tests.conftest import csrf_token
from tests.integration.test_calendar_pull import _master, _set
from tests.xandikos_server import XandikosServer, xandikos


@pytest.fixture
def xandikos_server() -> Iterator[XandikosServer]:
    """A fresh Xandikos per test: it has one principal, so tests must not share it."""
    with xandikos() as server:
        yield server


def _events(server: XandikosServer, calendar_url: str) -> dict[str, Any]:
    """UID → master VEVENT of every event in the calendar, as a plain caldav client reads it."""
    found = {}
    for data in server.objects(calendar_url):
        master = _master(Calendar.from_ical(data))
        found[str(master["uid"])] = master
    return found


def _make(db: Database, user: User, title: str, start: datetime, hours: int = 1, **extra: Any) -> int:
    with db.transaction() as session:
        me = session.get_one(User, user.id)
        data = AppointmentInput(title=title, start=start, end=start + timedelta(hours=hours), **extra)
        return save_appointment(session, me, data).id


def _uid(db: Database, appointment_id: int) -> str:
    with db.transaction() as session:
        return session.get_one(Appointment, appointment_id).uid


def _edit(server: XandikosServer, calendar_url: str, uid: str, change: Callable[[Calendar], None]) -> None:
    """What the owner's calendar app does: read the event, change it, save it (If-Match)."""
    with server.client() as client:
        event = client.calendar(url=calendar_url).event_by_uid(uid)
        cal = Calendar.from_ical(event.data)
        change(cal)
        _set(_master(cal), "last-modified", datetime.now(UTC) + timedelta(seconds=5))
        event.data = cal.to_ical().decode()
        event.save()


def _push(settings: Settings, db: Database) -> Any:
    result = push_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    assert not result.errors, result.errors
    return result


def _pull(settings: Settings, db: Database) -> Any:
    result = pull_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    assert not result.errors, result.errors
    return result


def test_connecting_from_the_root_the_calendar_address_and_behind_a_path_prefix(
    db: Database, settings: Settings, xandikos_server: XandikosServer, make_user: Callable[..., User]
) -> None:
    server = xandikos_server
    with server.client() as client:  # a task list: no place for appointments
        tasks = str(client.principal().make_calendar(name="Tasks", supported_calendar_component_set=["VTODO"]).url)
    work = server.make_calendar(name="Work")
    ok, words = accounts.test_connection(server.url, "anna", "pw", "Work", allowed_hosts=LOOPBACK_HOSTS)
    assert ok and words == "Connected: hub writes into the calendar Work.", words
    names = {
        found.name: found.url for found in accounts.discover(server.url, "anna", "pw", allowed_hosts=LOOPBACK_HOSTS)
    }
    assert names["Work"] == work and "calendar" in names  # --defaults made one named "calendar"
    assert "Tasks" not in names
    ok, words = accounts.test_connection(tasks, "anna", "pw", "Tasks", allowed_hosts=LOOPBACK_HOSTS)
    assert not ok and "No calendar named Tasks" in words
    ok, words = accounts.test_connection(server.url, "anna", "pw", "", allowed_hosts=LOOPBACK_HOSTS)
    assert ok and "Tasks" not in words
    # Pasted from a calendar app: the calendar's own address (with or without its slash); or the
    # RFC 6764 well-known address, which Xandikos answers with a 302 to its root (a PROPFIND
    # must stay a PROPFIND there, not become a GET).
    for url in (work, work.rstrip("/"), server.url + ".well-known/caldav"):
        ok, words = accounts.test_connection(url, "anna", "pw", "Work", allowed_hosts=LOOPBACK_HOSTS)
        assert ok, (url, words)
    # With no calendar named, the one whose address was pasted (the server lists them in no order).
    default = names["calendar"]
    for pasted, name in ((work, "Work"), (default, "calendar"), (work.rstrip("/"), "Work")):
        ok, words = accounts.test_connection(pasted, "anna", "pw", "", allowed_hosts=LOOPBACK_HOSTS)
        assert words == f"Connected: hub writes into the calendar {name}.", (pasted, words)
    anna = make_user("Anna")
    found = accounts.discover(default, "anna", "pw", allowed_hosts=LOOPBACK_HOSTS)
    with db.transaction() as session:
        saved = accounts.save_account(
            session,
            settings.secret_key,
            session.get_one(User, anna.id),
            accounts.AccountInput(url=default, username="anna", password="pw"),
            found=found,
        )
        assert (saved.calendar_url, saved.calendar_name) == (default, "calendar")
    ok, words = accounts.test_connection(server.url, "anna", "pw", "Holidays", allowed_hosts=LOOPBACK_HOSTS)
    assert not ok and "No calendar named Holidays" in words and "Work" in words
    # Behind a reverse proxy, under /dav/.
    with xandikos("/dav/") as prefixed:
        there = prefixed.make_calendar(name="Work")
        assert there.startswith(prefixed.url + "user/")
        # Typed as the proxy's path without its slash (Xandikos answers /dav with a 404).
        for url in (prefixed.url, prefixed.url.rstrip("/"), prefixed.url + "user", there):
            ok, words = accounts.test_connection(url, "anna", "pw", "Work", allowed_hosts=LOOPBACK_HOSTS)
            assert ok, (url, words)


def test_pushed_appointments_are_on_the_server_and_follow_each_change(
    db: Database, settings: Settings, xandikos_server: XandikosServer, make_user: Callable[..., User]
) -> None:
    anna = make_user("Anna")
    bob = make_user("Bøb de Vries")
    account_id, calendar_url = connect_calendar(db, settings.secret_key, xandikos_server, anna)  # type: ignore[arg-type]
    note = "Bring: samples, the contract; ask for Zoë.\nSecond line \\ with a backslash, 10% off, € 12,50 ☕"
    timed = _make(
        db,
        anna,
        "Visit",
        datetime(2026, 12, 1, 10, 0),
        location="Utrecht",
        description=note,
        staff_ids=[anna.id, bob.id],
    )
    all_day = _make(db, anna, "Trade fair", datetime(2026, 12, 3, 0, 0), all_day=True)
    new_york = _make(db, anna, "Call New York", datetime(2026, 12, 4, 9, 0), tzid="America/New_York")
    with db.transaction() as session:
        me = session.get_one(User, anna.id)
        series = save_appointment(
            session,
            me,
            AppointmentInput(
                title="Stand-up",
                start=datetime(2026, 10, 13, 10, 0),
                end=datetime(2026, 10, 13, 10, 30),
                rrule="FREQ=WEEKLY;INTERVAL=1;COUNT=6",
            ),
        )
        series_id = series.id
        move_occurrence(
            session,
            me,
            series,
            datetime(2026, 10, 27, 9, 0, tzinfo=UTC),
            datetime(2026, 10, 28, 15, 0),
            datetime(2026, 10, 28, 15, 30),
        )
    assert _push(settings, db).appointments == 4
    uids = {n: _uid(db, n) for n in (timed, all_day, new_york, series_id)}
    events = _events(xandikos_server, calendar_url)
    assert set(events) == set(uids.values())
    start = events[uids[timed]].decoded("dtstart")
    assert (start.hour, str(start.tzinfo), str(events[uids[timed]]["location"])) == (10, "Europe/Amsterdam", "Utrecht")
    assert str(events[uids[timed]]["description"]) == note
    attendees = {str(a).lower(): a.params.get("CN") for a in events[uids[timed]].get("attendee")}
    assert attendees == {f"mailto:{anna.email}".lower(): "Anna", f"mailto:{bob.email}".lower(): "Bøb de Vries"}
    assert events[uids[all_day]].decoded("dtstart") == date(2026, 12, 3)
    assert events[uids[all_day]].decoded("dtend") == date(2026, 12, 4)
    ny = events[uids[new_york]].decoded("dtstart")
    assert (ny.hour, str(ny.tzinfo)) == (9, "America/New_York")
    assert str(events[uids[series_id]]["rrule"].to_ical().decode()).startswith("FREQ=WEEKLY")
    (stored_series,) = [data for data in xandikos_server.objects(calendar_url) if uids[series_id].encode() in data]
    moved = next(e for e in Calendar.from_ical(stored_series).walk("VEVENT") if e.get("recurrence-id") is not None)
    assert moved.decoded("dtstart").replace(tzinfo=None) == datetime(2026, 10, 28, 15, 0)
    # The server can answer a time-range query over them (it understood hub's time zones).
    with xandikos_server.client() as client:
        in_december = client.calendar(url=calendar_url).search(
            start=datetime(2026, 12, 1, tzinfo=UTC), end=datetime(2026, 12, 31, tzinfo=UTC), event=True
        )
    assert len(in_december) == 3

    # Nothing changed: a second push costs no request.
    again = _push(settings, db)
    assert (again.appointments, again.requests) == (0, 0)
    assert _pull(settings, db).pulled == 0  # hub's own writes are not changes

    # In the calendar app, the fifth occurrence of the series is moved; hub takes it over.
    def move_fifth(cal: Calendar) -> None:
        master = _master(cal)
        fifth = Calendar.from_ical(cal.to_ical()).walk("VEVENT")[0].copy()
        tz = master.decoded("dtstart").tzinfo
        _set(fifth, "recurrence-id", datetime(2026, 11, 10, 10, 0, tzinfo=tz))
        _set(fifth, "dtstart", datetime(2026, 11, 11, 11, 0, tzinfo=tz))
        _set(fifth, "dtend", datetime(2026, 11, 11, 11, 30, tzinfo=tz))
        fifth.pop("rrule", None)
        fifth.pop("exdate", None)
        cal.add_component(fifth)

    _edit(xandikos_server, calendar_url, uids[series_id], move_fifth)
    assert _pull(settings, db).pulled == 1
    with db.transaction() as session:
        overrides = session.get_one(Appointment, series_id).overrides
        assert sorted(o.start_at.replace(tzinfo=UTC) for o in overrides) == [
            datetime(2026, 10, 28, 14, 0, tzinfo=UTC),  # moved in hub (15:00 CET)
            datetime(2026, 11, 11, 10, 0, tzinfo=UTC),  # moved in the calendar (11:00 CET)
        ]

    # Retitled and moved in hub: the event is replaced (If-Match), not added.
    with db.transaction() as session:
        me = session.get_one(User, anna.id)
        appointment = get_appointment(session, me, timed)
        save_appointment(
            session,
            me,
            AppointmentInput(title="Visit moved", start=datetime(2026, 12, 2, 14, 0), end=datetime(2026, 12, 2, 15, 0)),
            appointment,
            expected_version=appointment.version,
        )
    assert _push(settings, db).appointments == 1
    events = _events(xandikos_server, calendar_url)
    assert len(events) == 4 and str(events[uids[timed]]["summary"]) == "Visit moved"
    assert events[uids[timed]].decoded("dtstart").replace(tzinfo=None) == datetime(2026, 12, 2, 14, 0)

    # Deleted in hub: gone from the calendar.
    with db.transaction() as session:
        me = session.get_one(User, anna.id)
        delete_appointment(session, me, get_appointment(session, me, all_day))
    assert _push(settings, db).appointments == 1
    assert set(_events(xandikos_server, calendar_url)) == {uids[timed], uids[new_york], uids[series_id]}
    assert _pull(settings, db).pulled == 0
    with db.transaction() as session:
        account = session.get_one(CalendarAccount, account_id)
        assert account.failures == 0 and account.sync_token


def test_changes_in_the_calendar_come_back_over_more_than_a_batch(
    db: Database, settings: Settings, xandikos_server: XandikosServer, make_user: Callable[..., User]
) -> None:
    anna = make_user("Anna")
    account_id, calendar_url = connect_calendar(db, settings.secret_key, xandikos_server, anna)  # type: ignore[arg-type]
    count = BATCH + 20
    ids = [_make(db, anna, f"Visit {n}", datetime(2026, 12, 1, 8, 0) + timedelta(hours=n)) for n in range(count)]
    assert _push(settings, db).appointments == count
    assert len(_events(xandikos_server, calendar_url)) == count
    first = _pull(settings, db)
    # The first pull lists every event (no sync-token yet): all hub's own, known by their ETags,
    # so none is read again (one REPORT, not a GET per event).
    assert first.pulled == 0 and first.requests < 5, first
    uids = [_uid(db, n) for n in ids]

    def retitle(cal: Calendar) -> None:
        _set(_master(cal), "summary", "Renamed in the calendar")

    def move(cal: Calendar) -> None:
        event = _master(cal)
        _set(event, "dtstart", event.decoded("dtstart") + timedelta(days=1))
        _set(event, "dtend", event.decoded("dtend") + timedelta(days=1))

    # Edits spread over the whole calendar (the first, in the middle, past the first batch).
    for n in (0, 57, BATCH + 5):
        _edit(xandikos_server, calendar_url, uids[n], retitle)
    _edit(xandikos_server, calendar_url, uids[BATCH + 10], move)
    with xandikos_server.client() as client:
        cal = client.calendar(url=calendar_url)
        cal.event_by_uid(uids[3]).delete()
        cal.event_by_uid(uids[BATCH + 15]).delete()
        # Another app's own event: not hub's, so left alone (never imported, never removed).
        cal.save_event(
            dtstart=datetime(2026, 12, 9, 12, 0, tzinfo=ZoneInfo("Europe/Amsterdam")),
            dtend=datetime(2026, 12, 9, 13, 0, tzinfo=ZoneInfo("Europe/Amsterdam")),
            summary="Dentist",
            uid="dentist-1@phone.example",
        )
    pulled = _pull(settings, db)
    assert pulled.pulled == 6
    with db.transaction() as session:
        me = session.get_one(User, anna.id)
        titles = {n: get_appointment(session, me, ids[n]).title for n in (0, 57, BATCH + 5)}
        assert set(titles.values()) == {"Renamed in the calendar"}
        moved = get_appointment(session, me, ids[BATCH + 10])
        assert moved.start_at == datetime(2026, 12, 1, 8, 0, tzinfo=ZoneInfo("Europe/Amsterdam")).astimezone(
            UTC
        ) + timedelta(hours=BATCH + 10, days=1)
        for n in (3, BATCH + 15):
            cancelled = session.get_one(Appointment, ids[n])
            assert cancelled.status == "cancelled"
            assert "Deleted in Anna" in history(session, cancelled)[0].summary
        assert session.query(Appointment).count() == count  # the dentist was not imported
    # A sync-token the server no longer knows (Xandikos: 412 DAV:valid-sync-token): a full listing.
    with db.transaction() as session:
        session.get_one(CalendarAccount, account_id).sync_token = "http://example.invalid/sync/forgotten"
    # A second sync changes nothing and sends nothing new: no duplicates either way.
    for _round in range(2):
        result = sync_account(db, account_id, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
        assert result is not None and (result.appointments, result.pulled, result.errors) == (0, 0, [])
        with db.transaction() as session:
            assert session.get_one(CalendarAccount, account_id).sync_token.isalnum()  # the server's own again
    events = _events(xandikos_server, calendar_url)
    assert len(events) == count - 2 + 1 and "dentist-1@phone.example" in events
    # The ETag comparison (for servers without sync-collection; Xandikos's PROPFIND spells the
    # hrefs unencoded, its REPORT percent-encoded) agrees: nothing left, then the one change.
    keys = {"secret_key": settings.secret_key, "allowed_hosts": settings.mail_allowed_hosts}
    assert pull_with_etags(db, account_id, **keys).pulled == 0
    _edit(xandikos_server, calendar_url, uids[BATCH + 19], retitle)
    assert pull_with_etags(db, account_id, **keys).pulled == 1
    with db.transaction() as session:
        assert session.get_one(Appointment, ids[BATCH + 19]).title == "Renamed in the calendar"


def test_an_event_deleted_or_changed_in_the_calendar_while_hub_updates_it_behind_a_path_prefix(
    db: Database, settings: Settings, make_user: Callable[..., User]
) -> None:
    anna = make_user("Anna")
    with xandikos("/dav/") as server:  # as behind a reverse proxy: every href under /dav/
        account_id, calendar_url = connect_calendar(db, settings.secret_key, server, anna)  # type: ignore[arg-type]
        assert calendar_url.startswith(server.url + "user/calendars/")
        kept = _make(db, anna, "Kept", datetime(2026, 12, 1, 10, 0), location="Utrecht")
        removed = _make(db, anna, "Removed there", datetime(2026, 12, 1, 12, 0))
        _push(settings, db)
        assert _pull(settings, db).pulled == 0
        with server.client() as client:
            client.calendar(url=calendar_url).event_by_uid(_uid(db, removed)).delete()
        # Meanwhile in the calendar app: the place of the other one (a later change than hub's title).
        _edit(server, calendar_url, _uid(db, kept), lambda cal: _set(_master(cal), "location", "Zeist"))
        with db.transaction() as session:
            me = session.get_one(User, anna.id)
            for appointment_id in (kept, removed):
                appointment = get_appointment(session, me, appointment_id)
                save_appointment(
                    session,
                    me,
                    AppointmentInput(
                        title=appointment.title + " (changed)",
                        start=datetime(2026, 12, 1, 16, 0),
                        end=datetime(2026, 12, 1, 17, 0),
                        location=appointment.location,
                    ),
                    appointment,
                )
        # The update of the deleted one: 412 on If-Match, nothing there: cancelled in hub. The
        # changed one: 412, read, merged per field, written with the new ETag.
        result = _push(settings, db)
        assert (result.appointments, result.pulled, result.conflicts) == (1, 1, 1)
        with db.transaction() as session:
            gone = session.get_one(Appointment, removed)
            assert gone.status == "cancelled" and gone.deleted_at is None
            merged = session.get_one(Appointment, kept)
            assert (merged.title, merged.location) == ("Kept (changed)", "Zeist")
            states = {p.appointment_id: p.state for p in session.query(CalendarPush)}
            assert states == {kept: "synced", removed: "gone"}
            account = session.get_one(CalendarAccount, account_id)
            assert account.failures == 0 and account.last_error == ""
        (event,) = _events(server, calendar_url).values()
        assert (str(event["summary"]), str(event["location"])) == ("Kept (changed)", "Zeist")
        assert event.decoded("dtstart").replace(tzinfo=None) == datetime(2026, 12, 1, 16, 0)
        # Not written back, and nothing left to pull: the calendar holds hub's merged version.
        assert _push(settings, db).appointments == 0
        assert _pull(settings, db).pulled == 0
        # Deleted on both sides before hub heard of the calendar's delete: Xandikos answers the
        # conditional DELETE with a 404 (not the 412 RFC 9110 has for it); either way it is done.
        with server.client() as client:
            client.calendar(url=calendar_url).event_by_uid(_uid(db, kept)).delete()
        with db.transaction() as session:
            me = session.get_one(User, anna.id)
            delete_appointment(session, me, get_appointment(session, me, kept))
        assert _push(settings, db).appointments == 1
        assert _pull(settings, db).pulled == 0 and _events(server, calendar_url) == {}
        with db.transaction() as session:
            assert {p.state for p in session.query(CalendarPush)} == {"gone"}
            assert session.get_one(CalendarAccount, account_id).failures == 0


def test_a_calendar_deleted_on_the_server_is_said_plainly_and_cancels_nothing(
    db: Database, settings: Settings, xandikos_server: XandikosServer, make_user: Callable[..., User]
) -> None:
    # Xandikos answers a PROPFIND on a collection that is not there with a 207 whose one response
    # says 404 (not a plain 404 as Radicale does): hub must read that as "gone", not as "empty".
    anna = make_user("Anna")
    account_id, calendar_url = connect_calendar(db, settings.secret_key, xandikos_server, anna)  # type: ignore[arg-type]
    ids = [_make(db, anna, f"Visit {n}", datetime(2026, 12, 1, 8 + n, 0)) for n in range(3)]
    _push(settings, db)
    with xandikos_server.client() as client:
        client.calendar(url=calendar_url).delete()
    _make(db, anna, "Visit 3", datetime(2026, 12, 1, 14, 0))
    push_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    with db.transaction() as session:
        account = session.get_one(CalendarAccount, account_id)
        assert "was it deleted" in account.last_error and account.failures == 1
        account.next_attempt_at = None
    # Comparing ETags (servers without sync-collection) finds no calendar, not an empty one.
    with pytest.raises(CalendarError) as failed:
        pull_with_etags(db, account_id, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    assert "was it deleted" in failed.value.words and not failed.value.temporary
    pull_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    with db.transaction() as session:
        assert "was it deleted" in session.get_one(CalendarAccount, account_id).last_error
        assert {session.get_one(Appointment, n).status for n in ids} == {"planned"}  # nothing cancelled


@pytest.mark.parametrize("server_name", ["xandikos", "radicale"])
def test_a_sync_token_the_server_forgot_starts_a_full_listing_on_both_servers(
    server_name: str,
    db: Database,
    settings: Settings,
    caldav_server: Any,
    make_user: Callable[..., User],
) -> None:
    # RFC 6578 lets a server forget a sync-token. Xandikos then answers 412, Radicale 403 (each with
    # DAV:valid-sync-token): neither is a refused password; both mean "list everything again".
    anna = make_user("Anna")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(xandikos()) if server_name == "xandikos" else caldav_server
        account_id, calendar_url = connect_calendar(db, settings.secret_key, server, anna)
        appointment_id = _make(db, anna, "Visit", datetime(2026, 12, 1, 10, 0))
        _push(settings, db)
        assert _pull(settings, db).pulled == 0
        with db.transaction() as session:
            account = session.get_one(CalendarAccount, account_id)
            login, known = account.username, account.sync_token
            account.sync_token = known[:-8] + "deadbeef"  # of the server's form, but not one it knows
        with server.client(login) as client:
            event = client.calendar(url=calendar_url).event_by_uid(_uid(db, appointment_id))
            cal = Calendar.from_ical(event.data)
            _set(_master(cal), "summary", "Renamed in the calendar")
            _set(_master(cal), "last-modified", datetime.now(UTC) + timedelta(seconds=5))
            event.data = cal.to_ical().decode()
            event.save()
        assert _pull(settings, db).pulled == 1
        with db.transaction() as session:
            account = session.get_one(CalendarAccount, account_id)
            assert account.failures == 0 and account.last_error == ""
            assert account.sync_token not in ("", known)
            assert session.get_one(Appointment, appointment_id).title == "Renamed in the calendar"


@pytest.mark.parametrize("server_name", ["xandikos", "radicale"])
def test_an_event_already_in_the_calendar_at_another_address_is_adopted_on_both_servers(
    server_name: str,
    db: Database,
    settings: Settings,
    caldav_server: Any,
    make_user: Callable[..., User],
) -> None:
    # The staff member's calendar app put hub's invitation (same UID) into the calendar before hub's
    # first push. A server keeps one event per UID (RFC 4791 CALDAV:no-uid-conflict): Xandikos
    # refuses hub's create with a 412, Radicale with a 409. Hub adopts that event instead of
    # failing the account at every push.
    anna = make_user("Anna")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(xandikos()) if server_name == "xandikos" else caldav_server
        account_id, calendar_url = connect_calendar(db, settings.secret_key, server, anna)
        invited = _make(db, anna, "Visit", datetime(2026, 12, 1, 10, 0), location="Utrecht")
        others = [_make(db, anna, f"Other {n}", datetime(2026, 12, 2 + n, 10, 0)) for n in range(3)]
        uid = _uid(db, invited)
        with db.transaction() as session:
            login = session.get_one(CalendarAccount, account_id).username
        invitation = Calendar()
        invitation.add("prodid", "-//phone//calendar app//EN")
        invitation.add("version", "2.0")
        event = Event()
        event.add("uid", uid)
        event.add("dtstamp", datetime.now(UTC))
        event.add("dtstart", datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Europe/Amsterdam")))
        event.add("dtend", datetime(2026, 12, 1, 11, 0, tzinfo=ZoneInfo("Europe/Amsterdam")))
        event.add("summary", "Visit (invitation)")
        invitation.add_component(event)
        elsewhere = calendar_url + "invitation-from-mail.ics"  # a calendar app's own name for it
        with server.client(login) as client:
            put = client.put(elsewhere, invitation.to_ical().decode(), {"Content-Type": "text/calendar"})
            assert put.status == 201
        result = _push(settings, db)
        assert result.appointments == 4
        stored = [Calendar.from_ical(data) for data in server.objects(calendar_url, login)]
        by_uid = {str(_master(cal)["uid"]): _master(cal) for cal in stored}
        assert len(stored) == 4 and set(by_uid) == {uid, *(_uid(db, n) for n in others)}  # no second copy
        assert (str(by_uid[uid]["summary"]), str(by_uid[uid]["location"])) == ("Visit", "Utrecht")
        with db.transaction() as session:
            account = session.get_one(CalendarAccount, account_id)
            assert account.failures == 0 and account.last_error == ""
            push = session.query(CalendarPush).filter_by(appointment_id=invited).one()
            assert (push.state, push.href) == ("synced", elsewhere)
        # Followed from there on: a change in hub replaces it, nothing is pulled back twice.
        with db.transaction() as session:
            me = session.get_one(User, anna.id)
            appointment = get_appointment(session, me, invited)
            save_appointment(
                session,
                me,
                AppointmentInput(
                    title="Visit, later", start=datetime(2026, 12, 1, 15, 0), end=datetime(2026, 12, 1, 16, 0)
                ),
                appointment,
            )
        assert _push(settings, db).appointments == 1
        assert _pull(settings, db).pulled == 0
        titles = sorted(str(_master(Calendar.from_ical(d))["summary"]) for d in server.objects(calendar_url, login))
        assert titles == ["Other 0", "Other 1", "Other 2", "Visit, later"]


def test_a_task_list_refusing_events_is_said_plainly_not_as_a_wrong_password(
    db: Database, settings: Settings, xandikos_server: XandikosServer, make_user: Callable[..., User]
) -> None:
    # An account saved on a task list (before discovery left those out, or typed by hand): Xandikos
    # refuses each event with a 403 naming CALDAV:supported-calendar-component. That is the
    # calendar's kind, not the login: the words must not send the user to change his password.
    with xandikos_server.client() as client:
        tasks = str(client.principal().make_calendar(name="Tasks", supported_calendar_component_set=["VTODO"]).url)
    anna = make_user("Anna")
    with db.transaction() as session:
        account_id = accounts.save_account(
            session,
            settings.secret_key,
            session.get_one(User, anna.id),
            accounts.AccountInput(url=xandikos_server.url, username="anna", password="pw", calendar="Tasks"),
            found=[Found(tasks, "Tasks")],
        ).id
    _make(db, anna, "Visit", datetime(2026, 12, 1, 10, 0))
    push_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    with db.transaction() as session:
        account = session.get_one(CalendarAccount, account_id)
        assert "refused saving an event (HTTP 403)" in account.last_error, account.last_error
        assert "password" not in account.last_error
        assert session.query(CalendarPush).one().state == "pending"  # kept, for a calendar that takes it


def test_the_settings_page_connects_and_saves_a_xandikos_calendar(
    client: FlaskClient,
    db: Database,
    xandikos_server: XandikosServer,
    make_user: Callable[..., User],
    login: Callable[..., FlaskClient],
) -> None:
    work = xandikos_server.make_calendar(name="Work")
    anna = make_user("Anna")
    login(client, anna)
    page = client.get("/calendar/settings")
    form = {
        "csrf_token": csrf_token(page.text),
        "delivery": "caldav",
        "url": xandikos_server.url,
        "username": "anna",
        "password": "behind-the-proxy",
        "calendar": "Work",
        "action": "test",
    }
    assert "Connected: hub writes into the calendar Work." in client.post("/calendar/settings", data=form).text
    assert client.post("/calendar/settings", data={**form, "action": "save"}).status_code == 302
    with db.transaction() as session:
        account = session.query(CalendarAccount).one()
        assert (account.owner_id, account.calendar_url, account.calendar_name) == (anna.id, work, "Work")
