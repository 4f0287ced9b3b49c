"""Which calendar accounts beat's sweep sends to a worker: those with pushes waiting or a pull due,
out of their backoff and not held by another run; and which appointments have invitations due."""

from __future__ import annotations

from datetime import datetime, timedelta

from hub.calendar.accounts import due_accounts
from hub.calendar.appointments import AppointmentInput, save_appointment
from hub.db import Database
from hub.models import CalendarAccount, CalendarPush, User
from hub.models.base import utcnow


def test_due_accounts(any_db: Database) -> None:
    db = any_db
    with db.transaction() as s:
        from hub.accounts.users import UserInput, create_user

        anna = create_user(s, UserInput(email="anna@staff.example", name="Anna", password="x" * 12))
        bert = create_user(s, UserInput(email="bert@staff.example", name="Bert", password="x" * 12))
        now = utcnow()
        fresh = CalendarAccount(owner_id=anna.id, calendar_url="http://dav.example/anna/work/", last_pull_at=now)
        quiet = CalendarAccount(owner_id=bert.id, calendar_url="http://dav.example/bert/work/", last_pull_at=now)
        s.add_all([fresh, quiet])
        s.flush()
        ids = (fresh.id, quiet.id)
    fresh_id, quiet_id = ids
    with db.transaction() as s:
        assert due_accounts(s) == []  # both pulled just now, nothing waiting
        # Anna makes an appointment: her account has a push waiting.
        save_appointment(
            s,
            s.get_one(User, anna.id),
            AppointmentInput(title="Visit", start=datetime(2026, 12, 1, 10), end=datetime(2026, 12, 1, 11)),
        )
        assert s.query(CalendarPush).one().account_id == fresh_id
        assert due_accounts(s) == [fresh_id]
        # Bert's pull falls due after his interval.
        assert due_accounts(s, now=utcnow() + timedelta(seconds=301)) == [fresh_id, quiet_id]
        # In backoff, or claimed by a running sync: not sent again.
        account = s.get_one(CalendarAccount, fresh_id)
        account.next_attempt_at = utcnow() + timedelta(minutes=2)
        assert due_accounts(s) == []
        account.next_attempt_at = None
        account.claimed_until = utcnow() + timedelta(seconds=45)
        assert due_accounts(s) == []
        assert due_accounts(s, now=utcnow() + timedelta(seconds=46)) == [fresh_id]  # a dead run's claim lapsed
