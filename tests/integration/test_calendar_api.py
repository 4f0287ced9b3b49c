"""/api/v1/appointments on SQLite and PostgreSQL: a list longer than one page walked by cursor,
hidden appointments absent and 404, strict input (unknown keys, wrong types, NUL bytes, absurd
years, times lost or doubled by daylight saving), If-Match on change and delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from hub.accounts.users import UserInput, create_token, create_user
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from tests.conftest import make_settings

Headers = dict[str, str]


def _client(db: Database, tmp_path: Path) -> FlaskClient:
    from web import create_app

    app = create_app(make_settings(tmp_path / "var", db.url), database=db, TESTING=True)
    return app.test_client()


def _all(client: FlaskClient, url: str, headers: Headers) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    cursor = None
    while True:
        page = client.get(url + (f"&cursor={cursor}" if cursor else ""), headers=headers)
        assert page.status_code == 200, page.text
        body = page.get_json()
        items += body["items"]
        pages += 1
        cursor = body["next"]
        if not cursor:
            return items, pages


def test_appointments_api(any_db: Database, tmp_path: Path) -> None:
    with any_db.transaction() as s:
        admin = create_user(s, UserInput(email="admin@staff.example", name="Admin", password="x" * 12, is_admin=True))
        anna = create_user(s, UserInput(email="anna@staff.example", name="Anna", password="x" * 12))
        bert = create_user(s, UserInput(email="bert@staff.example", name="Bert", password="x" * 12))
        relation = save_relation(s, RelationInput(name="Jansen BV"))
        open_project = save_project(
            s, admin, ProjectInput(relation_id=relation.id, name="Open", responsible_user_id=anna.id)
        )
        closed = save_project(
            s, admin, ProjectInput(relation_id=relation.id, name="Closed", responsible_user_id=anna.id)
        )
        set_linked(s, closed, [anna.id], [])
        ids = (open_project.id, closed.id)
        anna_h = {"Authorization": "Bearer " + create_token(s, anna)}
        bert_h = {"Authorization": "Bearer " + create_token(s, bert)}
    open_id, closed_id = ids
    client = _client(any_db, tmp_path)

    for n in range(55):
        made = client.post(
            "/api/v1/appointments",
            headers=anna_h,
            json={
                "title": f"Visit {n:02d}",
                "start": f"2026-12-{1 + n % 28:02d}T{8 + n % 9:02d}:00:00",
                "end": f"2026-12-{1 + n % 28:02d}T{9 + n % 9:02d}:00:00",
                "project_id": open_id,
            },
        )
        assert made.status_code == 201, made.text
    secret = client.post(
        "/api/v1/appointments",
        headers=anna_h,
        json={
            "title": "Secret",
            "start": "2026-12-03T10:00:00+01:00",
            "end": "2026-12-03T11:00:00+01:00",
            "project_id": closed_id,
        },
    )
    assert secret.status_code == 201
    body = secret.get_json()
    assert body["start_at"].startswith("2026-12-03T09:00:00") and body["timezone"] == "Europe/Amsterdam"
    assert [a["email"] for a in body["attendees"]] == ["anna@staff.example"]  # the responsible user
    secret_id = body["id"]

    items, pages = _all(client, "/api/v1/appointments?per_page=20", anna_h)
    assert len(items) == 56 and pages == 3
    starts = [(i["start_at"], i["id"]) for i in items]
    assert starts == sorted(starts)
    bert_items, _pages = _all(client, "/api/v1/appointments?per_page=20", bert_h)
    assert len(bert_items) == 55 and secret_id not in {i["id"] for i in bert_items}
    assert client.get(f"/api/v1/appointments/{secret_id}", headers=bert_h).status_code == 404
    assert client.patch(f"/api/v1/appointments/{secret_id}", headers=bert_h, json={"title": "x"}).status_code == 404
    assert client.delete(f"/api/v1/appointments/{secret_id}", headers=bert_h).status_code == 404
    hidden = client.get(f"/api/v1/appointments?project_id={closed_id}&total=1", headers=bert_h).get_json()
    assert hidden["items"] == [] and hidden["total"] == 0

    bad = [
        {"title": "x", "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00", "colour": "red"},
        {"title": "x", "start": "yes", "end": "2026-12-01T11:00:00"},
        {"title": "a\x00b", "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00"},
        {"title": "x", "start": "99999-12-01T10:00:00", "end": "2026-12-01T11:00:00"},
        {"title": "x", "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00", "project_id": 2**70},
        {"title": "x", "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00", "all_day": "yes"},
        {"title": "x", "start": "2026-12-01T11:00:00", "end": "2026-12-01T10:00:00"},
        {"title": "x", "start": "2026-03-29T02:30:00", "end": "2026-03-29T04:00:00"},
        {"title": "x", "start": "2026-10-25T02:30:00", "end": "2026-10-25T04:00:00"},
        {"title": "x", "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00", "rrule": "FREQ=DAILY"},
        {"title": "x", "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00", "project_id": closed_id},
    ]
    for payload in bad:
        answer = client.post("/api/v1/appointments", headers=bert_h, json=payload)
        assert answer.status_code == 400, (payload, answer.status_code, answer.text)
        assert answer.get_json()["error"]["message"]
    # The October hour that occurs twice is fine with its offset.
    ok = client.post(
        "/api/v1/appointments",
        headers=anna_h,
        json={"title": "Night shift", "start": "2026-10-25T02:30:00+01:00", "end": "2026-10-25T04:00:00+01:00"},
    )
    assert ok.status_code == 201 and ok.get_json()["start_at"].startswith("2026-10-25T01:30:00")

    one = client.get(f"/api/v1/appointments/{secret_id}", headers=anna_h)
    etag = one.headers["ETag"]
    changed = client.patch(
        f"/api/v1/appointments/{secret_id}", headers={**anna_h, "If-Match": etag}, json={"location": "Zeist"}
    )
    assert changed.status_code == 200 and changed.get_json()["location"] == "Zeist"
    assert changed.get_json()["title"] == "Secret" and changed.get_json()["sequence"] == 1
    stale = client.patch(f"/api/v1/appointments/{secret_id}", headers={**anna_h, "If-Match": etag}, json={"title": "y"})
    assert stale.status_code == 412
    assert client.delete(f"/api/v1/appointments/{secret_id}", headers={**anna_h, "If-Match": etag}).status_code == 412
    gone = client.delete(f"/api/v1/appointments/{secret_id}", headers={**anna_h, "If-Match": changed.headers["ETag"]})
    assert gone.status_code == 204
    assert client.get(f"/api/v1/appointments/{secret_id}", headers=anna_h).status_code == 404
