"""The channel overview (multi-channel management): how often hub's users were in touch with
relations, per calendar month and channel: e-mails received and sent, calls in and out, mailings
sent and appointments. Overall (every relation the user may see) or for one relation.

Months are calendar months on the company's clock (Europe/Amsterdam unless told otherwise): each
month's first midnight there is turned into a UTC instant, and every channel is counted with one
``GROUP BY`` over a ``CASE`` on those instants. That is the same SQL on SQLite and PostgreSQL (no
strftime/date_trunc, no time zone database in the server) and exact at the daylight-saving change.

Only what the user may see is counted, by the one rule of each capability. The CRM core and the
campaigns capability import no other capability, so the caller hands in the mail, telephony and
calendar rules (``hub.mail.privacy.email_visible``, ``hub.telephony.read.call_visible``,
``hub.calendar.appointments.appointment_visible``), the way hub.crm.search takes ``emails_visible``.
A channel whose rule is not given is not counted (shown as 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from sqlalchemy import ColumnElement, Select, and_, case, exists, func, literal_column, or_, select
from sqlalchemy.orm import Session

from hub.crm.access import relation_visible
from hub.crm.relations import get_relation
from hub.mail.kinds import AUTOMATIC_KINDS
from hub.models import Appointment, Call, Contact, Email, EmailRelation, Mailbox, Project, Relation, User
from hub.models.calendar import AppointmentStatus
from hub.models.campaigns import MailingRecipient, RecipientStatus

Rule = Callable[[User], ColumnElement[bool]]

CHANNELS = ("mail_in", "mail_out", "calls_in", "calls_out", "mailings", "appointments")
MAX_MONTHS = 36
COMPANY_ZONE = ZoneInfo("Europe/Amsterdam")


@dataclass
class MonthCounts:
    """One calendar month: ``start`` is its first day on the company's clock."""

    start: date
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANNELS, 0))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class Overview:
    months: list[MonthCounts]
    relation: Relation | None = None

    @property
    def totals(self) -> dict[str, int]:
        return {channel: sum(m.counts[channel] for m in self.months) for channel in CHANNELS}

    @property
    def total(self) -> int:
        return sum(m.total for m in self.months)


def month_starts(today: date, months: int) -> list[date]:
    """The first days of the last ``months`` months up to and including today's, plus the next one's
    (the end of the range): ``months + 1`` dates."""
    first = today.replace(day=1) - relativedelta(months=months - 1)
    return [first + relativedelta(months=i) for i in range(months + 1)]


def _instants(starts: list[date], zone: ZoneInfo) -> list[datetime]:
    return [datetime.combine(d, time(0), tzinfo=zone).astimezone(UTC) for d in starts]


def _bucket(column: Any, bounds: list[datetime]) -> ColumnElement[int]:
    """The month index (0 = oldest) of ``column``; the caller keeps rows to [bounds[0], bounds[-1])."""
    return case(*((column < bound, i) for i, bound in enumerate(bounds[1:])), else_=len(bounds) - 2)


def _counted(session: Session, inner: Select[Any]) -> list[tuple[int, int, int]]:
    """(month index, flag, count) from ``inner``'s columns ``m`` and ``flag``. The grouping happens
    over a subquery: PostgreSQL does not see a CASE with bound parameters in GROUP BY as the same
    expression as in the select list."""
    rows = inner.subquery()
    query = select(rows.c.m, rows.c.flag, func.count()).group_by(rows.c.m, rows.c.flag)
    return [(int(m), int(flag), int(n)) for m, flag, n in session.execute(query).tuples()]


def _in_range(column: Any, bounds: list[datetime]) -> ColumnElement[bool]:
    return (column >= bounds[0]) & (column < bounds[-1])


# What counts as a contact moment on each channel, for the overview and the target groups' "last
# contact" alike: mail that is not machine-made, a call in or out (an internal call is no contact
# with a relation), an appointment not cancelled (nor deleted).
def _mail_moment() -> ColumnElement[bool]:
    return Email.kind.notin_(AUTOMATIC_KINDS)


def _call_moment() -> ColumnElement[bool]:
    return Call.direction.in_(("inbound", "outbound"))


def _appointment_moment() -> ColumnElement[bool]:
    return and_(Appointment.deleted_at.is_(None), Appointment.status != AppointmentStatus.cancelled.value)


def _outgoing() -> ColumnElement[bool]:
    """SQL: the e-mail was sent by staff: its sender is a user's address or a mailbox's log-in (the
    addresses hub.mail.privacy.staff_addresses calls staff's own; stored addresses are casefolded)."""
    return or_(
        Email.from_address.in_(select(func.lower(User.email))),
        Email.from_address.in_(select(func.lower(Mailbox.username)).where(Mailbox.username.like("%@%"))),
    )


def channel_overview(
    session: Session,
    user: User,
    *,
    relation_id: int | None = None,
    months: int = 12,
    today: date | None = None,
    zone: ZoneInfo = COMPANY_ZONE,
    emails_visible: Rule | None = None,
    calls_visible: Rule | None = None,
    appointments_visible: Rule | None = None,
) -> Overview:
    """Contact moments per month and channel that ``user`` may see, for the last ``months`` months
    (1 to 36) up to ``today`` (default: today on ``zone``'s clock).

    With ``relation_id``: only that relation's (raises NotFound when the user may not see it, as for
    a missing one). Without: the moments on any relation the user may see; mail, calls and
    appointments on no relation (internal, unknown callers) are no contact with a relation.
    An e-mail on two relations counts once overall and once on each relation.
    """
    months = max(1, min(months, MAX_MONTHS))
    today = today or datetime.now(zone).date()
    starts = month_starts(today, months)
    bounds = _instants(starts, zone)
    relation = get_relation(session, user, relation_id) if relation_id is not None else None

    if relation is not None:
        relations: Any = [relation.id]
    else:
        relations = select(Relation.id).where(relation_visible(user))
    projects = select(Project.id).where(Project.relation_id.in_(relations))

    def on_relation(relation_column: Any, project_column: Any) -> ColumnElement[bool]:
        return or_(relation_column.in_(relations), project_column.in_(projects))

    result = [MonthCounts(start=d) for d in starts[:-1]]

    def add(channel: str, rows: list[tuple[int, int, int]], *, flagged: str | None = None) -> None:
        for m, flag, n in rows:
            result[m].counts[flagged if flagged and flag else channel] += n

    if emails_visible is not None:
        moment = Email.sent_at
        inner = select(_bucket(moment, bounds).label("m"), case((_outgoing(), 1), else_=0).label("flag")).where(
            _in_range(moment, bounds),
            _mail_moment(),
            exists().where(EmailRelation.email_id == Email.id, EmailRelation.relation_id.in_(relations)),
            emails_visible(user),
        )
        add("mail_in", _counted(session, inner), flagged="mail_out")

    if calls_visible is not None:
        inner = select(
            _bucket(Call.started_at, bounds).label("m"), case((Call.direction == "outbound", 1), else_=0).label("flag")
        ).where(
            _in_range(Call.started_at, bounds),
            _call_moment(),
            on_relation(Call.relation_id, Call.project_id),
            calls_visible(user),
        )
        add("calls_in", _counted(session, inner), flagged="calls_out")

    sent_at = MailingRecipient.sent_at
    inner = select(_bucket(sent_at, bounds).label("m"), literal_column("0").label("flag")).where(
        _in_range(sent_at, bounds),
        MailingRecipient.status == RecipientStatus.sent.value,
        MailingRecipient.contact_id.in_(select(Contact.id).where(Contact.relation_id.in_(relations))),
    )
    add("mailings", _counted(session, inner))

    if appointments_visible is not None:
        # A recurring appointment counts once, in the month of its first occurrence.
        inner = select(_bucket(Appointment.start_at, bounds).label("m"), literal_column("0").label("flag")).where(
            _in_range(Appointment.start_at, bounds),
            _appointment_moment(),
            on_relation(Appointment.relation_id, Appointment.project_id),
            appointments_visible(user),
        )
        add("appointments", _counted(session, inner))

    return Overview(months=result, relation=relation)


@dataclass(frozen=True)
class SeenBy:
    """A user and the rules of what he may see of mail, calls and appointments (handed in by the
    caller, as for :func:`channel_overview`)."""

    user: User
    emails_visible: Rule
    calls_visible: Rule
    appointments_visible: Rule


def contacted_between(since: datetime, until: datetime, seen: SeenBy | None = None) -> ColumnElement[bool]:
    """SQL condition on ``Relation``: someone was in touch with it in [since, until): an e-mail (not a
    bounce, complaint or auto-reply), a call in or out, or an appointment that was not cancelled, on
    the relation or one of its projects. The same moments the overview counts, mailings left out: a
    mailing is no personal contact.

    With ``seen``: only moments that user may see. What a group shows a user is judged so: counted
    over every moment, a group "contacted since" a day told him, day by day, when a relation he sees
    had a private e-mail, or a call or visit on a project hidden from him (hub.crm.access)."""
    # Correlated to the outer query's relation by name: two levels down, automatic correlation would
    # not reach it and the subquery would read every project of every relation.
    its_projects = select(Project.id).where(Project.relation_id == Relation.id).correlate(Relation)
    mail = exists().where(
        EmailRelation.relation_id == Relation.id,
        EmailRelation.email_id == Email.id,
        Email.sent_at >= since,
        Email.sent_at < until,
        _mail_moment(),
        *([seen.emails_visible(seen.user)] if seen else []),
    )
    call = exists().where(
        or_(Call.relation_id == Relation.id, Call.project_id.in_(its_projects)),
        Call.started_at >= since,
        Call.started_at < until,
        _call_moment(),
        *([seen.calls_visible(seen.user)] if seen else []),
    )
    appointment = exists().where(
        or_(Appointment.relation_id == Relation.id, Appointment.project_id.in_(its_projects)),
        Appointment.start_at >= since,
        Appointment.start_at < until,
        _appointment_moment(),
        *([seen.appointments_visible(seen.user)] if seen else []),
    )
    return or_(mail, call, appointment)
