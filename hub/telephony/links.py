"""Calls that came before their contact: linked when the number is added, by hand or by the CRM core."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.crm.events import Belonging, NumbersAdded
from hub.crm.matching import number_owners, single_open_projects
from hub.crm.relations import ContactInput, save_contact
from hub.models import Call, Contact, Relation
from hub.webhooks.outbox import record_calls


def link_calls_of_new_numbers(session: Session, event: NumbersAdded) -> None:
    """The CRM core added numbers to contacts or relations: the calls from and to them that nobody
    could place yet now show on the contact, its relation and the relation's single open project."""
    for item in event.items:
        link_calls_of(session, item)


def link_calls_of(session: Session, item: Belonging, *, call_id: int | None = None) -> int:
    """Link the unplaced calls of ``item.key`` (E.164); returns how many were linked.

    Not when other relations have the number too (the import's own rule, hub.crm.matching: such a
    number says nothing about who called): anyone may type any number on a contact of his, and
    adding it must not pull calls that were nobody's onto his relation. ``call_id``: the one call
    a user placed himself (the unmatched calls' buttons), linked to ``item`` whatever else has
    the number."""
    if not item.key:
        return 0
    owners = {relation_id for _contact, relation_id in number_owners(session, [item.key]).get(item.key, ())}
    if owners <= {item.relation_id}:
        wanted = [Call.e164 == item.key, Call.relation_id.is_(None)]
    elif call_id is not None:
        wanted = [Call.id == call_id, Call.relation_id.is_(None)]
    else:
        return 0
    ids = list(session.scalars(select(Call.id).where(*wanted)))
    if not ids:
        return 0
    project_id = single_open_projects(session, [item.relation_id]).get(item.relation_id)
    session.execute(
        update(Call)
        .where(Call.id.in_(ids))
        .values(contact_id=item.contact_id, relation_id=item.relation_id, project_id=project_id)
        .execution_options(synchronize_session=False)
    )
    record_calls(session, "updated", ids)  # webhooks' call.updated (recent calls; see RECENT_CALLS)
    return len(ids)


def _tell_linked_by_hand(session: Session, call: Call) -> None:
    """The call a user linked with a button is told whenever it started (the automatic linking of a
    number's other calls is told for recent calls only), if it is linked now."""
    if session.scalar(select(Call.relation_id).where(Call.id == call.id)) is not None:
        record_calls(session, "updated", [], told=[call.id])


def link_to_contact(session: Session, call: Call, contact: Contact, *, region: str = "NL") -> int:
    """The "link to contact" button of an unmatched call: the number joins the contact, and its calls follow."""
    if not call.e164:
        return 0
    numbers = [p.number for p in contact.phones]
    if call.e164 not in {p.e164 for p in contact.phones}:
        save_contact(
            session,
            contact.relation,
            ContactInput(
                name=contact.name,
                function=contact.function,
                emails=[e.address for e in contact.emails],
                phones=[*numbers, call.e164],
            ),
            contact,
            region=region,
        )
    # The core announces NumbersAdded for the saved number; linking is idempotent, so doing it here
    # too keeps this button working whatever the core announces.
    linked = link_calls_of(session, Belonging(contact.relation_id, contact.id, call.e164), call_id=call.id)
    _tell_linked_by_hand(session, call)
    return linked


def new_contact_from_call(
    session: Session, call: Call, relation: Relation, name: str, *, region: str = "NL"
) -> Contact:
    """The "new contact from this number" button: a contact on ``relation`` with the call's number."""
    contact = save_contact(session, relation, ContactInput(name=name, phones=[call.e164 or call.number]), region=region)
    link_calls_of(session, Belonging(relation.id, contact.id, call.e164), call_id=call.id)
    _tell_linked_by_hand(session, call)
    return contact
