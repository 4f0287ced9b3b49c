"""The project page's summary and GET /api/v1/projects/{id} read the project as plain values (two
queries) rather than as Project objects: they must show exactly what the Project says, on both
databases — several contacts in name order, each with its addresses in the order they were added,
linked users and groups by name, every dropdown, the company's own field labels — and a project the
reader may not see is not found, as a missing one."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from hub.accounts.users import UserInput, create_token, create_user, save_group
from hub.config import Settings
from hub.crm.choices import ChoiceInput, save_choice, save_field_labels
from hub.crm.projects import ProjectInput, get_project, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import User
from tests.conftest import PASSWORD, EnglishClient

Login = Callable[[FlaskClient, User], FlaskClient]


def _seed(db: Database) -> dict[str, Any]:
    with db.transaction() as s:
        boss, reader, colleague, outsider = (
            create_user(
                s, UserInput(email=f"{n.lower()}@staff.example", name=n, password=PASSWORD, is_admin=n == "Boss")
            )
            for n in ("Boss", "Reader", "Colleague", "Outsider")
        )
        relation = save_relation(s, RelationInput(name="Jansen & Zn"))
        # Added in another order than their names sort in, each with addresses added out of order.
        zoe = save_contact(
            s, relation, ContactInput(name="Zoë Visser", emails=["z2@jansen.example", "a1@jansen.example"])
        )
        anna = save_contact(s, relation, ContactInput(name="Anna Smit", emails=["smit@jansen.example"]))
        mark = save_contact(s, relation, ContactInput(name="Mark de Vries"))
        save_contact(s, relation, ContactInput(name="Not on the project", emails=["no@jansen.example"]))
        choices = {
            field: save_choice(s, ChoiceInput(field=field, name=f"{field} <b>")).id
            for field in ("type", "status", "chance", "free_choice_1", "free_choice_5")
        }
        save_field_labels(s, {"free_text_2": "Order number", "free_choice_5": "Region"})
        project = save_project(
            s,
            boss,
            ProjectInput(
                relation_id=relation.id,
                name="Warehouse",
                description="Two floors",
                contact_ids=[zoe.id, mark.id, anna.id],
                responsible_user_id=boss.id,
                value="1250,50",
                free_texts={"free_text_2": "PO-7"},
                choices=choices,
                one_off_contact_name="Site manager",
            ),
        )
        late, early = save_group(s, "Zuid", [reader.id]), save_group(s, "Noord", [])
        set_linked(s, project, [colleague.id, boss.id], [late.id, early.id])
        bare = save_project(s, boss, ProjectInput(relation_id=relation.id, name="Bare", responsible_user_id=boss.id))
        tokens = {u.name: create_token(s, u, "t", scope="read") for u in (boss, reader, outsider)}
        return {
            "project": project.id,
            "bare": bare.id,
            "tokens": tokens,
            "boss": boss.id,
            "reader": reader,
            "outsider": outsider,
        }


def _orm_answer(db: Database, user_id: int, project_id: int) -> dict[str, Any]:
    """What GET /projects/{id} answered when it read the Project object."""
    from web.api import schemas

    with db.transaction() as s:
        project = get_project(s, s.get_one(User, user_id), project_id, full=True)
        return schemas.Project.model_validate(project).model_dump(mode="json", by_alias=False)


def test_api_project_is_what_the_project_object_says(any_db: Database, settings: Settings) -> None:
    from web import create_app

    seeded = _seed(any_db)
    client = create_app(settings, database=any_db, TESTING=True).test_client()
    for project_id in (seeded["project"], seeded["bare"]):
        for name in ("Boss", "Reader"):
            bearer = {"Authorization": f"Bearer {seeded['tokens'][name]}"}
            response = client.get(f"/api/v1/projects/{project_id}", headers=bearer)
            assert response.status_code == 200
            assert response.get_json() == _orm_answer(any_db, seeded["boss"], project_id)
            assert response.headers["ETag"] == f'"{response.get_json()["version"]}"'
    answer = client.get(
        f"/api/v1/projects/{seeded['project']}", headers={"Authorization": f"Bearer {seeded['tokens']['Boss']}"}
    ).get_json()
    assert [c["name"] for c in answer["contacts"]] == ["Anna Smit", "Mark de Vries", "Zoë Visser"]
    assert len(answer["linked_user_ids"]) == 2 and len(answer["linked_group_ids"]) == 2
    assert answer["free_choice_5"]["name"] == "free_choice_5 <b>" and answer["free_choice_2"] is None
    # Not linked, not in a linked group: not found, exactly as a project that does not exist.
    outsider = {"Authorization": f"Bearer {seeded['tokens']['Outsider']}"}
    hidden = client.get(f"/api/v1/projects/{seeded['project']}", headers=outsider)
    missing = client.get("/api/v1/projects/999999", headers=outsider)
    assert hidden.status_code == missing.status_code == 404 and hidden.get_json() == missing.get_json()


def test_summary_page_shows_contacts_addresses_choices_and_labels(
    any_db: Database, settings: Settings, login: Login
) -> None:
    from web import create_app

    seeded = _seed(any_db)
    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    reader = login(app.test_client(), seeded["reader"])  # sees it through group Zuid
    page = reader.get(f"/projects/{seeded['project']}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    contacts = re.search(r"<dt>Contacts</dt><dd>(.*?)</dd>", page.text, re.S)
    assert contacts
    shown = html.unescape(re.sub(r"<[^>]+>", "", contacts.group(1)))
    # By name; each contact's addresses in the order they were added; the project's contacts only.
    assert re.sub(r"\s+", " ", shown).strip() == (
        "Anna Smit <smit@jansen.example>Mark de VriesZoë Visser <z2@jansen.example> <a1@jansen.example>"
        " Site manager (one-off)"
    )
    assert "no@jansen.example" not in text
    for field in ("type", "status", "chance", "free_choice_1", "free_choice_5"):
        assert f"{field} &lt;b&gt;" in page.text  # escaped, as every name
    assert "<dt>Order number</dt><dd>PO-7</dd>" in text and "<dt>Region</dt><dd>free_choice_5 <b></dd>" in text
    assert "<dt>Free text 1</dt>" in text and "<dt>Responsible</dt><dd>Boss</dd>" in text
    assert "€ 1.250,50" in text and "Two floors" in text
    bare = reader.get(f"/projects/{seeded['bare']}")
    bare_contacts = re.search(r"<dt>Contacts</dt><dd>(.*?)</dd>", bare.text, re.S)
    assert bare.status_code == 200 and bare_contacts and not bare_contacts.group(1).strip()
    # The outsider: the page is a 404, the same as for a project that does not exist.
    outsider = login(app.test_client(), seeded["outsider"])
    hidden, missing = outsider.get(f"/projects/{seeded['project']}"), outsider.get("/projects/999999")
    assert hidden.status_code == missing.status_code == 404 and hidden.text == missing.text
