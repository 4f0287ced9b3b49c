"""Appointments pushed into a staff member's calendar on a real Radicale: create, update, delete;
an unchanged appointment costs no request; a lost answer after the server stored the event makes no
second event; wrong credentials and a deleted calendar are plain-words errors on the account."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from icalendar import Calendar

from hub.calendar.accounts import account_health_rows
from hub.calendar.appointments import AppointmentInput, delete_appointment, get_appointment, save_appointment
from hub.calendar.dav import CalendarError
from hub.calendar.sync import push_now, sync_account
from hub.config import Settings
from hub.db import Database
from hub.i18n import shown
from hub.models import CalendarAccount, CalendarPush, User
from tests.caldav_server import AnswerDroppingProxy, RadicaleServer, connect_calendar
from tests.conftest import make_settings


def _events(server: RadicaleServer, calendar_url: str) -> list[Calendar]:
    login = calendar_url.rstrip("/").split("/")[-2]
    return [Calendar.from_ical(data) for data in server.objects(calendar_url, login)]


def _summary(cal: Calendar) -> str:
    return str(next(iter(cal.walk("VEVENT")))["summary"])


def _make(db: Database, user: User, title: str = "Visit", **extra: object) -> int:
    with db.transaction() as session:
        me = session.get_one(User, user.id)
        data = AppointmentInput(
            title=title,
            start=datetime(2026, 12, 1, 10, 0),
            end=datetime(2026, 12, 1, 11, 0),
            **extra,  # type: ignore[arg-type]
        )
        return save_appointment(session, me, data).id


@pytest.fixture
def any_settings(any_db: Database, tmp_path: object) -> Settings:
    from pathlib import Path

    return make_settings(Path(str(tmp_path)) / "var", any_db.url)


def test_create_update_delete_and_unchanged_costs_nothing(
    any_db: Database, any_settings: Settings, caldav_server: RadicaleServer, make_user: Callable[..., User]
) -> None:
    db = any_db
    with db.transaction() as session:
        from hub.accounts.users import UserInput, create_user

        anna = create_user(
            session, UserInput(email="anna@staff.example", name="Anna", password="correct horse battery")
        )
    account_id, calendar_url = connect_calendar(db, any_settings.secret_key, caldav_server, anna)
    ids = [_make(db, anna, f"Visit {n}") for n in range(30)]

    first = push_now(db, secret_key=any_settings.secret_key, allowed_hosts=any_settings.mail_allowed_hosts)
    assert first.appointments == 30 and not first.errors
    events = _events(caldav_server, calendar_url)
    assert sorted(_summary(e) for e in events) == sorted(f"Visit {n}" for n in range(30))
    # The time zone travels with the event: 10:00 in Amsterdam, not 10:00 UTC.
    start = next(iter(events[0].walk("VEVENT"))).decoded("dtstart")
    assert (start.hour, str(start.tzinfo)) == (10, "Europe/Amsterdam")

    # Nothing changed: no request at all, even when every appointment is due again.
    again = push_now(db, secret_key=any_settings.secret_key, allowed_hosts=any_settings.mail_allowed_hosts)
    assert (again.appointments, again.requests) == (0, 0)
    with db.transaction() as session:
        for push in session.query(CalendarPush):
            push.state = "pending"
    resaved = push_now(db, secret_key=any_settings.secret_key, allowed_hosts=any_settings.mail_allowed_hosts)
    assert (resaved.appointments, resaved.requests, resaved.unchanged) == (0, 0, 30)

    # An update replaces the event (If-Match), it does not add one.
    with db.transaction() as session:
        me = session.get_one(User, anna.id)
        appointment = get_appointment(session, me, ids[0])
        save_appointment(
            session,
            me,
            AppointmentInput(title="Visit moved", start=datetime(2026, 12, 2, 14, 0), end=datetime(2026, 12, 2, 15, 0)),
            appointment,
            expected_version=appointment.version,
        )
    updated = push_now(db, secret_key=any_settings.secret_key, allowed_hosts=any_settings.mail_allowed_hosts)
    assert updated.appointments == 1
    assert updated.requests == 2  # the server's login challenge, then one conditional PUT
    summaries = sorted(_summary(e) for e in _events(caldav_server, calendar_url))
    assert len(summaries) == 30 and "Visit moved" in summaries and "Visit 0" not in summaries

    # A delete removes it from the calendar; the UID is never given out again.
    with db.transaction() as session:
        me = session.get_one(User, anna.id)
        appointment = get_appointment(session, me, ids[1])
        uid = appointment.uid
        delete_appointment(session, me, appointment)
    removed = push_now(db, secret_key=any_settings.secret_key, allowed_hosts=any_settings.mail_allowed_hosts)
    assert removed.appointments == 1
    left = _events(caldav_server, calendar_url)
    assert len(left) == 29 and all(str(next(iter(e.walk("VEVENT")))["uid"]) != uid for e in left)
    with db.transaction() as session:
        account = session.get_one(CalendarAccount, account_id)
        assert account.last_push_at is not None and account.failures == 0


def test_an_answer_lost_after_the_server_stored_the_event_makes_no_duplicate(
    db: Database, settings: Settings, caldav_server: RadicaleServer, make_user: Callable[..., User]
) -> None:
    proxy = AnswerDroppingProxy(caldav_server.port)
    try:
        anna = make_user("Anna")
        account_id, calendar_url = connect_calendar(db, settings.secret_key, caldav_server, anna, url=proxy.url)
        for n in range(5):
            _make(db, anna, f"Visit {n}")
        proxy.drop_answers("PUT", times=1)  # the first create is stored, its answer never arrives
        with pytest.raises(CalendarError) as failed:
            sync_account(
                db,
                account_id,
                secret_key=settings.secret_key,
                allowed_hosts=settings.mail_allowed_hosts,
                pull=False,
                timeout=5,
            )
        assert "tries again later" in failed.value.words
        assert proxy.dropped == 1
        with db.transaction() as session:
            account = session.get_one(CalendarAccount, account_id)
            # Stored to be shown in each reader's language (hub.i18n.N_): in English here.
            assert account.failures == 1 and shown(account.last_error) == failed.value.words
            account.next_attempt_at = None

        retried = sync_account(
            db, account_id, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts, pull=False
        )
        assert retried is not None
        events = _events(caldav_server, calendar_url)
        assert sorted(_summary(e) for e in events) == [f"Visit {n}" for n in range(5)]  # each exactly once
        with db.transaction() as session:
            assert session.get_one(CalendarAccount, account_id).failures == 0
            assert {p.state for p in session.query(CalendarPush)} == {"synced"}
    finally:
        proxy.close()


def test_wrong_credentials_and_a_deleted_calendar_are_plain_errors(
    db: Database, settings: Settings, caldav_server: RadicaleServer, make_user: Callable[..., User]
) -> None:
    anna = make_user("Anna")
    account_id, calendar_url = connect_calendar(db, settings.secret_key, caldav_server, anna)
    _make(db, anna)
    login = calendar_url.rstrip("/").split("/")[-2]

    caldav_server.add_user(login, "changed-on-the-server")
    result = push_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    assert result.appointments == 0
    with db.transaction() as session:
        account = session.get_one(CalendarAccount, account_id)
        assert "refused the user name or password" in account.last_error
        assert account.failures == 1 and account.next_attempt_at is not None
        assert session.query(CalendarPush).one().state == "pending"  # nothing lost: still due
        account.next_attempt_at = None
    # The sync-health page and /api/v1/health read the same state, in plain words.
    (row,) = account_health_rows(db, workers_alive=True)
    assert row.health.state == "failing" and "refused the user name or password" in row.health.words
    assert row.pending == 1

    caldav_server.add_user(login, f"pw-{login}")
    with caldav_server.client(login) as client:
        client.calendar(url=calendar_url).delete()
    push_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    with db.transaction() as session:
        account = session.get_one(CalendarAccount, account_id)
        assert "was it deleted" in account.last_error
        assert account.failures == 2


def test_a_server_error_mid_batch_keeps_what_was_written_and_the_retry_adds_no_duplicate(
    db: Database, settings: Settings, caldav_server: RadicaleServer, make_user: Callable[..., User]
) -> None:
    proxy = AnswerDroppingProxy(caldav_server.port)
    try:
        anna = make_user("Anna")
        account_id, calendar_url = connect_calendar(db, settings.secret_key, caldav_server, anna, url=proxy.url)
        for n in range(12):
            _make(db, anna, f"Visit {n}")
        proxy.fail_with_503("PUT", after=5, times=2)
        with pytest.raises(CalendarError) as failed:
            sync_account(
                db, account_id, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts, pull=False
            )
        assert "HTTP 503" in failed.value.words and failed.value.temporary
        stored_before = len(_events(caldav_server, calendar_url))
        with db.transaction() as session:
            states = [p.state for p in session.query(CalendarPush)]
            assert states.count("synced") == stored_before >= 5  # what the server took is recorded
            account = session.get_one(CalendarAccount, account_id)
            assert account.failures == 1 and account.next_attempt_at is not None
            account.next_attempt_at = None
        sync_account(
            db, account_id, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts, pull=False
        )
        assert sorted(_summary(e) for e in _events(caldav_server, calendar_url)) == sorted(
            f"Visit {n}" for n in range(12)
        )
    finally:
        proxy.close()


def test_deleting_a_project_takes_its_appointments_out_of_the_calendars(
    db: Database, settings: Settings, caldav_server: RadicaleServer, make_user: Callable[..., User]
) -> None:
    from hub.crm.projects import ProjectInput, delete_project, save_project
    from hub.crm.relations import RelationInput, save_relation
    from hub.models import Appointment, Project

    anna = make_user("Anna", admin=True)
    _account_id, calendar_url = connect_calendar(db, settings.secret_key, caldav_server, anna)
    with db.transaction() as session:
        relation = save_relation(session, RelationInput(name="Bakkerij Zoet"))
        project_id = save_project(session, anna, ProjectInput(relation_id=relation.id, name="Oven")).id
    on_project = _make(db, anna, "Oven visit", project_id=project_id)
    _make(db, anna, "Other visit")
    push_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    assert sorted(_summary(e) for e in _events(caldav_server, calendar_url)) == ["Other visit", "Oven visit"]

    with db.transaction() as session:
        delete_project(session, session.get_one(Project, project_id), by=session.get_one(User, anna.id))
    removed = push_now(db, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    assert not removed.errors
    assert [_summary(e) for e in _events(caldav_server, calendar_url)] == ["Other visit"]
    with db.transaction() as session:
        gone = session.get_one(Appointment, on_project)
        assert gone.deleted_at is not None and gone.project_id is None  # kept until every calendar was told
