"""Calendar benchmark: hub's push of 1,000 appointments into a CalDAV calendar against a plain loop of
the caldav library doing the same creates, in the same run, on the same Radicale.

1. Starts Radicale (from .venv, htpasswd authentication, storage in a temp dir) with two users and a
   calendar each, and a throwaway SQLite hub database with one staff member whose calendar account
   points at the first; makes N appointments (not timed).
2. Times ``hub calendar push --now``'s service (claim, render, If-None-Match PUTs, record ETags).
3. Times a plain loop of ``calendar.add_event(ics)`` (caldav 3) with the same iCalendar bodies into
   the second user's calendar.
4. Pushes again, unchanged, twice: once with nothing due (nothing to do) and once with every
   appointment marked due (each compared by its content hash): both send zero requests.

The last line is ``calendar: ratio=R target=1.0``, R = hub's time over the plain loop's (lower is better).
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, and this file would stand in for the
# standard library's ``calendar`` module (which the e-mail package imports): take the folder off.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import caldav  # noqa: E402
from sqlalchemy import select, update  # noqa: E402

from hub.accounts.users import UserInput, create_user  # noqa: E402
from hub.calendar import ical  # noqa: E402
from hub.calendar.appointments import AppointmentInput, save_appointment, snapshot  # noqa: E402
from hub.calendar.sync import push_now  # noqa: E402
from hub.db import Database  # noqa: E402
from hub.migrate import upgrade  # noqa: E402
from hub.models import Appointment, CalendarPush, User  # noqa: E402
from tests.caldav_server import connect_calendar, radicale  # noqa: E402

SECRET = "bench-secret-key-0123456789"
# Radicale runs on this machine: hub refuses internal servers unless they are allowed.
LOOPBACK_HOSTS = "127.0.0.1,localhost,::1"


def make_appointments(db: Database, user_id: int, n: int) -> None:
    start = datetime(2027, 1, 4, 8, 0)
    with db.transaction() as session:
        me = session.get_one(User, user_id)
        for i in range(n):
            day = start + timedelta(days=i // 8, hours=i % 8)
            save_appointment(
                session,
                me,
                AppointmentInput(
                    title=f"Visit {i:04d}",
                    start=day,
                    end=day + timedelta(minutes=45),
                    location=f"Dorpsstraat {i}",
                    description="Bring the samples.",
                    rrule="FREQ=WEEKLY;COUNT=4" if i % 10 == 0 else "",
                ),
            )


def bodies(db: Database) -> list[bytes]:
    """The same iCalendar bodies hub sends, for the plain loop (made before its timing starts)."""
    stamp = datetime.now(UTC)
    with db.transaction() as session:
        return [
            ical.render(snapshot(session, a), stamp=stamp)
            for a in session.scalars(select(Appointment).order_by(Appointment.id))
        ]


def plain_loop(url: str, username: str, password: str, calendar_url: str, items: list[bytes]) -> float:
    started = time.monotonic()
    with caldav.DAVClient(url=url, username=username, password=password, enable_rfc6764=False) as client:
        cal = client.calendar(url=calendar_url)
        for body in items:
            cal.add_event(body.decode())
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="appointments (default 1000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-bench-calendar-") as tmp, radicale() as server:
        url = f"sqlite:///{Path(tmp) / 'hub.db'}"
        upgrade(url)
        db = Database(url)
        with db.transaction() as session:
            staff = create_user(session, UserInput(email="anna@bench.example", name="Anna", password="x" * 12))
        account_id, _calendar_url = connect_calendar(db, SECRET, server, staff)
        print(f"making {args.n:,} appointments …", file=sys.stderr)
        make_appointments(db, staff.id, args.n)
        items = bodies(db)
        server.add_user("plain", "plain-pw")
        plain_calendar = server.make_calendar("plain", "Work")

        started = time.monotonic()
        result = push_now(db, secret_key=SECRET, allowed_hosts=LOOPBACK_HOSTS, account_ids=[account_id])
        hub_seconds = time.monotonic() - started
        assert result.appointments == args.n and not result.errors, result
        print(f"hub:   pushed {result.appointments} appointments ({result.requests} requests) in {hub_seconds:.2f} s")

        plain_seconds = plain_loop(server.url, "plain", "plain-pw", plain_calendar, items)
        print(f"caldav loop: created {len(items)} events in {plain_seconds:.2f} s")
        stored = len(server.objects(plain_calendar, "plain"))
        assert stored == args.n, stored

        again = push_now(db, secret_key=SECRET, allowed_hosts=LOOPBACK_HOSTS, account_ids=[account_id])
        print(f"second push, nothing due: {again.appointments} appointments, {again.requests} requests")
        with db.transaction() as session:
            session.execute(update(CalendarPush).values(state="pending"))
        resent = push_now(db, secret_key=SECRET, allowed_hosts=LOOPBACK_HOSTS, account_ids=[account_id])
        print(
            f"second push, all {resent.unchanged} due but unchanged: "
            f"{resent.appointments} appointments, {resent.requests} requests"
        )
        assert again.requests == 0 and resent.requests == 0
        db.dispose()
        ratio = hub_seconds / plain_seconds
        print(f"calendar: ratio={ratio:.2f} target=1.0")


if __name__ == "__main__":
    main()
