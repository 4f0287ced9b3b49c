"""Engine, session factory and the one transaction helper.

Every unit of work, in a view, a task or a CLI command, runs inside :meth:`Database.transaction`:
it commits when the block ends normally and rolls back on any exception. Work that must only
happen once the data is durable (enqueueing a Celery task) is registered with :func:`after_commit`
and runs after the commit, never before (DESIGN.md convention 4).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Engine,
    Enum,
    Table,
    TypeDecorator,
    any_,
    bindparam,
    create_engine,
    event,
    insert,
    make_url,
)
from sqlalchemy.orm import Session, sessionmaker

from hub.text import fold

_AFTER_COMMIT = "hub_after_commit"


# The web's statements are prepared on the server once one has run this often on a connection (see
# make_engine's ``prepared``).
PREPARE_AFTER = 5
# A statement's execution option: never prepared, planned with its values each time (search: the
# plan that suits "bakker" does not suit "de", and a generic one suits neither).
UNPREPARED = {"hub_unprepared": True}


def make_engine(url: str, *, prepared: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url``. ``prepared`` (PostgreSQL; the web's engine): statements run often are
    prepared on the server, so PostgreSQL plans them once per connection instead of per request."""
    if url.startswith("sqlite"):
        _make_parent_dir(url)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the web read while a worker writes; foreign keys are off by default in SQLite.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # Search's folding as SQL (migration 0014's triggers keep the SQLite search index with it).
            dbapi_conn.create_function("hub_fold", 1, sqlite_fold, deterministic=True)

        return engine
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        # Workers: no server-side prepared statements (psycopg prepares one once it has run five
        # times): with them PostgreSQL may keep a generic plan made while a table was nearly empty,
        # and a sync's look-ups by Message-ID turned into scans of the growing e-mail table (a first
        # sync of 20,000 messages took 20 s instead of 16). Planning each query with its values
        # measured faster than prepared statements with plan_cache_mode=force_custom_plan.
        # The web: prepared. Its statements carry the access rule's subplans, which PostgreSQL took
        # 2-4 ms to plan for a fraction of a millisecond of work (a project page: 3.8 ms planning,
        # 0.4 ms running); prepared, the page's statement took 0.2 ms. PostgreSQL still plans the
        # first five runs with their values and keeps a generic plan only where it costs no more;
        # ANALYZE of a grown table makes it plan afresh. Search is never prepared (UNPREPARED).
        connect_args={"prepare_threshold": PREPARE_AFTER if prepared else None},
        **kwargs,
    )
    if prepared:
        event.listen(engine, "do_execute", _execute_unprepared)
        engine.dialect.statement_compiler = _limits_written_in(engine.dialect.statement_compiler)
    # No JIT compilation (on by default since PostgreSQL 12 where LLVM is installed, as on Debian):
    # the access rules' subplans make short queries look costly, past jit_above_cost, and compiling
    # them took longer than running them: the API's e-mail list spent 1.37 s of 1.69 s compiling
    # (60,000 projects), searches and lists tens of milliseconds. hub's queries are short ones.
    event.listen(engine, "connect", _postgresql_session)
    return engine


def _execute_unprepared(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    """A statement with the UNPREPARED execution option runs unprepared (True: it has been run)."""
    if context is None or not context.execution_options.get("hub_unprepared"):
        return False
    cursor.execute(statement, parameters, prepare=False)
    return True


def _limits_written_in(compiler: type[Any]) -> type[Any]:
    """``compiler`` writing a statement's LIMIT and OFFSET into its text instead of binding them.
    A prepared statement's generic plan knows no bound value: with LIMIT $1 PostgreSQL planned a
    list for a tenth of the table and kept planning each request afresh instead (1.2 ms a project
    list); LIMIT 26 gets the plan that stops at row 26 once (0.45 ms). SQLAlchemy keeps one
    compiled form, the numbers written in at execution, so each page size is one statement."""

    class LimitsWrittenIn(compiler):
        def limit_clause(self, select: Any, **kw: Any) -> str:
            return str(super().limit_clause(select, **{**kw, "literal_execute": True}))

    return LimitsWrittenIn


def _postgresql_session(dbapi_conn: Any, _record: Any) -> None:
    # A session setting, so it also holds behind a connection pooler in session mode; a pooler in
    # transaction mode should set it for hub's role instead (ALTER ROLE hub SET jit = off: README).
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    try:
        dbapi_conn.execute("SET jit = off")
    finally:
        dbapi_conn.autocommit = autocommit


@functools.lru_cache(maxsize=65_536)
def _cached_fold(value: str) -> str:
    return fold(value)


def sqlite_fold(value: Any) -> Any:
    """``hub_fold(text)`` on SQLite: :func:`hub.text.fold` (PostgreSQL has its own, migration 0010).
    Every hub SQLite connection has it: the triggers of migration 0014 fold what they index with it,
    so a connection without it (the sqlite3 shell) cannot write the searched tables. Names repeat
    (people share them), so short texts are folded once; long ones (subjects) afresh, so the cache
    stays a few megabytes."""
    if not isinstance(value, str):
        return value
    return _cached_fold(value) if len(value) <= 200 else fold(value)


def _make_parent_dir(url: str) -> None:
    # The embedded default lives under var/, which a fresh checkout does not have yet.
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


class Database:
    """One engine and its session factory; created by the app factories, never at import time."""

    def __init__(self, url: str, *, prepared: bool = False, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, prepared=prepared, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, future=True)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Yield a session; commit at the end of the block, roll back if it raises."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            # Popped in every case, so a rolled-back block never runs its callbacks.
            callbacks: list[Callable[[], None]] = session.info.pop(_AFTER_COMMIT, [])
            session.close()
        for callback in callbacks:
            callback()

    def dispose(self) -> None:
        self.engine.dispose()


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the transaction that ``session`` is in has committed.

    If the transaction rolls back the callback is dropped, so a task is never enqueued for data
    that does not exist.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


# From this many rows on, PostgreSQL gets them by COPY: the server takes copied rows at a fraction
# of the cost of INSERT statements, and psycopg need not parse a statement with thousands of
# parameters. Fewer rows go as statements.
COPY_FROM_ROWS = 20


def among(session: Session, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL as one array parameter (``= ANY(%s)``): an IN list of
    thousands of parameters costs more to render, send and plan than the look-up itself."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(ColumnElement[bool], column == any_(bindparam(None, list(values), type_=ARRAY(column.type))))
    return cast(ColumnElement[bool], column.in_(list(values)))


def insert_ignore(session: Session, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """INSERT … ON CONFLICT (keys) DO NOTHING, on PostgreSQL and SQLite alike.

    How sync tasks stay idempotent: a rerun after a crash inserts only what is missing.
    """
    insert_ignore_returning(session, table, rows, keys, [])


def insert_ignore_returning(
    session: Session, table: Any, rows: list[dict[str, Any]], keys: list[str], returning: list[str]
) -> list[tuple[Any, ...]]:
    """:func:`insert_ignore` that returns the ``returning`` columns of the rows it really inserted
    (none of those a conflict skipped): which of them this transaction added."""
    if not rows:
        return []
    target: Table = getattr(table, "__table__", table)
    returned = [target.c[name] for name in returning]
    statement: Any
    if session.get_bind().dialect.name == "postgresql":
        if len(rows) >= COPY_FROM_ROWS and _copyable(target):
            return _copy_then_insert(session, target, rows, keys, returning)
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(target).on_conflict_do_nothing(index_elements=keys)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(target).on_conflict_do_nothing(index_elements=keys)
    if not returned:
        session.execute(statement, rows)
        return []
    return [tuple(row) for row in session.execute(statement.returning(*returned), rows)]


def bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """A plain INSERT of many rows (every row with the same keys): COPY on PostgreSQL."""
    if not rows:
        return
    target: Table = getattr(table, "__table__", table)
    if session.get_bind().dialect.name == "postgresql" and len(rows) >= COPY_FROM_ROWS and _copyable(target):
        _copy(session, target.name, _with_defaults(target, rows))
    else:
        session.execute(insert(target), rows)


def _copyable(target: Table) -> bool:
    """COPY sends values as psycopg adapts them, without SQLAlchemy's type processing: only for
    tables of plain columns (no Enum, no custom types). UTCDateTime is plain on PostgreSQL: psycopg
    sends aware datetimes to timestamptz columns as they are."""
    from hub.models.base import UTCDateTime

    return not any(
        isinstance(column.type, (Enum, TypeDecorator)) and not isinstance(column.type, UTCDateTime)
        for column in target.columns
    )


def _with_defaults(target: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with the Python-side column defaults an INSERT statement would add (COPY does not)."""
    missing = [
        column
        for column in target.columns
        if column.name not in rows[0] and column.default is not None and not column.primary_key
    ]
    if not missing:
        return rows
    filled = []
    for row in rows:
        extra = {}
        for column in missing:
            default: Any = column.default
            extra[column.name] = default.arg(None) if default.is_callable else default.arg
        filled.append({**row, **extra})
    return filled


def _copy(session: Session, table_name: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    names = ", ".join(f'"{name}"' for name in columns)
    # The session's own psycopg connection: the rows are part of its transaction.
    connection: Any = session.connection().connection.dbapi_connection
    with connection.cursor() as cursor, cursor.copy(f'COPY "{table_name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([row[name] for name in columns])


def _copy_then_insert(
    session: Session, target: Table, rows: list[dict[str, Any]], keys: list[str], returning: list[str]
) -> list[tuple[Any, ...]]:
    """COPY the rows into a temporary twin of the table, then one INSERT … SELECT … ON CONFLICT."""
    rows = _with_defaults(target, rows)
    staging = f"{target.name}_incoming"
    columns = ", ".join(f'"{name}"' for name in rows[0])
    connection = session.connection()
    connection.exec_driver_sql(
        f'CREATE TEMPORARY TABLE IF NOT EXISTS "{staging}" (LIKE "{target.name}" INCLUDING DEFAULTS) '
        "ON COMMIT DELETE ROWS"
    )
    connection.exec_driver_sql(f'TRUNCATE "{staging}"')  # a second call in one transaction starts empty
    _copy(session, staging, rows)
    conflict = ", ".join(f'"{name}"' for name in keys)
    statement = (
        f'INSERT INTO "{target.name}" ({columns}) SELECT {columns} FROM "{staging}" ON CONFLICT ({conflict}) DO NOTHING'
    )
    if not returning:
        connection.exec_driver_sql(statement)
        return []
    returned = ", ".join(f'"{name}"' for name in returning)
    return [tuple(row) for row in connection.exec_driver_sql(f"{statement} RETURNING {returned}")]
