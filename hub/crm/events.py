"""One small, typed way for the CRM core to say what changed, and for capabilities to hear it.

The core announces facts ("these addresses now belong to this contact"); mail (and later calls and
appointments) subscribe, so the core imports no capability. Subscribers run in the announcing
transaction, just before it commits: the contact and the mail it brings onto its relation commit
together or not at all, and a page that shows the new contact shows its earlier mail too.

Which capabilities listen is wired in one place, :mod:`hub.wiring`, loaded on the first
announcement (by name: the core has no import arrow into a capability).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Belonging:
    """An address or number that now belongs to this contact (or to the relation itself)."""

    relation_id: int
    contact_id: int | None
    key: str  # a case-folded e-mail address, or a phone number in E.164


@dataclass(frozen=True)
class AddressesAdded:
    """E-mail addresses were added to contacts or relations (one announcement per saved batch)."""

    items: tuple[Belonging, ...]


@dataclass(frozen=True)
class NumbersAdded:
    """Phone numbers were added to contacts or relations (one announcement per saved batch)."""

    items: tuple[Belonging, ...]


@dataclass(frozen=True)
class RecordChanged:
    """A CRM record was saved or is about to be deleted (announced before the DELETE, so a listener
    can still read what it was). ``kind``: "relation", "contact", "project" (later "call",
    "appointment"); ``action``: "created", "updated" or "deleted"."""

    kind: str
    id: int
    action: str


@dataclass(frozen=True)
class EmailLink:
    email_id: int
    relation_id: int | None = None
    project_id: int | None = None


@dataclass(frozen=True)
class EmailsLinked:
    """E-mails were linked to relations or projects (by hand, or by a sync matching new mail)."""

    items: tuple[EmailLink, ...]

    @classmethod
    def of(cls, rows: list[dict[str, Any]]) -> EmailsLinked:
        """From link rows as inserted: dicts with "email_id" and "relation_id" or "project_id"."""
        return cls(tuple(EmailLink(r["email_id"], r.get("relation_id"), r.get("project_id")) for r in rows))


@dataclass(frozen=True)
class StoredEmail:
    """What a listener may need of a newly stored e-mail without reading it again."""

    email_id: int
    kind: str  # "" for mail a person wrote; bounce, complaint, auto_reply, invitation
    details: dict[str, object]
    recipients: tuple[str, ...]  # the case-folded To and Cc addresses (a bounce's To: a VERP address)
    in_reply_to: tuple[str, ...]  # In-Reply-To and References


@dataclass(frozen=True)
class EmailsStored:
    """Mail sync stored new e-mails that are reports (bounces, complaints) or answers to a message
    (announced once per batch; campaigns count bounces and replies from it)."""

    items: tuple[StoredEmail, ...]


Event = AddressesAdded | NumbersAdded | RecordChanged | EmailsLinked | EmailsStored
E = TypeVar("E", AddressesAdded, NumbersAdded, RecordChanged, EmailsLinked, EmailsStored)
_subscribers: dict[type[Any], list[Callable[[Session, Any], None]]] = {}
_wired = False


def subscribe(event_type: type[E], handler: Callable[[Session, E], None]) -> None:
    """Call ``handler(session, event)`` for every ``event_type`` announced (once per handler)."""
    handlers = _subscribers.setdefault(event_type, [])
    if handler not in handlers:
        handlers.append(handler)


def announce(session: Session, event: Event) -> None:
    """Tell every subscriber, in this transaction (see the module's note)."""
    global _wired
    if not _wired:
        importlib.import_module("hub.wiring")
        _wired = True
    for handler in _subscribers.get(type(event), []):
        handler(session, event)
