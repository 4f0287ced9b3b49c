"""Who may change who sees what: only a project's responsible user (a relation's owner) and admins
change its linked users and groups, its responsible user (owner), or delete it — in the pages and the
API. A relation's restriction covers its projects, contacts and mail. An activity is only given to
someone who may see its project, and the responsible user is told about open activities of people
who lost access.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, select

from hub.accounts.users import UserInput, create_token, create_user, save_group
from hub.crm.activities import ActivityInput, my_activities, save_activity
from hub.crm.projects import ProjectInput, get_project, list_projects, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, get_contact, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.errors import NotFound, ValidationError
from hub.mail.privacy import email_visible
from hub.models import Email, EmailProject, EmailRelation, Mailbox, MailboxEmail, Project, Relation, User
from tests.conftest import PASSWORD, csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]
ROLES = ("responsible", "linked", "other", "admin")


@dataclass
class World:
    users: dict[str, User]
    project_id: int
    relation_id: int


@pytest.fixture
def world(db: Database, make_user: Callable[..., User]) -> World:
    """A project (responsible: "responsible", linked: "linked") on a relation (owner: "responsible",
    linked: "linked" and "responsible"); "other" is staff who sees neither; "admin" sees everything."""
    users = {role: make_user(role.title(), admin=(role == "admin")) for role in ROLES}
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakker BV", owner_id=users["responsible"].id))
        set_relation_linked(s, relation, [users["linked"].id, users["responsible"].id], [])
        project = save_project(
            s,
            users["responsible"],
            ProjectInput(relation_id=relation.id, name="Roof", responsible_user_id=users["responsible"].id),
        )
        set_linked(s, project, [users["linked"].id], [])
        return World(users, project.id, relation.id)


def _token(db: Database, user: User) -> dict[str, str]:
    with db.transaction() as s:
        return {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id))}


# --- the API, per role ------------------------------------------------------------------------------

# Who may: the responsible user/owner and admins. The linked user sees but may not (404, as for any
# action on something you may not manage); other staff do not even see it (404).
ALLOWED = {"responsible": True, "linked": False, "other": False, "admin": True}


@pytest.mark.parametrize("role", ROLES)
def test_api_project_linked_users_only_by_responsible_or_admin(
    client: FlaskClient, db: Database, world: World, role: str
) -> None:
    headers = _token(db, world.users[role])
    url = f"/api/v1/projects/{world.project_id}/linked"
    response = client.put(url, json={"user_ids": [world.users[role].id], "group_ids": []}, headers=headers)
    assert response.status_code == (200 if ALLOWED[role] else 404), response.get_json()
    with db.transaction() as s:
        linked = [u.id for u in s.get_one(Project, world.project_id).linked_users]
    assert linked == ([world.users[role].id] if ALLOWED[role] else [world.users["linked"].id])


@pytest.mark.parametrize("role", ROLES)
def test_api_responsible_user_changes_only_by_responsible_or_admin(
    client: FlaskClient, db: Database, world: World, role: str
) -> None:
    headers = _token(db, world.users[role])
    url = f"/api/v1/projects/{world.project_id}"
    # Making oneself responsible (the responsible user and the admin hand it to the linked user).
    target = world.users["linked"].id if role in {"responsible", "admin"} else world.users[role].id
    response = client.patch(url, json={"responsible_user_id": target}, headers=headers)
    if ALLOWED[role]:
        assert response.status_code == 200 and response.get_json()["responsible_user_id"] == target
    elif role == "linked":
        assert response.status_code == 400
        assert response.get_json()["error"]["field"] == "responsible_user_id"
        assert "Only the responsible user or an admin" in response.get_json()["error"]["message"]
    else:
        assert response.status_code == 404
    with db.transaction() as s:
        expected = target if ALLOWED[role] else world.users["responsible"].id
        assert s.get_one(Project, world.project_id).responsible_user_id == expected


@pytest.mark.parametrize("role", ROLES)
def test_api_delete_project_only_by_responsible_or_admin(
    client: FlaskClient, db: Database, world: World, role: str
) -> None:
    response = client.delete(f"/api/v1/projects/{world.project_id}", headers=_token(db, world.users[role]))
    assert response.status_code == (204 if ALLOWED[role] else 404)
    with db.transaction() as s:
        assert (s.get(Project, world.project_id) is None) == ALLOWED[role]


@pytest.mark.parametrize("role", ROLES)
def test_api_relation_owner_linked_and_delete_only_by_owner_or_admin(
    client: FlaskClient, db: Database, world: World, role: str
) -> None:
    headers = _token(db, world.users[role])
    rid = world.relation_id
    owner = client.patch(f"/api/v1/relations/{rid}", json={"owner_id": world.users[role].id}, headers=headers)
    if role == "linked":
        assert owner.status_code == 400 and owner.get_json()["error"]["field"] == "owner_id"
    else:
        assert owner.status_code == (200 if ALLOWED[role] else 404)
    linked = client.put(f"/api/v1/relations/{rid}/linked", json={"user_ids": [], "group_ids": []}, headers=headers)
    assert linked.status_code == (200 if ALLOWED[role] else 404)
    with db.transaction() as s:
        relation = s.get_one(Relation, rid)
        assert relation.owner_id == (world.users[role].id if ALLOWED[role] else world.users["responsible"].id)
        assert (relation.linked_users == []) == ALLOWED[role]
        s.execute(delete(Project))  # a relation with projects is not deleted by anyone
    deleted = client.delete(f"/api/v1/relations/{rid}", headers=headers)
    assert deleted.status_code == (204 if ALLOWED[role] else 404)


def test_a_linked_user_cannot_make_himself_owner_and_lock_the_owner_out(
    client: FlaskClient, db: Database, world: World
) -> None:
    linked = _token(db, world.users["linked"])
    rid = world.relation_id
    assert (
        client.patch(
            f"/api/v1/relations/{rid}", json={"owner_id": world.users["linked"].id}, headers=linked
        ).status_code
        == 400
    )
    body = {"user_ids": [world.users["linked"].id], "group_ids": []}
    assert client.put(f"/api/v1/relations/{rid}/linked", json=body, headers=linked).status_code == 404
    owner = _token(db, world.users["responsible"])
    assert client.get(f"/api/v1/relations/{rid}", headers=owner).status_code == 200


def test_nobody_responsible_means_admins_only(
    client: FlaskClient, db: Database, make_user: Callable[..., User]
) -> None:
    staff, admin = make_user("Staff"), make_user("Boss", admin=True)
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Open BV"))
        project = save_project(s, staff, ProjectInput(relation_id=relation.id, name="Orphan"))
        ids = (relation.id, project.id)
    staff_h, admin_h = _token(db, staff), _token(db, admin)
    nobody: dict[str, list[int]] = {"user_ids": [], "group_ids": []}
    assert (
        client.patch(f"/api/v1/projects/{ids[1]}", json={"responsible_user_id": staff.id}, headers=staff_h).status_code
        == 400
    )
    assert client.put(f"/api/v1/projects/{ids[1]}/linked", json=nobody, headers=staff_h).status_code == 404
    assert client.patch(f"/api/v1/relations/{ids[0]}", json={"owner_id": staff.id}, headers=staff_h).status_code == 400
    assert (
        client.patch(f"/api/v1/projects/{ids[1]}", json={"responsible_user_id": staff.id}, headers=admin_h).status_code
        == 200
    )
    # Now staff is responsible, so he manages it.
    assert client.put(f"/api/v1/projects/{ids[1]}/linked", json=nobody, headers=staff_h).status_code == 200


# --- the pages, per role -----------------------------------------------------------------------------


def _form(client: FlaskClient, url: str, **fields: object) -> dict[str, object]:
    return {"csrf_token": csrf_token(client.get(url).text), **fields}


@pytest.mark.parametrize("role", ROLES)
def test_pages_linked_users_and_delete_per_role(
    client: FlaskClient, db: Database, world: World, login: Login, role: str
) -> None:
    login(client, world.users[role])
    url = f"/projects/{world.project_id}/users"
    page = client.get(url)
    if role == "other":
        assert page.status_code == 404
        token = csrf_token(client.get("/profile").text)
        assert client.post(url, data={"csrf_token": token, "user_ids": [world.users[role].id]}).status_code == 404
        return
    assert page.status_code == 200
    assert ("Only the responsible user and admins can change who sees this project." in page.text) != ALLOWED[role]
    token = csrf_token(page.text)
    changed = client.post(
        url, data={"csrf_token": token, "user_ids": [world.users["linked"].id, world.users["admin"].id]}
    )
    assert changed.status_code == (302 if ALLOWED[role] else 404)
    deleted = client.post(f"/projects/{world.project_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == (302 if ALLOWED[role] else 404)
    with db.transaction() as s:
        assert (s.get(Project, world.project_id) is None) == ALLOWED[role]


@pytest.mark.parametrize("role", ["responsible", "linked", "admin"])
def test_pages_responsible_user_and_owner_per_role(
    client: FlaskClient, db: Database, world: World, login: Login, role: str
) -> None:
    me = world.users[role]
    login(client, me)
    url = f"/projects/{world.project_id}/edit"
    target = world.users["linked"].id if role != "linked" else me.id
    fields = {"name": "Roof", "relation_id": world.relation_id, "relation_name": "Bakker BV", "currency": "EUR"}
    response = client.post(url, data=_form(client, url, responsible_user_id=target, **fields))
    if ALLOWED[role]:
        assert response.status_code == 302
    else:
        assert response.status_code == 400
        assert "Only the responsible user or an admin can change who is responsible." in response.text
        assert 'value="Roof"' in response.text  # the input is kept
    rurl = f"/relations/{world.relation_id}/edit"
    rfields = {"name": "Bakker BV", "kind": "company", "status": "lead", "country": "NL"}
    linked = client.post(f"/relations/{world.relation_id}/users", data=_form(client, rurl, user_ids=[me.id]))
    assert linked.status_code == (302 if ALLOWED[role] else 404)
    owner = client.post(rurl, data=_form(client, rurl, owner_id=target, **rfields))
    if ALLOWED[role]:
        assert owner.status_code == 302
    else:
        assert (
            owner.status_code == 400 and "Only the owner or an admin can change who owns this relation." in owner.text
        )
    with db.transaction() as s:
        assert s.get_one(Project, world.project_id).responsible_user_id == (
            target if ALLOWED[role] else world.users["responsible"].id
        )


def test_linked_users_tab_says_a_group_is_linked(
    client: FlaskClient, db: Database, make_user: Callable[..., User], login: Login
) -> None:
    staff, member = make_user("Staff"), make_user("Member")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Group BV"))
        project = save_project(
            s, staff, ProjectInput(relation_id=relation.id, name="Groups", responsible_user_id=staff.id)
        )
        set_linked(s, project, [], [save_group(s, "Sales", [member.id]).id])
        project_id = project.id
    login(client, staff)
    page = client.get(f"/projects/{project_id}/users").text
    assert "Nobody linked" not in page
    assert "Only the linked users and groups, the responsible user and admins can see this project." in page
    assert "Group Sales" in page


# --- the restricted relation's cascade (services on SQLite and PostgreSQL) ------------------------------


def _user_in(database: Database, name: str) -> User:
    with database.transaction() as s:
        return create_user(s, UserInput(email=f"{name}@cascade.example", name=name, password=PASSWORD))


def _shared_mail(s: object, owner_id: int, relation_id: int, project_id: int) -> int:
    """An e-mail in a personal mailbox that shares with colleagues, on the relation and the project."""
    from sqlalchemy.orm import Session

    assert isinstance(s, Session)
    box = Mailbox(
        owner_id=owner_id,
        name="insider",
        host="imap.example",
        port=993,
        security="ssl",
        username="i",
        password_encrypted="x",
        sharing="colleagues",
    )
    email = Email(message_key="<restricted@test>", subject="Restricted offer", raw_sha256="0" * 64)
    s.add_all([box, email])
    s.flush()
    s.add_all(
        [
            MailboxEmail(mailbox_id=box.id, email_id=email.id),
            EmailProject(email_id=email.id, project_id=project_id, how="manual"),
            EmailRelation(email_id=email.id, relation_id=relation_id),
        ]
    )
    s.flush()
    return email.id


def test_a_restricted_relations_projects_contacts_and_mail_are_hidden(any_db: Database) -> None:
    insider, outsider, responsible = (_user_in(any_db, n) for n in ("insider", "outsider", "resp"))
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Secret BV"))
        contact = save_contact(s, relation, ContactInput(name="Secret Contact"))
        # Nobody linked to the project itself; its responsible user is not linked to the relation.
        project = save_project(
            s, insider, ProjectInput(relation_id=relation.id, name="Secret Project", responsible_user_id=responsible.id)
        )
        set_relation_linked(s, relation, [insider.id], [])
        email_id = _shared_mail(s, insider.id, relation.id, project.id)
        ids = (relation.id, contact.id, project.id)
    with any_db.transaction() as s:
        for viewer, sees in ((insider, True), (outsider, False), (responsible, False)):
            viewer = s.get_one(User, viewer.id)
            page, _sort = list_projects(s, viewer)
            assert ("Secret Project" in [p.name for p in page.items]) == sees
            search, _sort = list_projects(s, viewer, search="Secret")
            assert bool(search.items) == sees
            for getter, object_id in ((get_project, ids[2]), (get_contact, ids[1])):
                if sees:
                    getter(s, viewer, object_id)
                else:
                    with pytest.raises(NotFound):
                        getter(s, viewer, object_id)
            visible_mail = s.scalars(select(Email.id).where(email_visible(viewer))).all()
            assert (email_id in visible_mail) == sees


def test_restricted_relation_cascade_in_pages_and_api(
    client: FlaskClient, db: Database, make_user: Callable[..., User], login: Login
) -> None:
    insider, outsider = make_user("Insider"), make_user("Outsider")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Secret BV"))
        contact = save_contact(s, relation, ContactInput(name="Secret Contact"))
        project = save_project(s, insider, ProjectInput(relation_id=relation.id, name="Secret Project"))
        set_relation_linked(s, relation, [insider.id], [])
        email_id = _shared_mail(s, insider.id, relation.id, project.id)
        pid, cid = project.id, contact.id
    headers = _token(db, outsider)
    for url in (f"/api/v1/projects/{pid}", f"/api/v1/contacts/{cid}", f"/api/v1/emails/{email_id}"):
        assert client.get(url, headers=headers).status_code == 404, url
    for url in ("/api/v1/projects", "/api/v1/projects?q=Secret", "/api/v1/emails"):
        body = client.get(url, headers=headers).get_data(as_text=True)
        assert "Secret Project" not in body and "Restricted offer" not in body, url
    login(client, outsider)
    for url in (f"/projects/{pid}", f"/projects/{pid}/emails", f"/contacts/{cid}/edit"):
        assert client.get(url).status_code == 404, url
    for url in ("/projects", "/projects?q=Secret", "/search?q=Secret"):
        body = client.get(url).text
        assert "Secret Project" not in body and "Secret Contact" not in body and "Secret BV" not in body, url
    inside = _token(db, insider)
    assert client.get(f"/api/v1/projects/{pid}", headers=inside).status_code == 200
    assert client.get(f"/api/v1/emails/{email_id}", headers=inside).status_code == 200


# --- activities and access ----------------------------------------------------------------------------


def test_assigning_an_activity_to_someone_who_cannot_see_the_project_is_refused(
    client: FlaskClient, db: Database, world: World, login: Login
) -> None:
    other = world.users["other"]
    with db.transaction() as s:
        project = s.get_one(Project, world.project_id)
        with pytest.raises(ValidationError) as refused:
            save_activity(
                s, world.users["responsible"], project, ActivityInput(title="Call", assigned_user_id=other.id)
            )
        assert "Other cannot see this project" in refused.value.errors["assigned_user_id"]
    headers = _token(db, world.users["responsible"])
    api = client.post(
        f"/api/v1/projects/{world.project_id}/activities",
        json={"title": "Call", "assigned_user_id": other.id},
        headers=headers,
    )
    assert api.status_code == 400 and api.get_json()["error"]["field"] == "assigned_user_id"
    login(client, world.users["responsible"])
    url = f"/projects/{world.project_id}/activities"
    page = client.post(url, data=_form(client, url, title="Call", assigned_user_id=other.id))
    assert page.status_code == 400 and "Other cannot see this project" in page.text and 'value="Call"' in page.text


def test_the_responsible_user_is_told_about_activities_of_people_who_lost_access(
    client: FlaskClient, db: Database, world: World, login: Login
) -> None:
    linked = world.users["linked"]
    with db.transaction() as s:
        project = s.get_one(Project, world.project_id)
        save_activity(s, linked, project, ActivityInput(title="Send offer", assigned_user_id=linked.id))
    login(client, world.users["responsible"])
    url = f"/projects/{world.project_id}/users"
    response = client.post(url, data=_form(client, url, user_ids=[world.users["admin"].id]), follow_redirects=True)
    assert response.status_code == 200
    assert "Linked can no longer see this project" in response.text and "Send offer" in response.text
    activities = client.get(f"/projects/{world.project_id}/activities").text
    assert "assigned to people who can no longer see this project" in activities and "Send offer" in activities
    with db.transaction() as s:
        assert my_activities(s, s.get_one(User, linked.id)) == []
