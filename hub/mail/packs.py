"""Raw messages and attachments, stored in one pack file per sync batch.

A file per message costs about half a millisecond to create on an ordinary disk, which is most of a
first sync's time; a pack per batch of 200 costs one. Each raw message is its own gzip member, so
it is read back alone by offset and length; attachments are stored as they are (usually already
compressed). Compression is gzip by ISA-L: the same format zlib reads, at about a seventh of
zlib's CPU on mail (much of which is base64 attachments that hardly compress). The pack is written
and fsynced before the rows that point into it commit: a crash in between leaves an orphan pack,
never a row pointing at nothing; :func:`remove_orphans` deletes such packs later.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from isal import igzip

if TYPE_CHECKING:
    from hub.blobs import BlobStore
    from hub.db import Database

_NAME = re.compile(r"^[0-9a-f]{32}\.pack$")


def packs_dir(blobs: BlobStore) -> Path:
    """Where the packs live: beside the documents, in the document store's root."""
    return blobs.root / "packs"


# ISA-L releases the GIL: compressing in this thread overlaps with parsing the next message.
_COMPRESSOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pack-gzip")


class PackWriter:
    """Collects a batch's raw messages and attachments, then writes them as one file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = f"{uuid.uuid4().hex}.pack"
        self._parts: list[bytes | Future[bytes]] = []
        self._locations: list[tuple[int, int]] = []

    def add(self, data: bytes, *, compress: bool) -> int:
        """Queue ``data`` (gzip-compressed in the background if asked); returns its slot number."""
        self._parts.append(_COMPRESSOR.submit(igzip.compress, data, 1, mtime=0) if compress else data)
        return len(self._parts) - 1

    def close(self) -> None:
        """Write every part in order and make the file durable with one fsync; nothing queued: no file."""
        if not self._parts:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        offset = 0
        with (self.root / self.name).open("wb") as fh:
            for part in self._parts:
                payload = part.result() if isinstance(part, Future) else part
                fh.write(payload)
                self._locations.append((offset, len(payload)))
                offset += len(payload)
            fh.flush()
            os.fsync(fh.fileno())
        self._parts = []

    def location(self, slot: int) -> tuple[int, int]:
        """(offset, length) of a part, once the pack is closed."""
        return self._locations[slot]

    def abandon(self) -> None:
        for part in self._parts:
            if isinstance(part, Future):
                part.cancel()
        self._parts = []


def read(root: Path, name: str, offset: int, length: int, *, compressed: bool) -> bytes:
    if not _NAME.match(name):
        raise ValueError("not a pack name")
    with (root / name).open("rb") as fh:
        fh.seek(offset)
        data = fh.read(length)
    return igzip.decompress(data) if compressed else data


# A sync commits a batch's rows seconds after writing its pack (its lease is minutes): a pack this old
# that no row points into was left by a sync that died in between.
ORPHAN_AFTER_SECONDS = 3600


def remove_orphans(db: Database, root: Path, *, older_than: float = ORPHAN_AFTER_SECONDS) -> int:
    """Delete the packs no e-mail or attachment points into; returns how many were deleted."""
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than
    removed = 0
    batch: list[str] = []
    with os.scandir(root) as entries:
        for entry in entries:
            try:
                if _NAME.match(entry.name) and entry.stat().st_mtime < cutoff:
                    batch.append(entry.name)
            except FileNotFoundError:
                continue
            if len(batch) == 500:
                removed += _remove_unused(db, root, batch)
                batch = []
    return removed + _remove_unused(db, root, batch)


def _remove_unused(db: Database, root: Path, names: list[str]) -> int:
    # Imported here: the parse helper process imports this module and needs no database.
    from sqlalchemy import select

    from hub.models import Attachment, Email, MailQuarantine

    if not names:
        return 0
    with db.transaction() as session:
        used = set(session.scalars(select(Email.raw_pack).where(Email.raw_pack.in_(names)).distinct()))
        used |= set(session.scalars(select(Attachment.pack).where(Attachment.pack.in_(names)).distinct()))
        used |= set(
            session.scalars(select(MailQuarantine.raw_pack).where(MailQuarantine.raw_pack.in_(names)).distinct())
        )
    unused = [name for name in names if name not in used]
    for name in unused:
        (root / name).unlink(missing_ok=True)
    return len(unused)
