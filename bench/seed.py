"""Bulk seeding for benchmarks: relations, contacts, projects, activities, with realistic names.

Uses SQLAlchemy Core executemany in batches (the ORM one row at a time would take minutes).
Deterministic (seeded random), so figures compare across runs.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text

from hub.accounts.passwords import hash_password
from hub.db import Database
from hub.models import (
    Activity,
    Appointment,
    AppointmentAttendee,
    Call,
    CallSource,
    Choice,
    ChoiceField,
    Contact,
    Email,
    EmailAddress,
    EmailParticipant,
    EmailProject,
    EmailRelation,
    Mailbox,
    MailboxEmail,
    PhoneNumber,
    Project,
    Relation,
    User,
)
from hub.models.crm import project_users
from hub.text import fold

FIRST = [
    "Anna",
    "Bram",
    "Chloé",
    "Daan",
    "Eva",
    "Finn",
    "Gijs",
    "Hanna",
    "Jan",
    "Kees",
    "Lotte",
    "Milan",
    "Noor",
    "Olaf",
    "Pien",
    "Roos",
    "Sem",
    "Tess",
    "Vera",
    "Wouter",
    "Zoë",
]
LAST = ["de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "Bos", "Vos", "Peters"]
KINDS = ["BV", "Groep", "Techniek", "Handel", "NV", "Installatie", "Bouw", "Advies"]
CITIES = ["Amsterdam", "Rotterdam", "Utrecht", "Den Haag", "Eindhoven", "Groningen", "Zwolle", "Delft", "Breda"]
WORDS = [
    "offerte",
    "levering",
    "planning",
    "project",
    "onderhoud",
    "installatie",
    "renovatie",
    "dak",
    "zonnepanelen",
    "warmtepomp",
]
BATCH = 5000
PASSWORD = "benchmark password"


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def seed(
    database: Database,
    relations: int = 100_000,
    contacts: int = 300_000,
    projects: int = 200_000,
    progress: bool = True,
) -> dict[str, Any]:
    rng = random.Random(1)
    now = datetime.now(UTC)
    engine = database.engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("PRAGMA synchronous=OFF"))
        pw = hash_password(PASSWORD)
        users = [
            {
                "email": f"staff{i}@bench.example",
                "name": f"Staff {i}",
                "password_hash": pw,
                "is_admin": i == 0,
                "is_active": True,
                "language": "en",
                "created_at": now,
                "updated_at": now,
            }
            for i in range(10)
        ]
        conn.execute(insert(User), users)
        user_ids = list(range(1, 11))
        choice_rows = [
            {"field": f, "name": f"{f.value} {i}", "sort_order": i, "active": True}
            for f in (ChoiceField.type, ChoiceField.status, ChoiceField.chance)
            for i in range(6)
        ]
        conn.execute(insert(Choice), choice_rows)
        by_field = {
            f: [i + 1 + 6 * k for i in range(6)]
            for k, f in enumerate((ChoiceField.type, ChoiceField.status, ChoiceField.chance))
        }

        def relation_rows() -> Iterator[dict[str, Any]]:
            for r in range(relations):
                name = f"{rng.choice(LAST)} {rng.choice(KINDS)} {r}"
                yield {
                    "kind": "company",
                    "name": name,
                    "search_name": fold(name),
                    "street": f"Straat {r % 300}",
                    "postcode": f"{1000 + r % 8999} AB",
                    "city": rng.choice(CITIES),
                    "country": "NL",
                    "website": "",
                    "coc_number": "",
                    "vat_number": "",
                    "status": "customer",
                    "owner_id": rng.choice(user_ids),
                    "domain": f"rel{r}.bench.example",
                    "created_at": now,
                    "updated_at": now - timedelta(minutes=r),
                }

        _insert(conn, Relation, relation_rows(), "relations", relations, progress)

        def contact_rows() -> Iterator[dict[str, Any]]:
            for c in range(contacts):
                yield {
                    "relation_id": c % relations + 1,
                    "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    "function": "",
                    "created_at": now,
                    "updated_at": now,
                }

        _insert(conn, Contact, contact_rows(), "contacts", contacts, progress)
        _insert(
            conn,
            EmailAddress,
            (
                {
                    "relation_id": c % relations + 1,
                    "contact_id": c + 1,
                    "address": f"c{c}@rel{c % relations}.bench.example",
                    "address_key": f"c{c}@rel{c % relations}.bench.example",
                }
                for c in range(contacts)
            ),
            "e-mail addresses",
            contacts,
            progress,
        )
        _insert(
            conn,
            PhoneNumber,
            (
                {
                    "relation_id": c % relations + 1,
                    "contact_id": c + 1,
                    "number": f"+31 20 {c:07d}",
                    "e164": f"+3120{c:07d}",
                    "label": "",
                }
                for c in range(contacts)
            ),
            "phone numbers",
            contacts,
            progress,
        )

        def project_rows() -> Iterator[dict[str, Any]]:
            for p in range(projects):
                start = date(2024, 1, 1) + timedelta(days=p % 900)
                name = f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS)} {p}"
                yield {
                    "relation_id": p % relations + 1,
                    "name": name,
                    "description": "Omschrijving " * 20,
                    "start_date": start,
                    "end_date": start + timedelta(days=60),
                    "end_date_expected": True,
                    "responsible_user_id": rng.choice(user_ids),
                    "type_id": rng.choice(by_field[ChoiceField.type]),
                    "status_id": rng.choice(by_field[ChoiceField.status]),
                    "chance_id": rng.choice(by_field[ChoiceField.chance]),
                    "value": rng.randint(500, 90000),
                    "currency": "EUR",
                    "free_text_1": "",
                    "free_text_2": "",
                    "free_text_3": "",
                    "free_text_4": "",
                    "one_off_contact_name": "",
                    "one_off_contact_email": "",
                    "one_off_contact_phone": "",
                    "notepad": "",
                    "closed": p % 7 == 0,
                    "created_at": now,
                    "updated_at": now - timedelta(seconds=p),
                }

        _insert(conn, Project, project_rows(), "projects", projects, progress)
        # One project in ten is restricted to two linked staff: the access rule has work to do.
        _insert(
            conn,
            project_users,
            ({"project_id": p + 1, "user_id": u} for p in range(0, projects, 10) for u in (2, 3)),
            "project links",
            projects // 5,
            progress,
        )
        _insert(
            conn,
            Activity,
            (
                {
                    "project_id": a % projects + 1,
                    "title": f"Bellen {a}",
                    "description": "",
                    "due_date": date(2026, 1, 1) + timedelta(days=a % 400),
                    "done": a % 3 == 0,
                    "assigned_user_id": rng.choice(user_ids),
                    "created_at": now,
                    "updated_at": now,
                }
                for a in range(projects // 2)
            ),
            "activities",
            projects // 2,
            progress,
        )
        if engine.dialect.name == "sqlite":
            conn.execute(text("ANALYZE"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return {"staff_email": "staff4@bench.example", "password": PASSWORD, "project_id": projects // 2 + 1}


# The bench user (staff4) is user 5; the tabs' project gets more rows than a page of each.
BENCH_USER_ID = 5
TAB_ROWS = 60


def seed_tabs(
    database: Database,
    project_id: int,
    relations: int,
    contacts: int,
    projects: int,
    progress: bool = True,
) -> None:
    """What the project tabs, the calendar week and the e-mail and call lists show: e-mails in a
    mailbox shared with colleagues, linked to projects and relations; calls from contacts' numbers;
    appointments with staff attendees, some in the bench user's current week. Spread over many
    projects (the indexes hold realistic numbers), ``project_id`` gets :data:`TAB_ROWS` of each."""
    rng = random.Random(2)
    now = datetime.now(UTC).replace(microsecond=0)
    emails, calls, appointments = projects // 4, projects // 4, projects // 20
    engine = database.engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("PRAGMA synchronous=OFF"))
        conn.execute(
            insert(Mailbox),
            [
                {
                    "id": 1,
                    "name": "Verkoop",
                    "owner_id": 1,
                    "host": "mail.bench.example",
                    "port": 993,
                    "security": "ssl",
                    "username": "verkoop@company.example",
                    "password_encrypted": "",
                    "sharing": "colleagues",
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )

        def project_of(n: int) -> int:
            return project_id if n < TAB_ROWS else rng.randrange(projects) + 1

        linked = [project_of(n) for n in range(emails)]

        def email_rows() -> Iterator[dict[str, Any]]:
            for n, project in enumerate(linked):
                relation = (project - 1) % relations + 1
                contact = relation - 1 + relations * rng.randrange(max(contacts // relations, 1))
                yield {
                    "id": n + 1,
                    "message_key": f"<bench{n}@rel{relation - 1}.bench.example>",
                    "message_id": f"<bench{n}@rel{relation - 1}.bench.example>",
                    "thread_key": f"<thread{n // 3}@bench.example>",
                    "subject": f"Offerte {rng.choice(WORDS)} {n}",
                    "from_address": f"c{contact}@rel{relation - 1}.bench.example",
                    "from_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    "sent_at": now - timedelta(minutes=7 * n),
                    "text_body": "Beste,\n\nHierbij de offerte.\n\nMet vriendelijke groet",
                    "size": 4000 + n % 9000,
                    "raw_sha256": f"{n:064x}",
                    "has_attachments": n % 5 == 0,
                    "stored_at": now,
                }

        _insert(conn, Email, email_rows(), "e-mails", emails, progress)
        _insert(conn, MailboxEmail, ({"mailbox_id": 1, "email_id": n + 1} for n in range(emails)), "", emails, False)
        _insert(
            conn,
            EmailProject,
            ({"email_id": n + 1, "project_id": project, "how": "manual"} for n, project in enumerate(linked)),
            "",
            emails,
            False,
        )
        _insert(
            conn,
            EmailRelation,
            ({"email_id": n + 1, "relation_id": (project - 1) % relations + 1} for n, project in enumerate(linked)),
            "",
            emails,
            False,
        )
        _insert(
            conn,
            EmailParticipant,
            (
                {"email_id": n + 1, "role": "to", "address_key": "verkoop@company.example", "name": "Verkoop"}
                for n in range(emails)
            ),
            "",
            emails,
            False,
        )
        conn.execute(
            insert(CallSource),
            [{"id": 1, "name": "Centrale", "format": "asterisk-csv", "created_at": now, "updated_at": now}],
        )

        def call_rows() -> Iterator[dict[str, Any]]:
            for n in range(calls):
                project = project_of(n)
                relation = (project - 1) % relations + 1
                contact = relation - 1 + relations * rng.randrange(max(contacts // relations, 1))
                started = now - timedelta(minutes=11 * n)
                answered = n % 4 != 0
                yield {
                    "source_id": 1,
                    "call_key": f"bench-{n}",
                    "direction": "inbound" if n % 3 else "outbound",
                    "number": f"+31 20 {contact:07d}",
                    "e164": f"+3120{contact:07d}",
                    "started_at": started,
                    "answered_at": started + timedelta(seconds=8) if answered else None,
                    "ended_at": started + timedelta(seconds=8 + n % 600),
                    "duration": 8 + n % 600,
                    "billsec": n % 600 if answered else 0,
                    "outcome": "answered" if answered else "missed",
                    "extension": f"{200 + n % 10}",
                    "user_id": n % 10 + 1,
                    "contact_id": contact + 1,
                    "relation_id": relation,
                    "project_id": project,
                    "stored_at": now,
                }

        _insert(conn, Call, call_rows(), "calls", calls, progress)
        # The bench user's current week (Monday, local noon-ish in UTC) holds a working week's appointments.
        monday = now.replace(hour=8, minute=0, second=0) - timedelta(days=now.weekday())

        def appointment_rows() -> Iterator[dict[str, Any]]:
            for n in range(appointments):
                mine = n < 25
                start = monday + timedelta(days=n % 5, hours=n % 8) if mine else now + timedelta(hours=7 * n)
                project = project_of(n) if not mine else rng.randrange(projects) + 1
                yield {
                    "id": n + 1,
                    "uid": f"bench-{n}@hub.bench.example",
                    "title": f"Bezoek {rng.choice(WORDS)} {n}",
                    "location": rng.choice(CITIES),
                    "start_at": start,
                    "end_at": start + timedelta(hours=1),
                    "project_id": project,
                    "relation_id": (project - 1) % relations + 1,
                    "created_by_id": BENCH_USER_ID,
                    "created_at": now,
                    "updated_at": now,
                }

        _insert(conn, Appointment, appointment_rows(), "appointments", appointments, progress)
        _insert(
            conn,
            Activity,
            (
                {
                    "project_id": project_id,
                    "title": f"Terugbellen {n}",
                    "description": "Over de offerte" if n % 2 else "",
                    "due_date": now.date() + timedelta(days=n - 10),
                    "done": n % 4 == 0,
                    "assigned_user_id": n % 10 + 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(TAB_ROWS // 2)
            ),
            "",
            TAB_ROWS // 2,
            False,
        )
        _insert(
            conn,
            AppointmentAttendee,
            (
                {
                    "appointment_id": n + 1,
                    "user_id": BENCH_USER_ID if n < 25 else n % 10 + 1,
                    "name": "Staff",
                    "email": f"staff{(BENCH_USER_ID - 1) if n < 25 else n % 10}@bench.example",
                    "email_key": f"staff{(BENCH_USER_ID - 1) if n < 25 else n % 10}@bench.example",
                    "partstat": "ACCEPTED",
                }
                for n in range(appointments)
            ),
            "",
            appointments,
            False,
        )
        if engine.dialect.name == "postgresql":
            # The rows above were given their ids (to link them): the sequences go past them.
            for table in ("mailbox", "email", "call_source", "appointment"):
                sequence = f"pg_get_serial_sequence('{table}', 'id')"
                conn.execute(text(f"SELECT setval({sequence}, (SELECT max(id) FROM {table}))"))
        if engine.dialect.name == "sqlite":
            conn.execute(text("ANALYZE"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))


def _insert(conn: Any, table: Any, rows: Iterator[dict[str, Any]], label: str, total: int, progress: bool) -> None:
    done = 0
    target = getattr(table, "__table__", table)
    for batch in _batches(rows):
        conn.execute(insert(target), batch)
        done += len(batch)
        if progress:
            sys.stderr.write(f"\r  seeding {label}: {done:,}/{total:,}")
            sys.stderr.flush()
    if progress:
        sys.stderr.write("\n")
