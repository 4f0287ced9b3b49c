"""Telephony: the phone systems calls come from, their extensions and files, and the calls themselves.

A call is one conversation however many legs the PBX wrote for it (queues, transfers, a-/b-legs):
its key is the source's own grouping key (Asterisk linkedid or uniqueid, FreeSWITCH a-leg uuid, 3CX
history id, Twilio parent CallSid), unique per source, so every import is idempotent. Direction and
outcome are plain strings (not Enum columns) so calls can be COPYed on PostgreSQL.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.models.base import Base, Timestamps, utcnow
from hub.models.users import User


class CallFormat(enum.StrEnum):
    asterisk_csv = "asterisk-csv"
    asterisk_custom = "asterisk-custom"
    asterisk_cel = "asterisk-cel"
    freeswitch_csv = "freeswitch-csv"
    freeswitch_json = "freeswitch-json"
    threecx = "3cx"
    twilio = "twilio"
    generic_csv = "generic-csv"


class Direction(enum.StrEnum):
    inbound = "inbound"
    outbound = "outbound"
    internal = "internal"


class Outcome(enum.StrEnum):
    answered = "answered"
    missed = "missed"
    busy = "busy"
    failed = "failed"
    voicemail = "voicemail"


class CallSource(Timestamps, Base):
    """A phone system (PBX or cloud service) whose call records hub reads.

    The health columns carry the same names as :class:`Mailbox`'s, so :func:`hub.ops.health.work_state`
    and :mod:`hub.claims` apply to a source's drop-folder polling unchanged.
    """

    __tablename__ = "call_source"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    format: Mapped[str] = mapped_column(String(20))
    # The country a national number ("020 123 4567") is read in, and the PBX's clock.
    region: Mapped[str] = mapped_column(String(2), default="NL")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Amsterdam")
    # Field order, comma-separated, for formats where the admin chooses it (empty: the format's default).
    fields: Mapped[str] = mapped_column(Text, default="")
    # Route prefixes dialled before an outside number ("9"), comma-separated.
    strip_prefixes: Mapped[str] = mapped_column(String(100), default="")
    # Webhook secret (Twilio auth token, HMAC key), Fernet-encrypted (hub.secrets).
    secret_encrypted: Mapped[str] = mapped_column(Text, default="")
    # A folder the PBX writes to; beat polls it. Empty: files come by CLI, upload or webhook.
    drop_folder: Mapped[str] = mapped_column(String(500), default="")
    poll_interval_seconds: Mapped[int] = mapped_column(default=60)
    # A missed inbound call from a known number becomes a call-back activity.
    missed_call_activities: Mapped[bool] = mapped_column(default=True)
    active: Mapped[bool] = mapped_column(default=True)
    # Health, shown on the sync-health page (same names as Mailbox).
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    last_import_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    failures: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    claimed_by: Mapped[str] = mapped_column(String(80), default="")
    progress_done: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_total: Mapped[int] = mapped_column(BigInteger, default=0)
    last_progress_at: Mapped[datetime | None] = mapped_column(default=None)
    calls_imported: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_rejected: Mapped[int] = mapped_column(BigInteger, default=0)

    extensions: Mapped[list[CallExtension]] = relationship(
        order_by="CallExtension.extension", cascade="all, delete-orphan", passive_deletes=True
    )


class CallExtension(Base):
    """Extension → the staff member whose phone it is, per source."""

    __tablename__ = "call_extension"
    __table_args__ = (UniqueConstraint("source_id", "extension", name="uq_call_extension_source_extension"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("call_source.id", ondelete="CASCADE"))
    extension: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)

    user: Mapped[User] = relationship()


class CallFile(Base):
    """How far a file of a drop folder has been read: saved with the calls it covers."""

    __tablename__ = "call_file"
    __table_args__ = (UniqueConstraint("source_id", "path", name="uq_call_file_source_path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("call_source.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1000))
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    line: Mapped[int] = mapped_column(BigInteger, default=0)
    # The line after the last record whose calls were stored. A CEL file's cursor stays at the first
    # event of a channel still open: the records read again from there are not imported again.
    read_line: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The first bytes' hash: a file replaced by a new one under the same name (rotation) starts over.
    head: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallImport(Base):
    """One file read (CLI, upload, drop folder): its report. An upload waits here for a worker."""

    __tablename__ = "call_import"
    __table_args__ = (Index("ix_call_import_source_started", "source_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("call_source.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(500))
    # An upload's bytes in the blob store (empty for files read where they lie).
    blob_sha256: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(10), default="queued")  # queued, running, done, failed
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    imported: Mapped[int] = mapped_column(BigInteger, default=0)
    known: Mapped[int] = mapped_column(BigInteger, default=0)
    matched: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    # The first rejected rows, "line: reason" one per line.
    errors: Mapped[str] = mapped_column(Text, default="")
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    claimed_by: Mapped[str] = mapped_column(String(80), default="")


class Call(Base):
    __tablename__ = "call"
    __table_args__ = (
        UniqueConstraint("source_id", "call_key", name="uq_call_source_call_key"),
        Index("ix_call_started_at", "started_at"),
        Index("ix_call_e164_started", "e164", "started_at"),
        Index("ix_call_user_started", "user_id", "started_at"),
        Index("ix_call_relation_started", "relation_id", "started_at"),
        Index("ix_call_project_started", "project_id", "started_at"),
        Index("ix_call_contact_started", "contact_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("call_source.id", ondelete="CASCADE"))
    call_key: Mapped[str] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(10))
    # The outside number as the PBX wrote it, and in E.164 (empty: anonymous, internal, unparsable).
    number: Mapped[str] = mapped_column(String(80), default="")
    e164: Mapped[str] = mapped_column(String(20), default="")
    started_at: Mapped[datetime] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    duration: Mapped[int] = mapped_column(default=0)
    billsec: Mapped[int] = mapped_column(default=0)
    # answered, missed, busy, failed, voicemail; empty while a webhook call is still in progress.
    outcome: Mapped[str] = mapped_column(String(10), default="")
    extension: Mapped[str] = mapped_column(String(40), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    recording_url: Mapped[str] = mapped_column(String(1000), default="")
    legs: Mapped[int] = mapped_column(default=1)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"))
    relation_id: Mapped[int | None] = mapped_column(ForeignKey("relation.id", ondelete="SET NULL"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("project.id", ondelete="SET NULL"))
    # The call-back activity a missed call created (closed by a later answered call from the number).
    callback_activity_id: Mapped[int | None] = mapped_column(ForeignKey("activity.id", ondelete="SET NULL"), index=True)
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)

    source: Mapped[CallSource] = relationship()
    user: Mapped[User | None] = relationship()
