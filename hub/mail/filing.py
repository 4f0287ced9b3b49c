"""Filing mail by hand: the "To file" list of mail that matched nothing, linking an e-mail to a
relation or project found by search, the e-mails of one contact, and why an e-mail sits on a
project (with one-click undo of what a matching rule did).

Every read goes through :func:`hub.mail.privacy.email_visible`; every object named by id is loaded
through the visibility rule of :mod:`hub.crm.access`, so a hidden relation, project or e-mail
answers exactly like a missing one (:class:`~hub.errors.NotFound`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from hub.crm.events import EmailsLinked, announce
from hub.crm.projects import get_project
from hub.crm.relations import EMAIL_RE, get_relation
from hub.db import insert_ignore
from hub.errors import NotFound
from hub.i18n import _
from hub.mail.kinds import AUTOMATIC_KINDS
from hub.mail.links import link_to_project
from hub.mail.privacy import email_visible
from hub.mail.read import get_email
from hub.models import (
    Contact,
    Email,
    EmailParticipant,
    EmailProject,
    EmailProjectUndone,
    EmailRelation,
    Mailbox,
    MailboxEmail,
    Project,
    Relation,
    User,
)
from hub.models.base import utcnow
from hub.text import like_pattern

# Links a matching rule made, which the e-mail page explains and lets undo in one click.
RULE_LINKS = ("single-open", "one-off")


def to_file(user: User, search: str = "") -> Select[tuple[Email]]:
    """Mail in ``user``'s own and the shared mailboxes that is linked to no relation and no project.

    Mail among staff only and mail on the mailbox's never-share list (``withheld``) is left out:
    it is not CRM correspondence. A colleague's personal mail never shows (not their mailbox)."""
    in_my_or_shared = exists().where(
        MailboxEmail.email_id == Email.id,
        MailboxEmail.mailbox_id == Mailbox.id,
        MailboxEmail.withheld.is_(False),
        or_(Mailbox.owner_id == user.id, Mailbox.owner_id.is_(None)),
    )
    query = select(Email).where(
        email_visible(user),
        in_my_or_shared,
        ~exists().where(EmailRelation.email_id == Email.id),
        ~exists().where(EmailProject.email_id == Email.id),
        Email.kind.notin_(AUTOMATIC_KINDS),
    )
    return _searched(query, search)


def _searched(query: Select[tuple[Email]], search: str) -> Select[tuple[Email]]:
    if search.strip():
        pattern = like_pattern(search)
        query = query.where(
            or_(func.lower(Email.subject).like(pattern, escape="\\"), Email.from_address.like(pattern, escape="\\"))
        )
    return query.order_by(Email.sent_at.desc().nulls_last(), Email.id.desc())


def contact_emails(user: User, contact: Contact, search: str = "") -> Select[tuple[Email]]:
    """The e-mails from, to or copied to ``contact`` that ``user`` may see, newest first."""
    involved = exists().where(EmailParticipant.email_id == Email.id, EmailParticipant.contact_id == contact.id)
    return _searched(select(Email).where(email_visible(user), involved), search)


def link_to_relation(session: Session, email: Email, relation: Relation) -> None:
    """Show the e-mail on the relation's E-mails tab; the caller checked both are visible."""
    insert_ignore(
        session, EmailRelation, [{"email_id": email.id, "relation_id": relation.id}], ["email_id", "relation_id"]
    )
    announce(session, EmailsLinked.of([{"email_id": email.id, "relation_id": relation.id}]))


def file_email(
    session: Session, user: User, email_id: int, *, relation_id: int | None = None, project_id: int | None = None
) -> Relation | Project:
    """Link an e-mail ``user`` may see to a relation or project ``user`` may see (ids from the search
    picker). Anything hidden answers :class:`NotFound`, exactly like something missing."""
    email = get_email(session, user, email_id)
    if project_id is not None:
        project = get_project(session, user, project_id)
        session.execute(
            delete(EmailProjectUndone).where(
                EmailProjectUndone.email_id == email.id, EmailProjectUndone.project_id == project.id
            )
        )
        link_to_project(session, email, project)
        return project
    if relation_id is not None:
        relation = get_relation(session, user, relation_id)
        link_to_relation(session, email, relation)
        return relation
    raise NotFound(0)


@dataclass(frozen=True)
class LinkReason:
    project: Project
    how: str

    @property
    def undoable(self) -> bool:
        return self.how in RULE_LINKS

    @property
    def words(self) -> str:
        """Why the e-mail is on this project, in the reader's language."""
        if self.how == "single-open":
            return _("Linked to this project because it is the relation's only open project.")
        if self.how == "one-off":
            return _("Linked to this project because its one-off contact wrote or was written to.")
        if self.how == "token":
            return _("Linked because its subject names this project ([P-%(id)s]).", id=self.project.id)
        if self.how == "thread":
            return _("Linked because it belongs to a conversation on this project.")
        return _("Linked by hand.")


def link_reasons(session: Session, user: User, email: Email) -> list[LinkReason]:
    """The projects ``user`` may see that the e-mail is on, each with why."""
    from hub.crm.access import project_visible

    rows = session.execute(
        select(Project, EmailProject.how)
        .join(EmailProject, EmailProject.project_id == Project.id)
        .where(EmailProject.email_id == email.id, project_visible(user))
        .order_by(Project.name, Project.id)
    ).tuples()
    return [LinkReason(project, how) for project, how in rows]


def undo_link(session: Session, user: User, email_id: int, project_id: int) -> Project:
    """Take the e-mail off the project and remember it, so matching never puts it back there.

    Only what a rule did (:data:`RULE_LINKS`) is undone here; NotFound for anything else, and for an
    e-mail or project ``user`` may not see."""
    email = get_email(session, user, email_id)
    project = get_project(session, user, project_id)
    how = session.scalar(
        select(EmailProject.how).where(EmailProject.email_id == email.id, EmailProject.project_id == project.id)
    )
    if how not in RULE_LINKS:
        raise NotFound(project_id)
    session.execute(
        delete(EmailProject).where(EmailProject.email_id == email.id, EmailProject.project_id == project.id)
    )
    insert_ignore(
        session,
        EmailProjectUndone,
        [{"email_id": email.id, "project_id": project.id, "how": how, "undone_by_id": user.id, "undone_at": utcnow()}],
        ["email_id", "project_id"],
    )
    return project


@dataclass(frozen=True)
class Sender:
    name: str
    address: str


def sender_of(email: Email) -> Sender:
    """The From header as a new contact's name and address (the name from the address if none)."""
    address = email.from_address.strip()
    if not EMAIL_RE.match(address):
        address = ""
    name = email.from_name.strip().strip("\"'")
    if not name and address:
        local = address.split("@", 1)[0]
        name = " ".join(part.capitalize() for part in local.replace("_", ".").replace("-", ".").split(".") if part)
    return Sender(name[:200], address[:254])
