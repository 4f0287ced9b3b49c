"""Input the API must refuse with a 400 in its error shape, never a 500 and never by ignoring it.

Each case runs on SQLite and on PostgreSQL: PostgreSQL refuses NUL bytes in text and integers
beyond 64 bits where SQLite stores or compares them, so a gap shows on one database only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from hub.accounts.users import UserInput, create_token, create_user
from hub.db import Database
from tests.conftest import EnglishClient, make_settings

Headers = dict[str, str]
HUGE = "99999999999999999999999"


@pytest.fixture
def api(tmp_path: Path, database_url: str) -> Iterator[tuple[FlaskClient, Headers]]:
    from web import create_app

    database = Database(database_url)
    app = create_app(make_settings(tmp_path / "var", database_url), database=database, TESTING=True)
    app.test_client_class = EnglishClient
    with database.transaction() as s:
        user = create_user(
            s, UserInput(email="strict@staff.example", name="Strict", password="pw-123456789", is_admin=True)
        )
        headers = {"Authorization": "Bearer " + create_token(s, user)}
    yield app.test_client(), headers
    database.dispose()


def _is_error(response: Any, status: int, field: str | None = "") -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert "field" in error
    if field != "":
        assert error["field"] == field, error
    return dict(error)


def test_integers_beyond_64_bits_are_refused(api: tuple[FlaskClient, Headers]) -> None:
    client, h = api
    _is_error(client.get(f"/api/v1/projects/{HUGE}", headers=h), 404, None)
    _is_error(client.delete(f"/api/v1/relations/{HUGE}", headers=h), 404, None)
    _is_error(client.get(f"/api/v1/relations?per_page={HUGE}", headers=h), 400, "per_page")
    _is_error(client.get(f"/api/v1/projects?relation_id={HUGE}", headers=h), 400, "relation_id")
    _is_error(client.get(f"/api/v1/emails?contact_id={HUGE}", headers=h), 400, "contact_id")
    body = f'{{"name": "R", "owner_id": {HUGE}}}'
    _is_error(client.post("/api/v1/relations", data=body, content_type="application/json", headers=h), 400)
    _is_error(client.post("/api/v1/projects", json={"relation_id": 2**63, "name": "P"}, headers=h), 400)


def test_deep_json_nul_bytes_and_lone_surrogates_are_refused(api: tuple[FlaskClient, Headers]) -> None:
    client, h = api
    deep = '{"name": ' + "[" * 1000 + "]" * 1000 + "}"
    _is_error(client.post("/api/v1/relations", data=deep, content_type="application/json", headers=h), 400)
    nested = '{"name": "R", "phones": ' + "[" * 50 + "]" * 50 + "}"
    _is_error(client.post("/api/v1/relations", data=nested, content_type="application/json", headers=h), 400)
    _is_error(client.get("/api/v1/relations?q=%00", headers=h), 400, "q")
    _is_error(client.get("/api/v1/projects?q=a%00b", headers=h), 400, "q")
    _is_error(client.post("/api/v1/relations", json={"name": "a\x00b"}, headers=h), 400, "name")
    surrogate = '{"name": "\\ud800"}'
    _is_error(client.post("/api/v1/relations", data=surrogate, content_type="application/json", headers=h), 400, "name")
    _is_error(client.get("/api/v1/relations", headers={"Authorization": "Bearer a\x00b"}), 401, None)
    assert client.get("/api/v1/relations", headers=h).get_json()["items"] == []  # nothing was stored


def test_null_for_a_string_and_wrong_types_are_refused(api: tuple[FlaskClient, Headers]) -> None:
    client, h = api
    _is_error(client.post("/api/v1/relations", json={"name": None}, headers=h), 400, "name")
    rid = client.post("/api/v1/relations", json={"name": "R"}, headers=h).get_json()["id"]
    _is_error(client.patch(f"/api/v1/relations/{rid}", json={"city": None}, headers=h), 400, "city")
    _is_error(client.post("/api/v1/projects", json={"relation_id": str(rid), "name": "P"}, headers=h), 400)
    _is_error(client.post("/api/v1/relations", data="[1]", content_type="application/json", headers=h), 400, None)
    _is_error(client.post("/api/v1/relations", data="name=R", content_type="text/plain", headers=h), 400, None)


def test_unknown_parameters_and_fields_are_named(api: tuple[FlaskClient, Headers]) -> None:
    client, h = api
    _is_error(client.get("/api/v1/projects?bogus=2", headers=h), 400, "bogus")
    _is_error(client.get("/api/v1/emails?projectid=1", headers=h), 400, "projectid")
    _is_error(client.get("/api/v1/relations?sort=bogus", headers=h), 400, "sort")
    _is_error(client.get("/api/v1/projects?page=0", headers=h), 400, "page")
    _is_error(client.post("/api/v1/relations", json={"name": "R", "colour": "red"}, headers=h), 400, "colour")
    _is_error(client.get("/api/v1/projects?status=No+such+status", headers=h), 400, "status")
    # The filters integrators asked for exist (these answer, where they used to be ignored).
    for query in (
        "status=2",
        "type=1",
        "chance=1",
        "responsible_user_id=1",
        "open=1",
        "updated_since=2026-01-01T00:00:00Z",
    ):
        assert client.get(f"/api/v1/projects?{query}", headers=h).status_code == 200, query
    for query in ("relation_id=1", "project_id=1", "contact_id=1", "mailbox_id=1", "sent_since=2026-01-01T00:00:00Z"):
        assert client.get(f"/api/v1/emails?{query}", headers=h).status_code == 200, query
    for query in ("status=lead", "owner_id=1", "city=Delft", "updated_since=2026-01-01T00:00:00Z"):
        assert client.get(f"/api/v1/relations?{query}", headers=h).status_code == 200, query


def test_405_names_the_allowed_methods(api: tuple[FlaskClient, Headers]) -> None:
    client, h = api
    response = client.put("/api/v1/relations", json={}, headers=h)
    _is_error(response, 405, None)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_every_list_pages_by_cursor_past_the_first_page(api: tuple[FlaskClient, Headers], database_url: str) -> None:
    client, h = api
    database = Database(database_url)
    with database.transaction() as s:
        for n in range(4):
            create_user(s, UserInput(email=f"u{n}@staff.example", name=f"User {n}", password="pw-123456789"))
    database.dispose()
    for n in range(5):
        rid = client.post("/api/v1/relations", json={"name": f"Rel {n}", "city": "Delft"}, headers=h).get_json()["id"]
        value = None if n == 2 else str(n * 10)  # a NULL in the sort column must not end the walk
        created = client.post(
            "/api/v1/projects", json={"relation_id": rid, "name": f"P {n}", "value": value}, headers=h
        )
        assert created.status_code == 201
    for url, expected in (
        ("/api/v1/users?", 5),
        ("/api/v1/relations?city=Delft&", 5),
        ("/api/v1/relations?sort=-updated&", 5),
        ("/api/v1/projects?sort=value&", 5),
        ("/api/v1/projects?sort=-relation&", 5),
        ("/api/v1/projects?sort=-start&", 5),
    ):
        seen: list[int] = []
        cursor = ""
        while True:
            page = client.get(f"{url}per_page=2&total=1{cursor}", headers=h).get_json()
            assert page["total"] == expected, url
            seen += [item["id"] for item in page["items"]]
            if not page["next"]:
                break
            cursor = f"&cursor={page['next']}"
        assert len(seen) == len(set(seen)) == expected, (url, seen)
    # A cursor belongs to its sort: reusing it with another one is refused, not misread.
    first = client.get("/api/v1/projects?sort=name&per_page=2", headers=h).get_json()
    _is_error(client.get(f"/api/v1/projects?sort=value&cursor={first['next']}", headers=h), 400, "cursor")


def test_users_and_me(api: tuple[FlaskClient, Headers]) -> None:
    client, h = api
    me = client.get("/api/v1/me", headers=h).get_json()
    assert me["name"] == "Strict" and me["email"] == "strict@staff.example" and me["active"] is True
    users = client.get("/api/v1/users", headers=h).get_json()["items"]
    assert users == [{"id": me["id"], "name": "Strict", "email": "strict@staff.example", "active": True}]
    # responsible_user_id resolves to a user of the list.
    rid = client.post("/api/v1/relations", json={"name": "R"}, headers=h).get_json()["id"]
    project = client.post("/api/v1/projects", json={"relation_id": rid, "name": "P"}, headers=h).get_json()
    assert project["responsible_user_id"] in {u["id"] for u in users}


# Moments at the calendar's ends, in a zone UTC cannot reach from there: the year 1 at +14:00 is in
# the year 0 in UTC, the year 9999 at -14:00 in the year 10000. They were 500s (an overflow while
# the statement was made); they are the calendar's edge.
EDGES = {"0001-01-01T00:00:00+14:00": "first", "9999-12-31T23:59:59-14:00": "last", "0001-01-01T00:00:00Z": "first"}
SINCE_FILTERS = [
    ("/api/v1/relations", "updated_since"),
    ("/api/v1/projects", "updated_since"),
    ("/api/v1/emails", "sent_since"),
    ("/api/v1/emails", "sent_before"),
    ("/api/v1/calls", "since"),
    ("/api/v1/appointments", "since"),
]


def test_moments_at_the_ends_of_the_calendar_filter_instead_of_failing(api: tuple[FlaskClient, Headers]) -> None:
    client, headers = api
    relation = client.post("/api/v1/relations", json={"name": "Jansen BV"}, headers=headers)
    assert relation.status_code == 201
    project = client.post(
        "/api/v1/projects", json={"name": "Oven", "relation_id": relation.get_json()["id"]}, headers=headers
    )
    assert project.status_code == 201
    for path, name in SINCE_FILTERS:
        for moment, edge in EDGES.items():
            response = client.get(path, query_string={name: moment}, headers=headers)
            assert response.status_code == 200, (path, name, moment, response.get_data(as_text=True)[:300])
            items = response.get_json()["items"]
            if path in ("/api/v1/relations", "/api/v1/projects"):
                # Everything changed since the first moment there is; nothing after the last.
                assert len(items) == (1 if edge == "first" else 0), (path, moment)
