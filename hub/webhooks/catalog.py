"""The events a webhook subscription can ask for, and the data each one carries.

An event is about one object of a *kind* ("relation", "contact", "project", "email", "call",
"appointment"). Each kind says how to load its objects *as a given user sees them*: an object the
user may not see loads as nothing, so no delivery is written for it (hub.crm.access, the one
visibility rule; calls by hub.telephony.read.call_visible, appointments by
hub.calendar.appointments.appointment_visible). A call and an appointment carry the JSON that
``GET /api/v1/calls/<id>`` and ``GET /api/v1/appointments/<id>`` answer that user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hub.crm.access import project_visible, relation_visible
from hub.db import among
from hub.models import (
    Appointment,
    Call,
    CallSource,
    Contact,
    Email,
    EmailProject,
    EmailRelation,
    Project,
    Relation,
    User,
)

ACTIONS = ("created", "updated", "deleted")


@dataclass(frozen=True)
class Kind:
    """How to read objects of one kind for a subscription's owner.

    ``load(session, user, ids)`` returns {id: data} for the ids the user may see, data being the
    JSON-ready dict a delivery's body carries.
    """

    name: str
    load: Callable[[Session, User, list[int]], dict[int, dict[str, Any]]]
    actions: tuple[str, ...] = ACTIONS


def _iso(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return str(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


def _relations(session: Session, user: User, ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = session.scalars(
        select(Relation)
        .where(Relation.id.in_(ids), relation_visible(user))
        .options(selectinload(Relation.emails), selectinload(Relation.phones))
        # Addresses saved earlier in this transaction: not a collection loaded before them.
        .execution_options(populate_existing=True)
    )
    return {
        r.id: {
            "id": r.id,
            "kind": r.kind.value,
            "name": r.name,
            "status": r.status.value,
            "street": r.street,
            "postcode": r.postcode,
            "city": r.city,
            "country": r.country,
            "website": r.website,
            "domain": r.domain,
            "coc_number": r.coc_number,
            "vat_number": r.vat_number,
            "owner_id": r.owner_id,
            "emails": [e.address for e in r.emails if e.contact_id is None],
            "phones": [p.number for p in r.phones if p.contact_id is None],
            "updated_at": _iso(r.updated_at),
        }
        for r in rows
    }


def _contacts(session: Session, user: User, ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = session.scalars(
        select(Contact)
        .join(Relation, Relation.id == Contact.relation_id)
        .where(Contact.id.in_(ids), relation_visible(user))
        .options(selectinload(Contact.emails), selectinload(Contact.phones))
        .execution_options(populate_existing=True)
    )
    return {
        c.id: {
            "id": c.id,
            "relation_id": c.relation_id,
            "name": c.name,
            "function": c.function,
            "emails": [e.address for e in c.emails],
            "phones": [p.number for p in c.phones],
        }
        for c in rows
    }


def _projects(session: Session, user: User, ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = session.scalars(select(Project).where(Project.id.in_(ids), project_visible(user)))
    return {
        p.id: {
            "id": p.id,
            "relation_id": p.relation_id,
            "name": p.name,
            "closed": p.closed,
            "start_date": _iso(p.start_date),
            "end_date": _iso(p.end_date),
            "responsible_user_id": p.responsible_user_id,
            "value": _iso(p.value),
            "currency": p.currency,
            "updated_at": _iso(p.updated_at),
        }
        for p in rows
    }


def _emails(session: Session, user: User, ids: list[int]) -> dict[int, dict[str, Any]]:
    # The mail rule (personal mail only when its mailbox owner shares it) lives with mail.
    from hub.mail.privacy import email_visible

    rows = session.scalars(select(Email).where(Email.id.in_(ids), email_visible(user)))
    found = {
        e.id: {
            "id": e.id,
            "subject": e.subject,
            "from": e.from_address,
            "from_name": e.from_name,
            "sent_at": _iso(e.sent_at),
            "relation_ids": [],
            "project_ids": [],
        }
        for e in rows
    }
    if not found:
        return found
    # Only the relations and projects this user may see: a hidden one's id is not told either.
    for email_id, relation_id in session.execute(
        select(EmailRelation.email_id, EmailRelation.relation_id)
        .join(Relation, Relation.id == EmailRelation.relation_id)
        .where(EmailRelation.email_id.in_(found), relation_visible(user))
        .order_by(EmailRelation.relation_id)
    ):
        found[email_id]["relation_ids"].append(relation_id)
    for email_id, project_id in session.execute(
        select(EmailProject.email_id, EmailProject.project_id)
        .join(Project, Project.id == EmailProject.project_id)
        .where(EmailProject.email_id.in_(found), project_visible(user))
        .order_by(EmailProject.project_id)
    ):
        found[email_id]["project_ids"].append(project_id)
    return found


_MOMENTS = TypeAdapter(list[datetime | None])


def _moments(*values: datetime | None) -> list[Any]:
    """Moments as the API writes them (pydantic's JSON: UTC with "Z"); SQLite's naive ones are UTC."""
    aware = [v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v for v in values]
    return list(_MOMENTS.dump_python(aware, mode="json"))


# LIST_COLUMNS' names that web.api.schemas.Call gives otherwise (in the same place of the JSON).
_API_NAMES = {"source_name": "source", "billsec": "billable_seconds"}


def _calls(session: Session, user: User, ids: list[int]) -> dict[int, dict[str, Any]]:
    # The telephony rule: a call of a relation or project he may see, or one he took or made. One
    # he took that is filed with a relation or project hidden from him is told without that link
    # (no id), as the API and My calls show it.
    from hub.telephony.read import LIST_COLUMNS, call_visible, hidden_links
    from hub.telephony.records import recording_url

    rows = session.execute(
        select(*LIST_COLUMNS)  # (GET /api/v1/calls' columns: renamed below as the API names them)
        .join(CallSource, CallSource.id == Call.source_id)
        .where(among(session, Call.id, ids), call_visible(user))  # a whole import batch: one array on PostgreSQL
        .order_by(Call.id)
    ).all()
    hidden = hidden_links(session, user, rows)
    found: dict[int, dict[str, Any]] = {}
    for row in rows:
        values = {_API_NAMES.get(name, name): value for name, value in row._asdict().items()}
        values["started_at"], values["answered_at"], values["ended_at"] = _moments(
            row.started_at, row.answered_at, row.ended_at
        )
        values["recording_url"] = recording_url(row.recording_url)  # never a javascript: link
        found[row.id] = hidden.masked(values)
    return found


def _appointments(session: Session, user: User, ids: list[int]) -> dict[int, dict[str, Any]]:
    # The calendar rule (hidden with its project or relation; deleted ones are not seen: a deletion
    # is judged just before the row is marked deleted, hub.webhooks.outbox.record_change).
    from hub.calendar.appointments import appointment_visible, attendees_of
    from hub.calendar.times import parse_exdates

    rows = list(
        session.scalars(
            select(Appointment)
            .where(Appointment.id.in_(ids), appointment_visible(user))
            .execution_options(populate_existing=True)
        )
    )
    people = attendees_of(session, [a.id for a in rows])
    found: dict[int, dict[str, Any]] = {}
    for a in rows:
        start_at, end_at, created_at, updated_at = _moments(a.start_at, a.end_at, a.created_at, a.updated_at)
        found[a.id] = {
            "id": a.id,
            "uid": a.uid,
            "title": a.title,
            "description": a.description,
            "location": a.location,
            "start_at": start_at,
            "end_at": end_at,
            "timezone": a.tzid,
            "all_day": a.all_day,
            "rrule": a.rrule,
            "exdates": _moments(*parse_exdates(a.exdates)),
            "status": a.status,
            "project_id": a.project_id,
            "relation_id": a.relation_id,
            "sequence": a.sequence,
            "attendees": people.get(a.id, []),
            "version": a.version,
            "created_at": created_at,
            "updated_at": updated_at,
        }
    return found


KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind) -> None:
    KINDS[kind.name] = kind


register_kind(Kind("relation", _relations))
register_kind(Kind("contact", _contacts))
register_kind(Kind("project", _projects))
register_kind(Kind("email", _emails, actions=("linked",)))
# Calls are stored, then linked (or linked again); they are not deleted by hand.
register_kind(Kind("call", _calls, actions=("created", "updated")))
register_kind(Kind("appointment", _appointments))


def event_names() -> list[str]:
    """Every event a subscription can ask for, in the order the settings page lists them."""
    return [f"{kind.name}.{action}" for kind in KINDS.values() for action in kind.actions]


TEST_EVENT = "hub.test"
