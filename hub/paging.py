"""Paging and sorting of list queries, shared by every list page and API list."""

from __future__ import annotations

import base64
import binascii
import collections
import enum
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from hub.kept import kept

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    page: int
    per_page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def paginate(session: Session, query: Select[tuple[T]], page: int, per_page: int) -> Page[T]:
    """One page of ``query``; fetches one row more than shown to know whether a next page exists.

    No COUNT(*): on a table of hundreds of thousands of rows a count costs more than the page.
    """
    page = max(page, 1)
    rows = list(session.scalars(query.limit(per_page + 1).offset((page - 1) * per_page)))
    return Page(items=rows[:per_page], page=page, per_page=per_page, has_next=len(rows) > per_page)


def sort_clause(sorts: dict[str, Sort], sort: str, default: str) -> tuple[str, list[Any]]:
    """Resolve ``sort`` ("name" or "-name") against the allowed sorts (the callers add id as tie-breaker)."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in sorts:
        key, descending = default.lstrip("-"), default.startswith("-")
    column = sorts[key].column
    order = [column.desc() if descending else column.asc()]
    return ("-" if descending else "") + key, order


# --- keyset (cursor) paging ------------------------------------------------------------------------

# Ids are INTEGER columns (32-bit on PostgreSQL): a bigger one is refused before it reaches the
# database, where it would be an "integer out of range" error rather than "not found".
MAX_ID = 2**31 - 1


class BadCursor(ValueError):
    """The cursor was not made by :func:`keyset_page` for this sort (or was tampered with)."""


@dataclass
class Sort:
    """One way to order a list: ``column`` with the row's id as tie-breaker, both in one direction,
    NULLs last on every database (SQLite and PostgreSQL disagree on the default)."""

    column: Any
    id_column: Any
    value_of: Callable[[Any], Any]
    descending: bool = False

    @property
    def nullable(self) -> bool:
        """Whether the column may hold NULL: for a NOT NULL one the order says nothing about NULLs,
        so the database can read it from an index (DESC NULLS LAST matches none on PostgreSQL)."""
        return bool(getattr(getattr(self.column, "expression", self.column), "nullable", True))

    def order(self) -> list[Any]:
        if not self.nullable:
            column = self.column.desc() if self.descending else self.column.asc()
            return [column, self.id_column.desc() if self.descending else self.id_column.asc()]
        if self.descending:
            return [self.column.desc().nulls_last(), self.id_column.desc()]
        return [self.column.asc().nulls_last(), self.id_column.asc()]

    def directed(self, descending: bool) -> Sort:
        """The same sort in the given direction."""
        return Sort(self.column, self.id_column, self.value_of, descending=descending)

    def reverse_order(self) -> list[Any]:
        """:meth:`order` backwards (NULLs first), to read the rows before a cursor nearest first."""
        if not self.nullable:
            column = self.column.asc() if self.descending else self.column.desc()
            return [column, self.id_column.asc() if self.descending else self.id_column.desc()]
        if self.descending:
            return [self.column.asc().nulls_first(), self.id_column.asc()]
        return [self.column.desc().nulls_first(), self.id_column.desc()]

    def before(self, value: Any, first_id: int) -> Any:
        """Rows that come before (value, first_id) in this order (the mirror of :meth:`after`)."""
        id_before = self.id_column > first_id if self.descending else self.id_column < first_id
        if value is None:
            return or_(self.column.is_not(None), and_(self.column.is_(None), id_before))
        earlier = self.column > value if self.descending else self.column < value
        if not self.nullable:
            return and_(self._from(value, backwards=True), or_(earlier, and_(self.column == value, id_before)))
        return or_(earlier, and_(self.column == value, id_before))

    def _from(self, value: Any, *, backwards: bool) -> Any:
        """The column's side of ``value`` the rows after it (or before it, ``backwards``) lie on,
        the value itself included: implied by the exact condition, which is an OR that PostgreSQL
        cannot read as a range of the column's index. Without it a page after a cursor walked the
        index from the list's start, filtering every row before the cursor (page 50 of the project
        list: 1,300 rows read for 26); with it the walk starts at the cursor's value."""
        return self.column <= value if self.descending != backwards else self.column >= value

    def after(self, value: Any, last_id: int) -> Any:
        """Rows that come after (value, last_id) in this order."""
        id_beyond = self.id_column < last_id if self.descending else self.id_column > last_id
        if value is None:
            return and_(self.column.is_(None), id_beyond)
        beyond = self.column < value if self.descending else self.column > value
        if not self.nullable:
            return and_(self._from(value, backwards=False), or_(beyond, and_(self.column == value, id_beyond)))
        return or_(beyond, and_(self.column == value, id_beyond), self.column.is_(None))


def pick_sort(sorts: dict[str, Sort], sort: str, default: str) -> tuple[str, Sort]:
    """Resolve ``sort`` ("name" or "-name") against ``sorts``; an unknown key gives ``default``."""
    descending, key = sort.startswith("-"), sort.lstrip("-")
    if key not in sorts:
        descending, key = default.startswith("-"), default.lstrip("-")
    return ("-" if descending else "") + key, sorts[key].directed(descending)


@dataclass
class KeysetPage(Generic[T]):
    items: list[T]
    next_cursor: str | None
    total: int | None = None
    # The cursor that reads the page before this one (``before=``); None on the first page.
    prev_cursor: str | None = None

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_prev(self) -> bool:
        return self.prev_cursor is not None


def _encode_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _python_type(sql_type: Any) -> type:
    try:
        return sql_type.python_type
    except NotImplementedError:  # a TypeDecorator (UTC datetimes) answers for its implementation
        return sql_type.impl_instance.python_type


def _decode_value(column: Any, raw: Any) -> Any:
    if raw is None:
        return None
    kind = _python_type(column.type)
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise BadCursor(raw)
    if issubclass(kind, enum.Enum):
        return kind(raw)
    if kind is datetime:
        return datetime.fromisoformat(str(raw))
    if kind is date:
        return date.fromisoformat(str(raw))
    if kind is Decimal:
        return Decimal(str(raw))
    if kind is int:
        if not isinstance(raw, int) or abs(raw) > MAX_ID:
            raise BadCursor(raw)
        return raw
    if kind is str and isinstance(raw, str) and not any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in raw):
        return raw
    raise BadCursor(raw)


def make_cursor(sort_name: str, sort: Sort, row: Any) -> str:
    payload = json.dumps([sort_name, _encode_value(sort.value_of(row)), row.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def read_cursor(cursor: str, sort_name: str, sort: Sort) -> tuple[Any, int]:
    """(value, id) of the row a cursor points after; :class:`BadCursor` if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, value, last_id = json.loads(raw)
        if name != sort_name or isinstance(last_id, bool) or not isinstance(last_id, int) or abs(last_id) > MAX_ID:
            raise BadCursor(cursor)
        return _decode_value(sort.column, value), last_id
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error) as error:
        raise BadCursor(cursor) from error


def list_rows(result: Any) -> list[Any]:
    """A result's rows as named tuples (``row.name``), for a template to show: reading a column of
    SQLAlchemy's Row by name costs ten times what it costs on a named tuple, and a list page reads
    some twenty columns a row (a page of 25: 0.2 ms). The tuple's class is made once per set of
    column names."""
    make = _row_class(tuple(result.keys()))._make
    return [make(row) for row in result]


@functools.lru_cache(maxsize=256)
def _row_class(names: tuple[str, ...]) -> Any:
    return collections.namedtuple("ListRow", names)


def keyset_page(
    session: Session,
    query: Select[tuple[T]],
    *,
    sort_name: str,
    sort: Sort,
    cursor: str | None,
    per_page: int,
    with_total: bool = False,
    offset: int = 0,
    before: str | None = None,
    rows: bool = False,
    kept: bool = False,
    params: dict[str, Any] | None = None,
) -> KeysetPage[T]:
    """One page of ``query`` after ``cursor``, in ``sort`` order.

    The next page starts where this one ended (WHERE (column, id) > last), so page 1,000 costs what
    page 1 costs and a row inserted meanwhile does not shift every later page, as OFFSET does.
    ``with_total`` adds a COUNT(*) of the whole filtered list: only when asked, it costs more than
    the page on large tables. ``offset`` serves callers that still page by number (slower the
    further they go; the cursor does not). ``before`` (a page's ``prev_cursor``) reads the page that
    ends just before the row it names, as cheaply, by reading backwards; ``prev_cursor`` is only
    filled where a page before may exist (after a cursor or an offset), so page 1 costs no extra query.
    ``rows``: ``query`` selects plain columns (a list's row, see hub.crm.projects.project_rows) and
    the items are its rows as named tuples (:func:`list_rows`), not ORM objects: a page of 25 built
    in a third of the time. ``kept``: ``query`` is itself kept by the caller (the same object for
    every request of its kind, see hub.crm.projects.project_list_rows), so the page's statement is
    kept too, the cursor's values bound at execution (see :func:`_kept_page`); ``params``: values of
    the kept query's own bound parameters (a searched text).
    """

    def fetch(statement: Select[tuple[T]]) -> list[Any]:
        if rows:
            # Plain columns need none of the ORM's result handling: run on the session's connection.
            return list_rows(session.connection().execute(statement, params or {}))
        return list(session.scalars(statement, params or {}).unique())

    total = None
    if with_total:
        counted = select(func.count()).select_from(query.order_by(None).subquery())
        total = int(session.scalar(counted, params or {}) or 0)
    if before:
        query = query.order_by(None)
        value, first_id = read_cursor(before, sort_name, sort)
        query = query.where(sort.before(value, first_id))
        found = fetch(query.order_by(*sort.reverse_order()).limit(per_page + 1))
        items = list(reversed(found[:per_page]))
        return KeysetPage(
            items=items,
            next_cursor=make_cursor(sort_name, sort, items[-1]) if items else None,
            total=total,
            prev_cursor=make_cursor(sort_name, sort, items[0]) if len(found) > per_page else None,
        )
    if kept and rows and not before and not with_total:
        values: dict[str, Any] = dict(params or {})
        value_is_none = False
        if cursor:
            value, values["cursor_id"] = read_cursor(cursor, sort_name, sort)
            value_is_none = value is None
            if not value_is_none:
                values["cursor_value"] = value
        statement = _kept_page(query, sort_name, sort, bool(cursor), value_is_none, per_page, offset)
        found = list_rows(session.connection().execute(statement, values))
    else:
        if cursor:
            value, last_id = read_cursor(cursor, sort_name, sort)
            query = query.where(sort.after(value, last_id))
        query = query.order_by(None)  # the sort's order alone (with id as tie-breaker), whatever came in
        found = fetch(query.order_by(*sort.order()).limit(per_page + 1).offset(offset))
    items = found[:per_page]
    next_cursor = make_cursor(sort_name, sort, items[-1]) if len(found) > per_page else None
    prev_cursor = make_cursor(sort_name, sort, items[0]) if items and (cursor or offset) else None
    return KeysetPage(items=items, next_cursor=next_cursor, total=total, prev_cursor=prev_cursor)


# Page statements of kept list queries: (query, sort, after a cursor, the cursor's value NULL,
# per_page, offset) -> statement. Each is made once: SQLAlchemy keys a statement's compiled SQL by a
# walk of the whole statement, which a statement kept does once, and building a list's statement
# and walking it cost as much as running it (0.2 ms). The cursor's values are bound at execution.
_KEPT_PAGES: dict[tuple[Any, ...], Any] = {}
KEPT_PAGES = 2048


def _kept_page(
    query: Any, sort_name: str, sort: Sort, after: bool, value_is_none: bool, per_page: int, offset: int
) -> Any:

    def make() -> Any:
        ahead = query
        if after:
            value: Any = None if value_is_none else bindparam("cursor_value")
            cursor_id: Any = bindparam("cursor_id")
            ahead = ahead.where(sort.after(value, cursor_id))
        return ahead.order_by(None).order_by(*sort.order()).limit(per_page + 1).offset(offset)

    return kept(_KEPT_PAGES, (query, sort_name, after, value_is_none, per_page, offset), make, KEPT_PAGES)
