"""Activities as staff use them: add on a project, overdue highlighting, mark done, "My activities", edit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.crm.activities import ActivityInput, save_activity
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.models import Activity, Project, User
from tests.conftest import csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]
PAST = (date.today() - timedelta(days=3)).isoformat()
FUTURE = (date.today() + timedelta(days=30)).isoformat()


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    return {"resp": make_user("Rita"), "assignee": make_user("Anouk"), "other": make_user("Otto")}


@pytest.fixture
def project_id(db: Database, people: dict[str, User]) -> int:
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakker BV"))
        resp = s.get_one(User, people["resp"].id)
        project = save_project(s, resp, ProjectInput(relation_id=relation.id, name="Roof", responsible_user_id=resp.id))
        return project.id


def _form(client: FlaskClient, url: str, **fields: object) -> dict[str, object]:
    return {"csrf_token": csrf_token(client.get(url).text), **fields}


def _activity(db: Database, project_id: int, title: str, **fields: object) -> int:
    with db.transaction() as s:
        project = s.get_one(Project, project_id)
        author = project.responsible_user
        assert author is not None
        return save_activity(s, author, project, ActivityInput(title=title, **fields)).id  # type: ignore[arg-type]


def test_add_activity_and_overdue_is_highlighted_for_responsible_and_assignee(
    app: Flask, login: Login, people: dict[str, User], project_id: int, db: Database
) -> None:
    url = f"/projects/{project_id}/activities"
    resp = login(app.test_client(), people["resp"])
    assert "No activities yet." in resp.get(url).text
    added = resp.post(
        url, data=_form(resp, url, title="Send offer", due_date=PAST, assigned_user_id=people["assignee"].id)
    )
    assert added.status_code == 302 and added.headers["Location"] == url
    resp.post(url, data=_form(resp, url, title="Plan visit", due_date=FUTURE, assigned_user_id=people["assignee"].id))

    for who in ("resp", "assignee"):
        page = login(app.test_client(), people[who]).get(url).text
        assert page.count('class="overdue"') == 1, who
        assert "Send offer" in page and "Plan visit" in page and "Anouk" in page
    # Someone else sees the list but it is not their to-do to chase.
    assert 'class="overdue"' not in login(app.test_client(), people["other"]).get(url).text

    empty = resp.post(url, data=_form(resp, url, title="", due_date=FUTURE))
    assert empty.status_code == 400 and 'value="' + FUTURE + '"' in empty.text
    with db.transaction() as s:
        assert sorted(s.scalars(select(Activity.title))) == ["Plan visit", "Send offer"]


def test_my_activities_lists_open_ones_due_first_and_marks_done(
    client: FlaskClient, login: Login, people: dict[str, User], project_id: int, db: Database
) -> None:
    me = people["assignee"].id
    later = _activity(db, project_id, "Later", due_date=date.today() + timedelta(days=9), assigned_user_id=me)
    late = _activity(db, project_id, "Late", due_date=date.today() - timedelta(days=1), assigned_user_id=me)
    _activity(db, project_id, "Not mine", assigned_user_id=people["other"].id)
    login(client, people["assignee"])

    page = client.get("/activities").text
    assert page.index("Late") < page.index("Later") and "Not mine" not in page
    assert page.count('class="overdue"') == 1 and f'href="/projects/{project_id}/activities"' in page

    token = csrf_token(page)
    response = client.post(f"/activities/{late}/done?next=/activities", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/activities"
    page = client.get("/activities").text
    assert "Later" in page and ">Late<" not in page
    shown = client.get("/activities?done=1").text
    assert ">Late<" in shown and 'class="done"' in shown

    # Marking again makes it open again; a foreign "next" is not followed.
    response = client.post(f"/activities/{late}/done", data={"csrf_token": token, "next": "//evil.example/x"})
    assert response.headers["Location"] == "/activities"
    with db.transaction() as s:
        assert s.get_one(Activity, late).done is False and s.get_one(Activity, later).done is False


def test_edit_an_activity(
    client: FlaskClient, login: Login, people: dict[str, User], project_id: int, db: Database
) -> None:
    activity_id = _activity(db, project_id, "Call back", assigned_user_id=people["resp"].id)
    login(client, people["resp"])
    url = f"/activities/{activity_id}/edit"
    page = client.get(url).text
    assert 'value="Call back"' in page and "Roof" in page
    bad = client.post(url, data=_form(client, url, title="", assigned_user_id=people["resp"].id))
    assert bad.status_code == 400
    response = client.post(
        url,
        data=_form(
            client, url, title="Call back Anna", due_date=FUTURE, assigned_user_id=people["assignee"].id, done="y"
        ),
    )
    assert response.status_code == 302 and response.headers["Location"] == f"/projects/{project_id}/activities"
    with db.transaction() as s:
        activity = s.get_one(Activity, activity_id)
        assert (activity.title, activity.assigned_user_id, activity.done) == (
            "Call back Anna",
            people["assignee"].id,
            True,
        )
        assert activity.done_at is not None


def test_activities_of_a_hidden_project_are_404(
    client: FlaskClient, login: Login, people: dict[str, User], project_id: int, db: Database
) -> None:
    activity_id = _activity(db, project_id, "Secret to-do", assigned_user_id=people["other"].id)
    with db.transaction() as s:
        set_linked(s, s.get_one(Project, project_id), [people["resp"].id], [])
    login(client, people["other"])
    # Assigned to them once, but the project is hidden now: it leaves their list too.
    page = client.get("/activities").text
    assert "Secret to-do" not in page
    token = csrf_token(page)
    assert client.get(f"/activities/{activity_id}/edit").status_code == 404
    assert client.post(f"/activities/{activity_id}/edit", data={"csrf_token": token, "title": "x"}).status_code == 404
    assert client.post(f"/activities/{activity_id}/done", data={"csrf_token": token}).status_code == 404
    with db.transaction() as s:
        activity = s.get_one(Activity, activity_id)
        assert (activity.title, activity.done) == ("Secret to-do", False)
