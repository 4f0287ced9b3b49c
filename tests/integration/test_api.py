"""The JSON API as an integrator uses it: CRUD on every resource, JSON errors naming the field.

Access (tokens, hidden objects) is in test_api_access.py; the OpenAPI document in test_openapi.py.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.accounts.users import create_token
from hub.config import Settings
from hub.db import Database
from hub.models import Activity, Contact, Project, Relation, User

Headers = dict[str, str]


@pytest.fixture
def token_for(db: Database) -> Callable[[User], Headers]:
    def make(user: User) -> Headers:
        with db.transaction() as s:
            return {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id))}

    return make


@pytest.fixture
def admin(make_user: Callable[..., User]) -> User:
    return make_user("Api Admin", admin=True)


@pytest.fixture
def h(admin: User, token_for: Callable[[User], Headers]) -> Headers:
    return token_for(admin)


def _count(db: Database, model: Any) -> int:
    with db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _relation(client: FlaskClient, h: Headers, name: str = "R", **fields: Any) -> int:
    response = client.post("/api/v1/relations", json={"name": name, **fields}, headers=h)
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def _project(client: FlaskClient, h: Headers, relation_id: int, name: str = "P", **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/projects", json={"relation_id": relation_id, "name": name, **fields}, headers=h)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


# --- relations and contacts ----------------------------------------------------------------------


def test_relations_create_read_change_list_delete(client: FlaskClient, h: Headers, admin: User) -> None:
    created = client.post(
        "/api/v1/relations",
        json={"name": "Jansen Handel", "city": "Delft", "emails": ["info@jansen.example"], "phones": ["015-2123456"]},
        headers=h,
    )
    assert created.status_code == 201
    relation = created.get_json()
    assert relation["owner_id"] == admin.id  # whoever creates it owns it, as on the page
    assert relation["emails"] == ["info@jansen.example"] and relation["status"] == "lead"
    rid = relation["id"]
    assert client.get(f"/api/v1/relations/{rid}", headers=h).get_json()["city"] == "Delft"

    patched = client.patch(f"/api/v1/relations/{rid}", json={"city": "Leiden", "status": "customer"}, headers=h)
    assert patched.status_code == 200
    assert patched.get_json()["city"] == "Leiden" and patched.get_json()["status"] == "customer"
    assert patched.get_json()["emails"] == ["info@jansen.example"]  # keys not sent keep their values

    for name in ("Bakker BV", "Alfa", "Zeta"):
        _relation(client, h, name)
    first = client.get("/api/v1/relations?per_page=2", headers=h).get_json()
    assert [r["name"] for r in first["items"]] == ["Alfa", "Bakker BV"]
    # Lists page by cursor: a page's `next` is passed back as ?cursor= (no page numbers, no OFFSET).
    assert first["next"] and first["total"] is None
    last = client.get(f"/api/v1/relations?per_page=2&cursor={first['next']}&total=1", headers=h).get_json()
    assert [r["name"] for r in last["items"]] == ["Jansen Handel", "Zeta"] and last["next"] is None
    assert last["total"] == 4
    assert [r["name"] for r in client.get("/api/v1/relations?q=jans", headers=h).get_json()["items"]] == [
        "Jansen Handel"
    ]
    assert [r["name"] for r in client.get("/api/v1/relations?status=customer", headers=h).get_json()["items"]] == [
        "Jansen Handel"
    ]
    assert client.get("/api/v1/relations?sort=-name", headers=h).get_json()["items"][0]["name"] == "Zeta"

    assert client.delete(f"/api/v1/relations/{rid}", headers=h).status_code == 204
    assert client.get(f"/api/v1/relations/{rid}", headers=h).status_code == 404


def test_a_relation_with_projects_is_not_deleted(client: FlaskClient, h: Headers) -> None:
    rid = _relation(client, h)
    _project(client, h, rid)
    refused = client.delete(f"/api/v1/relations/{rid}", headers=h)
    assert refused.status_code == 400 and "projects" in refused.get_json()["error"]["message"]
    assert client.get(f"/api/v1/relations/{rid}", headers=h).status_code == 200


def test_contacts_create_read_change_list_delete(client: FlaskClient, h: Headers) -> None:
    rid = _relation(client, h)
    created = client.post(
        f"/api/v1/relations/{rid}/contacts",
        json={"name": "Kees", "function": "Buyer", "emails": ["kees@jansen.example"]},
        headers=h,
    )
    assert created.status_code == 201
    contact = created.get_json()
    assert contact["relation_id"] == rid and contact["emails"] == ["kees@jansen.example"]
    client.post(f"/api/v1/relations/{rid}/contacts", json={"name": "Anna"}, headers=h)
    listed = client.get(f"/api/v1/relations/{rid}/contacts", headers=h).get_json()["items"]
    assert [c["name"] for c in listed] == ["Anna", "Kees"]

    patched = client.patch(f"/api/v1/contacts/{contact['id']}", json={"phones": ["0612345678"]}, headers=h)
    assert patched.get_json()["phones"] == ["0612345678"] and patched.get_json()["function"] == "Buyer"
    assert client.get(f"/api/v1/contacts/{contact['id']}", headers=h).get_json()["phones"] == ["0612345678"]
    assert client.delete(f"/api/v1/contacts/{contact['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/contacts/{contact['id']}", headers=h).status_code == 404
    # A relation goes with its contacts.
    anna = listed[0]["id"]
    assert client.delete(f"/api/v1/relations/{rid}", headers=h).status_code == 204
    assert client.get(f"/api/v1/contacts/{anna}", headers=h).status_code == 404


# --- projects ------------------------------------------------------------------------------------


def test_project_serializes_every_field(
    client: FlaskClient, h: Headers, make_user: Callable[..., User], admin: User
) -> None:
    rid = _relation(client, h, "Jansen Handel")
    kees = client.post(f"/api/v1/relations/{rid}/contacts", json={"name": "Kees"}, headers=h).get_json()
    choice = {
        field: client.post("/api/v1/choices", json={"field": field, "name": f"{field} A"}, headers=h).get_json()
        for field in ("type", "status", "chance", "free_choice_2")
    }
    project = _project(
        client,
        h,
        rid,
        "New warehouse",
        description="Two floors",
        contact_ids=[kees["id"]],
        value="1250",
        currency="usd",
        start_date="2026-02-01",
        end_date="2026-06-30",
        end_date_expected=True,
        free_text_1="ref 42",
        type=choice["type"]["id"],
        status={"id": choice["status"]["id"], "name": "ignored"},  # the shape GET returns is accepted too
        chance_id=choice["chance"]["id"],
        free_choice_2=choice["free_choice_2"]["id"],
        one_off_contact_name="Site manager",
        one_off_contact_email="site@jansen.example",
    )
    assert project["value"] == "1250.00" and project["currency"] == "USD"
    assert project["relation_id"] == rid and project["relation_name"] == "Jansen Handel"
    assert project["responsible_user_id"] == admin.id  # the creator, unless the body says otherwise
    assert project["type"] == {"id": choice["type"]["id"], "name": "type A"}
    assert project["status"] == {"id": choice["status"]["id"], "name": "status A"}
    assert project["chance"] == {"id": choice["chance"]["id"], "name": "chance A"}
    assert project["free_choice_2"] == {"id": choice["free_choice_2"]["id"], "name": "free_choice_2 A"}
    assert project["free_choice_1"] is None and project["free_text_1"] == "ref 42" and project["free_text_2"] == ""
    assert project["contacts"] == [{"id": kees["id"], "name": "Kees"}]
    assert project["one_off_contact"]["email"] == "site@jansen.example"
    assert project["start_date"] == "2026-02-01" and project["end_date"] == "2026-06-30"
    assert project["end_date_expected"] is True and project["closed"] is False
    assert project["linked_user_ids"] == [] and project["linked_group_ids"] == []
    assert project["description"] == "Two floors"
    assert client.get(f"/api/v1/projects/{project['id']}", headers=h).get_json() == project
    # The list's summary (read as plain columns) says what the project itself says.
    [listed] = client.get(f"/api/v1/projects?relation_id={rid}", headers=h).get_json()["items"]
    assert listed == {key: project[key] for key in listed} and len(listed) == 14

    colleague = make_user("Colleague")
    linked = client.put(
        f"/api/v1/projects/{project['id']}/linked", json={"user_ids": [colleague.id], "group_ids": []}, headers=h
    )
    assert linked.get_json() == {"user_ids": [colleague.id], "group_ids": []}
    assert client.get(f"/api/v1/projects/{project['id']}", headers=h).get_json()["linked_user_ids"] == [colleague.id]


def test_project_patch_changes_only_the_given_keys(client: FlaskClient, h: Headers) -> None:
    rid = _relation(client, h)
    status = client.post("/api/v1/choices", json={"field": "status", "name": "Won"}, headers=h).get_json()
    project = _project(client, h, rid, "Warehouse", value="125000.5", status=status["id"], free_text_3="x")
    patched = client.patch(f"/api/v1/projects/{project['id']}", json={"name": "Warehouse (phase 2)"}, headers=h)
    assert patched.status_code == 200
    body = patched.get_json()
    assert body["name"] == "Warehouse (phase 2)" and body["value"] == "125000.50"
    assert body["status"] == {"id": status["id"], "name": "Won"} and body["free_text_3"] == "x"
    cleared = client.patch(f"/api/v1/projects/{project['id']}", json={"status": None, "value": None}, headers=h)
    assert cleared.get_json()["status"] is None and cleared.get_json()["value"] is None
    # What GET returns can be sent back, less the keys only the server writes: an unknown key is a
    # 400 now (a typo must not pass silently), and the document says which keys PATCH takes.
    writable = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["ProjectPatch"]["properties"]
    body = {key: value for key, value in cleared.get_json().items() if key in writable}
    assert {"name", "status", "value", "free_text_3"} <= set(body)
    again = client.patch(f"/api/v1/projects/{project['id']}", json=body, headers=h)
    assert again.status_code == 200 and again.get_json()["name"] == "Warehouse (phase 2)"


def test_project_list_filters_sorts_and_pages(client: FlaskClient, h: Headers) -> None:
    jansen, bakker = _relation(client, h, "Jansen"), _relation(client, h, "Bakker")
    _project(client, h, jansen, "Alpha roof", value="10")
    _project(client, h, jansen, "Beta hall", value="30", closed=True)
    _project(client, h, bakker, "Gamma roof", value="20")

    def names(query: str) -> list[str]:
        response = client.get(f"/api/v1/projects{query}", headers=h)
        assert response.status_code == 200, response.get_json()
        return [p["name"] for p in response.get_json()["items"]]

    assert names("?sort=name") == ["Alpha roof", "Beta hall", "Gamma roof"]
    assert names("?sort=-value") == ["Beta hall", "Gamma roof", "Alpha roof"]
    assert names("?q=roof&sort=name") == ["Alpha roof", "Gamma roof"]
    assert names(f"?relation_id={jansen}&sort=name") == ["Alpha roof", "Beta hall"]
    assert names("?open=1&sort=name") == ["Alpha roof", "Gamma roof"]
    first = client.get("/api/v1/projects?sort=name&per_page=2", headers=h).get_json()
    paged = client.get(f"/api/v1/projects?sort=name&per_page=2&cursor={first['next']}", headers=h).get_json()
    assert [p["name"] for p in paged["items"]] == ["Gamma roof"] and paged["next"] is None
    item = client.get("/api/v1/projects?sort=name", headers=h).get_json()["items"][0]
    assert item["relation_name"] == "Jansen" and item["value"] == "10.00" and item["status"] is None


def test_notepad_and_project_delete(client: FlaskClient, h: Headers, admin: User) -> None:
    project = _project(client, h, _relation(client, h))
    note = client.put(f"/api/v1/projects/{project['id']}/notepad", json={"text": "call back on Monday"}, headers=h)
    assert note.status_code == 200
    assert note.get_json()["text"] == "call back on Monday" and note.get_json()["updated_by_id"] == admin.id
    assert client.get(f"/api/v1/projects/{project['id']}", headers=h).get_json()["notepad"] == "call back on Monday"
    assert client.delete(f"/api/v1/projects/{project['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/projects/{project['id']}", headers=h).status_code == 404


# --- activities and documents --------------------------------------------------------------------


def test_activities_create_read_change_mine_delete(
    client: FlaskClient, h: Headers, make_user: Callable[..., User], token_for: Callable[[User], Headers]
) -> None:
    project = _project(client, h, _relation(client, h))
    created = client.post(
        f"/api/v1/projects/{project['id']}/activities",
        json={"title": "Send quote", "due_date": "2026-03-01"},
        headers=h,
    )
    assert created.status_code == 201
    activity = created.get_json()
    assert activity["due_date"] == "2026-03-01" and activity["done"] is False
    colleague = make_user("Colleague")
    delegated = client.post(
        f"/api/v1/projects/{project['id']}/activities",
        json={"title": "Visit site", "assigned_user_id": colleague.id},
        headers=h,
    ).get_json()
    listed = client.get(f"/api/v1/projects/{project['id']}/activities", headers=h).get_json()["items"]
    assert {a["title"] for a in listed} == {"Send quote", "Visit site"}
    assert [a["title"] for a in client.get("/api/v1/activities/mine", headers=h).get_json()["items"]] == ["Send quote"]
    theirs = client.get("/api/v1/activities/mine", headers=token_for(colleague)).get_json()["items"]
    assert [a["id"] for a in theirs] == [delegated["id"]]

    done = client.patch(f"/api/v1/activities/{activity['id']}", json={"done": True}, headers=h).get_json()
    assert done["done"] is True and done["done_at"] and done["title"] == "Send quote"
    assert client.get("/api/v1/activities/mine", headers=h).get_json()["items"] == []
    assert len(client.get("/api/v1/activities/mine?done=1", headers=h).get_json()["items"]) == 1
    assert client.get(f"/api/v1/activities/{activity['id']}", headers=h).get_json()["done"] is True
    assert client.delete(f"/api/v1/activities/{activity['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/activities/{activity['id']}", headers=h).status_code == 404


def test_document_upload_download_round_trip(client: FlaskClient, h: Headers, db: Database) -> None:
    project = _project(client, h, _relation(client, h))
    data = b"%PDF-1.4 fake pdf bytes \x00\x01\xff" * 100
    uploaded = client.post(
        f"/api/v1/projects/{project['id']}/documents",
        data={"file": (io.BytesIO(data), "plan v2.pdf", "application/pdf")},
        headers=h,
        content_type="multipart/form-data",
    )
    assert uploaded.status_code == 201
    document = uploaded.get_json()
    assert document["size"] == len(data) and document["filename"] == "plan v2.pdf"
    assert document["content_type"] == "application/pdf"
    assert client.get(f"/api/v1/documents/{document['id']}", headers=h).get_json() == document
    listed = client.get(f"/api/v1/projects/{project['id']}/documents", headers=h).get_json()["items"]
    assert [d["id"] for d in listed] == [document["id"]]

    download = client.get(f"/api/v1/documents/{document['id']}/content", headers=h)
    assert download.status_code == 200 and download.data == data
    assert download.mimetype == "application/pdf" and "plan v2.pdf" in download.headers["Content-Disposition"]

    missing = client.post(
        f"/api/v1/projects/{project['id']}/documents", data={}, headers=h, content_type="multipart/form-data"
    )
    assert missing.status_code == 400 and missing.get_json()["error"]["field"] == "file"
    empty = client.post(
        f"/api/v1/projects/{project['id']}/documents",
        data={"file": (io.BytesIO(b""), "empty.txt")},
        headers=h,
        content_type="multipart/form-data",
    )
    assert empty.status_code == 400 and empty.get_json()["error"]["field"] == "file"

    assert client.delete(f"/api/v1/documents/{document['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/documents/{document['id']}/content", headers=h).status_code == 404


# --- choices and labels --------------------------------------------------------------------------


def test_choices_list_create_change_delete(client: FlaskClient, h: Headers) -> None:
    won = client.post("/api/v1/choices", json={"field": "status", "name": "Won", "sort_order": 2}, headers=h)
    assert won.status_code == 201
    lost = client.post("/api/v1/choices", json={"field": "status", "name": "Lost", "sort_order": 1}, headers=h)
    client.post("/api/v1/choices", json={"field": "type", "name": "Repair"}, headers=h)
    statuses = client.get("/api/v1/choices?field=status", headers=h).get_json()["items"]
    assert [c["name"] for c in statuses] == ["Lost", "Won"]
    assert len(client.get("/api/v1/choices", headers=h).get_json()["items"]) == 3
    bad_field = client.get("/api/v1/choices?field=colour", headers=h)
    assert bad_field.status_code == 400 and bad_field.get_json()["error"]["field"] == "field"

    renamed = client.patch(f"/api/v1/choices/{won.get_json()['id']}", json={"name": "Won!"}, headers=h).get_json()
    assert renamed["name"] == "Won!" and renamed["sort_order"] == 2 and renamed["active"] is True
    duplicate = client.post("/api/v1/choices", json={"field": "status", "name": "won!"}, headers=h)
    assert duplicate.status_code == 400 and duplicate.get_json()["error"]["field"] == "name"
    assert client.delete(f"/api/v1/choices/{lost.get_json()['id']}", headers=h).status_code == 204
    assert [c["name"] for c in client.get("/api/v1/choices?field=status", headers=h).get_json()["items"]] == ["Won!"]


def test_a_choice_in_use_is_deactivated_not_deleted(client: FlaskClient, h: Headers) -> None:
    chance = client.post("/api/v1/choices", json={"field": "chance", "name": "90%"}, headers=h).get_json()
    _project(client, h, _relation(client, h), chance=chance["id"])
    refused = client.delete(f"/api/v1/choices/{chance['id']}", headers=h)
    assert refused.status_code == 400 and "deactivate" in refused.get_json()["error"]["message"]
    off = client.patch(f"/api/v1/choices/{chance['id']}", json={"active": False}, headers=h)
    assert off.get_json()["active"] is False
    # An inactive choice cannot be picked for another project.
    rid = _relation(client, h, "Other")
    response = client.post(
        "/api/v1/projects", json={"relation_id": rid, "name": "Q", "chance": chance["id"]}, headers=h
    )
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "chance"


def test_field_labels(client: FlaskClient, h: Headers) -> None:
    labels = client.get("/api/v1/field-labels", headers=h).get_json()
    assert set(labels) >= {"free_text_1", "free_choice_5"}
    changed = client.put("/api/v1/field-labels", json={"free_text_1": "Order number"}, headers=h)
    assert changed.status_code == 200 and changed.get_json()["free_text_1"] == "Order number"
    assert client.get("/api/v1/field-labels", headers=h).get_json()["free_text_1"] == "Order number"
    unknown = client.put("/api/v1/field-labels", json={"colour": "Red"}, headers=h)
    assert unknown.status_code == 400 and unknown.get_json()["error"]["field"] == "colour"
    wrong_type = client.put("/api/v1/field-labels", json={"free_text_2": 7}, headers=h)
    assert wrong_type.status_code == 400 and wrong_type.get_json()["error"]["field"] == "free_text_2"


# --- bad input -----------------------------------------------------------------------------------


def test_bad_project_input_names_the_field_and_creates_nothing(client: FlaskClient, h: Headers, db: Database) -> None:
    rid = _relation(client, h)
    repair = client.post("/api/v1/choices", json={"field": "type", "name": "Repair"}, headers=h).get_json()
    cases = [
        ({"relation_id": rid, "name": ""}, "name"),
        ({"relation_id": rid, "name": "x", "value": "abc"}, "value"),
        ({"relation_id": rid, "name": "x", "value": True}, "value"),
        ({"relation_id": "x", "name": "x"}, "relation_id"),
        ({"relation_id": rid, "name": 5}, "name"),
        ({"relation_id": rid, "name": "x", "start_date": "1-2-2026"}, "start_date"),
        ({"relation_id": rid, "name": "x", "start_date": "20260201"}, "start_date"),
        ({"relation_id": rid, "name": "x", "end_date": "2026-02-30"}, "end_date"),
        ({"relation_id": rid, "name": "x", "closed": "yes"}, "closed"),
        ({"relation_id": rid, "name": "x", "contact_ids": ["1"]}, "contact_ids"),
        ({"relation_id": rid, "name": "x", "status": repair["id"]}, "status"),  # a type choice given as status
        ({"relation_id": rid, "name": "x", "status": "Won"}, "status"),
        ({"relation_id": rid, "name": "x", "currency": "euro"}, "currency"),
        ({"relation_id": 999999, "name": "x"}, "relation_id"),
        ({"name": "x"}, "relation_id"),
    ]
    for payload, field in cases:
        response = client.post("/api/v1/projects", json=payload, headers=h)
        assert response.status_code == 400, payload
        error = response.get_json()["error"]
        assert error["field"] == field and error["message"], (payload, error)
        assert error["fields"][field] == error["message"]
    both = client.post("/api/v1/projects", json={"relation_id": rid, "name": "", "currency": "euro"}, headers=h)
    assert set(both.get_json()["error"]["fields"]) == {"name", "currency"}  # every bad field, not just the first
    assert _count(db, Project) == 0

    project = _project(client, h, rid, "Kept")
    bad_patch = client.patch(f"/api/v1/projects/{project['id']}", json={"name": "", "value": "5"}, headers=h)
    assert bad_patch.status_code == 400 and bad_patch.get_json()["error"]["field"] == "name"
    assert client.get(f"/api/v1/projects/{project['id']}", headers=h).get_json()["name"] == "Kept"


def test_bad_input_on_other_resources(client: FlaskClient, h: Headers, db: Database) -> None:
    bad_email = client.post("/api/v1/relations", json={"name": "Y", "emails": ["nope"]}, headers=h)
    assert bad_email.status_code == 400 and bad_email.get_json()["error"]["field"] == "emails"
    not_a_list = client.post("/api/v1/relations", json={"name": "Y", "phones": "0612345678"}, headers=h)
    assert not_a_list.status_code == 400 and not_a_list.get_json()["error"]["field"] == "phones"
    bad_kind = client.post("/api/v1/relations", json={"name": "Y", "kind": "robot"}, headers=h)
    assert bad_kind.status_code == 400 and bad_kind.get_json()["error"]["field"] == "kind"
    assert _count(db, Relation) == 0

    project = _project(client, h, _relation(client, h))
    nameless = client.post(f"/api/v1/relations/{project['relation_id']}/contacts", json={"name": " "}, headers=h)
    assert nameless.status_code == 400 and nameless.get_json()["error"]["field"] == "name"
    assert _count(db, Contact) == 0
    for payload, field in (({"title": ""}, "title"), ({"title": "x", "due_date": "tomorrow"}, "due_date")):
        response = client.post(f"/api/v1/projects/{project['id']}/activities", json=payload, headers=h)
        assert response.status_code == 400 and response.get_json()["error"]["field"] == field
    assert _count(db, Activity) == 0
    bad_note = client.put(f"/api/v1/projects/{project['id']}/notepad", json={"text": ["a"]}, headers=h)
    assert bad_note.status_code == 400 and bad_note.get_json()["error"]["field"] == "text"
    unknown_user = client.put(f"/api/v1/projects/{project['id']}/linked", json={"user_ids": [999999]}, headers=h)
    assert unknown_user.status_code == 400 and unknown_user.get_json()["error"]["field"] == "user_ids"


def test_errors_are_json(client: FlaskClient, h: Headers) -> None:
    malformed = client.post("/api/v1/relations", data="{not json", headers=h, content_type="application/json")
    assert malformed.status_code == 400 and malformed.get_json()["error"]["message"]
    not_an_object = client.post("/api/v1/relations", json=["R"], headers=h)
    assert not_an_object.status_code == 400
    too_many = client.get("/api/v1/projects?per_page=101", headers=h)
    assert too_many.status_code == 400 and too_many.get_json()["error"]["field"] == "per_page"
    not_a_number = client.get("/api/v1/relations?per_page=two", headers=h)
    assert not_a_number.status_code == 400 and not_a_number.get_json()["error"]["field"] == "per_page"
    not_a_cursor = client.get("/api/v1/relations?cursor=two", headers=h)
    assert not_a_cursor.status_code == 400 and not_a_cursor.get_json()["error"]["field"] == "cursor"

    wrong_method = client.put("/api/v1/relations", json={}, headers=h)
    assert wrong_method.status_code == 405 and wrong_method.get_json()["error"]["message"]
    unknown_url = client.get("/api/v1/no-such-thing", headers=h)
    unknown_id = client.get("/api/v1/projects/999999", headers=h)
    assert unknown_url.status_code == unknown_id.status_code == 404
    assert unknown_url.get_json() == unknown_id.get_json() == {"error": {"message": "Not found", "field": None}}


def test_too_large_uploads_are_refused_and_nothing_is_stored(
    settings: Settings, db: Database, admin: User, token_for: Callable[[User], Headers]
) -> None:
    from web import create_app

    # Limit 100 bytes: Flask itself stops bodies above 100 bytes + 1 MB (413), the service the rest (400).
    app = create_app(dataclasses.replace(settings, upload_max_bytes=100), database=db, TESTING=True)
    client, h = app.test_client(), token_for(admin)
    project = _project(client, h, _relation(client, h))
    url = f"/api/v1/projects/{project['id']}/documents"
    for size, status in ((200, 400), (2 * 1024 * 1024, 413)):
        data = {"file": (io.BytesIO(b"x" * size), "big.bin")}
        response = client.post(url, data=data, headers=h, content_type="multipart/form-data")
        assert response.status_code == status, size
        assert response.get_json()["error"]["field"] == "file" and "100" in response.get_json()["error"]["message"]
    assert client.get(url, headers=h).get_json()["items"] == []
