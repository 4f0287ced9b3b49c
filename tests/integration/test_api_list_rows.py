"""GET /api/v1/relations, /emails and /users read their rows as plain columns through kept
statements, the filters' values bound when they run (web/api/routes.py, hub.crm.relations
relation_api_rows, hub.mail.read email_list_rows, hub.accounts.users user_list_rows). Each must give
exactly what the list gave when it loaded Relation, Email and User objects through a statement
built per request: the same items in the same order, page after page by cursor, by page number and
with totals, for every filter; hidden relations and private mail stay hidden, each reader getting
his own list (the statements are kept per reader); on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.accounts.users import create_token, update_user
from hub.config import Settings
from hub.crm import tags as tag_service
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import RelationInput, relations_query, save_relation, set_relation_linked
from hub.db import Database
from hub.mail.privacy import email_visible
from hub.models import Email, EmailParticipant, EmailProject, EmailRelation, MailboxEmail, Relation, User
from hub.paging import Sort
from tests.conftest import new_user
from tests.mail_fixtures import MailAccount, sync_account

HOSTILE = "<script>alert('x')</script> & \"q\" %_\\"
QUOTED = '& "q" %_'


def _app(settings: Settings, database: Database) -> Flask:
    from web import create_app

    return create_app(settings, database=database, TESTING=True)


def _bearer(database: Database, user: User) -> dict[str, str]:
    with database.transaction() as s:
        return {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id), "t", scope="read")}


def _walk(client: FlaskClient, url: str, headers: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Every page of a list, following ``next`` from ``url`` (which has a query string)."""
    body = client.get(url, headers=headers).get_json()
    yield body
    while body["next"]:
        response = client.get(f"{url}&cursor={body['next']}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.get_json()
        yield body


def _items(client: FlaskClient, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    return [item for body in _walk(client, url, headers) for item in body["items"]]


def _summaries(model: Any, objects: list[Any]) -> list[dict[str, Any]]:
    return [model.model_validate(o).model_dump(mode="json") for o in objects]


# --- relations --------------------------------------------------------------------------------------


def _seed_relations(database: Database) -> dict[str, Any]:
    owner, reader, outsider = (new_user(database, n) for n in ("Owner", "Reader", "Outsider"))
    admin = new_user(database, "Admin", admin=True)
    with database.transaction() as s:
        tag_service.create_tag(s, f"Rood {HOSTILE}", "#cf222e")
        ids = []
        for n in range(37):
            relation = save_relation(
                s,
                RelationInput(
                    name=[f"Jansen {HOSTILE} {n:02}", f"Émile {n}", f"bakker {n}", "Zoë"][n % 4],
                    city=["Utrecht", "utrecht ", "Delft & co", ""][n % 4],
                    status=["lead", "prospect", "customer", "inactive"][n % 3],
                    owner_id=[owner.id, None, reader.id][n % 3],
                    kind=["company", "person"][n % 2],
                ),
            )
            ids.append(relation.id)
            if n % 5 == 0:
                tag_service.tag_relation(s, relation, f"Rood {HOSTILE}")
            if n % 7 == 0:  # linked to the owner alone: hidden from the reader and the outsider
                set_relation_linked(s, relation, [owner.id], [])
        tag_id = tag_service.ids_of(s, [f"Rood {HOSTILE}"], "tag")[0]
        # Changed at known moments, some at the same one (the id breaks the tie).
        for n, relation_id in enumerate(ids):
            s.get_one(Relation, relation_id).updated_at = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=n // 3)
    return {"owner": owner, "reader": reader, "outsider": outsider, "admin": admin, "tag_id": tag_id}


def _expected_relations(database: Database, user: User, sort: str, **filters: Any) -> list[dict[str, Any]]:
    """The list as the API gave it from Relation objects: relations_query, in the sort's order."""
    from hub.crm.relations import RELATION_SORTS
    from web.api import schemas

    tag_ids = filters.pop("tag_ids", None)
    with database.transaction() as s:
        reader = s.get_one(User, user.id)
        query = relations_query(reader, filters.pop("search", ""), filters.pop("status", ""), **filters)
        if tag_ids is not None:
            query = query.where(tag_service.relation_has_any(tag_ids))
        base = RELATION_SORTS[sort.lstrip("-")]
        chosen = Sort(base.column, base.id_column, base.value_of, descending=sort.startswith("-"))
        relations = list(s.scalars(query.order_by(None).order_by(*chosen.order())))
        return _summaries(schemas.RelationSummary, relations)


def test_relation_list_is_what_relation_objects_gave(any_db: Database, settings: Settings) -> None:
    seeded = _seed_relations(any_db)
    client = _app(settings, any_db).test_client()
    tag = seeded["tag_id"]
    since = "2026-03-01T05:00:00+00:00"
    cases: list[tuple[str, dict[str, Any]]] = [
        ("", {}),
        ("city=Utrecht", {"city": "Utrecht"}),
        ("city=%20UTRECHT%20", {"city": " UTRECHT "}),
        ("status=customer", {"status": "customer"}),
        (f"owner_id={seeded['owner'].id}", {"owner_id": seeded["owner"].id}),
        (f"updated_since={quote(since)}", {"updated_since": datetime.fromisoformat(since)}),
        (f"tag={tag}", {"tag_ids": [tag]}),
        (f"tag={quote(f'Rood {HOSTILE}')}", {"tag_ids": [tag]}),
        ("tag=2147483647", {"tag_ids": []}),
        (f"q={quote(HOSTILE[:20])}", {"search": HOSTILE[:20]}),
        ("q=%25_", {"search": "%_"}),
        ("q=emile&city=delft%20%26%20co", {"search": "emile", "city": "delft & co"}),
        (
            f"q=jansen&status=lead&owner_id={seeded['owner'].id}&tag={tag}",
            {"search": "jansen", "status": "lead", "owner_id": seeded["owner"].id, "tag_ids": [tag]},
        ),
    ]
    for name in ("reader", "admin", "outsider"):
        bearer = _bearer(any_db, seeded[name])
        for sort in ("name", "-name", "city", "-city", "status", "-status", "updated", "-updated"):
            for query, filters in cases if sort in ("name", "-updated") else cases[:1]:
                url = f"/api/v1/relations?per_page=4&sort={sort}" + (f"&{query}" if query else "")
                expected = _expected_relations(any_db, seeded[name], sort, **filters)
                assert _items(client, url, bearer) == expected, (name, url)
        everything = _expected_relations(any_db, seeded[name], "name")
        # Six relations are linked to the owner alone: the outsider sees none of them, the reader
        # only the two he owns, the admin all.
        assert len(everything) == {"admin": 37, "reader": 37 - 4, "outsider": 37 - 6}[name]
    # Totals and page numbers (an OFFSET), as before.
    bearer = _bearer(any_db, seeded["reader"])
    expected = _expected_relations(any_db, seeded["reader"], "-updated", city="utrecht")
    page = client.get("/api/v1/relations?city=utrecht&sort=-updated&per_page=3&page=2&total=1", headers=bearer)
    body = page.get_json()
    assert body["items"] == expected[3:6] and body["total"] == len(expected) and body["page"] == 2
    assert body["has_next"] is (len(expected) > 6)
    # A relation changed shows at once (the statement is kept, its rows are not).
    with any_db.transaction() as s:
        first = s.scalars(select(Relation).where(Relation.city == "Utrecht").order_by(Relation.id)).first()
        assert first is not None
        first.city, first.name = "Amersfoort", f"Nieuw {HOSTILE}"
    assert _items(client, "/api/v1/relations?city=utrecht&per_page=50", bearer) == _expected_relations(
        any_db, seeded["reader"], "name", city="utrecht"
    )
    assert all(item["name"] != f"Nieuw {HOSTILE}" for item in _items(client, "/api/v1/relations?city=Utrecht", bearer))


def test_relation_list_filters_still_refuse_bad_input(any_db: Database, settings: Settings) -> None:
    seeded = _seed_relations(any_db)
    client = _app(settings, any_db).test_client()
    bearer = _bearer(any_db, seeded["reader"])
    for url, field in (
        ("/api/v1/relations?bogus=1", "bogus"),
        ("/api/v1/relations?tag=no%20such%20tag", "tag"),
        ("/api/v1/relations?cursor=garbage", "cursor"),
        ("/api/v1/relations?owner_id=99999999999", "owner_id"),
        ("/api/v1/relations?updated_since=yesterday", "updated_since"),
        ("/api/v1/relations?q=a%00b", "q"),
    ):
        response = client.get(url, headers=bearer)
        assert response.status_code == 400 and response.get_json()["error"]["field"] == field, url
    # A cursor of one sort is not one of another.
    first = client.get("/api/v1/relations?per_page=2&sort=city", headers=bearer).get_json()
    assert client.get(f"/api/v1/relations?cursor={first['next']}", headers=bearer).status_code == 400


# --- users ------------------------------------------------------------------------------------------


def test_user_list_is_what_user_objects_gave(any_db: Database, settings: Settings) -> None:
    from web.api import schemas

    names = [f"Zoë {HOSTILE}", "anna", "Anna", "Émile", "bert", "Bert", "Bert"]
    users = [new_user(any_db, name, active=n % 3 != 1) for n, name in enumerate(names)]
    with any_db.transaction() as s:
        update_user(s, s.get_one(User, users[0].id), _user_input(s.get_one(User, users[0].id), "Renamed <b>"))
    client = _app(settings, any_db).test_client()
    bearer = _bearer(any_db, users[2])
    for active, query in ((None, ""), (True, "&active=1"), (False, "&active=0")):
        with any_db.transaction() as s:
            statement = select(User).order_by(User.name, User.id)
            if active is not None:
                statement = statement.where(User.is_active.is_(active))
            expected = _summaries(schemas.UserOut, list(s.scalars(statement)))
        assert _items(client, f"/api/v1/users?per_page=2{query}", bearer) == expected
        body = client.get(f"/api/v1/users?per_page=2&page=2&total=1{query}", headers=bearer).get_json()
        assert body["items"] == expected[2:4] and body["total"] == len(expected)
    assert any(item["name"] == "Renamed <b>" for item in _items(client, "/api/v1/users", bearer))


def _user_input(user: User, name: str) -> Any:
    from hub.accounts.users import UserInput

    return UserInput(email=user.email, name=name, is_admin=user.is_admin, is_active=user.is_active)


# --- e-mails ----------------------------------------------------------------------------------------


def _mail(n: int, subject: str, sender: str, to: str) -> bytes:
    day = 1 + n % 5  # several messages sent at the same moment: the id breaks the tie
    return (
        f"From: Afzender {n} <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <list-{n}@test.example>\r\n"
        f"Date: Mon, {day} Nov 2026 10:00:00 +0100\r\n\r\nBody {n}\r\n"
    ).encode()


def _expected_emails(database: Database, user: User, **filters: Any) -> list[dict[str, Any]]:
    """The list as the API gave it from Email objects, newest first."""
    from hub.text import like_pattern
    from web.api import schemas

    with database.transaction() as s:
        query = select(Email).where(email_visible(s.get_one(User, user.id)))
        if filters.get("q"):
            pattern = like_pattern(filters["q"])
            query = query.where(
                func.lower(Email.subject).like(pattern, escape="\\") | Email.from_address.like(pattern, escape="\\")
            )
        links = {
            "relation_id": (EmailRelation.email_id, EmailRelation.relation_id),
            "project_id": (EmailProject.email_id, EmailProject.project_id),
            "contact_id": (EmailParticipant.email_id, EmailParticipant.contact_id),
            "mailbox_id": (MailboxEmail.email_id, MailboxEmail.mailbox_id),
        }
        for name, (email_id, target) in links.items():
            if name in filters:
                query = query.where(Email.id.in_(select(email_id).where(target == filters[name])))
        if "message_id" in filters:
            query = query.where(Email.message_id == filters["message_id"])
        if "sent_since" in filters:
            query = query.where(Email.sent_at >= filters["sent_since"])
        if "sent_before" in filters:
            query = query.where(Email.sent_at < filters["sent_before"])
        order = Sort(Email.sent_at, Email.id, lambda e: e.sent_at, descending=True).order()
        return _summaries(schemas.EmailSummary, list(s.scalars(query.order_by(*order))))


def test_email_list_is_what_email_objects_gave_and_private_mail_stays_hidden(
    any_db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    from hub.crm.relations import ContactInput, save_contact

    anna, colleague, outsider = (new_user(any_db, n) for n in ("Anna", "Colleague", "Outsider"))
    annas = mail_account(owner_id=anna.id, sharing="colleagues", database=any_db, never_share="geheim.example")
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name=f"Klant {HOSTILE}", domain="klant.example"))
        contact = save_contact(s, relation, ContactInput(name="Inkoop", emails=["inkoop@klant.example"]))
        project = save_project(s, s.get_one(User, anna.id), ProjectInput(relation_id=relation.id, name="Dak"))
        hidden_relation = save_relation(s, RelationInput(name="Verborgen", domain="verborgen.example"))
        set_relation_linked(s, hidden_relation, [anna.id], [])
        ids = {"relation": relation.id, "contact": contact.id, "project": project.id, "hidden": hidden_relation.id}
    client_box = annas.client()
    for n in range(14):
        sender, to = [
            ("inkoop@klant.example", anna.email),
            ("iemand@verborgen.example", anna.email),
            ("inkoop@klant.example", "x@geheim.example"),
            ("vriend@elders.example", anna.email),
        ][n % 4]
        client_box.append("INBOX", _mail(n, f"Offerte {n:02} {HOSTILE}" if n % 2 else f"Nieuws {n}", sender, to))
    client_box.logout()
    sync_account(any_db, settings, annas)
    client = _app(settings, any_db).test_client()
    with any_db.transaction() as s:
        linked = s.scalar(
            select(func.count()).select_from(EmailProject).where(EmailProject.project_id == ids["project"])
        )
    assert linked  # the relation's one open project gets its mail: the project filter has some to find
    since, before = "2026-11-02T00:00:00+01:00", "2026-11-04T12:00:00+01:00"
    cases: list[tuple[str, dict[str, Any]]] = [
        ("", {}),
        ("q=offerte", {"q": "offerte"}),
        ("q=" + quote(QUOTED), {"q": QUOTED}),
        ("q=KLANT.EXAMPLE", {"q": "KLANT.EXAMPLE"}),
        (f"relation_id={ids['relation']}", {"relation_id": ids["relation"]}),
        (f"contact_id={ids['contact']}", {"contact_id": ids["contact"]}),
        (f"mailbox_id={annas.mailbox_id}", {"mailbox_id": annas.mailbox_id}),
        (f"project_id={ids['project']}", {"project_id": ids["project"]}),
        ("message_id=list-3@test.example", {"message_id": "list-3@test.example"}),
        (
            f"sent_since={quote(since)}&sent_before={quote(before)}",
            {"sent_since": datetime.fromisoformat(since), "sent_before": datetime.fromisoformat(before)},
        ),
        (
            f"q=offerte&relation_id={ids['relation']}&sent_since={quote(since)}",
            {"q": "offerte", "relation_id": ids["relation"], "sent_since": datetime.fromisoformat(since)},
        ),
    ]
    seen = {}
    for user in (anna, colleague, outsider):
        bearer = _bearer(any_db, user)
        for query, filters in cases:
            url = "/api/v1/emails?per_page=3" + (f"&{query}" if query else "")
            got = _items(client, url, bearer)
            if "mailbox_id" in filters and user is not anna:
                assert got == []  # someone else's mailbox: as one that does not exist
                continue
            assert got == _expected_emails(any_db, user, **filters), (user.name, url)
        seen[user.name] = {item["subject"] for item in _items(client, "/api/v1/emails", bearer)}
        # A hidden relation as filter: an empty list, exactly as a missing one.
        hidden = client.get(f"/api/v1/emails?relation_id={ids['hidden']}", headers=bearer).get_json()
        missing = client.get("/api/v1/emails?relation_id=2147483647", headers=bearer).get_json()
        if user is not anna:
            assert hidden == missing and hidden["items"] == []
    # Anna sees all her mail; the colleague only what is shared through the visible relation (not
    # what went to a never-shared address, nor the hidden relation's); the outsider nothing of hers.
    assert len(seen["Anna"]) == 14
    assert seen["Colleague"] == {_subject(n) for n in range(14) if n % 4 == 0}
    assert seen["Outsider"] == seen["Colleague"]
    # Totals and page numbers, as before.
    bearer = _bearer(any_db, anna)
    expected = _expected_emails(any_db, anna)
    body = client.get("/api/v1/emails?per_page=4&page=3&total=1", headers=bearer).get_json()
    assert body["items"] == expected[8:12] and body["total"] == 14 and body["page"] == 3


def _subject(n: int) -> str:
    return f"Offerte {n:02} {HOSTILE}" if n % 2 else f"Nieuws {n}"
