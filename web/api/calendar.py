"""Appointments in the API: list (cursor pages), read, create, change, delete.

Appointments follow the one visibility rule (hub.calendar.appointments.appointment_visible): a hidden
appointment is a 404 and absent from every list. Times are exact when sent with a UTC offset; a time
without one is a wall-clock time in ``timezone``, and one that does not exist or occurs twice there
(around a daylight-saving change) is a 400 saying so. Changing and deleting honour If-Match (the
``version``) like every other resource.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictStr

from hub.calendar import times
from hub.calendar.appointments import (
    AppointmentInput,
    appointment_list_rows,
    attendees_of,
    delete_appointment,
    get_appointment,
    save_appointment,
)
from hub.models import Appointment
from hub.paging import MAX_ID, Sort
from web.api import bp, schemas
from web.api.errors import LOADERS
from web.api.routes import (
    VERSIONED_ERRORS,
    _empty,
    _keyset,
    _page,
    _visible,
    declare,
    etag,
    if_match,
    me,
    path_object,
    sent,
    valid_query,
)
from web.context import db_session

LOADERS["appointment_id"] = lambda i: get_appointment(db_session(), me(), i)
APPOINTMENT_SORTS = {"start": Sort(Appointment.start_at, Appointment.id, lambda a: a.start_at)}

Status = Literal["planned", "done", "cancelled"]
Title = Annotated[StrictStr, Field(min_length=1, max_length=200)]
# Years hub can store and expand on every database (and that a calendar can show).
When = Annotated[datetime, Field(ge=datetime(1900, 1, 1), le=datetime(2200, 1, 1))]


def _exdates(value: Any) -> list[datetime]:
    return times.parse_exdates(value) if isinstance(value, str) else list(value)


class Attendee(schemas.Output):
    user_id: int | None = Field(description="A staff member (null: a contact or an outside address)")
    contact_id: int | None
    name: str
    email: str
    partstat: str = Field(description="NEEDS-ACTION, ACCEPTED, DECLINED or TENTATIVE (RFC 5545)")


class AppointmentOut(schemas.Output):
    """An appointment. ``start_at``/``end_at`` are UTC; ``timezone`` is the clock it was made on."""

    id: int
    uid: str = Field(description="The iCalendar UID hub gave it (never reused)")
    title: str
    description: str
    location: str
    start_at: schemas.Moment
    end_at: schemas.Moment = Field(description="For an all-day appointment: midnight after its last day")
    timezone: str = Field(validation_alias="tzid")
    all_day: bool
    rrule: str = Field(description="RFC 5545 RRULE of a weekly or monthly series (empty: no series)")
    exdates: list[datetime] = Field(
        default_factory=list, validation_alias="exdates_list", description="Occurrences left out of the series (UTC)"
    )
    status: Status
    project_id: int | None
    relation_id: int | None
    sequence: int = Field(description="iCalendar SEQUENCE, raised by every change attendees hear about")
    attendees: list[Attendee]
    version: int = Field(description="Raised by every change; the ETag. Send it as If-Match to change or delete")
    created_at: schemas.Moment
    updated_at: schemas.Moment


class AppointmentQuery(schemas.ListQuery):
    project_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only this project's appointments")
    relation_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only this relation's appointments")
    user_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only those this staff member attends")
    status: Status | None = Field(default=None, description="Only appointments with this status")
    since: schemas.Since = Field(default=None, description="Only appointments (or series) ending at or after this")


class AppointmentPage(schemas.Paged):
    items: list[AppointmentOut]


class AppointmentFields(schemas.Input):
    title: Title
    start: When = Field(description="With a UTC offset: exact. Without: a wall-clock time in `timezone`")
    end: When = Field(description="Like start; for an all-day appointment, a time on its last day")
    timezone: Annotated[StrictStr, Field(min_length=1, max_length=64)] = "Europe/Amsterdam"
    all_day: StrictBool = False
    description: Annotated[StrictStr, Field(max_length=20_000)] = ""
    location: Annotated[StrictStr, Field(max_length=500)] = ""
    rrule: Annotated[StrictStr, Field(max_length=500)] = Field(
        default="", description="A weekly or monthly RRULE, such as FREQ=WEEKLY;COUNT=10"
    )
    exdates: Annotated[list[When], Field(max_length=500)] = Field(
        default_factory=list, description="Occurrence starts to leave out of the series"
    )
    status: Status = "planned"
    project_id: schemas.OptionalId = None
    relation_id: schemas.OptionalId = None
    staff_ids: Annotated[list[schemas.Id] | None, Field(max_length=200)] = Field(
        default=None, description="Staff attending (default: the project's responsible user, else you)"
    )
    contact_ids: Annotated[list[schemas.Id], Field(max_length=200)] = Field(
        default_factory=list, description="Contacts invited by e-mail (each needs an e-mail address)"
    )
    visit_report: Annotated[StrictStr, Field(max_length=100_000)] = ""


AppointmentPatch = schemas.patch_of(AppointmentFields, "AppointmentPatch")


def _out(appointment: Appointment) -> AppointmentOut:
    appointment.exdates_list = _exdates(appointment.exdates)  # type: ignore[attr-defined]
    return AppointmentOut.model_validate(appointment)


def _input(data: dict[str, Any], current: Appointment | None = None) -> AppointmentInput:
    """The appointment as it is, with the sent keys changed."""
    base: dict[str, Any] = {}
    if current is not None:
        last = current.end_at - timedelta(days=1) if current.all_day else current.end_at
        base = {
            "title": current.title,
            "start": current.start_at,
            "end": last,
            "timezone": current.tzid,
            "all_day": current.all_day,
            "description": current.description,
            "location": current.location,
            "rrule": current.rrule,
            "exdates": times.parse_exdates(current.exdates),
            "status": current.status,
            "project_id": current.project_id,
            "relation_id": current.relation_id if current.project_id is None else None,
            "staff_ids": [a.user_id for a in current.attendees if a.user_id is not None],
            "contact_ids": [a.contact_id for a in current.attendees if a.contact_id is not None],
            "visit_report": current.visit_report,
        }
    values = {**base, **data}
    return AppointmentInput(
        title=values["title"],
        start=values["start"],
        end=values["end"],
        tzid=values.get("timezone") or times.DEFAULT_TZ,
        all_day=bool(values.get("all_day", False)),
        description=values.get("description") or "",
        location=values.get("location") or "",
        rrule=values.get("rrule") or "",
        exdates=list(values.get("exdates") or []),
        status=values.get("status") or "planned",
        project_id=values.get("project_id"),
        relation_id=values.get("relation_id"),
        staff_ids=values.get("staff_ids"),
        contact_ids=list(values.get("contact_ids") or []),
        visit_report=values.get("visit_report") or "",
        activity_id=current.activity_id if current is not None else None,
    )


@bp.get("/appointments")
@declare(out=AppointmentPage, query=AppointmentQuery, errors=(400, 401))
def list_appointments() -> Any:
    """Appointments you may see, by start; filter by project, relation, attending staff member, status"""
    q = valid_query(AppointmentQuery)
    if not (_visible("project_id", q.project_id) and _visible("relation_id", q.relation_id)):
        return _empty(AppointmentPage, q)
    # Plain columns in a kept statement, the page's attendees in one more (no Appointment objects),
    # validated as dicts: loading 25 appointments and their attendees as objects was most of the cost.
    query, kept = appointment_list_rows(
        me(),
        project_id=q.project_id,
        relation_id=q.relation_id,
        user_id=q.user_id,
        status=q.status,
        since=q.since,
    )
    page = _keyset(query, APPOINTMENT_SORTS, "start", q, rows=True, kept=kept)
    people = attendees_of(db_session(), [row.id for row in page.items])
    page.items = [_listed(row, people.get(row.id, [])) for row in page.items]
    return _page(page, AppointmentPage, q)


def _listed(row: Any, attendees: list[dict[str, Any]]) -> dict[str, Any]:
    """A list row as AppointmentOut reads it (its aliases: tzid, exdates_list)."""
    values = row._asdict()
    values.update(exdates_list=_exdates(values.pop("exdates")), attendees=attendees)
    return values


@bp.post("/appointments")
@declare(ok=201, out=AppointmentOut, body=AppointmentFields, errors=(400, 401))
def create_appointment() -> Any:
    """Make an appointment; it is pushed into the attending staff's calendars"""
    appointment = save_appointment(db_session(), me(), _input(sent()))
    etag(appointment.version)
    return _out(appointment), 201


@bp.get("/appointments/<int:appointment_id>")
@declare(out=AppointmentOut)
def get_one_appointment(appointment_id: int) -> Any:
    """One appointment with its attendees and their answers"""
    appointment = path_object("appointment_id")
    etag(appointment.version)
    return _out(appointment)


@bp.patch("/appointments/<int:appointment_id>")
@declare(out=AppointmentOut, body=AppointmentPatch, errors=VERSIONED_ERRORS)
def update_appointment(appointment_id: int) -> Any:
    """Change an appointment; only the given keys. If-Match: its ETag"""
    appointment = path_object("appointment_id")
    changed = save_appointment(
        db_session(), me(), _input(sent(), appointment), appointment, expected_version=if_match(appointment.version)
    )
    etag(changed.version)
    return _out(changed)


@bp.delete("/appointments/<int:appointment_id>")
@declare(ok=204, errors=VERSIONED_ERRORS)
def delete_one_appointment(appointment_id: int) -> Any:
    """Delete an appointment (it is removed from the staff calendars). If-Match: its ETag"""
    appointment = path_object("appointment_id")
    delete_appointment(db_session(), me(), appointment, expected_version=if_match(appointment.version))
    return "", 204


# --- calendar accounts and their sync health ---------------------------------------------------------


class CalendarAccounts(schemas.Output):
    items: list[schemas.CalendarAccountOut]


@bp.get("/calendar-accounts")
@declare(out=CalendarAccounts, errors=(401,))
def list_calendar_accounts() -> Any:
    """Your calendar account (every one, for admins) and its sync health"""
    from web.context import installation

    return CalendarAccounts(items=account_items(installation().workers_alive))


def account_items(workers_alive: bool) -> list[schemas.CalendarAccountOut]:
    """The caller's calendar accounts (every one, for admins), each in one health state."""
    from hub.calendar.accounts import accounts_for, health_of, pending_counts
    from hub.i18n import shown

    accounts = accounts_for(db_session(), me())
    pending = pending_counts(db_session(), [a.id for a in accounts])
    items = []
    for account in accounts:
        health = health_of(account, workers_alive=workers_alive)
        items.append(
            schemas.CalendarAccountOut(
                id=account.id,
                owner_id=account.owner_id,
                delivery=account.delivery,  # type: ignore[arg-type]
                calendar_name=account.calendar_name,
                state=health.state.value,
                state_words=health.words,
                last_push_at=account.last_push_at,
                last_pull_at=account.last_pull_at,
                last_error=shown(account.last_error),
                pending=pending.get(account.id, 0),
            )
        )
    return items
