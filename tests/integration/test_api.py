"""The JSON API as an integrator uses it: tokens, CRUD, validation errors naming the field, access."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.accounts.users import create_token
from hub.db import Database
from hub.models import Project, User

Headers = dict[str, str]


@pytest.fixture
def token_for(db: Database) -> Callable[[User], Headers]:
    def make(user: User) -> Headers:
        with db.transaction() as s:
            return {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id))}

    return make


@pytest.fixture
def admin_headers(make_user: Callable[..., User], token_for: Callable[[User], Headers]) -> Headers:
    return token_for(make_user("Api Admin", admin=True))


def test_no_token_or_a_cookie_session_is_401(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[..., FlaskClient]
) -> None:
    assert client.get("/api/v1/projects").status_code == 401
    assert client.get("/api/v1/projects", headers={"Authorization": "Bearer nope"}).get_json()["error"]["message"]
    login(client, make_user())
    assert client.get("/api/v1/projects").status_code == 401  # a browser session is not an API credential


def test_relation_contact_project_roundtrip(client: FlaskClient, admin_headers: Headers) -> None:
    h = admin_headers
    status = client.post("/api/v1/choices", json={"field": "status", "name": "Won"}, headers=h).get_json()
    relation = client.post(
        "/api/v1/relations",
        json={
            "name": "Jansen Handel",
            "city": "Delft",
            "emails": ["info@jansen.example"],
            "phones": ["015-2123456"],
        },
        headers=h,
    )
    assert relation.status_code == 201
    rid = relation.get_json()["id"]
    contact = client.post(
        f"/api/v1/relations/{rid}/contacts", json={"name": "Kees", "emails": ["kees@jansen.example"]}, headers=h
    ).get_json()
    created = client.post(
        "/api/v1/projects",
        json={
            "relation_id": rid,
            "name": "New warehouse",
            "contact_ids": [contact["id"]],
            "value": "125000.5",
            "status": status["id"],
            "start_date": "2026-02-01",
            "free_text_1": "ref 42",
        },
        headers=h,
    )
    assert created.status_code == 201, created.get_json()
    project = created.get_json()
    assert project["value"] == "125000.50" and project["status"] == {"id": status["id"], "name": "Won"}
    assert project["contacts"] == [{"id": contact["id"], "name": "Kees"}] and project["free_text_1"] == "ref 42"
    patched = client.patch(f"/api/v1/projects/{project['id']}", json={"name": "New warehouse (phase 2)"}, headers=h)
    assert patched.get_json()["name"] == "New warehouse (phase 2)"
    assert patched.get_json()["value"] == "125000.50"  # untouched keys keep their values
    listing = client.get("/api/v1/projects?q=warehouse", headers=h).get_json()
    assert [p["name"] for p in listing["items"]] == ["New warehouse (phase 2)"] and listing["has_next"] is False
    note = client.put(f"/api/v1/projects/{project['id']}/notepad", json={"text": "call back"}, headers=h)
    assert note.get_json()["text"] == "call back"
    act = client.post(
        f"/api/v1/projects/{project['id']}/activities", json={"title": "Quote", "due_date": "2026-03-01"}, headers=h
    )
    assert (
        act.status_code == 201
        and client.get("/api/v1/activities/mine", headers=h).get_json()["items"][0]["title"] == "Quote"
    )


def test_validation_errors_name_the_field_and_create_nothing(
    client: FlaskClient, admin_headers: Headers, db: Database
) -> None:
    h = admin_headers
    rid = client.post("/api/v1/relations", json={"name": "R"}, headers=h).get_json()["id"]
    type_choice = client.post("/api/v1/choices", json={"field": "type", "name": "Repair"}, headers=h).get_json()
    cases = [
        ({"relation_id": rid, "name": ""}, "name"),
        ({"relation_id": rid, "name": "x", "value": "abc"}, "value"),
        ({"relation_id": "x", "name": "x"}, "relation_id"),
        ({"relation_id": rid, "name": "x", "start_date": "1-2-2026"}, "start_date"),
        ({"relation_id": rid, "name": "x", "status": type_choice["id"]}, "status"),  # a type choice as status
        ({"relation_id": 999999, "name": "x"}, "relation_id"),
    ]
    for payload, field in cases:
        response = client.post("/api/v1/projects", json=payload, headers=h)
        assert response.status_code == 400, payload
        assert response.get_json()["error"]["field"] == field, (payload, response.get_json())
    assert client.post("/api/v1/projects", data="not json", headers=h).status_code == 400
    bad_email = client.post("/api/v1/relations", json={"name": "Y", "emails": ["nope"]}, headers=h)
    assert bad_email.status_code == 400 and bad_email.get_json()["error"]["field"] == "emails"
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Project)) == 0


def test_choice_in_use_cannot_be_deleted_and_staff_cannot_write_choices(
    client: FlaskClient, admin_headers: Headers, make_user: Callable[..., User], token_for: Callable[[User], Headers]
) -> None:
    h = admin_headers
    rid = client.post("/api/v1/relations", json={"name": "R"}, headers=h).get_json()["id"]
    choice = client.post("/api/v1/choices", json={"field": "chance", "name": "90%"}, headers=h).get_json()
    client.post("/api/v1/projects", json={"relation_id": rid, "name": "P", "chance": choice["id"]}, headers=h)
    refused = client.delete(f"/api/v1/choices/{choice['id']}", headers=h)
    assert refused.status_code == 400 and "deactivate" in refused.get_json()["error"]["message"]
    assert (
        client.patch(f"/api/v1/choices/{choice['id']}", json={"active": False}, headers=h).get_json()["active"] is False
    )
    staff = token_for(make_user())
    assert client.post("/api/v1/choices", json={"field": "type", "name": "Z"}, headers=staff).status_code == 404
    assert client.get("/api/v1/choices?field=chance", headers=staff).get_json()["items"][0]["name"] == "90%"


def test_hidden_project_is_404_in_the_api(
    client: FlaskClient, admin_headers: Headers, make_user: Callable[..., User], token_for: Callable[[User], Headers]
) -> None:
    h = admin_headers
    insider, outsider = make_user(), make_user()
    rid = client.post("/api/v1/relations", json={"name": "R"}, headers=h).get_json()["id"]
    pid = client.post("/api/v1/projects", json={"relation_id": rid, "name": "Hidden"}, headers=h).get_json()["id"]
    client.put(f"/api/v1/projects/{pid}/linked", json={"user_ids": [insider.id], "group_ids": []}, headers=h)
    inside, outside = token_for(insider), token_for(outsider)
    assert client.get(f"/api/v1/projects/{pid}", headers=inside).status_code == 200
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(f"/api/v1/projects/{pid}", json={}, headers=outside)
        assert response.status_code == 404 and response.get_json()["error"]["message"] == "Not found."
    assert client.get("/api/v1/projects", headers=outside).get_json()["items"] == []
    assert client.get("/api/v1/nothing-here", headers=outside).status_code == 404


def test_document_upload_and_download(client: FlaskClient, admin_headers: Headers) -> None:
    h = admin_headers
    rid = client.post("/api/v1/relations", json={"name": "R"}, headers=h).get_json()["id"]
    pid = client.post("/api/v1/projects", json={"relation_id": rid, "name": "P"}, headers=h).get_json()["id"]
    data = b"%PDF-1.4 fake pdf bytes \x00\x01"
    up = client.post(
        f"/api/v1/projects/{pid}/documents",
        data={"file": (io.BytesIO(data), "plan.pdf")},
        headers=h,
        content_type="multipart/form-data",
    )
    assert up.status_code == 201 and up.get_json()["size"] == len(data)
    doc = up.get_json()
    assert client.get(f"/api/v1/documents/{doc['id']}/content", headers=h).data == data
    missing = client.post(f"/api/v1/projects/{pid}/documents", data={}, headers=h, content_type="multipart/form-data")
    assert missing.status_code == 400 and missing.get_json()["error"]["field"] == "file"


def test_openapi_lists_every_api_route(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api.openapi":
            continue
        path = rule.rule.removeprefix("/api/v1").replace("<int:", "{").replace(">", "}")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            operation = document["paths"][path][method.lower()]
            assert operation["summary"] and operation["responses"], (method, path)
