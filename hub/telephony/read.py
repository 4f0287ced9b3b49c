"""Reading calls: who may see a call, the Calls tabs, "My calls", unmatched calls, the calls list of
the API, and the caller-ID lookup a phone asks while it rings.

Visibility is the one rule (hub.crm.access): a user sees a call that belongs to a relation or
project they may see, and the calls they took or made themselves; admins see every call. A hidden
call answers exactly like a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, true
from sqlalchemy.orm import Session, joinedload

from hub.crm.access import asked_per_row, project_visible, relation_visible
from hub.crm.matching import match_numbers
from hub.errors import NotFound, ValidationError
from hub.models import Call, CallSource, Contact, Project, Relation, User
from hub.paging import Page, paginate
from hub.telephony.numbers import normalise

DIRECTIONS = ("inbound", "outbound", "internal")
OUTCOMES = ("answered", "missed", "busy", "failed", "voicemail")


def call_visible(user: User | None) -> ColumnElement[bool]:
    """SQL condition: ``Call`` rows ``user`` may see."""
    if user is None or not user.is_active:
        return false()
    if user.is_admin:
        return true()
    return or_(
        Call.user_id == user.id,
        and_(
            Call.relation_id.is_not(None),
            asked_per_row(select(Relation.id).where(Relation.id == Call.relation_id, relation_visible(user))),
        ),
        and_(
            Call.project_id.is_not(None),
            asked_per_row(select(Project.id).where(Project.id == Call.project_id, project_visible(user))),
        ),
    )


@dataclass
class CallFilters:
    """The filters of ``GET /api/v1/calls`` (all optional)."""

    source: str | None = None
    relation_id: int | None = None
    contact_id: int | None = None
    project_id: int | None = None
    user_id: int | None = None
    direction: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    unmatched: bool = False


def calls_query(user: User, filters: CallFilters | None = None) -> Select[tuple[Call]]:
    """The calls ``user`` may see that pass ``filters``, newest first (the API pages it by cursor)."""
    filters = filters or CallFilters()
    if filters.direction and filters.direction not in DIRECTIONS:
        raise ValidationError({"direction": f"one of {', '.join(DIRECTIONS)}"})
    if filters.outcome and filters.outcome not in OUTCOMES:
        raise ValidationError({"outcome": f"one of {', '.join(OUTCOMES)}"})
    query = select(Call).where(call_visible(user))
    if filters.source:
        query = query.join(CallSource, CallSource.id == Call.source_id).where(CallSource.name == filters.source)
    for column, value in (
        (Call.relation_id, filters.relation_id),
        (Call.contact_id, filters.contact_id),
        (Call.project_id, filters.project_id),
        (Call.user_id, filters.user_id),
        (Call.direction, filters.direction),
        (Call.outcome, filters.outcome),
    ):
        if value is not None and value != "":
            query = query.where(column == value)
    if filters.since is not None:
        query = query.where(Call.started_at >= filters.since)
    if filters.unmatched:
        query = query.where(Call.relation_id.is_(None), Call.e164 != "", Call.direction != "internal")
    return query.order_by(Call.started_at.desc(), Call.id.desc())


def list_calls(
    session: Session, user: User, filters: CallFilters | None = None, *, page: int = 1, per_page: int = 25
) -> Page[Call]:
    query = calls_query(user, filters).options(joinedload(Call.user), joinedload(Call.source))
    return paginate(session, query, page, per_page)


def get_call(session: Session, user: User, call_id: int) -> Call:
    call = session.scalar(select(Call).where(Call.id == call_id, call_visible(user)))
    if call is None:
        raise NotFound(call_id)
    return call


def call_names(session: Session, calls: list[Call]) -> dict[str, dict[int, str]]:
    """Names of the contacts, relations and projects on a page of calls (three small queries)."""
    names: dict[str, dict[int, str]] = {"contact": {}, "relation": {}, "project": {}}
    for kind, model, attr in (
        ("contact", Contact, "contact_id"),
        ("relation", Relation, "relation_id"),
        ("project", Project, "project_id"),
    ):
        ids = {getattr(c, attr) for c in calls if getattr(c, attr) is not None}
        if ids:
            names[kind] = dict(session.execute(select(model.id, model.name).where(model.id.in_(ids))).tuples().all())
    return names


@dataclass(frozen=True)
class CallerId:
    """Who is calling: what a phone shows while it rings."""

    number: str  # E.164
    contact_id: int | None
    contact_name: str
    relation_id: int
    relation_name: str
    url: str  # the page to open: the relation (hub's path; the API makes it absolute)


def callerid_lookup(session: Session, number: str, region: str = "NL", *, user: User | None = None) -> CallerId | None:
    """The contact and relation a number belongs to, or None (unknown, ambiguous, anonymous, or not
    visible to ``user``; ``None`` as user: the phone system itself, authenticated by its source).
    One indexed query: it answers while the phone rings."""
    e164 = normalise(number, region)
    if e164 is None:
        return None
    match = match_numbers(session, [e164]).get(e164)
    if match is None:
        return None
    query = select(Relation.name).where(Relation.id == match.relation_id)
    if user is not None:
        query = query.where(relation_visible(user))
    relation_name = session.scalar(query)
    if relation_name is None:
        return None
    contact_name = ""
    if match.contact_id is not None:
        contact_name = session.scalar(select(Contact.name).where(Contact.id == match.contact_id)) or ""
    return CallerId(
        e164, match.contact_id, contact_name, match.relation_id, relation_name, f"/relations/{match.relation_id}"
    )
