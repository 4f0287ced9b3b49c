"""A project list filtered on a value few projects have (a status hardly used, the projects of a
colleague who has a handful) among thousands: the same rows, in the same order and pages, as
without the planner's hint, through the pages and the API, on SQLite and PostgreSQL; on SQLite the
list is read through the filter's own index instead of walking every project in the sort's order
(which took 47 ms at 200,000 projects)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert, select, text

from hub.accounts.users import TokenScope, UserInput, create_token, create_user
from hub.config import Settings
from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.projects import NARROW_ROWS, PROJECT_SORTS, narrow_index, project_list_rows
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.models import Project, User
from tests.conftest import PASSWORD

COMMON = NARROW_ROWS + 500  # more than a narrow filter may match
_n = itertools.count(1)


@pytest.fixture
def world(any_db: Database) -> dict[str, Any]:
    with any_db.transaction() as s:
        people = [
            create_user(s, UserInput(email=f"p{next(_n)}@staff.example", name=name, password=PASSWORD, language="en"))
            for name in ("Eva", "Rik")
        ]
        common = save_choice(s, ChoiceInput(field="status", name="Offer sent")).id
        rare = save_choice(s, ChoiceInput(field="status", name="On hold")).id
        relation = save_relation(s, RelationInput(name="Visser BV")).id
        rows = [
            {
                "relation_id": relation,
                "name": f"Project {i:05d}",
                "status_id": common,
                "responsible_user_id": people[0].id,
            }
            for i in range(COMMON)
        ]
        # Seven on hold, among them three of Rik's, spread through the name order.
        for i in (3, 700, 1400, 1401, 2100, 2400, 2499):
            rows[i] = {**rows[i], "status_id": rare}
        for i in (700, 2100, 2499):
            rows[i] = {**rows[i], "responsible_user_id": people[1].id}
        s.execute(insert(Project), rows)
        token = create_token(s, s.get_one(User, people[0].id), scope=TokenScope.read)
    return {"eva": people[0].id, "rik": people[1].id, "common": common, "rare": rare, "token": token}


@pytest.fixture
def site(any_db: Database, settings: Settings) -> Iterator[Flask]:
    from web import create_app

    yield create_app(settings, database=any_db, TESTING=True)


def _api_names(site: Flask, token: str, query: str) -> list[str]:
    client, names, url = site.test_client(), [], f"/api/v1/projects?{query}&per_page=2"
    while url:
        page = client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert page.status_code == 200, page.json
        names += [item["name"] for item in page.json["items"]]
        url = f"/api/v1/projects?{query}&per_page=2&cursor={page.json['next']}" if page.json["next"] else ""
    return names


def test_a_rare_filter_lists_its_projects_in_order_over_pages(
    any_db: Database, site: Flask, world: dict[str, Any]
) -> None:
    on_hold = [
        "Project 00003",
        "Project 00700",
        "Project 01400",
        "Project 01401",
        "Project 02100",
        "Project 02400",
        "Project 02499",
    ]
    assert _api_names(site, world["token"], f"status={world['rare']}&sort=name") == on_hold
    assert _api_names(site, world["token"], f"status={world['rare']}&sort=-name") == on_hold[::-1]
    assert _api_names(site, world["token"], f"responsible_user_id={world['rik']}&sort=name") == [
        "Project 00700",
        "Project 02100",
        "Project 02499",
    ]
    # Two filters, one rare: the other still applies.
    assert _api_names(site, world["token"], f"status={world['rare']}&responsible_user_id={world['eva']}&sort=name") == [
        name for name in on_hold if name not in ("Project 00700", "Project 02100", "Project 02499")
    ]
    # A status no project has: nothing, at once.
    assert _api_names(site, world["token"], "status=999999") == []
    # The common status still pages in order too (its first page by name).
    client = site.test_client()
    first = client.get(
        f"/api/v1/projects?status={world['common']}&sort=name&per_page=3",
        headers={"Authorization": f"Bearer {world['token']}"},
    ).json
    assert [item["name"] for item in first["items"]] == ["Project 00000", "Project 00001", "Project 00002"]


def test_sqlite_reads_a_rare_filter_through_its_index(any_db: Database, world: dict[str, Any]) -> None:
    with any_db.transaction() as s:
        if s.get_bind().dialect.name != "sqlite":
            assert narrow_index(s, {"status_id": world["rare"]}) == ""  # PostgreSQL chooses by itself
            return
        s.execute(text("ANALYZE"))  # averages as a real database has them: a status holds half the projects
        assert narrow_index(s, {"status_id": world["rare"]}) == "status_id"
        assert narrow_index(s, {"status_id": world["common"]}) == ""
        assert narrow_index(s, {"status_id": world["common"], "responsible_user_id": world["rik"]}) == (
            "responsible_user_id"
        )
        user = s.get_one(User, world["eva"])
        plans = {}
        for value in (world["rare"], world["common"]):
            query, _kept = project_list_rows(user, session=s, status_id=value)
            statement = query.order_by(*PROJECT_SORTS["name"].order()).limit(26)
            compiled = statement.compile(s.get_bind(), compile_kwargs={"literal_binds": True})
            plans[value] = " ".join(row[-1] for row in s.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
        assert "ix_project_status_id" in plans[world["rare"]], plans[world["rare"]]
        assert "ix_project_status_id" not in plans[world["common"]], plans[world["common"]]


def test_the_list_page_shows_a_rare_filter_s_projects(site: Flask, world: dict[str, Any], any_db: Database) -> None:
    client = site.test_client()
    with any_db.transaction() as s:
        email = s.scalar(select(User.email).where(User.id == world["eva"]))
    page = client.get("/login")
    from tests.conftest import csrf_token

    client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(page.text)})
    shown = client.get(f"/projects?status={world['rare']}&sort=name")
    assert shown.status_code == 200
    assert shown.text.count("Project 0") == 7 and "Project 00000" not in shown.text
