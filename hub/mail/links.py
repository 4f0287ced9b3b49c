"""Linking e-mails to projects and relations by hand, and linking mail that arrived before its contact."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hub.db import insert_ignore
from hub.models import Email, EmailParticipant, EmailProject, EmailRelation, Project


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


def unlink_from_project(session: Session, email: Email, project: Project) -> None:
    session.execute(
        delete(EmailProject).where(EmailProject.email_id == email.id, EmailProject.project_id == project.id)
    )


def link_existing_mail(session: Session, address_key: str, contact_id: int, relation_id: int) -> int:
    """A contact was added (or got an address): link the mail that already came from or went to it.

    Returns how many e-mails were newly linked to the relation.
    """
    key = address_key.casefold()
    session.execute(
        update(EmailParticipant)
        .where(EmailParticipant.address_key == key, EmailParticipant.contact_id.is_(None))
        .values(contact_id=contact_id, relation_id=relation_id)
    )
    email_ids = list(
        session.scalars(select(EmailParticipant.email_id).where(EmailParticipant.address_key == key).distinct())
    )
    already = (
        set(
            session.scalars(
                select(EmailRelation.email_id).where(
                    EmailRelation.relation_id == relation_id, EmailRelation.email_id.in_(email_ids)
                )
            )
        )
        if email_ids
        else set()
    )
    insert_ignore(
        session,
        EmailRelation,
        [{"email_id": e, "relation_id": relation_id} for e in email_ids],
        ["email_id", "relation_id"],
    )
    return len(set(email_ids) - already)
