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
from hub.models import Activity, Choice, ChoiceField, Contact, EmailAddress, PhoneNumber, Project, Relation, User
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
