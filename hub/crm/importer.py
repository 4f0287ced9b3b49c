"""Import relations and contacts from CSV, streaming, idempotent on re-import.

Accepted format (the one ``bench/gen_mailbox.py --contacts`` writes), with a header row:
``relation,domain,contact_name,email,phone``. A relation is found again by its name, a contact by
its e-mail address within the relation (else by name), so importing the same file twice changes
nothing. Bad rows are reported with their line number and the rest is imported. The file is read
in batches, each committed in its own transaction, so memory stays bounded for any file size and
a crash halfway loses nothing that was committed (re-running finishes the job).

An import runs as a user (the one who uploaded the file) and then never writes into or reveals what
that user may not see: relations are looked up by name, and contacts by e-mail address, among the
relations the user may see only. A hidden relation with the same name is treated as missing, so the
row creates a new relation, and the row's outcome and the summary are the same as for a name that
does not exist. (No unique constraint covers a relation's name or an address across relations, so
creating the look-alike cannot fail in a way that would give the hidden one away.) An import with no
user (the ``hub import relations`` CLI, run by whoever runs the server) is a system action and sees
every relation.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from hub.crm.access import relation_visible
from hub.crm.events import AddressesAdded, Belonging, NumbersAdded, announce
from hub.crm.relations import EMAIL_RE, FREE_MAIL_DOMAINS
from hub.db import Database
from hub.i18n import N_
from hub.models import (
    Contact,
    EmailAddress,
    PhoneNumber,
    Relation,
    RelationKind,
    RelationStatus,
    User,
)
from hub.phones import to_e164
from hub.text import csv_lines, fold

REQUIRED = ("relation", "contact_name")
KNOWN = ("relation", "domain", "contact_name", "email", "phone", "function", "city", "status")
# Column names as a Dutch (or English) spreadsheet heads them, for the names above: folded (case,
# accents, spaces, dashes and underscores ignored). A header in the users' words needs no renaming.
HEADER_NAMES = {
    "relation": ("relatie", "bedrijf", "bedrijfsnaam", "organisatie", "company", "organisation", "organization"),
    "domain": ("domein", "website"),
    "contact_name": ("contact", "contactpersoon", "naam", "naamcontactpersoon", "name", "contactname", "person"),
    "email": ("e-mail", "emailadres", "e-mailadres", "mail", "emailaddress"),
    "phone": ("telefoon", "telefoonnummer", "tel", "telnr", "mobiel", "phonenumber", "telephone"),
    "function": ("functie", "jobtitle", "title"),
    "city": ("plaats", "stad", "woonplaats", "vestigingsplaats", "town"),
    "status": ("relatiestatus",),
}
# Relation statuses as Dutch users write them (the list shows "Klant", "Inactief").
STATUS_NAMES = {"klant": "customer", "inactief": "inactive"}


def _header_key(name: str) -> str:
    return "".join(ch for ch in fold(name) if ch.isalnum())


_COLUMN_OF = {_header_key(alias): column for column, aliases in HEADER_NAMES.items() for alias in (column, *aliases)}


def column_names(header: list[str]) -> list[str]:
    """The import's own name for each column of ``header`` (a column it does not know keeps its own,
    lower-cased); ``Relatie;Naam;E-mailadres;Telefoon`` is ``relation,contact_name,email,phone``."""
    return [_COLUMN_OF.get(_header_key(name), name.strip().lower()) for name in header]


BATCH = 500
MAX_ERRORS_KEPT = 1000


@dataclass
class ImportResult:
    rows: int = 0
    relations_created: int = 0
    contacts_created: int = 0
    unchanged: int = 0
    error_count: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def add_error(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append((line, message))

    def summary(self) -> str:
        return (
            f"imported {self.rows} rows: {self.relations_created} relations and {self.contacts_created} contacts "
            f"created, {self.unchanged} unchanged, {self.error_count} rejected"
        )


@dataclass
class _Row:
    line: int
    relation: str
    domain: str
    contact_name: str
    email: str
    phone: str
    e164: str
    function: str
    city: str
    status: str


class _CountingReader(io.RawIOBase):
    """Counts bytes read so the caller can show progress against the file size."""

    def __init__(self, stream: IO[bytes], on_bytes: Callable[[int], None] | None) -> None:
        self.stream = stream
        self.on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if self.on_bytes and n:
            self.on_bytes(n)
        return n


def _check(raw: dict[str, str], line: int, region: str) -> _Row | str:
    relation = (raw.get("relation") or "").strip()
    contact_name = (raw.get("contact_name") or "").strip()
    email = (raw.get("email") or "").strip()
    phone = (raw.get("phone") or "").strip()
    domain = (raw.get("domain") or "").strip().lower().removeprefix("@")
    status = (raw.get("status") or "").strip().lower()
    status = STATUS_NAMES.get(status, status)
    if None in raw.values() or None in raw:  # csv.DictReader marks short/long rows this way
        return N_("wrong number of columns")
    if not relation:
        return N_("the relation name is empty")
    if len(relation) > 200:
        return N_("the relation name is longer than 200 characters")
    if not contact_name and (email or phone):
        return N_("the contact has no name")
    if email and not EMAIL_RE.match(email):
        return N_("%(value)s is not a valid e-mail address", value=repr(email))
    e164 = ""
    if phone:
        e164 = to_e164(phone, region) or ""
        if not e164:
            return N_("%(value)s is not a valid phone number", value=repr(phone))
    if domain and ("." not in domain or " " in domain):
        return N_("%(value)s is not a domain", value=repr(domain))
    if domain in FREE_MAIL_DOMAINS:
        domain = ""  # a free-mail domain identifies nobody; keep the row, drop the domain
    if status and status not in {s.value for s in RelationStatus}:
        return N_("%(value)s is not a relation status (lead, prospect, customer, inactive)", value=repr(status))
    return _Row(
        line,
        relation,
        domain,
        contact_name,
        email,
        phone,
        e164,
        (raw.get("function") or "").strip(),
        (raw.get("city") or "").strip(),
        status,
    )


def _batches(reader: csv.DictReader[str], result: ImportResult, region: str) -> Iterator[list[_Row]]:
    batch: list[_Row] = []
    for raw in reader:
        line = reader.line_num
        result.rows += 1
        checked = _check(raw, line, region)
        if isinstance(checked, str):
            result.add_error(line, checked)
            continue
        batch.append(checked)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True)
class _Importer:
    """Who the import runs as: ``visible`` limits every look-up, ``owner_id`` owns what it creates."""

    visible: ColumnElement[bool]
    owner_id: int | None

    @classmethod
    def of(cls, user: User | None) -> _Importer:
        if user is None:
            return cls(visible=true(), owner_id=None)  # a system import (the CLI) sees everything
        return cls(visible=relation_visible(user), owner_id=user.id)


def _import_batch(session: Session, rows: list[_Row], result: ImportResult, importer: _Importer) -> None:
    names = {r.relation for r in rows}
    relations: dict[str, Relation] = {}
    # Only relations the importing user may see are found: a hidden one must answer like a missing one.
    found = select(Relation).where(Relation.name.in_(names), importer.visible).order_by(Relation.id)
    for rel in session.scalars(found):
        relations.setdefault(rel.name, rel)
    keys = {r.email.casefold() for r in rows if r.email}
    known_emails = {
        (rel_id, key)
        for rel_id, key in session.execute(
            select(EmailAddress.relation_id, EmailAddress.address_key)
            .join(Relation, Relation.id == EmailAddress.relation_id)
            .where(EmailAddress.address_key.in_(keys), EmailAddress.contact_id.is_not(None), importer.visible)
        )
    }
    rel_ids = [r.id for r in relations.values()]
    known_names = (
        {
            (rel_id, name)
            for rel_id, name in session.execute(
                select(Contact.relation_id, Contact.name).where(Contact.relation_id.in_(rel_ids))
            )
        }
        if rel_ids
        else set()
    )
    new_addresses: dict[str, tuple[int, int]] = {}
    new_numbers: list[Belonging] = []
    for row in rows:
        relation = relations.get(row.relation)
        created = False
        if relation is None:
            relation = Relation(
                kind=RelationKind.company,
                name=row.relation,
                search_name=fold(row.relation),
                domain=row.domain,
                city=row.city,
                status=RelationStatus(row.status) if row.status else RelationStatus.lead,
                owner_id=importer.owner_id,  # as on the relation form: whoever creates it owns it
            )
            session.add(relation)
            session.flush()
            relations[row.relation] = relation
            result.relations_created += 1
            created = True
        elif row.domain and not relation.domain:
            relation.domain = row.domain
        if not row.contact_name:
            if not created:
                result.unchanged += 1
            continue
        if row.email:
            exists = (relation.id, row.email.casefold()) in known_emails
        else:
            exists = (relation.id, row.contact_name) in known_names
        if exists:
            result.unchanged += 1
            continue
        contact = Contact(relation_id=relation.id, name=row.contact_name, function=row.function)
        session.add(contact)
        session.flush()
        if row.email:
            session.add(
                EmailAddress(
                    relation_id=relation.id, contact_id=contact.id, address=row.email, address_key=row.email.casefold()
                )
            )
            known_emails.add((relation.id, row.email.casefold()))
        if row.phone:
            session.add(PhoneNumber(relation_id=relation.id, contact_id=contact.id, number=row.phone, e164=row.e164))
            if row.e164:
                new_numbers.append(Belonging(relation.id, contact.id, row.e164))
        known_names.add((relation.id, row.contact_name))
        result.contacts_created += 1
        if row.email:
            new_addresses[row.email.casefold()] = (contact.id, relation.id)
    session.flush()
    _announce_new_addresses(session, new_addresses)
    if new_numbers:
        announce(session, NumbersAdded(tuple(new_numbers)))


def _announce_new_addresses(session: Session, new_addresses: dict[str, tuple[int, int]]) -> None:
    """Tell the capabilities (mail: the messages that came first) about the batch's new addresses."""
    if new_addresses:
        items = [Belonging(relation_id, contact_id, key) for key, (contact_id, relation_id) in new_addresses.items()]
        announce(session, AddressesAdded(tuple(items)))


def import_relations(
    db: Database,
    stream: IO[bytes],
    *,
    as_user: User | None = None,
    region: str = "NL",
    on_bytes: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import a relations CSV from ``stream``; each batch of rows commits on its own.

    ``as_user`` is the importing user: the import finds, changes and reports only relations they may
    see. ``None`` is a system import (the CLI) that sees every relation.
    """
    importer = _Importer.of(as_user)
    result = ImportResult()
    # As spreadsheets write it: Dutch Excel's semicolons and Windows-1252 accents, UTF-16 "Unicode text".
    lines, delimiter = csv_lines(io.BufferedReader(_CountingReader(stream, on_bytes)))
    reader = csv.DictReader(lines, delimiter=delimiter)
    header = column_names(list(reader.fieldnames or []))
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        result.add_error(
            1,
            N_(
                "the header row lacks the column(s): %(columns)s (expected relation,domain,contact_name,email,phone)",
                columns=", ".join(missing),
            ),
        )
        return result
    reader.fieldnames = header
    for batch in _batches(reader, result, region):
        with db.transaction() as session:
            _import_batch(session, batch, result, importer)
    return result
