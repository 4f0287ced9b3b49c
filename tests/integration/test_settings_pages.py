"""Settings (admins only): dropdown choices, free-field labels, users and groups."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select
from werkzeug.test import TestResponse

from hub.accounts.users import save_group
from hub.crm.choices import choices_for, field_labels
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.models import ChoiceField, User, UserGroup
from tests.conftest import csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]
SETTINGS_PAGES = (
    "/settings/",
    "/settings/choices",
    "/settings/labels",
    "/settings/users",
    "/settings/users/new",
    "/settings/groups",
    "/settings/groups/new",
)


def _post(client: FlaskClient, url: str, **fields: object) -> TestResponse:
    return client.post(url, data={"csrf_token": csrf_token(client.get(url).text), **fields})


def _admin(app: Flask, make_user: Callable[..., User], login: Login) -> tuple[FlaskClient, User]:
    user = make_user("Root", admin=True)
    return login(app.test_client(), user), user


def test_settings_are_404_for_staff_who_are_not_admins(
    app: Flask, make_user: Callable[..., User], login: Login
) -> None:
    staff = login(app.test_client(), make_user())
    for url in SETTINGS_PAGES:
        assert staff.get(url).status_code == 404, url
    assert "/settings/" not in staff.get("/relations").text  # no menu entry either
    admin, _ = _admin(app, make_user, login)
    for url in SETTINGS_PAGES:
        assert admin.get(url).status_code == 200, url
    overview = admin.get("/settings/").text
    for link in ("/settings/choices", "/settings/labels", "/settings/users", "/settings/groups"):
        assert f'href="{link}"' in overview


def test_a_choice_in_use_is_deactivated_not_deleted_and_leaves_new_project_dropdowns(
    app: Flask, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    admin, admin_user = _admin(app, make_user, login)
    assert _post(admin, "/settings/choices", field="status", name="Lost", sort_order="9", active="y").status_code == 302
    assert _post(admin, "/settings/choices", field="status", name="Won", sort_order="1", active="y").status_code == 302
    assert _post(admin, "/settings/choices", field="free_choice_2", name="North", active="y").status_code == 302
    duplicate = _post(admin, "/settings/choices", field="status", name="won", active="y")
    assert duplicate.status_code == 400 and "This dropdown already has a choice with this name." in duplicate.text
    empty = _post(admin, "/settings/choices", field="status", name="", active="y")
    assert empty.status_code == 400 and 'class="error"' in empty.text
    with db.transaction() as s:
        won, lost = choices_for(s, ChoiceField.status)
        relation = save_relation(s, RelationInput(name="R"))
        save_project(s, admin_user, ProjectInput(relation_id=relation.id, name="P", choices={"status": lost.id}))
        lost_id, won_id = lost.id, won.id
    page = admin.get("/settings/choices").text
    assert page.index("Won") < page.index("Lost") and "Free choice 2" in page and "North" in page

    token = csrf_token(page)
    refused = admin.post(f"/settings/choices/{lost_id}/delete", data={"csrf_token": token})
    assert refused.status_code == 302
    assert "This choice is in use by projects; deactivate it instead." in admin.get(refused.headers["Location"]).text
    assert _post(admin, f"/settings/choices/{lost_id}", name="Lost", sort_order="9").status_code == 302
    with db.transaction() as s:
        assert [c.name for c in choices_for(s, ChoiceField.status)] == ["Won"]
        assert [c.name for c in choices_for(s, ChoiceField.status, include_inactive=True)] == ["Won", "Lost"]

    # A choice nobody uses can go.
    assert admin.post(f"/settings/choices/{won_id}/delete", data={"csrf_token": token}).status_code == 302
    with db.transaction() as s:
        assert [c.name for c in choices_for(s, ChoiceField.status, include_inactive=True)] == ["Lost"]


def test_free_field_labels_are_renamed(app: Flask, make_user: Callable[..., User], login: Login, db: Database) -> None:
    admin, _ = _admin(app, make_user, login)
    labels = {f"free_text_{i}": f"Text {i}" for i in range(1, 5)} | {
        f"free_choice_{i}": f"Pick {i}" for i in range(1, 6)
    }
    bad = _post(admin, "/settings/labels", **(labels | {"free_text_2": " "}))
    assert bad.status_code == 400 and "A label cannot be empty." in bad.text and 'value="Text 1"' in bad.text
    with db.transaction() as s:
        assert field_labels(s)["free_text_1"] == "Free text 1"
    saved = _post(admin, "/settings/labels", **(labels | {"free_text_1": "PO number", "free_choice_3": "Region"}))
    assert saved.status_code == 302
    assert 'value="PO number"' in admin.get("/settings/labels").text
    assert "Region" in admin.get("/settings/choices").text  # the dropdown is listed under its new name
    with db.transaction() as s:
        assert field_labels(s)["free_text_1"] == "PO number" and field_labels(s)["free_choice_3"] == "Region"


def test_admin_adds_and_changes_users(app: Flask, make_user: Callable[..., User], login: Login, db: Database) -> None:
    admin, _ = _admin(app, make_user, login)
    short = _post(
        admin, "/settings/users/new", name="New Person", email="new@staff.example", password="short", language=""
    )
    assert short.status_code == 400 and "at least 8 characters" in short.text and 'value="New Person"' in short.text
    created = _post(
        admin,
        "/settings/users/new",
        name="New Person",
        email="new@staff.example",
        password="long enough secret",
        language="nl",
        is_active="y",
    )
    assert created.status_code == 302
    assert "new@staff.example" in admin.get("/settings/users").text
    with db.transaction() as s:
        new = s.scalars(select(User).where(User.email == "new@staff.example")).one()
        old_hash, new_id = new.password_hash, new.id
    # Leaving the password empty keeps it; unticking "active" stops the login.
    changed = _post(
        admin, f"/settings/users/{new_id}", name="Renamed", email="new@staff.example", language="en", is_admin="y"
    )
    assert changed.status_code == 302
    with db.transaction() as s:
        new = s.get_one(User, new_id)
        assert (new.name, new.is_admin, new.is_active, new.password_hash) == ("Renamed", True, False, old_hash)
    inactive = app.test_client()
    attempt = _post(inactive, "/login", email="new@staff.example", password="long enough secret")
    assert attempt.status_code != 302


@contextmanager
def _counting(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_admin_adds_and_changes_groups(app: Flask, make_user: Callable[..., User], login: Login, db: Database) -> None:
    admin, _ = _admin(app, make_user, login)
    anna, bert = make_user("Anna"), make_user("Bert")
    assert _post(admin, "/settings/groups/new", name="", member_ids=[str(anna.id)]).status_code == 400
    assert _post(admin, "/settings/groups/new", name="Sales", member_ids=[str(anna.id)]).status_code == 302
    with db.transaction() as s:
        group_id = s.scalars(select(UserGroup.id)).one()
    clash = _post(admin, "/settings/groups/new", name="Sales")
    assert clash.status_code == 400 and "A group with this name already exists." in clash.text
    edited = _post(admin, f"/settings/groups/{group_id}", name="Sales NL", member_ids=[str(anna.id), str(bert.id)])
    assert edited.status_code == 302
    assert "Anna, Bert" in admin.get("/settings/groups").text

    # The list loads every group's members at once, however many groups there are.
    with _counting(db) as few:
        admin.get("/settings/groups")
    with db.transaction() as s:
        for n in range(10):
            save_group(s, f"Team {n}", [anna.id, bert.id])
    with _counting(db) as many:
        page = admin.get("/settings/groups").text
    assert "Team 9" in page and len(many) == len(few)


def test_an_admin_cannot_lock_themselves_out(
    app: Flask, db: Database, make_user: Callable[..., User], login: Callable[[FlaskClient, User], FlaskClient]
) -> None:
    admin = make_user("Only Admin", admin=True)
    client = login(app.test_client(), admin)
    url = f"/settings/users/{admin.id}"
    response = client.post(
        url,
        data={
            "csrf_token": csrf_token(client.get(url).text),
            "name": "Only Admin",
            "email": admin.email,
            "language": "en",
        },
    )
    assert response.status_code == 400
    assert "own admin rights" in response.text and "deactivate your own account" in response.text
    with db.transaction() as s:
        me = s.get_one(User, admin.id)
        assert me.is_admin and me.is_active
