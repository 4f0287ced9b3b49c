"""Relation imports uploaded in the web UI and run by a worker.

The ImportJob row is the source of truth: the task message only wakes the job up, and the beat
sweep re-sends work whose message was lost. A job is claimed with a conditional UPDATE (only one
delivery wins) and holds a short claim renewed while it runs (hub.claims); a job whose worker died
is claimed again once its claim has lapsed, within a minute.
Re-running is safe because the import itself is idempotent.

A job imports as the user who uploaded the file: it finds and changes only relations that user may
see (see :mod:`hub.crm.importer`). A job whose uploader is gone or deactivated is not run, rather
than run with more (system) or no visibility than the uploader had.
"""

from __future__ import annotations

from datetime import timedelta
from typing import IO

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hub.blobs import BlobStore
from hub.claims import Claim, heartbeat, try_claim
from hub.crm.documents import clean_filename
from hub.crm.importer import import_relations
from hub.db import Database
from hub.errors import NotFound, ValidationError
from hub.i18n import N_, _
from hub.models import ImportJob, JobStatus, User
from hub.models.base import utcnow

MAX_ATTEMPTS = 3


def create_import_job(
    session: Session, blobs: BlobStore, user: User, filename: str, stream: IO[bytes], max_bytes: int
) -> ImportJob:
    from hub.blobs import TooLarge

    try:
        sha, size = blobs.put(stream, max_bytes)
    except TooLarge:
        raise ValidationError(_("The file is larger than the upload limit."), field="file") from None
    if size == 0:
        raise ValidationError(_("The file is empty."), field="file")
    job = ImportJob(filename=clean_filename(filename), sha256=sha, created_by_id=user.id)
    session.add(job)
    session.flush()
    return job


def claim_import_job(db: Database, job_id: int) -> Claim | None:
    """Take the job if it is pending, or running on a claim that has lapsed (its worker died)."""
    return try_claim(
        db,
        ImportJob,
        job_id,
        ImportJob.attempts < MAX_ATTEMPTS,
        ImportJob.status.in_([JobStatus.pending, JobStatus.running]),
        status=JobStatus.running,
        attempts=ImportJob.attempts + 1,
    )


def run_import_job(db: Database, blobs: BlobStore, job_id: int, *, region: str = "NL") -> ImportJob | None:
    """Run one import job if it can be claimed; returns the finished job, or None if not ours."""
    claim = claim_import_job(db, job_id)
    if claim is None:
        return None
    with heartbeat(claim):
        return _run_claimed(db, blobs, job_id, region)


def _run_claimed(db: Database, blobs: BlobStore, job_id: int, region: str) -> ImportJob:
    with db.transaction() as session:
        job = session.get(ImportJob, job_id)
        if job is None:
            raise NotFound(job_id)
        sha = job.sha256
        uploader = session.get(User, job.created_by_id) if job.created_by_id is not None else None
    if uploader is None or not uploader.is_active:
        return _fail(db, job_id, "the user who uploaded the file no longer exists or is deactivated")
    try:
        with blobs.open(sha) as stream:
            result = import_relations(db, stream, as_user=uploader, region=region)
    except Exception as exc:
        _fail(db, job_id, N_("the import stopped: %(reason)s", reason=str(exc)))
        raise
    with db.transaction() as session:
        job = session.get_one(ImportJob, job_id)
        job.status = JobStatus.done
        job.finished_at = utcnow()
        job.claimed_until, job.claimed_by = None, ""
        job.rows_total = result.rows
        job.relations_created = result.relations_created
        job.contacts_created = result.contacts_created
        job.rows_unchanged = result.unchanged
        lines = [N_("line %(line)s:", line=line) + " " + message for line, message in result.errors]
        if result.error_count > len(result.errors):
            lines.append(N_("… and %(n)s more", n=result.error_count - len(result.errors)))
        job.errors = "\n".join(lines)
    return job


def _fail(db: Database, job_id: int, reason: str) -> ImportJob:
    with db.transaction() as session:
        job = session.get_one(ImportJob, job_id)
        job.status = JobStatus.failed
        job.errors = reason
        job.finished_at = utcnow()
        job.claimed_until, job.claimed_by = None, ""
    return job


def due_import_jobs(session: Session, *, older_than: timedelta = timedelta(seconds=30)) -> list[int]:
    """Jobs whose message may have been lost: pending for a while, or running on an expired lease."""
    now = utcnow()
    query = select(ImportJob.id).where(
        ImportJob.attempts < MAX_ATTEMPTS,
        or_(
            (ImportJob.status == JobStatus.pending) & (ImportJob.created_at < now - older_than),
            (ImportJob.status == JobStatus.running) & (ImportJob.claimed_until < now),
        ),
    )
    return list(session.scalars(query.limit(100)))


def recent_import_jobs(session: Session, user: User, limit: int = 20) -> list[ImportJob]:
    query = select(ImportJob).order_by(ImportJob.id.desc()).limit(limit)
    if not user.is_admin:
        query = query.where(ImportJob.created_by_id == user.id)
    return list(session.scalars(query))


def get_import_job(session: Session, user: User, job_id: int) -> ImportJob:
    job = session.get(ImportJob, job_id)
    if job is None or (not user.is_admin and job.created_by_id != user.id):
        raise NotFound(job_id)
    return job
