"""Reading stored mail: who may see an e-mail, the E-mails tabs, one e-mail with its parts.

Privacy: mail from a personal mailbox is visible to its owner and, once linked, to those who may
see a linked relation or project — nobody else. Mail from a shared mailbox is visible to all staff.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import ColumnElement, Select, exists, false, func, or_, select
from sqlalchemy.orm import Session, selectinload

from hub.blobs import BlobStore
from hub.crm.access import project_visible, relation_visible
from hub.errors import NotFound
from hub.mail.packs import packs_dir
from hub.mail.packs import read as read_pack
from hub.models import (
    Attachment,
    Email,
    EmailLocation,
    EmailProject,
    EmailRelation,
    Mailbox,
    MailFolder,
    Project,
    Relation,
    User,
)
from hub.paging import Page, paginate
from hub.text import like_pattern


def email_visible(user: User | None) -> ColumnElement[bool]:
    if user is None or not user.is_active:
        return false()
    own_or_shared = exists().where(
        EmailLocation.email_id == Email.id,
        EmailLocation.folder_id == MailFolder.id,
        MailFolder.mailbox_id == Mailbox.id,
        or_(Mailbox.owner_id == user.id, Mailbox.owner_id.is_(None)),
    )
    linked_project = exists().where(
        EmailProject.email_id == Email.id, EmailProject.project_id == Project.id, project_visible(user)
    )
    linked_relation = exists().where(
        EmailRelation.email_id == Email.id, EmailRelation.relation_id == Relation.id, relation_visible(user)
    )
    return or_(own_or_shared, linked_project, linked_relation)


def _list(query: Select[tuple[Email]], search: str) -> Select[tuple[Email]]:
    if search.strip():
        pattern = like_pattern(search)
        query = query.where(
            or_(func.lower(Email.subject).like(pattern, escape="\\"), Email.from_address.like(pattern, escape="\\"))
        )
    return query.order_by(Email.sent_at.desc().nulls_last(), Email.id.desc())


def project_emails(
    session: Session, project: Project, *, search: str = "", page: int = 1, per_page: int = 25
) -> Page[Email]:
    """The project's E-mails tab (the caller has checked the user may see the project)."""
    query = (
        select(Email).join(EmailProject, EmailProject.email_id == Email.id).where(EmailProject.project_id == project.id)
    )
    return paginate(session, _list(query, search), page, per_page)


def relation_emails(
    session: Session, relation: Relation, *, search: str = "", page: int = 1, per_page: int = 25
) -> Page[Email]:
    query = (
        select(Email)
        .join(EmailRelation, EmailRelation.email_id == Email.id)
        .where(EmailRelation.relation_id == relation.id)
    )
    return paginate(session, _list(query, search), page, per_page)


def thread_sizes(session: Session, emails: list[Email]) -> dict[str, int]:
    keys = {e.thread_key for e in emails if e.thread_key}
    if not keys:
        return {}
    rows = session.execute(
        select(Email.thread_key, func.count()).where(Email.thread_key.in_(keys)).group_by(Email.thread_key)
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
