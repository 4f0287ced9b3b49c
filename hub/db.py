"""Engine, session factory and the one transaction helper.

Every unit of work, in a view, a task or a CLI command, runs inside :meth:`Database.transaction`:
it commits when the block ends normally and rolls back on any exception. Work that must only
happen once the data is durable (enqueueing a Celery task) is registered with :func:`after_commit`
and runs after the commit, never before (DESIGN.md convention 4).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

_AFTER_COMMIT = "hub_after_commit"


def make_engine(url: str, **kwargs: Any) -> Engine:
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

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        # No server-side prepared statements (psycopg prepares one once it has run five times): with
        # them PostgreSQL may keep a generic plan made while a table was nearly empty, and a sync's
        # look-ups by Message-ID turned into scans of the growing e-mail table (a first sync of 20,000
        # messages took 20 s instead of 16). Planning each query with its values measured faster
        # than prepared statements with plan_cache_mode=force_custom_plan.
        connect_args={"prepare_threshold": None},
        **kwargs,
    )


def _make_parent_dir(url: str) -> None:
    # The embedded default lives under var/, which a fresh checkout does not have yet.
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


class Database:
    """One engine and its session factory; created by the app factories, never at import time."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
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


def insert_ignore(session: Session, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """INSERT … ON CONFLICT (keys) DO NOTHING, on PostgreSQL and SQLite alike.

    How sync tasks stay idempotent: a rerun after a crash inserts only what is missing.
    """
    if not rows:
        return
    target = getattr(table, "__table__", table)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(target).on_conflict_do_nothing(index_elements=keys), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(target).on_conflict_do_nothing(index_elements=keys), rows)
