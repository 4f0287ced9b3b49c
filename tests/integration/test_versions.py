"""No lost edits: projects, relations, contacts, activities and the notepad carry a version; a save
based on an older one is refused with both versions shown (pages) or 412 (API, If-Match), on SQLite
and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.accounts.users import UserInput, create_token, create_user
from hub.config import Settings
from hub.crm.access import StaleVersion
from hub.crm.activities import ActivityInput, save_activity
from hub.crm.projects import ProjectInput, get_project, save_notepad, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Project, User
from tests.conftest import PASSWORD, EnglishClient, csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]


def _project(db: Database, user: User, **fields: object) -> tuple[int, int]:
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakker BV", owner_id=user.id))
        author = s.get_one(User, user.id)
        project = save_project(
            s,
            author,
            ProjectInput(relation_id=relation.id, name="Roof", responsible_user_id=user.id, **fields),  # type: ignore[arg-type]
        )
        return relation.id, project.id


# --- pages --------------------------------------------------------------------------------------------


def test_two_sessions_on_one_notepad_the_second_save_is_refused_and_can_keep_both(
    app: Flask, db: Database, make_user: Callable[..., User], login: Login
) -> None:
    anna, bert = make_user("Anna"), make_user("Bert")
    _rid, pid = _project(db, anna)
    first, second = login(app.test_client(), anna), login(app.test_client(), bert)
    url = f"/projects/{pid}/notepad"
    first_page, second_page = first.get(url).text, second.get(url).text  # both open the notepad
    assert 'name="version"' in first_page
    version = _hidden(first_page, "version")
    saved = first.post(
        url, data={"csrf_token": csrf_token(first_page), "notepad": "Anna: called, wants offer", "version": version}
    )
    assert saved.status_code == 302
    refused = second.post(
        url, data={"csrf_token": csrf_token(second_page), "notepad": "Bert: sent brochure", "version": version}
    )
    assert refused.status_code == 409
    assert "Anna saved the notepad while you were editing it" in refused.text
    assert "Anna: called, wants offer" in refused.text and "Bert: sent brochure" in refused.text
    assert "Keep both texts" in refused.text and "Replace with my text" in refused.text
    with db.transaction() as s:
        assert s.get_one(Project, pid).notepad == "Anna: called, wants offer"  # nothing was lost
    # The conflict page carries the version now stored: keeping both is based on it.
    both = second.post(
        url,
        data={
            "csrf_token": csrf_token(refused.text),
            "notepad": "Bert: sent brochure",
            "keep": "both",
            "version": _hidden(refused.text, "version"),
        },
    )
    assert both.status_code == 302
    with db.transaction() as s:
        text = s.get_one(Project, pid).notepad
    assert text.index("Anna: called, wants offer") < text.index("Bert: sent brochure")


def _hidden(html: str, name: str) -> str:
    import re

    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', html
    )
    assert match, f"no hidden {name}"
    return match.group(1)


def test_two_sessions_on_one_project_form_the_second_save_shows_both_versions(
    app: Flask, db: Database, make_user: Callable[..., User], login: Login
) -> None:
    anna = make_user("Anna")
    rid, pid = _project(db, anna)
    first, second = login(app.test_client(), anna), login(app.test_client(), anna)
    url = f"/projects/{pid}/edit"
    first_page, second_page = first.get(url).text, second.get(url).text
    common = {"relation_id": rid, "relation_name": "Bakker BV", "currency": "EUR", "responsible_user_id": anna.id}
    version = _hidden(first_page, "version")
    ok = first.post(
        url, data={"csrf_token": csrf_token(first_page), "name": "Roof north", "version": version, **common}
    )
    assert ok.status_code == 302
    stale = {"csrf_token": csrf_token(second_page), "name": "Roof south", "version": version, **common}
    refused = second.post(url, data=stale)
    assert refused.status_code == 409
    assert "Someone else saved this while you were editing it" in refused.text
    assert "Roof north" in refused.text and 'value="Roof south"' in refused.text  # both versions
    with db.transaction() as s:
        assert s.get_one(Project, pid).name == "Roof north"
    # Saving again from the conflict page is a deliberate choice, based on the current version.
    again = second.post(url, data={**stale, "version": _hidden(refused.text, "version")})
    assert again.status_code == 302
    with db.transaction() as s:
        assert s.get_one(Project, pid).name == "Roof south"


def test_relation_contact_and_activity_forms_refuse_a_stale_save(
    app: Flask, db: Database, make_user: Callable[..., User], login: Login
) -> None:
    anna = make_user("Anna")
    rid, pid = _project(db, anna)
    with db.transaction() as s:
        relation = s.get_one(Project, pid).relation
        contact = save_contact(s, relation, ContactInput(name="Piet"))
        activity = save_activity(s, s.get_one(User, anna.id), s.get_one(Project, pid), ActivityInput(title="Call"))
        cid, aid = contact.id, activity.id
    client = login(app.test_client(), anna)
    cases: list[tuple[str, dict[str, object]]] = [
        (
            f"/relations/{rid}/edit",
            {"name": "Bakker BV 2", "kind": "company", "status": "lead", "country": "NL", "owner_id": anna.id},
        ),
        (f"/contacts/{cid}/edit", {"name": "Piet 2"}),
        (f"/activities/{aid}/edit", {"title": "Call 2", "assigned_user_id": anna.id}),
    ]
    for url, fields in cases:
        page = client.get(url).text
        data: dict[str, object] = {"csrf_token": csrf_token(page), "version": _hidden(page, "version"), **fields}
        assert client.post(url, data=data).status_code == 302, url
        refused = client.post(url, data=data)  # the same version again: someone saved after it
        assert refused.status_code == 409, url
        assert "Someone else saved this while you were editing it" in refused.text


# --- API: ETag and If-Match, on SQLite and PostgreSQL ---------------------------------------------------


@pytest.fixture
def api_app(any_db: Database, settings: Settings) -> Iterator[Flask]:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    yield app


def test_api_etag_and_if_match(api_app: Flask, any_db: Database) -> None:
    with any_db.transaction() as s:
        user = create_user(s, UserInput(email="etag@staff.example", name="Etag", password=PASSWORD))
        headers = {"Authorization": "Bearer " + create_token(s, user)}
    client = api_app.test_client()
    rid = client.post("/api/v1/relations", json={"name": "Versioned BV"}, headers=headers).get_json()["id"]
    pid = client.post("/api/v1/projects", json={"relation_id": rid, "name": "V"}, headers=headers).get_json()["id"]
    url = f"/api/v1/projects/{pid}"
    read = client.get(url, headers=headers)
    etag = read.headers["ETag"]
    assert etag == f'"{read.get_json()["version"]}"'
    changed = client.patch(url, json={"name": "V2"}, headers={**headers, "If-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    stale = client.patch(url, json={"name": "V3"}, headers={**headers, "If-Match": etag})
    assert stale.status_code == 412
    assert set(stale.get_json()) == {"error"} and "changed after you read it" in stale.get_json()["error"]["message"]
    assert client.delete(url, headers={**headers, "If-Match": etag}).status_code == 412
    assert client.get(url, headers=headers).get_json()["name"] == "V2"
    # The notepad has its own version (notepad_version).
    notepad = client.get(url, headers=headers).get_json()["notepad_version"]
    put = client.put(f"{url}/notepad", json={"text": "one"}, headers={**headers, "If-Match": f'"{notepad}"'})
    assert put.status_code == 200 and put.headers["ETag"] == f'"{notepad + 1}"'
    again = client.put(f"{url}/notepad", json={"text": "two"}, headers={**headers, "If-Match": f'"{notepad}"'})
    assert again.status_code == 412
    # Relations, contacts and activities alike; without If-Match a change is not checked.
    for item in (
        f"/api/v1/relations/{rid}",
        "/api/v1/contacts/"
        + str(client.post(f"/api/v1/relations/{rid}/contacts", json={"name": "C"}, headers=headers).get_json()["id"]),
        "/api/v1/activities/"
        + str(client.post(f"{url}/activities", json={"title": "T"}, headers=headers).get_json()["id"]),
    ):
        tag = client.get(item, headers=headers).headers["ETag"]
        body = {"title": "T2"} if "activities" in item else {"name": "N2"}
        assert client.patch(item, json=body, headers={**headers, "If-Match": '"999"'}).status_code == 412, item
        assert client.patch(item, json=body, headers={**headers, "If-Match": tag}).status_code == 200, item
        assert client.patch(item, json=body, headers=headers).status_code == 200, item
        assert client.delete(item, headers={**headers, "If-Match": tag}).status_code == 412, item
    current = client.get(url, headers=headers).headers["ETag"]
    assert client.delete(url, headers={**headers, "If-Match": current}).status_code == 204


def test_the_openapi_document_declares_412(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path, method in (
        ("/api/v1/projects/{project_id}", "patch"),
        ("/api/v1/projects/{project_id}", "delete"),
        ("/api/v1/projects/{project_id}/notepad", "put"),
        ("/api/v1/relations/{relation_id}", "patch"),
        ("/api/v1/contacts/{contact_id}", "patch"),
        ("/api/v1/activities/{activity_id}", "patch"),
    ):
        assert "412" in paths[path.removeprefix("/api/v1")][method]["responses"], (path, method)


def test_two_saves_based_on_one_version_cannot_both_pass(any_db: Database) -> None:
    """The conditional UPDATE, not only the check before it: two units of work that both read
    version 1 — the second one's save is refused, also when it started before the first committed."""
    with any_db.transaction() as s:
        user = create_user(s, UserInput(email="race@staff.example", name="Race", password=PASSWORD))
        relation = save_relation(s, RelationInput(name="Race BV"))
        pid = save_project(s, user, ProjectInput(relation_id=relation.id, name="R", responsible_user_id=user.id)).id
    first, second = any_db.sessions(), any_db.sessions()
    try:
        p1, p2 = (
            get_project(first, first.get_one(User, user.id), pid),
            get_project(second, second.get_one(User, user.id), pid),
        )
        assert p1.notepad_version == p2.notepad_version == 1
        save_notepad(first, p1.notepad_updated_by or first.get_one(User, user.id), p1, "first", expected_version=1)
        first.commit()
        with pytest.raises(StaleVersion) as stale:
            save_notepad(second, second.get_one(User, user.id), p2, "second", expected_version=1)
        assert stale.value.current == 2
        second.rollback()
    finally:
        first.close()
        second.close()
    with any_db.transaction() as s:
        assert s.get_one(Project, pid).notepad == "first"
