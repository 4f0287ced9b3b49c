"""Reading calls: who may see a call, the Calls tabs, "My calls", unmatched calls, the calls list of
the API, and the caller-ID lookup a phone asks while it rings.

Visibility is the one rule (hub.crm.access): a user sees a call that belongs to a relation or
project they may see, and the calls they took or made themselves; admins see every call. A hidden
call answers exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, false, literal, or_, select, true, union_all
from sqlalchemy.orm import Session, aliased, joinedload

from hub.crm.access import asked_per_row, project_visible, relation_visible
from hub.crm.matching import number_owners, numbers_matched
from hub.errors import NotFound, ValidationError
from hub.kept import kept
from hub.models import Call, CallSource, Contact, Project, Relation, User
from hub.models.base import in_utc
from hub.paging import MAX_ID, Page, paginate
from hub.telephony.numbers import normalise
from hub.telephony.records import recording_url

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
        query = query.where(Call.started_at >= in_utc(filters.since))
    if filters.unmatched:
        query = query.where(Call.relation_id.is_(None), Call.e164 != "", Call.direction != "internal")
    return query.order_by(Call.started_at.desc(), Call.id.desc())


# What GET /calls shows of a call, as plain columns (schemas.Call's fields, the source by name).
LIST_COLUMNS = (
    Call.id,
    CallSource.name.label("source_name"),
    Call.call_key,
    Call.direction,
    Call.number,
    Call.e164,
    Call.started_at,
    Call.answered_at,
    Call.ended_at,
    Call.duration,
    Call.billsec,
    Call.outcome,
    Call.user_id,
    Call.extension,
    Call.recording_url,
    Call.contact_id,
    Call.relation_id,
    Call.project_id,
)
# List statements kept per what makes them (the user's rule, the filters): building and keying one
# (the rule's EXISTS) cost as much as running it; hub.paging keeps their page statements too.
_KEPT_LISTS: dict[tuple[Any, ...], Select[Any]] = {}
KEPT_LISTS = 2048


def call_list_rows(user: User, filters: CallFilters | None = None) -> tuple[Select[Any], bool]:
    """:func:`calls_query` as :data:`LIST_COLUMNS` (each call with its source's name), and whether
    the statement is a kept one (for ``keyset_page(kept=...)``); one with ``since`` is built each
    time (too many moments to keep)."""
    filters = filters or CallFilters()

    def make() -> Select[Any]:
        query = calls_query(user, filters)
        if not filters.source:  # else calls_query joined the source already
            query = query.join(CallSource, CallSource.id == Call.source_id)
        return query.with_only_columns(*LIST_COLUMNS)

    if filters.since is not None:
        return make(), False
    key = (
        user.id,
        bool(user.is_active),
        bool(user.is_admin),
        filters.source,
        filters.relation_id,
        filters.contact_id,
        filters.project_id,
        filters.user_id,
        filters.direction,
        filters.outcome,
        filters.unmatched,
    )
    return kept(_KEPT_LISTS, key, make, KEPT_LISTS), True


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


class HiddenLinks(NamedTuple):
    """The relations and projects calls are filed with that a user may not see."""

    relations: frozenset[int] = frozenset()
    projects: frozenset[int] = frozenset()

    def masked(self, values: dict[str, Any]) -> dict[str, Any]:
        """A call's values (relation_id, contact_id, project_id) without what is hidden."""
        if values.get("relation_id") in self.relations:
            values = {**values, "relation_id": None, "contact_id": None}
        if values.get("project_id") in self.projects:
            values = {**values, "project_id": None}
        return values


def hidden_links(session: Session, user: User, calls: Iterable[Any], *, projects: bool = True) -> HiddenLinks:
    """What ``calls`` (rows or objects with relation_id, project_id and user_id, all visible to
    ``user`` by :func:`call_visible`) are filed with that ``user`` may not see. A call he took is his
    whoever it is filed with, but the relation, its contact and the project stay hidden from him,
    as a hidden link of his own e-mail does (hub.mail.privacy): no name, no id. A call he sees
    through its relation may be on a project hidden from him (``projects``: look at those too).
    One query, and none for an admin or when no call can hide anything."""
    if user.is_admin:
        return HiddenLinks()
    calls = list(calls)
    # A call seen through its relation or project has a visible relation (a project is visible only
    # with its relation): only his own calls can be filed with a relation hidden from him.
    relation_ids = {c.relation_id for c in calls if c.relation_id is not None and c.user_id == user.id}
    project_ids = {c.project_id for c in calls if c.project_id is not None} if projects else set()
    asked: list[Select[Any]] = []
    if relation_ids:
        asked.append(
            select(Relation.id, literal("relation")).where(Relation.id.in_(relation_ids), relation_visible(user))
        )
    if project_ids:
        asked.append(select(Project.id, literal("project")).where(Project.id.in_(project_ids), project_visible(user)))
    if not asked:
        return HiddenLinks()
    seen: dict[str, set[int]] = {"relation": set(), "project": set()}
    for object_id, kind in session.execute(union_all(*asked) if len(asked) > 1 else asked[0]):
        seen[kind].add(object_id)
    return HiddenLinks(frozenset(relation_ids - seen["relation"]), frozenset(project_ids - seen["project"]))


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
    """The contact and relation a number belongs to, or None (unknown, ambiguous among the relations
    ``user`` may see, anonymous, or not visible to ``user``; ``None`` as user: the phone system
    itself, authenticated by its source).
    Indexed queries only: it answers while the phone rings."""
    e164 = normalise(number, region)
    if e164 is None:
        return None
    owners = number_owners(session, [e164])
    relation_ids = {relation_id for _contact, relation_id in owners.get(e164, ())}
    if user is not None and len(relation_ids) > 1:
        # Whoever has the number in a relation hidden from the user does not exist for him: a
        # number he shares with a hidden contact is the visible one's, as if the hidden one were
        # missing (answering "unknown" instead would tell him someone hidden has it too). One
        # relation only: the name's query below asks whether he may see it.
        visible = set(session.scalars(select(Relation.id).where(Relation.id.in_(relation_ids), relation_visible(user))))
        owners = {e164: {(c, r) for c, r in owners[e164] if r in visible}}
    match = numbers_matched(owners).get(e164)
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


# --- a project's Calls tab as plain values, its statement kept ---------------------------------------


class CallUser(NamedTuple):
    """The staff member of a call, as the calls list shows them (``call.user.name``)."""

    id: int
    name: str


class TabCall(NamedTuple):
    """A row of a Calls tab: the attributes the calls list (telephony/_list.html) reads of a
    :class:`Call`, under the same names, with the names of its contact and relation. A named tuple:
    made at a third of a frozen dataclass's cost, 25 a page."""

    id: int
    started_at: datetime
    direction: str
    number: str
    e164: str
    outcome: str
    extension: str
    billsec: int
    recording_url: str
    contact_id: int | None
    relation_id: int | None
    user: CallUser | None
    contact_name: str | None
    relation_name: str | None

    @property
    def user_id(self) -> int | None:
        return self.user.id if self.user is not None else None


# The tab's statement, built once (per page size, and for active users or not): building it and
# SQLAlchemy's keying of it cost as much as running it.
_KEPT_TABS: dict[tuple[Any, ...], Select[Any]] = {}
KEPT_TABS = 4096


def _on_a_visible_project(user: User) -> ColumnElement[bool]:
    """:func:`call_visible` of a call on a project ``user`` may see: every such call (the rule's
    third case), for an active user. The project's tab found the project visible by that same rule
    (hub.crm.access.project_visible), so its calls are not each asked it again (the rule's EXISTS
    over relations and projects, per call, were most of the tab's query)."""
    return true() if user.is_active else false()


def _listed(query: Select[Any], per_page: int) -> Select[Any]:
    """``query`` (calls) as a calls list's rows (TabCall): the call's columns and the names of its
    staff member, contact and relation, a page from the bound ``offset``."""
    # Aliases: the rules of hub.crm.access read Relation and User themselves; these must never meet.
    staff, contact, relation = aliased(User), aliased(Contact), aliased(Relation)
    return (
        query.with_only_columns(
            Call.id,
            Call.started_at,
            Call.direction,
            Call.number,
            Call.e164,
            Call.outcome,
            Call.extension,
            Call.billsec,
            Call.recording_url,
            Call.contact_id,
            Call.relation_id,
            Call.user_id,
            staff.name.label("user_name"),
            contact.name.label("contact_name"),
            relation.name.label("relation_name"),
        )
        .outerjoin(staff, staff.id == Call.user_id)
        .outerjoin(contact, contact.id == Call.contact_id)
        .outerjoin(relation, relation.id == Call.relation_id)
        .limit(per_page + 1)
        .offset(bindparam("offset", type_=Integer()))
    )


def _project_tab_statement(user: User, per_page: int) -> Select[Any]:
    def make() -> Select[Any]:
        query = (
            select(Call)
            .where(_on_a_visible_project(user), Call.project_id == bindparam("project_id"))
            .order_by(Call.started_at.desc(), Call.id.desc())
        )
        return _listed(query, per_page)

    key = ("project", per_page, bool(user.is_active))
    return kept(_KEPT_TABS, key, make, KEPT_TABS)


def project_tab_calls(
    session: Session, user: User, project_id: int, *, page: int = 1, per_page: int = 25
) -> tuple[Page[TabCall], dict[str, dict[int, str]]]:
    """The calls of a project ``user`` may see, a page by number, newest first: what
    :func:`list_calls` with ``CallFilters(project_id=...)`` and :func:`call_names` give, in one query
    of plain values through a kept statement. The caller checked that ``user`` may see the project
    (as every tab of it does): see :func:`_on_a_visible_project`."""
    return _listed_page(session, _project_tab_statement(user, per_page), {"project_id": project_id}, page, per_page)


# --- "My calls", the unmatched calls and a contact's calls as plain values, their statements kept ------


def _calls_page_statement(user: User, filters: CallFilters, per_page: int) -> Select[Any]:
    def make() -> Select[Any]:
        return _listed(calls_query(user, filters), per_page)

    key = (
        "calls",
        user.id,
        bool(user.is_active),
        bool(user.is_admin),
        filters.user_id,
        filters.contact_id,
        filters.unmatched,
        per_page,
    )
    return kept(_KEPT_TABS, key, make, KEPT_TABS)


def calls_page(
    session: Session, user: User, filters: CallFilters, *, page: int = 1, per_page: int = 25
) -> tuple[Page[TabCall], dict[str, dict[int, str]]]:
    """A page by number of the calls ``user`` may see that pass ``filters`` (a staff member's, a
    contact's, or the unmatched ones), newest first: what :func:`list_calls` and :func:`call_names`
    gave in up to five queries, in one of plain values through a kept statement (building the rule
    into a new statement, and the Call objects, were most of "My calls")."""
    if filters.source or filters.relation_id or filters.project_id or filters.direction or filters.outcome:
        raise ValueError("calls_page keeps statements per user, contact and unmatched only")
    if filters.since is not None:
        raise ValueError("calls_page keeps no statement per moment")
    found, names = _listed_page(session, _calls_page_statement(user, filters, per_page), {}, page, per_page)
    # Only the relation (and its contact) is shown on these pages, not the project.
    hidden = hidden_links(session, user, found.items, projects=False).relations
    if hidden:
        found.items = [
            call._replace(relation_id=None, contact_id=None, relation_name=None, contact_name=None)
            if call.relation_id in hidden
            else call
            for call in found.items
        ]
        shown = {call.contact_id for call in found.items}
        names["relation"] = {key: name for key, name in names["relation"].items() if key not in hidden}
        names["contact"] = {key: name for key, name in names["contact"].items() if key in shown}
    return found, names


def _listed_page(
    session: Session, statement: Select[Any], values: dict[str, Any], page: int, per_page: int
) -> tuple[Page[TabCall], dict[str, dict[int, str]]]:
    """Page ``page`` of a :func:`_listed` statement as TabCall rows, and the contact and relation
    names they show (as :func:`call_names` gives them)."""
    page = max(page, 1)
    # A page far beyond any call is empty; its OFFSET held to what PostgreSQL's INTEGER parameter
    # takes (?page=2147483647 asked for 53 billion: an error, not an empty page).
    offset = min((page - 1) * per_page, MAX_ID)
    found = session.connection().execute(statement, {**values, "offset": offset})
    items: list[TabCall] = []
    names: dict[str, dict[int, str]] = {"contact": {}, "relation": {}, "project": {}}
    for row in found:
        key, started, direction, number, e164, outcome, extension, billsec, recording = row[:9]
        contact_id, relation_id, user_id, user_name, contact_name, relation_name = row[9:]
        staff = CallUser(user_id, user_name) if user_id is not None and user_name is not None else None
        if recording:  # stored before imports refused javascript: and data: links: shown as none
            recording = recording_url(recording)
        call = (key, started, direction, number, e164, outcome, extension, billsec, recording, contact_id, relation_id)
        items.append(TabCall(*call, staff, contact_name, relation_name))
        if contact_id is not None and contact_name is not None:
            names["contact"][contact_id] = contact_name
        if relation_id is not None and relation_name is not None:
            names["relation"][relation_id] = relation_name
    shown = items[:per_page]
    return Page(items=shown, page=page, per_page=per_page, has_next=len(items) > per_page), names
