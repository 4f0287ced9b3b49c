"""Reading stored mail: who may see an e-mail, the E-mails tabs, one e-mail with its parts.

Privacy: every query here goes through :func:`hub.mail.privacy.email_visible`, the one rule for
mail (its owner's mailbox, shared mailboxes, and links only where the owner shares).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, bindparam, exists, false, func, or_, select
from sqlalchemy.orm import Session, selectinload

from hub.blobs import BlobStore
from hub.crm.access import project_visible
from hub.errors import NotFound
from hub.kept import kept
from hub.mail.packs import packs_dir
from hub.mail.packs import read as read_pack
from hub.mail.privacy import _in_own_or_shared_mailbox as in_own_or_shared_mailbox
from hub.mail.privacy import email_visible, shared_with_colleagues
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


# --- a project's E-mails tab as plain values, its statements kept -----------------------------------
# The tab loaded a page of Email objects (every column, bodies included) through a statement built on
# every request: building email_visible (a dozen EXISTS) and keying it for SQLAlchemy's cache cost more
# than running it. These select the columns the list shows and are built once per kind of reader:
# email_visible depends on the user's id, whether active and whether an admin, nothing else.
_KEPT_TABS: dict[tuple[Any, ...], Select[Any]] = {}
KEPT_TABS = 4096
TAB_COLUMNS = (
    Email.id,
    Email.sent_at,
    Email.from_name,
    Email.from_address,
    Email.subject,
    Email.has_attachments,
    Email.thread_key,
)


def _reader(user: User) -> tuple[int, bool, bool]:
    return user.id, bool(user.is_active), bool(user.is_admin)


def project_tab_rows(user: User, *, searched: bool = False) -> Select[Any]:
    """:func:`tab_emails` of a project as a list's plain rows (the columns the E-mails tab shows), a
    kept statement for ``hub.paging.keyset_page(rows=True, kept=True)`` with the parameters
    ``project_id`` and, when ``searched``, ``pattern`` (:func:`tab_search_params`)."""

    def make() -> Select[Any]:
        query = (
            select(*TAB_COLUMNS)
            .where(_visible_on_a_visible_project(user))
            .join(EmailProject, EmailProject.email_id == Email.id)
            .where(EmailProject.project_id == bindparam("project_id"))
        )
        if searched:
            pattern: Any = bindparam("pattern", type_=String())
            query = query.where(
                or_(func.lower(Email.subject).like(pattern, escape="\\"), Email.from_address.like(pattern, escape="\\"))
            )
        return query.order_by(Email.sent_at.desc().nulls_last(), Email.id.desc())

    return kept(_KEPT_TABS, ("project", searched, *_reader(user)), make, KEPT_TABS)


def _visible_on_a_visible_project(user: User) -> ColumnElement[bool]:
    """:func:`~hub.mail.privacy.email_visible` of an e-mail on a project ``user`` may see. The rule
    is: in a mailbox of the user's or a shared one, or shared with colleagues and linked to a project
    or relation the user may see. On a project's tab that link is the one the tab joins (the rule's
    EXISTS correlates to it, in :func:`tab_emails`' statement too), to a project the caller found
    visible by the same rule: so the rule is the mailbox part alone, without a project's rule (a
    dozen EXISTS) asked of every e-mail again. tests/integration/test_project_tabs_rendering.py holds
    it to :func:`tab_emails` for private, withheld, unshared and shared mail and hidden projects."""
    if user is None or not user.is_active:
        return false()
    # Shared with colleagues first: what most of a project's mail is, so the database mostly asks one EXISTS.
    return or_(shared_with_colleagues(), in_own_or_shared_mailbox(user))


def tab_search_params(search: str) -> dict[str, str]:
    """The parameters of :func:`project_tab_rows` for a searched text ({} for none: not searched)."""
    return {"pattern": like_pattern(search)} if search.strip() else {}


THREAD_SLOTS = 25  # the threads of a page of e-mails, asked at most this many at a time


def tab_thread_sizes(
    session: Session, user: User, emails: list[Any], *, project_id: int | None = None
) -> dict[str, int]:
    """:func:`thread_sizes` (what ``user`` may see of each thread, so a count reveals no hidden
    message) through a kept statement. Its IN has a fixed number of parameters (the first key fills
    those left over): an IN of as many as given is rewritten by SQLAlchemy on every execution.

    ``project_id``: the project whose tab lists ``emails``, found visible to ``user`` by the caller.
    A thread's messages on that project are then asked only the mailbox part of the rule (see
    :func:`_visible_on_a_visible_project`: for them it is the whole rule), the others the whole
    rule: the same count, without a project's rule asked again of most of them."""
    keys = sorted({e.thread_key for e in emails if e.thread_key})
    if not keys:
        return {}
    on_project = project_id is not None

    def make() -> Select[Any]:
        slots = [bindparam(f"thread_{n}", type_=String()) for n in range(THREAD_SLOTS)]
        rule = email_visible(user)
        if on_project:
            linked_here = exists().where(
                EmailProject.email_id == Email.id, EmailProject.project_id == bindparam("project_id")
            )
            rule = or_(and_(linked_here, _visible_on_a_visible_project(user)), rule)
        return (
            select(Email.thread_key, func.count()).where(Email.thread_key.in_(slots), rule).group_by(Email.thread_key)
        )

    statement = kept(_KEPT_TABS, ("threads", on_project, *_reader(user)), make, KEPT_TABS)
    connection, sizes = session.connection(), dict[str, int]()
    for start in range(0, len(keys), THREAD_SLOTS):
        chunk = keys[start : start + THREAD_SLOTS]
        values: dict[str, Any] = {f"thread_{n}": chunk[n] if n < len(chunk) else chunk[0] for n in range(THREAD_SLOTS)}
        if on_project:
            values["project_id"] = project_id
        sizes.update(connection.execute(statement, values).tuples().all())
    return sizes


# --- GET /emails: the list's rows, its statements kept ------------------------------------------------
# The API's list loaded a page of Email objects (bodies included) through a statement built on every
# request (email_visible, a dozen EXISTS, built and keyed anew): these select the columns a summary
# shows, and are built once per kind of reader and set of filters given, the values bound when run.
_KEPT_API_LISTS: dict[tuple[Any, ...], Select[Any]] = {}
KEPT_API_LISTS = 1024
API_LIST_COLUMNS = (
    Email.id,
    Email.message_id,
    Email.subject,
    Email.from_address,
    Email.from_name,
    Email.sent_at,
    Email.thread_key,
    Email.has_attachments,
    Email.size,
)


def email_list_rows(user: User, filters: dict[str, Any]) -> tuple[Select[Any], dict[str, Any]]:
    """The e-mails ``user`` may see (:func:`~hub.mail.privacy.email_visible`) narrowed by the given
    ``filters`` (search, message_id, relation_id, project_id, contact_id, mailbox_id, sent_since,
    sent_before; None or "" is not given), as plain rows of :data:`API_LIST_COLUMNS`: a kept statement
    for ``hub.paging.keyset_page(rows=True, kept=True)`` and the values to run it with."""
    from hub.models import EmailParticipant, MailboxEmail

    values = {name: value for name, value in filters.items() if value is not None and value != ""}
    search = values.pop("search", "")
    if search.strip():
        values["pattern"] = like_pattern(search)
    given = tuple(sorted(values))

    def make() -> Select[Any]:
        query = select(*API_LIST_COLUMNS).where(email_visible(user))
        if "pattern" in values:
            pattern: Any = bindparam("pattern", type_=String())
            query = query.where(
                or_(func.lower(Email.subject).like(pattern, escape="\\"), Email.from_address.like(pattern, escape="\\"))
            )
        if "message_id" in values:
            query = query.where(Email.message_id == bindparam("message_id"))
        links = (
            ("relation_id", EmailRelation.email_id, EmailRelation.relation_id),
            ("project_id", EmailProject.email_id, EmailProject.project_id),
            ("contact_id", EmailParticipant.email_id, EmailParticipant.contact_id),
            ("mailbox_id", MailboxEmail.email_id, MailboxEmail.mailbox_id),
        )
        for name, email_id, target in links:
            if name in values:
                query = query.where(Email.id.in_(select(email_id).where(target == bindparam(name))))
        if "sent_since" in values:
            query = query.where(Email.sent_at >= bindparam("sent_since"))
        if "sent_before" in values:
            query = query.where(Email.sent_at < bindparam("sent_before"))
        return query

    reader = (user.id, bool(user.is_active), bool(user.is_admin))
    return kept(_KEPT_API_LISTS, (*reader, given), make, KEPT_API_LISTS), values
