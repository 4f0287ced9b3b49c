"""Importing call-record files: the CLI, an upload run by a worker, and the drop folder all read here.

A file streams through its format's parser; legs are stored a batch at a time, each batch in its
own transaction together with how far the file was read (the drop folder's cursor), so a crash
loses nothing and repeats nothing. Bad rows are reported with their line and reason; good rows are
imported whatever the bad ones do.
"""

from __future__ import annotations

import hashlib
import os
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.db import Database, insert_ignore
from hub.errors import NotFound
from hub.i18n import N_
from hub.models import CallFile, CallImport, CallSource
from hub.models.base import utcnow
from hub.telephony.formats import parse_stream
from hub.telephony.records import GZIP_MAGIC, Leg, Rejected, readable
from hub.telephony.store import SourceContext, Stored, load_context, store_legs
from hub.webhooks.outbox import record_calls

BATCH = 5000
# The first rejected rows kept in an import's report (all of them are counted).
KEEP_ERRORS = 200
HEAD_BYTES = 256


@dataclass
class ImportResult:
    rows: int = 0
    imported: int = 0
    known: int = 0
    matched: int = 0
    rejected: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, other: ImportResult) -> None:
        self.rows += other.rows
        self.imported += other.imported
        self.known += other.known
        self.matched += other.matched
        self.rejected += other.rejected
        self.errors += other.errors[: max(KEEP_ERRORS - len(self.errors), 0)]

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < KEEP_ERRORS:
            self.errors.append((line, reason))

    def summary(self) -> str:
        """The CLI's last line (spelled as DESIGN.md promises)."""
        return (
            f"imported {self.imported} calls ({self.matched} matched, {self.known} known, "
            f"{self.rejected} rejected) in {self.seconds:.1f} s"
        )


def source_by_name(session: Session, name: str) -> CallSource:
    source = session.scalar(select(CallSource).where(CallSource.name == name))
    if source is None:
        raise NotFound(name)
    return source


def import_stream(
    db: Database,
    source_id: int,
    stream: BinaryIO,
    *,
    cursor_path: str | None = None,
    final: bool = True,
    on_progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ImportResult:
    """Read ``stream`` into calls of the source. With ``cursor_path`` the read starts where the last
    one ended and the new end is saved with every batch (``final=False``: the PBX may still be
    writing, so an incomplete last record waits for the next read)."""
    started = time.monotonic()
    if cursor_path and _gzip_read_to_its_end(db, source_id, cursor_path, stream):
        return ImportResult(seconds=time.monotonic() - started)
    # Unpacked or converted once (hub.telephony.records.readable): the cursor's offsets and size
    # are those of what is read, not of the file's gzip or UTF-16 bytes.
    stream = readable(stream)
    with db.transaction() as session:
        context = load_context(session, session.get_one(CallSource, source_id))
        offset, line, read_line = _cursor(session, source_id, cursor_path, stream) if cursor_path else (0, 1, 0)
    result = ImportResult()
    batch: list[Leg] = []
    pending = ImportResult()  # this batch's rejected rows, counted on the source with its calls
    position, next_line, read_to = offset, line, read_line
    with _Flusher(db, context, cursor_path, result) as flusher:
        for item in parse_stream(stream, context.config, offset=offset, line=line, final=final):
            item_read_to = item.read_to or item.next_line
            if item_read_to <= read_line:
                continue  # read again to rebuild a CEL channel still open at the cursor; stored before
            # A batch ends between records, never inside one: ``read_line`` says all of a record's
            # calls were stored.
            if len(batch) >= BATCH and item_read_to != read_to:
                flusher.flush(batch, pending.rejected, position, next_line, read_to)
                batch, pending = [], ImportResult()
                if on_progress:
                    on_progress(flusher.position or offset)
                if should_stop and should_stop():
                    break
            result.rows += 1
            if isinstance(item.result, Rejected):
                result.reject(item.result.line, item.result.reason)
                pending.rejected += 1
            else:
                batch.append(item.result)
            position, next_line, read_to = item.end, item.next_line, item_read_to
        else:
            if batch or pending.rejected or (cursor_path and position != offset):
                flusher.flush(batch, pending.rejected, position, next_line, read_to)
    if on_progress:
        on_progress(position)
    result.seconds = time.monotonic() - started
    return result


class _Flusher:
    """Stores batches in order, one transaction each. On PostgreSQL a batch is stored by a second
    thread while the next one is read: the database's work (indexes, foreign keys) and the
    parsing then use both cores instead of taking turns. At most one batch waits, so memory stays
    bounded; batches still commit one after the other, in file order (a leg in a later batch
    merges with its call stored by an earlier one, and the cursor only moves forward)."""

    def __init__(self, db: Database, context: SourceContext, cursor_path: str | None, result: ImportResult) -> None:
        self.db, self.context, self.cursor_path, self.result = db, context, cursor_path, result
        self.position: int | None = None  # the end of the last batch stored
        self._pool = ThreadPoolExecutor(1) if db.engine.dialect.name == "postgresql" else None
        self._running: Future[tuple[ImportResult, int]] | None = None

    def __enter__(self) -> _Flusher:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()

    def flush(self, legs: list[Leg], rejected: int, position: int, next_line: int, read_to: int) -> None:
        self._wait()
        if self._pool is None:
            self._done(self._store(legs, rejected, position, next_line, read_to))
        else:
            self._running = self._pool.submit(self._store, legs, rejected, position, next_line, read_to)

    def _store(
        self, legs: list[Leg], rejected: int, position: int, next_line: int, read_to: int
    ) -> tuple[ImportResult, int]:
        cursor = (position, next_line, read_to)
        return _flush(self.db, self.context, legs, rejected, self.cursor_path, cursor), position

    def _wait(self) -> None:
        if self._running is not None:
            running, self._running = self._running, None
            self._done(running.result())

    def _done(self, stored: tuple[ImportResult, int]) -> None:
        self.result.add(stored[0])
        self.position = stored[1]


def _flush(
    db: Database,
    context: SourceContext,
    legs: list[Leg],
    rejected: int,
    cursor_path: str | None,
    cursor: tuple[int, int, int],
) -> ImportResult:
    """One batch, its source counters and the file's cursor (where the next read starts, its line,
    and the line up to which records were stored): one transaction."""
    with db.transaction() as session:
        stored = store_legs(session, context, legs) if legs else Stored()
        record_calls(session, "created", stored.ids)  # webhooks' call.created, with this batch
        now = utcnow()
        session.execute(
            update(CallSource)
            .where(CallSource.id == context.id)
            .values(
                calls_imported=CallSource.calls_imported + stored.imported,
                rows_rejected=CallSource.rows_rejected + rejected,
                last_import_at=now,
                last_progress_at=now,
                progress_done=CallSource.progress_done + len(legs),
            )
        )
        if cursor_path:
            session.execute(
                update(CallFile)
                .where(CallFile.source_id == context.id, CallFile.path == cursor_path)
                .values(offset=cursor[0], line=cursor[1], read_line=cursor[2], updated_at=now)
            )
    return ImportResult(imported=stored.imported, known=stored.known, matched=stored.matched)


def _gzip_read_to_its_end(db: Database, source_id: int, path: str, stream: BinaryIO) -> bool:
    """A gzip file (a rotated log, written once) whose cursor stands at the end of its content, with
    the same first bytes: nothing new in it, known without unpacking it again. (The drop folder is
    polled every minute, logrotate keeps dozens of them, and each was unpacked whole at every poll.)
    Its end is the size gzip writes in its last four bytes, that of a single member under 4 GB; in
    any doubt (several members, bigger, cut short, other first bytes) it is unpacked and read from
    its cursor as any file is."""
    stream.seek(0)
    if stream.read(len(GZIP_MAGIC)) != GZIP_MAGIC:
        return False
    size = stream.seek(0, os.SEEK_END)
    if size < 18:  # (a gzip header and trailer alone)
        return False
    stream.seek(size - 4)
    recorded_size = int.from_bytes(stream.read(4), "little")
    with db.transaction() as session:
        cursor = session.execute(
            select(CallFile.offset, CallFile.head).where(CallFile.source_id == source_id, CallFile.path == path)
        ).first()
    if cursor is None or cursor.offset <= 0 or cursor.offset != recorded_size:
        return False
    stream.seek(0)
    try:
        first = zlib.decompressobj(wbits=31).decompress(stream.read(1 << 16), HEAD_BYTES)
    except zlib.error:
        return False
    return hashlib.sha256(first).hexdigest() == cursor.head


def _cursor(session: Session, source_id: int, path: str, stream: BinaryIO) -> tuple[int, int, int]:
    """Where to go on reading ``path``: its saved cursor, or the start if the file is new or was
    replaced (rotated: smaller than what was read, or other first bytes); and the line up to which
    its records were imported (``CallFile.read_line``)."""
    stream.seek(0)
    head = hashlib.sha256(stream.read(HEAD_BYTES)).hexdigest()
    size = stream.seek(0, os.SEEK_END)
    insert_ignore(
        session,
        CallFile,
        [{"source_id": source_id, "path": path, "offset": 0, "line": 1, "head": head, "updated_at": utcnow()}],
        ["source_id", "path"],
    )
    cursor = session.scalars(select(CallFile).where(CallFile.source_id == source_id, CallFile.path == path)).one()
    if cursor.offset > size or (cursor.head != head and cursor.offset >= HEAD_BYTES) or cursor.offset < 0:
        cursor.offset, cursor.line, cursor.read_line = 0, 1, 0
    if cursor.offset < HEAD_BYTES or cursor.head != head:
        cursor.head = head  # the first bytes of a file still being written grow until HEAD_BYTES
    return cursor.offset, cursor.line, cursor.read_line


def files_of(path: Path) -> Iterator[Path]:
    """A file, or the files of a folder (not hidden ones), oldest first."""
    if path.is_dir():
        found = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        yield from sorted(found, key=lambda p: (p.stat().st_mtime, p.name))
    else:
        yield path


def import_path(
    db: Database,
    source_id: int,
    path: Path,
    *,
    on_progress: Callable[[int], None] | None = None,
    created_by_id: int | None = None,
) -> ImportResult:
    """Import a file or a folder (every file in it) completely; one report per file."""
    total = ImportResult()
    started = time.monotonic()
    done = 0
    for file in files_of(path):
        base = done

        def progress(position: int, base: int = base) -> None:
            if on_progress:
                on_progress(base + position)

        with file.open("rb") as stream:
            result = import_stream(db, source_id, stream, on_progress=progress)
        done += file.stat().st_size
        record_report(db, source_id, file.name, result, created_by_id=created_by_id)
        total.add(result)
    total.seconds = time.monotonic() - started
    return total


def record_report(
    db: Database, source_id: int, filename: str, result: ImportResult, *, created_by_id: int | None = None
) -> None:
    with db.transaction() as session:
        session.add(
            CallImport(
                source_id=source_id,
                filename=filename[:500],
                status="done",
                created_by_id=created_by_id,
                finished_at=utcnow(),
                **report_values(result),
            )
        )


def report_values(result: ImportResult) -> dict[str, object]:
    return {
        "rows": result.rows,
        "imported": result.imported,
        "known": result.known,
        "matched": result.matched,
        "rejected": result.rejected,
        "errors": "\n".join(N_("line %(line)s:", line=line) + " " + reason for line, reason in result.errors),
    }
