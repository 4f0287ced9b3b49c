"""Mailboxes, their folders and sync cursors, and the e-mails stored from them.

One Email per message however many mailboxes and folders hold it. Its key is the content (a hash
of the headers people read and the body, :mod:`hub.mail.identity`), never the Message-ID alone: a
Message-ID is a claim its sender makes, and anyone can make it. Which mailboxes hold it is a
MailboxEmail (with the owner's private switch); where it sits is an EmailLocation (folder + UID + flags).
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.models.base import Base, Timestamps, utcnow
from hub.models.users import User


class MailSharing(enum.StrEnum):
    """What the owner of a personal mailbox lets colleagues see of its mail."""

    only_me = "only_me"
    # Colleagues who may see a relation or project the e-mail is linked to.
    colleagues = "colleagues"


class MailSecurity(enum.StrEnum):
    none = "none"
    starttls = "starttls"
    ssl = "ssl"


class Mailbox(Timestamps, Base):
    __tablename__ = "mailbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # None: a shared mailbox (sales@); else the personal mailbox of this user.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column()
    security: Mapped[MailSecurity] = mapped_column(Enum(MailSecurity, native_enum=False, length=10))
    username: Mapped[str] = mapped_column(String(254))
    # Fernet token (hub.secrets); the password itself is never stored, logged or shown.
    password_encrypted: Mapped[str] = mapped_column(Text)
    # Folder names, one per line; empty: INBOX and the folder marked \\Sent.
    folders: Mapped[str] = mapped_column(Text, default="")
    sync_since: Mapped[date | None] = mapped_column(default=None)
    poll_interval_seconds: Mapped[int] = mapped_column(default=300)
    active: Mapped[bool] = mapped_column(default=True)
    # Personal mailboxes only (shared ones are seen by all staff): chosen by the owner.
    sharing: Mapped[str] = mapped_column(String(20), default=MailSharing.only_me.value)
    # Addresses and domains (one per line) whose mail is never shared, whatever it is linked to.
    never_share: Mapped[str] = mapped_column(Text, default="")
    # Health, shown on the sync-health page.
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    failures: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    # A sync holds this short claim (hub.claims), renewed while it runs; a worker killed mid-sync
    # leaves it to lapse within a minute. ``claimed_by``: which run holds it.
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    claimed_by: Mapped[str] = mapped_column(String(80), default="")
    # Progress of the sync that runs (or ran last): "1,800 of 3,300" on the health page, and the
    # moment it last moved (no movement for minutes while work is due: stalled).
    progress_done: Mapped[int] = mapped_column(default=0)
    progress_total: Mapped[int] = mapped_column(default=0)
    last_progress_at: Mapped[datetime | None] = mapped_column(default=None)
    messages_stored: Mapped[int] = mapped_column(default=0)
    backlog: Mapped[int] = mapped_column(default=0)
    # Removed by its owner or an admin (hub.mail.mailboxes.remove_mailbox): gone from every list, never
    # synced again, its password erased. ``removal``: "keep" or "delete" while its folders (and, for
    # "delete", the mail no other mailbox holds) are being cleared in batches; "done" once only the row is
    # left, which keeps who owned the kept mail and what he shared of it. "" for a mailbox in use.
    removed_at: Mapped[datetime | None] = mapped_column(default=None)
    removal: Mapped[str] = mapped_column(String(10), default="", server_default="")

    owner: Mapped[User | None] = relationship()
    folder_states: Mapped[list[MailFolder]] = relationship(back_populates="mailbox", order_by="MailFolder.name")


class MailFolder(Base):
    """One synced folder and its cursor; the cursor is saved with the messages it covers."""

    __tablename__ = "mail_folder"
    __table_args__ = (UniqueConstraint("mailbox_id", "name", name="uq_mail_folder_mailbox_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    special_use: Mapped[str] = mapped_column(String(20), default="")
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # New mail: everything above high_uid. Backfill (newest first): everything below low_uid.
    high_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    low_uid: Mapped[int | None] = mapped_column(BigInteger, default=None)
    backfill_done: Mapped[bool] = mapped_column(default=False)
    highestmodseq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    uidnext: Mapped[int | None] = mapped_column(BigInteger, default=None)
    server_messages: Mapped[int | None] = mapped_column(default=None)
    last_synced_at: Mapped[datetime | None] = mapped_column(default=None)

    mailbox: Mapped[Mailbox] = relationship(back_populates="folder_states")


class Email(Base):
    __tablename__ = "email"
    __table_args__ = (
        Index("ix_email_thread_key", "thread_key"),
        Index("ix_email_sent_at", "sent_at"),
        Index("ix_email_message_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # "c:<sha256 of the content>" (hub.mail.identity): the same message delivered to two mailboxes
    # is one e-mail; another message that reuses its Message-ID is another e-mail.
    message_key: Mapped[str] = mapped_column(String(500), unique=True)
    message_id: Mapped[str] = mapped_column(String(500), default="")
    in_reply_to: Mapped[str] = mapped_column(String(500), default="")
    references: Mapped[str] = mapped_column(Text, default="")
    # The Message-ID of the thread's first message (as far as References tell).
    thread_key: Mapped[str] = mapped_column(String(500), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    from_address: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(String(300), default="")
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    text_body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(default=0)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    # Where the raw message (gzip) is: a pack file of its sync batch, offset and length in it.
    # Indexed for the sweep that removes packs a crashed sync left with no row pointing into them.
    raw_pack: Mapped[str] = mapped_column(String(40), default="", index=True)
    raw_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    raw_length: Mapped[int] = mapped_column(default=0)
    has_attachments: Mapped[bool] = mapped_column(default=False)
    # What could not be read as the sender meant it (bad charset, missing Date, truncated body …).
    problems: Mapped[str] = mapped_column(Text, default="")
    # What kind of message it is: "" (ordinary), bounce, complaint, auto_reply, invitation; its
    # details (failed recipient, status code, calendar method and UID …) as JSON.
    kind: Mapped[str] = mapped_column(String(20), default="")
    details: Mapped[str] = mapped_column(Text, default="")
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)

    participants: Mapped[list[EmailParticipant]] = relationship(order_by="EmailParticipant.id")
    attachments: Mapped[list[Attachment]] = relationship(order_by="Attachment.id")


# E-mail lists' order, newest first with undated ones last (hub.paging.Sort), as an index on
# PostgreSQL, where an ascending index read backwards puts NULLs first (migration 0019). SQLite's
# ix_email_sent_at read backwards is already that order.
Index("ix_email_newest_first", Email.sent_at.desc().nulls_last(), Email.id.desc()).ddl_if(dialect="postgresql")


class MailboxEmail(Base):
    """The e-mail came from this mailbox. Personal mail is shared with colleagues only through rows
    whose mailbox shares (``Mailbox.sharing``) and that are neither ``private`` (the owner's switch
    on the e-mail) nor ``withheld`` (its addresses are on the mailbox's never-share list, or it went
    among staff only)."""

    __tablename__ = "mailbox_email"

    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"), primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("email.id", ondelete="CASCADE"), primary_key=True, index=True)
    # The message's size in this mailbox: a renumbered or moved copy is recognised without downloading
    # it again only by Message-ID *and* this size, and only within the same mailbox.
    size: Mapped[int] = mapped_column(default=0)
    private: Mapped[bool] = mapped_column(default=False)
    withheld: Mapped[bool] = mapped_column(default=False)


class EmailLocation(Base):
    __tablename__ = "email_location"
    __table_args__ = (UniqueConstraint("folder_id", "uid", name="uq_email_location_folder_uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("email.id", ondelete="CASCADE"), index=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("mail_folder.id", ondelete="CASCADE"))
    uid: Mapped[int] = mapped_column(BigInteger)
    flags: Mapped[str] = mapped_column(String(500), default="")


class EmailParticipant(Base):
    __tablename__ = "email_participant"
    __table_args__ = (Index("ix_email_participant_address_key", "address_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("email.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(4))  # from, to, cc, bcc
    address_key: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(300), default="")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="SET NULL"), index=True)
    relation_id: Mapped[int | None] = mapped_column(ForeignKey("relation.id", ondelete="SET NULL"), index=True)


class EmailRelation(Base):
    """An e-mail shows on this relation's E-mails tab."""

    __tablename__ = "email_relation"

    email_id: Mapped[int] = mapped_column(ForeignKey("email.id", ondelete="CASCADE"), primary_key=True)
    relation_id: Mapped[int] = mapped_column(
        ForeignKey("relation.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class EmailProject(Base):
    """An e-mail shows on this project's E-mails tab; ``how`` says why (token, thread, one-off, single-open, manual)."""

    __tablename__ = "email_project"

    email_id: Mapped[int] = mapped_column(ForeignKey("email.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True, index=True)
    how: Mapped[str] = mapped_column(String(20))


class Attachment(Base):
    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("email.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    pack: Mapped[str] = mapped_column(String(40), default="", index=True)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)


class MailQuarantine(Base):
    """A message that could not be stored; kept with the reason so nothing is lost silently."""

    __tablename__ = "mail_quarantine"
    __table_args__ = (UniqueConstraint("folder_id", "uid", name="uq_mail_quarantine_folder_uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("mail_folder.id", ondelete="CASCADE"))
    uid: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    raw_sha256: Mapped[str] = mapped_column(String(64), default="")
    # The raw message (gzip in a pack), so its owner can download it; empty if it never arrived whole.
    raw_pack: Mapped[str] = mapped_column(String(40), default="")
    raw_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    raw_length: Mapped[int] = mapped_column(default=0)
    # The owner asked to try again (after an upgrade): the next sync of the folder fetches it anew.
    retry: Mapped[bool] = mapped_column(default=False)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class EmailProjectUndone(Base):
    """Someone undid a link the matching rules made (the single open project): it is remembered, so
    adding a contact or syncing again does not put the e-mail back on that project."""

    __tablename__ = "email_project_undone"

    email_id: Mapped[int] = mapped_column(ForeignKey("email.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True, index=True)
    how: Mapped[str] = mapped_column(String(20), default="")
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    undone_at: Mapped[datetime] = mapped_column(default=utcnow)
