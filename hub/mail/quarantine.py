"""Messages the sync could not store, made visible: listed with the reason, downloadable, retryable.

A quarantined message is private mail like any other: only its mailbox's owner (admins, for a
shared mailbox) sees the list, downloads the raw message and asks for a retry after an upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from hub.blobs import BlobStore
from hub.errors import NotFound
from hub.mail.packs import packs_dir
from hub.mail.packs import read as read_pack
from hub.models import Mailbox, MailFolder, MailQuarantine, User
from hub.paging import Page


@dataclass(frozen=True)
class QuarantinedMessage:
    id: int
    mailbox_id: int
    mailbox: str
    folder: str
    uid: int
    reason: str
    at: datetime
    downloadable: bool
    retry: bool


def _manageable(user: User) -> ColumnElement[bool]:
    """Mailboxes whose quarantine ``user`` may see: their own, and shared ones for admins."""
    if user.is_admin:
        return or_(Mailbox.owner_id == user.id, Mailbox.owner_id.is_(None))
    return and_(Mailbox.owner_id == user.id)


def quarantined(session: Session, user: User, *, page: int = 1, per_page: int = 25) -> Page[QuarantinedMessage]:
    query = (
        select(MailQuarantine, MailFolder.name, Mailbox.id, Mailbox.name)
        .join(MailFolder, MailFolder.id == MailQuarantine.folder_id)
        .join(Mailbox, Mailbox.id == MailFolder.mailbox_id)
        .where(_manageable(user))
        .order_by(MailQuarantine.at.desc(), MailQuarantine.id.desc())
    )
    page = max(page, 1)
    rows = session.execute(query.limit(per_page + 1).offset((page - 1) * per_page)).tuples().all()
    items = [
        QuarantinedMessage(q.id, box_id, box_name, folder, q.uid, q.reason, q.at, bool(q.raw_pack), q.retry)
        for q, folder, box_id, box_name in rows[:per_page]
    ]
    return Page(items=items, page=page, per_page=per_page, has_next=len(rows) > per_page)


def counts(session: Session, mailbox_ids: list[int]) -> dict[int, int]:
    """Mailbox id → how many of its messages are quarantined (the health page's column)."""
    if not mailbox_ids:
        return {}
    rows = session.execute(
        select(MailFolder.mailbox_id, func.count())
        .join(MailQuarantine, MailQuarantine.folder_id == MailFolder.id)
        .where(MailFolder.mailbox_id.in_(mailbox_ids))
        .group_by(MailFolder.mailbox_id)
    )
    return dict(rows.tuples().all())


def get_quarantined(session: Session, user: User, quarantine_id: int) -> tuple[MailQuarantine, Mailbox]:
    row = session.execute(
        select(MailQuarantine, Mailbox)
        .join(MailFolder, MailFolder.id == MailQuarantine.folder_id)
        .join(Mailbox, Mailbox.id == MailFolder.mailbox_id)
        .where(MailQuarantine.id == quarantine_id, _manageable(user))
    ).one_or_none()
    if row is None:
        raise NotFound(quarantine_id)
    return row[0], row[1]


def raw_bytes(blobs: BlobStore, message: MailQuarantine) -> bytes:
    """The message as the server sent it (raises NotFound if it never arrived whole)."""
    if not message.raw_pack:
        raise NotFound(message.id)
    return read_pack(packs_dir(blobs), message.raw_pack, message.raw_offset, message.raw_length, compressed=True)


def ask_retry(session: Session, message: MailQuarantine, mailbox: Mailbox) -> None:
    """The next sync of the folder fetches and parses the message again (after an upgrade)."""
    message.retry = True
    mailbox.next_attempt_at = None
