"""A CSV import never writes into, nor reveals, a relation the importing user may not see.

On SQLite and PostgreSQL. The hidden relation is restricted to its owner; the importing user is
ordinary staff. A row naming the hidden relation must leave it untouched and must be reported
exactly as a row naming a relation that does not exist.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hub.accounts.users import UserInput, create_user, update_user
from hub.blobs import BlobStore
from hub.crm.access import relation_visible
from hub.crm.import_jobs import create_import_job, run_import_job
from hub.crm.importer import ImportResult, import_relations
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.models import Contact, EmailAddress, ImportJob, JobStatus, PhoneNumber, Relation, User

HIDDEN = "Secret Holding BV"
MISSING = "Nowhere Trading BV"

# {target}: the hidden or the missing name. {tag} keeps the other rows of two imports apart, so both
# start from the same state. Lines 4, 6 and 8 are bad; the good rows around them are imported.
CSV = """relation,domain,contact_name,email,phone,function,city,status
{target},secret.example,Ann de Vries,ann@secret.example,+31 20 1234567,CFO,Amsterdam,customer
{target},secret.example,Existing Person,existing@secret.example,,,,
Open {tag} BV,open.example,Bob,bob@,,,,
Open {tag} BV,open.example,Cas,cas.{tag}@open.example,+31 30 7654321,,,
{target},,Dirk,dirk@secret.example,12,,,
Known BV,,Eva {tag},eva.{tag}@known.example,,,,
{target},,Fay,fay@secret.example,,,,,extra
{target},,,,,,,
"""


def _user(db: Database, name: str, *, admin: bool = False) -> User:
    with db.transaction() as s:
        return create_user(
            s, UserInput(email=f"{name}@staff.example", name=name, password="long enough pw", is_admin=admin)
        )


def _hidden_relation(db: Database, owner: User) -> int:
    """A relation only ``owner`` may see, with a contact whose address the CSV also names."""
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name=HIDDEN, city="Utrecht", status="prospect", owner_id=owner.id))
        save_contact(s, relation, ContactInput(name="Existing Person", emails=["existing@secret.example"]))
        set_relation_linked(s, relation, [owner.id], [])
        save_relation(s, RelationInput(name="Known BV"))  # visible to all: imports may add to it
        return relation.id


def _snapshot(db: Database, relation_id: int) -> dict[str, Any]:
    """Everything an import could change on a relation."""
    with db.transaction() as s:
        r = s.get_one(Relation, relation_id)
        return {
            "fields": (r.name, r.domain, r.city, r.status, r.owner_id, r.updated_at),
            "contacts": sorted(
                (c.name, c.function) for c in s.scalars(select(Contact).where(Contact.relation_id == r.id))
            ),
            "emails": sorted(s.scalars(select(EmailAddress.address_key).where(EmailAddress.relation_id == r.id))),
            "phones": sorted(s.scalars(select(PhoneNumber.e164).where(PhoneNumber.relation_id == r.id))),
        }


def _report(result: ImportResult) -> tuple[Any, ...]:
    return (
        result.summary(),
        result.rows,
        result.relations_created,
        result.contacts_created,
        result.unchanged,
        result.error_count,
        result.errors,
    )


def _csv(target: str, tag: str) -> io.BytesIO:
    return io.BytesIO(CSV.format(target=target, tag=tag).encode())


def test_a_hidden_relation_is_untouched_and_reported_like_a_missing_one(any_db: Database) -> None:
    owner, importer = _user(any_db, "owner"), _user(any_db, "importer")
    hidden_id = _hidden_relation(any_db, owner)
    before = _snapshot(any_db, hidden_id)

    hidden = import_relations(any_db, _csv(HIDDEN, "a"), as_user=importer)
    missing = import_relations(any_db, _csv(MISSING, "b"), as_user=importer)

    assert _snapshot(any_db, hidden_id) == before
    assert _report(hidden) == _report(missing)
    # Bad rows among good ones are still reported one by one, with their line numbers.
    assert [line for line, _ in hidden.errors] == [4, 6, 8]
    assert hidden.rows == 8 and hidden.relations_created == 2 and hidden.contacts_created == 4
    assert hidden.unchanged == 1  # line 9: a relation-only row for the relation line 2 created
    assert not any(HIDDEN in message for _, message in hidden.errors)
    with any_db.transaction() as s:
        # The rows went to a new relation of that name, which the importer owns and sees.
        mine = s.scalars(
            select(Relation).where(Relation.name == HIDDEN, Relation.id != hidden_id, relation_visible(importer))
        ).one()
        assert mine.owner_id == importer.id and mine.city == "Amsterdam" and mine.domain == "secret.example"
        names = set(s.scalars(select(Contact.name).where(Contact.relation_id == mine.id)))
        assert names == {"Ann de Vries", "Existing Person"}
        known = s.scalars(select(Relation).where(Relation.name == "Known BV")).one()
        assert {c.name for c in known.contacts} == {"Eva a", "Eva b"}


def test_reimporting_finds_the_importers_own_relation_and_still_not_the_hidden_one(any_db: Database) -> None:
    owner, importer = _user(any_db, "owner"), _user(any_db, "importer")
    hidden_id = _hidden_relation(any_db, owner)
    before = _snapshot(any_db, hidden_id)
    import_relations(any_db, _csv(HIDDEN, "a"), as_user=importer)
    import_relations(any_db, _csv(MISSING, "b"), as_user=importer)

    again_hidden = import_relations(any_db, _csv(HIDDEN, "a"), as_user=importer)
    again_missing = import_relations(any_db, _csv(MISSING, "b"), as_user=importer)

    assert _report(again_hidden) == _report(again_missing)
    assert (again_hidden.relations_created, again_hidden.contacts_created, again_hidden.unchanged) == (0, 0, 5)
    assert _snapshot(any_db, hidden_id) == before
    with any_db.transaction() as s:
        assert len(s.scalars(select(Relation.id).where(Relation.name == HIDDEN)).all()) == 2


def test_those_who_may_see_it_and_the_cli_import_into_the_relation(any_db: Database) -> None:
    owner, admin = _user(any_db, "owner"), _user(any_db, "admin", admin=True)
    hidden_id = _hidden_relation(any_db, owner)
    data = f"relation,contact_name,email\n{HIDDEN},Gijs,gijs@secret.example\n{HIDDEN},Hans,hans@secret.example\n"

    by_owner = import_relations(any_db, io.BytesIO(data.encode()), as_user=owner)
    assert (by_owner.relations_created, by_owner.contacts_created) == (0, 2)
    # No user (the `hub import relations` CLI) is a system import: it sees every relation.
    system = import_relations(any_db, io.BytesIO(data.replace("Gijs,gijs", "Ines,ines").encode()))
    by_admin = import_relations(any_db, io.BytesIO(data.replace("Gijs,gijs", "Jan,jan").encode()), as_user=admin)
    assert (system.relations_created, system.contacts_created, system.unchanged) == (0, 1, 1)
    assert (by_admin.relations_created, by_admin.contacts_created, by_admin.unchanged) == (0, 1, 1)
    with any_db.transaction() as s:
        assert s.scalars(select(Relation.id).where(Relation.name == HIDDEN)).all() == [hidden_id]
    assert _snapshot(any_db, hidden_id)["contacts"] == [
        ("Existing Person", ""),
        ("Gijs", ""),
        ("Hans", ""),
        ("Ines", ""),
        ("Jan", ""),
    ]


def _job_report(db: Database, job_id: int) -> tuple[Any, ...]:
    with db.transaction() as s:
        job = s.get_one(ImportJob, job_id)
        return (job.status, job.rows_total, job.relations_created, job.contacts_created, job.rows_unchanged, job.errors)


def test_an_uploaded_import_runs_as_its_uploader(any_db: Database, tmp_path: Path) -> None:
    owner, importer = _user(any_db, "owner"), _user(any_db, "importer")
    hidden_id = _hidden_relation(any_db, owner)
    before = _snapshot(any_db, hidden_id)
    blobs = BlobStore(tmp_path / "blobs")
    with any_db.transaction() as s:
        hidden_job = create_import_job(s, blobs, importer, "a.csv", _csv(HIDDEN, "a"), 10_000).id
        missing_job = create_import_job(s, blobs, importer, "b.csv", _csv(MISSING, "b"), 10_000).id

    run_import_job(any_db, blobs, hidden_job)
    run_import_job(any_db, blobs, missing_job)

    assert _snapshot(any_db, hidden_id) == before
    assert _job_report(any_db, hidden_job) == _job_report(any_db, missing_job)
    assert _job_report(any_db, hidden_job)[0] == JobStatus.done


def test_a_job_of_a_deactivated_uploader_writes_nothing(any_db: Database, tmp_path: Path) -> None:
    admin, importer = _user(any_db, "admin", admin=True), _user(any_db, "importer")
    blobs = BlobStore(tmp_path / "blobs")
    with any_db.transaction() as s:
        job_id = create_import_job(s, blobs, importer, "a.csv", _csv(MISSING, "a"), 10_000).id
        gone = s.get_one(User, importer.id)
        update_user(s, gone, UserInput(email=gone.email, name=gone.name, is_active=False), acting=admin)

    run_import_job(any_db, blobs, job_id)

    status, *_counts, errors = _job_report(any_db, job_id)
    assert status == JobStatus.failed and "deactivated" in errors
    with any_db.transaction() as s:
        assert s.scalars(select(Relation.name).where(Relation.name == MISSING)).all() == []
