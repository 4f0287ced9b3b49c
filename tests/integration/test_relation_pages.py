"""Relation pages, settings (admins only), search and the CSV import in the browser UI."""

from __future__ import annotations

import io
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.crm.choices import choices_for
from hub.crm.import_jobs import run_import_job
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.models import ChoiceField, Contact, ImportJob, Relation, User
from tests.conftest import csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]


def _post(client: FlaskClient, url: str, **fields: object) -> object:
    return client.post(url, data={"csrf_token": csrf_token(client.get(url).text), **fields})


def test_relation_validation_keeps_input_and_saves_nothing(
    client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    login(client, make_user())
    response = _post(
        client,
        "/relations/new",
        kind="company",
        status="lead",
        name="De Boer Bouw",
        emails="info@deboer.example\nnot-an-address",
        phones="020 123",
        domain="gmail.com",
    )
    assert response.status_code == 400
    assert "not-an-address is not a valid e-mail address." in response.text
    assert "gmail.com is not a company mail domain." in response.text
    assert 'value="De Boer Bouw"' in response.text
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Relation)) == 0
    ok = _post(
        client,
        "/relations/new",
        kind="company",
        status="customer",
        name="De Boer Bouw",
        city="Zwolle",
        emails="info@deboer.example",
        phones="038-4211234",
        domain="deboer.example",
        owner_id="",
    )
    assert ok.status_code == 302
    card = client.get(ok.headers["Location"]).text
    assert "De Boer Bouw" in card and "038-4211234" in card and "info@deboer.example" in card


def test_card_lists_contacts_and_only_visible_projects(
    client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    viewer, other = make_user(), make_user()
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Mulder Groep"))
        save_project(s, viewer, ProjectInput(relation_id=relation.id, name="Visible project"))
        hidden = save_project(s, other, ProjectInput(relation_id=relation.id, name="Hidden project"))
        set_linked(s, hidden, [other.id], [])
        relation_id = relation.id
    login(client, viewer)
    added = _post(
        client,
        f"/relations/{relation_id}/contacts/new",
        name="Sem Mulder",
        function="Buyer",
        emails="sem@mulder.example",
        phones="+31 6 12345678",
    )
    assert added.status_code == 302
    card = client.get(f"/relations/{relation_id}").text
    assert "Sem Mulder" in card and "Buyer" in card and "Visible project" in card
    assert "Hidden project" not in card
    lookup = client.get("/relations/lookup?q=mulder").get_json()
    assert lookup == [{"id": relation_id, "name": "Mulder Groep", "city": ""}]


def test_settings_are_admin_only_and_choices_in_use_are_deactivated_not_deleted(
    app: Flask, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    staff = login(app.test_client(), make_user())
    for url in ("/settings/", "/settings/choices", "/settings/labels", "/settings/users", "/settings/groups"):
        assert staff.get(url).status_code == 404
    admin_user = make_user("Root", admin=True)
    admin = login(app.test_client(), admin_user)
    assert _post(admin, "/settings/choices", field="status", name="Lost", sort_order="9", active="y").status_code == 302
    with db.transaction() as s:
        lost = choices_for(s, ChoiceField.status)[0]
        relation = save_relation(s, RelationInput(name="R"))
        save_project(s, admin_user, ProjectInput(relation_id=relation.id, name="P", choices={"status": lost.id}))
        lost_id = lost.id
    token = csrf_token(admin.get("/settings/choices").text)
    admin.post(f"/settings/choices/{lost_id}/delete", data={"csrf_token": token})
    page = admin.get("/settings/choices").text
    assert "in use by projects; deactivate it instead" in page and "Lost" in page
    assert _post(admin, f"/settings/choices/{lost_id}", name="Lost", sort_order="9").status_code == 302
    with db.transaction() as s:
        assert choices_for(s, ChoiceField.status) == []  # gone from the dropdown for new projects
        assert [c.name for c in choices_for(s, ChoiceField.status, include_inactive=True)] == ["Lost"]
    assert (
        _post(
            admin,
            "/settings/labels",
            free_text_1="PO number",
            **{f"free_choice_{i}": f"C{i}" for i in range(1, 6)},
            free_text_2="a",
            free_text_3="b",
            free_text_4="c",
        ).status_code
        == 302
    )
    assert 'value="PO number"' in admin.get("/settings/labels").text
    new_user = _post(
        admin,
        "/settings/users/new",
        name="New Person",
        email="new@staff.example",
        password="short",
        language="nl",
        is_active="y",
    )
    assert new_user.status_code == 400 and "at least 8 characters" in new_user.text


def test_search_finds_relations_and_projects(
    client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    user = make_user()
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Café Zoë"))
        save_project(s, user, ProjectInput(relation_id=relation.id, name="Terrace heaters"))
    login(client, user)
    page = client.get("/search?q=cafe zoe").text
    assert "Café Zoë" in page and "Terrace heaters" in page
    assert "Terrace heaters" in client.get("/search?q=TERRACE").text


def test_csv_import_in_the_ui_reports_bad_rows_and_is_idempotent(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    login(client, make_user())
    csv = (
        b"relation,domain,contact_name,email,phone\n"
        b"Smit BV,smit.example,Tess Smit,tess@smit.example,+31 30 1234567\n"
        b",x.example,No Relation,a@x.example,\n"
        b"Smit BV,smit.example,Vera Smit,vera@smit.example,12\n"
    )
    for attempt in (1, 2):
        token = csrf_token(client.get("/import").text)
        response = client.post(
            "/import",
            data={"csrf_token": token, "file": (io.BytesIO(csv), "relations.csv")},
            content_type="multipart/form-data",
        )
        assert response.status_code == 302
        job_id = int(response.headers["Location"].rsplit("/", 1)[1])
        assert "Waiting for a worker" in client.get(f"/import/{job_id}").text
        run_import_job(db, app.extensions["hub.blobs"], job_id)
        page = client.get(f"/import/{job_id}").text
        assert "line 3: the relation name is empty" in page
        assert "line 4: &#39;12&#39; is not a valid phone number" in page
        with db.transaction() as s:
            job = s.get_one(ImportJob, job_id)
            assert job.contacts_created == (1 if attempt == 1 else 0)
            assert s.scalar(select(func.count()).select_from(Contact)) == 1
    empty = client.post(
        "/import", data={"csrf_token": csrf_token(client.get("/import").text)}, content_type="multipart/form-data"
    )
    assert empty.status_code == 400 and "Choose a CSV file" in empty.text
