"""A relation's page and GET /api/v1/relations/{id} read the relation as plain values (two queries)
rather than as Relation, Contact and Project objects: they must show exactly what those objects say,
on both databases: contacts in name order with their addresses and numbers in the order they were
added and their tags, the first 50 projects the reader may see (newest first, a link to all when
there are more), tags, owner, linked users and groups; names escaped; a relation the reader may not
see is not found, as a missing one, and a project of a visible relation he may not see is not shown."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from hub.accounts.users import UserInput, create_token, create_user, save_group
from hub.config import Settings
from hub.crm import tags as tag_service
from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.projects import ProjectInput, list_projects, save_project, set_linked
from hub.crm.relations import (
    ContactInput,
    RelationInput,
    get_relation,
    relation_contacts,
    relation_sheet,
    save_contact,
    save_relation,
    set_relation_linked,
)
from hub.db import Database
from hub.models import User
from tests.conftest import PASSWORD, EnglishClient

Login = Callable[[FlaskClient, User], FlaskClient]
HOSTILE = "<script>alert('x')</script> & \"q\""
# Added in this order; shown by name (the database's order of names, as the ORM's).
CONTACT_NAMES = [f"Zoë {HOSTILE}", "anna", "Anna", "Émile", "Bert", "bert"] + [
    f"Contact {n:02}" for n in range(18, 0, -1)
]
PROJECTS = 56  # one of them hidden from the reader: 55 visible, more than the 50 the page shows


def _seed(db: Database) -> dict[str, Any]:
    with db.transaction() as s:
        boss, owner, reader, colleague, outsider = (
            create_user(
                s,
                UserInput(email=f"user{i}@staff.example", name=n, password=PASSWORD, is_admin=n == "Boss"),
            )
            for i, n in enumerate(("Boss", "Owner", "Reader", f"Colleague {HOSTILE}", "Outsider"))
        )
        group, other_group = save_group(s, f"Zuid {HOSTILE}", [reader.id]), save_group(s, "Noord", [])
        relation = save_relation(
            s,
            RelationInput(
                name=f"Jansen {HOSTILE}",
                street="Kade <1>",
                city="Delft & co",
                phones=["020 123 4567", "+31 6 12345678"],
                emails=["z@jansen.example", "o'neil&co@jansen.example"],
                website="https://jansen.example/?a=1&b=<2>",
                owner_id=owner.id,
            ),
        )
        set_relation_linked(s, relation, [colleague.id, owner.id], [group.id, other_group.id])
        tag_service.create_tag(s, f"Rood {HOSTILE}", "#cf222e")
        tag_service.tag_relation(s, relation, f"Rood {HOSTILE}, beurs, Ärger, alpha")
        contacts = []
        for n, name in enumerate(CONTACT_NAMES):
            emails = [f"z{n}@jansen.example", f"a{n}'&x@jansen.example"][: n % 3]
            phones = ["020 765 4321", "06 1234 5678"][: (n + 1) % 3]
            function = f"Inkoop {HOSTILE}" if n % 2 else ""
            contacts.append(
                save_contact(s, relation, ContactInput(name=name, function=function, emails=emails, phones=phones))
            )
        tag_service.tag_contact(s, contacts[0], f"Rood {HOSTILE}, zz, aa")
        tag_service.tag_contact(s, contacts[3], "beurs")
        status = save_choice(s, ChoiceInput(field="status", name=f"Lopend {HOSTILE}")).id
        hidden = 0
        for n in range(PROJECTS):
            project = save_project(
                s,
                boss,
                ProjectInput(
                    relation_id=relation.id,
                    name=f"Project {n:02} {HOSTILE}",
                    responsible_user_id=[owner.id, colleague.id, None][n % 3],
                    end_date=date(2027, 1, 1 + n % 28) if n % 2 else None,
                    choices={"status": status if n % 4 else None},
                ),
            )
            if n == PROJECTS - 2:  # among the newest: on the first page if it were shown
                set_linked(s, project, [colleague.id], [])
                hidden = project.id
        empty = save_relation(s, RelationInput(name="Leeg"))
        tokens = {u.name: create_token(s, u, "t", scope="read") for u in (boss, reader, outsider)}
        return {
            "relation": relation.id,
            "empty": empty.id,
            "hidden_project": hidden,
            "tokens": tokens,
            "users": {u.name: u for u in (boss, reader, outsider)},
        }


def _orm_view(db: Database, user_id: int, relation_id: int) -> dict[str, Any]:
    """What the page showed when it read Relation, Contact and Project objects."""
    with db.transaction() as s:
        reader = s.get_one(User, user_id)
        relation = get_relation(s, reader, relation_id)
        contacts = relation_contacts(s, relation)
        tag_service.preload_contact_tags(s, contacts)
        projects, _sort = list_projects(s, reader, relation_id=relation_id, per_page=50)
        return {
            "owner": relation.owner.name if relation.owner else None,
            "phones": [p.number for p in relation.phones],
            "emails": [e.address for e in relation.emails],
            "users": [(u.id, u.name) for u in relation.linked_users],
            "groups": [(g.id, g.name) for g in relation.linked_groups],
            "tags": [(t.id, t.name, t.colour) for t in relation.tags],
            "contacts": [
                (
                    c.id,
                    c.name,
                    c.function,
                    [e.address for e in c.emails],
                    [p.number for p in c.phones],
                    [(t.id, t.name) for t in c.tags],
                )
                for c in contacts
            ],
            "projects": [
                (
                    p.id,
                    p.name,
                    p.status.name if p.status else None,
                    p.responsible_user.name if p.responsible_user else None,
                    p.end_date,
                )
                for p in projects.items
            ],
            "more_projects": projects.has_next,
        }


def _sheet_view(db: Database, user_id: int, relation_id: int) -> dict[str, Any]:
    with db.transaction() as s:
        sheet = relation_sheet(s, s.get_one(User, user_id), relation_id)
        return {
            "owner": sheet.owner.name if sheet.owner else None,
            "phones": [p.number for p in sheet.phones],
            "emails": [e.address for e in sheet.emails],
            "users": [(u.id, u.name) for u in sheet.linked_users],
            "groups": [(g.id, g.name) for g in sheet.linked_groups],
            "tags": [(t.id, t.name, t.colour) for t in sheet.tags],
            "contacts": [
                (
                    c.id,
                    c.name,
                    c.function,
                    [e.address for e in c.emails],
                    [p.number for p in c.phones],
                    [(t.id, t.name) for t in c.tags],
                )
                for c in sheet.contacts
            ],
            "projects": [
                (
                    p.id,
                    p.name,
                    p.status.name if p.status else None,
                    p.responsible_user.name if p.responsible_user else None,
                    p.end_date,
                )
                for p in sheet.projects.items
            ],
            "more_projects": sheet.projects.has_next,
        }


def test_sheet_is_what_the_relation_objects_say(any_db: Database) -> None:
    seeded = _seed(any_db)
    for name in ("Boss", "Reader"):
        user_id = seeded["users"][name].id
        for relation_id in (seeded["relation"], seeded["empty"]):
            assert _sheet_view(any_db, user_id, relation_id) == _orm_view(any_db, user_id, relation_id)
    shown = _sheet_view(any_db, seeded["users"]["Reader"].id, seeded["relation"])
    assert len(shown["contacts"]) == len(CONTACT_NAMES) and len(shown["projects"]) == 50 and shown["more_projects"]
    assert seeded["hidden_project"] not in [p[0] for p in shown["projects"]]
    # The boss (an admin) sees the hidden project too, among the newest.
    boss = _sheet_view(any_db, seeded["users"]["Boss"].id, seeded["relation"])
    assert seeded["hidden_project"] in [p[0] for p in boss["projects"][:3]]
    assert [c[1] for c in shown["contacts"]][:2] != CONTACT_NAMES[:2]  # sorted, not as added


def _app(settings: Settings, db: Database) -> Flask:
    from web import create_app

    app = create_app(settings, database=db, TESTING=True)
    app.test_client_class = EnglishClient
    return app


def test_api_relation_is_what_the_relation_object_says(any_db: Database, settings: Settings) -> None:
    from web.api import schemas

    seeded = _seed(any_db)
    client = _app(settings, any_db).test_client()
    for name in ("Boss", "Reader"):
        bearer = {"Authorization": f"Bearer {seeded['tokens'][name]}"}
        for relation_id in (seeded["relation"], seeded["empty"]):
            response = client.get(f"/api/v1/relations/{relation_id}", headers=bearer)
            assert response.status_code == 200
            with any_db.transaction() as s:
                relation = get_relation(s, s.get_one(User, seeded["users"][name].id), relation_id)
                expected = schemas.Relation.model_validate(relation).model_dump(mode="json", by_alias=False)
            assert response.get_json() == expected
            assert response.headers["ETag"] == f'"{expected["version"]}"'
    answer = client.get(
        f"/api/v1/relations/{seeded['relation']}", headers={"Authorization": f"Bearer {seeded['tokens']['Reader']}"}
    ).get_json()
    assert answer["name"] == f"Jansen {HOSTILE}" and answer["phones"] == ["020 123 4567", "+31 6 12345678"]
    assert [t["name"] for t in answer["tags"]] == ["alpha", "Ärger", "beurs", f"Rood {HOSTILE}"]
    assert len(answer["linked_user_ids"]) == 2 and len(answer["linked_group_ids"]) == 2
    # Not linked, not in a linked group, not the owner: not found, exactly as a missing relation.
    outsider = {"Authorization": f"Bearer {seeded['tokens']['Outsider']}"}
    hidden = client.get(f"/api/v1/relations/{seeded['relation']}", headers=outsider)
    missing = client.get("/api/v1/relations/999999", headers=outsider)
    assert hidden.status_code == missing.status_code == 404 and hidden.get_json() == missing.get_json()


def test_page_shows_contacts_projects_and_tags_escaped(any_db: Database, settings: Settings, login: Login) -> None:
    seeded = _seed(any_db)
    app = _app(settings, any_db)
    reader = login(app.test_client(), seeded["users"]["Reader"])  # sees it through group Zuid
    page = reader.get(f"/relations/{seeded['relation']}")
    assert page.status_code == 200
    assert (
        "<script>" not in page.text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;q&#34;" in page.text
    )
    expected = _orm_view(any_db, seeded["users"]["Reader"].id, seeded["relation"])
    contact_links = re.findall(r'<a href="/contacts/(\d+)">(.*?)</a>', page.text)
    assert [(int(i), html.unescape(n)) for i, n in contact_links] == [(c[0], c[1]) for c in expected["contacts"]]
    project_links = re.findall(r'<a href="/projects/(\d+)">(.*?)</a>', page.text)
    assert [(int(i), html.unescape(n)) for i, n in project_links] == [(p[0], p[1]) for p in expected["projects"]]
    assert len(project_links) == 50 and seeded["hidden_project"] not in {int(i) for i, _n in project_links}
    assert "Show all projects" in page.text
    text = html.unescape(page.text)
    assert "<dt>Owner</dt><dd>Owner</dd>" in text
    assert f"Colleague {HOSTILE}, Owner" in text and f"Noord, Zuid {HOSTILE}" in text
    # A contact's addresses and numbers, in the order they were added, escaped in the mailto link too.
    assert (
        '<a href="mailto:z2@jansen.example">z2@jansen.example</a><br><a href="mailto:a2&#39;&amp;x@jansen.example">'
        in (page.text)
    )
    assert "<td>020 765 4321<br>06 1234 5678</td>" in page.text
    # A contact's tags after its name, by name, escaped.
    assert '</a> <span class="badge tag">aa</span> <span class="badge tag">Rood &lt;script&gt;' in page.text
    assert 'fill="#cf222e"' in page.text  # the tag's colour
    for language, heading in (("en", "Contacts"), ("nl", "Contactpersonen")):
        translated = reader.get(f"/relations/{seeded['relation']}", headers={"Accept-Language": language})
        assert f"<h2>{heading}</h2>" in translated.text
        assert re.findall(r'<a href="/contacts/(\d+)">', translated.text) == [i for i, _n in contact_links]
    empty = reader.get(f"/relations/{seeded['empty']}")
    assert empty.status_code == 200 and "No contacts yet." in empty.text and "No projects yet." in empty.text
    assert "Show all projects" not in empty.text and "Nobody linked: visible to all staff" in empty.text
    # The outsider: a 404, the same page as for a relation that does not exist.
    outsider = login(app.test_client(), seeded["users"]["Outsider"])
    hidden, missing = outsider.get(f"/relations/{seeded['relation']}"), outsider.get("/relations/999999")
    assert hidden.status_code == missing.status_code == 404 and hidden.text == missing.text
