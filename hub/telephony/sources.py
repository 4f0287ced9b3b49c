"""Call sources: their settings (Settings → Telephony, ``hub calls source add``), the extension map,
the drop folder beat polls, uploads run by a worker, and one health state per source."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, BinaryIO, cast

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from hub.blobs import BlobStore
from hub.claims import Claim, heartbeat, try_claim
from hub.db import Database
from hub.errors import NotFound, ValidationError
from hub.i18n import _
from hub.models import CallExtension, CallImport, CallSource, User
from hub.models.base import utcnow
from hub.models.telephony import CallFormat
from hub.ops.health import Work, WorkHealth, work_state
from hub.secrets import decrypt, encrypt
from hub.telephony.ingest import ImportResult, files_of, import_stream, record_report, report_values
from hub.telephony.records import Clock

FORMATS = tuple(f.value for f in CallFormat)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_BACKOFF = timedelta(hours=1)
# A file touched this recently may be half-written: a JSON document is read once it is quiet.
QUIET_SECONDS = 2.0
# A file untouched this long is complete (rotated away, or the PBX writes elsewhere now): it is read
# as a whole file, its last line without a newline included, and a CEL channel it never ends is
# imported with its end unknown (its CHAN_END went to the next file, which cannot tell it). Read as
# a growing file, such a channel held the cursor for good: its call was lost, and the file was read
# again from there at every poll. No PBX leaves a file it writes untouched for a day.
COMPLETE_AFTER_SECONDS = 24 * 3600


@dataclass
class SourceInput:
    name: str
    format: str
    region: str = "NL"
    timezone: str = "Europe/Amsterdam"
    fields: str = ""
    strip_prefixes: str = ""
    secret: str | None = None  # None: keep the stored one
    drop_folder: str = ""
    poll_interval_seconds: int = 60
    missed_call_activities: bool = True
    active: bool = True
    # extension → user e-mail address or id (None: leave the map as it is)
    extensions: dict[str, int] | None = field(default=None)


def save_source(session: Session, secret_key: str, data: SourceInput, source: CallSource | None = None) -> CallSource:
    errors: dict[str, str] = {}
    name = data.name.strip()
    if not NAME_RE.match(name):
        errors["name"] = _("A name of letters, digits, dots, dashes and underscores (it is part of the webhook URL).")
    elif session.scalar(
        select(CallSource.id).where(CallSource.name == name, CallSource.id != (source.id if source else 0))
    ):
        errors["name"] = _("Another phone system already has this name.")
    if data.format not in FORMATS:
        errors["format"] = _("Choose one of: %(formats)s", formats=", ".join(FORMATS))
    region = data.region.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", region):
        errors["region"] = _("A two-letter country code, such as NL.")
    try:
        Clock(data.timezone.strip())
    except ValueError:
        errors["timezone"] = _("Not a time zone: use a name such as Europe/Amsterdam or UTC.")
    if data.poll_interval_seconds < 5:
        errors["poll_interval_seconds"] = _("Poll at most every 5 seconds.")
    if data.drop_folder.strip() and not Path(data.drop_folder.strip()).is_absolute():
        errors["drop_folder"] = _("The drop folder is a full path on the server, such as /var/spool/hub/pbx1.")
    if data.extensions:
        known = set(session.scalars(select(User.id).where(User.id.in_(list(data.extensions.values())))))
        missing = sorted(ext for ext, user_id in data.extensions.items() if user_id not in known)
        if missing:
            errors["extensions"] = _("No such user for extension %(ext)s.", ext=", ".join(missing))
    if errors:
        raise ValidationError(errors)
    if source is None:
        source = CallSource(name=name, format=data.format)
        session.add(source)
    source.name = name
    source.format = data.format
    source.region = region
    source.timezone = data.timezone.strip() or "UTC"
    source.fields = ",".join(f.strip() for f in data.fields.replace("\n", ",").split(",") if f.strip())
    source.strip_prefixes = ",".join(p.strip() for p in data.strip_prefixes.split(",") if p.strip())
    if data.secret:
        source.secret_encrypted = encrypt(secret_key, data.secret)
    source.drop_folder = data.drop_folder.strip()
    source.poll_interval_seconds = data.poll_interval_seconds
    source.missed_call_activities = data.missed_call_activities
    source.active = data.active
    source.next_attempt_at = None
    session.flush()
    if data.extensions is not None:
        set_extensions(session, source, data.extensions)
    return source


def set_extensions(session: Session, source: CallSource, extensions: dict[str, int]) -> None:
    session.execute(delete(CallExtension).where(CallExtension.source_id == source.id))
    session.add_all(
        CallExtension(source_id=source.id, extension=ext.strip()[:40], user_id=user_id)
        for ext, user_id in sorted(extensions.items())
        if ext.strip()
    )
    session.flush()
    session.expire(source, ["extensions"])


def parse_extension_map(session: Session, text: str) -> dict[str, int]:
    """``100 = anna@example.nl`` lines (or ``100=7``, a user id) → extension → user id."""
    result: dict[str, int] = {}
    bad: list[str] = []
    for line in text.replace(";", "\n").splitlines():
        if not line.strip():
            continue
        ext, _sep, who = line.partition("=")
        ext, who = ext.strip(), who.strip()
        user_id = int(who) if who.isdigit() else session.scalar(select(User.id).where(User.email == who.lower()))
        if not ext or user_id is None:
            bad.append(line.strip())
        else:
            result[ext] = user_id
    if bad:
        raise ValidationError({"extensions": _("Not understood: %(lines)s", lines="; ".join(bad[:5]))})
    return result


def get_source(session: Session, source_id: int) -> CallSource:
    source = session.get(CallSource, source_id)
    if source is None:
        raise NotFound(source_id)
    return source


def all_sources(session: Session) -> list[CallSource]:
    return list(session.scalars(select(CallSource).order_by(CallSource.name)))


def source_secret(source: CallSource, secret_key: str) -> str:
    return decrypt(secret_key, source.secret_encrypted) if source.secret_encrypted else ""


# --- health ------------------------------------------------------------------------------------------------


def health_of(source: CallSource, *, workers_alive: bool) -> WorkHealth:
    """The source's one state. A source without a drop folder has nothing to poll: its health is its
    last import (webhooks, uploads), and it needs a worker only for uploads."""
    polled = bool(source.drop_folder)
    return work_state(
        Work(
            active=source.active,
            claimed_until=source.claimed_until,
            last_progress_at=source.last_progress_at or source.last_attempt_at,
            progress_done=source.progress_done,
            progress_total=source.progress_total,
            failures=source.failures,
            error=source.last_error,
            next_attempt_at=source.next_attempt_at if polled else utcnow() + timedelta(days=1),
            last_success_at=source.last_success_at or (source.last_import_at if not polled else None),
            created_at=source.created_at,
        ),
        workers_alive=workers_alive or not polled,
    )


def recent_imports(session: Session, source_id: int | None = None, limit: int = 20) -> list[CallImport]:
    query = select(CallImport).order_by(CallImport.id.desc()).limit(limit)
    if source_id is not None:
        query = query.where(CallImport.source_id == source_id)
    return list(session.scalars(query))


# --- the drop folder ----------------------------------------------------------------------------------------


def due_sources(session: Session, now: datetime | None = None) -> list[int]:
    now = now or utcnow()
    query = select(CallSource.id).where(
        CallSource.active.is_(True),
        CallSource.drop_folder != "",
        or_(CallSource.claimed_until.is_(None), CallSource.claimed_until < now),
        or_(CallSource.next_attempt_at.is_(None), CallSource.next_attempt_at <= now),
    )
    return list(session.scalars(query.limit(500)))


def poll_source(db: Database, source_id: int) -> ImportResult | None:
    """Read what is new in the source's drop folder; None if another run holds the source."""
    now = utcnow()
    claim = try_claim(
        db,
        CallSource,
        source_id,
        CallSource.active.is_(True),
        CallSource.drop_folder != "",
        last_attempt_at=now,
        progress_done=0,
        progress_total=0,
    )
    if claim is None:
        return None
    with heartbeat(claim):
        try:
            result = _poll_claimed(db, claim)
        except Exception as exc:
            _record_failure(claim, _plain_error(exc))
            raise
    with db.transaction() as session:
        interval = session.scalar(select(CallSource.poll_interval_seconds).where(CallSource.id == source_id)) or 60
    claim.release(
        last_success_at=utcnow(), last_error="", failures=0, next_attempt_at=utcnow() + timedelta(seconds=interval)
    )
    return result


def _poll_claimed(db: Database, claim: Claim) -> ImportResult:
    with db.transaction() as session:
        source = session.get_one(CallSource, claim.object_id)
        folder, fmt = Path(source.drop_folder), source.format
    if not folder.is_dir():
        raise FileNotFoundError(str(folder))
    total = ImportResult()
    import time

    for file in files_of(folder):
        if claim.lost.is_set():
            break
        untouched = time.time() - file.stat().st_mtime
        if fmt == "freeswitch-json" and untouched < QUIET_SECONDS:
            continue
        with file.open("rb") as stream:
            result = import_stream(
                db,
                claim.object_id,
                stream,
                cursor_path=str(file),
                final=fmt == "freeswitch-json" or untouched > COMPLETE_AFTER_SECONDS,
                should_stop=claim.lost.is_set,
            )
        if result.rows:
            record_report(db, claim.object_id, file.name, result)
        total.add(result)
    return total


def _plain_error(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return _("The drop folder %(folder)s does not exist.", folder=str(exc))
    if isinstance(exc, PermissionError):
        return _("hub may not read %(path)s.", path=exc.filename or "")
    return f"{type(exc).__name__}: {exc}"[:500]


def _record_failure(claim: Claim, message: str) -> None:
    now = utcnow()
    with claim.db.transaction() as session:
        source = session.get_one(CallSource, claim.object_id)
        source.failures += 1
        source.last_error = message
        source.next_attempt_at = now + min(timedelta(minutes=2 ** min(source.failures - 1, 10)), MAX_BACKOFF)
    claim.release()


# --- uploads ----------------------------------------------------------------------------------------------------


def create_upload(
    session: Session, blobs: BlobStore, user: User, source: CallSource, filename: str, stream: IO[bytes], max_bytes: int
) -> CallImport:
    """Keep the uploaded file and queue its import (the caller enqueues the task after commit)."""
    from hub.blobs import TooLarge
    from hub.crm.documents import clean_filename

    try:
        sha, size = blobs.put(stream, max_bytes)
    except TooLarge:
        raise ValidationError(_("The file is larger than the upload limit."), field="file") from None
    if size == 0:
        raise ValidationError(_("The file is empty."), field="file")
    upload = CallImport(
        source_id=source.id, filename=clean_filename(filename), blob_sha256=sha, status="queued", created_by_id=user.id
    )
    session.add(upload)
    session.flush()
    return upload


def run_upload(db: Database, blobs: BlobStore, import_id: int) -> CallImport | None:
    """Import an uploaded file once (claimed, so a duplicate message does nothing)."""
    claim = try_claim(
        db,
        CallImport,
        import_id,
        CallImport.status.in_(["queued", "running"]),
        CallImport.blob_sha256 != "",
        status="running",
    )
    if claim is None:
        return None
    with heartbeat(claim):
        with db.transaction() as session:
            upload = session.get_one(CallImport, import_id)
            source_id, sha = upload.source_id, upload.blob_sha256
        try:
            with blobs.open(sha) as stream:
                result = import_stream(db, source_id, cast(BinaryIO, stream))
        except Exception as exc:
            with db.transaction() as session:
                upload = session.get_one(CallImport, import_id)
                upload.status, upload.errors, upload.finished_at = "failed", _plain_error(exc), utcnow()
                upload.claimed_until, upload.claimed_by = None, ""
            raise
        with db.transaction() as session:
            upload = session.get_one(CallImport, import_id)
            for name, value in report_values(result).items():
                setattr(upload, name, value)
            upload.status, upload.finished_at = "done", utcnow()
            upload.claimed_until, upload.claimed_by = None, ""
    return upload


def due_uploads(session: Session, older_than: timedelta = timedelta(seconds=30)) -> list[int]:
    """Uploads whose message may have been lost (the sweep sends them again)."""
    now = utcnow()
    query = select(CallImport.id).where(
        CallImport.blob_sha256 != "",
        or_(
            (CallImport.status == "queued") & (CallImport.started_at < now - older_than),
            (CallImport.status == "running") & (CallImport.claimed_until < now),
        ),
    )
    return list(session.scalars(query.limit(100)))
