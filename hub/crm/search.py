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
same SQL, so a hidden object is never found, never counted.

A kind is counted up to :data:`CAP` (100) of the matches the user may see: beyond, its count is
shown as "100+" (:attr:`Group.capped`; the API's ``total_capped``). Every match the user may see is
reachable by following Next, each once, in this order:

- contacts, relations, projects: exact (the name is the text, or an e-mail address, phone number,
  KvK or VAT number, project number is), then names starting with the text, then names with a
  later word starting with it (after a space or a dash), then the rest. CAP or fewer: all ranked so,
  each tier by folded name (:func:`_ranked_page`). More: the first two tiers by folded name, read
  from an index on it, and the other two in the order they were added, each read from where it is
  in order, no more than a page needs (:func:`_tiered_page`): nothing is ranked that is not shown;
- e-mails: the last CAP found ranked (exact sender address or subject, subject starting with the
  text, the rest; each newest first), then the older matches, newest stored first
  (:func:`_windowed_page`).

A search costs a constant number of statements however many rows match: one per kind asked for
(e-mails' page is read with their count, so their first matches are found once), one that
counts the other kinds, and one small one per page of contacts (their addresses and numbers) or
relations (their own numbers); on SQLite one more, first, asks whether any free choice's name
holds the text (:data:`_CHOICES_MATCH`; PostgreSQL asks it with its folding of the text,
:data:`_FOLD_AND_CHOICES`). The statements are built once per shape of text
(whether it can be a phone number, a project number, a number typed in groups) and user's access
rule, and kept (:func:`_kept`): the text goes in as bound values. A page's rows are read as plain
values (:class:`ContactHit`, :class:`RelationHit`, :class:`ProjectHit`, :class:`EmailHit`: what
the results show), not as ORM objects, whose loading cost as much as finding them.

How matching is made fast: from an index on both databases, so a search costs what its matches
cost, not what the tables hold.

- PostgreSQL (migrations/versions/0010_search.py): ``hub_fold(column) LIKE '%text%'``, answered from
  pg_trgm GIN indexes (the typed text folded by the same ``hub_fold``: one statement more). The index
  proposes rows that PostgreSQL checks again, folding each, and ranking folds each match found: since
  migration 0017 ``hub_fold`` is a function PostgreSQL inlines (or PL/pgSQL), a tenth of the cost a
  row, and e-mails' first CAP matches are ranked as they are found (:meth:`_Kind.ranked`), not read
  again by id. ("bakker" at 30,000 and 90,000 contacts, before the tiers of :func:`_tiered_page`: a
  search page 33 → 20 and 52 → 27 ms, its second page of contacts 39 → 19 and 74 → 26 ms.) A kind
  is counted from each of its sources on its own, each read no further than CAP + 1 visible
  matches (:meth:`_Kind.counted`; "bakker" at 90,000 contacts: the count 8.8 → 1.9 ms).
- SQLite (migrations/versions/0014_search_sqlite_index.py, which says why this shape): per searched
  table an FTS5 table ``search_<table>`` with the trigram tokenizer over the searched columns folded
  by ``hub_fold`` (hub.text.fold, which hub.db gives every SQLite connection), kept by triggers, so
  every write path keeps it without knowing of it. A text of three characters or more is looked up
  as one FTS5 phrase (exactly the rows that hold it as a substring; what was typed is always quoted,
  never read as FTS5 query syntax); a shorter one has no trigram and is matched with LIKE on the
  index's folded copies (a scan, but of narrow rows and with no call into Python). A phone number
  typed as its start is a range of the B-tree index on ``phone_number.e164``, bare digits a phrase
  in ``search_phone_number``. Ranking reads only the rows found. The visibility rule is asked in
  full only of rows someone is linked to (hub.crm.access's ``*_visible_among_many``): the others are seen by
  all staff, which a look-up in the few linked ids settles.

Where a text is common ("bakker" in one name of eleven: some 27,000 of 300,000 contacts) a search
reads no more than CAP + 1 of its matches per kind: on SQLite each index look-up drives a join
(FTS5 yields its rows in rowid order) and the look-ups are merged in id order (:meth:`_Kind.first`),
so reading stops at CAP + 1. SQLAlchemy's per-execution cache key is kept small (:class:`_Fixed`),
and a page's rows are chosen by rank and key before their relation and status are joined
(:func:`_shown_page`).

Why CAP is 100, not 1,000: counting costs what the matches counted cost, and on SQLite e-mails'
access rule (the mail capability's) costs some 10 µs an e-mail: at the benchmark's size (300,000
contacts, 50,000 e-mails) counting "bakker" up to 1,001 cost 1.6 ms of SQL for contacts, relations
and projects and 11 ms for e-mails, up to 101 0.3 and 1.5 ms. A user with more than a hundred
matches refines the text rather than reading them all; they can still page through every one.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

import phonenumbers
from sqlalchemy import (
    ColumnElement,
    Integer,
    LargeBinary,
    Select,
    String,
    and_,
    any_,
    bindparam,
    case,
    column,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    union,
    union_all,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.sql.util import ClauseAdapter
from sqlalchemy.sql.visitors import InternalTraversal, iterate
from sqlalchemy.util import HasMemoized

from hub.crm.access import (
    contact_visible_among_many,
    project_visible,
    project_visible_among_many,
    relation_visible,
    relation_visible_among_many,
)
from hub.db import UNPREPARED
from hub.kept import kept
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
# SQLite's index (FTS5's trigram tokenizer) finds texts of this many characters and more.
TRIGRAM = 3
# A row's rank within its kind: its name (or another field: an e-mail address, a KvK number) is the
# text, its name starts with it, a later word of its name does, it holds the text elsewhere.
EXACT, PREFIX, WORD, ANYWHERE = 0, 1, 2, 3
# Past every character a name can hold: the names that start with a text sort from the text to it
# plus this (SQLite's and PostgreSQL's "C" order compare code points).
_LAST_CHARACTER = "\U0010ffff"
# A kind is counted up to this many matches (and shown as "100+" beyond): counting, ranking and
# sorting every match of a common word ("bakker": 27,000 contacts) cost 70 ms a search, and counting
# costs what the matches counted cost (see the module's docstring for why not 1,000).
CAP = 100

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


# --- the text as parameters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """What of a search's SQL depends on the text: which ways of matching apply. Two texts of the
    same shape share their statements, built once (building them cost as much as running them);
    the text itself goes in as bound values (:func:`_values`)."""

    compact: bool
    # "prefix" (the start of an E.164 number), "anywhere" (digits), None (not a number).
    phone: str | None
    phone_exact: bool
    number: bool
    # A text (or its compact form) shorter than a trigram: SQLite's index cannot find it (see _Match).
    short: bool = False
    # Whether some free choice's name holds the text (asked first on SQLite, :func:`_choices_match`):
    # if none does, the projects' look-up of their choices is left out.
    choices: bool = True
    # Whether the text holds a digit: else it is no KvK or VAT number (one look-up less).
    digits: bool = True


def _shape(terms: Terms) -> _Shape:
    phone = None
    if terms.phone_pattern is not None:
        phone = "anywhere" if terms.phone_pattern.startswith("%") else "prefix"
    short = len(terms.folded) < TRIGRAM or 0 < len(terms.compact) < TRIGRAM
    digits = any(ch.isdigit() for ch in terms.folded)
    return _Shape(
        bool(terms.compact), phone, terms.phone_exact is not None, terms.number is not None, short, digits=digits
    )


@dataclass(frozen=True)
class _Bound:
    """The bound parameters a statement of ``shape`` holds in place of the text; one object per
    name, used wherever that value goes."""

    shape: _Shape
    sqlite: bool
    contains: Any = field(default_factory=lambda: bindparam("search_contains", type_=String()))
    starts: Any = field(default_factory=lambda: bindparam("search_starts", type_=String()))
    folded: Any = field(default_factory=lambda: bindparam("search_folded", type_=String()))
    exact: Any = field(default_factory=lambda: bindparam("search_exact", type_=String()))
    compact_contains: Any = field(default_factory=lambda: bindparam("search_compact_contains", type_=String()))
    compact_exact: Any = field(default_factory=lambda: bindparam("search_compact_exact", type_=String()))
    phone: Any = field(default_factory=lambda: bindparam("search_phone", type_=String()))
    phone_exact: Any = field(default_factory=lambda: bindparam("search_phone_exact", type_=String()))
    number: Any = field(default_factory=lambda: bindparam("search_number", type_=Integer()))
    # SQLite's index: the text as an FTS5 phrase; for relations, also its compact form (KvK/VAT).
    phrase: Any = field(default_factory=lambda: bindparam("search_phrase", type_=String()))
    numbers_phrase: Any = field(default_factory=lambda: bindparam("search_numbers_phrase", type_=String()))
    digits_phrase: Any = field(default_factory=lambda: bindparam("search_digits_phrase", type_=String()))
    # The tiers of :class:`_Tiers`: the end of the names starting with the text, a later word of a
    # name starting with it (after a space or a dash), and SQLite's index look-ups of those words and
    # of KvK and VAT numbers that are the text.
    folded_end: Any = field(default_factory=lambda: bindparam("search_folded_end", type_=String()))
    # PostgreSQL: the first text after every one that starts with the text (:func:`_past_prefix`).
    folded_upper: Any = field(default_factory=lambda: bindparam("search_folded_upper", type_=String()))
    word_space: Any = field(default_factory=lambda: bindparam("search_word_space", type_=String()))
    word_dash: Any = field(default_factory=lambda: bindparam("search_word_dash", type_=String()))
    word_phrase: Any = field(default_factory=lambda: bindparam("search_word_phrase", type_=String()))
    numbers_exact_phrase: Any = field(default_factory=lambda: bindparam("search_numbers_exact_phrase", type_=String()))


def _values(terms: Terms, shape: _Shape, sqlite: bool) -> dict[str, Any]:
    """The values of :class:`_Bound`'s parameters for ``terms``."""
    values: dict[str, Any] = {
        "search_contains": terms.contains,
        "search_starts": terms.starts,
        "search_folded": terms.folded,
        "search_exact": _escape(terms.folded),
        "search_folded_end": terms.folded + _LAST_CHARACTER,
        "search_folded_upper": _past_prefix(terms.folded),
        "search_word_space": f"% {_escape(terms.folded)}%",
        "search_word_dash": f"%-{_escape(terms.folded)}%",
    }
    if shape.compact:
        values["search_compact_contains"] = f"%{_escape(terms.compact)}%"
        values["search_compact_exact"] = _escape(terms.compact)
    if terms.phone_pattern is not None:
        prefix = sqlite and shape.phone == "prefix"
        values["search_phone"] = terms.phone_pattern[:-1] + "*" if prefix else terms.phone_pattern
    if terms.phone_exact is not None:
        values["search_phone_exact"] = terms.phone_exact
    if terms.number is not None:
        values["search_number"] = terms.number
    if sqlite and not shape.short:
        values["search_phrase"] = _phrase(terms.folded)
        # KvK and VAT numbers also as typed in groups ("12 34 56 78" finds 12345678).
        compact = f" OR {{{' '.join(_NUMBER_COLUMNS)}}} : {_phrase(terms.compact)}" if shape.compact else ""
        values["search_numbers_phrase"] = _phrase(terms.folded) + compact
    if sqlite and not shape.short:
        words = (_phrase(" " + terms.folded), _phrase("-" + terms.folded))
        values["search_word_phrase"] = " OR ".join(f"{{name}} : {w}" for w in words)
        numbers = f"{{{' '.join(_NUMBER_COLUMNS)}}}"
        values["search_numbers_exact_phrase"] = f"{numbers} : {_phrase(terms.folded)}" + (
            f" OR {numbers} : {_phrase(terms.compact)}" if shape.compact else ""
        )
    if sqlite and shape.phone == "anywhere" and terms.phone_pattern is not None:
        values["search_digits_phrase"] = _phrase(terms.phone_pattern.strip("%"))
    return values


def _past_prefix(text: str) -> str:
    """The smallest text in code point order above every text that starts with ``text``: its last
    character one code point on (over the surrogates, which no stored text holds), so those are
    exactly the texts from ``text`` up to (not including) this one. A last character that is the
    greatest code point cannot go on: it is dropped, and the one before goes on."""
    kept = text
    while kept:
        point = ord(kept[-1]) + 1
        if point <= ord(_LAST_CHARACTER):
            return kept[:-1] + chr(_SURROGATES_END if _SURROGATES_START <= point < _SURROGATES_END else point)
        kept = kept[:-1]
    # Only the greatest code point, which clean() never leaves (it is no printable character): no
    # text is above all of those, so the nearest there is.
    return text + _LAST_CHARACTER


# UTF-16's surrogates: code points no text holds (PostgreSQL refuses them).
_SURROGATES_START, _SURROGATES_END = 0xD800, 0xE000


def _phrase(text: str) -> str:
    """``text`` as one FTS5 phrase: with the trigram tokenizer, the rows that hold it as a substring.
    Within double quotes everything is literal but the double quote, which is doubled."""
    return '"' + text.replace('"', '""') + '"'


# --- matching, per database -------------------------------------------------------------------------


# SQLite's search index (migration 0014): per table, an FTS5 table of its searched columns, folded.
_NUMBER_COLUMNS = ("coc_number", "vat_number")
_INDEX_COLUMNS = {
    "relation": ("name", "city", *_NUMBER_COLUMNS),
    "contact": ("name",),
    "email_address": ("address_key",),
    "phone_number": ("e164",),
    "project": ("name", *FREE_TEXT_FIELDS),
    "email": ("subject", "from_name", "from_address"),
}


def _index(name: str) -> Any:
    """The FTS5 table ``search_<name>``, as much of it as SQL here needs."""
    return table(f"search_{name}", column("rowid", Integer()), *(column(c, String()) for c in _INDEX_COLUMNS[name]))


def _copies(name: str) -> Any:
    """The folded copies FTS5 keeps of ``search_<name>``'s columns: its ``_content`` table, ``id`` and
    ``c0``, ``c1``, … in the columns' order (FTS5's file format, which later SQLite versions keep
    reading). Scanned directly it is read at plain-table speed, a third of the time a scan through
    the virtual table takes."""
    columns = (column(f"c{i}", String()) for i in range(len(_INDEX_COLUMNS[name])))
    return table(f"search_{name}_content", column("id", Integer()), *columns)


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

    def stored(self, column: Any, folded_column: Any, pattern: str) -> ColumnElement[bool]:
        """Like :meth:`contains`, for a column kept beside its folded copy (``relation.search_name``):
        SQLite reads the copy, so no row needs a call into Python; PostgreSQL folds the column, as
        its trigram index does."""
        if self.sqlite:
            return folded_column.like(pattern, escape="\\")
        return self.contains(column, pattern)

    def equals(self, column: Any, exact: Any) -> ColumnElement[bool]:
        """``column``, folded, is the text (``exact``: the folded text, escaped for LIKE)."""
        return self.contains(column, exact)

    def text(self, column: Any, b: _Bound) -> ColumnElement[bool]:
        """``column`` holds the text (or, for numbers typed in groups, its compact form)."""
        clause = self.contains(column, b.contains)
        if b.shape.compact:
            clause = or_(clause, self.contains(column, b.compact_contains))
        return clause

    def found(self, name: str, b: _Bound, phrase: Any = None) -> Select[Any]:
        """SQLite: the ids of the ``name`` rows whose searched columns hold the text (``phrase``: the
        FTS5 query, default the text as one phrase), from the trigram index. A text shorter than a
        trigram has none to look up: it is matched by a scan of the index's folded copies with
        SQLite's LIKE (still no call into Python; so short a text matches a good part of the rows
        anyway)."""
        if not b.shape.short:
            index = _index(name)
            return select(index.c.rowid).where(
                literal_column(index.name).op("MATCH")(b.phrase if phrase is None else phrase)
            )
        copies = _copies(name)
        columns = dict(zip(_INDEX_COLUMNS[name], copies.c[1:], strict=True))
        clauses = [c.like(b.contains, escape="\\") for c in columns.values()]
        if b.shape.compact and name == "relation":
            clauses += [columns[c].like(b.compact_contains, escape="\\") for c in _NUMBER_COLUMNS]
        return select(copies.c.id).where(or_(*clauses))

    def phone(self, column: Any, b: _Bound) -> ColumnElement[bool]:
        if b.shape.phone is None:
            return false()
        if self.sqlite and b.shape.phone == "prefix":
            # A prefix: GLOB is case-sensitive, so SQLite reads it from the E.164 index.
            return column.op("GLOB")(b.phone)
        if self.sqlite:
            # Digits anywhere in the number (at least three: a trigram), from the index.
            return PhoneNumber.id.in_(
                select(_index("phone_number").c.rowid).where(
                    literal_column("search_phone_number").op("MATCH")(b.digits_phrase)
                )
            )
        return func.hub_fold(column).like(b.phone)


def _is_sqlite(session: Session) -> bool:
    """Whether the session's database is SQLite (whose connections have ``hub_fold`` from hub.db;
    PostgreSQL has it from migration 0010). No statement is sent."""
    return bool(session.get_bind().dialect.name == "sqlite")


# --- what a result shows ------------------------------------------------------------------------------
# A page's rows are read as plain values, the columns its list shows (a contact's relation's name,
# a project's status) joined in the page's own statement: loading them as ORM objects with their
# relations cost more than finding them. A contact's addresses and numbers, or a relation's own
# numbers, come in one more statement for the whole page.


class Named(NamedTuple):
    """A contact's or project's relation, a project's status: what a result shows of it."""

    name: str


class Address(NamedTuple):
    address: str


class Number(NamedTuple):
    number: str


class ContactHit(NamedTuple):
    id: int
    name: str
    function: str
    relation_id: int
    relation: Named
    emails: tuple[Address, ...]
    phones: tuple[Number, ...]


class RelationHit(NamedTuple):
    id: int
    name: str
    city: str
    coc_number: str
    vat_number: str
    phones: tuple[Number, ...]


class ProjectHit(NamedTuple):
    id: int
    name: str
    relation_id: int
    relation: Named
    status: Named | None
    closed: bool
    free_text_1: str
    free_text_2: str
    free_text_3: str
    free_text_4: str


class EmailHit(NamedTuple):
    """An e-mail's summary: its bodies (often large) stay in the database."""

    id: int
    subject: str
    from_name: str
    from_address: str
    sent_at: datetime | None


# A row's details: (what, value) in order, per owner id (0: an e-mail address, 1: a phone number).
_Details = dict[int, list[tuple[int, str]]]
_ADDRESS, _NUMBER = 0, 1
# The page's ids, bound as one expanding list.
_PAGE_IDS: Any = bindparam("search_page_ids", expanding=True)


@dataclass(frozen=True)
class _Shown:
    """What a kind's list shows: ``columns`` (the row's id first) read with the page, from the
    kind's table and ``joins`` (outer joins: a row shows without what it points to), made into a hit
    by ``make``; ``details``: the statement of the rows' addresses and numbers, by ``search_page_ids``."""

    columns: tuple[Any, ...]
    make: Callable[[Any, _Details], Any]
    joins: tuple[tuple[Any, Any], ...] = ()
    details: Select[Any] | None = None


def _addresses(details: list[tuple[int, str]]) -> tuple[Address, ...]:
    return tuple(Address(value) for what, value in details if what == _ADDRESS)


def _numbers(details: list[tuple[int, str]]) -> tuple[Number, ...]:
    return tuple(Number(value) for what, value in details if what == _NUMBER)


_NONE: list[tuple[int, str]] = []
_OWNER = aliased(Relation, name="search_owner")
_STATUS = aliased(Choice, name="search_status")


def _contact_details() -> Select[Any]:
    ids = _PAGE_IDS
    addresses = select(
        EmailAddress.contact_id.label("owner"),
        literal(_ADDRESS).label("what"),
        EmailAddress.id.label("id"),
        EmailAddress.address.label("value"),
    ).where(EmailAddress.contact_id.in_(ids))
    numbers = select(PhoneNumber.contact_id, literal(_NUMBER), PhoneNumber.id, PhoneNumber.number).where(
        PhoneNumber.contact_id.in_(ids)
    )
    both = union_all(addresses, numbers).subquery()
    return select(both.c.owner, both.c.what, both.c.value).order_by(both.c.what, both.c.id)


_CONTACT_SHOWN = _Shown(
    (Contact.id, Contact.name, Contact.function, Contact.relation_id, _OWNER.name),
    lambda r, d: ContactHit(
        r[0], r[1], r[2], r[3], Named(r[4]), _addresses(d.get(r[0], _NONE)), _numbers(d.get(r[0], _NONE))
    ),
    joins=((_OWNER, _OWNER.id == Contact.relation_id),),
    details=_contact_details(),
)
_RELATION_SHOWN = _Shown(
    (Relation.id, Relation.name, Relation.city, Relation.coc_number, Relation.vat_number),
    lambda r, d: RelationHit(r[0], r[1], r[2], r[3], r[4], _numbers(d.get(r[0], _NONE))),
    # The relation's own numbers (its contacts' are theirs).
    details=select(PhoneNumber.relation_id, literal(_NUMBER), PhoneNumber.number)
    .where(PhoneNumber.relation_id.in_(_PAGE_IDS), PhoneNumber.contact_id.is_(None))
    .order_by(PhoneNumber.id),
)
_PROJECT_SHOWN = _Shown(
    (
        Project.id,
        Project.name,
        Project.relation_id,
        _OWNER.name,
        _STATUS.name,
        Project.closed,
        *(getattr(Project, name) for name in FREE_TEXT_FIELDS),
    ),
    lambda r, d: ProjectHit(
        r[0], r[1], r[2], Named(r[3]), None if r[4] is None else Named(r[4]), r[5], r[6], r[7], r[8], r[9]
    ),
    joins=((_OWNER, _OWNER.id == Project.relation_id), (_STATUS, _STATUS.id == Project.status_id)),
)
_EMAIL_SHOWN = _Shown(
    (Email.id, Email.subject, Email.from_name, Email.from_address, Email.sent_at),
    lambda r, d: EmailHit(r[0], r[1], r[2], r[3], r[4]),
)


# --- what each kind is --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tiers:
    """How a kind's matches are ranked without ranking them all (:func:`_tiered_page`): by its folded
    name, ``key``. Exact (the name is the text, or another field is: ``exact_ids``) and starting with
    the text are read from an index on the name in its order (SQLite: ``relation.search_name`` and
    migration 0018's ``hub_fold(name)``; PostgreSQL: migration 0020's ``hub_fold(name) COLLATE "C"``,
    relations' too, for ``search_name`` is folded in Python, not always alike); a later
    word of the name starting with the text (``word``; on SQLite looked up in the trigram index by
    ``word_index``) and the other matches are read in id order, the order they were added."""

    key: Any
    prefix: ColumnElement[bool]
    name_exact: ColumnElement[bool]
    word: ColumnElement[bool]
    exact_ids: Any = None
    # SQLite: the trigram index whose MATCH of ``search_word_phrase`` finds the later words.
    word_index: Any = None
    # PostgreSQL: keys compare in the "C" collation.
    collation: str | None = None
    # The tests on a key already read (:func:`_ranked_page`): exact, starts with, a later word.
    on: Callable[[Any], tuple[ColumnElement[bool], ColumnElement[bool], ColumnElement[bool]]] | None = None
    # PostgreSQL: the later words are read by :func:`_walked` (not where the matches are tested on
    # each row in id order already: contacts, a text shorter than a trigram, :func:`_scanned`).
    walked: bool = False

    def keyed(self, value: Any) -> Any:
        return value if self.collation is None else value.collate(self.collation)


def _tiers(name: Any, b: _Bound, m: _Match, exact_ids: Any, index: str, folded: Any = None) -> _Tiers:
    """The :class:`_Tiers` of a kind whose name is ``name`` (``folded``: a column holding it folded)."""
    key = func.hub_fold(name) if folded is None or not m.sqlite else folded

    def on(key: Any) -> tuple[ColumnElement[bool], ColumnElement[bool], ColumnElement[bool]]:
        # SQLite: a range of the index on the folded name; PostgreSQL: LIKE on the key already read
        # (:func:`_ranked_ids`; the tiers' own ``prefix`` is a range of its index, below).
        prefix = and_(key >= b.folded, key < b.folded_end) if m.sqlite else key.like(b.starts, escape="\\")
        word = or_(key.like(b.word_space, escape="\\"), key.like(b.word_dash, escape="\\"))
        return key == b.folded, prefix, word

    name_exact, prefix, word = on(key)
    if not m.sqlite:
        # Starting with the text, as a range of the btree on the folded name in code point order
        # (migration 0020), read in that order: the same rows as LIKE 'text%' (see _past_prefix),
        # which the trigram index answered with every row holding the text, each folded to check.
        # Written as the range: PostgreSQL makes one of LIKE only when it knows the pattern, not in
        # a generic plan of a prepared statement (there it read the whole index in order).
        ordered = key.collate("C")
        prefix = and_(ordered >= b.folded, ordered < b.folded_upper)
    return _Tiers(
        # PostgreSQL orders by code point, as SQLite does, whatever the database's collation.
        key=key if m.sqlite else key.collate("C"),
        prefix=prefix,
        name_exact=name_exact,
        word=word,
        exact_ids=exact_ids,
        word_index=_index(index) if m.sqlite and not b.shape.short else None,
        collation=None if m.sqlite else "C",
        on=on,
        walked=not m.sqlite,
    )


@dataclass(frozen=True)
class _Kind:
    """One kind of result: its matching rows (visibility included), rank, order key and what it shows."""

    base: Select[Any]
    model: Any
    rank: ColumnElement[int]
    key: Any
    descending: bool = False
    shown: _Shown | None = None
    key_is_moment: bool = False
    visible: Any = None
    parts: tuple[tuple[Any, ColumnElement[bool]], ...] = ()
    # PostgreSQL: rank the matches as they are found (:meth:`ranked`), not by reading them again.
    rank_when_found: bool = False
    tiers: _Tiers | None = None
    # PostgreSQL: the test of the row's own columns and the look-ups of its ids in other tables
    # (:attr:`_Matching.own`), for :meth:`counted`.
    own: ColumnElement[bool] | None = None
    others: tuple[Select[Any], ...] = ()

    def ranked(self, limit: int) -> Select[Any]:
        """PostgreSQL: :meth:`first`, each id with its rank and key (``search_rank``, ``search_key``),
        computed from the row the search reads anyway (for its visibility): ranked afterwards, each
        match of a common word was read again by its id (a thousand index look-ups, 1.5 ms a kind at
        a tenth of the benchmark's size)."""
        model, order = self.model, (lambda c: c.desc()) if self.descending else (lambda c: c.asc())
        columns = model.id.label("search_id"), self.rank.label("search_rank"), self.key.label("search_key")
        return self.base.with_only_columns(*columns).order_by(order(model.id)).limit(limit)

    def first(self, limit: Any, where: tuple[ColumnElement[bool], ...] = ()) -> Select[Any]:
        """The ids of the first ``limit`` visible matches in id order (e-mails: the last), as
        ``search_id``. On SQLite each index look-up drives its own join (FTS5 gives its rows in rowid
        order) and the parts are merged in that order, so only as many rows are read as are asked
        for: a common word costs no more than a rare one. (``id IN (look-up)`` would first collect
        every match of the look-up.)"""
        model, order = self.model, (lambda c: c.desc()) if self.descending else (lambda c: c.asc())
        if not self.parts:
            ids = self.base.with_only_columns(model.id.label("search_id")).where(*where)
            return ids.order_by(order(model.id)).limit(limit)
        selects = []
        for index, clause in self.parts:
            if index is None:
                selects.append(select(model.id.label("search_id")).where(clause, self.visible, *where))
            else:
                driven = select(index.c.rowid.label("search_id")).join(model, model.id == index.c.rowid)
                selects.append(driven.where(clause, self.visible, *where))
        if len(selects) == 1:
            return selects[0].order_by(order(selects[0].selected_columns[0])).limit(limit)
        if where:
            # Each part up to ``limit`` too: SQLite evaluated every part of such a UNION whole before
            # its LIMIT (a text in many relation names cost 2 ms even when the page was full), while
            # a part's own LIMIT of 0 reads nothing.
            selects = [
                select(*capped.c)
                for capped in (s.order_by(order(s.selected_columns[0])).limit(limit).subquery() for s in selects)
            ]
        merged = union(*selects)
        return merged.order_by(order(merged.selected_columns.search_id)).limit(limit)  # type: ignore[return-value]

    def counted(self, limit: int) -> Any:
        """PostgreSQL: up to ``limit`` of the visible matches of each source (the row's own columns;
        the other tables' look-ups), as ``search_id``, in no order: counting needs none. Their count is
        exact when no source reaches ``limit``, and at least ``limit`` otherwise, which is all a count
        of ``limit - 1`` or more promises (:attr:`Group.capped`). :meth:`first` collected every match
        in an array before taking ``limit`` in id order: "bakker" 8,247 contacts, each rechecked
        against the trigram index's proposal (hub_fold), for 101 to be counted.

        The row's own matches are a MATERIALIZED CTE, which PostgreSQL plans for reading whole (so
        from the trigram index) yet reads only as far as the LIMIT asks (so "bakker" rechecks some 101
        rows). Without that fence, a LIMIT with no order made it scan the table, folding every name,
        until it had ``limit``: cheap for a common word and a user who sees all, the whole table when
        few matches are visible (46 ms for "bakker" at 90,000 contacts, to a user who sees ten
        relations; 43 ms so, as before, most of it the access rule of each match). The access rule is
        asked of the CTE's rows (adapted to its columns, which are those the rule reads), as they
        come."""
        assert self.own is not None
        table = self.model.__table__
        # (The rule's columns are the ORM's annotated copies of the table's: found by table and name.)
        read = {e.key for e in iterate(self.visible) if isinstance(e, ColumnClause) and e.table is table}
        columns = [c for c in table.c if c.key == "id" or c.key in read]
        found = select(*columns).where(self.own).cte(f"search_counted_{table.name}").prefix_with("MATERIALIZED")
        own = select(found.c.id.label("search_id")).where(ClauseAdapter(found).traverse(self.visible)).limit(limit)
        if not self.others:
            return own
        ids = self.model.id == any_(func.array(union_all(*self.others).scalar_subquery()))
        return union(own, select(self.model.id.label("search_id")).where(ids, self.visible).limit(limit))


@dataclass(frozen=True)
class _Matching:
    """A kind's text matching, the same for every user (so built once per shape): which rows match,
    their rank, and how the kind is ordered and shown. ``visible(user)`` adds the access rule."""

    model: Any
    matched: ColumnElement[bool]
    rank: ColumnElement[int]
    key: Any
    visible: Callable[[User], ColumnElement[bool]]
    descending: bool = False
    shown: _Shown | None = None
    key_is_moment: bool = False
    # SQLite: the look-ups whose union ``matched`` is, as (FTS5 table, its MATCH) or (None, ``id IN
    # (ids)``), for :meth:`_Kind.first`.
    branches: tuple[Select[Any], ...] = ()
    parts: tuple[tuple[Any, ColumnElement[bool]], ...] = ()
    sqlite: bool = True
    tiers: _Tiers | None = None
    # PostgreSQL: the test of the row's own columns and the look-ups of its ids in other tables
    # (addresses, numbers, choices), each counted on its own (:meth:`_Kind.counted`).
    own: ColumnElement[bool] | None = None
    others: tuple[Select[Any], ...] = ()

    def kind(self, user: User) -> _Kind:
        # The cheap text test first: the access rule's subqueries then run only for rows that match.
        visible = self.visible(user)
        base = select(self.model).where(self.matched, visible)
        kind = _Kind(base, self.model, self.rank, self.key, self.descending, self.shown, self.key_is_moment)
        return replace(
            kind,
            visible=visible,
            parts=self.parts,
            rank_when_found=not self.sqlite,
            tiers=self.tiers,
            own=self.own,
            others=self.others,
        )


def _ids(branches: list[Select[Any]]) -> Any:
    """The ids any branch finds. A UNION of separate SELECTs, not one OR over tables: each branch
    is answered from its own index (PostgreSQL's trigram indexes, the E.164 and choice indexes)
    where an OR across a subquery would make the database scan every row."""
    return union(*branches)


def _among(model: Any, branches: list[Select[Any]], m: _Match) -> ColumnElement[bool]:
    """``model.id`` is one any branch finds. On PostgreSQL as ``= ANY (ARRAY (ids))``: the ids are found
    first (from their indexes), then the rows read by primary key in id order, so the access rule
    is asked of matches only, and of no more than a page needs. With ``IN (ids)`` the planner
    scanned the whole table asking the access rule of every row (a common word: 27 ms a kind at a
    tenth of the bench's size, 14 ms so). (SQLite reads its matches by :meth:`_Kind.first`'s parts.)
    The branches' ids go into the array as found (UNION ALL): ``= ANY`` sorts them and passes over
    repeats itself, and a UNION's hashing of every match cost as much again (2 ms of a common
    word's 14 at 90,000 contacts)."""
    if m.sqlite:
        return model.id.in_(_ids(branches))
    return model.id == any_(func.array(union_all(*branches).scalar_subquery()))


def _scanned(model: Any, row: ColumnElement[bool], others: list[Select[Any]]) -> ColumnElement[bool]:
    """PostgreSQL, contacts, a text shorter than a trigram (:attr:`_Shape.short`): the trigram
    indexes have nothing to look up in it and propose every row, so all matches were collected (a
    quarter of the contacts for "de") before the first CAP + 1 were taken. Tested on each row
    instead (``row``; ``others``: the look-ups in other tables), in id order, reading stops at those
    CAP + 1. At 90,000 contacts "de" 56 → 35 ms, "zq" (no match) 61 → 52 ms. (Relations and
    projects not: there PostgreSQL asked the access rule of each row before its text, and a rare
    short text cost twice as much; a common one less: "de" 18 → 4 and 48 → 10 ms.)"""
    return or_(row, model.id.in_(_ids(others))) if others else row


def _sources(m: _Match, branches: list[Select[Any]]) -> dict[str, Any]:
    """PostgreSQL: the first branch's test of the row's own columns and the other branches, as
    :attr:`_Matching.own` and ``others``, counted each on its own (:meth:`_Kind.counted`). (A text
    shorter than a trigram too: its own rows are then a scan, read only as far as counting needs; at
    90,000 contacts, 30,000 relations and 60,000 projects "de" counted in 44 ms instead of 92, a rare
    one in as long as before.)"""
    if m.sqlite:
        return {}
    return {"own": branches[0].whereclause, "others": tuple(branches[1:])}


def _rank(exact: ColumnElement[bool], prefix: ColumnElement[bool]) -> ColumnElement[int]:
    return case((exact, literal(EXACT)), (prefix, literal(PREFIX)), else_=literal(ANYWHERE))


def _relations(b: _Bound, m: _Match) -> _Matching:
    # The relation's own numbers. "+ 0" on SQLite: its planner would otherwise read every own number
    # through the contact_id index (all of them have none) instead of the E.164 or trigram index.
    no_contact = (PhoneNumber.contact_id + 0) if m.sqlite else PhoneNumber.contact_id
    own_phone = select(PhoneNumber.relation_id).where(no_contact.is_(None))
    branches: list[Select[Any]]
    if m.sqlite:
        branches = [m.found("relation", b, b.numbers_phrase)]
    else:
        texts = or_(
            m.stored(Relation.name, Relation.search_name, b.contains),
            m.contains(Relation.city, b.contains),
            m.text(Relation.coc_number, b),
            m.text(Relation.vat_number, b),
        )
        branches = [select(Relation.id).where(texts)]
    if b.shape.phone:
        branches.append(own_phone.where(m.phone(PhoneNumber.e164, b)))
    matched = _among(Relation, branches, m)
    exact_number = [m.equals(Relation.coc_number, b.exact), m.equals(Relation.vat_number, b.exact)]
    if b.shape.compact:
        exact_number += [
            m.equals(Relation.coc_number, b.compact_exact),
            m.equals(Relation.vat_number, b.compact_exact),
        ]
    kvk_or_vat = list(exact_number)
    if b.shape.phone_exact:
        exact_number.append(Relation.id.in_(own_phone.where(PhoneNumber.e164 == b.phone_exact)))
    name_is = m.stored(Relation.name, Relation.search_name, b.exact)
    rank = _rank(or_(name_is, *exact_number), m.stored(Relation.name, Relation.search_name, b.starts))
    visible = relation_visible_among_many if m.sqlite else relation_visible
    # The relations whose KvK or VAT number is the text (only a text with a digit can be; on SQLite
    # first looked up in its index, which has no trigram of a text shorter than three characters: no
    # such number is that short), or one of whose own numbers is.
    numbers: list[Select[Any]] = []
    if b.shape.digits and m.sqlite and not b.shape.short:
        looked_up = select(_index("relation").c.rowid).where(
            literal_column("search_relation").op("MATCH")(b.numbers_exact_phrase)
        )
        numbers.append(select(Relation.id).where(Relation.id.in_(looked_up), or_(*kvk_or_vat)))
    elif b.shape.digits and not m.sqlite:
        numbers.append(select(Relation.id).where(or_(*kvk_or_vat)))
    if b.shape.phone_exact:
        numbers.append(own_phone.where(PhoneNumber.e164 == b.phone_exact))
    tiers = _tiers(Relation.name, b, m, _either(numbers), "relation", folded=Relation.search_name)
    return _Matching(
        Relation,
        matched,
        rank,
        Relation.search_name,
        visible,
        shown=_RELATION_SHOWN,
        branches=_sqlite(m, branches),
        tiers=tiers,
        **_sources(m, branches),
    )


def _either(selects: list[Select[Any]]) -> Any:
    """The ids any of ``selects`` finds; None for none."""
    if not selects:
        return None
    return selects[0] if len(selects) == 1 else union(*selects)


def _contact_visible(user: User) -> ColumnElement[bool]:
    # A contact is visible with its relation: the visible relations' ids are read once, and the
    # contacts scanned in their own order, rather than each relation's contacts looked up in turn.
    # ("+ 0": SQLite would otherwise look the contacts up relation by relation in its index.)
    return (Contact.relation_id + 0).in_(select(Relation.id).where(relation_visible(user)))


def _contacts(b: _Bound, m: _Match) -> _Matching:
    addresses = select(EmailAddress.contact_id).where(EmailAddress.contact_id.is_not(None))
    numbers = select(PhoneNumber.contact_id).where(PhoneNumber.contact_id.is_not(None))
    branches: list[Select[Any]]
    if m.sqlite:
        branches = [m.found("contact", b), addresses.where(EmailAddress.id.in_(m.found("email_address", b)))]
    else:
        branches = [
            select(Contact.id).where(m.contains(Contact.name, b.contains)),
            addresses.where(m.contains(EmailAddress.address_key, b.contains)),
        ]
    if b.shape.phone:
        branches.append(numbers.where(m.phone(PhoneNumber.e164, b)))
    if not m.sqlite and b.shape.short:
        address = select(EmailAddress.id).where(
            EmailAddress.contact_id == Contact.id, m.contains(EmailAddress.address_key, b.contains)
        )
        matched = _scanned(Contact, or_(m.contains(Contact.name, b.contains), address.exists()), branches[2:])
    else:
        matched = _among(Contact, branches, m)
    exact = [
        m.equals(Contact.name, b.exact),
        Contact.id.in_(addresses.where(EmailAddress.address_key == b.folded)),
    ]
    if b.shape.phone_exact:
        exact.append(Contact.id.in_(numbers.where(PhoneNumber.e164 == b.phone_exact)))
    rank = _rank(or_(*exact), m.contains(Contact.name, b.starts))
    visible = contact_visible_among_many if m.sqlite else _contact_visible
    # A contact one of whose addresses or numbers is the text.
    exact_ids = [addresses.where(EmailAddress.address_key == b.folded)]
    if b.shape.phone_exact:
        exact_ids.append(numbers.where(PhoneNumber.e164 == b.phone_exact))
    tiers = _tiers(Contact.name, b, m, _either(exact_ids), "contact")
    if b.shape.short:
        tiers = replace(tiers, walked=False)  # (its matches are :func:`_scanned`)
    return _Matching(
        Contact,
        matched,
        rank,
        Contact.name,
        visible,
        shown=_CONTACT_SHOWN,
        branches=_sqlite(m, branches),
        tiers=tiers,
        **_sources(m, branches),
    )


def _projects(b: _Bound, m: _Match) -> _Matching:
    # A free choice's name matches: the projects with that choice in its field, each field's
    # matching choices looked up and joined to the projects holding them. (One list of the five
    # fields' choices tested against each field's column cost 0.6 ms a search on SQLite even when no
    # choice matched.)
    chosen = union_all(
        *(
            select(Project.id)
            .select_from(Choice)
            .join(Project, getattr(Project, f"{name}_id") == Choice.id)
            .where(Choice.field == ChoiceField(name), m.contains(Choice.name, b.contains))
            for name in FREE_CHOICE_FIELDS
        )
    )
    branches: list[Select[Any]]
    if m.sqlite:
        branches = [m.found("project", b)]
        if b.shape.number:
            branches.append(select(Project.id).where(Project.id == b.number))
    else:
        texts = or_(
            m.contains(Project.name, b.contains),
            *(m.contains(getattr(Project, name), b.contains) for name in FREE_TEXT_FIELDS),
            *([Project.id == b.number] if b.shape.number else []),
        )
        branches = [select(Project.id).where(texts)]
    if b.shape.choices:
        branches.append(select(chosen.subquery().c.id))
    matched = _among(Project, branches, m)
    exact = m.equals(Project.name, b.exact)
    if b.shape.number:
        exact = or_(Project.id == b.number, exact)
    rank = _rank(exact, m.contains(Project.name, b.starts))
    visible = project_visible_among_many if m.sqlite else project_visible
    numbered = [select(Project.id).where(Project.id == b.number)] if b.shape.number else []
    tiers = _tiers(Project.name, b, m, _either(numbered), "project")
    return _Matching(
        Project,
        matched,
        rank,
        Project.name,
        visible,
        shown=_PROJECT_SHOWN,
        branches=_sqlite(m, branches),
        tiers=tiers,
        **_sources(m, branches),
    )


def _emails(b: _Bound, m: _Match) -> _Matching:
    matched: ColumnElement[bool]
    branches: list[Select[Any]] = []
    if m.sqlite:
        branches = [m.found("email", b)]
        matched = Email.id.in_(branches[0])
    else:
        matched = or_(
            m.contains(Email.subject, b.contains),
            m.contains(Email.from_name, b.contains),
            m.contains(Email.from_address, b.contains),
        )
    exact = or_(m.equals(Email.from_address, b.exact), m.equals(Email.subject, b.exact))
    rank = _rank(exact, m.contains(Email.subject, b.starts))
    key = func.coalesce(Email.sent_at, Email.stored_at)
    # The access rule is the mail capability's, given with each search (see :func:`search`).
    return _Matching(
        Email,
        matched,
        rank,
        key,
        _no_rule,
        descending=True,
        shown=_EMAIL_SHOWN,
        key_is_moment=True,
        branches=tuple(branches),
    )


# The text's LIKE pattern, by the name :class:`_Bound` gives it.
_CONTAINS: Any = bindparam("search_contains", type_=String())
# Whether any free choice's name holds the text. On SQLite the projects' look-up of their choices
# cost a search 0.2 to 0.7 ms even when no choice matched (nearly always: a company has a few dozen
# choices); asked first, in some 30 µs, it is left out then. (PostgreSQL: :data:`_FOLD_AND_CHOICES`.)
_CHOICES_MATCH = (
    select(literal(1))
    .where(
        or_(*(Choice.field == ChoiceField(name) for name in FREE_CHOICE_FIELDS)),
        _Match(sqlite=True).contains(Choice.name, _CONTAINS),
    )
    .limit(1)
)


def _choices_match(connection: Connection, values: dict[str, Any]) -> bool:
    return connection.execute(_CHOICES_MATCH, values).first() is not None


_TEXT: Any = bindparam("search_text", type_=String())
# PostgreSQL: the typed text folded by hub_fold (its indexes' very function, so both always agree),
# and whether a free choice's name holds it (a substring test of the folded texts: the same as the
# projects' ``LIKE '%text%'``, with nothing to escape). Planning the projects' five look-ups of
# their choices cost a search about a millisecond, nearly always for nothing; asked with the
# folding, which is a statement anyway, the answer costs no round trip of its own.
_FOLD_AND_CHOICES = select(
    func.hub_fold(_TEXT),
    select(literal(1))
    .where(
        or_(*(Choice.field == ChoiceField(name) for name in FREE_CHOICE_FIELDS)),
        func.strpos(func.hub_fold(Choice.name), func.hub_fold(_TEXT)) > 0,
    )
    .exists(),
)


def _sqlite(m: _Match, branches: list[Select[Any]]) -> tuple[Select[Any], ...]:
    return tuple(branches) if m.sqlite else ()


def _no_rule(user: User) -> ColumnElement[bool]:  # pragma: no cover - replaced by the caller's rule
    return false()


_BUILDERS: dict[str, Callable[[_Bound, _Match], _Matching]] = {
    "contacts": _contacts,
    "relations": _relations,
    "projects": _projects,
    "emails": _emails,
}


@functools.lru_cache(maxsize=256)
def _matching(kind: str, shape: _Shape, sqlite: bool) -> _Matching:
    """A kind's matching for texts of ``shape``, built once: SQL expressions are immutable, so one
    serves every search and thread; the text goes in as the values of its bound parameters."""
    built = _BUILDERS[kind](_Bound(shape, sqlite), _Match(sqlite))
    name = f"{kind}:{shape}:{sqlite}"
    # The index look-ups each drive a part of :meth:`_Kind.first`; the other branches (a project's
    # five choice fields, a contact's addresses and numbers) go together in one, for each part
    # costs its own test of the access rule.
    parts: list[tuple[Any, ColumnElement[bool]]] = []
    others = []
    for i, branch in enumerate(built.branches):
        froms = branch.get_final_froms()
        index: Any = froms[0] if len(froms) == 1 else None
        if index is not None and index.name in {f"search_{n}" for n in _INDEX_COLUMNS}:
            parts.append((index, _Fixed(f"{name}:match{i}", branch.whereclause)))  # type: ignore[arg-type]
        else:
            others.append(branch)
    if others:
        parts.append((None, _Fixed(f"{name}:among", built.model.id.in_(_ids(others)))))
    return replace(
        built,
        matched=_Fixed(f"{name}:matched", built.matched),
        rank=_Fixed(f"{name}:rank", built.rank),
        own=None if built.own is None else _Fixed(f"{name}:own", built.own),
        parts=tuple(parts),
        sqlite=sqlite,
    )


class _Fixed(ColumnElement[Any]):
    """A clause built once by :func:`_matching`, renders as itself, with a cache key of its name.

    Why: SQLAlchemy finds a statement's compiled SQL by a key it computes on every execution by
    walking the whole statement; a search's matching and rank clauses (unions, subqueries, a dozen
    columns) made that walk cost more than running the statements on SQLite. The clause's SQL is
    fixed by its name (kind, shape of the text, database); its values are bound by name at execution
    (:func:`_values`), so none need collecting from it. As hub.crm.access's rule, the tables it is
    rendered against are in the key too, for an ORM-adapted copy renders other SQL.
    """

    __visit_name__ = "hub_search_fixed"
    inherit_cache = False
    _traverse_internals = [
        ("name", InternalTraversal.dp_string),
        ("clause", InternalTraversal.dp_clauseelement),
    ]
    _cache_key_traversal = [
        ("name", InternalTraversal.dp_string),
        ("_from_objects", InternalTraversal.dp_fromclause_ordered_set),
    ]

    def __init__(self, name: str, clause: ColumnElement[Any]) -> None:
        self.name, self.clause, self.type = name, clause, clause.type

    @HasMemoized.memoized_attribute
    def _from_objects(self) -> list[Any]:  # forgotten by a copy (an adapted clause), so found anew
        return self.clause._from_objects

    def self_group(self, against: Any = None) -> ColumnElement[Any]:
        return self  # always rendered in parentheses


@compiles(_Fixed)
def _render_fixed(element: _Fixed, compiler: Any, **kw: Any) -> str:
    return "(" + str(compiler.process(element.clause, **kw)) + ")"


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
            and EXACT <= rank <= BEYOND
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


# Where a cursor points: the rank, key and id of the last row of the page before.
_Position = tuple[int, Any, int]


def _after(columns: tuple[Any, Any, Any], descending: bool, position: _Position) -> ColumnElement[bool]:
    """The rows after ``position`` in the order of ``columns`` (rank, key, id)."""
    (rank_of, key_of, ident), (rank, key, row_id) = columns, position
    key_beyond = key_of < key if descending else key_of > key
    id_beyond = ident < row_id if descending else ident > row_id
    return or_(rank_of > rank, and_(rank_of == rank, or_(key_beyond, and_(key_of == key, id_beyond))))


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
    # More than CAP match: ``total`` is CAP, a lower bound (following Next still lists every match).
    capped: bool = False


@dataclass
class Results:
    text: str
    # The text was longer than MAX_LENGTH and was cut.
    truncated: bool
    groups: list[Group]

    @property
    def total(self) -> int:
        return sum(g.total for g in self.groups)

    @property
    def capped(self) -> bool:
        """Some kind has more than CAP matches (``total`` is then a lower bound)."""
        return any(g.capped for g in self.groups)

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
    m = _Match(sqlite=_is_sqlite(session))
    folded, choices = None, True
    if not m.sqlite:
        folded, choices = session.execute(_FOLD_AND_CHOICES, {"search_text": cleaned}).one()
    terms = read_terms(cleaned, region, folded)
    if terms is None:
        return Results(cleaned, truncated, [Group(kind, 0) for kind in searched])
    shape = _shape(terms)
    values = _values(terms, shape, m.sqlite)
    # The statements go straight to the connection: the session's way costs as much again as running
    # one of the small ones, for loading ORM objects, which these rows are not. (What the session
    # holds unwritten is written first, as the session's own way would.)
    if session.autoflush:
        session.flush()
    connection = session.connection()
    if m.sqlite:
        shape = replace(shape, choices=_choices_match(connection, values))
    elif folded == terms.folded:  # else the text was folded to spaces at an end: look, to be sure
        shape = replace(shape, choices=bool(choices))
    # What the statements depend on besides the text (which is bound): its shape, the database and
    # the user's access rule (hub.crm.access's and the mail capability's, made of these).
    key = (shape, m.sqlite, searched, user.id, user.is_active, user.is_admin, emails_visible)

    def make_specs() -> dict[str, _Kind]:
        specs = {}
        for kind in searched:
            matching = _matching(kind, shape, m.sqlite)
            if kind == "emails" and emails_visible is not None:
                matching = replace(matching, visible=emails_visible)
            specs[kind] = matching.kind(user)
        return specs

    specs: dict[str, _Kind] = _kept(("specs", *key), make_specs)
    after: _Position | None = None
    if cursor:
        if len(paged) != 1:
            raise BadCursor(cursor)
        after = _read_cursor(cursor, paged[0], specs[paged[0]].key_is_moment)

    # E-mails' page is read with their count, in one statement (:func:`_windowed_page`): both need
    # their first matches, which are then found once. The other kinds are counted together in one
    # more, each up to CAP + 1 of its matches (what is hidden is not counted: the same conditions as
    # its pages); the count says how a page of contacts, relations or projects is read.
    with_count = tuple(k for k in paged if specs[k].tiers is None)
    counted = tuple(kind for kind in searched if kind not in with_count)

    def make_count() -> Select[Any]:
        counts = (select(func.count()).select_from(_counted(specs[k]).subquery()).scalar_subquery() for k in counted)
        return select(*counts)

    totals: dict[str, int] = {}
    if counted:
        count_all = _kept(("count", counted, *key), make_count)
        row = connection.execute(count_all, values, execution_options=UNPREPARED).one()
        totals = {kind: int(n or 0) for kind, n in zip(counted, row, strict=True)}
    groups = []
    for kind, spec in specs.items():
        assert spec.shown is not None
        if kind in with_count:
            if after is None:
                query = _kept(("first page", kind, per_page, *key), functools.partial(_windowed_page, spec, per_page))
            else:
                query = _windowed_page(spec, per_page, after)
            rows = connection.execute(query, values | _after_values(after), execution_options=UNPREPARED).all()
            if rows:
                total = int(rows[0].search_total)
            elif after is None:
                total = 0  # nothing visible matches (any match would be on the first page)
            else:  # nothing after the cursor: counted on its own
                count = select(func.count()).select_from(spec.first(CAP + 1).subquery())
                total = int(connection.execute(count, values, execution_options=UNPREPARED).scalar_one())
            group = Group(kind, min(total, CAP), cursor=cursor if after is not None else None, capped=total > CAP)
            _show_page(connection, rows, spec.shown, group, per_page)
        else:
            total = totals[kind]
            group = Group(kind, min(total, CAP), cursor=cursor if after is not None else None, capped=total > CAP)
            if kind in paged and total:
                rank = None if after is None else after[0]
                # All of a few (CAP or fewer) are ranked; of more, each tier is read in its order.
                make = _ranked_page if total <= CAP else _tiered_page
                query = _kept((make, kind, per_page, rank, *key), functools.partial(make, spec, per_page, rank))
                rows = connection.execute(query, values | _after_values(after), execution_options=UNPREPARED).all()
                _show_page(connection, rows, spec.shown, group, per_page)
        groups.append(group)
    return Results(cleaned, truncated, groups)


# Statements kept by what makes them (see :func:`search`): the same objects on every search of that
# shape by that user, so SQLAlchemy keys them (a walk of the whole statement) only once, and they
# are built only once: building and keying cost more than running them on SQLite.
_KEPT: dict[tuple[Any, ...], Any] = {}
KEPT = 2048


def _kept(key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    return kept(_KEPT, key, make, KEPT)


def _counted(spec: _Kind) -> Any:
    """Up to CAP + 1 of a kind's visible matches, to be counted: each source on its own on
    PostgreSQL (:meth:`_Kind.counted`), else the first found (:meth:`_Kind.first`)."""
    return spec.first(CAP + 1) if spec.own is None else spec.counted(CAP + 1)


def _chosen(spec: _Kind, after: _Position | None, size: int, firsts: Any = None) -> Select[Any]:
    """The ids of a page of the first CAP found (``firsts``; by default :meth:`_Kind.first`'s), up to
    ``size``, as ``search_id``, ``search_rank``, ``search_key``, in rank, key and id order."""
    direction = (lambda c: c.desc()) if spec.descending else (lambda c: c.asc())
    # Only the first CAP found (in id order, as the index gives them) are ranked: all of them when
    # fewer match, and the same rows on every page, so Next lists each of them once.
    chosen: Select[Any]
    if spec.rank_when_found:
        # PostgreSQL: ranked as found (:meth:`_Kind.ranked`; ``firsts``: the first page's, with their rank).
        found = (spec.ranked(CAP) if firsts is None else firsts).subquery()
        ident, rank, key = found.c.search_id, found.c.search_rank, found.c.search_key
        chosen = select(ident, rank, key)
        after_columns: tuple[Any, Any, Any] = (rank, key, ident)
    else:
        if firsts is None:
            first = spec.first(CAP).subquery()
            firsts = select(first.c.search_id)
        base = select(spec.model).where(spec.model.id.in_(firsts))
        ident, rank, key = spec.model.id, spec.rank.label("search_rank"), spec.key.label("search_key")
        chosen = base.with_only_columns(ident.label("search_id"), rank, key)
        after_columns = (spec.rank, spec.key, ident)
    if after is not None:
        chosen = chosen.where(_after(after_columns, spec.descending, after))
    return chosen.order_by(rank.asc(), direction(key), direction(ident)).limit(size)


# Where a page of :func:`_tiered_page` starts: the last row of the page before, bound by name.
_AFTER_RANK: Any = bindparam("search_after_rank", type_=Integer())
_AFTER_KEY: Any = bindparam("search_after_key", type_=String())
_AFTER_ID: Any = bindparam("search_after_id", type_=Integer())


def _after_values(after: _Position | None) -> dict[str, Any]:
    if after is None:
        return {}
    rank, key, row_id = after
    return {"search_after_rank": rank, "search_after_key": key, "search_after_id": row_id}


def _tiered_page(spec: _Kind, per_page: int, after_rank: int | None) -> Select[Any]:
    """A page of a kind with :class:`_Tiers` of which more than CAP match (after the row bound as
    ``search_after_*``, whose rank is ``after_rank``; None: the first page): not ranked at all (a
    common word matches tens of thousands, and ranking even the first thousand found cost 1.5 ms a
    kind) but read tier by tier from where each is in order (:func:`_tier_ids`)."""
    return _shown_page(spec, _tier_ids(spec, literal(per_page + 1), after_rank))


def _ranked_page(spec: _Kind, per_page: int, after_rank: int | None) -> Select[Any]:
    """A page of a kind with :class:`_Tiers` of which CAP or fewer match: all of them ranked
    (:func:`_ranked_ids`)."""
    found = spec.first(CAP).subquery()
    return _shown_page(spec, [_ranked_ids(spec, select(found.c.search_id), literal(per_page + 1), after_rank)])


def _shown_page(spec: _Kind, parts: list[Select[Any]]) -> Select[Any]:
    """The rows of the ids ``parts`` choose (``search_id``, ``search_rank``, ``search_key``) with what
    their list shows, in rank, key and id order."""
    assert spec.tiers is not None and spec.shown is not None
    page = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    model, tiers = spec.model, spec.tiers
    query = (
        select(*spec.shown.columns, page.c.search_rank, page.c.search_key)
        .select_from(model)
        .join(page, model.id == page.c.search_id)
    )
    for target, on in spec.shown.joins:
        query = query.outerjoin(target, on)
    return query.order_by(page.c.search_rank, tiers.keyed(page.c.search_key), model.id)


_WORD_PHRASE: Any = bindparam("search_word_phrase", type_=String())
_POSITION = (_AFTER_RANK, _AFTER_KEY, _AFTER_ID)


def _tier_ids(spec: _Kind, size: Any, after_rank: int | None) -> list[Select[Any]]:
    """Up to ``size`` ids of :func:`_tiered_page`'s tiers, each read from where it is in order: exact
    and starting with the text by folded name (an index range on SQLite), then the later words of
    names and then the rest in id order, each read only for what the tiers before left of the page
    (a LIMIT of what is left: the rest, which for a common word would mean reading past thousands of
    word matches, is not read when the page is full). Every visible match is in exactly one tier,
    so following Next lists each once; the access rule is in every part."""
    tiers, model, visible = spec.tiers, spec.model, spec.visible
    assert tiers is not None
    not_exact = [model.id.not_in(tiers.exact_ids)] if tiers.exact_ids is not None else []
    heads: list[Select[Any]] = []
    if after_rank is None or after_rank <= PREFIX:
        # The names that start with the text, in order: the exact ones have the smallest key.
        rank = case((tiers.name_exact, literal(EXACT)), else_=literal(PREFIX))
        named = select(model.id.label("search_id"), rank.label("search_rank"), tiers.key.label("search_key"))
        named = named.where(tiers.prefix, visible, *not_exact)
        if after_rank is not None:
            named = named.where(_after((rank, tiers.key, model.id), False, _POSITION))
            if after_rank == PREFIX:
                named = named.where(tiers.key >= _AFTER_KEY)  # where SQLite's index range starts
        heads.append(named.order_by(tiers.key, model.id).limit(size))
    if tiers.exact_ids is not None and (after_rank is None or after_rank == EXACT):
        other = select(model.id.label("search_id"), literal(EXACT).label("search_rank"), tiers.key.label("search_key"))
        other = other.where(model.id.in_(tiers.exact_ids), visible)
        if after_rank is not None:
            other = other.where(_after((literal(EXACT), tiers.key, model.id), False, _POSITION))
        heads.append(other.order_by(tiers.key, model.id).limit(size))
    parts: list[Select[Any]] = []
    left = size
    if heads:
        merged = union_all(*(select(*h.subquery().c) for h in heads)).subquery()
        head = (
            select(*merged.c)
            .order_by(merged.c.search_rank, tiers.keyed(merged.c.search_key), merged.c.search_id)
            .limit(size)
            .cte("search_head")
        )
        parts.append(select(head.c.search_id, head.c.search_rank, head.c.search_key))
        left = left - select(func.count()).select_from(head).scalar_subquery()
    not_head = [~tiers.prefix, *not_exact]
    unkeyed = tiers.keyed(literal("", String())).label("search_key")
    if after_rank is None or after_rank <= WORD:
        later = [*not_head, model.id > _AFTER_ID] if after_rank == WORD else not_head
        if tiers.word_index is not None:
            index = tiers.word_index
            words = (
                select(index.c.rowid.label("search_id"))
                .join(model, model.id == index.c.rowid)
                .where(literal_column(index.name).op("MATCH")(_WORD_PHRASE), visible, *later)
                .order_by(index.c.rowid)
                .limit(left)
            )
        elif tiers.walked:
            words = _walked(spec, left, (tiers.word, *later), after_rank == WORD)
        else:
            words = spec.first(left, (tiers.word, *later))
        word = words.cte("search_word")
        parts.append(select(word.c.search_id, literal(WORD).label("search_rank"), unkeyed))
        left = left - select(func.count()).select_from(word).scalar_subquery()
    rest = [*not_head, ~tiers.word]
    if after_rank == ANYWHERE:
        rest.append(model.id > _AFTER_ID)
    others = spec.first(left, tuple(rest)).subquery()
    parts.append(select(others.c.search_id, literal(ANYWHERE).label("search_rank"), unkeyed))
    return parts


# PostgreSQL: how many rows a tier of :func:`_walked` reads in id order, for each row it may show.
WALK = 40


def _walked(spec: _Kind, size: Any, where: tuple[ColumnElement[bool], ...], after_id: bool) -> Any:
    """PostgreSQL: up to ``size`` ids of ``where``'s visible rows (``where`` implies a match: the later
    words of names) in id order, as ``search_id``. The next ``WALK * size`` rows (after the row bound
    as ``search_after_id`` when ``after_id``) are read in id order, each tested, until ``size`` are
    found; only what they leave is looked up as :meth:`_Kind.first` does, past them. That look-up
    collects every match into an array to read it in id order: "bakker" rechecked all 8,247 contacts
    the trigram index proposed (hub_fold each) for a page of 26, 9 of the page's 10 ms; so 288 rows
    are read, 0.4 ms. A rare word reads the ``WALK * size`` rows (0.7 ms a thousand) before the
    look-up."""
    model = spec.model
    ahead = select(model.id).order_by(model.id).limit(size * WALK)
    if after_id:
        ahead = ahead.where(model.id > _AFTER_ID)
    edge = select(func.max(ahead.subquery().c.id)).scalar_subquery()
    near = select(model.id.label("search_id")).where(model.id <= edge, *where, spec.visible)
    walked = near.order_by(model.id).limit(size).cte("search_walked")
    found = select(func.count()).select_from(walked).scalar_subquery()
    beyond = spec.first(size - found, (*where, model.id > edge)).subquery()
    return union_all(select(walked.c.search_id), select(beyond.c.search_id))


def _ranked_ids(spec: _Kind, found: Select[Any], size: Any, after_rank: int | None) -> Select[Any]:
    """Up to ``size`` of the ids ``found`` (every match, CAP or fewer) ranked in the tiers of
    :func:`_tier_ids`, each by folded name. Each one's folded name is read once first (a materialized
    CTE): tested where it is written, SQLite called ``hub_fold`` (Python) a dozen times a row, 1.1 ms
    of a hundred matches' 1.8."""
    tiers, model = spec.tiers, spec.model
    assert tiers is not None and tiers.on is not None
    keyed = (
        select(model.id.label("search_id"), tiers.key.label("search_key"))
        .where(model.id.in_(found))
        .cte("search_keyed")
        .prefix_with("MATERIALIZED")
    )
    ident, key = keyed.c.search_id, keyed.c.search_key
    name_exact, prefix, word = tiers.on(key)
    exact = name_exact if tiers.exact_ids is None else or_(name_exact, ident.in_(tiers.exact_ids))
    rank = case(
        (exact, literal(EXACT)), (prefix, literal(PREFIX)), (word, literal(WORD)), else_=literal(ANYWHERE)
    ).label("search_rank")
    chosen = select(ident, rank, key)
    if after_rank is not None:
        chosen = chosen.where(_after((rank, tiers.keyed(key), ident), False, _POSITION))
    ranked = chosen.order_by(rank, tiers.keyed(key), ident).limit(size).subquery()
    return select(*ranked.c)


# E-mails past the first CAP found (:func:`_windowed_page`): ranked below the others, by id alone.
BEYOND = 4
_BEYOND_KEY = datetime(1970, 1, 1, tzinfo=UTC)


def _windowed_page(spec: _Kind, per_page: int, after: _Position | None = None) -> Select[Any]:
    """E-mails: a page of the last CAP found, ranked (exact, subject starting with the text, the
    rest; each newest first), each row carrying the count (``search_total``, up to CAP + 1);
    after them (rank :data:`BEYOND`) the older matches, newest stored first, so following Next lists
    every match. Those are read only for what the ranked ones leave of a page (a LIMIT of what is
    left), and only when more than CAP match: the mail capability's access rule costs some 10 µs an
    e-mail on SQLite, so no more e-mails are asked than a page and the count need."""
    assert spec.descending
    size = per_page + 1
    found = (spec.ranked if spec.rank_when_found else spec.first)(CAP + 1).cte("search_found")
    total = select(func.count()).select_from(found).scalar_subquery()
    firsts = select(*found.c).order_by(found.c.search_id.desc()).limit(CAP)
    parts: list[Any] = []
    left: Any = literal(size)
    if after is None or after[0] != BEYOND:
        window = _chosen(spec, after, size, firsts).cte("search_window")
        parts.append(select(window.c.search_id, window.c.search_rank, window.c.search_key))
        left = left - select(func.count()).select_from(window).scalar_subquery()
    edge = select(func.min(firsts.subquery().c.search_id)).scalar_subquery()
    beyond = [spec.model.id < edge]
    if after is not None and after[0] == BEYOND:
        beyond.append(spec.model.id < after[2])
    older = spec.first(case((total > CAP, left), else_=literal(0)), tuple(beyond)).subquery()
    unkeyed = literal(_BEYOND_KEY, type_=Email.sent_at.type).label("search_key")
    parts.append(select(older.c.search_id, literal(BEYOND).label("search_rank"), unkeyed))
    page = union_all(*parts).subquery()
    assert spec.shown is not None
    query = (
        select(*spec.shown.columns, page.c.search_rank, page.c.search_key, total.label("search_total"))
        .select_from(spec.model)
        .join(page, spec.model.id == page.c.search_id)
    )
    for target, on in spec.shown.joins:
        query = query.outerjoin(target, on)
    return query.order_by(page.c.search_rank.asc(), page.c.search_key.desc(), spec.model.id.desc())


def _show_page(connection: Connection, rows: Sequence[Any], shown: _Shown, group: Group, per_page: int) -> None:
    """``rows`` (a page and one more, as :func:`_page` reads them) made into ``group``'s items and
    next cursor, with their details read in one more statement."""
    details: _Details = {}
    if shown.details is not None and rows:
        ids = [r[0] for r in rows[:per_page]]
        for owner, what, value in connection.execute(shown.details, {"search_page_ids": ids}):
            details.setdefault(owner, []).append((what, value))
    group.items = [shown.make(row, details) for row in rows[:per_page]]
    if len(rows) > per_page:
        last = rows[per_page - 1]
        group.next_cursor = _make_cursor(group.kind, int(last.search_rank), last.search_key, last[0])
