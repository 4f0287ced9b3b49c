"""Search through SQLite's index (migration 0014: FTS5 trigram tables kept by triggers) finds exactly
what searching the tables themselves would: the index follows every way hub writes (services, the
API, the CSV import, mail sync, bulk SQL), accents and case are folded, texts of one or two
characters (no trigram) are found too, and what a user may not see is never found nor counted, however
many rows match. On SQLite and PostgreSQL (where pg_trgm indexes do the same), so both answer alike."""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select, text

from hub.accounts.users import save_group
from hub.config import Settings
from hub.crm.access import project_visible, relation_visible
from hub.crm.importer import import_relations
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import (
    ContactInput,
    RelationInput,
    delete_contact,
    delete_relation,
    save_contact,
    save_relation,
    set_relation_linked,
)
from hub.crm.search import search
from hub.db import Database
from hub.mail.mailboxes import finish_removal, remove_mailbox
from hub.mail.privacy import email_visible
from hub.models import Contact, Mailbox, Project, Relation, User
from hub.text import fold
from tests.integration.test_mail_threads import mail
from tests.integration.test_search import found, mailbox, person, token, totals
from tests.integration.test_search import site as site
from tests.mail_fixtures import MailAccount, sync_account

_MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0014_search_sqlite_index.py"


def _indexed() -> Any:
    spec = importlib.util.spec_from_file_location("search_index_migration", _MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.INDEXED


INDEXED = _indexed()


def assert_index_in_step(db: Database) -> None:
    """SQLite: every searched table's index holds exactly its rows, each with its columns folded."""
    if db.engine.dialect.name != "sqlite":
        return
    with db.transaction() as s:
        for index, table, columns, folded in INDEXED:
            values = [f'hub_fold(t."{c}")' if folded else f't."{c}"' for c in columns]
            differ = " OR ".join(f'i."{c}" IS NOT {v}' for c, v in zip(columns, values, strict=True))
            stale = s.scalar(
                text(f'SELECT count(*) FROM "{table}" t LEFT JOIN {index} i ON i.rowid = t.id WHERE {differ}')
            )
            rows, indexed = (
                s.scalar(text(f'SELECT count(*) FROM "{table}"')),
                s.scalar(text(f"SELECT count(*) FROM {index}")),
            )
            assert (stale, indexed) == (0, rows), f"{index} out of step with {table}"


def names(db: Database, user: User, typed: str, kind: str) -> set[str]:
    return set(found(db, user, typed, kind))


# --- the index follows every write ----------------------------------------------------------------------


def test_the_index_follows_inserts_renames_and_deletes_through_the_services(any_db: Database) -> None:
    viewer = person(any_db, "Viewer")
    with any_db.transaction() as s:
        relation = save_relation(
            s, RelationInput(name="Zuidkust Café", city="Vlissingen", coc_number="87654321", phones=["0118 412 345"])
        )
        contact = save_contact(
            s,
            relation,
            ContactInput(name="Dieuwke Zoëtermeer", emails=["dieuwke@zuidkust.example"], phones=["06 1234 9876"]),
        )
        save_contact(s, relation, ContactInput(name="Bram Zuidkust"))
        save_project(
            s,
            viewer,
            ProjectInput(
                relation_id=relation.id, name="Terras zuidkust", free_texts={"free_text_2": "Strandpaviljoen"}
            ),
        )
    assert_index_in_step(any_db)
    assert names(any_db, viewer, "zuidkust cafe", "relations") == {"Zuidkust Café"}
    assert names(any_db, viewer, "VLISSING", "relations") == {"Zuidkust Café"}
    assert names(any_db, viewer, "8765 4321", "relations") == {"Zuidkust Café"}
    assert names(any_db, viewer, "zoeterm", "contacts") == {"Dieuwke Zoëtermeer"}
    assert names(any_db, viewer, "dieuwke@zuid", "contacts") == {"Dieuwke Zoëtermeer"}
    assert names(any_db, viewer, "1234 98", "contacts") == {"Dieuwke Zoëtermeer"}
    assert names(any_db, viewer, "strandpaviljoen", "projects") == {"Terras zuidkust"}

    with any_db.transaction() as s:
        relation = s.get_one(Relation, relation.id)
        save_relation(s, RelationInput(name="Noordkust Bistro", city="Den Helder"), relation)
        save_contact(
            s,
            relation,
            ContactInput(name="Dieuwke de Wit", emails=["dieuwke@noordkust.example"]),
            s.get_one(Contact, contact.id),
        )
    assert_index_in_step(any_db)
    assert names(any_db, viewer, "zuidkust cafe", "relations") == set()
    assert names(any_db, viewer, "vlissingen", "relations") == set()
    assert names(any_db, viewer, "87654321", "relations") == set()
    assert names(any_db, viewer, "noordkust bistro", "relations") == {"Noordkust Bistro"}
    assert names(any_db, viewer, "zoeterm", "contacts") == set()
    assert names(any_db, viewer, "zuidkust", "contacts") == {"Bram Zuidkust"}  # his own name, not his relation's
    assert names(any_db, viewer, "1234 98", "contacts") == set()
    assert names(any_db, viewer, "noordkust.ex", "contacts") == {"Dieuwke de Wit"}

    with any_db.transaction() as s:
        delete_contact(s, s.get_one(Contact, contact.id))
    assert names(any_db, viewer, "dieuwke", "contacts") == set()
    assert_index_in_step(any_db)


def test_the_index_follows_the_api_and_the_csv_import(any_db: Database, site: Flask) -> None:
    viewer = person(any_db, "Viewer")
    api, headers = site.test_client(), token(any_db, viewer)
    created = api.post("/api/v1/relations", json={"name": "Ĳsselmeer Jachtwerf", "city": "Lemmer"}, headers=headers)
    assert created.status_code == 201, created.text
    relation = created.get_json()
    contact = api.post(
        f"/api/v1/relations/{relation['id']}/contacts",
        json={"name": "Søren Ålgård", "emails": ["soren@jachtwerf.example"], "phones": ["0514 561 234"]},
        headers=headers,
    )
    assert contact.status_code == 201, contact.text
    assert names(any_db, viewer, "ijsselmeer", "relations") == {"Ĳsselmeer Jachtwerf"}
    assert names(any_db, viewer, "algard", "contacts") == {"Søren Ålgård"}
    renamed = api.patch(
        f"/api/v1/relations/{relation['id']}",
        json={"name": "Markermeer Jachtwerf"},
        headers={
            **headers,
            "If-Match": api.get(f"/api/v1/relations/{relation['id']}", headers=headers).headers["ETag"],
        },
    )
    assert renamed.status_code == 200, renamed.text
    assert names(any_db, viewer, "ijsselmeer", "relations") == set()
    assert names(any_db, viewer, "markermeer", "relations") == {"Markermeer Jachtwerf"}
    contact_url = f"/api/v1/contacts/{contact.get_json()['id']}"
    deleted = api.delete(
        contact_url, headers={**headers, "If-Match": api.get(contact_url, headers=headers).headers["ETag"]}
    )
    assert deleted.status_code == 204
    assert names(any_db, viewer, "algard", "contacts") == set()
    assert names(any_db, viewer, "561 234", "contacts") == set()

    csv = (
        "relation,domain,contact_name,email,phone,city\n"
        "Wadden Zeilmakerij,zeil.example,Fenna Hoekstra,fenna@zeil.example,0562 444 555,Terschelling\n"
        "Wadden Zeilmakerij,zeil.example,Jelle Hoekstra,jelle@zeil.example,,Terschelling\n"
        ",,broken row,,,\n"
        "Élan Zeilen,,Anaïs Kuipers,,,\n"
    )
    result = import_relations(any_db, io.BytesIO(csv.encode()), as_user=viewer)
    assert result.relations_created == 2 and result.contacts_created == 3 and len(result.errors) == 1
    assert_index_in_step(any_db)
    assert names(any_db, viewer, "zeil", "relations") == {"Wadden Zeilmakerij", "Élan Zeilen"}
    assert names(any_db, viewer, "terschel", "relations") == {"Wadden Zeilmakerij"}
    assert names(any_db, viewer, "hoekstra", "contacts") == {"Fenna Hoekstra", "Jelle Hoekstra"}
    assert names(any_db, viewer, "jelle@", "contacts") == {"Jelle Hoekstra"}
    assert names(any_db, viewer, "444 555", "contacts") == {"Fenna Hoekstra"}
    assert names(any_db, viewer, "anais", "contacts") == {"Anaïs Kuipers"}


def test_the_index_follows_mail_sync_and_a_removed_mailbox(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount], make_user: Callable[..., User]
) -> None:
    owner = make_user()
    account = mail_account(owner_id=owner.id)
    client = account.client()
    client.append("INBOX", mail("a1@t", "Offerte dakkapel Café Zoë", sender="Grégoire Dupré <gregoire@dupre.example>"))
    client.append("INBOX", mail("a2@t", "Re: planning", sender="Anouk <anouk@elders.example>"))
    client.logout()
    sync_account(db, settings, account)
    assert_index_in_step(db)
    assert found(db, owner, "cafe zoe", "emails") == ["Offerte dakkapel Café Zoë"]
    assert found(db, owner, "gregoire dupre", "emails") == ["Offerte dakkapel Café Zoë"]
    assert found(db, owner, "elders.ex", "emails") == ["Re: planning"]
    assert found(db, owner, "Zo", "emails") == ["Offerte dakkapel Café Zoë"]
    with db.transaction() as s:
        remove_mailbox(s, s.get_one(Mailbox, account.mailbox_id), keep_mail=False)
    # The e-mails go in batches (the sync task's work), deleted by bulk SQL.
    assert finish_removal(db, account.mailbox_id) is False
    assert found(db, owner, "offerte", "emails") == []
    assert_index_in_step(db)


def test_the_index_follows_bulk_sql_and_cascades(any_db: Database) -> None:
    """Rows written without the ORM (the benchmark's seed, bulk imports) and deleted by a cascade."""
    viewer = person(any_db, "Viewer")
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Kaasboerderij De Öude Hoeve"))
        s.execute(
            Contact.__table__.insert(),
            [{"relation_id": relation.id, "name": f"Kaasmaker {n:02d}"} for n in range(30)],
        )
    assert len(found(any_db, viewer, "kaasmaker", "contacts")) == 30
    with any_db.transaction() as s:
        s.execute(Contact.__table__.update().where(Contact.name == "Kaasmaker 07").values(name="Boerin Jozefien"))
    assert len(found(any_db, viewer, "kaasmaker", "contacts")) == 29
    assert found(any_db, viewer, "jozef", "contacts") == ["Boerin Jozefien"]
    assert_index_in_step(any_db)
    with any_db.transaction() as s:
        delete_relation(s, s.get_one(Relation, relation.id))
    assert found(any_db, viewer, "kaasmaker", "contacts") == []
    assert found(any_db, viewer, "oude hoeve", "relations") == []
    assert_index_in_step(any_db)


# --- what is matched ---------------------------------------------------------------------------------------


def test_accents_case_and_texts_of_one_or_two_characters(any_db: Database) -> None:
    viewer = person(any_db, "Viewer")
    with any_db.transaction() as s:
        cafe = save_relation(s, RelationInput(name="Café Zoë", city="Straßburg"))
        save_relation(s, RelationInput(name="CAFE ZOE GROOTHANDEL"))
        save_relation(s, RelationInput(name="Xu"))
        save_contact(s, cafe, ContactInput(name="Ŀukas Øster"))
        save_contact(s, cafe, ContactInput(name="Ana Xu", phones=["020 123 4567"]))
        box = mailbox(s, viewer)
        from tests.integration.test_search import email

        email(s, box, "Ωmega bestelling", name="Ærøskøbing")
    for typed in ["cafe zoe", "CAFÉ ZOË", "afé z", "Cafe\u0301 Zoe\u0308"]:
        assert names(any_db, viewer, typed, "relations") == {"Café Zoë", "CAFE ZOE GROOTHANDEL"}, typed
    assert names(any_db, viewer, "strassburg", "relations") == {"Café Zoë"}
    # Letters beyond Latin-1's accents, in either case (PostgreSQL's unaccent also reads Ø as O).
    assert names(any_db, viewer, "ØSTER", "contacts") == {"Ŀukas Øster"}
    assert names(any_db, viewer, "ÆRØSK", "emails") == {"Ωmega bestelling"}
    # One or two characters: no trigram to look up, found all the same.
    assert names(any_db, viewer, "xu", "relations") == {"Xu"}
    assert names(any_db, viewer, "XU", "contacts") == {"Ana Xu"}
    assert names(any_db, viewer, "ë", "relations") == {"Café Zoë", "CAFE ZOE GROOTHANDEL"}
    assert names(any_db, viewer, "ß", "relations") == {"Café Zoë"}  # "ß" is "ss"
    assert names(any_db, viewer, "æ", "emails") == {"Ωmega bestelling"}
    # (the e-mail: from karin@klant.example)
    assert totals(any_db, viewer, "x") == {"contacts": 1, "relations": 1, "projects": 0, "emails": 1}
    # Three digits or more: anywhere in the number; a national prefix: its start.
    assert names(any_db, viewer, "765", "contacts") == set()
    assert names(any_db, viewer, "4567", "contacts") == {"Ana Xu"}
    assert names(any_db, viewer, "123 45", "contacts") == {"Ana Xu"}
    assert names(any_db, viewer, "020 12", "contacts") == {"Ana Xu"}


def test_hostile_text_is_literal_and_never_an_error(any_db: Database, site: Flask) -> None:
    """FTS5's query syntax (quotes, AND/OR/NOT, NEAR, column filters, ^, *) is never read from what
    was typed: it is a substring like any other."""
    viewer = person(any_db, "Viewer")
    name = 'He said "AND" OR NOT* {name}: NEAR(x) ^y'
    with any_db.transaction() as s:
        save_relation(s, RelationInput(name=name))
    typed_texts = ['"', '""', '"and"', "AND", "OR NOT", "{name}:", "NEAR(x)", "^y", '" OR "', "*", ":", "x) ^"]
    typed_texts += ['"and" or', "NOT NOT", "(x", "name}", 'said "and" or not* {name}: near(x) ^y']
    for typed in typed_texts:
        expected = [name] if fold(typed) in fold(name) else []
        assert found(any_db, viewer, typed, "relations") == expected, typed
    api, headers = site.test_client(), token(any_db, viewer)
    for q in ["%22%00%22", "a%00%22b", "%22" * 5000, "%E2%80%8F%22", "%C3%A9" * 3000, "%FF%FE%22"]:
        for kind in ("", "&kind=relations", "&kind=contacts&per_page=50"):
            response = api.get(f"/api/v1/search?q={q}{kind}", headers=headers)
            assert response.status_code in (200, 400), (q, response.status_code)
            if response.status_code == 400:
                assert response.get_json()["error"]["message"]


# --- visibility, with more matches than a page ----------------------------------------------------------------


def test_hidden_relations_contacts_are_never_found_nor_counted_past_the_first_page(any_db: Database) -> None:
    viewer, colleague, admin = person(any_db, "Viewer"), person(any_db, "Colleague"), person(any_db, "Boss", admin=True)
    with any_db.transaction() as s:
        team = save_group(s, "Team Noord", [viewer.id])
        open_relation = save_relation(s, RelationInput(name="Molenaar Open"))
        hidden = save_relation(s, RelationInput(name="Molenaar Geheim", owner_id=colleague.id))
        by_group = save_relation(s, RelationInput(name="Molenaar Team", owner_id=colleague.id))
        own = save_relation(s, RelationInput(name="Molenaar Eigen", owner_id=viewer.id))
        for n in range(30):
            save_contact(s, open_relation, ContactInput(name=f"Molenaar open {n:02d}"))
            save_contact(s, hidden, ContactInput(name=f"Molenaar geheim {n:02d}", phones=[f"030 999 {n:04d}"]))
        save_contact(s, by_group, ContactInput(name="Molenaar team"))
        save_contact(s, own, ContactInput(name="Molenaar eigen"))
        set_relation_linked(s, hidden, [colleague.id], [])
        set_relation_linked(s, by_group, [colleague.id], [team.id])
        set_relation_linked(s, own, [colleague.id], [])
    expected = sorted(
        [f"Molenaar open {n:02d}" for n in range(30)] + ["Molenaar team", "Molenaar eigen"], key=lambda n: n
    )
    assert found(any_db, viewer, "molenaar", "contacts") == expected
    assert totals(any_db, viewer, "molenaar") == {"contacts": 32, "relations": 3, "projects": 0, "emails": 0}
    assert totals(any_db, viewer, "geheim") == {"contacts": 0, "relations": 0, "projects": 0, "emails": 0}
    assert totals(any_db, viewer, "030 999")["contacts"] == 0
    assert totals(any_db, colleague, "molenaar")["contacts"] == 62
    assert totals(any_db, admin, "molenaar")["contacts"] == 62
    with any_db.transaction() as s:
        s.get_one(User, viewer.id).is_active = False
    assert totals(any_db, viewer, "molenaar") == {"contacts": 0, "relations": 0, "projects": 0, "emails": 0}


def test_search_sees_exactly_what_the_access_rule_shows(any_db: Database) -> None:
    """SQLite's search asks the access rule only of what someone is linked to (the rest is seen by all
    staff): for every kind of user, link and owner, it must agree with the rule itself."""
    users = {name: person(any_db, name) for name in ("Owner", "Linked", "Member", "Outsider")}
    users["Admin"] = person(any_db, "Admin", admin=True)
    with any_db.transaction() as s:
        group = save_group(s, "Sluis", [users["Member"].id])
        plain = save_relation(s, RelationInput(name="Sluiswachter zonder koppeling"))
        unowned = save_relation(s, RelationInput(name="Sluiswachter zonder eigenaar"))
        owned = save_relation(s, RelationInput(name="Sluiswachter met eigenaar", owner_id=users["Owner"].id))
        grouped = save_relation(s, RelationInput(name="Sluiswachter groep", owner_id=users["Owner"].id))
        for relation in (plain, unowned, owned, grouped):
            save_contact(s, relation, ContactInput(name=f"Contact van {relation.name}"))
        unowned.owner_id = None
        set_relation_linked(s, unowned, [users["Linked"].id], [])
        set_relation_linked(s, owned, [users["Linked"].id], [])
        set_relation_linked(s, grouped, [], [group.id])
        for relation in (plain, unowned, owned, grouped):
            for how, (responsible, linked, groups) in {
                "open": (None, [], []),
                "eigen": (users["Owner"].id, [users["Owner"].id], []),
                "gekoppeld": (users["Outsider"].id, [users["Linked"].id], []),
                "groep": (None, [], [group.id]),
            }.items():
                project = save_project(
                    s,
                    users["Admin"],
                    ProjectInput(
                        relation_id=relation.id,
                        name=f"Sluiswachter plan {how} {relation.name}",
                        responsible_user_id=responsible,
                    ),
                )
                if linked or groups:
                    set_linked(s, project, linked, groups)
    seen: set[frozenset[str]] = set()
    for name, user in users.items():
        with any_db.transaction() as s:
            viewer = s.get_one(User, user.id)
            rule = set(s.scalars(select(Relation.name).where(relation_visible(viewer), Relation.name.like("Sluis%"))))
            results = search(s, viewer, "sluiswachter", per_page=50, emails_visible=email_visible)
            relations = results.group("relations")
            contacts = results.group("contacts")
            assert relations is not None and contacts is not None
            assert {r.name for r in relations.items} == rule, name
            assert {c.relation.name for c in contacts.items} == rule, name
            assert (relations.total, contacts.total) == (len(rule), len(rule)), name
            projects = results.group("projects")
            assert projects is not None
            shown = set(s.scalars(select(Project.name).where(project_visible(viewer), Project.name.like("Sluis%"))))
            assert {p.name for p in projects.items} == shown and projects.total == len(shown), name
            seen.add(frozenset(rule | shown))
        assert rule, name  # everyone sees at least the relation nobody is linked to
    assert len(seen) == len(users)  # each sees something else: the rule had work to do
