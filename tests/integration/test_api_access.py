"""Who gets in through the API: bearer tokens only, and the same visibility rule as the pages.

A project or relation someone may not see answers 404 on every verb, with exactly the body of
something that does not exist; its linked users and admins use it normally.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient

from hub.accounts.users import create_token
from hub.db import Database
from hub.models import User

Headers = dict[str, str]
NOT_FOUND = {"error": {"message": "Not found", "field": None}}


@pytest.fixture
def token_for(db: Database) -> Callable[[User], Headers]:
    def make(user: User) -> Headers:
        with db.transaction() as s:
            return {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id))}

    return make


# --- tokens --------------------------------------------------------------------------------------


def test_no_token_or_a_bad_token_is_401(client: FlaskClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dXNlcjpwdw=="}):
        response = client.get("/api/v1/projects", headers=headers)
        assert response.status_code == 401 and "token" in response.get_json()["error"]["message"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/api/v1/relations", json={"name": "X"}).status_code == 401


def test_a_cookie_session_does_not_authenticate_the_api(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[..., FlaskClient]
) -> None:
    login(client, make_user(admin=True))
    assert client.get("/projects").status_code == 200  # the pages know the user…
    assert client.get("/api/v1/projects").status_code == 401  # …the API does not
    assert client.post("/api/v1/relations", json={"name": "Forged"}).status_code == 401
    assert client.get("/api/v1/relations", headers={"Authorization": "Bearer "}).status_code == 401


def test_a_deactivated_users_token_stops_working(
    client: FlaskClient, make_user: Callable[..., User], token_for: Callable[[User], Headers]
) -> None:
    assert client.get("/api/v1/projects", headers=token_for(make_user())).status_code == 200
    assert client.get("/api/v1/projects", headers=token_for(make_user(active=False))).status_code == 401


def test_the_cli_token_works(
    client: FlaskClient, make_user: Callable[..., User], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from hub.cli import main

    user = make_user("Cli User")
    for key, value in {"HUB_VAR_DIR": str(settings.var_dir), "HUB_SECRET_KEY": settings.secret_key}.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, ["token", "create", user.email])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1].split()[-1]
    assert client.get("/api/v1/relations", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --- hidden objects ------------------------------------------------------------------------------


@dataclass
class World:
    admin: Headers
    insider: Headers
    outsider: Headers
    ids: dict[str, int]


@pytest.fixture
def world(client: FlaskClient, make_user: Callable[..., User], token_for: Callable[[User], Headers]) -> World:
    """A relation and a project linked to ``insider`` only, with something of every kind inside."""
    admin, insider = token_for(make_user("Admin", admin=True)), make_user("Insider")
    outsider = token_for(make_user("Outsider"))

    def post(url: str, **kwargs: Any) -> int:
        response = client.post(url, headers=admin, **kwargs)
        assert response.status_code == 201, (url, response.get_json())
        return int(response.get_json()["id"])

    relation_id = post("/api/v1/relations", json={"name": "Hidden Relation"})
    linked = {"user_ids": [insider.id], "group_ids": []}
    assert client.put(f"/api/v1/relations/{relation_id}/linked", json=linked, headers=admin).status_code == 200
    contact_id = post(f"/api/v1/relations/{relation_id}/contacts", json={"name": "Hidden Contact"})
    project_id = post("/api/v1/projects", json={"relation_id": relation_id, "name": "Hidden Project"})
    assert client.put(f"/api/v1/projects/{project_id}/linked", json=linked, headers=admin).status_code == 200
    activity_id = post(
        f"/api/v1/projects/{project_id}/activities", json={"title": "Hidden to-do", "assigned_user_id": insider.id}
    )
    document_id = post(
        f"/api/v1/projects/{project_id}/documents",
        data={"file": (io.BytesIO(b"secret"), "secret.txt")},
        content_type="multipart/form-data",
    )
    ids = {
        "relation": relation_id,
        "contact": contact_id,
        "project": project_id,
        "activity": activity_id,
        "document": document_id,
    }
    return World(admin, token_for(insider), outsider, ids)


def _requests(ids: dict[str, int]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every API call that names the hidden relation or project or something inside them, with a valid body."""
    r, c, p, a, d = ids["relation"], ids["contact"], ids["project"], ids["activity"], ids["document"]
    upload = {"data": {"file": (io.BytesIO(b"x"), "x.txt")}, "content_type": "multipart/form-data"}
    return [
        ("GET", f"/api/v1/relations/{r}", {}),
        ("PATCH", f"/api/v1/relations/{r}", {"json": {"city": "Changed"}}),
        ("PUT", f"/api/v1/relations/{r}/linked", {"json": {"user_ids": [], "group_ids": []}}),
        ("GET", f"/api/v1/relations/{r}/contacts", {}),
        ("POST", f"/api/v1/relations/{r}/contacts", {"json": {"name": "New"}}),
        ("GET", f"/api/v1/contacts/{c}", {}),
        ("PATCH", f"/api/v1/contacts/{c}", {"json": {"name": "Changed"}}),
        ("GET", f"/api/v1/projects/{p}", {}),
        ("PATCH", f"/api/v1/projects/{p}", {"json": {"name": "Changed"}}),
        ("PUT", f"/api/v1/projects/{p}/notepad", {"json": {"text": "Changed"}}),
        ("PUT", f"/api/v1/projects/{p}/linked", {"json": {"user_ids": [], "group_ids": []}}),
        ("GET", f"/api/v1/projects/{p}/activities", {}),
        ("POST", f"/api/v1/projects/{p}/activities", {"json": {"title": "New"}}),
        ("GET", f"/api/v1/projects/{p}/documents", {}),
        ("POST", f"/api/v1/projects/{p}/documents", upload),
        ("GET", f"/api/v1/projects/{p}/emails", {}),
        ("GET", f"/api/v1/activities/{a}", {}),
        ("PATCH", f"/api/v1/activities/{a}", {"json": {"title": "Changed"}}),
        ("GET", f"/api/v1/documents/{d}", {}),
        ("GET", f"/api/v1/documents/{d}/content", {}),
        # Deletes last: an admin or insider run of this list removes things.
        ("DELETE", f"/api/v1/documents/{d}", {}),
        ("DELETE", f"/api/v1/activities/{a}", {}),
        ("DELETE", f"/api/v1/contacts/{c}", {}),
        ("DELETE", f"/api/v1/projects/{p}", {}),
        ("DELETE", f"/api/v1/relations/{r}", {}),
    ]


def _owner_only(method: str, url: str) -> bool:
    """Calls that, as on the pages, only the relation's owner / project's responsible user or an admin may make."""
    path = url.removeprefix("/api/v1")
    return (method == "DELETE" and path.count("/") == 2 and path.startswith(("/relations/", "/projects/"))) or (
        method == "PUT" and path.startswith(("/relations/", "/projects/")) and path.endswith("/linked")
    )


def test_an_outsider_gets_404_on_every_verb_and_changes_nothing(client: FlaskClient, world: World) -> None:
    for method, url, kwargs in _requests(world.ids):
        response = client.open(url, method=method, headers=world.outsider, **kwargs)
        assert response.status_code == 404, f"{method} {url} gave {response.status_code}"
        assert response.get_json() == NOT_FOUND, f"{method} {url}"  # the same as a missing object
        assert b"Hidden" not in response.data and b"secret" not in response.data

    def names(url: str) -> list[str]:
        return [item.get("name") or item.get("title") for item in client.get(url, headers=world.outsider).json["items"]]

    assert names("/api/v1/relations") == [] and names("/api/v1/projects") == []
    assert names(f"/api/v1/projects?relation_id={world.ids['relation']}") == []
    assert names("/api/v1/activities/mine") == []
    # Nothing the outsider sent changed anything.
    project = client.get(f"/api/v1/projects/{world.ids['project']}", headers=world.admin).get_json()
    assert project["name"] == "Hidden Project" and project["notepad"] == ""
    assert client.get(f"/api/v1/relations/{world.ids['relation']}", headers=world.admin).get_json()["city"] == ""
    assert (
        len(client.get(f"/api/v1/projects/{world.ids['project']}/activities", headers=world.admin).json["items"]) == 1
    )


def test_a_project_cannot_be_put_on_a_relation_you_cannot_see(client: FlaskClient, world: World) -> None:
    refused = client.post(
        "/api/v1/projects", json={"relation_id": world.ids["relation"], "name": "Sneaky"}, headers=world.outsider
    )
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "relation_id"
    rid = client.post("/api/v1/relations", json={"name": "Open relation"}, headers=world.outsider).get_json()["id"]
    pid = client.post("/api/v1/projects", json={"relation_id": rid, "name": "Mine"}, headers=world.outsider).json["id"]
    moved = client.patch(f"/api/v1/projects/{pid}", json={"relation_id": world.ids["relation"]}, headers=world.outsider)
    assert moved.status_code == 400 and moved.get_json()["error"]["field"] == "relation_id"


@pytest.mark.parametrize("who", ["insider", "admin"])
def test_linked_users_and_admins_use_the_hidden_objects(client: FlaskClient, world: World, who: str) -> None:
    headers = getattr(world, who)
    assert [r["name"] for r in client.get("/api/v1/relations", headers=headers).json["items"]] == ["Hidden Relation"]
    assert [p["name"] for p in client.get("/api/v1/projects", headers=headers).json["items"]] == ["Hidden Project"]
    for method, url, kwargs in _requests(world.ids):
        if who == "insider" and _owner_only(method, url):
            continue  # linked, but neither owner nor responsible: see the tests below
        response = client.open(url, method=method, headers=headers, **kwargs)
        assert response.status_code < 300, f"{who}: {method} {url} gave {response.status_code} {response.data[:200]!r}"


def test_deleting_and_relinking_a_relation_is_for_its_owner_or_an_admin(
    client: FlaskClient, world: World, make_user: Callable[..., User], token_for: Callable[[User], Headers]
) -> None:
    rid = world.ids["relation"]
    linked = {"user_ids": [], "group_ids": []}
    # The insider sees the relation but neither owns it nor is an admin: as on the page, 404.
    assert client.get(f"/api/v1/relations/{rid}", headers=world.insider).status_code == 200
    assert client.put(f"/api/v1/relations/{rid}/linked", json=linked, headers=world.insider).status_code == 404
    assert client.delete(f"/api/v1/relations/{rid}", headers=world.insider).status_code == 404
    owner = make_user("Owner")
    own = token_for(owner)
    mine = client.post("/api/v1/relations", json={"name": "Own relation"}, headers=own).get_json()
    assert mine["owner_id"] == owner.id
    assert client.delete(f"/api/v1/relations/{mine['id']}", headers=own).status_code == 204


def test_a_project_is_deleted_by_its_responsible_user_or_an_admin(
    client: FlaskClient, make_user: Callable[..., User], token_for: Callable[[User], Headers]
) -> None:
    creator, colleague = token_for(make_user("Creator")), token_for(make_user("Colleague"))
    rid = client.post("/api/v1/relations", json={"name": "Shared"}, headers=creator).get_json()["id"]
    pid = client.post("/api/v1/projects", json={"relation_id": rid, "name": "Open"}, headers=creator).get_json()["id"]
    assert client.get(f"/api/v1/projects/{pid}", headers=colleague).status_code == 200  # nobody linked: all staff
    assert client.delete(f"/api/v1/projects/{pid}", headers=colleague).status_code == 404
    assert client.delete(f"/api/v1/projects/{pid}", headers=creator).status_code == 204


def test_staff_cannot_write_choices_or_labels(
    client: FlaskClient, make_user: Callable[..., User], token_for: Callable[[User], Headers]
) -> None:
    admin, staff = token_for(make_user(admin=True)), token_for(make_user())
    choice = client.post("/api/v1/choices", json={"field": "type", "name": "Repair"}, headers=admin).get_json()
    writes = [
        ("POST", "/api/v1/choices", {"field": "type", "name": "Z"}),
        ("PATCH", f"/api/v1/choices/{choice['id']}", {"name": "Z"}),
        ("DELETE", f"/api/v1/choices/{choice['id']}", None),
        ("PUT", "/api/v1/field-labels", {"free_text_1": "Z"}),
    ]
    for method, url, body in writes:
        response = client.open(url, method=method, json=body, headers=staff)
        assert response.status_code == 404 and response.get_json() == NOT_FOUND, f"{method} {url}"
    # Reading is for everyone: the project form needs the choices and labels.
    assert [c["name"] for c in client.get("/api/v1/choices?field=type", headers=staff).json["items"]] == ["Repair"]
    assert client.get("/api/v1/field-labels", headers=staff).get_json()["free_text_1"] != "Z"
