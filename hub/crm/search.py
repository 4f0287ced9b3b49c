"""Search: contacts, relations, projects and e-mails matching a text, only what the user may see.

What is matched (always a substring, case- and accent-insensitive: "cafe zoe" finds "Café Zoë"):

- contacts: name, e-mail address, phone number;
- relations: name, city, KvK (Chamber of Commerce) number, VAT number, phone number;
- projects: name, number (``123``, ``P-123``, ``[P-123]``), the four free texts and the free choices;
- e-mails: subject, sender's name and address.

A phone number is matched however it is typed: "030 231", "+31 30 231…", "0031 (0)30-231" become
the start of the stored E.164 form (+3130231…), bare digits ("231 45") any part of it.

Visibility is the lists' own rule (hub.crm.access; for e-mails the mail capability's rule,
hub.mail.privacy.email_visible, which the caller passes in: the core imports no capability) in the
same SQL, so a hidden object is never found, never counted. Each kind is ranked (exact matches first, then
names that start with the text, then the rest, each by name; e-mails newest first) and paged by a
cursor over that order. A search costs a constant number of statements however many rows match:
one page per kind asked for (a first page counts its kind in the same scan), one that counts the
other kinds, and three small ones that load the contacts' addresses and numbers and the relations'
numbers.

How matching is made fast (the trade-offs are in migrations/versions/0010_search.py): on PostgreSQL
``hub_fold(column) LIKE '%text%'``, answered from pg_trgm GIN indexes (the typed text folded by the
same ``hub_fold``: one statement more); on SQLite a scan with SQLite's
own LIKE (case-insensitive for ASCII, at C speed), where only the rare non-ASCII rows go through a
Python ``hub_fold``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import ColumnElement, LargeBinary, Select, and_, case, false, func, literal, or_, select, union
from sqlalchemy.orm import Session, joinedload, load_only, selectinload

from hub.crm.access import project_visible, relation_visible
from hub.models import (
    FREE_TEXT_FIELDS,
    Choice,
    ChoiceField,
    Contact,
    Email,
    EmailAddress,
    PhoneNumber,
    Project,
    Relation,
    User,
)
from hub.models.crm import FREE_CHOICE_FIELDS
from hub.paging import MAX_ID, BadCursor
from hub.text import fold

KINDS = ("contacts", "relations", "projects", "emails")
# Longer texts are cut to this: nobody types more into a search box, and every character costs.
MAX_LENGTH = 200
MIN_PHONE_DIGITS = 3
# Exact, starts with, anywhere: a row's rank within its kind.
EXACT, PREFIX, ANYWHERE = 0, 1, 2

# Which e-mails a user may see, as SQL: hub.mail.privacy.email_visible.
EmailRule = Callable[[User], ColumnElement[bool]]

_PHONE_TEXT = re.compile(r"^[+\d\s().\-/]+$")
_PROJECT_NUMBER = re.compile(r"^\[?\s*(?:p\s*-?\s*)?#?(\d{1,10})\s*\]?$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s.\-/]+")


# --- the text -------------------------------------------------------------------------------------


def clean(text: str) -> tuple[str, bool]:
    """The text to search for, and whether it was cut: NUL bytes, lone surrogates and other control
    characters dropped (nobody typed them; PostgreSQL refuses NUL), spaces collapsed, at most
    :data:`MAX_LENGTH` characters."""
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or (ch.isprintable() and unicodedata.category(ch) != "Cs")
    )
    collapsed = " ".join(kept.split())
    return collapsed[:MAX_LENGTH].strip(), len(collapsed) > MAX_LENGTH


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class Terms:
    """One search text, read every way it is matched."""

    text: str
    folded: str
    # The folded text without spaces, dots, dashes and slashes (KvK/VAT typed in groups); "" if the same.
    compact: str = ""
    # The number as E.164 when the text is a whole phone number; a LIKE pattern on E.164 when it is
    # (part of) one.
    phone_exact: str | None = None
    phone_pattern: str | None = None
    # A project number ("123", "P-123", "[P-123]").
    number: int | None = None

    @property
    def contains(self) -> str:
        return f"%{_escape(self.folded)}%"

    @property
    def starts(self) -> str:
        return f"{_escape(self.folded)}%"


def _phone_terms(text: str, region: str) -> tuple[str | None, str | None]:
    if not _PHONE_TEXT.match(text):
        return None, None
    # "+31 (0)30 …": the (0) is the trunk prefix written for people dialling inside the country.
    text = text.replace("(0)", " ")
    digits = re.sub(r"\D", "", text)
    if len(digits) < MIN_PHONE_DIGITS:
        return None, None
    exact = None
    try:
        parsed = phonenumbers.parse("+" + digits[2:] if digits.startswith("00") else text, region)
        if phonenumbers.is_possible_number(parsed):
            exact = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    if text.lstrip().startswith("+"):
        prefix = "+" + digits
    elif digits.startswith("00"):
        prefix = "+" + digits[2:]
    elif digits.startswith("0"):
        # A national number: the region's country code in place of the trunk 0 ("030" → "+3130").
        prefix = f"+{phonenumbers.country_code_for_region(region)}{digits[1:]}"
    else:
        return exact, f"%{digits}%"
    return exact, f"{prefix}%"


def read_terms(text: str, region: str = "NL", folded: str | None = None) -> Terms | None:
    """The :class:`Terms` of a cleaned search text; None when nothing is left to search for.
    ``folded``: the text as the database folds it (default: :func:`hub.text.fold`)."""
    folded = (fold(text) if folded is None else folded).strip()
    if not folded:
        return None
    compact = _SEPARATORS.sub("", folded)
    phone_exact, phone_pattern = _phone_terms(text, region)
    number_match = _PROJECT_NUMBER.match(text)
    number = int(number_match.group(1)) if number_match and int(number_match.group(1)) <= MAX_ID else None
    return Terms(
        text=text,
        folded=folded,
        compact=compact if compact and compact != folded else "",
        phone_exact=phone_exact,
        phone_pattern=phone_pattern,
        number=number,
    )


# --- matching, per database -------------------------------------------------------------------------


@functools.lru_cache(maxsize=65_536)
def _cached_fold(value: str) -> str:
    return fold(value)


def _python_fold(value: Any) -> Any:
    # Names repeat (the count and the page of one search read the same rows; people share names);
    # long texts (subjects) are folded afresh, so the cache stays a few megabytes at most.
    if not isinstance(value, str):
        return value
    return _cached_fold(value) if len(value) <= 200 else fold(value)


@dataclass(frozen=True)
class _Match:
    """SQL that matches folded text, the way the database at hand does it fastest."""

    sqlite: bool

    @staticmethod
    def _non_ascii(column: Any) -> ColumnElement[bool]:
        # More bytes than characters: something beyond ASCII, which may need folding.
        return func.length(column) != func.length(func.cast(column, LargeBinary))

    def contains(self, column: Any, pattern: str) -> ColumnElement[bool]:
        """``column``, folded, is LIKE ``pattern`` (a folded, escaped LIKE pattern)."""
        if self.sqlite:
            # SQLite's LIKE ignores case for ASCII by itself: only rows with other characters need
            # folding, and only those pay for the call into Python.
            return or_(
                column.like(pattern, escape="\\"),
                and_(self._non_ascii(column), func.hub_fold(column).like(pattern, escape="\\")),
            )
        return func.hub_fold(column).like(pattern, escape="\\")

    def equals(self, column: Any, folded: str) -> ColumnElement[bool]:
        """``column``, folded, is ``folded``."""
        return self.contains(column, _escape(folded))

    def text(self, column: Any, terms: Terms) -> ColumnElement[bool]:
        """``column`` holds the text (or, for numbers typed in groups, its compact form)."""
        clause = self.contains(column, terms.contains)
        if terms.compact:
            clause = or_(clause, self.contains(column, f"%{_escape(terms.compact)}%"))
        return clause

    def phone(self, column: Any, terms: Terms) -> ColumnElement[bool]:
        if terms.phone_pattern is None:
            return false()
        if self.sqlite and not terms.phone_pattern.startswith("%"):
            # A prefix: GLOB is case-sensitive, so SQLite reads it from the E.164 index.
            return column.op("GLOB")(terms.phone_pattern[:-1] + "*")
        if self.sqlite:
            return column.like(terms.phone_pattern)
        return func.hub_fold(column).like(terms.phone_pattern)


def _register_fold(session: Session) -> bool:
    """Whether the session's database is SQLite; there, give its connection ``hub_fold`` (PostgreSQL
    has it from migration 0010). No statement is sent."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return False
    driver = connection.connection.driver_connection
    if driver is not None:
        driver.create_function("hub_fold", 1, _python_fold, deterministic=True)
    return True


# --- what each kind is --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    """One kind of result: its matching rows (visibility included), rank, order key and loading."""

    base: Select[Any]
    model: Any
    rank: ColumnElement[int]
    key: Any
    descending: bool = False
    options: tuple[Any, ...] = ()
    key_is_moment: bool = False


def _ids(branches: list[Select[Any]]) -> Any:
    """The ids any branch finds. A UNION of separate SELECTs, not one OR over tables: each branch
    is answered from its own index (PostgreSQL's trigram indexes, the E.164 and choice indexes)
    where an OR across a subquery would make the database scan every row."""
    return union(*branches)


def _rank(exact: ColumnElement[bool], prefix: ColumnElement[bool]) -> ColumnElement[int]:
    return case((exact, literal(EXACT)), (prefix, literal(PREFIX)), else_=literal(ANYWHERE))


def _relations(user: User, terms: Terms, m: _Match) -> _Kind:
    own_phone = select(PhoneNumber.relation_id).where(PhoneNumber.contact_id.is_(None))
    texts = or_(
        m.contains(Relation.name, terms.contains),
        m.contains(Relation.city, terms.contains),
        m.text(Relation.coc_number, terms),
        m.text(Relation.vat_number, terms),
    )
    branches: list[Select[Any]] = [select(Relation.id).where(texts)]
    if terms.phone_pattern:
        branches.append(own_phone.where(m.phone(PhoneNumber.e164, terms)))
    matched = Relation.id.in_(_ids(branches))
    exact_number = [m.equals(Relation.coc_number, terms.folded), m.equals(Relation.vat_number, terms.folded)]
    if terms.compact:
        exact_number += [
            m.equals(Relation.coc_number, terms.compact),
            m.equals(Relation.vat_number, terms.compact),
        ]
    if terms.phone_exact:
        exact_number.append(Relation.id.in_(own_phone.where(PhoneNumber.e164 == terms.phone_exact)))
    rank = _rank(or_(m.equals(Relation.name, terms.folded), *exact_number), m.contains(Relation.name, terms.starts))
    # The cheap text test first: the access rule's subqueries then run only for rows that match.
    base = select(Relation).where(matched, relation_visible(user))
    return _Kind(base, Relation, rank, Relation.search_name, options=(selectinload(Relation.phones),))


def _contacts(user: User, terms: Terms, m: _Match) -> _Kind:
    addresses = select(EmailAddress.contact_id).where(EmailAddress.contact_id.is_not(None))
    numbers = select(PhoneNumber.contact_id).where(PhoneNumber.contact_id.is_not(None))
    branches: list[Select[Any]] = [
        select(Contact.id).where(m.contains(Contact.name, terms.contains)),
        addresses.where(m.contains(EmailAddress.address_key, terms.contains)),
    ]
    if terms.phone_pattern:
        branches.append(numbers.where(m.phone(PhoneNumber.e164, terms)))
    matched = Contact.id.in_(_ids(branches))
    exact = [
        m.equals(Contact.name, terms.folded),
        Contact.id.in_(addresses.where(EmailAddress.address_key == terms.folded)),
    ]
    if terms.phone_exact:
        exact.append(Contact.id.in_(numbers.where(PhoneNumber.e164 == terms.phone_exact)))
    rank = _rank(or_(*exact), m.contains(Contact.name, terms.starts))
    # A contact is visible with its relation: the visible relations' ids are read once, and the
    # contacts scanned in their own order, rather than each relation's contacts looked up in turn.
    # ("+ 0": SQLite would otherwise look the contacts up relation by relation in its index.)
    visible = (Contact.relation_id + 0).in_(select(Relation.id).where(relation_visible(user)))
    base = select(Contact).where(matched, visible)
    options = (joinedload(Contact.relation), selectinload(Contact.emails), selectinload(Contact.phones))
    return _Kind(base, Contact, rank, Contact.name, options=options)


def _projects(user: User, terms: Terms, m: _Match) -> _Kind:
    # A free choice's name matches: the projects with that choice in its field (a choice only ever
    # sits in its own field, so one list of ids serves all five).
    choices = select(Choice.id).where(
        Choice.field.in_([ChoiceField(f) for f in FREE_CHOICE_FIELDS]), m.contains(Choice.name, terms.contains)
    )
    texts = or_(
        m.contains(Project.name, terms.contains),
        *(m.contains(getattr(Project, name), terms.contains) for name in FREE_TEXT_FIELDS),
        *([Project.id == terms.number] if terms.number is not None else []),
    )
    branches: list[Select[Any]] = [select(Project.id).where(texts)]
    branches += [select(Project.id).where(getattr(Project, f"{name}_id").in_(choices)) for name in FREE_CHOICE_FIELDS]
    matched = Project.id.in_(_ids(branches))
    exact = m.equals(Project.name, terms.folded)
    if terms.number is not None:
        exact = or_(Project.id == terms.number, exact)
    rank = _rank(exact, m.contains(Project.name, terms.starts))
    base = select(Project).where(matched, project_visible(user))
    options = (joinedload(Project.relation), joinedload(Project.status))
    return _Kind(base, Project, rank, Project.name, options=options)


def _emails(user: User, terms: Terms, m: _Match, visible: EmailRule) -> _Kind:
    matched = or_(
        m.contains(Email.subject, terms.contains),
        m.contains(Email.from_name, terms.contains),
        m.contains(Email.from_address, terms.contains),
    )
    exact = or_(m.equals(Email.from_address, terms.folded), m.equals(Email.subject, terms.folded))
    rank = _rank(exact, m.contains(Email.subject, terms.starts))
    base = select(Email).where(matched, visible(user))
    # The list shows a summary: the bodies (often large) stay in the database.
    summary = load_only(
        Email.id,
        Email.message_id,
        Email.subject,
        Email.from_address,
        Email.from_name,
        Email.sent_at,
        Email.stored_at,
        Email.thread_key,
        Email.has_attachments,
        Email.size,
    )
    key = func.coalesce(Email.sent_at, Email.stored_at)
    return _Kind(base, Email, rank, key, descending=True, options=(summary,), key_is_moment=True)


_BUILDERS: dict[str, Callable[[User, Terms, _Match], _Kind]] = {
    "contacts": _contacts,
    "relations": _relations,
    "projects": _projects,
}


# --- cursors --------------------------------------------------------------------------------------------


def _make_cursor(kind: str, rank: int, key: Any, row_id: int) -> str:
    value = key.isoformat() if isinstance(key, datetime) else key
    payload = json.dumps([kind, rank, value, row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _read_cursor(cursor: str, kind: str, moment: bool) -> tuple[int, Any, int]:
    try:
        name, rank, value, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        ok = (
            name == kind
            and type(rank) is int
            and EXACT <= rank <= ANYWHERE
            and type(row_id) is int
            and 0 < row_id <= MAX_ID
            and isinstance(value, str)
            and not any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in value)
        )
        if not ok:
            raise BadCursor(cursor)
        return rank, (datetime.fromisoformat(value) if moment else value), row_id
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error) as error:
        raise BadCursor(cursor) from error


def _after(spec: _Kind, rank: int, key: Any, row_id: int) -> ColumnElement[bool]:
    ident = spec.model.id
    key_beyond = spec.key < key if spec.descending else spec.key > key
    id_beyond = ident < row_id if spec.descending else ident > row_id
    return or_(spec.rank > rank, and_(spec.rank == rank, or_(key_beyond, and_(spec.key == key, id_beyond))))


# --- searching ---------------------------------------------------------------------------------------------


@dataclass
class Group:
    """One kind's results: how many match in all, one page of them, the cursor of the next page."""

    kind: str
    total: int
    items: list[Any] = field(default_factory=list)
    next_cursor: str | None = None
    # The cursor this page was read after (None: the first page).
    cursor: str | None = None


@dataclass
class Results:
    text: str
    # The text was longer than MAX_LENGTH and was cut.
    truncated: bool
    groups: list[Group]

    @property
    def total(self) -> int:
        return sum(g.total for g in self.groups)

    def group(self, kind: str) -> Group | None:
        return next((g for g in self.groups if g.kind == kind), None)


def search(
    session: Session,
    user: User,
    text: str,
    *,
    kinds: tuple[str, ...] = KINDS,
    cursor: str | None = None,
    per_page: int = 10,
    region: str = "NL",
    emails_visible: EmailRule | None = None,
) -> Results:
    """Search for ``text`` as ``user``: every kind counted, a page of each of ``kinds`` read (the
    others' groups have no items); ``cursor`` (of the one kind asked for) reads on.

    ``emails_visible``: the mail capability's visibility rule (hub.mail.privacy.email_visible); without
    it e-mails are not searched. Raises :class:`~hub.paging.BadCursor` for a cursor this search did
    not give out.
    """
    cleaned, truncated = clean(text)
    searched = tuple(k for k in KINDS if k != "emails" or emails_visible is not None)
    paged = tuple(k for k in searched if k in kinds)
    if not fold(cleaned):
        return Results(cleaned, truncated, [Group(kind, 0) for kind in searched])
    m = _Match(sqlite=_register_fold(session))
    # PostgreSQL folds the typed text with the very function its indexes hold, so both always agree.
    folded = None if m.sqlite else session.scalar(select(func.hub_fold(cleaned)))
    terms = read_terms(cleaned, region, folded)
    if terms is None:
        return Results(cleaned, truncated, [Group(kind, 0) for kind in searched])
    builders = dict(_BUILDERS)
    if emails_visible is not None:
        rule = emails_visible
        builders["emails"] = lambda user, terms, m: _emails(user, terms, m, rule)
    specs = {kind: builders[kind](user, terms, m) for kind in searched}
    after = None
    if cursor:
        if len(paged) != 1:
            raise BadCursor(cursor)
        spec = specs[paged[0]]
        after = _after(spec, *_read_cursor(cursor, paged[0], spec.key_is_moment))
    # A first page counts its kind itself (count(*) OVER (), in the same scan); the other kinds, and
    # a kind read after a cursor, are counted together in one statement. Same conditions either
    # way: what is hidden is not counted.
    counted_in_page = [k for k in paged if after is None]
    apart = [k for k in specs if k not in counted_in_page]
    totals: dict[str, int] = {}
    if apart:
        row = session.execute(
            select(
                *(
                    select(func.count())
                    .select_from(specs[k].base.with_only_columns(specs[k].model.id).subquery())
                    .scalar_subquery()
                    for k in apart
                )
            )
        ).one()
        totals = {k: int(n or 0) for k, n in zip(apart, row, strict=True)}
    groups = []
    for kind, spec in specs.items():
        group = Group(kind, totals.get(kind, 0), cursor=cursor if after is not None else None)
        groups.append(group)
        if kind in paged and (kind in counted_in_page or group.total):
            _read_page(session, spec, group, after, per_page, count=kind in counted_in_page)
    return Results(cleaned, truncated, groups)


def _read_page(session: Session, spec: _Kind, group: Group, after: Any, per_page: int, *, count: bool) -> None:
    rank, key = spec.rank.label("search_rank"), spec.key.label("search_key")
    columns = [rank, key, func.count().over().label("search_total")] if count else [rank, key]
    query = spec.base.add_columns(*columns).options(*spec.options)
    if after is not None:
        query = query.where(after)
    direction = (lambda c: c.desc()) if spec.descending else (lambda c: c.asc())
    query = query.order_by(rank.asc(), direction(key), direction(spec.model.id)).limit(per_page + 1)
    rows = list(session.execute(query).unique().tuples())
    group.items = [row[0] for row in rows[:per_page]]
    if count:
        group.total = int(rows[0][3]) if rows else 0
    if len(rows) > per_page:
        last = rows[per_page - 1]
        group.next_cursor = _make_cursor(group.kind, int(last[1]), last[2], last[0].id)
