"""The private ICS feed per staff member: a secret URL to subscribe to in Outlook or Google.

The URL carries 256 random bits; hub stores only their SHA-256, so a database copy gives no feed
away. Making a new URL revokes the old one at once. The feed holds the appointments the user attends
from a month back to a year ahead (calendar apps re-read it every few hours; a small feed stays
quick); those of projects he may not see are "Busy" blocks.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta

from icalendar import Calendar
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, selectinload

from hub.calendar import ical
from hub.calendar.appointments import appointment_visible, snapshot
from hub.errors import ValidationError
from hub.models import Appointment, AppointmentAttendee, CalendarFeed, User
from hub.models.base import utcnow

log = logging.getLogger(__name__)

PAST = timedelta(days=31)
AHEAD = timedelta(days=366)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_feed(session: Session, user: User) -> str:
    """A new secret for ``user``'s feed (the old URL stops working); the token, shown once."""
    token = secrets.token_urlsafe(32)
    session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == user.id))
    session.add(CalendarFeed(user_id=user.id, token_hash=_hash(token)))
    session.flush()
    return token


def revoke_feed(session: Session, user: User) -> None:
    session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == user.id))


def has_feed(session: Session, user: User) -> bool:
    return session.scalar(select(CalendarFeed.id).where(CalendarFeed.user_id == user.id)) is not None


def feed_owner(session: Session, token: str) -> User | None:
    """The active user whose feed ``token`` opens (None: unknown or revoked: a 404)."""
    if not token or len(token) > 100:
        return None
    feed = session.scalar(select(CalendarFeed).where(CalendarFeed.token_hash == _hash(token)))
    if feed is None:
        return None
    owner = session.get(User, feed.user_id)
    if owner is None or not owner.is_active:
        return None
    feed.last_read_at = utcnow()
    return owner


def feed_ics(session: Session, user: User, now: datetime | None = None) -> bytes:
    """The user's appointments as one VCALENDAR (METHOD:PUBLISH)."""
    now = now or datetime.now(UTC)
    appointments = list(
        session.scalars(
            select(Appointment)
            .join(AppointmentAttendee, AppointmentAttendee.appointment_id == Appointment.id)
            .where(
                AppointmentAttendee.user_id == user.id,
                Appointment.deleted_at.is_(None),
                Appointment.start_at < now + AHEAD,
                or_(Appointment.series_end_at.is_(None), Appointment.series_end_at > now - PAST),
            )
            .options(selectinload(Appointment.attendees), selectinload(Appointment.overrides))
            .order_by(Appointment.start_at, Appointment.id)
        )
    )
    visible = set(
        session.scalars(
            select(Appointment.id).where(Appointment.id.in_([a.id for a in appointments]), appointment_visible(user))
        )
    )
    cal = Calendar()
    cal.add("prodid", ical.PRODID)
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", ical.text_value(f"hub: {user.name}"))
    # Outlook honours this when the user allows it; Google and Outlook.com pick their own interval.
    cal.add("x-published-ttl", "PT1H")
    for appointment in appointments:
        try:
            one = Calendar.from_ical(
                ical.render(snapshot(session, appointment), private=appointment.id not in visible, stamp=now)
            )
        except (ValueError, OverflowError, ValidationError):  # one bad appointment must not cost the whole feed
            log.warning("feed of user %s: appointment %s left out", user.id, appointment.id, exc_info=True)
            continue
        for component in one.subcomponents:
            if component.name != "VTIMEZONE":
                cal.add_component(component)
    # One VTIMEZONE per zone, covering the whole window of the feed.
    cal.add_missing_timezones(first_date=(now - PAST).date(), last_date=(now + AHEAD * 6).date())
    return bytes(cal.to_ical())
