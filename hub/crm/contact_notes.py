"""A contact's page: its conversation notes and visit reports, and the projects it is on.

Notes follow the contact, which follows its relation (:mod:`hub.crm.access`): who may see the
relation sees and adds notes. Changing or deleting a note is for its author and admins: a colleague's
visit report is his account of the visit, not a shared text. Notes carry a version like every record
(a save based on an older one is refused with :class:`~hub.crm.access.StaleVersion`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hub.crm.access import claim_version, project_visible, relation_visible
from hub.errors import NotFound, ValidationError
from hub.i18n import _
from hub.models import Contact, ContactNote, ContactNoteKind, Project, Relation, User
from hub.models.crm import project_contacts

MAX_NOTE = 50_000
# Dates people type by mistake (year 26, 20266) are refused rather than stored.
EARLIEST, LATEST = date(1900, 1, 1), date(2199, 12, 31)


@dataclass
class NoteInput:
    kind: str = ContactNoteKind.note.value
    date: date | None = None
    text: str = ""


class NotYours(Exception):
    """Only a note's author or an admin may change or delete it (the note itself is visible)."""


def _validate(data: NoteInput) -> dict[str, str]:
    errors: dict[str, str] = {}
    if data.kind not in {k.value for k in ContactNoteKind}:
        errors["kind"] = _("Choose a note or a visit report.")
    if data.date is None:
        errors["date"] = _("A note needs a date.")
    elif not EARLIEST <= data.date <= LATEST:
        errors["date"] = _("Give a date between 1900 and 2199.")
    data.text = data.text.replace("\x00", "").strip()
    if not data.text:
        errors["text"] = _("Write what was discussed.")
    elif len(data.text) > MAX_NOTE:
        errors["text"] = _("At most %(n)s characters.", n=MAX_NOTE)
    return errors


def may_change_note(user: User | None, note: ContactNote) -> bool:
    if user is None or not user.is_active:
        return False
    return user.is_admin or (note.author_id is not None and note.author_id == user.id)


def contact_notes(session: Session, contact: Contact) -> list[ContactNote]:
    """The contact's notes and visit reports, newest first, authors loaded (two queries)."""
    query = (
        select(ContactNote)
        .where(ContactNote.contact_id == contact.id)
        .order_by(ContactNote.date.desc(), ContactNote.id.desc())
        .options(selectinload(ContactNote.author))
    )
    return list(session.scalars(query))


def get_note(session: Session, user: User, note_id: int) -> ContactNote:
    """The note if ``user`` may see its contact's relation; :class:`NotFound` otherwise."""
    note = session.scalar(
        select(ContactNote)
        .join(Contact, Contact.id == ContactNote.contact_id)
        .join(Relation, Relation.id == Contact.relation_id)
        .where(ContactNote.id == note_id, relation_visible(user))
    )
    if note is None:
        raise NotFound(note_id)
    return note


def save_note(
    session: Session,
    user: User,
    contact: Contact,
    data: NoteInput,
    note: ContactNote | None = None,
    *,
    expected_version: int | None = None,
) -> ContactNote:
    """Add a note to ``contact`` (the caller checked it is visible), or change ``note``.

    Raises :class:`ValidationError`, :class:`NotYours` (someone else's note) and
    :class:`~hub.crm.access.StaleVersion` (changed since ``expected_version``)."""
    if note is not None and not may_change_note(user, note):
        raise NotYours()
    errors = _validate(data)
    if errors:
        raise ValidationError(errors)
    assert data.date is not None
    if note is None:
        note = ContactNote(contact_id=contact.id, author_id=user.id)
        session.add(note)
    else:
        claim_version(session, note, expected_version)
    note.kind = data.kind
    note.date = data.date
    note.text = data.text
    session.flush()
    return note


def delete_note(session: Session, user: User, note: ContactNote, *, expected_version: int | None = None) -> None:
    if not may_change_note(user, note):
        raise NotYours()
    claim_version(session, note, expected_version)
    session.delete(note)
    session.flush()


def contact_projects(session: Session, user: User, contact: Contact) -> list[Project]:
    """The projects ``contact`` is a contact of that ``user`` may see, open ones first."""
    query = (
        select(Project)
        .join(project_contacts, project_contacts.c.project_id == Project.id)
        .where(project_contacts.c.contact_id == contact.id, project_visible(user))
        .order_by(Project.closed, Project.updated_at.desc(), Project.id.desc())
        .options(selectinload(Project.status))
    )
    return list(session.scalars(query))
