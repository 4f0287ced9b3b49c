"""Relations (companies and persons) and their contacts: create, change, find."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session, aliased, selectinload

from hub.accounts.users import users_and_groups
from hub.crm.access import claim_version, may_manage_relation, project_visible, relation_visible
from hub.crm.events import AddressesAdded, Belonging, NumbersAdded, RecordChanged, announce
from hub.errors import NotFound, ValidationError
from hub.i18n import _
from hub.kept import kept
from hub.models import (
    Choice,
    Contact,
    EmailAddress,
    PhoneNumber,
    Project,
    Relation,
    RelationKind,
    RelationStatus,
    Tag,
    User,
    UserGroup,
    contact_tags,
    relation_tags,
)
from hub.models.crm import relation_groups, relation_users
from hub.paging import Page, Sort, paginate, sort_clause
from hub.phones import to_e164
from hub.text import fold, like_pattern

EMAIL_RE = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
# Mail from these domains never matches a relation by domain: thousands of people share them.
FREE_MAIL_DOMAINS = frozenset(
    [
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "hotmail.nl",
        "live.com",
        "live.nl",
        "msn.com",
        "yahoo.com",
        "yahoo.nl",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "gmx.com",
        "gmx.net",
        "gmx.de",
        "proton.me",
        "protonmail.com",
        "ziggo.nl",
        "kpnmail.nl",
        "planet.nl",
        "home.nl",
        "hetnet.nl",
        "xs4all.nl",
        "telfort.nl",
        "upcmail.nl",
        "casema.nl",
        "chello.nl",
        "quicknet.nl",
        "zonnet.nl",
        "online.nl",
        "tele2.nl",
        "versatel.nl",
        "freeler.nl",
        "mail.com",
        "yandex.com",
        "zoho.com",
        "fastmail.com",
    ]
)
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


@dataclass
class RelationInput:
    name: str
    kind: str = RelationKind.company.value
    street: str = ""
    postcode: str = ""
    city: str = ""
    country: str = "NL"
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    website: str = ""
    coc_number: str = ""
    vat_number: str = ""
    status: str = RelationStatus.lead.value
    owner_id: int | None = None
    domain: str = ""


@dataclass
class ContactInput:
    name: str
    function: str = ""
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)


def _clean_list(values: list[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        value = value.strip()
        if value and value.casefold() not in {s.casefold() for s in seen}:
            seen.append(value)
    return seen


def _check_emails(emails: list[str], errors: dict[str, str]) -> None:
    for email in emails:
        if not EMAIL_RE.match(email):
            errors["emails"] = _("%(value)s is not a valid e-mail address.", value=email)
            return


def _check_phones(phones: list[str], region: str, errors: dict[str, str]) -> None:
    for phone in phones:
        if to_e164(phone, region) is None:
            errors["phones"] = _("%(value)s is not a valid phone number.", value=phone)
            return


def _validate_relation(session: Session, data: RelationInput, region: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    data.name = data.name.strip()
    data.emails = _clean_list(data.emails)
    data.phones = _clean_list(data.phones)
    data.country = (data.country or "NL").strip().upper()
    data.domain = data.domain.strip().lower().removeprefix("@")
    if not data.name:
        errors["name"] = _("A relation needs a name.")
    elif len(data.name) > 200:
        errors["name"] = _("The name can be at most 200 characters.")
    if data.kind not in {k.value for k in RelationKind}:
        errors["kind"] = _("Choose company or person.")
    if data.status not in {s.value for s in RelationStatus}:
        errors["status"] = _("Choose lead, prospect, customer or inactive.")
    if not COUNTRY_RE.match(data.country):
        errors["country"] = _("Use a two-letter country code, such as NL.")
    if data.domain and (data.domain in FREE_MAIL_DOMAINS or "." not in data.domain):
        errors["domain"] = _("%(value)s is not a company mail domain.", value=data.domain)
    if data.owner_id is not None:
        owner = session.get(User, data.owner_id)
        if owner is None or not owner.is_active:
            errors["owner_id"] = _("Choose an active user.")
    _check_emails(data.emails, errors)
    _check_phones(data.phones, region, errors)
    for name in ("street", "postcode", "city", "website", "coc_number", "vat_number"):
        setattr(data, name, getattr(data, name).strip())
    return errors


def _set_addresses(session: Session, relation: Relation, contact: Contact | None, emails: list[str]) -> None:
    owner_filter = (
        EmailAddress.contact_id == contact.id
        if contact is not None
        else (EmailAddress.relation_id == relation.id) & EmailAddress.contact_id.is_(None)
    )
    existing = {row.address_key: row for row in session.scalars(select(EmailAddress).where(owner_filter))}
    wanted = {email.casefold(): email for email in emails}
    for key, row in existing.items():
        if key not in wanted:
            session.delete(row)
    for key, email in wanted.items():
        if key not in existing:
            session.add(
                EmailAddress(
                    relation_id=relation.id, contact_id=contact.id if contact else None, address=email, address_key=key
                )
            )


def _set_phones(session: Session, relation: Relation, contact: Contact | None, phones: list[str], region: str) -> None:
    owner_filter = (
        PhoneNumber.contact_id == contact.id
        if contact is not None
        else (PhoneNumber.relation_id == relation.id) & PhoneNumber.contact_id.is_(None)
    )
    for row in session.scalars(select(PhoneNumber).where(owner_filter)):
        session.delete(row)
    for phone in phones:
        session.add(
            PhoneNumber(
                relation_id=relation.id,
                contact_id=contact.id if contact else None,
                number=phone,
                e164=to_e164(phone, region) or "",
            )
        )


def _announce_numbers(
    session: Session, relation_id: int, contact_id: int | None, phones: list[str], region: str
) -> None:
    """Calls from or to these numbers that came first now show on the relation (telephony listens)."""
    numbers = [e164 for phone in phones if (e164 := to_e164(phone, region))]
    if numbers:
        announce(session, NumbersAdded(tuple(Belonging(relation_id, contact_id, n) for n in numbers)))


def save_relation(
    session: Session,
    data: RelationInput,
    relation: Relation | None = None,
    *,
    region: str = "NL",
    by: User | None = None,
    expected_version: int | None = None,
) -> Relation:
    """Create (``relation`` None) or change a relation; raises :class:`ValidationError`, and
    :class:`~hub.crm.access.StaleVersion` when ``expected_version`` is given and no longer stored.

    ``by``: the user saving (None: the system, such as an import). Only one who may manage the
    relation (its owner or an admin) may give it another owner.
    """
    errors = _validate_relation(session, data, region)
    changes_owner = relation is not None and data.owner_id != relation.owner_id
    if changes_owner and by is not None and relation is not None and not may_manage_relation(by, relation):
        errors["owner_id"] = _("Only the owner or an admin can change who owns this relation.")
    if errors:
        raise ValidationError(errors)
    if relation is not None:
        claim_version(session, relation, expected_version)
    created = relation is None
    if relation is None:
        relation = Relation(kind=RelationKind(data.kind), name=data.name, search_name=fold(data.name))
        session.add(relation)
    relation.kind = RelationKind(data.kind)
    relation.name = data.name
    relation.search_name = fold(data.name)
    relation.status = RelationStatus(data.status)
    for name in ("street", "postcode", "city", "country", "website", "coc_number", "vat_number", "domain"):
        setattr(relation, name, getattr(data, name))
    relation.owner_id = data.owner_id
    session.flush()
    _set_addresses(session, relation, None, data.emails)
    _set_phones(session, relation, None, data.phones, region)
    _announce_numbers(session, relation.id, None, data.phones, region)
    session.flush()
    announce(session, RecordChanged("relation", relation.id, "created" if created else "updated"))
    return relation


def get_relation(session: Session, user: User, relation_id: int) -> Relation:
    """The relation if ``user`` may see it; :class:`NotFound` otherwise."""
    relation = session.scalar(select(Relation).where(Relation.id == relation_id, relation_visible(user)))
    if relation is None:
        raise NotFound(relation_id)
    return relation


def relations_query(
    user: User,
    search: str = "",
    status: str = "",
    *,
    owner_id: int | None = None,
    city: str | None = None,
    updated_since: datetime | None = None,
) -> Select[tuple[Relation]]:
    query = select(Relation).where(relation_visible(user))
    if search.strip():
        query = query.where(Relation.search_name.like(like_pattern(search), escape="\\"))
    if status in {s.value for s in RelationStatus}:
        query = query.where(Relation.status == RelationStatus(status))
    if owner_id is not None:
        query = query.where(Relation.owner_id == owner_id)
    if city is not None:
        query = query.where(func.lower(Relation.city) == city.strip().lower())
    if updated_since is not None:
        query = query.where(Relation.updated_at >= updated_since)
    return query


# The relation list's statements, kept by the reader's access rule (kept per user by hub.crm.access)
# and the shape of its filters, the searched text bound at execution: the statement is then the same
# object on every request, and hub.paging.keyset_page keeps its page statements too (``kept``).
_KEPT_LISTS: dict[tuple[Any, ...], Select[Any]] = {}
KEPT_LISTS = 1024


def relation_list_rows(user: User, search: str = "", status: str = "") -> tuple[Select[Any], dict[str, Any]]:
    """:func:`relation_rows` of :func:`relations_query` as a kept statement, and the values to run
    it with (the searched text's pattern)."""
    searched = bool(search.strip())
    status = status if status in {s.value for s in RelationStatus} else ""

    def make() -> Select[Any]:
        query = relations_query(user, status=status)
        if searched:
            query = query.where(Relation.search_name.like(bindparam("search_pattern"), escape="\\"))
        return relation_rows(query)

    statement = kept(_KEPT_LISTS, (relation_visible(user), searched, status), make, KEPT_LISTS)
    return statement, ({"search_pattern": like_pattern(search)} if searched else {})


# The columns of a relation in the API's list (RelationSummary), and its name's sort key (the cursor's).
# Kind and status as the stored texts (the same SQL): the summary's model reads them as its enums, and
# turning each into one here first was a tenth of reading a row.
_API_LIST_COLUMNS = (
    Relation.id,
    type_coerce(Relation.kind, String).label("kind"),
    Relation.name,
    Relation.search_name,
    Relation.city,
    type_coerce(Relation.status, String).label("status"),
    Relation.owner_id,
    Relation.updated_at,
)


def relation_api_rows(
    user: User,
    *,
    search: str = "",
    status: str = "",
    owner_id: int | None = None,
    city: str | None = None,
    updated_since: datetime | None = None,
    tag_ids: list[int] | None = None,
) -> tuple[Select[Any], dict[str, Any]]:
    """:func:`relations_query` with the API's filters, as a kept statement of plain rows (the
    columns GET /relations shows, see hub.paging.keyset_page ``rows`` and ``kept``), and the values
    to run it with. The same rows as the query with the values written in: each filter compares
    the same expression with a bound value (``tag_ids``: relations carrying one of them, none for an
    empty list, as tags.relation_has_any). Built once per reader's rule and set of filters given:
    building and keying the statement cost as much as running it."""
    status = status if status in {s.value for s in RelationStatus} else ""
    values: dict[str, Any] = {}
    if search.strip():
        values["search_pattern"] = like_pattern(search)
    if owner_id is not None:
        values["owner_id"] = owner_id
    if city is not None:
        values["city"] = city.strip().lower()
    if updated_since is not None:
        values["updated_since"] = updated_since
    if tag_ids is not None:
        values["tag_ids"] = list(tag_ids)
    given = tuple(sorted(values))

    def make() -> Select[Any]:
        query = relations_query(user, status=status)
        if "search_pattern" in values:
            query = query.where(Relation.search_name.like(bindparam("search_pattern"), escape="\\"))
        if "owner_id" in values:
            query = query.where(Relation.owner_id == bindparam("owner_id"))
        if "city" in values:
            query = query.where(func.lower(Relation.city) == bindparam("city"))
        if "updated_since" in values:
            query = query.where(Relation.updated_at >= bindparam("updated_since"))
        if "tag_ids" in values:
            tagged = relation_tags.c.tag_id.in_(bindparam("tag_ids", expanding=True))
            query = query.where(exists().where(relation_tags.c.relation_id == Relation.id, tagged))
        return query.with_only_columns(*_API_LIST_COLUMNS)

    statement = kept(_KEPT_LISTS, ("api", relation_visible(user), status, given), make, KEPT_LISTS)
    return statement, values


# The ways a relation list may be ordered: the pages and the API page by these (cursor or number).
RELATION_SORTS = {
    "name": Sort(Relation.search_name, Relation.id, lambda r: r.search_name),
    "city": Sort(Relation.city, Relation.id, lambda r: r.city),
    "status": Sort(Relation.status, Relation.id, lambda r: r.status),
    "updated": Sort(Relation.updated_at, Relation.id, lambda r: r.updated_at),
}


# The owner a relation list joins, aliased once: making the alias anew cost a tenth of the page.
_OWNER = aliased(User)


def relation_rows(query: Select[tuple[Relation]]) -> Select[Any]:
    """``query`` (a relations_query) as a list's rows: the columns a row shows and its owner's name,
    plain values instead of Relation and User objects (hub.paging.keyset_page ``rows``)."""
    owner = _OWNER
    return query.with_only_columns(
        Relation.id,
        Relation.name,
        Relation.search_name,
        Relation.city,
        Relation.status,
        Relation.updated_at,
        owner.name.label("owner_name"),
    ).outerjoin(owner, owner.id == Relation.owner_id)


def list_relations(
    session: Session,
    user: User,
    *,
    search: str = "",
    status: str = "",
    sort: str = "name",
    page: int = 1,
    per_page: int = 25,
) -> tuple[Page[Relation], str]:
    sort, order = sort_clause(RELATION_SORTS, sort, "name")
    query = relations_query(user, search, status).order_by(*order, Relation.id).options(selectinload(Relation.owner))
    return paginate(session, query, page, per_page), sort


def delete_relation(
    session: Session, relation: Relation, *, by: User | None = None, expected_version: int | None = None
) -> None:
    """Delete a relation without projects; ``by`` as for :func:`set_relation_linked`."""
    from hub.models import Project

    if by is not None and not may_manage_relation(by, relation):
        raise NotFound(relation.id)
    claim_version(session, relation, expected_version)
    if session.scalar(select(func.count()).select_from(Project).where(Project.relation_id == relation.id)):
        raise ValidationError(_("This relation still has projects; delete or move them first."))
    announce(session, RecordChanged("relation", relation.id, "deleted"))
    session.delete(relation)
    session.flush()


def _validate_contact(data: ContactInput, region: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    data.name = data.name.strip()
    data.function = data.function.strip()
    data.emails = _clean_list(data.emails)
    data.phones = _clean_list(data.phones)
    if not data.name:
        errors["name"] = _("A contact needs a name.")
    elif len(data.name) > 200:  # (the column's size: refused here for every caller, not a database error)
        errors["name"] = _("The name can be at most 200 characters.")
    if len(data.function) > 200:
        errors["function"] = _("The function can be at most 200 characters.")
    _check_emails(data.emails, errors)
    _check_phones(data.phones, region, errors)
    return errors


def save_contact(
    session: Session,
    relation: Relation,
    data: ContactInput,
    contact: Contact | None = None,
    *,
    region: str = "NL",
    expected_version: int | None = None,
) -> Contact:
    """Create or change a contact; :class:`~hub.crm.access.StaleVersion` as for :func:`save_relation`."""
    errors = _validate_contact(data, region)
    if errors:
        raise ValidationError(errors)
    if contact is not None:
        claim_version(session, contact, expected_version)
    created = contact is None
    if contact is None:
        contact = Contact(relation_id=relation.id, name=data.name)
        session.add(contact)
    contact.name = data.name
    contact.function = data.function
    session.flush()
    _set_addresses(session, relation, contact, data.emails)
    _set_phones(session, relation, contact, data.phones, region)
    session.flush()
    # Mail (and later calls) that came before this contact existed now shows on the relation too.
    announce(session, AddressesAdded(tuple(Belonging(relation.id, contact.id, a.casefold()) for a in data.emails)))
    _announce_numbers(session, relation.id, contact.id, data.phones, region)
    announce(session, RecordChanged("contact", contact.id, "created" if created else "updated"))
    session.expire(contact, ["emails", "phones"])
    return contact


def get_contact(session: Session, user: User, contact_id: int) -> Contact:
    contact = session.scalar(select(Contact).join(Relation).where(Contact.id == contact_id, relation_visible(user)))
    if contact is None:
        raise NotFound(contact_id)
    return contact


def delete_contact(session: Session, contact: Contact, *, expected_version: int | None = None) -> None:
    claim_version(session, contact, expected_version)
    announce(session, RecordChanged("contact", contact.id, "deleted"))
    session.delete(contact)
    session.flush()


def set_relation_linked(
    session: Session,
    relation: Relation,
    user_ids: list[int],
    group_ids: list[int],
    *,
    by: User | None = None,
    expected_version: int | None = None,
) -> None:
    """Link users and groups to a relation; nobody linked makes it visible to all staff again. The
    relation's projects, contacts and mail follow (hub.crm.access).

    ``by``: the user asking (None: the system); only its owner or an admin may, for others it is
    :class:`NotFound`.
    """
    if by is not None and not may_manage_relation(by, relation):
        raise NotFound(relation.id)
    linked = users_and_groups(session, user_ids, group_ids)
    claim_version(session, relation, expected_version)
    relation.linked_users, relation.linked_groups = linked
    session.flush()


def relation_contacts(session: Session, relation: Relation) -> list[Contact]:
    """The relation's contacts by name, addresses and numbers loaded (a constant number of queries)."""
    query = (
        select(Contact)
        .where(Contact.relation_id == relation.id)
        .order_by(Contact.name, Contact.id)
        .options(selectinload(Contact.emails), selectinload(Contact.phones))
    )
    return list(session.scalars(query))


# --- one relation as its page and GET /relations/{id} show it: plain values, two queries ----------


@dataclass(frozen=True, slots=True)
class Named:
    """A user, group or dropdown choice as a relation's page shows it."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class ShownPhone:
    number: str


@dataclass(frozen=True, slots=True)
class ShownAddress:
    address: str


@dataclass(frozen=True, slots=True)
class ShownTag:
    id: int
    name: str
    colour: str


@dataclass(slots=True)
class ShownContact:
    id: int
    name: str
    function: str
    emails: list[ShownAddress] = field(default_factory=list)
    phones: list[ShownPhone] = field(default_factory=list)
    tags: list[ShownTag] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ShownName:
    """A project's status or responsible user, as the relation's page names them."""

    name: str


@dataclass(frozen=True, slots=True)
class ShownProject:
    id: int
    name: str
    status: ShownName | None
    responsible_user: ShownName | None
    end_date: date | None


@dataclass(slots=True)
class ShownProjects:
    """The first :data:`SHEET_PROJECTS` projects (as a :class:`~hub.paging.Page` has them) and
    whether there are more."""

    items: list[ShownProject] = field(default_factory=list)
    has_next: bool = False


# The relation's page shows its 50 most recently changed projects, and a link to all when there are more.
SHEET_PROJECTS = 50


@dataclass(slots=True)
class RelationSheet:
    """What a relation's page and the API show of it, read as plain values (see
    :func:`relation_sheet`): the attributes they read of a :class:`Relation`, under the same names
    (addresses, numbers, users, groups and tags as small objects with the attributes read of them)."""

    id: int
    kind: RelationKind
    name: str
    street: str
    postcode: str
    city: str
    country: str
    website: str
    coc_number: str
    vat_number: str
    status: RelationStatus
    owner_id: int | None
    domain: str
    version: int
    created_at: datetime
    updated_at: datetime
    owner: Named | None
    phones: list[ShownPhone] = field(default_factory=list)
    emails: list[ShownAddress] = field(default_factory=list)
    linked_users: list[Named] = field(default_factory=list)
    linked_groups: list[Named] = field(default_factory=list)
    tags: list[ShownTag] = field(default_factory=list)
    # Only read for the page (``page=True``): the API lists these at their own URLs.
    contacts: list[ShownContact] = field(default_factory=list)
    projects: ShownProjects = field(default_factory=ShownProjects)
    # The rows it was read from, as read (hashable): everything the sheet holds, for a page kept
    # per what it shows (web/relations.py).
    shown: tuple[Any, ...] = field(default=(), compare=False, repr=False)


_SHEET_COLUMNS = (
    "id",
    "kind",
    "name",
    "street",
    "postcode",
    "city",
    "country",
    "website",
    "coc_number",
    "vat_number",
    "status",
    "owner_id",
    "domain",
    "version",
    "created_at",
    "updated_at",
)


@functools.lru_cache(maxsize=4096)
def _sheet_statement(rule: ColumnElement[bool]) -> Select[Any]:
    # One statement per visibility rule (each user's is kept by hub.crm.access), kept: SQLAlchemy keys
    # its compiled SQL by the statement's cache key, which a kept statement computes only once.
    owner = _OWNER
    return (
        select(*(getattr(Relation, name) for name in _SHEET_COLUMNS), owner.name.label("owner_name"))
        .outerjoin(owner, owner.id == Relation.owner_id)
        .where(Relation.id == bindparam("relation_id"), rule)
    )


# What belongs to a relation, in one query of rows (kind, key, parent, text, extra, extra2, day):
# each kind in the order the Relation object gives it (see _links_statement).
_PHONE, _EMAIL, _USER, _GROUP, _TAG, _CONTACT, _CONTACT_EMAIL, _CONTACT_PHONE, _CONTACT_TAG, _PROJECT = range(10)


@functools.lru_cache(maxsize=4096)
def _links_statement(project_rule: ColumnElement[bool], page: bool) -> Select[Any]:
    """One UNION ALL of the relation's numbers, addresses, linked users and groups and tags, and
    for the page its contacts (with theirs) and first projects the reader may see, ordered by kind
    and then as each is shown: by name (``sort``, in the database's collation, as the ORM's order
    by name), by id (``tie``), projects by last change (``moment``) newest first. Kept per rule."""
    relation_id: Any = bindparam("relation_id")
    # Typed NULLs: PostgreSQL types a UNION's columns pair by pair, and two untyped NULLs are text.
    no_text: Any = cast(null(), String)
    no_id: Any = cast(null(), Integer)

    def arm(
        kind: int,
        key: Any,
        text: Any,
        *,
        parent: Any = no_id,
        extra: Any = no_text,
        extra2: Any = no_text,
        day: Any = None,
        moment: Any = None,
        sort: Any = None,
        tie: Any = None,
    ) -> Select[Any]:
        return select(
            literal_column(str(kind), Integer).label("kind"),
            key.label("key"),
            parent.label("parent"),
            text.label("text"),
            extra.label("extra"),
            extra2.label("extra2"),
            (cast(null(), Project.end_date.type) if day is None else day).label("day"),
            (cast(null(), Project.updated_at.type) if moment is None else moment).label("moment"),
            (literal_column("''", String) if sort is None else sort).label("sort"),
            (key if tie is None else tie).label("tie"),
        )

    of_relation = EmailAddress.relation_id == relation_id
    arms = [
        # "No contact" as an expression no index covers: SQLite's statistics may call contact_id IS
        # NULL rare and read every relation's own numbers through that index; so it reads this one's.
        arm(_PHONE, PhoneNumber.id, PhoneNumber.number).where(
            PhoneNumber.relation_id == relation_id, func.coalesce(PhoneNumber.contact_id, 0) == 0
        ),
        arm(_EMAIL, EmailAddress.id, EmailAddress.address).where(of_relation, EmailAddress.contact_id.is_(None)),
        arm(_USER, User.id, User.name, sort=User.name)
        .join(relation_users, relation_users.c.user_id == User.id)
        .where(relation_users.c.relation_id == relation_id),
        arm(_GROUP, UserGroup.id, UserGroup.name, sort=UserGroup.name)
        .join(relation_groups, relation_groups.c.group_id == UserGroup.id)
        .where(relation_groups.c.relation_id == relation_id),
        arm(_TAG, Tag.id, Tag.name, extra=Tag.colour, sort=Tag.name_key)
        .join(relation_tags, relation_tags.c.tag_id == Tag.id)
        .where(relation_tags.c.relation_id == relation_id),
    ]
    if page:
        arms += [
            arm(_CONTACT, Contact.id, Contact.name, extra=Contact.function, sort=Contact.name).where(
                Contact.relation_id == relation_id
            ),
            # A contact's addresses and numbers by its own id (its relation's id is on them too,
            # but the ORM's contact.emails goes by contact_id; so does this).
            arm(_CONTACT_EMAIL, EmailAddress.id, EmailAddress.address, parent=EmailAddress.contact_id)
            .join(Contact, Contact.id == EmailAddress.contact_id)
            .where(Contact.relation_id == relation_id),
            arm(_CONTACT_PHONE, PhoneNumber.id, PhoneNumber.number, parent=PhoneNumber.contact_id)
            .join(Contact, Contact.id == PhoneNumber.contact_id)
            .where(Contact.relation_id == relation_id),
            arm(_CONTACT_TAG, Tag.id, Tag.name, parent=contact_tags.c.contact_id, extra=Tag.colour, sort=Tag.name_key)
            .join(contact_tags, contact_tags.c.tag_id == Tag.id)
            .join(Contact, Contact.id == contact_tags.c.contact_id)
            .where(Contact.relation_id == relation_id),
            _projects_arm(arm, project_rule, relation_id),
        ]
    linked = union_all(*arms).subquery()
    c = linked.c
    return select(c.kind, c.key, c.parent, c.text, c.extra, c.extra2, c.day).order_by(
        c.kind, c.moment.desc(), c.sort, c.tie
    )


def _projects_arm(arm: Callable[..., Select[Any]], rule: ColumnElement[bool], relation_id: Any) -> Select[Any]:
    """The first SHEET_PROJECTS + 1 projects of the relation the reader may see, newest change first
    (the one more says whether there are more), with their status's and responsible user's names.
    A LIMIT inside a UNION needs a subquery of its own."""
    first = (
        select(
            Project.id,
            Project.name,
            select(Choice.name).where(Choice.id == Project.status_id).scalar_subquery().label("status_name"),
            select(User.name).where(User.id == Project.responsible_user_id).scalar_subquery().label("responsible"),
            Project.end_date,
            Project.updated_at,
        )
        .where(Project.relation_id == relation_id, rule)
        .order_by(Project.updated_at.desc(), Project.id.desc())
        .limit(SHEET_PROJECTS + 1)
        .subquery()
    )
    # The negated id as the tie: the newest first among projects changed at the same moment.
    return arm(
        _PROJECT,
        first.c.id,
        first.c.name,
        extra=first.c.status_name,
        extra2=first.c.responsible,
        day=first.c.end_date,
        moment=first.c.updated_at,
        tie=-first.c.id,
    )


def relation_sheet(session: Session, user: User, relation_id: int, *, page: bool = True) -> RelationSheet:
    """The relation if ``user`` may see it (:class:`NotFound` otherwise, as a missing one), as plain
    values: one query for its columns and owner's name, one for all that belongs to it: numbers,
    addresses, linked users and groups, tags, and with ``page`` its contacts (with their addresses,
    numbers and tags) and the first projects ``user`` may see. Its page showed it from Relation,
    Contact and Project objects in 14 queries and lazy loads; what changes a relation still loads
    it (:func:`get_relation`)."""
    connection = session.connection()
    row = connection.execute(_sheet_statement(relation_visible(user)), {"relation_id": relation_id}).one_or_none()
    if row is None:
        raise NotFound(relation_id)
    values = row._mapping
    owner = values["owner_id"]
    sheet = RelationSheet(
        **{name: values[name] for name in _SHEET_COLUMNS},
        owner=None if owner is None else Named(owner, values["owner_name"]),
    )
    statement = _links_statement(project_visible(user), page)
    contacts: dict[int, ShownContact] = {}
    projects = sheet.projects
    linked = connection.execute(statement, {"relation_id": relation_id}).all()
    sheet.shown = (page, row, tuple(linked))
    for kind, key, parent, text, extra, extra2, day in linked:
        if kind == _PHONE:
            sheet.phones.append(ShownPhone(text))
        elif kind == _EMAIL:
            sheet.emails.append(ShownAddress(text))
        elif kind == _USER:
            sheet.linked_users.append(Named(key, text))
        elif kind == _GROUP:
            sheet.linked_groups.append(Named(key, text))
        elif kind == _TAG:
            sheet.tags.append(ShownTag(key, text, extra))
        elif kind == _CONTACT:
            contacts[key] = ShownContact(key, text, extra)
            sheet.contacts.append(contacts[key])
        elif kind == _CONTACT_EMAIL:
            contacts[parent].emails.append(ShownAddress(text))
        elif kind == _CONTACT_PHONE:
            contacts[parent].phones.append(ShownPhone(text))
        elif kind == _CONTACT_TAG:
            contacts[parent].tags.append(ShownTag(key, text, extra))
        elif len(projects.items) < SHEET_PROJECTS:
            status = None if extra is None else ShownName(extra)
            responsible = None if extra2 is None else ShownName(extra2)
            projects.items.append(ShownProject(key, text, status, responsible, day))
        else:
            projects.has_next = True
    return sheet
