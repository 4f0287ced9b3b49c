"""Appointments: making, changing and deleting them, who sees them, and what is due for the calendars.

Visibility follows the one rule (hub.crm.access): an appointment on a project is seen by those who
see the project, one on a relation by those who see the relation, and one on neither by all staff.
A hidden appointment answers exactly like a missing one (:class:`NotFound`). A staff member who is
invited but may not see the project gets the *busy* view in his calendar and in hub's week view.

Every save raises ``version`` (a save based on an older one is refused), raises the iCalendar
SEQUENCE when something the calendars show changed, records when each field changed (for the
conflict rule, :mod:`hub.calendar.merge`) and what it was before (the history), and marks the
event pending for every calendar account of a staff attendee; the push itself happens later,
outside the transaction (DESIGN convention 3).
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    exists,
    false,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.orm import Session, selectinload

from hub.calendar import times
from hub.calendar.ical import FIELDS, Person, Snapshot, content_hash, fields_of
from hub.crm.access import claim_version, project_visible, relation_visible
from hub.crm.events import RecordChanged, announce
from hub.errors import NotFound, ValidationError
from hub.i18n import _
from hub.kept import kept
from hub.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentCancellation,
    AppointmentHistory,
    AppointmentOverride,
    CalendarAccount,
    CalendarPush,
    Contact,
    EmailAddress,
    Project,
    Relation,
    User,
    UserGroup,
)
from hub.models.base import utcnow
from hub.models.calendar import AppointmentStatus, Delivery, PushState
from hub.models.users import group_members

STATUSES = tuple(s.value for s in AppointmentStatus)
MAX_DURATION = timedelta(days=366)


@dataclass
class AppointmentInput:
    """What a form or the API sends. ``start``/``end`` are wall-clock times in ``tzid`` (naive) or
    exact moments (aware); for an all-day appointment only their dates count (``end``: the last day)."""

    title: str
    start: datetime
    end: datetime
    tzid: str = times.DEFAULT_TZ
    all_day: bool = False
    description: str = ""
    location: str = ""
    rrule: str = ""
    exdates: list[datetime] = field(default_factory=list)
    status: str = AppointmentStatus.planned.value
    project_id: int | None = None
    relation_id: int | None = None
    # None: the project's responsible user (else the maker). Staff are users; contacts by id.
    staff_ids: list[int] | None = None
    contact_ids: list[int] = field(default_factory=list)
    visit_report: str = ""
    activity_id: int | None = None


# --- who sees what -------------------------------------------------------------------------------------


def appointment_visible(user: User | None) -> ColumnElement[bool]:
    """SQL condition: the (not deleted) ``Appointment`` rows ``user`` may see."""
    alive = Appointment.deleted_at.is_(None)
    if user is not None and user.is_active and user.is_admin:
        return alive
    on_project = exists().where(Project.id == Appointment.project_id, project_visible(user))
    on_relation = exists().where(Relation.id == Appointment.relation_id, relation_visible(user))
    active = true() if user is not None and user.is_active else false()
    return and_(
        alive,
        active,
        or_(
            and_(Appointment.project_id.is_not(None), on_project),
            and_(Appointment.project_id.is_(None), Appointment.relation_id.is_not(None), on_relation),
            and_(Appointment.project_id.is_(None), Appointment.relation_id.is_(None)),
        ),
    )


def may_see(session: Session, user: User, appointment: Appointment) -> bool:
    return bool(
        session.scalar(select(Appointment.id).where(Appointment.id == appointment.id, appointment_visible(user)))
    )


def get_appointment(session: Session, user: User, appointment_id: int) -> Appointment:
    found = session.scalar(
        select(Appointment)
        .where(Appointment.id == appointment_id, appointment_visible(user))
        .options(selectinload(Appointment.attendees), selectinload(Appointment.overrides))
    )
    if found is None:
        raise NotFound(appointment_id)
    return found


def appointments_query(
    user: User, *, project_id: int | None = None, relation_id: int | None = None, contact_id: int | None = None
) -> Any:
    query = select(Appointment).where(appointment_visible(user))
    if project_id is not None:
        query = query.where(Appointment.project_id == project_id)
    if relation_id is not None:
        query = query.where(Appointment.relation_id == relation_id)
    if contact_id is not None:
        query = query.where(
            exists().where(
                AppointmentAttendee.appointment_id == Appointment.id, AppointmentAttendee.contact_id == contact_id
            )
        )
    return query


# What GET /appointments shows of an appointment, as plain columns (AppointmentOut's fields).
LIST_COLUMNS = (
    Appointment.id,
    Appointment.uid,
    Appointment.title,
    Appointment.description,
    Appointment.location,
    Appointment.start_at,
    Appointment.end_at,
    Appointment.tzid,
    Appointment.all_day,
    Appointment.rrule,
    Appointment.exdates,
    Appointment.status,
    Appointment.project_id,
    Appointment.relation_id,
    Appointment.sequence,
    Appointment.version,
    Appointment.created_at,
    Appointment.updated_at,
)
# List statements kept per what makes them (the user's rule, the filters): building and keying one
# (the rule's dozen EXISTS) cost as much as running it; hub.paging keeps their page statements too.
_KEPT_LISTS: dict[tuple[Any, ...], Select[Any]] = {}
KEPT_LISTS = 2048


def appointment_list_rows(
    user: User,
    *,
    project_id: int | None = None,
    relation_id: int | None = None,
    user_id: int | None = None,
    status: str | None = None,
    since: datetime | None = None,
) -> tuple[Select[Any], bool]:
    """The appointments ``user`` may see that pass the filters (:func:`appointments_query`; ``user_id``:
    attended by that staff member; ``since``: ending, or a series ending, at or after it), as
    :data:`LIST_COLUMNS`, and whether the statement is a kept one (for ``keyset_page(kept=...)``);
    one with ``since`` is built each time (too many moments to keep)."""

    def make() -> Select[Any]:
        query = appointments_query(user, project_id=project_id, relation_id=relation_id).with_only_columns(
            *LIST_COLUMNS
        )
        if user_id is not None:
            query = query.where(
                exists().where(
                    AppointmentAttendee.appointment_id == Appointment.id, AppointmentAttendee.user_id == user_id
                )
            )
        if status is not None:
            query = query.where(Appointment.status == status)
        if since is not None:
            moment = since if since.tzinfo else since.replace(tzinfo=UTC)
            query = query.where(Appointment.series_end_at.is_(None) | (Appointment.series_end_at >= moment))
        return query

    if since is not None:
        return make(), False
    key = (user.id, bool(user.is_active), bool(user.is_admin), project_id, relation_id, user_id, status)
    return kept(_KEPT_LISTS, key, make, KEPT_LISTS), True


_LIST_ATTENDEES = (
    select(
        AppointmentAttendee.appointment_id,
        AppointmentAttendee.user_id,
        AppointmentAttendee.contact_id,
        AppointmentAttendee.name,
        AppointmentAttendee.email,
        AppointmentAttendee.partstat,
    )
    .where(AppointmentAttendee.appointment_id.in_(bindparam("ids", expanding=True)))
    .order_by(AppointmentAttendee.id)  # Appointment.attendees' order
)


def attendees_of(session: Session, appointment_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The attendees of these appointments as plain values (user_id, contact_id, name, email,
    partstat), each appointment's in the order ``Appointment.attendees`` gives: one statement."""
    found: dict[int, list[dict[str, Any]]] = {}
    if not appointment_ids:
        return found
    rows = session.connection().execute(_LIST_ATTENDEES, {"ids": appointment_ids})
    for appointment_id, user_id, contact_id, name, email, partstat in rows:
        found.setdefault(appointment_id, []).append(
            {"user_id": user_id, "contact_id": contact_id, "name": name, "email": email, "partstat": partstat}
        )
    return found


# What a contact's page lists of his appointments: the latest, newest first (the Agenda has the rest).
CONTACT_PAGE_APPOINTMENTS = 20


def contact_appointments(session: Session, user: User, contact_id: int) -> list[Appointment]:
    """The appointments ``contact`` is invited to that ``user`` may see, newest first."""
    query = appointments_query(user, contact_id=contact_id).order_by(Appointment.start_at.desc(), Appointment.id.desc())
    return list(session.scalars(query.limit(CONTACT_PAGE_APPOINTMENTS)))


# --- fields, snapshots -----------------------------------------------------------------------------------


def overrides_of(appointment: Appointment) -> list[tuple[datetime, datetime, datetime, str]]:
    return [(o.recurrence_id, o.start_at, o.end_at, o.title) for o in appointment.overrides]


def occurrences_of(appointment: Appointment, window_start: datetime, window_end: datetime) -> list[times.Occurrence]:
    """The appointment's occurrences (one, or a series' with its exceptions) inside the window."""
    return times.occurrences(
        appointment.id,
        appointment.start_at,
        appointment.end_at,
        appointment.tzid,
        appointment.all_day,
        appointment.rrule,
        appointment.exdates,
        overrides_of(appointment),
        window_start,
        window_end,
    )


def current_fields(appointment: Appointment) -> dict[str, Any]:
    return fields_of(
        title=appointment.title,
        description=appointment.description,
        location=appointment.location,
        start_at=appointment.start_at,
        end_at=appointment.end_at,
        all_day=appointment.all_day,
        tzid=appointment.tzid,
        rrule=appointment.rrule,
        exdates=appointment.exdates,
        status=appointment.status,
        overrides=overrides_of(appointment),
    )


def organizer_of(session: Session, appointment: Appointment) -> Person | None:
    if appointment.created_by_id is None:
        return None
    maker = session.get(User, appointment.created_by_id)
    return Person(maker.email, maker.name) if maker else None


def snapshot(session: Session, appointment: Appointment) -> Snapshot:
    return Snapshot(
        uid=appointment.uid,
        sequence=appointment.sequence,
        fields=current_fields(appointment),
        organizer=organizer_of(session, appointment),
        attendees=[Person(a.email, a.name, a.partstat) for a in appointment.attendees],
    )


def field_times(appointment: Appointment) -> dict[str, datetime]:
    raw = json.loads(appointment.field_times or "{}")
    return {name: datetime.fromisoformat(value) for name, value in raw.items()}


def apply_fields(session: Session, appointment: Appointment, values: dict[str, Any]) -> None:
    """Set the appointment's columns from canonical field values (a merge's result)."""
    appointment.title = values["title"]
    appointment.description = values["description"]
    appointment.location = values["location"]
    appointment.start_at = datetime.fromisoformat(values["start"])
    appointment.end_at = datetime.fromisoformat(values["end"])
    appointment.all_day = bool(values["all_day"])
    appointment.tzid = values["tzid"]
    appointment.rrule = values["rrule"]
    appointment.exdates = "\n".join(values["exdates"])
    appointment.status = values["status"] if values["status"] in STATUSES else AppointmentStatus.planned.value
    wanted = {rid: (s, e, t) for rid, s, e, t in values["overrides"]}
    for override in list(appointment.overrides):
        key = override.recurrence_id.astimezone(UTC).isoformat()
        if key not in wanted:
            appointment.overrides.remove(override)
            continue
        s, e, t = wanted.pop(key)
        override.start_at, override.end_at, override.title = datetime.fromisoformat(s), datetime.fromisoformat(e), t
    for rid, (s, e, t) in wanted.items():
        appointment.overrides.append(
            AppointmentOverride(
                recurrence_id=datetime.fromisoformat(rid),
                start_at=datetime.fromisoformat(s),
                end_at=datetime.fromisoformat(e),
                title=t,
            )
        )
    appointment.series_end_at = times.series_end(
        appointment.rrule, appointment.start_at, appointment.end_at, appointment.tzid, appointment.all_day
    )


def record_history(
    session: Session,
    appointment: Appointment,
    summary: str,
    losing: dict[str, Any] | None = None,
    *,
    source: str = "hub",
    user: User | None = None,
) -> None:
    session.add(
        AppointmentHistory(
            appointment_id=appointment.id,
            source=source,
            user_id=user.id if user else None,
            summary=summary[:500],
            losing=json.dumps(losing or {}, default=str, sort_keys=True),
        )
    )


def after_change(
    session: Session, appointment: Appointment, before: dict[str, Any] | None, *, now: datetime | None = None
) -> set[str]:
    """Bookkeeping after the appointment's fields may have changed: field times, SEQUENCE, hash,
    pushes. Returns the fields that changed."""
    now = now or utcnow()
    after = current_fields(appointment)
    changed = {name for name in FIELDS if before is None or before.get(name) != after.get(name)}
    if changed:
        stamps = json.loads(appointment.field_times or "{}")
        stamps.update({name: now.isoformat() for name in changed})
        appointment.field_times = json.dumps(stamps, sort_keys=True)
        if before is not None:
            appointment.sequence += 1
    session.flush()
    session.refresh(appointment, ["attendees", "overrides"])
    appointment.content_hash = content_hash(snapshot(session, appointment), private=False)
    schedule_pushes(session, appointment)
    if changed:  # webhooks (hub.webhooks.outbox): made or changed in hub, the API or a pulled calendar
        announce(session, RecordChanged("appointment", appointment.id, "created" if before is None else "updated"))
    return changed


# --- validation and saving ------------------------------------------------------------------------------------


def _clean(text: str, limit: int, name: str, errors: dict[str, str]) -> str:
    if "\x00" in text:
        errors[name] = _("The text contains a NUL character.")
        return ""
    text = text.strip()
    if len(text) > limit:
        errors[name] = _("At most %(n)s characters.", n=limit)
    return text


def _times(data: AppointmentInput, errors: dict[str, str]) -> tuple[datetime, datetime, str]:
    tzid = data.tzid.strip() or times.DEFAULT_TZ
    try:
        times.zone(tzid)
    except ValidationError as exc:
        errors["timezone"] = exc.message
        return data.start, data.end, tzid
    if data.all_day:
        first = data.start.date()
        last = data.end.date()
        if last < first:
            errors["end"] = _("The end is before the start.")
        return times.day_start(first), times.day_start(last + timedelta(days=1)), tzid
    start = end = None
    try:
        start = times.to_utc(data.start, tzid, "start")
    except ValidationError as exc:
        errors["start"] = exc.message
    try:
        end = times.to_utc(data.end, tzid, "end")
    except ValidationError as exc:
        errors["end"] = exc.message
    if start is None or end is None:
        return data.start, data.end, tzid
    if end < start:
        errors["end"] = _("The end is before the start.")
    elif end - start > MAX_DURATION:
        errors["end"] = _("An appointment lasts at most a year.")
    return start, end, tzid


def _owner(
    session: Session, user: User, data: AppointmentInput, errors: dict[str, str]
) -> tuple[Project | None, int | None]:
    project = None
    relation_id = data.relation_id
    if data.project_id is not None:
        project = session.scalar(select(Project).where(Project.id == data.project_id, project_visible(user)))
        if project is None:
            errors["project_id"] = _("No such project.")
        else:
            relation_id = project.relation_id
    elif relation_id is not None and not session.scalar(
        select(Relation.id).where(Relation.id == relation_id, relation_visible(user))
    ):
        errors["relation_id"] = _("No such relation.")
    return project, relation_id


def _attendees(
    session: Session, user: User, data: AppointmentInput, project: Project | None, errors: dict[str, str]
) -> list[AppointmentAttendee]:
    staff_ids = data.staff_ids
    if staff_ids is None:
        staff_ids = [project.responsible_user_id] if project is not None and project.responsible_user_id else [user.id]
    people: list[AppointmentAttendee] = []
    seen: set[str] = set()
    staff = {u.id: u for u in session.scalars(select(User).where(User.id.in_(staff_ids)))}
    for user_id in dict.fromkeys(staff_ids):
        member = staff.get(user_id)
        if member is None or not member.is_active:
            errors["staff"] = _("No such active user: %(id)s.", id=user_id)
            continue
        key = member.email.casefold()
        if key not in seen:
            seen.add(key)
            people.append(AppointmentAttendee(user_id=member.id, name=member.name, email=member.email, email_key=key))
    if data.contact_ids:
        contacts = {
            c.id: c
            for c in session.scalars(
                select(Contact)
                .join(Relation, Relation.id == Contact.relation_id)
                .where(Contact.id.in_(data.contact_ids), relation_visible(user))
            )
        }
        addresses: dict[int, str] = {}
        for contact_id, address in session.execute(
            select(EmailAddress.contact_id, EmailAddress.address)
            .where(EmailAddress.contact_id.in_(list(contacts)))
            .order_by(EmailAddress.id.desc())
        ):
            addresses[contact_id] = address  # the first address wins (ordered last to first)
        for contact_id in dict.fromkeys(data.contact_ids):
            contact = contacts.get(contact_id)
            if contact is None:
                errors["contacts"] = _("No such contact: %(id)s.", id=contact_id)
                continue
            address = addresses.get(contact_id)
            if not address:
                errors["contacts"] = _(
                    "%(name)s has no e-mail address, so cannot be invited: add one to the contact first.",
                    name=contact.name,
                )
                continue
            key = address.casefold()
            if key not in seen:
                seen.add(key)
                people.append(
                    AppointmentAttendee(contact_id=contact.id, name=contact.name, email=address, email_key=key)
                )
    return people


def save_appointment(
    session: Session,
    user: User,
    data: AppointmentInput,
    appointment: Appointment | None = None,
    *,
    expected_version: int | None = None,
) -> Appointment:
    """Create or change an appointment (see the module's note); :class:`ValidationError` on bad input."""
    errors: dict[str, str] = {}
    title = _clean(data.title, 200, "title", errors)
    if not title and "title" not in errors:
        errors["title"] = _("Give the appointment a title.")
    description = _clean(data.description, 20_000, "description", errors)
    location = _clean(data.location, 500, "location", errors)
    visit_report = _clean(data.visit_report, 100_000, "visit_report", errors)
    start, end, tzid = _times(data, errors)
    if data.status not in STATUSES:
        errors["status"] = _("Choose one of: %(choices)s", choices=", ".join(STATUSES))
    rule = ""
    try:
        rule = times.check_rrule(data.rrule)
    except ValidationError as exc:
        errors["rrule"] = exc.message
    project, relation_id = _owner(session, user, data, errors)
    people = _attendees(session, user, data, project, errors)
    if errors:
        raise ValidationError(errors)
    before = None
    if appointment is None:
        appointment = Appointment(
            uid=f"{uuid.uuid4()}@hub", created_by_id=user.id, title=title, start_at=start, end_at=end
        )
        session.add(appointment)
    else:
        claim_version(session, appointment, expected_version)
        before = current_fields(appointment)
    appointment.title, appointment.description, appointment.location = title, description, location
    appointment.start_at, appointment.end_at, appointment.tzid, appointment.all_day = start, end, tzid, data.all_day
    appointment.rrule = rule
    appointment.exdates = times.format_exdates(data.exdates) if rule else ""
    appointment.series_end_at = times.series_end(rule, start, end, tzid, data.all_day)
    appointment.status = data.status
    appointment.project_id = project.id if project is not None else None
    appointment.relation_id = relation_id
    appointment.visit_report = visit_report
    appointment.activity_id = data.activity_id
    _set_attendees(session, appointment, people)
    session.flush()
    changed = after_change(session, appointment, before)
    if before is None:
        record_history(session, appointment, _("Created"), user=user)
    elif changed:
        record_history(
            session,
            appointment,
            _("Changed: %(fields)s", fields=", ".join(sorted(changed))),
            {name: before.get(name) for name in sorted(changed)},
            user=user,
        )
    return appointment


def _set_attendees(session: Session, appointment: Appointment, people: list[AppointmentAttendee]) -> None:
    """Keep the answers (PARTSTAT) of attendees who stay; add and remove the others. Someone removed
    after an invitation by e-mail reached him is owed a CANCEL (hub.calendar.imip sends it); someone
    invited again before it went out is owed nothing."""
    wanted = {p.email_key: p for p in people}
    owed = (
        {
            c.email_key: c
            for c in session.scalars(
                select(AppointmentCancellation).where(AppointmentCancellation.appointment_id == appointment.id)
            )
        }
        if appointment.id is not None
        else {}
    )
    for current in list(appointment.attendees):
        if current.email_key not in wanted:
            if current.invited_sequence > 0:
                cancellation = owed.pop(current.email_key, None) or AppointmentCancellation(
                    appointment_id=appointment.id, email_key=current.email_key
                )
                cancellation.name, cancellation.email, cancellation.sent = current.name, current.email, False
                session.add(cancellation)
            appointment.attendees.remove(current)
        else:
            new = wanted.pop(current.email_key)
            current.name, current.user_id, current.contact_id = new.name, new.user_id, new.contact_id
    for key in wanted:
        if key in owed and not owed[key].sent:
            session.delete(owed[key])  # invited again: the new invitation tells him, not a cancellation
    appointment.attendees.extend(wanted.values())


def delete_appointment(
    session: Session, user: User, appointment: Appointment, *, expected_version: int | None = None
) -> None:
    """Delete: hidden at once; the row stays until every calendar it was pushed to has been told
    (its UID is never given out again)."""
    claim_version(session, appointment, expected_version)
    announce(session, RecordChanged("appointment", appointment.id, "deleted"))  # while it can still be read
    appointment.deleted_at = utcnow()
    appointment.sequence += 1
    record_history(session, appointment, _("Deleted"), user=user)
    schedule_pushes(session, appointment)


def set_status(
    session: Session, user: User, appointment: Appointment, status: str, *, expected_version: int | None = None
) -> None:
    if status not in STATUSES:
        raise ValidationError(_("Choose one of: %(choices)s", choices=", ".join(STATUSES)), "status")
    claim_version(session, appointment, expected_version)
    before = current_fields(appointment)
    appointment.status = status
    changed = after_change(session, appointment, before)
    if changed:
        record_history(
            session, appointment, _("Status: %(status)s", status=status), {"status": before["status"]}, user=user
        )


def move_occurrence(
    session: Session,
    user: User,
    appointment: Appointment,
    recurrence_id: datetime,
    start: datetime,
    end: datetime,
    *,
    expected_version: int | None = None,
) -> None:
    """Move one occurrence of a series (a RECURRENCE-ID override); the others stay."""
    if not appointment.rrule:
        raise ValidationError(_("Only an occurrence of a series can be moved on its own."), "recurrence_id")
    errors: dict[str, str] = {}
    s = e = None
    try:
        s = times.to_utc(start, appointment.tzid, "start")
        e = times.to_utc(end, appointment.tzid, "end")
    except ValidationError as exc:
        errors[exc.field] = exc.message
    rid = recurrence_id.astimezone(UTC)
    if rid not in set(
        times.occurrence_starts(appointment.rrule, appointment.start_at, appointment.tzid, appointment.all_day)
    ):
        errors["recurrence_id"] = _("The series has no occurrence at that time.")
    if s is not None and e is not None and e < s:
        errors["end"] = _("The end is before the start.")
    if errors or s is None or e is None:
        raise ValidationError(errors)
    claim_version(session, appointment, expected_version)
    before = current_fields(appointment)
    for override in appointment.overrides:
        if override.recurrence_id == rid:
            override.start_at, override.end_at = s, e
            break
    else:
        appointment.overrides.append(AppointmentOverride(recurrence_id=rid, start_at=s, end_at=e))
    changed = after_change(session, appointment, before)
    if changed:
        record_history(session, appointment, _("One occurrence moved"), {"overrides": before["overrides"]}, user=user)


def drop_occurrence(
    session: Session,
    user: User,
    appointment: Appointment,
    recurrence_id: datetime,
    *,
    expected_version: int | None = None,
) -> None:
    """Leave one occurrence of a series out (an EXDATE)."""
    rid = recurrence_id.astimezone(UTC)
    if not appointment.rrule or rid not in set(
        times.occurrence_starts(appointment.rrule, appointment.start_at, appointment.tzid, appointment.all_day)
    ):
        raise ValidationError(_("The series has no occurrence at that time."), "recurrence_id")
    claim_version(session, appointment, expected_version)
    before = current_fields(appointment)
    appointment.exdates = times.format_exdates([*times.parse_exdates(appointment.exdates), rid])
    changed = after_change(session, appointment, before)
    if changed:
        record_history(session, appointment, _("One occurrence left out"), {"exdates": before["exdates"]}, user=user)


def history(session: Session, appointment: Appointment) -> list[AppointmentHistory]:
    return list(
        session.scalars(
            select(AppointmentHistory)
            .where(AppointmentHistory.appointment_id == appointment.id)
            .order_by(AppointmentHistory.at.desc(), AppointmentHistory.id.desc())
            .options(selectinload(AppointmentHistory.user))
        )
    )


# --- what the calendars are due --------------------------------------------------------------------------------


def schedule_pushes(session: Session, appointment: Appointment) -> None:
    """Mark the appointment due in the calendar account of every staff attendee (CalDAV accounts),
    and due for removal from accounts whose owner is no longer invited (or when it is deleted)."""
    staff = {a.user_id for a in appointment.attendees if a.user_id is not None}
    accounts = (
        {
            account.id: account
            for account in session.scalars(
                select(CalendarAccount).where(
                    CalendarAccount.owner_id.in_(staff),
                    CalendarAccount.delivery == Delivery.caldav.value,
                )
            )
        }
        if staff and appointment.deleted_at is None
        else {}
    )
    existing = {
        p.account_id: p
        for p in session.scalars(select(CalendarPush).where(CalendarPush.appointment_id == appointment.id))
    }
    for account_id, push in existing.items():
        if account_id in accounts:
            push.state = PushState.pending.value
        elif push.href:
            push.state = PushState.delete.value
        else:
            push.state = PushState.gone.value
    for account_id in accounts.keys() - existing.keys():
        session.add(CalendarPush(appointment_id=appointment.id, account_id=account_id, state=PushState.pending.value))
    session.flush()


def schedule_account(session: Session, account: CalendarAccount) -> int:
    """A new (or re-pointed) account: every appointment its owner attends becomes due there."""
    ids = list(
        session.scalars(
            select(Appointment.id)
            .join(AppointmentAttendee, AppointmentAttendee.appointment_id == Appointment.id)
            .where(AppointmentAttendee.user_id == account.owner_id, Appointment.deleted_at.is_(None))
        )
    )
    existing = set(session.scalars(select(CalendarPush.appointment_id).where(CalendarPush.account_id == account.id)))
    session.add_all(
        CalendarPush(appointment_id=i, account_id=account.id, state=PushState.pending.value)
        for i in ids
        if i not in existing
    )
    session.execute(
        update(CalendarPush)
        .where(CalendarPush.account_id == account.id, CalendarPush.state == PushState.synced.value)
        .values(state=PushState.pending.value)
    )
    session.flush()
    return len(ids)


# --- week and month views ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One occurrence in a view; ``appointment`` is None for a busy block (the viewer may not see it)."""

    start_at: datetime
    end_at: datetime
    user_ids: tuple[int, ...]
    appointment: Appointment | None
    title: str
    all_day: bool
    status: str
    recurrence_id: datetime | None


def entries(
    session: Session, viewer: User, user_ids: list[int] | None, window_start: datetime, window_end: datetime
) -> list[Entry]:
    """The occurrences in the window: of the appointments the given staff attend (None: every
    appointment the viewer may see). Appointments of the given staff that the viewer may not see are
    busy blocks. (The views read :func:`view_entries`, the same as plain values; the tests compare
    the two.)"""
    query = (
        select(Appointment)
        .where(
            Appointment.deleted_at.is_(None),
            Appointment.start_at < window_end,
            or_(Appointment.series_end_at.is_(None), Appointment.series_end_at > window_start),
        )
        .options(selectinload(Appointment.attendees), selectinload(Appointment.overrides))
        .order_by(Appointment.start_at, Appointment.id)
    )
    if user_ids is not None:
        query = query.where(
            exists().where(
                AppointmentAttendee.appointment_id == Appointment.id, AppointmentAttendee.user_id.in_(user_ids)
            )
        )
    else:
        query = query.where(appointment_visible(viewer))
    found = list(session.scalars(query))
    visible = (
        set(
            session.scalars(
                select(Appointment.id).where(Appointment.id.in_([a.id for a in found]), appointment_visible(viewer))
            )
        )
        if found
        else set()
    )
    result: list[Entry] = []
    for appointment in found:
        seen = appointment.id in visible
        who = tuple(a.user_id for a in appointment.attendees if a.user_id is not None)
        for occ in occurrences_of(appointment, window_start, window_end):
            result.append(
                Entry(
                    occ.start_at,
                    occ.end_at,
                    who,
                    appointment if seen else None,
                    (occ.title or appointment.title) if seen else _("Busy"),
                    appointment.all_day,
                    appointment.status if seen else "",
                    occ.recurrence_id,
                )
            )
    result.sort(key=lambda e: (e.start_at, e.title))
    return result


class ViewEntry(NamedTuple):
    """One occurrence in a view, as plain values; ``appointment_id`` is None for a busy block (the
    viewer may not see the appointment). What :class:`Entry` says, without the Appointment (a named
    tuple: made some fifty times a page, and a key to the view's rendered entries)."""

    start_at: datetime
    end_at: datetime
    user_ids: tuple[int, ...]
    appointment_id: int | None
    title: str
    all_day: bool
    status: str
    recurrence_id: datetime | None


# The views' statements, kept per viewer (his visibility rule is in them) and kind (a person's or a
# team's calendar, or every appointment he may see); the window and the people are bound when run.
# Building and keying the statement (a dozen EXISTS of the rule) cost as much as running it.
_VIEW_STATEMENTS: dict[tuple[Any, ...], Select[Any]] = {}
VIEW_STATEMENTS_KEPT = 4096


def _view_statement(viewer: User, by_users: bool) -> Select[Any]:
    def make() -> Select[Any]:
        rule = appointment_visible(viewer)
        query = (
            select(
                Appointment.id,
                Appointment.title,
                Appointment.start_at,
                Appointment.end_at,
                Appointment.tzid,
                Appointment.all_day,
                Appointment.rrule,
                Appointment.exdates,
                Appointment.status,
                # Whether the viewer may see it, in the same statement: else it is a busy block.
                (rule if by_users else true()).label("seen"),
            )
            .where(
                Appointment.deleted_at.is_(None),
                Appointment.start_at < bindparam("window_end"),
                or_(Appointment.series_end_at.is_(None), Appointment.series_end_at > bindparam("window_start")),
            )
            .order_by(Appointment.start_at, Appointment.id)
        )
        if by_users:
            return query.where(
                exists().where(
                    AppointmentAttendee.appointment_id == Appointment.id,
                    AppointmentAttendee.user_id.in_(bindparam("user_ids", expanding=True)),
                )
            )
        return query.where(rule)

    # What appointment_visible depends on: the user's id (his rules) and whether he is active or an admin.
    key = (viewer.id, bool(viewer.is_active), bool(viewer.is_admin), by_users)
    return kept(_VIEW_STATEMENTS, key, make, VIEW_STATEMENTS_KEPT)


_VIEW_ATTENDEES = (
    select(AppointmentAttendee.appointment_id, AppointmentAttendee.user_id)
    .where(
        AppointmentAttendee.appointment_id.in_(bindparam("ids", expanding=True)),
        AppointmentAttendee.user_id.is_not(None),
    )
    .order_by(AppointmentAttendee.id)  # Appointment.attendees' order
)
_VIEW_OVERRIDES = (
    select(
        AppointmentOverride.appointment_id,
        AppointmentOverride.recurrence_id,
        AppointmentOverride.start_at,
        AppointmentOverride.end_at,
        AppointmentOverride.title,
    )
    .where(AppointmentOverride.appointment_id.in_(bindparam("ids", expanding=True)))
    .order_by(AppointmentOverride.recurrence_id)  # Appointment.overrides' order
)


@functools.lru_cache(maxsize=8192)
def _view_occurrences(
    appointment_id: int,
    start_at: datetime,
    end_at: datetime,
    tzid: str,
    all_day: bool,
    rule: str,
    exdates: str,
    overrides: tuple[tuple[datetime, datetime, datetime, str], ...],
    window_start: datetime,
    window_end: datetime,
) -> tuple[times.Occurrence, ...]:
    # Kept by everything they follow from: a view shows the same appointments' occurrences on every
    # request, and expanding a series (dateutil) cost a tenth of a millisecond each; an appointment
    # changed is other values, never a stale expansion.
    return tuple(
        times.occurrences(
            appointment_id, start_at, end_at, tzid, all_day, rule, exdates, list(overrides), window_start, window_end
        )
    )


def view_entries(
    session: Session,
    viewer: User,
    user_ids: list[int] | None,
    window_start: datetime,
    window_end: datetime,
    *,
    with_staff: bool = True,
) -> list[ViewEntry]:
    """:func:`entries` as plain values, read without loading Appointment objects: the appointments
    with whether the viewer may see each (one kept statement), their staff, and the moved
    occurrences of the series among them (one small statement each, none when nothing is found).
    The week view shows them; loading them as objects was most of its cost. ``with_staff=False``:
    the entries' ``user_ids`` are left empty and not read (a view that does not show them)."""
    connection = session.connection()
    values: dict[str, Any] = {"window_start": window_start, "window_end": window_end}
    if user_ids is not None:
        values["user_ids"] = list(user_ids)
    # Plain tuples, in the statement's column order: reading a Row's columns by name cost more than
    # the rest of turning them into entries.
    found = connection.execute(_view_statement(viewer, user_ids is not None), values).tuples().all()
    if not found:
        return []
    staff: dict[int, list[int]] = {}
    if with_staff:
        for appointment_id, staff_id in connection.execute(_VIEW_ATTENDEES, {"ids": [row[0] for row in found]}):
            staff.setdefault(appointment_id, []).append(staff_id)
    series = [row[0] for row in found if row[6]]
    moved: dict[int, list[tuple[datetime, datetime, datetime, str]]] = {}
    if series:
        for appointment_id, *override in connection.execute(_VIEW_OVERRIDES, {"ids": series}):
            moved.setdefault(appointment_id, []).append(tuple(override))
    busy = _("Busy")
    result: list[ViewEntry] = []
    for appointment_id, title, start_at, end_at, tzid, all_day, rule, exdates, status, seen in found:
        who = tuple(staff.get(appointment_id, ()))
        overrides = tuple(moved[appointment_id]) if appointment_id in moved else ()
        occurrences = _view_occurrences(
            appointment_id, start_at, end_at, tzid, all_day, rule, exdates, overrides, window_start, window_end
        )
        for occ in occurrences:
            result.append(
                ViewEntry(
                    occ.start_at,
                    occ.end_at,
                    who,
                    appointment_id if seen else None,
                    (occ.title or title) if seen else busy,
                    all_day,
                    status if seen else "",
                    occ.recurrence_id,
                )
            )
    result.sort(key=lambda e: (e.start_at, e.title))
    return result


# Whose calendar a view may show: the active staff (as active_users gives them) and the teams (as
# all_groups), each by name, in one statement.
_VIEW_PEOPLE = union_all(
    select(literal(0).label("kind"), User.id, User.name).where(User.is_active),
    select(literal(1).label("kind"), UserGroup.id, UserGroup.name),
).order_by("kind", "name")
_VIEW_MEMBERS = select(group_members.c.user_id).where(group_members.c.group_id == bindparam("group_id"))


def view_people(session: Session) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """The active staff and the teams a calendar view offers to show, by name, as (id, name)."""
    people: tuple[list[tuple[int, str]], list[tuple[int, str]]] = ([], [])
    for kind, person_id, name in session.connection().execute(_VIEW_PEOPLE):
        people[kind].append((person_id, name))
    return people


def group_member_ids(session: Session, group_id: int) -> list[int]:
    """The ids of a team's members (active or not), as ``UserGroup.members`` gives them."""
    return list(session.connection().execute(_VIEW_MEMBERS, {"group_id": group_id}).scalars())


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def withdraw_with_deleted_record(session: Session, event: RecordChanged) -> None:
    """A project or relation is about to be deleted: its appointments leave the staff calendars (and
    invited contacts get the cancellation) instead of vanishing from hub's database while their
    events stay in everyone's calendar. Each is deleted as by hand and detached, so the database's
    cascade does not take the row, and the removal still owed to the calendars, along with it."""
    if event.action != "deleted" or event.kind not in ("project", "relation"):
        return
    column = Appointment.project_id if event.kind == "project" else Appointment.relation_id
    for appointment in session.scalars(select(Appointment).where(column == event.id)):
        if appointment.deleted_at is None:
            announce(session, RecordChanged("appointment", appointment.id, "deleted"))
            appointment.deleted_at = utcnow()
            appointment.sequence += 1
            record_history(session, appointment, _("Deleted with its project or relation"))
            schedule_pushes(session, appointment)
        if event.kind == "project":
            appointment.project_id = None
        else:
            appointment.project_id = appointment.relation_id = None
    session.flush()
