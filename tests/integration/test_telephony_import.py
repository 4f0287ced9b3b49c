"""Call records through the real import on SQLite and PostgreSQL: idempotent, grouped, matched to
contacts, relations and projects, missed calls becoming call-back activities, calls that came before
their contact, visibility, the caller-ID lookup, and the CLI's last line."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from hub.crm.events import Belonging, NumbersAdded, announce
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.i18n import english
from hub.models import Activity, Call, CallImport, CallSource, Contact, Project, Relation, User
from hub.telephony.ingest import import_path
from hub.telephony.read import CallFilters, callerid_lookup, list_calls
from hub.telephony.sources import SourceInput, save_source

SAMPLES = Path(__file__).resolve().parents[1] / "telephony_samples"
SECRET_KEY = "test-secret-key-0123456789"


def add_source(db: Database, name: str, fmt: str, tz: str = "Europe/Amsterdam", **extra: object) -> int:
    with db.transaction() as session:
        return save_source(session, SECRET_KEY, SourceInput(name=name, format=fmt, timezone=tz, **extra)).id  # type: ignore[arg-type]


def add_relation(
    db: Database,
    name: str,
    *,
    contact: str = "",
    phones: list[str] | None = None,
    project: bool = True,
    user: User | None = None,
) -> tuple[int, int | None, int | None]:
    with db.transaction() as session:
        relation = save_relation(session, RelationInput(name=name))
        contact_id = None
        if contact:
            contact_id = save_contact(session, relation, ContactInput(name=contact, phones=phones or [])).id
        project_id = None
        if project and user is not None:
            project_id = save_project(session, user, ProjectInput(relation_id=relation.id, name=f"{name} deal")).id
        return relation.id, contact_id, project_id


@pytest.fixture
def admin(any_db: Database) -> User:
    from hub.accounts.users import UserInput, create_user

    with any_db.transaction() as session:
        return create_user(
            session, UserInput(email="boss@staff.example", name="Boss", password="x" * 12, is_admin=True)
        )


def calls(db: Database) -> list[Call]:
    with db.transaction() as session:
        return list(session.scalars(select(Call).order_by(Call.started_at, Call.id)))


def test_import_is_idempotent_grouped_and_matched(any_db: Database, admin: User) -> None:
    relation_id, contact_id, project_id = add_relation(
        any_db, "Kees BV", contact="Kees", phones=["020 123 4567"], user=admin
    )
    source_id = add_source(any_db, "pbx", "asterisk-csv", extensions={"202": admin.id})
    first = import_path(any_db, source_id, SAMPLES / "asterisk_master_mixed_crlf.csv")
    assert (first.rows, first.imported, first.known, first.rejected) == (7, 4, 0, 2)
    assert [line for line, _reason in first.errors] == [5, 6]
    stored = calls(any_db)
    queue = next(c for c in stored if c.call_key == "1741089600.30")
    # two legs of a ring-all queue: one call, answered by 202, on the contact, relation and project
    assert (queue.legs, queue.outcome, queue.extension, queue.user_id) == (2, "answered", "202", admin.id)
    assert (queue.e164, queue.contact_id, queue.relation_id, queue.project_id) == (
        "+31201234567",
        contact_id,
        relation_id,
        project_id,
    )
    anonymous = next(c for c in stored if c.number == "anonymous")
    assert (anonymous.e164, anonymous.relation_id) == ("", None)
    again = import_path(any_db, source_id, SAMPLES / "asterisk_master_mixed_crlf.csv")
    assert (again.imported, again.known, again.rejected) == (0, 4, 2)
    assert [(c.id, c.outcome, c.duration) for c in calls(any_db)] == [(c.id, c.outcome, c.duration) for c in stored]
    with any_db.transaction() as session:
        reports = list(session.scalars(select(CallImport).order_by(CallImport.id)))
        source = session.get_one(CallSource, source_id)
    assert [(r.rows, r.imported, r.known, r.rejected) for r in reports] == [(7, 4, 0, 2), (7, 0, 4, 2)]
    assert english(reports[0].errors).splitlines()[0].startswith("line 5: bad date")
    assert (source.calls_imported, source.rows_rejected) == (4, 4)


def test_every_sample_format_imports(any_db: Database) -> None:
    cases = [
        ("asterisk-csv", "asterisk_master_18.csv", 3),
        ("asterisk-custom", "asterisk_custom_bom.csv", 2),
        ("asterisk-cel", "asterisk_cel.csv", 2),
        ("freeswitch-csv", "freeswitch_example.csv", 3),
        ("3cx", "threecx_cdr.log", 3),
        ("twilio", "twilio_callbacks.txt", 2),
        ("generic-csv", "generic.csv", 2),
    ]
    for n, (fmt, name, expected) in enumerate(cases):
        source_id = add_source(any_db, f"s{n}", fmt)
        assert import_path(any_db, source_id, SAMPLES / name).imported == expected, name


def test_a_folder_of_freeswitch_json_legs_is_one_call(any_db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "json"
    folder.mkdir()
    for name in ("freeswitch_b_leg.cdr.json", "freeswitch_a_leg.cdr.json"):  # the b-leg first
        shutil.copy(SAMPLES / name, folder / name)
    source_id = add_source(any_db, "fs", "freeswitch-json", tz="UTC")
    import_path(any_db, source_id, folder / "freeswitch_a_leg.cdr.json")
    import_path(any_db, source_id, folder / "freeswitch_b_leg.cdr.json")
    (call,) = calls(any_db)
    assert (call.number, call.extension, call.outcome, call.direction) == ("+33612345678", "100", "answered", "inbound")


def test_missed_call_becomes_a_callback_that_a_later_answered_call_closes(
    any_db: Database, admin: User, tmp_path: Path
) -> None:
    _relation_id, _contact_id, project_id = add_relation(
        any_db, "Jean SA", contact="Jean", phones=["+33612345678"], user=admin
    )
    source_id = add_source(any_db, "pbx", "asterisk-csv", tz="Europe/Paris", extensions={"100": admin.id})
    missed = (SAMPLES / "asterisk_master_18.csv").read_text().splitlines()[1].replace("0612345678", "+33612345678")
    (tmp_path / "missed.csv").write_text(missed + "\n")
    import_path(any_db, source_id, tmp_path / "missed.csv")
    with any_db.transaction() as session:
        (activity,) = session.scalars(select(Activity))
        assert (activity.project_id, activity.assigned_user_id, activity.done) == (project_id, admin.id, False)
        assert "+33612345678" in activity.title
    later = missed.replace("2025-03-04 10:20:00", "2025-03-04 11:20:00").replace('"NO ANSWER"', '"ANSWERED"')
    later = (
        later.replace("1741083600.20", "1741087200.21")
        .replace(",,", ',"2025-03-04 11:20:05",')
        .replace(",25,0,", ",25,20,")
    )
    (tmp_path / "later.csv").write_text(later + "\n")
    import_path(any_db, source_id, tmp_path / "later.csv")
    with any_db.transaction() as session:
        assert session.scalars(select(Activity.done)).all() == [True]
    # re-importing the missed call does not open a second call-back
    import_path(any_db, source_id, tmp_path / "missed.csv")
    with any_db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Activity)) == 1


def test_calls_that_came_before_their_contact_are_linked_when_the_number_is_added(
    any_db: Database, admin: User
) -> None:
    source_id = add_source(any_db, "pbx", "asterisk-csv", tz="Europe/Paris")
    import_path(any_db, source_id, SAMPLES / "asterisk_master_18.csv")
    assert all(c.relation_id is None for c in calls(any_db))
    relation_id, _contact, project_id = add_relation(any_db, "Late BV", user=admin)
    with any_db.transaction() as session:
        contact = save_contact(session, session.get_one(Relation, relation_id), ContactInput(name="Jean"))
        # the core's announcement (hub.crm.relations announces it when a number is saved)
        announce(session, NumbersAdded((Belonging(relation_id, contact.id, "+33612345678"),)))
    linked = [c for c in calls(any_db) if c.relation_id == relation_id]
    assert len(linked) == 1 and linked[0].contact_id == contact.id and linked[0].project_id == project_id
    # saving the number through the CRM core links the other call with that number (national form)
    with any_db.transaction() as session:
        relation = session.get_one(Relation, relation_id)
        again = session.get_one(Contact, contact.id)
        save_contact(session, relation, ContactInput(name="Jean", phones=["+33612345678", "+31612345678"]), again)
    assert len([c for c in calls(any_db) if c.relation_id == relation_id]) == 2


def test_visibility_callerid_and_lists(any_db: Database, admin: User, make_user: Callable[..., User]) -> None:
    from hub.accounts.users import UserInput, create_user
    from hub.crm.relations import set_relation_linked

    with any_db.transaction() as session:
        staff = create_user(session, UserInput(email="anna@staff.example", name="Anna", password="x" * 12))
        other = create_user(session, UserInput(email="bob@staff.example", name="Bob", password="x" * 12))
    hidden_id, _c, _p = add_relation(any_db, "Hidden BV", contact="Jean", phones=["+33612345678"], project=False)
    with any_db.transaction() as session:
        set_relation_linked(session, session.get_one(Relation, hidden_id), [other.id], [])
    source_id = add_source(any_db, "pbx", "asterisk-csv", tz="Europe/Paris", extensions={"100": staff.id})
    import_path(any_db, source_id, SAMPLES / "asterisk_master_18.csv")
    with any_db.transaction() as session:
        mine = list_calls(session, staff, CallFilters(user_id=staff.id)).items
        assert len(mine) == 3  # her own calls, whatever they are linked to
        assert list_calls(session, other, CallFilters(relation_id=hidden_id)).items[0].relation_id == hidden_id
        third = create_user(session, UserInput(email="carl@staff.example", name="Carl", password="x" * 12))
        assert list_calls(session, third).items == []
        assert len(list_calls(session, admin, CallFilters(direction="outbound")).items) == 1
        assert len(list_calls(session, admin, CallFilters(unmatched=True)).items) == 2
        found = callerid_lookup(session, "0033 6 12 34 56 78", "NL")
        assert found is not None and (found.relation_id, found.contact_name) == (hidden_id, "Jean")
        assert callerid_lookup(session, "+33612345678", "NL", user=third) is None  # hidden = unknown
        assert callerid_lookup(session, "anonymous", "NL") is None


def test_cli_source_add_and_import_last_line(any_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hub.cli import main

    monkeypatch.setenv("HUB_DATABASE_URL", any_db.url)
    monkeypatch.setenv("HUB_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("HUB_SECRET_KEY", SECRET_KEY)
    runner = CliRunner()
    added = runner.invoke(
        main,
        [
            "calls",
            "source",
            "add",
            "pbx1",
            "--format",
            "asterisk-csv",
            "--region",
            "NL",
            "--tz",
            "Europe/Amsterdam",
            "--strip-prefix",
            "9",
            "--secret",
            "s",
        ],
    )
    assert added.exit_code == 0, added.output
    result = runner.invoke(
        main, ["calls", "import", str(SAMPLES / "asterisk_master_mixed_crlf.csv"), "--source", "pbx1"]
    )
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"imported 4 calls \(0 matched, 0 known, 2 rejected\) in \d+\.\d s", last), last
    unknown = runner.invoke(main, ["calls", "import", str(SAMPLES), "--source", "nope"])
    assert unknown.exit_code != 0 and "no call source named nope" in unknown.output


def test_a_callback_never_lands_with_someone_the_project_is_hidden_from(
    any_db: Database, admin: User, tmp_path: Path
) -> None:
    """The phone of a colleague who may not see the relation rang: the call-back goes to the
    project's responsible user, and the import of the other rows carries on."""
    from hub.accounts.users import UserInput, create_user
    from hub.crm.relations import set_relation_linked

    with any_db.transaction() as session:
        outsider = create_user(session, UserInput(email="out@staff.example", name="Out", password="x" * 12))
    relation_id, _contact_id, project_id = add_relation(
        any_db, "Secret BV", contact="Jean", phones=["+33612345678"], user=admin
    )
    with any_db.transaction() as session:
        set_relation_linked(session, session.get_one(Relation, relation_id), [admin.id], [])
        session.get_one(Project, project_id).responsible_user_id = admin.id
    source_id = add_source(any_db, "pbx", "asterisk-csv", tz="Europe/Paris", extensions={"100": outsider.id})
    missed = (SAMPLES / "asterisk_master_18.csv").read_text().splitlines()[1].replace("0612345678", "+33612345678")
    other = missed.replace("1741083600.20", "1741083999.99").replace("+33612345678", "+33698765432")
    (tmp_path / "missed.csv").write_text(missed + "\n" + other + "\n")
    report = import_path(any_db, source_id, tmp_path / "missed.csv")
    assert report.imported == 2
    with any_db.transaction() as session:
        (activity,) = session.scalars(select(Activity))
        assert activity.project_id == project_id
        assert activity.assigned_user_id == admin.id  # the project's responsible user, not the outsider
        from hub.crm.activities import my_activities

        assert my_activities(session, session.get_one(User, outsider.id)) == []


def test_a_missed_call_of_a_relation_with_several_open_projects_gets_its_call_back_on_the_latest(
    any_db: Database, admin: User, tmp_path: Path
) -> None:
    """The call is not filed on a guess (no project), but the to-do needs a home: the relation's open
    project changed last. A relation without an open project gets no to-do."""
    relation_id, _contact_id, older = add_relation(
        any_db, "Twee BV", contact="Jean", phones=["+33612345678"], user=admin
    )
    with any_db.transaction() as session:
        newer = save_project(session, admin, ProjectInput(relation_id=relation_id, name="Tweede deal")).id
        session.get_one(Project, older).name = "Eerste deal, bijgewerkt"  # changed last
    add_relation(any_db, "Dicht BV", contact="Piet", phones=["+33698765432"], project=False)
    source_id = add_source(any_db, "pbx", "asterisk-csv", tz="Europe/Paris", extensions={"100": admin.id})
    missed = (SAMPLES / "asterisk_master_18.csv").read_text().splitlines()[1].replace("0612345678", "+33612345678")
    closed = missed.replace("1741083600.20", "1741083999.99").replace("+33612345678", "+33698765432")
    (tmp_path / "missed.csv").write_text(missed + "\n" + closed + "\n")
    import_path(any_db, source_id, tmp_path / "missed.csv")
    with any_db.transaction() as session:
        (activity,) = session.scalars(select(Activity))
        assert activity.project_id == older and activity.project_id != newer
        assert activity.assigned_user_id == admin.id and "+33612345678" in activity.title
        assert {c.project_id for c in session.scalars(select(Call))} == {None}


def test_a_number_only_a_projects_one_off_contact_has_files_the_call_on_that_project(
    any_db: Database, admin: User, tmp_path: Path
) -> None:
    """A one-off contact typed on a project (no contact record) calls: the call is with the project's
    relation and on that project, the missed call becomes its call-back, and a number that is also
    stored on a contact, or that one-off contacts of two relations share, stays as matching says."""
    with any_db.transaction() as session:
        relation = save_relation(session, RelationInput(name="Eenmalig BV"))
        other = save_relation(session, RelationInput(name="Ander BV"))
        project = save_project(
            session,
            admin,
            ProjectInput(
                relation_id=relation.id, name="Stand", one_off_contact_name="Piet", one_off_contact_phone="06-1234 5678"
            ),
        )
        # a second open project of the relation: the single-open-project rule would file nothing
        save_project(session, admin, ProjectInput(relation_id=relation.id, name="Later"))
        for relation_id in (relation.id, other.id):  # a number two relations' one-off contacts share
            save_project(
                session,
                admin,
                ProjectInput(relation_id=relation_id, name="Beurs", one_off_contact_phone="+31 20 765 4321"),
            )
        closed = save_project(
            session,
            admin,
            ProjectInput(relation_id=other.id, name="Oud", one_off_contact_phone="0687654321", closed=True),
        )
        relation_id, project_id, closed_id = relation.id, project.id, closed.id
    row = (SAMPLES / "asterisk_master_18.csv").read_text().splitlines()[1]  # a missed inbound call to 100
    rows = [
        row.replace("0612345678", number).replace("1741083600.20", f"1741083600.{n}")
        for n, number in enumerate(["0031612345678", "+31207654321", "0687654321"])
    ]
    (tmp_path / "one-off.csv").write_text("\n".join(rows) + "\n")
    source_id = add_source(any_db, "pbx", "asterisk-csv", tz="Europe/Paris", extensions={"100": admin.id})
    result = import_path(any_db, source_id, tmp_path / "one-off.csv")
    assert (result.imported, result.matched) == (3, 1)
    by_number = {c.e164: c for c in calls(any_db)}
    piet = by_number["+31612345678"]
    assert (piet.relation_id, piet.project_id, piet.contact_id) == (relation_id, project_id, None)
    assert by_number["+31207654321"].relation_id is None  # two relations: nobody's
    assert by_number["+31687654321"].relation_id is None  # only on a closed project
    assert closed_id != project_id
    with any_db.transaction() as session:
        (activity,) = session.scalars(select(Activity))
        assert (activity.project_id, activity.title) == (project_id, "Call back +31612345678")


def _freeswitch_pair(n: int) -> list[str]:
    """An a-leg that rang out (cancelled on its own record) naming its b-leg, which extension 100
    answered; the b-leg's record has no originating uuid (mod_cdr_csv's example template)."""
    a_uuid, b_uuid = f"a0000000-0000-4000-8000-{n:012d}", f"b0000000-0000-4000-8000-{n:012d}"
    minute = f"2025-03-04 {10 + n // 3600 % 10:02d}:{n // 60 % 60:02d}:{n % 60:02d}"
    a_leg = (
        f'"Klant {n}","+316{n:08d}","100","public","{minute}","","{minute}","0","0","ORIGINATOR_CANCEL",'
        f'"{a_uuid}","{b_uuid}","","PCMA","PCMA"'
    )
    b_leg = (
        f'"Klant {n}","+316{n:08d}","100","default","{minute}","{minute}","{minute}","30","30","NORMAL_CLEARING",'
        f'"{b_uuid}","","","PCMA","PCMA"'
    )
    return [b_leg, a_leg] if n % 2 else [a_leg, b_leg]  # half of the b-legs come first


def test_freeswitch_a_and_b_legs_in_different_batches_are_one_call(any_db: Database, tmp_path: Path) -> None:
    """2,600 a-/b-leg pairs (more than one batch of 5,000 records, b-legs before and after their
    a-leg): one answered call per pair whichever batch each leg lands in, also on a re-import."""
    from hub.telephony.ingest import BATCH

    pairs = BATCH // 2 + 100
    rows = [row for n in range(pairs) for row in _freeswitch_pair(n)]
    # Around the batch boundary a pair is split, both ways round: shift the file by one record.
    (tmp_path / "Master.csv").write_text("\n".join(rows[1:] + rows[:1]) + "\n")
    source_id = add_source(any_db, "fs", "freeswitch-csv", tz="UTC")
    first = import_path(any_db, source_id, tmp_path / "Master.csv")
    stored = calls(any_db)
    assert len(stored) == pairs == first.imported
    assert {c.call_key[0] for c in stored} == {"a"}
    assert {(c.outcome, c.extension, c.direction) for c in stored} == {("answered", "100", "inbound")}
    again = import_path(any_db, source_id, tmp_path / "Master.csv")
    assert (again.imported, len(calls(any_db))) == (0, pairs)
    assert [(c.id, c.outcome) for c in calls(any_db)] == [(c.id, c.outcome) for c in stored]
