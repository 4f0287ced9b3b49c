"""Background jobs whose state lives in the database (the source of truth for all background work).

A task message only wakes a job up; beat sweeps for jobs whose message was lost. A job is claimed
with a conditional UPDATE, so two deliveries of the same message never both run it.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, utcnow


class JobStatus(enum.StrEnum):
    pending = "pending"
    running = "running"
    done = "done"
    failed = "failed"


class ImportJob(Base):
    """A relations CSV uploaded in the web UI, imported by a worker."""

    __tablename__ = "import_job"
    __table_args__ = (Index("ix_import_job_status", "status", "claimed_until"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), default="relations")
    filename: Mapped[str] = mapped_column(String(255))
    # Content hash of the uploaded file in the blob store.
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[JobStatus] = mapped_column(Enum(JobStatus, native_enum=False, length=20), default=JobStatus.pending)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A running job's short claim (hub.claims), renewed while it runs: once it has lapsed, the job
    # was lost with its worker and may be claimed again.
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    claimed_by: Mapped[str] = mapped_column(String(80), default="")
    attempts: Mapped[int] = mapped_column(default=0)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    rows_total: Mapped[int] = mapped_column(default=0)
    relations_created: Mapped[int] = mapped_column(default=0)
    contacts_created: Mapped[int] = mapped_column(default=0)
    rows_unchanged: Mapped[int] = mapped_column(default=0)
    # One line per bad row: "line 12: e-mail address is not valid".
    errors: Mapped[str] = mapped_column(Text, default="")
