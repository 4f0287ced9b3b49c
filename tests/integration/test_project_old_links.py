"""An old ?page=N link (and the API's ?page=N) reads the project list from an OFFSET, asking the
visibility rule in the form that skips rows cheaply (hub.crm.access.project_visible_walking). It must
list exactly what the rule lets the reader see, in order, on both databases: projects nobody is
linked to, those linked to the reader or his group or that he is responsible for, and none linked
only to others or on a relation restricted to others — the same rows, page for page, as Next gives."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient

from hub.accounts.users import UserInput, create_token, create_user, save_group
from hub.config import Settings
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import RelationInput, save_relation, set_relation_linked
from hub.db import Database
from tests.conftest import PASSWORD, EnglishClient

Login = Callable[[FlaskClient, object], FlaskClient]


def _names(page: str) -> list[str]:
    return re.findall(r'<td><a href="/projects/\d+">([^<]+)</a>', page)


def test_old_page_links_list_exactly_the_visible_projects(any_db: Database, settings: Settings, login: Login) -> None:
    from web import create_app

    with any_db.transaction() as s:
        reader, other, boss = (
            create_user(s, UserInput(email=f"{n}@staff.example", name=n, password=PASSWORD, is_admin=n == "boss"))
            for n in ("reader", "other", "boss")
        )
        group = save_group(s, "Sales", [reader.id])
        open_relation = save_relation(s, RelationInput(name="Open BV"))
        closed_relation = save_relation(s, RelationInput(name="Closed BV"))
        set_relation_linked(s, closed_relation, [other.id], [])
        visible: set[str] = set()

        def project(
            name: str, relation_id: int, *, users: list[int], groups: list[int], shown: bool, **kw: object
        ) -> None:
            made = save_project(s, boss, ProjectInput(relation_id=relation_id, name=name, **kw))  # type: ignore[arg-type]
            if users or groups:
                set_linked(s, made, users, groups)
            if shown:
                visible.add(name)

        for n in range(70):
            # Interleaved by name, so every page holds some of each kind.
            kind = n % 7
            name = f"P{n:03d}"
            if kind == 0:
                project(name, open_relation.id, users=[other.id], groups=[], shown=False)
            elif kind == 1:
                project(name, open_relation.id, users=[], groups=[group.id], shown=True)
            elif kind == 2:
                project(name, closed_relation.id, users=[], groups=[], shown=False)
            elif kind == 3:
                project(name, open_relation.id, users=[other.id], groups=[], shown=True, responsible_user_id=reader.id)
            elif kind == 4:
                project(name, closed_relation.id, users=[reader.id], groups=[], shown=False)
            else:
                project(name, open_relation.id, users=[], groups=[], shown=True)
        token = create_token(s, reader, "t", scope="read")
    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    client = login(app.test_client(), reader)
    expected = sorted(visible)
    assert len(expected) > 25 * 1  # more than one page

    by_number: list[str] = []
    for number in range(1, 5):
        page = client.get(f"/projects?sort=name&page={number}")
        assert page.status_code == 200
        by_number += _names(page.text)
    assert by_number == expected

    by_next: list[str] = []
    url = "/projects?sort=name"
    while url:
        page = client.get(url).text
        by_next += _names(page)
        found = re.search(r'<a href="([^"]+)" rel="next">', page)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert by_next == expected

    bearer = {"Authorization": f"Bearer {token}"}
    by_api: list[str] = []
    for number in range(1, 8):
        answer = client.get(f"/api/v1/projects?sort=name&per_page=7&page={number}", headers=bearer)
        assert answer.status_code == 200
        by_api += [item["name"] for item in answer.get_json()["items"]]
    assert by_api == expected
