"""Changes made in the staff member's own calendar (a real Radicale) come back into hub: a move or
an edit by sync-token pull, a delete cancels, a conflicting edit is resolved per field (the side that
changed a field last wins, the loser kept in the history), and a weekly series with one moved
occurrence travels both ways."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar

from hub.calendar.appointments import (
    AppointmentInput,
    entries,
    get_appointment,
    history,
    move_occurrence,
    save_appointment,
)
from hub.calendar.sync import pull_now, pull_with_etags, push_now
from hub.config import Settings
from hub.db import Database
from hub.models import Appointment, CalendarAccount, User
from tests.caldav_server import RadicaleServer, connect_calendar


def _make(db: Database, user: User, title: str = "Visit", **extra: Any) -> int:
    with db.transaction() as session:
        me = session.get_one(User, user.id)
        data = AppointmentInput(
            title=title, start=datetime(2026, 12, 1, 10, 0), end=datetime(2026, 12, 1, 11, 0), **extra
        )
        return save_appointment(session, me, data).id


def _edit_remotely(server: RadicaleServer, calendar_url: str, change: Callable[[Calendar], None]) -> None:
    """What the owner's calendar app does: read the event, change it, save it (If-Match)."""
    login = calendar_url.rstrip("/").split("/")[-2]
    with server.client(login) as client:
        (event,) = client.calendar(url=calendar_url).events()
        cal = Calendar.from_ical(event.data)
        change(cal)
        event.data = cal.to_ical().decode()
        event.save()


def _master(cal: Calendar) -> Any:
    return next(e for e in cal.walk("VEVENT") if e.get("recurrence-id") is None)


def _set(component: Any, name: str, value: Any) -> None:
    component.pop(name, None)
    component.add(name, value)


def test_a_move_and_an_edit_in_the_calendar_come_back_by_sync_token(
    db: Database, settings: Settings, caldav_server: RadicaleServer, make_user: Callable[..., User]
) -> None:
    anna = make_user("Anna")
    account_id, calendar_url = connect_calendar(db, settings.secret_key, caldav_server, anna)
    appointment_id = _make(db, anna, "Visit", location="Utrecht")
    push_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    first = pull_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    assert first.pulled == 0  # hub's own write is not a change
    with db.transaction() as session:
        token = session.get_one(CalendarAccount, account_id).sync_token
    assert token

    def move(cal: Calendar) -> None:
        event = _master(cal)
        start = event.decoded("dtstart")
        _set(event, "dtstart", start + timedelta(days=1, hours=3))
        _set(event, "dtend", event.decoded("dtend") + timedelta(days=1, hours=3))
        _set(event, "location", "Amersfoort")
        _set(event, "last-modified", datetime.now(UTC) + timedelta(seconds=5))

    _edit_remotely(caldav_server, calendar_url, move)
    pulled = pull_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    assert pulled.pulled == 1
    with db.transaction() as session:
        me = session.get_one(User, anna.id)
        appointment = get_appointment(session, me, appointment_id)
        assert appointment.start_at == datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # 13:00 Amsterdam
        assert appointment.location == "Amersfoort"
        assert appointment.version == 2
        assert session.get_one(CalendarAccount, account_id).sync_token not in ("", token)
        (change, _created) = history(session, appointment)
        assert change.source == "calendar" and json.loads(change.losing)["location"] == "Utrecht"
    # The calendar already holds hub's version: pushing sends nothing.
    assert push_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts).appointments == 0


def test_a_delete_in_the_calendar_cancels_the_appointment(
    db: Database, settings: Settings, caldav_server: RadicaleServer, make_user: Callable[..., User]
) -> None:
    anna = make_user("Anna")
    _account_id, calendar_url = connect_calendar(db, settings.secret_key, caldav_server, anna)
    appointment_id = _make(db, anna)
    push_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    pull_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    login = calendar_url.rstrip("/").split("/")[-2]
    with caldav_server.client(login) as client:
        (event,) = client.calendar(url=calendar_url).events()
        event.delete()
    assert pull_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts).pulled == 1
    with db.transaction() as session:
        appointment = session.get_one(Appointment, appointment_id)
        assert appointment.status == "cancelled" and appointment.deleted_at is None
        assert "Deleted in Anna" in history(session, appointment)[0].summary
    # Not written back into the calendar the owner deleted it from.
    assert push_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts).appointments == 0
    assert caldav_server.objects(calendar_url, login) == []


def test_conflicting_edits_the_side_that_changed_last_wins_and_the_loser_is_kept(
    db: Database, settings: Settings, caldav_server: RadicaleServer, make_user: Callable[..., User]
) -> None:
    anna = make_user("Anna")
    _account_id, calendar_url = connect_calendar(db, settings.secret_key, caldav_server, anna)
    appointment_id = _make(db, anna, "Visit", location="Utrecht", description="Bring the samples")
    push_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)

    # In hub: the title and the description change. In the calendar, later: the title and the place;
    # and an older edit (a phone that was offline) of the description.
    with db.transaction() as session:
        me = session.get_one(User, anna.id)
        appointment = get_appointment(session, me, appointment_id)
        save_appointment(
            session,
            me,
            AppointmentInput(
                title="Visit (hub)",
                start=datetime(2026, 12, 1, 10, 0),
                end=datetime(2026, 12, 1, 11, 0),
                location="Utrecht",
                description="Bring the samples and the contract",
            ),
            appointment,
        )

    def edit(cal: Calendar) -> None:
        event = _master(cal)
        _set(event, "summary", "Visit (calendar)")
        _set(event, "location", "Zeist")
        _set(event, "description", "Old note")
        _set(event, "last-modified", datetime.now(UTC) + timedelta(minutes=1))

    _edit_remotely(caldav_server, calendar_url, edit)
    # The calendar's LAST-MODIFIED is later than hub's changes; hub's description is made later
    # still, as if saved after the phone's (offline) edit reached the server.
    with db.transaction() as session:
        appointment = session.get_one(Appointment, appointment_id)
        stamps = json.loads(appointment.field_times)
        stamps["description"] = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
        appointment.field_times = json.dumps(stamps)

    result = push_now(
        db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts
    )  # If-Match fails: 412, read, merge, write
    assert result.conflicts == 1 and result.appointments == 1
    with db.transaction() as session:
        appointment = session.get_one(Appointment, appointment_id)
        assert appointment.title == "Visit (calendar)"  # changed last in the calendar
        assert appointment.location == "Zeist"  # only the calendar changed it
        assert appointment.description == "Bring the samples and the contract"  # changed last in hub
        records = history(session, appointment)
        lost_in_hub = next(r for r in records if r.summary.startswith("Changed in"))
        assert json.loads(lost_in_hub.losing)["title"] == "Visit (hub)"
        lost_in_calendar = next(r for r in records if r.summary.startswith("A change in"))
        assert json.loads(lost_in_calendar.losing) == {"description": "Old note"}
    login = calendar_url.rstrip("/").split("/")[-2]
    (stored,) = caldav_server.objects(calendar_url, login)
    event = _master(Calendar.from_ical(stored))
    assert (str(event["summary"]), str(event["description"])) == (
        "Visit (calendar)",
        "Bring the samples and the contract",
    )


def test_a_weekly_series_with_one_moved_occurrence_travels_both_ways(
    db: Database, settings: Settings, caldav_server: RadicaleServer, make_user: Callable[..., User]
) -> None:
    anna = make_user("Anna")
    account_id, calendar_url = connect_calendar(db, settings.secret_key, caldav_server, anna)
    # Weekly on Tuesdays 10:00 Amsterdam, across the end of daylight-saving time (25 October 2026).
    with db.transaction() as session:
        me = session.get_one(User, anna.id)
        appointment = save_appointment(
            session,
            me,
            AppointmentInput(
                title="Stand-up",
                start=datetime(2026, 10, 13, 10, 0),
                end=datetime(2026, 10, 13, 10, 30),
                rrule="FREQ=WEEKLY;INTERVAL=1;COUNT=6",
            ),
        )
        appointment_id = appointment.id
        third = datetime(2026, 10, 27, 9, 0, tzinfo=UTC)  # 10:00 CET, after the change
        move_occurrence(session, me, appointment, third, datetime(2026, 10, 28, 15, 0), datetime(2026, 10, 28, 15, 30))
    push_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    login = calendar_url.rstrip("/").split("/")[-2]
    (stored,) = caldav_server.objects(calendar_url, login)
    events = list(Calendar.from_ical(stored).walk("VEVENT"))
    assert len(events) == 2
    moved = next(e for e in events if e.get("recurrence-id") is not None)
    assert moved.decoded("recurrence-id").replace(tzinfo=None) == datetime(2026, 10, 27, 10, 0)
    assert moved.decoded("dtstart").replace(tzinfo=None) == datetime(2026, 10, 28, 15, 0)

    # In the calendar the fifth occurrence is moved too; hub takes it over.
    pull_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)

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
        _set(master, "last-modified", datetime.now(UTC) + timedelta(seconds=5))

    _edit_remotely(caldav_server, calendar_url, move_fifth)
    assert pull_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts).pulled == 1
    with db.transaction() as session:
        me = session.get_one(User, anna.id)
        appointment = get_appointment(session, me, appointment_id)
        assert len(appointment.overrides) == 2
        shown = entries(session, me, [anna.id], datetime(2026, 10, 12, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    local = [e.start_at.astimezone(ZoneInfo("Europe/Amsterdam")) for e in shown]
    assert [(t.month, t.day, t.hour) for t in local] == [
        (10, 13, 10),
        (10, 20, 10),
        (10, 28, 15),  # moved in hub
        (11, 3, 10),  # still 10:00 local after the clocks went back
        (11, 11, 11),  # moved in the calendar
        (11, 17, 10),
    ]
    with db.transaction() as session:
        assert session.get_one(CalendarAccount, account_id).failures == 0


def test_etag_comparison_finds_changes_on_servers_without_sync_tokens(
    db: Database, settings: Settings, caldav_server: RadicaleServer, make_user: Callable[..., User]
) -> None:
    anna = make_user("Anna")
    account_id, calendar_url = connect_calendar(db, settings.secret_key, caldav_server, anna)
    appointment_id = _make(db, anna)
    push_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)

    def retitle(cal: Calendar) -> None:
        _set(_master(cal), "summary", "Visit, renamed in the calendar")
        _set(_master(cal), "last-modified", datetime.now(UTC) + timedelta(seconds=5))

    _edit_remotely(caldav_server, calendar_url, retitle)
    assert (
        pull_with_etags(
            db, account_id, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts
        ).pulled
        == 1
    )
    with db.transaction() as session:
        assert session.get_one(Appointment, appointment_id).title == "Visit, renamed in the calendar"
