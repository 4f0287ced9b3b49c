"""Reading stored mail: who may see an e-mail, the E-mails tabs, one e-mail with its parts.

Privacy: every query here goes through :func:`hub.mail.privacy.email_visible`, the one rule for
mail (its owner's mailbox, shared mailboxes, and links only where the owner shares).
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from hub.blobs import BlobStore
from hub.crm.access import project_visible
from hub.errors import NotFound
from hub.mail.packs import packs_dir
from hub.mail.packs import read as read_pack
from hub.mail.privacy import email_visible
from hub.models import (
    Attachment,
    Email,
    EmailProject,
    EmailRelation,
    Project,
    Relation,
    User,
)
from hub.paging import Page, paginate
from hub.text import like_pattern


def _list(query: Select[tuple[Email]], search: str) -> Select[tuple[Email]]:
    if search.strip():
        pattern = like_pattern(search)
        query = query.where(
            or_(func.lower(Email.subject).like(pattern, escape="\\"), Email.from_address.like(pattern, escape="\\"))
        )
    return query.order_by(Email.sent_at.desc().nulls_last(), Email.id.desc())


def tab_emails(
    user: User, *, project: Project | None = None, relation: Relation | None = None, search: str = ""
) -> Select[tuple[Email]]:
    """A project's or relation's E-mails tab as a query, newest first: what ``user`` may see of it
    (the caller checked the project or relation). Pages take it a page at a time by cursor."""
    query = select(Email).where(email_visible(user))
    if project is not None:
        query = query.join(EmailProject, EmailProject.email_id == Email.id).where(EmailProject.project_id == project.id)
    if relation is not None:
        query = query.join(EmailRelation, EmailRelation.email_id == Email.id).where(
            EmailRelation.relation_id == relation.id
        )
    return _list(query, search)


def thread_sizes(session: Session, user: User, emails: list[Email]) -> dict[str, int]:
    """How many e-mails of each thread ``user`` may see: a count must not reveal hidden messages."""
    keys = {e.thread_key for e in emails if e.thread_key}
    if not keys:
        return {}
    rows = session.execute(
        select(Email.thread_key, func.count())
        .where(Email.thread_key.in_(keys), email_visible(user))
        .group_by(Email.thread_key)
    )
    return dict(rows.tuples().all())


def get_email(session: Session, user: User, email_id: int) -> Email:
    email = session.scalars(
        select(Email)
        .where(Email.id == email_id, email_visible(user))
        .options(selectinload(Email.participants), selectinload(Email.attachments))
    ).one_or_none()
    if email is None:
        raise NotFound(email_id)
    return email


def thread_of(session: Session, user: User, email: Email) -> list[Email]:
    if not email.thread_key:
        return [email]
    return list(
        session.scalars(
            select(Email)
            .where(Email.thread_key == email.thread_key, email_visible(user))
            .order_by(Email.sent_at.nulls_first(), Email.id)
            .limit(200)
        )
    )


def get_attachment(email: Email, attachment_id: int) -> Attachment:
    for attachment in email.attachments:
        if attachment.id == attachment_id:
            return attachment
    raise NotFound(attachment_id)


def raw_message(blobs: BlobStore, email: Email) -> Iterator[bytes]:
    """The original message as it came from the server, for the .eml download (streamed)."""
    yield read_pack(packs_dir(blobs), email.raw_pack, email.raw_offset, email.raw_length, compressed=True)


def attachment_bytes(blobs: BlobStore, attachment: Attachment) -> bytes:
    return read_pack(packs_dir(blobs), attachment.pack, attachment.offset, attachment.size, compressed=False)


def linked_projects(session: Session, user: User, email: Email) -> list[Project]:
    return list(
        session.scalars(
            select(Project)
            .join(EmailProject, EmailProject.project_id == Project.id)
            .where(EmailProject.email_id == email.id, project_visible(user))
        )
    )


def visible_emails(
    session: Session, user: User, *, search: str = "", message_id: str = "", page: int = 1, per_page: int = 25
) -> Page[Email]:
    query = select(Email).where(email_visible(user))
    if message_id:
        query = query.where(Email.message_id == message_id)
    return paginate(session, _list(query, search), page, per_page)
