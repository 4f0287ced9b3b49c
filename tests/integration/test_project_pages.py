"""The project pages as a user works with them: list, form with choices, tabs, access."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Document, Project, User
from tests.conftest import csrf_token, make_settings

Login = Callable[[FlaskClient, User], FlaskClient]


@pytest.fixture
def data(db: Database, make_user: Callable[..., User]) -> dict[str, int]:
    admin = make_user("Admin", admin=True)
    with db.transaction() as s:
        rel = save_relation(s, RelationInput(name="Bakker BV", city="Utrecht"))
        contact = save_contact(s, rel, ContactInput(name="Anna Smit", emails=["anna@bakker.example"]))
        other = save_relation(s, RelationInput(name="Other NV"))
        other_contact = save_contact(s, other, ContactInput(name="Olaf"))
        status = save_choice(s, ChoiceInput(field="status", name="Offer sent", sort_order=2))
        kind = save_choice(s, ChoiceInput(field="type", name="Installation"))
        chance = save_choice(s, ChoiceInput(field="chance", name="50%"))
        free = save_choice(s, ChoiceInput(field="free_choice_1", name="North"))
        return {
            "relation": rel.id,
            "contact": contact.id,
            "other": other.id,
            "other_contact": other_contact.id,
            "status": status.id,
            "type": kind.id,
            "chance": chance.id,
            "free": free.id,
            "admin": admin.id,
        }


def _form(client: FlaskClient, url: str, **fields: object) -> dict[str, object]:
    return {"csrf_token": csrf_token(client.get(url).text), **fields}


def test_create_project_with_choices_then_see_it_in_the_list(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    staff = make_user("Staff")
    login(client, staff)
    url = f"/projects/new?relation_id={data['relation']}"
    page = client.get(url)
    assert "Bakker BV" in page.text and "Anna Smit" in page.text and "Offer sent" in page.text
    response = client.post(
        url,
        data=_form(
            client,
            url,
            relation_id=data["relation"],
            name="Solar panels roof",
            contact_ids=[data["contact"]],
            status=data["status"],
            type=data["type"],
            chance=data["chance"],
            free_choice_1=data["free"],
            value="12.500,50",
            currency="EUR",
            start_date="2026-01-05",
            end_date="2026-03-01",
            responsible_user_id=staff.id,
            description="x" * 30000,
        ),
    )
    assert response.status_code == 302, response.text
    project_url = response.headers["Location"]
    summary = client.get(project_url).text
    for expected in ("Solar panels roof", "Anna Smit", "Offer sent", "Installation", "50%", "North", "€ 12.500,50"):
        assert expected in summary
    listing = client.get("/projects?sort=name").text
    assert "Solar panels roof" in listing and "Bakker BV" in listing


def test_bad_input_is_shown_next_to_the_field_and_nothing_is_saved(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    login(client, make_user())
    url = f"/projects/new?relation_id={data['relation']}"
    # A status choice in the type dropdown, a contact of another relation, an end before the start.
    response = client.post(
        url,
        data=_form(
            client,
            url,
            relation_id=data["relation"],
            name="Kept name",
            type=data["status"],
            contact_ids=[data["other_contact"]],
            start_date="2026-05-01",
            end_date="2026-04-01",
            value="abc",
        ),
    )
    assert response.status_code == 400
    assert "This is not a choice of this dropdown." in response.text
    assert "The end date is before the start date." in response.text
    assert 'value="Kept name"' in response.text  # the input is kept
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Project)) == 0


def test_project_for_a_hidden_relation_is_refused(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    insider, outsider = make_user(), make_user()
    from hub.crm.relations import set_relation_linked

    with db.transaction() as s:
        from hub.models import Relation

        set_relation_linked(s, s.get_one(Relation, data["relation"]), [insider.id], [])
    login(client, outsider)
    url = "/projects/new"
    response = client.post(url, data=_form(client, url, relation_id=data["relation"], name="Sneaky"))
    assert response.status_code == 400 and "Choose a relation." in response.text
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Project)) == 0


def test_linked_project_is_404_for_others_on_every_tab(
    app: Flask, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    insider, outsider = make_user(), make_user()
    with db.transaction() as s:
        admin = s.get_one(User, data["admin"])
        project = save_project(s, admin, ProjectInput(relation_id=data["relation"], name="Secret deal"))
        set_linked(s, project, [insider.id], [])
        project_id = project.id
    inside = login(app.test_client(), insider)
    outside = login(app.test_client(), outsider)
    for tab in ("", "/notepad", "/activities", "/documents", "/emails", "/calls", "/agenda", "/users", "/edit"):
        assert inside.get(f"/projects/{project_id}{tab}").status_code == 200
        assert outside.get(f"/projects/{project_id}{tab}").status_code == 404
    assert "Secret deal" in inside.get("/projects").text
    assert "Secret deal" not in outside.get("/projects").text
    assert "Secret deal" not in outside.get("/search?q=secret").text


def test_notepad_activities_and_overdue(
    client: FlaskClient, make_user: Callable[..., User], login: Login, data: dict[str, int], db: Database
) -> None:
    staff = make_user("Noor")
    with db.transaction() as s:
        project_id = save_project(
            s, staff, ProjectInput(relation_id=data["relation"], name="P", responsible_user_id=staff.id)
        ).id
    login(client, staff)
    url = f"/projects/{project_id}/notepad"
    assert client.post(url, data=_form(client, url, notepad="Called Anna, wants offer")).status_code == 302
    page = client.get(url).text
    assert "Called Anna, wants offer" in page and "Last saved by Noor" in page
    url = f"/projects/{project_id}/activities"
    client.post(url, data=_form(client, url, title="Send offer", due_date="2020-01-01", assigned_user_id=staff.id))
    client.post(url, data=_form(client, url, title="Plan visit", due_date="2099-01-01", assigned_user_id=staff.id))
    page = client.get(url).text
    assert page.count('class="overdue"') == 1 and "Send offer" in page
    mine = client.get("/activities").text
    assert "Send offer" in mine and "Plan visit" in mine and "overdue" in mine
    empty = client.post(url, data=_form(client, url, title=""))
    assert empty.status_code == 400


def test_document_upload_download_and_size_limit(
    tmp_path: Path, make_user: Callable[..., User], login: Login, data: dict[str, int]
) -> None:
    from hub.migrate import upgrade
    from web import create_app

    settings = make_settings(tmp_path / "small", HUB_UPLOAD_MAX_BYTES="2K")
    upgrade(settings.database_url)
    database = Database(settings.database_url)
    app = create_app(settings, database=database, TESTING=True)
    from hub.accounts.users import UserInput, create_user

    with database.transaction() as s:
        staff = create_user(
            s, UserInput(email="d@staff.example", name="D", password="correct horse battery", language="en")
        )
        rel = save_relation(s, RelationInput(name="Docs BV"))
        project_id = save_project(s, staff, ProjectInput(relation_id=rel.id, name="Docs")).id
    client = login(app.test_client(), staff)
    url = f"/projects/{project_id}/documents"
    content = "Offerte €1.250 — café\n".encode() * 20
    response = client.post(
        url, data=_form(client, url, file=(io.BytesIO(content), "offerte.txt")), content_type="multipart/form-data"
    )
    assert response.status_code == 302
    page = client.get(url).text
    assert "offerte.txt" in page
    with database.transaction() as s:
        doc_id = s.scalars(select(Document.id)).one()
    download = client.get(f"/projects/{project_id}/documents/{doc_id}")
    assert download.data == content and "offerte.txt" in download.headers["Content-Disposition"]
    big = client.post(
        url, data=_form(client, url, file=(io.BytesIO(b"x" * 5000), "big.bin")), content_type="multipart/form-data"
    )
    assert big.status_code == 400 and "larger than the limit of 2.0 KB" in big.text
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 1
    database.dispose()
