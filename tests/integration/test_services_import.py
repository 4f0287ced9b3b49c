"""The relations CSV importer on the benchmark generator's format, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from pathlib import Path

from sqlalchemy import func, select

from bench.gen_mailbox import generate
from hub.crm.importer import import_relations
from hub.db import Database
from hub.models import Contact, EmailAddress, PhoneNumber, Relation


def _count(db: Database, model: type) -> int:
    with db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_generator_csv_imports_once_and_reimport_changes_nothing(any_db: Database, tmp_path: Path) -> None:
    csv_path = tmp_path / "contacts.csv"
    generate(tmp_path / "md", 3, contacts_csv=csv_path)
    rows = sum(1 for _ in csv_path.open()) - 1
    with csv_path.open("rb") as fh:
        first = import_relations(any_db, fh)
    assert first.error_count == 0 and first.rows == rows
    assert first.relations_created == 400 and first.contacts_created == rows
    with csv_path.open("rb") as fh:
        second = import_relations(any_db, fh)
    assert (second.relations_created, second.contacts_created, second.unchanged) == (0, 0, rows)
    assert _count(any_db, Relation) == 400 and _count(any_db, Contact) == rows
    with any_db.transaction() as s:
        # Phone numbers are stored as typed and normalised for caller-ID matching.
        assert s.scalar(select(PhoneNumber.e164).where(PhoneNumber.number == "+31 20 000 0000")) == "+31200000000"
        relation = s.scalars(select(Relation).where(Relation.domain == "rel0.example.nl")).one()
        assert relation.name.endswith(" 0")


def test_bad_rows_are_reported_with_line_numbers_and_the_rest_is_imported(any_db: Database) -> None:
    data = (
        b"relation,domain,contact_name,email,phone\n"
        b"Good BV,good.example,Ann,ann@good.example,+31 20 1234567\n"
        b",good.example,Nobody,x@good.example,\n"
        b"Good BV,good.example,Bob,bob@,\n"
        b"Good BV,good.example,Cas,cas@good.example,123\n"
        b"Good BV,good.example,Dirk,DIRK@good.example,,extra\n"
        b"Free Mail BV,gmail.com,Eve,eve@gmail.com,\n"
    )
    result = import_relations(any_db, io.BytesIO(data))
    assert [line for line, _ in result.errors] == [3, 4, 5, 6]
    assert "relation name is empty" in result.errors[0][1] and "'bob@'" in result.errors[1][1]
    assert "phone number" in result.errors[2][1] and "columns" in result.errors[3][1]
    assert result.contacts_created == 2 and result.relations_created == 2
    with any_db.transaction() as s:
        free = s.scalars(select(Relation).where(Relation.name == "Free Mail BV")).one()
        assert free.domain == ""  # a free-mail domain identifies nobody
        assert (
            s.scalar(select(EmailAddress.address_key).where(EmailAddress.address == "eve@gmail.com")) == "eve@gmail.com"
        )


def test_a_file_without_the_header_is_refused_clearly(any_db: Database) -> None:
    result = import_relations(any_db, io.BytesIO(b"Good BV,good.example,Ann,ann@good.example,\n"))
    assert result.error_count == 1 and "header row lacks" in result.errors[0][1]
    assert _count(any_db, Relation) == 0
