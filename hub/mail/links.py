"""Linking e-mails to projects and relations by hand, and linking mail that arrived before its contact."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hub.crm.events import AddressesAdded, EmailsLinked, announce
from hub.db import insert_ignore
from hub.models import Email, EmailParticipant, EmailProject, EmailProjectUndone, EmailRelation, Project


def link_to_project(session: Session, email: Email, project: Project) -> None:
    """Show the e-mail (and its relation) on the project; the caller checked both are visible."""
    insert_ignore(
        session,
        EmailProject,
        [{"email_id": email.id, "project_id": project.id, "how": "manual"}],
        ["email_id", "project_id"],
    )
    insert_ignore(
        session,
        EmailRelation,
        [{"email_id": email.id, "relation_id": project.relation_id}],
        ["email_id", "relation_id"],
    )
    announce(session, EmailsLinked.of([{"email_id": email.id, "project_id": project.id}]))


def unlink_from_project(session: Session, email: Email, project: Project) -> None:
    session.execute(
        delete(EmailProject).where(EmailProject.email_id == email.id, EmailProject.project_id == project.id)
    )


def link_mail_of_new_addresses(session: Session, event: AddressesAdded) -> None:
    """The CRM core added addresses to contacts: bring the mail that came from or went to them first.

    One query finds which of the addresses have mail at all (an import announces a whole batch)."""
    wanted = {item.key: item for item in event.items if item.contact_id is not None}
    if not wanted:
        return
    seen = session.scalars(
        select(EmailParticipant.address_key).where(EmailParticipant.address_key.in_(wanted)).distinct()
    )
    for key in list(seen):
        item = wanted[key]
        assert item.contact_id is not None
        link_existing_mail(session, key, item.contact_id, item.relation_id)


def link_existing_mail(session: Session, address_key: str, contact_id: int, relation_id: int) -> int:
    """A contact was added (or got an address): link the mail that already came from or went to it.

    The mail shows on the relation, and an e-mail on no project yet gets the projects the matching
    rules give it now (thread, else the relation's single open project). Returns how many e-mails
    were newly linked to the relation.
    """
    from hub.crm.matching import ProjectClues, match_projects
    from hub.mail.privacy import staff_addresses

    key = address_key.casefold()
    if key in staff_addresses(session):
        return 0  # staff's own address never counts as a contact: it would pull in their whole mailbox
    session.execute(
        update(EmailParticipant)
        .where(EmailParticipant.address_key == key, EmailParticipant.contact_id.is_(None))
        .values(contact_id=contact_id, relation_id=relation_id)
    )
    email_ids = list(
        session.scalars(select(EmailParticipant.email_id).where(EmailParticipant.address_key == key).distinct())
    )
    if not email_ids:
        return 0
    already = set(
        session.scalars(
            select(EmailRelation.email_id).where(
                EmailRelation.relation_id == relation_id, EmailRelation.email_id.in_(email_ids)
            )
        )
    )
    newly = [e for e in email_ids if e not in already]
    insert_ignore(
        session,
        EmailRelation,
        [{"email_id": e, "relation_id": relation_id} for e in newly],
        ["email_id", "relation_id"],
    )
    unlinked = session.execute(
        select(Email.id, Email.subject, Email.thread_key, Email.in_reply_to, Email.references).where(
            Email.id.in_(newly), ~select(EmailProject.email_id).where(EmailProject.email_id == Email.id).exists()
        )
    ).all()
    clues = {
        email_id: ProjectClues.of(subject, thread_key, in_reply_to, references.split(), [relation_id])
        for email_id, subject, thread_key, in_reply_to, references in unlinked
    }
    insert_ignore(
        session,
        EmailProject,
        without_undone(
            session, [{"email_id": e, "project_id": p, "how": how} for e, p, how in match_projects(session, clues)]
        ),
        ["email_id", "project_id"],
    )
    return len(newly)


def without_undone(session: Session, rows: list[dict[str, int | str]]) -> list[dict[str, int | str]]:
    """Project link rows less those someone undid before (hub.mail.filing.undo_link): matching again
    must not put them back."""
    if not rows:
        return rows
    undone = set(
        session.execute(
            select(EmailProjectUndone.email_id, EmailProjectUndone.project_id).where(
                EmailProjectUndone.email_id.in_({r["email_id"] for r in rows})
            )
        ).tuples()
    )
    return [r for r in rows if (r["email_id"], r["project_id"]) not in undone]
