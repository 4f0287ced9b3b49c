"""Calendar: appointments, their attendees, moved occurrences and history; the staff's CalDAV
accounts and the events hub pushed into them; the private ICS feeds.

An appointment's UID is hub's own (``<uuid4>@hub``), set once and never given to another
appointment, not even after a delete: servers with a trash bin (Nextcloud) refuse a re-used UID. A
deleted appointment keeps its row (``deleted_at``) until every calendar it was pushed to has been told.
Times are UTC instants plus the time zone they were made in (``tzid``), so a weekly series stays at
10:00 local time across daylight-saving changes.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.models.base import Base, Timestamps, utcnow
from hub.models.users import User


class AppointmentStatus(enum.StrEnum):
    planned = "planned"
    done = "done"
    cancelled = "cancelled"


class Partstat(enum.StrEnum):
    """An attendee's answer, as iCalendar spells it (RFC 5545 PARTSTAT)."""

    needs_action = "NEEDS-ACTION"
    accepted = "ACCEPTED"
    declined = "DECLINED"
    tentative = "TENTATIVE"


class Delivery(enum.StrEnum):
    """How a staff member's calendar receives appointments."""

    caldav = "caldav"  # pushed into his CalDAV calendar, changes there come back
    invitations = "invitations"  # e-mail invitations (iMIP), for Outlook and calendars without CalDAV


class Appointment(Timestamps, Base):
    __tablename__ = "appointment"
    __table_args__ = (
        CheckConstraint("end_at >= start_at", name="ends_after_start"),
        Index("ix_appointment_start_at", "start_at"),
        Index("ix_appointment_project_start", "project_id", "start_at"),
        Index("ix_appointment_relation_start", "relation_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(500), default="")
    # UTC instants. All-day: midnight UTC of the first day and of the day after the last one.
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime] = mapped_column()
    tzid: Mapped[str] = mapped_column(String(64), default="Europe/Amsterdam")
    all_day: Mapped[bool] = mapped_column(default=False)
    # RFC 5545 RRULE value (FREQ=WEEKLY;INTERVAL=1;COUNT=10), empty for a single appointment; the
    # series' dropped occurrences (EXDATE) as UTC ISO instants, one per line.
    rrule: Mapped[str] = mapped_column(String(500), default="")
    exdates: Mapped[str] = mapped_column(Text, default="")
    # The last occurrence's end (None: a series without end), so range queries stay index-only.
    series_end_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    status: Mapped[str] = mapped_column(String(10), default=AppointmentStatus.planned.value)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    relation_id: Mapped[int | None] = mapped_column(ForeignKey("relation.id", ondelete="CASCADE"))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activity.id", ondelete="SET NULL"), index=True)
    visit_report: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    # iCalendar SEQUENCE: raised on every change attendees should hear about (RFC 5546).
    sequence: Mapped[int] = mapped_column(default=0)
    # SHA-256 of what the calendars show: an unchanged appointment is not sent again.
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    # When each field was last changed in hub (JSON field → ISO instant): "changed last wins".
    field_times: Mapped[str] = mapped_column(Text, default="{}")
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    deleted_at: Mapped[datetime | None] = mapped_column(default=None, index=True)

    created_by: Mapped[User | None] = relationship()
    attendees: Mapped[list[AppointmentAttendee]] = relationship(
        order_by="AppointmentAttendee.id", cascade="all, delete-orphan", passive_deletes=True
    )
    overrides: Mapped[list[AppointmentOverride]] = relationship(
        order_by="AppointmentOverride.recurrence_id", cascade="all, delete-orphan", passive_deletes=True
    )


class AppointmentAttendee(Base):
    """A staff member (``user_id``) or a contact (``contact_id``, or only an address) invited."""

    __tablename__ = "appointment_attendee"
    __table_args__ = (
        UniqueConstraint("appointment_id", "email_key", name="uq_appointment_attendee_email"),
        Index("ix_appointment_attendee_user", "user_id", "appointment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointment.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254))
    partstat: Mapped[str] = mapped_column(String(20), default=Partstat.needs_action.value)
    # The SEQUENCE of the last invitation sent to this attendee (0: none yet).
    invited_sequence: Mapped[int] = mapped_column(default=0)

    user: Mapped[User | None] = relationship()


class AppointmentCancellation(Base):
    """A CANCEL owed to someone taken off an appointment after an invitation by e-mail reached him: his
    own calendar (Outlook, Gmail) keeps the appointment until told (RFC 5546, 3.2.5). Sent by the
    invitation sender; ``sent`` is set by a conditional UPDATE before sending, so two workers never
    both send, and put back when the relay says "try later"."""

    __tablename__ = "appointment_cancellation"
    __table_args__ = (
        UniqueConstraint("appointment_id", "email_key", name="uq_appointment_cancellation_email"),
        Index("ix_appointment_cancellation_sent", "sent", "appointment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointment.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254))
    sent: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AppointmentOverride(Base):
    """One occurrence of a series moved (or retitled): iCalendar's RECURRENCE-ID override."""

    __tablename__ = "appointment_override"
    __table_args__ = (UniqueConstraint("appointment_id", "recurrence_id", name="uq_appointment_override_occurrence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointment.id", ondelete="CASCADE"))
    # The occurrence's original start (UTC), as the series would have it.
    recurrence_id: Mapped[datetime] = mapped_column()
    start_at: Mapped[datetime] = mapped_column()
    end_at: Mapped[datetime] = mapped_column()
    title: Mapped[str] = mapped_column(String(200), default="")


class AppointmentHistory(Base):
    """What changed and by whom; on a conflict, the losing version of each field."""

    __tablename__ = "appointment_history"
    __table_args__ = (Index("ix_appointment_history_appointment", "appointment_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointment.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # "hub" (a page, the API), or the calendar account whose change came back ("calendar").
    source: Mapped[str] = mapped_column(String(20), default="hub")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    summary: Mapped[str] = mapped_column(String(500), default="")
    # JSON: field → the value that lost (conflicts), or the values before the change.
    losing: Mapped[str] = mapped_column(Text, default="{}")

    user: Mapped[User | None] = relationship()


class CalendarAccount(Timestamps, Base):
    """A staff member's calendar: a CalDAV server and the one calendar hub writes into.

    Health columns carry the same names as :class:`Mailbox`'s, for :func:`hub.ops.health.work_state`
    and :mod:`hub.claims`.
    """

    __tablename__ = "calendar_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), unique=True)
    delivery: Mapped[str] = mapped_column(String(20), default=Delivery.caldav.value)
    url: Mapped[str] = mapped_column(String(1000), default="")
    username: Mapped[str] = mapped_column(String(254), default="")
    password_encrypted: Mapped[str] = mapped_column(Text, default="")
    calendar_url: Mapped[str] = mapped_column(String(1000), default="")
    calendar_name: Mapped[str] = mapped_column(String(200), default="")
    # RFC 6578 sync-token of the last pull ("" before the first, or when the server has none).
    sync_token: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    last_push_at: Mapped[datetime | None] = mapped_column(default=None)
    last_pull_at: Mapped[datetime | None] = mapped_column(default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    failures: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    claimed_by: Mapped[str] = mapped_column(String(80), default="")
    progress_done: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_total: Mapped[int] = mapped_column(BigInteger, default=0)
    last_progress_at: Mapped[datetime | None] = mapped_column(default=None)
    poll_interval_seconds: Mapped[int] = mapped_column(default=300)

    owner: Mapped[User] = relationship()


class PushState(enum.StrEnum):
    pending = "pending"  # to be written (created or updated)
    synced = "synced"  # the calendar holds what hub last wrote (pushed_hash)
    delete = "delete"  # to be removed from the calendar
    gone = "gone"  # removed (by hub, or by the owner in his calendar)


class CalendarPush(Base):
    """One appointment in one account's calendar: where hub put it and what it wrote there."""

    __tablename__ = "calendar_push"
    __table_args__ = (
        UniqueConstraint("appointment_id", "account_id", name="uq_calendar_push_appointment_account"),
        Index("ix_calendar_push_account_state", "account_id", "state"),
        Index("ix_calendar_push_account_href", "account_id", "href"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointment.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("calendar_account.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(10), default=PushState.pending.value)
    # The resource's URL (hub chooses it at the first PUT: <calendar>/<uid>.ics) and last ETag.
    href: Mapped[str] = mapped_column(String(1000), default="")
    etag: Mapped[str] = mapped_column(String(200), default="")
    pushed_hash: Mapped[str] = mapped_column(String(64), default="")
    # JSON of the field values last written: the common ancestor of a three-way merge.
    pushed_fields: Mapped[str] = mapped_column(Text, default="{}")
    pushed_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=0)


class CalendarFeed(Base):
    """A staff member's private ICS feed: only a SHA-256 of its secret is stored; revoking replaces it."""

    __tablename__ = "calendar_feed"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_read_at: Mapped[datetime | None] = mapped_column(default=None)
