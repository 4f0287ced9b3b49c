"""CRM projects: create and change them, list them, the notepad and who is linked."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    bindparam,
    exists,
    func,
    inspect,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from hub.accounts.users import users_and_groups
from hub.crm.access import (
    claim_version,
    may_manage_project,
    project_visible,
    project_visible_listing,
    project_visible_walking,
    relation_visible,
)
from hub.crm.events import RecordChanged, announce
from hub.crm.relations import EMAIL_RE
from hub.errors import NotFound, ValidationError
from hub.i18n import _
from hub.kept import kept
from hub.models import (
    FREE_TEXT_FIELDS,
    Choice,
    ChoiceField,
    Contact,
    EmailAddress,
    FieldLabel,
    Project,
    Relation,
    User,
    UserGroup,
)
from hub.models.base import utcnow
from hub.models.crm import project_contacts, project_groups, project_users
from hub.paging import Page, Sort, paginate, sort_clause
from hub.text import like_pattern

CHOICE_FIELDS = tuple(f.value for f in ChoiceField)
MAX_DESCRIPTION = 100_000


@dataclass
class ProjectInput:
    relation_id: int | None
    name: str
    description: str = ""
    contact_ids: list[int] = field(default_factory=list)
    one_off_contact_name: str = ""
    one_off_contact_email: str = ""
    one_off_contact_phone: str = ""
    start_date: date | None = None
    end_date: date | None = None
    end_date_expected: bool = False
    responsible_user_id: int | None = None
    value: Decimal | str | None = None
    currency: str = "EUR"
    free_texts: dict[str, str] = field(default_factory=dict)
    # Dropdown field ("type", "status", "chance", "free_choice_1".."5") → choice id or None.
    choices: dict[str, int | None] = field(default_factory=dict)
    closed: bool = False


_THOUSANDS_DOTS = re.compile(r"^-?\d{1,3}(\.\d{3})+$")


def normalise_amount(text: str) -> str:
    """Amounts as Dutch and English users type them: "12.500,50", "12,500.50", "12500,5", "1.250" (= 1250)."""
    text = text.strip().replace(" ", "").replace("€", "").replace("\u00a0", "")
    if "," in text and "." in text:
        decimal = "," if text.rfind(",") > text.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        return text.replace(thousands, "").replace(decimal, ".")
    if "," in text:
        return text.replace(",", ".") if text.count(",") == 1 else text.replace(",", "")
    if _THOUSANDS_DOTS.match(text):
        return text.replace(".", "")
    return text


def _parse_value(raw: Decimal | str | None, errors: dict[str, str]) -> Decimal | None:
    if raw is None or raw == "":
        return None
    try:
        value = raw if isinstance(raw, Decimal) else Decimal(normalise_amount(str(raw)))
    except InvalidOperation:
        errors["value"] = _("Enter an amount such as 1250.00.")
        return None
    if not value.is_finite() or abs(value) >= Decimal("1e12"):
        errors["value"] = _("Enter an amount such as 1250.00.")
        return None
    return value.quantize(Decimal("0.01"))


def _validate_choices(
    session: Session, choices: dict[str, int | None], current: Project | None, errors: dict[str, str]
) -> None:
    for name, choice_id in choices.items():
        if name not in CHOICE_FIELDS:
            errors[name] = _("Unknown dropdown.")
            continue
        if choice_id is None:
            continue
        choice = session.get(Choice, choice_id)
        if choice is None or choice.field != ChoiceField(name):
            errors[name] = _("This is not a choice of this dropdown.")
        elif not choice.active and (current is None or getattr(current, f"{name}_id") != choice_id):
            # An inactive choice stays on the projects that have it but cannot be picked anew.
            errors[name] = _("This choice is no longer active.")


def _validate(session: Session, user: User, data: ProjectInput, current: Project | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    data.name = data.name.strip()
    if not data.name:
        errors["name"] = _("A project needs a name.")
    elif len(data.name) > 200:
        errors["name"] = _("The name can be at most 200 characters.")
    if len(data.description) > MAX_DESCRIPTION:
        errors["description"] = _("The description can be at most %(n)s characters.", n=MAX_DESCRIPTION)
    relation = None
    if data.relation_id is None:
        errors["relation_id"] = _("Choose a relation.")
    else:
        relation = session.scalar(select(Relation).where(Relation.id == data.relation_id, relation_visible(user)))
        if relation is None:
            errors["relation_id"] = _("Choose a relation.")
    if relation is not None and data.contact_ids:
        found = set(
            session.scalars(
                select(Contact.id).where(Contact.id.in_(data.contact_ids), Contact.relation_id == relation.id)
            )
        )
        if found != set(data.contact_ids):
            errors["contact_ids"] = _("Choose contacts of this relation.")
    if data.one_off_contact_email.strip() and not EMAIL_RE.match(data.one_off_contact_email.strip()):
        errors["one_off_contact_email"] = _("Enter a valid e-mail address.")
    if data.start_date and data.end_date and data.end_date < data.start_date:
        errors["end_date"] = _("The end date is before the start date.")
    # A deactivated user stays responsible until someone picks another: editing other fields of the
    # project must not fail on it, nor silently clear it.
    keeps_responsible = current is not None and data.responsible_user_id == current.responsible_user_id
    if current is not None and not keeps_responsible and not may_manage_project(user, current):
        # Handing a project to someone (yourself included) changes who may manage and see it.
        errors["responsible_user_id"] = _("Only the responsible user or an admin can change who is responsible.")
    elif data.responsible_user_id is not None and not keeps_responsible:
        responsible = session.get(User, data.responsible_user_id)
        if responsible is None or not responsible.is_active:
            errors["responsible_user_id"] = _("Choose an active user.")
    currency = (data.currency or "EUR").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        errors["currency"] = _("Use a three-letter currency code, such as EUR.")
    data.currency = currency
    data.value = _parse_value(data.value, errors)
    for name, text in data.free_texts.items():
        if name not in {f"free_text_{i}" for i in range(1, 5)}:
            errors[name] = _("Unknown field.")
        elif len(text) > 500:
            errors[name] = _("At most 500 characters.")
    _validate_choices(session, data.choices, current, errors)
    return errors


def save_project(
    session: Session,
    user: User,
    data: ProjectInput,
    project: Project | None = None,
    *,
    expected_version: int | None = None,
) -> Project:
    """Create (``project`` None) or change a project; raises :class:`ValidationError`, and
    :class:`~hub.crm.access.StaleVersion` when ``expected_version`` is given and no longer stored."""
    errors = _validate(session, user, data, project)
    if errors:
        raise ValidationError(errors)
    assert data.relation_id is not None
    if project is not None:
        claim_version(session, project, expected_version)
    created = project is None
    if project is None:
        project = Project(relation_id=data.relation_id, name=data.name)
        session.add(project)
    project.relation_id = data.relation_id
    project.name = data.name
    project.description = data.description
    project.start_date = data.start_date
    project.end_date = data.end_date
    project.end_date_expected = data.end_date_expected
    project.responsible_user_id = data.responsible_user_id
    project.value = data.value if isinstance(data.value, Decimal) else None
    project.currency = data.currency
    project.one_off_contact_name = data.one_off_contact_name.strip()
    project.one_off_contact_email = data.one_off_contact_email.strip()
    project.one_off_contact_phone = data.one_off_contact_phone.strip()
    project.closed = data.closed
    for name, text in data.free_texts.items():
        setattr(project, name, text.strip())
    for name, choice_id in data.choices.items():
        setattr(project, f"{name}_id", choice_id)
    project.contacts = (
        list(session.scalars(select(Contact).where(Contact.id.in_(data.contact_ids)))) if data.contact_ids else []
    )
    session.flush()
    announce(session, RecordChanged("project", project.id, "created" if created else "updated"))
    return project


def get_project(session: Session, user: User, project_id: int, *, full: bool = False) -> Project:
    """The project if ``user`` may see it; :class:`NotFound` otherwise.

    Its relation comes along (every project page shows it). ``full`` also loads what the summary
    shows: contacts with their addresses (two indexed IN queries), and the dropdown choices (one
    query of the whole small table, see :func:`_set_choices`). Either way the number of queries does
    not depend on how much data there is.
    """
    query = select(Project).where(Project.id == project_id, project_visible(user)).options(joinedload(Project.relation))
    if full:
        # The responsible user is shown too: joined, not a query of its own when the page reads it.
        query = query.options(joinedload(Project.responsible_user))
    project = session.scalars(query).unique().one_or_none()
    if project is None:
        raise NotFound(project_id)
    if full:
        _set_choices(session, project)
        if "contacts" not in inspect(project).dict:
            _load_contacts(session, project)
    return project


def _set_choices(session: Session, project: Project) -> None:
    """The project's eight dropdown choices, from one query of the whole small table, set on it as
    loaded: joining them would join one table eight times, and leaving them to the lazy loader (which
    finds them in the session without SQL once the table is loaded) cost 50 µs a choice."""
    choices = {choice.id: choice for choice in session.scalars(select(Choice))}
    loaded = inspect(project).dict
    for name in CHOICE_FIELDS:
        if name not in loaded:  # one already set in this session (a change being made) stays
            set_committed_value(project, name, choices.get(getattr(project, f"{name}_id")))


# The columns a project summary (a list's row) shows; the long texts and free fields stay unloaded.
SUMMARY_COLUMNS = (
    Project.name,
    Project.relation_id,
    Project.closed,
    Project.status_id,
    Project.type_id,
    Project.responsible_user_id,
    Project.start_date,
    Project.end_date,
    Project.end_date_expected,
    Project.value,
    Project.currency,
    Project.updated_at,
)


def _load_contacts(session: Session, project: Project) -> None:
    """``project.contacts`` (in the relationship's order, by name) with their addresses, in one
    query and one indexed IN query for the addresses. Not a joined load: SQLite scans a
    parenthesised many-to-many join in full; and a plain query by the link table's project id costs
    a quarter of what SQLAlchemy's selectin loader does for one project."""
    contacts = session.scalars(
        select(Contact)
        .join(project_contacts, project_contacts.c.contact_id == Contact.id)
        .where(project_contacts.c.project_id == project.id)
        .order_by(Contact.name)
        .options(selectinload(Contact.emails))
    ).all()
    set_committed_value(project, "contacts", list(contacts))


# --- one project as its page and GET /projects/{id} show it: plain values, two queries -------------


@dataclass(frozen=True, slots=True)
class Named:
    """A relation, user or dropdown choice as a project shows it."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class ShownAddress:
    address: str


@dataclass(slots=True)
class ShownContact:
    id: int
    name: str
    emails: list[ShownAddress] = field(default_factory=list)


@dataclass(slots=True)
class ProjectSheet:
    """What a project's summary shows, read as plain values (see :func:`project_sheet`): the
    attributes the summary page and the API read of a :class:`Project`, under the same names."""

    id: int
    relation_id: int
    name: str
    description: str
    start_date: date | None
    end_date: date | None
    end_date_expected: bool
    responsible_user_id: int | None
    value: Decimal | None
    currency: str
    free_text_1: str
    free_text_2: str
    free_text_3: str
    free_text_4: str
    one_off_contact_name: str
    one_off_contact_email: str
    one_off_contact_phone: str
    notepad: str
    notepad_updated_by_id: int | None
    notepad_updated_at: datetime | None
    notepad_version: int
    closed: bool
    version: int
    created_at: datetime
    updated_at: datetime
    relation: Named
    responsible_user: Named | None
    type: Named | None
    status: Named | None
    chance: Named | None
    free_choice_1: Named | None
    free_choice_2: Named | None
    free_choice_3: Named | None
    free_choice_4: Named | None
    free_choice_5: Named | None
    # The free fields' labels as the company stored them (None: never renamed); see hub.crm.choices.labels_from.
    stored_labels: dict[str, str | None]
    contacts: list[ShownContact] = field(default_factory=list)
    # Ids, by name as the API lists them.
    linked_users: list[int] = field(default_factory=list)
    linked_groups: list[int] = field(default_factory=list)


_SHEET_COLUMNS = (
    "id",
    "relation_id",
    "name",
    "description",
    "start_date",
    "end_date",
    "end_date_expected",
    "responsible_user_id",
    "value",
    "currency",
    *FREE_TEXT_FIELDS,
    "one_off_contact_name",
    "one_off_contact_email",
    "one_off_contact_phone",
    "notepad",
    "notepad_updated_by_id",
    "notepad_updated_at",
    "notepad_version",
    "closed",
    "version",
    "created_at",
    "updated_at",
)
_LABELLED_FIELDS = (*FREE_TEXT_FIELDS, *(f"free_choice_{i}" for i in range(1, 6)))


def _sheet_base() -> Select[Any]:
    """The project's columns with, by name, its relation, responsible user and eight choices, the free
    fields' stored labels, and whether anything is linked to it (else the second query is skipped).
    Subqueries by primary key rather than eight joins of one table: the same plan, simpler SQL."""

    def choice_name(name: str) -> Any:
        return select(Choice.name).where(Choice.id == getattr(Project, f"{name}_id")).scalar_subquery()

    def stored_label(name: str) -> Any:
        return select(FieldLabel.label).where(FieldLabel.field == name).scalar_subquery()

    linked = or_(
        exists().where(project_contacts.c.project_id == Project.id),
        exists().where(project_users.c.project_id == Project.id),
        exists().where(project_groups.c.project_id == Project.id),
    )
    return (
        select(
            *(getattr(Project, name) for name in _SHEET_COLUMNS),
            Relation.name.label("relation_name"),
            User.name.label("responsible_name"),
            *(getattr(Project, f"{name}_id").label(f"{name}_id") for name in CHOICE_FIELDS),
            *(choice_name(name).label(f"{name}_name") for name in CHOICE_FIELDS),
            *(stored_label(name).label(f"label_{name}") for name in _LABELLED_FIELDS),
            linked.label("has_links"),
        )
        .join(Relation, Relation.id == Project.relation_id)
        .outerjoin(User, User.id == Project.responsible_user_id)
        .where(Project.id == bindparam("project_id"))
    )


# What is linked to a project, in one query: its contacts (by name) with their addresses (in the order
# they were added), and the users and groups who see it (by name, as the API lists their ids).
_CONTACT, _ADDRESS, _USER, _GROUP = 0, 1, 2, 3


def _links_statement() -> Select[Any]:
    project_id: Any = bindparam("project_id")

    def kind(number: int) -> Any:
        return literal_column(str(number), Integer).label("kind")

    linked = union_all(
        select(
            kind(_CONTACT),
            Contact.id.label("key"),
            Contact.name.label("text"),
            Contact.name.label("sort"),
            Contact.id.label("tie"),
        )
        .join(project_contacts, project_contacts.c.contact_id == Contact.id)
        .where(project_contacts.c.project_id == project_id),
        select(kind(_ADDRESS), EmailAddress.contact_id, EmailAddress.address, literal_column("''"), EmailAddress.id)
        .join(project_contacts, project_contacts.c.contact_id == EmailAddress.contact_id)
        .where(project_contacts.c.project_id == project_id),
        select(kind(_USER), User.id, User.name, User.name, User.id)
        .join(project_users, project_users.c.user_id == User.id)
        .where(project_users.c.project_id == project_id),
        select(kind(_GROUP), UserGroup.id, UserGroup.name, UserGroup.name, UserGroup.id)
        .join(project_groups, project_groups.c.group_id == UserGroup.id)
        .where(project_groups.c.project_id == project_id),
    ).subquery()
    return select(linked.c.kind, linked.c.key, linked.c.text).order_by(linked.c.kind, linked.c.sort, linked.c.tie)


_LINKS = _links_statement()


@functools.lru_cache(maxsize=4096)
def _sheet_statement(rule: ColumnElement[bool]) -> Select[Any]:
    # One statement per visibility rule (each user's is kept by hub.crm.access), kept too: SQLAlchemy
    # keys its compiled SQL by the statement's cache key, which a kept statement computes only once
    # (a new one of ~50 columns and subqueries took as long to key as the query took to run).
    return _sheet_base().where(rule)


def project_sheet(session: Session, user: User, project_id: int) -> ProjectSheet:
    """The project's summary if ``user`` may see it (:class:`NotFound` otherwise, as a missing one),
    as plain values: one query for the project with the names it shows and the free fields' labels,
    one for its contacts, addresses and linked users and groups (none when nothing is linked). The
    summary page and GET /projects/{id} showed it from Project objects in five to six queries, at
    three times the cost; what may change a project still loads it (:func:`get_project`)."""
    connection = session.connection()
    row = connection.execute(_sheet_statement(project_visible(user)), {"project_id": project_id}).one_or_none()
    if row is None:
        raise NotFound(project_id)
    values = row._mapping

    def named(name: str) -> Named | None:
        chosen = values[f"{name}_id"]
        return None if chosen is None else Named(chosen, values[f"{name}_name"])

    fields: dict[str, Any] = {name: values[name] for name in _SHEET_COLUMNS}
    fields.update({name: named(name) for name in CHOICE_FIELDS})
    responsible = values["responsible_user_id"]
    sheet = ProjectSheet(
        **fields,
        relation=Named(values["relation_id"], values["relation_name"]),
        responsible_user=None if responsible is None else Named(responsible, values["responsible_name"]),
        stored_labels={name: values[f"label_{name}"] for name in _LABELLED_FIELDS},
    )
    if values["has_links"]:
        _fill_links(connection, sheet)
    return sheet


def _fill_links(connection: Any, sheet: ProjectSheet) -> None:
    contacts: dict[int, ShownContact] = {}
    for kind, key, text in connection.execute(_LINKS, {"project_id": sheet.id}):
        if kind == _CONTACT:
            contacts[key] = ShownContact(key, text)
            sheet.contacts.append(contacts[key])
        elif kind == _ADDRESS:
            contacts[key].emails.append(ShownAddress(text))
        elif kind == _USER:
            sheet.linked_users.append(key)
        else:
            sheet.linked_groups.append(key)


# --- the list's and the board's filter form: its dropdowns' options in one query -------------------


@dataclass(frozen=True, slots=True)
class Option:
    """A dropdown choice or a user, as a filter form offers it."""

    id: int
    name: str
    active: bool


def _options_statement() -> Select[Any]:
    options = union_all(
        select(
            literal_column("0", Integer).label("kind"),
            Choice.field.label("field"),
            Choice.sort_order.label("sort_order"),
            Choice.name.label("name"),
            Choice.id.label("id"),
            Choice.active.label("active"),
        ),
        select(
            literal_column("1", Integer), null(), literal_column("0", Integer), User.name, User.id, User.is_active
        ).where(User.is_active),
    ).subquery()
    return select(options.c.kind, options.c.field, options.c.name, options.c.id, options.c.active).order_by(
        options.c.kind, options.c.field, options.c.sort_order, options.c.name, options.c.id
    )


_OPTIONS = _options_statement()


def filter_options(session: Session) -> tuple[dict[ChoiceField, list[Option]], list[Option]]:
    """Every dropdown's choices, active or not (per field, in their order), and the active users (by
    name), as plain values in one query: the filter form loaded them as Choice and User objects in
    two, a sixth of a list page. Read on every call (a choice or user changed shows at once); only
    turning the rows read into options is kept, for the same rows (see :func:`_options_from`)."""
    choices, users = _options_from(tuple(map(tuple, session.connection().execute(_OPTIONS).all())))
    return {choice_field: list(options) for choice_field, options in choices.items()}, list(users)


@functools.lru_cache(maxsize=64)
def _options_from(
    rows: tuple[tuple[Any, ...], ...],
) -> tuple[dict[ChoiceField, tuple[Option, ...]], tuple[Option, ...]]:
    # Keyed on the rows' values themselves, so never stale; the same rows give the same Option
    # objects, which a page's kept filter form compares (by identity first) at no cost.
    choices: dict[ChoiceField, list[Option]] = {f: [] for f in ChoiceField}
    users: list[Option] = []
    for kind, choice_field, name, key, active in rows:
        if kind == 0:
            choices[ChoiceField(choice_field)].append(Option(key, name, bool(active)))
        else:
            users.append(Option(key, name, True))
    return {f: tuple(options) for f, options in choices.items()}, tuple(users)


# The ways a project list may be ordered: the pages and the API page by these (cursor or number).
PROJECT_SORTS = {
    "name": Sort(Project.name, Project.id, lambda p: p.name),
    "start": Sort(Project.start_date, Project.id, lambda p: p.start_date),
    "end": Sort(Project.end_date, Project.id, lambda p: p.end_date),
    "value": Sort(Project.value, Project.id, lambda p: p.value),
    "updated": Sort(Project.updated_at, Project.id, lambda p: p.updated_at),
    "relation": Sort(Relation.search_name, Project.id, lambda p: _relation_key(p)),
}


def _relation_key(project: Any) -> Any:
    # A list's row (project_rows) carries it as a column; a Project reaches it through its relation.
    return project.relation_search_name if hasattr(project, "relation_search_name") else project.relation.search_name


def project_rows(query: Select[tuple[Project]]) -> Select[Any]:
    """``query`` (a projects_query) as a list's rows: the summary's columns and the relation's name,
    plain values instead of Project and Relation objects (a third of the time for a page; a list
    shows status, type and responsible user by name from what the page has loaded anyway)."""
    return query.with_only_columns(
        Project.id,
        *SUMMARY_COLUMNS,
        Relation.name.label("relation_name"),
        Relation.search_name.label("relation_search_name"),
    )


# List statements kept by what makes them: the user's access rule (kept per user by hub.crm.access)
# and the filters. A list's statement is then the same object on every request, and
# hub.paging.keyset_page keeps its page statements too (``kept``): building and keying them cost
# as much as running them. Lists searched by a text are built each time (too many texts to keep).
_KEPT_LISTS: dict[tuple[Any, ...], Select[Any]] = {}
KEPT_LISTS = 2048


def _kept_list(key: tuple[Any, ...], make: Callable[[], Select[Any]]) -> Select[Any]:
    return kept(_KEPT_LISTS, key, make, KEPT_LISTS)


def project_list_rows(
    user: User, *, skipping: bool = False, session: Session | None = None, **criteria: Any
) -> tuple[Select[Any], bool]:
    """:func:`project_rows` of :func:`projects_query` (``criteria`` are its filters), and whether the
    statement is a kept one (see :func:`_kept_list`; for ``keyset_page(kept=...)``). With the
    ``session`` it will run in, a filter few projects match is read through its index
    (:func:`narrow_index`)."""
    rare = narrow_index(session, criteria) if session is not None else ""
    if criteria.get("search", "").strip() or criteria.get("updated_since") is not None:
        return project_rows(projects_query(user, skipping=skipping, rare=rare, listing=True, **criteria)), False
    rule = _list_rule(user, skipping=skipping, listing=True)
    key = ("criteria", rule, skipping, rare, *sorted(criteria.items()))
    return _kept_list(
        key, lambda: project_rows(projects_query(user, skipping=skipping, rare=rare, listing=True, **criteria))
    ), True


def _list_rule(user: User, *, skipping: bool, listing: bool) -> ColumnElement[bool]:
    """The visibility rule in the form that suits how the query is read (see projects_query)."""
    if skipping:
        return project_visible_walking(user)
    return project_visible_listing(user) if listing else project_visible(user)


# SQLite plans a filtered list from averages (sqlite_stat1): an index on a status, type, chance or
# responsible user holds a sixth or a tenth of the projects per value, so it walks the sort's index
# and tests every row, which finds a page at once for a common value. For a value few projects have
# (a status hardly used, the projects of a user who has a handful) that walk read every project:
# 47 ms at 200,000. Where an equality filter matches at most NARROW_ROWS projects (counted through
# its own index, which stops counting there: 0.2 ms at most), the planner is told so (SQLite's
# likelihood()) and reads them through that index and sorts them instead. PostgreSQL keeps
# statistics per value and chooses so itself.
NARROW_ROWS = 2000
_NARROWING = ("status_id", "type_id", "chance_id", "responsible_user_id")


@functools.cache
def _matching_at_most(column_name: str) -> Select[Any]:
    column = getattr(Project, column_name)
    found = select(literal_column("1")).where(column == bindparam("value")).limit(NARROW_ROWS + 1).subquery()
    return select(func.count()).select_from(found)


def narrow_index(session: Session, criteria: dict[str, Any]) -> str:
    """On SQLite, the equality filter in ``criteria`` (its column's name) that at most
    :data:`NARROW_ROWS` projects match, to read a list through its index; "" when there is none,
    and on PostgreSQL."""
    if session.get_bind().dialect.name != "sqlite":
        return ""
    for name in _NARROWING:
        value = criteria.get(name)
        if value is not None and (session.scalar(_matching_at_most(name), {"value": value}) or 0) <= NARROW_ROWS:
            return name
    return ""


def projects_query(
    user: User,
    *,
    search: str = "",
    relation_id: int | None = None,
    status_id: int | None = None,
    open_only: bool = False,
    type_id: int | None = None,
    chance_id: int | None = None,
    responsible_user_id: int | None = None,
    updated_since: datetime | None = None,
    closed_only: bool = False,
    skipping: bool = False,
    rare: str = "",
    listing: bool = False,
) -> Select[tuple[Project]]:
    """The projects ``user`` may see, filtered. ``skipping``: the query will be read from an OFFSET
    (an old ?page=N link), walking many rows to skip them: the rule in the form that costs least so
    (:func:`hub.crm.access.project_visible_walking`; the same rows). ``rare``: on SQLite, the
    filter few projects match, to read them through its index (:func:`narrow_index`). ``listing``: the
    query will be read a page at a time along an index (:func:`hub.crm.access.project_visible_listing`;
    the same rows)."""
    visible = _list_rule(user, skipping=skipping, listing=listing)
    query = select(Project).join(Project.relation).where(visible)
    if search.strip():
        pattern = like_pattern(search)
        query = query.where(Project.name.ilike(pattern, escape="\\") | Relation.search_name.like(pattern, escape="\\"))
    if relation_id is not None:
        query = query.where(Project.relation_id == relation_id)
    if open_only:
        query = query.where(Project.closed.is_(False))
    if closed_only:
        query = query.where(Project.closed.is_(True))
    for name, value in (
        ("status_id", status_id),
        ("type_id", type_id),
        ("chance_id", chance_id),
        ("responsible_user_id", responsible_user_id),
    ):
        if value is not None:
            matches: ColumnElement[bool] = getattr(Project, name) == value
            # SQLite's likelihood() tells its planner that few rows match, so it reads them through
            # the column's index and sorts them (see narrow_index); the term stays indexable.
            query = query.where(func.likelihood(matches, _RARE) if name == rare else matches)
    if updated_since is not None:
        query = query.where(Project.updated_at >= updated_since)
    return query


_RARE: Any = literal_column("0.0001")  # (SQLite wants the probability as a literal, not a parameter)


def list_projects(
    session: Session,
    user: User,
    *,
    search: str = "",
    relation_id: int | None = None,
    status_id: int | None = None,
    open_only: bool = False,
    sort: str = "-updated",
    page: int = 1,
    per_page: int = 25,
) -> tuple[Page[Project], str]:
    sort, order = sort_clause(PROJECT_SORTS, sort, "-updated")
    query = (
        projects_query(user, search=search, relation_id=relation_id, status_id=status_id, open_only=open_only)
        .order_by(*order, Project.id.desc())
        .options(
            joinedload(Project.relation),
            joinedload(Project.responsible_user),
            joinedload(Project.status),
            joinedload(Project.type),
        )
    )
    return paginate(session, query, page, per_page), sort


def save_notepad(
    session: Session, user: User, project: Project, text: str, *, expected_version: int | None = None
) -> None:
    """Replace the notepad; raises :class:`~hub.crm.access.StaleVersion` when someone saved it after
    ``expected_version`` (the one the editor started from), so their text is never silently lost."""
    if len(text) > MAX_DESCRIPTION * 5:
        raise ValidationError(_("The notepad is too long."), field="notepad")
    claim_version(session, project, expected_version, "notepad_version")
    project.notepad = text
    project.notepad_updated_by_id = user.id
    project.notepad_updated_at = utcnow()
    session.flush()


def relation_projects(session: Session, relation: Relation) -> list[Project]:
    """Every project of ``relation``, whoever may see them (for checks after its access changed)."""
    return list(session.scalars(select(Project).where(Project.relation_id == relation.id).order_by(Project.id)))


def set_linked(
    session: Session,
    project: Project,
    user_ids: list[int],
    group_ids: list[int],
    *,
    by: User | None = None,
    expected_version: int | None = None,
) -> None:
    """Link users and groups to a project; from then on only they (and admins, the responsible
    user) see it. Linking nobody makes it visible to all staff again.

    ``by``: the user asking (None: the system, such as an import); only one who may manage the
    project (:func:`~hub.crm.access.may_manage_project`) may; for others it is :class:`NotFound`.
    """
    if by is not None and not may_manage_project(by, project):
        raise NotFound(project.id)
    linked = users_and_groups(session, user_ids, group_ids)
    claim_version(session, project, expected_version)
    project.linked_users, project.linked_groups = linked
    session.flush()


def delete_project(
    session: Session, project: Project, *, by: User | None = None, expected_version: int | None = None
) -> None:
    """Delete a project; ``by`` as for :func:`set_linked`."""
    if by is not None and not may_manage_project(by, project):
        raise NotFound(project.id)
    claim_version(session, project, expected_version)
    announce(session, RecordChanged("project", project.id, "deleted"))
    session.delete(project)
    session.flush()


# --- list filters and the pipeline board ---------------------------------------------------------------

# What a column of the pipeline board shows at most; the rest is one "more" link to the filtered list.
BOARD_COLUMN_LIMIT = 50
# Ids are INTEGER columns (32-bit on PostgreSQL): a bigger one is refused as unknown before the query.
_MAX_FILTER_ID = 2**31 - 1


@dataclass
class ProjectFilters:
    """The project list's and the board's filters, as read from a GET form (``read_filters``)."""

    search: str = ""
    status_id: int | None = None
    type_id: int | None = None
    chance_id: int | None = None
    responsible_user_id: int | None = None
    relation_id: int | None = None
    # "all", "open" or "closed".
    state: str = "all"
    # The relation named by ``relation_id`` (for the page to show what is filtered on).
    relation_name: str = ""
    # Only projects without a status (the board's "No status" column).
    no_status: bool = False

    def rows(self, user: User, *, skipping: bool = False, session: Session | None = None) -> tuple[Select[Any], bool]:
        """:func:`project_rows` of :meth:`query`, and whether it is a kept statement (see
        :func:`project_list_rows`, also for ``session``)."""
        rare = narrow_index(session, {f.name: getattr(self, f.name) for f in fields(self)}) if session else ""
        if self.search.strip():
            return project_rows(self.query(user, skipping=skipping, rare=rare, listing=True)), False
        rule = _list_rule(user, skipping=skipping, listing=True)
        key = (
            "filters",
            rule,
            skipping,
            rare,
            *(getattr(self, f.name) for f in fields(self) if f.name != "relation_name"),
        )
        return _kept_list(key, lambda: project_rows(self.query(user, skipping=skipping, rare=rare, listing=True))), True

    def query(
        self, user: User, *, skipping: bool = False, rare: str = "", listing: bool = False
    ) -> Select[tuple[Project]]:
        query = projects_query(
            user,
            skipping=skipping,
            rare=rare,
            listing=listing,
            search=self.search,
            relation_id=self.relation_id,
            status_id=self.status_id,
            type_id=self.type_id,
            chance_id=self.chance_id,
            responsible_user_id=self.responsible_user_id,
            open_only=self.state == "open",
            closed_only=self.state == "closed",
        )
        return query.where(Project.status_id.is_(None)) if self.no_status else query


def _filter_id(raw: str) -> int | None:
    """A positive id typed into a URL, or None for anything else (letters, huge numbers, NUL bytes)."""
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= _MAX_FILTER_ID:
        return None
    return int(raw)


def read_filters(
    session: Session, user: User, args: dict[str, str], *, default_state: str = "all"
) -> tuple[ProjectFilters, dict[str, str]]:
    """The filters in ``args`` (status, type, chance, responsible, relation, open, q), checked.

    Returns the usable filters and, per filter that names nothing the user may pick, a message; such a
    filter is left out (the page says so) rather than answering with an error page. A relation the user
    may not see is unknown, exactly like a missing one.
    """
    filters = ProjectFilters(search=args.get("q", "").replace("\x00", "")[:200])
    errors: dict[str, str] = {}
    for name in ("status", "type", "chance"):
        raw = args.get(name, "")
        if not raw:
            continue
        if name == "status" and raw == "none":
            filters.no_status = True
            continue
        choice_id = _filter_id(raw)
        choice = session.get(Choice, choice_id) if choice_id is not None else None
        if choice is None or choice.field != ChoiceField(name):
            errors[name] = _("There is no such choice; this filter is left out.")
        else:
            setattr(filters, f"{name}_id", choice.id)
    if raw := args.get("responsible", ""):
        user_id = _filter_id(raw)
        if user_id is None or session.get(User, user_id) is None:
            errors["responsible"] = _("There is no such user; this filter is left out.")
        else:
            filters.responsible_user_id = user_id
    if raw := args.get("relation", ""):
        relation_id = _filter_id(raw)
        relation = (
            session.scalar(select(Relation).where(Relation.id == relation_id, relation_visible(user)))
            if relation_id is not None
            else None
        )
        if relation is None:
            errors["relation"] = _("There is no such relation; this filter is left out.")
        else:
            filters.relation_id, filters.relation_name = relation.id, relation.name
    elif name := args.get("relation_name", "").replace("\x00", "").strip()[:200]:
        # Typed without the picker (no JavaScript): a name that is exactly one visible relation's.
        named = session.scalars(
            select(Relation).where(func.lower(Relation.name) == name.lower(), relation_visible(user)).limit(2)
        ).all()
        if len(named) != 1:
            errors["relation"] = _("No one relation has exactly this name; pick it from the list.")
            filters.relation_name = name
        else:
            filters.relation_id, filters.relation_name = named[0].id, named[0].name
    state = args.get("open", "")
    # "1" is the old "open only" checkbox, still in bookmarks.
    states = {"": default_state, "all": "all", "1": "open", "open": "open", "closed": "closed", "0": "closed"}
    if state not in states:
        errors["open"] = _("Choose open, closed or all projects; this filter is left out.")
    filters.state = states.get(state, default_state)
    return filters, errors


@dataclass
class BoardColumn:
    """One status on the pipeline board: its first cards (most recently changed first) and how many
    projects it holds in all."""

    status: Choice | None
    projects: list[Project]
    count: int

    @property
    def more(self) -> int:
        return self.count - len(self.projects)


def pipeline_board(
    session: Session, user: User, filters: ProjectFilters, *, limit: int = BOARD_COLUMN_LIMIT
) -> list[BoardColumn]:
    """The board: a column per active status in the Settings order (an inactive one only while
    projects have it, "no status" only when some have none), each with at most ``limit`` cards of the
    projects ``user`` may see that match ``filters``. Three queries however many projects there are."""
    base = filters.query(user)
    ids = base.with_only_columns(Project.id, Project.status_id).subquery()
    counts: dict[int | None, int] = {
        status_id: int(n)
        for status_id, n in session.execute(select(ids.c.status_id, func.count()).group_by(ids.c.status_id)).tuples()
    }
    rank = (
        func.row_number()
        .over(partition_by=Project.status_id, order_by=(Project.updated_at.desc(), Project.id.desc()))
        .label("rank")
    )
    ranked = base.with_only_columns(Project.id, rank).subquery()
    cards = session.scalars(
        select(Project)
        .join(ranked, ranked.c.id == Project.id)
        .where(ranked.c.rank <= limit)
        .options(joinedload(Project.relation), joinedload(Project.responsible_user))
        .order_by(Project.updated_at.desc(), Project.id.desc())
    ).unique()
    by_status: dict[int | None, list[Project]] = {}
    for project in cards:
        by_status.setdefault(project.status_id, []).append(project)
    statuses = list(
        session.scalars(
            select(Choice).where(Choice.field == ChoiceField.status).order_by(Choice.sort_order, Choice.name)
        )
    )
    columns = []
    if counts.get(None):
        columns.append(BoardColumn(None, by_status.get(None, []), counts[None]))
    for status in statuses:
        shown = status.active if filters.status_id is None else status.id == filters.status_id
        shown = shown and not filters.no_status
        if shown or counts.get(status.id):
            columns.append(BoardColumn(status, by_status.get(status.id, []), counts.get(status.id, 0)))
    return columns


def set_project_status(
    session: Session, user: User, project: Project, status_id: int | None, *, expected_version: int | None
) -> Project:
    """Move a project to another status (a card dragged on the board). Whoever may see the project may,
    as in its form. Raises :class:`ValidationError` for a choice that is not an active status, and
    :class:`~hub.crm.access.StaleVersion` when the project changed after ``expected_version``: a card
    dragged on a stale board never overwrites what a colleague saved meanwhile."""
    errors: dict[str, str] = {}
    _validate_choices(session, {"status": status_id}, project, errors)
    if errors:
        raise ValidationError(errors)
    claim_version(session, project, expected_version)
    project.status_id = status_id
    session.flush()
    announce(session, RecordChanged("project", project.id, "updated"))
    return project
