"""The one place where an address or a phone number is matched to CRM records.

Used by mail sync, telephony and later calendar. An e-mail address matches contacts by their
case-folded address, then the relation's own addresses; a company domain matches a relation when
no address does (never a free-mail domain, and only when exactly one relation has that domain).
Projects: an explicit token "[P-123]" in the subject, else the project(s) of the thread, else the
open project whose one-off contact wrote or was written to, else the relation's single open project
(:func:`match_projects`). An admin can switch the single-open-project rule off (:func:`single_open_rule_on`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from hub.crm.relations import FREE_MAIL_DOMAINS
from hub.db import among
from hub.models import Email, EmailAddress, EmailProject, PhoneNumber, Project, Relation, Setting

PROJECT_TOKEN = re.compile(r"\[P-(\d{1,12})\]")
K = TypeVar("K")


@dataclass(frozen=True)
class AddressMatch:
    contact_id: int | None
    relation_id: int


def match_addresses(
    session: Session, address_keys: Iterable[str], *, staff: frozenset[str] = frozenset()
) -> dict[str, AddressMatch]:
    """Case-folded addresses → the contact (or relation) they belong to; unknown ones are left out.

    ``staff``: staff's own addresses. They never count as a contact (whoever put one on a relation:
    a contact carrying a mailbox owner's address would otherwise pull the whole mailbox onto it),
    and the company's own domains never match a relation by domain.
    """
    keys = {k for k in address_keys if k and k not in staff}
    if not keys:
        return {}
    found: dict[str, AddressMatch] = {}
    rows = session.execute(
        select(EmailAddress.address_key, EmailAddress.contact_id, EmailAddress.relation_id)
        .where(among(session, EmailAddress.address_key, keys))
        .order_by(EmailAddress.contact_id.is_(None), EmailAddress.id)
    )
    for key, contact_id, relation_id in rows:
        found.setdefault(key, AddressMatch(contact_id, relation_id))
    for key, relation_id in one_off_relations(session, keys - found.keys()).items():
        found[key] = AddressMatch(None, relation_id)
    domains = {k.rsplit("@", 1)[1] for k in keys - found.keys() if "@" in k}
    domains -= FREE_MAIL_DOMAINS
    domains -= {a.rsplit("@", 1)[1] for a in staff if "@" in a}
    if domains:
        by_domain: dict[str, list[int]] = {}
        for domain, relation_id in session.execute(
            select(Relation.domain, Relation.id).where(Relation.domain.in_(domains))
        ):
            by_domain.setdefault(domain, []).append(relation_id)
        for key in keys - found.keys():
            candidates = by_domain.get(key.rsplit("@", 1)[-1], [])
            if len(candidates) == 1:  # two relations sharing a domain: ambiguous, link neither
                found[key] = AddressMatch(None, candidates[0])
    return found


@dataclass(frozen=True)
class NumberMatch:
    contact_id: int | None
    relation_id: int


def match_numbers(session: Session, numbers: Iterable[str]) -> dict[str, NumberMatch]:
    """E.164 numbers → the contact (or relation) they belong to; unknown and ambiguous ones are left out.

    A number of one contact matches that contact. A number on the relation itself, or shared by
    several contacts of one relation (a switchboard), matches the relation. A number on several
    relations matches nothing: taking the first would file a call with the wrong company.
    """
    return numbers_matched(number_owners(session, numbers))


NumberOwners = dict[str, set[tuple[int | None, int]]]


def number_owners(session: Session, numbers: Iterable[str]) -> NumberOwners:
    """E.164 numbers → every (contact, relation) that has it stored; numbers nobody has are left out.
    (Also tells which numbers are stored at all, ambiguous ones included: telephony's number book.)"""
    keys = sorted({n for n in numbers if n})
    owners: NumberOwners = {}
    for start in range(0, len(keys), 5000):
        rows = session.execute(
            select(PhoneNumber.e164, PhoneNumber.contact_id, PhoneNumber.relation_id).where(
                among(session, PhoneNumber.e164, keys[start : start + 5000])
            )
        )
        for e164, contact_id, relation_id in rows:
            owners.setdefault(e164, set()).add((contact_id, relation_id))
    return owners


def numbers_matched(owners: NumberOwners) -> dict[str, NumberMatch]:
    """The owners of numbers (:func:`number_owners`) → the match of each, by :func:`match_numbers`' rule."""
    found: dict[str, NumberMatch] = {}
    for e164, pairs in owners.items():
        relations = {relation_id for _contact, relation_id in pairs}
        if len(relations) != 1:
            continue
        contacts = {contact_id for contact_id, _relation in pairs}
        relation_id = relations.pop()
        found[e164] = NumberMatch(contacts.pop() if len(contacts) == 1 else None, relation_id)
    return found


@dataclass(frozen=True)
class OneOffMatch:
    relation_id: int
    project_id: int | None  # None: several open projects of the relation have the number


def one_off_phones(session: Session, region: str = "NL") -> dict[str, set[tuple[int, int]]]:
    """E.164 → (project id, relation id) of the open projects whose one-off contact has that phone.

    The field is free text as typed on the project, so it is read here with the contacts' own rule
    (:func:`hub.phones.to_e164`); open projects are few, and a caller keeps the answer for a batch
    of numbers (an import reads it once)."""
    from hub.phones import to_e164

    found: dict[str, set[tuple[int, int]]] = {}
    rows = session.execute(
        select(Project.id, Project.relation_id, Project.one_off_contact_phone).where(
            Project.one_off_contact_phone != "", Project.closed.is_(False)
        )
    )
    for project_id, relation_id, phone in rows:
        e164 = to_e164(phone, region)
        if e164:
            found.setdefault(e164, set()).add((project_id, relation_id))
    return found


def one_off_matches(phones: Mapping[str, set[tuple[int, int]]], numbers: Iterable[str]) -> dict[str, OneOffMatch]:
    """Numbers no contact or relation has (:func:`match_numbers` found nothing) → the relation whose
    open project has it as its one-off contact's phone, when only one relation does, and that
    project when it is the only one (as mail's one-off addresses, a number on two relations is
    nobody's)."""
    found: dict[str, OneOffMatch] = {}
    for number in numbers:
        projects = phones.get(number)
        if not projects:
            continue
        relations = {relation_id for _project, relation_id in projects}
        if len(relations) == 1:
            found[number] = OneOffMatch(relations.pop(), next(iter(projects))[0] if len(projects) == 1 else None)
    return found


def project_from_token(session: Session, subject: str) -> int | None:
    for token in PROJECT_TOKEN.findall(subject):
        project_id = session.scalar(select(Project.id).where(Project.id == int(token)))
        if project_id is not None:
            return project_id
    return None


SINGLE_OPEN_SETTING = "single_open_project_rule"


def single_open_rule_on(session: Session) -> bool:
    """Whether mail and calls of a relation with one open project land on it (an admin's switch, on
    unless switched off)."""
    return session.scalar(select(Setting.value).where(Setting.key == SINGLE_OPEN_SETTING)) != "off"


def set_single_open_rule(session: Session, on: bool) -> None:
    """The admin's switch; it applies to what arrives from now on (links made earlier stay)."""
    setting = session.get(Setting, SINGLE_OPEN_SETTING) or Setting(key=SINGLE_OPEN_SETTING)
    setting.value = "on" if on else "off"
    session.add(setting)
    session.flush()


def _open_one_offs(session: Session, address_keys: Iterable[str]) -> list[tuple[str, int, int]]:
    """(address, project id, relation id) of open projects whose one-off contact has one of the addresses."""
    keys = sorted({k for k in address_keys if k})
    if not keys:
        return []
    column = func.lower(Project.one_off_contact_email)
    rows = session.execute(
        select(column, Project.id, Project.relation_id).where(
            Project.one_off_contact_email != "", column.in_(keys), Project.closed.is_(False)
        )
    )
    return [(key, project_id, relation_id) for key, project_id, relation_id in rows]


def one_off_relations(session: Session, address_keys: Iterable[str]) -> dict[str, int]:
    """Address → the relation whose open project has it as its one-off contact (when only one relation does)."""
    found: dict[str, set[int]] = {}
    for key, _project_id, relation_id in _open_one_offs(session, address_keys):
        found.setdefault(key, set()).add(relation_id)
    return {key: relations.pop() for key, relations in found.items() if len(relations) == 1}


def single_open_projects(session: Session, relation_ids: Iterable[int]) -> dict[int, int]:
    """relation id → its one open project, for relations that have exactly one (nothing while an
    admin switched the rule off: :func:`single_open_rule_on`)."""
    ids = set(relation_ids)
    if not ids or not single_open_rule_on(session):
        return {}
    rows = session.execute(
        select(Project.relation_id, func.min(Project.id), func.count())
        .where(among(session, Project.relation_id, ids), Project.closed.is_(False))
        .group_by(Project.relation_id)
    )
    return {relation_id: project_id for relation_id, project_id, count in rows if count == 1}


@dataclass(frozen=True)
class ProjectClues:
    """What decides an e-mail's projects: its subject, its thread and the relations it matched."""

    subject: str
    thread_key: str
    # Message-IDs it answers (In-Reply-To and References): a reply joins the projects of those.
    replies_to: tuple[str, ...]
    relation_ids: frozenset[int]
    # Its correspondents' case-folded addresses (staff's own left out): a project's one-off contact.
    addresses: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        subject: str,
        thread_key: str,
        in_reply_to: str,
        references: Iterable[str],
        relation_ids: Iterable[int],
        addresses: Iterable[str] = (),
    ) -> ProjectClues:
        """The clues of an e-mail from its headers as stored (In-Reply-To may be empty)."""
        return cls(
            subject,
            thread_key,
            tuple(filter(None, [in_reply_to, *references])),
            frozenset(relation_ids),
            frozenset(addresses),
        )


def _projects_by(
    session: Session, column: InstrumentedAttribute[str], keys: set[str], known: ColumnElement[bool] | None
) -> dict[str, set[int]]:
    """key → the projects of the e-mails whose ``column`` (thread key, Message-ID) is that key.

    ``known``: only e-mails matching it count (mail passes "what this mailbox's owner could know
    of": a private e-mail elsewhere must not steer mail, or a crafted reply naming its Message-ID
    would show where it was filed).
    """
    found: dict[str, set[int]] = {}
    if keys:
        query = (
            select(column, EmailProject.project_id)
            .join(EmailProject, EmailProject.email_id == Email.id)
            .where(column.in_(keys))
        )
        if known is not None:
            query = query.where(known)
        rows = session.execute(query)
        for key, project_id in rows:
            found.setdefault(key, set()).add(project_id)
    return found


def match_projects(
    session: Session, items: Mapping[K, ProjectClues], *, known: ColumnElement[bool] | None = None
) -> list[tuple[K, int, str]]:
    """(item, project id, how) for each item: a "[P-123]" token in the subject, else the projects of
    its thread, else the open projects whose one-off contact it involves, else the single open project
    of each relation it matched. Queries are per batch.
    ``known``: which e-mails of the thread may count (see :func:`_projects_by`)."""
    replied = {r for clues in items.values() for r in clues.replies_to}
    thread_keys = {clues.thread_key for clues in items.values() if clues.thread_key} | replied
    by_thread = _projects_by(session, Email.thread_key, thread_keys, known)
    # The message answered may sit in its thread under another thread key (a reply without
    # References, a thread whose first message was never seen): look it up itself too.
    by_message = _projects_by(session, Email.message_id, replied, known)
    single = single_open_projects(session, {r for clues in items.values() for r in clues.relation_ids})
    one_offs: dict[str, set[int]] = {}
    for key, project_id, _relation_id in _open_one_offs(session, {a for c in items.values() for a in c.addresses}):
        one_offs.setdefault(key, set()).add(project_id)
    links: list[tuple[K, int, str]] = []
    for item, clues in items.items():
        token = project_from_token(session, clues.subject) if "[P-" in clues.subject else None
        if token is not None:
            links.append((item, token, "token"))
            continue
        in_thread = set(by_thread.get(clues.thread_key, ()))
        for ref in clues.replies_to:
            in_thread |= by_thread.get(ref, set()) | by_message.get(ref, set())
        if in_thread:
            links += [(item, project_id, "thread") for project_id in sorted(in_thread)]
            continue
        by_one_off = {p for a in clues.addresses for p in one_offs.get(a, ())}
        if by_one_off:
            links += [(item, project_id, "one-off") for project_id in sorted(by_one_off)]
            continue
        links += [(item, single[r], "single-open") for r in sorted(clues.relation_ids) if r in single]
    return links
