"""Models → JSON, the shapes the OpenAPI document describes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hub.crm.projects import CHOICE_FIELDS
from hub.models import FREE_TEXT_FIELDS, Activity, Choice, Contact, Document, Project, Relation
from hub.paging import Page


def iso(value: Any) -> str | None:
    """Dates as YYYY-MM-DD; times always with their UTC offset (SQLite hands them back naive, but
    they were stored as UTC), so an object reads the same right after it is saved and later on."""
    if value is None:
        return None
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(value.isoformat())


def choice_ref(choice: Choice | None) -> dict[str, Any] | None:
    return {"id": choice.id, "name": choice.name} if choice else None


def choice(c: Choice) -> dict[str, Any]:
    return {"id": c.id, "field": c.field.value, "name": c.name, "sort_order": c.sort_order, "active": c.active}


def contact(c: Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "relation_id": c.relation_id,
        "name": c.name,
        "function": c.function,
        "emails": [e.address for e in c.emails],
        "phones": [p.number for p in c.phones],
    }


def relation(r: Relation) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind.value,
        "name": r.name,
        "street": r.street,
        "postcode": r.postcode,
        "city": r.city,
        "country": r.country,
        "phones": [p.number for p in r.phones],
        "emails": [e.address for e in r.emails],
        "website": r.website,
        "coc_number": r.coc_number,
        "vat_number": r.vat_number,
        "status": r.status.value,
        "owner_id": r.owner_id,
        "domain": r.domain,
        "updated_at": iso(r.updated_at),
        "linked_user_ids": [u.id for u in r.linked_users],
        "linked_group_ids": [g.id for g in r.linked_groups],
    }


def linked(obj: Project | Relation) -> dict[str, list[int]]:
    """Who is linked to a project or relation (nobody linked: all staff see it)."""
    return {"user_ids": [u.id for u in obj.linked_users], "group_ids": [g.id for g in obj.linked_groups]}


def relation_brief(r: Relation) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind.value,
        "name": r.name,
        "city": r.city,
        "status": r.status.value,
        "owner_id": r.owner_id,
    }


def project(p: Project, *, full: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": p.id,
        "relation_id": p.relation_id,
        "relation_name": p.relation.name,
        "name": p.name,
        "start_date": iso(p.start_date),
        "end_date": iso(p.end_date),
        "end_date_expected": p.end_date_expected,
        "responsible_user_id": p.responsible_user_id,
        "value": None if p.value is None else f"{p.value:.2f}",
        "currency": p.currency,
        "closed": p.closed,
        "updated_at": iso(p.updated_at),
        "type": choice_ref(p.type),
        "status": choice_ref(p.status),
    }
    if full:
        data.update(
            {
                "description": p.description,
                "contacts": [{"id": c.id, "name": c.name} for c in p.contacts],
                "one_off_contact": {
                    "name": p.one_off_contact_name,
                    "email": p.one_off_contact_email,
                    "phone": p.one_off_contact_phone,
                },
                "notepad": p.notepad,
                "notepad_updated_at": iso(p.notepad_updated_at),
                "notepad_updated_by_id": p.notepad_updated_by_id,
                "linked_user_ids": [u.id for u in p.linked_users],
                "linked_group_ids": [g.id for g in p.linked_groups],
                **{name: getattr(p, name) for name in FREE_TEXT_FIELDS},
                **{name: choice_ref(getattr(p, name)) for name in CHOICE_FIELDS if name not in ("type", "status")},
            }
        )
    return data


def activity(a: Activity) -> dict[str, Any]:
    return {
        "id": a.id,
        "project_id": a.project_id,
        "title": a.title,
        "description": a.description,
        "due_date": iso(a.due_date),
        "done": a.done,
        "done_at": iso(a.done_at),
        "assigned_user_id": a.assigned_user_id,
    }


def document(d: Document) -> dict[str, Any]:
    return {
        "id": d.id,
        "project_id": d.project_id,
        "filename": d.filename,
        "content_type": d.content_type,
        "size": d.size,
        "sha256": d.sha256,
        "uploaded_by_id": d.uploaded_by_id,
        "uploaded_at": iso(d.uploaded_at),
    }


def page(p: Page[Any], item: Any) -> dict[str, Any]:
    return {"items": [item(x) for x in p.items], "page": p.page, "per_page": p.per_page, "has_next": p.has_next}


def email(e: Any, *, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": e.id,
        "message_id": e.message_id,
        "subject": e.subject,
        "from_address": e.from_address,
        "from_name": e.from_name,
        "sent_at": iso(e.sent_at),
        "thread_key": e.thread_key,
        "has_attachments": e.has_attachments,
        "size": e.size,
    }
    if full:
        data.update(
            {
                "text_body": e.text_body,
                "problems": e.problems,
                "participants": [
                    {
                        "role": p.role,
                        "address": p.address_key,
                        "name": p.name,
                        "contact_id": p.contact_id,
                        "relation_id": p.relation_id,
                    }
                    for p in e.participants
                ],
                "attachments": [
                    {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size}
                    for a in e.attachments
                ],
            }
        )
    return data


def check(c: Any) -> dict[str, Any]:
    return {"ok": c.ok, "words": c.words}


def mailbox(b: Any, viewer: Any) -> dict[str, Any]:
    """A mailbox and its sync health, as ``viewer`` may read it; never the password."""
    from hub.mail.mailboxes import error_for, health_of
    from web.context import installation

    health = health_of(b, viewer, workers_alive=installation().workers_alive)

    return {
        "id": b.id,
        "name": b.name,
        "owner_id": b.owner_id,
        "host": b.host,
        "port": b.port,
        "security": b.security.value,
        "username": b.username,
        "folders": b.folders.splitlines(),
        "sync_since": iso(b.sync_since),
        "poll_interval_seconds": b.poll_interval_seconds,
        "sharing": b.sharing,
        "never_share": b.never_share.splitlines(),
        "last_success_at": iso(b.last_success_at),
        "last_error": error_for(b, viewer),
        "failing": bool(b.last_error),
        "stalled": health.state == "stalled",
        "state": health.state.value,
        "state_words": health.words,
        "progress": {"done": health.done, "total": health.total},
        "messages_stored": b.messages_stored,
        "backlog": b.backlog,
    }
