"""A worker killed in the middle of a push (a PUT in flight, answered after the process died):
the next run, once the dead run's claim has lapsed, writes the rest and adopts what the server
already stored — every appointment exactly once in the calendar, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta

from icalendar import Calendar
from sqlalchemy import update

from hub.calendar.appointments import AppointmentInput, save_appointment
from hub.calendar.sync import sync_account
from hub.config import Settings
from hub.db import Database
from hub.models import CalendarAccount, CalendarPush, User
from hub.models.base import utcnow
from tests.caldav_server import AnswerDroppingProxy, RadicaleServer, connect_calendar
from tests.conftest import settings_env


def test_a_killed_push_resumes_without_loss_or_duplicates(
    db: Database, settings: Settings, caldav_server: RadicaleServer, make_user: Callable[..., User]
) -> None:
    proxy = AnswerDroppingProxy(caldav_server.port)
    try:
        anna = make_user("Anna")
        account_id, calendar_url = connect_calendar(db, settings.secret_key, caldav_server, anna, url=proxy.url)
        with db.transaction() as s:
            me = s.get_one(User, anna.id)
            for n in range(20):
                start = datetime(2026, 12, 1, 8) + timedelta(days=n)
                save_appointment(
                    s, me, AppointmentInput(title=f"Visit {n}", start=start, end=start + timedelta(hours=1))
                )
        proxy.hold("PUT", after=6)
        worker = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "calendar", "push", "--now"],
            env=settings_env(settings),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            assert proxy.holding.wait(120), "the push never reached the held request"
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        proxy.release()  # the request in flight reaches the server after its sender died

        with db.transaction() as s:
            account = s.get_one(CalendarAccount, account_id)
            assert account.claimed_until is not None and account.claimed_by  # the dead run's claim
            left = s.query(CalendarPush).filter(CalendarPush.state == "pending").count()
        assert left > 0  # the batch in hand was not recorded: the retry finds those events on the server
        assert (
            sync_account(db, account_id, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
            is None
        )  # still claimed
        with db.transaction() as s:  # one lease later (45 s) the claim has lapsed
            s.execute(
                update(CalendarAccount)
                .where(CalendarAccount.id == account_id)
                .values(claimed_until=utcnow() - timedelta(seconds=1))
            )
        resumed = sync_account(
            db, account_id, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts
        )
        assert resumed is not None and not resumed.errors
        login = calendar_url.rstrip("/").split("/")[-2]
        titles = sorted(
            str(Calendar.from_ical(data).walk("VEVENT")[0]["summary"])
            for data in caldav_server.objects(calendar_url, login)
        )
        assert titles == sorted(f"Visit {n}" for n in range(20))
        with db.transaction() as s:
            assert {p.state for p in s.query(CalendarPush)} == {"synced"}
    finally:
        proxy.close()
