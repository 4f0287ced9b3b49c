"""/api/v1/target-groups, /api/v1/campaigns and /api/v1/mailings (with the ledger): a mailing made,
scheduled and sent through the API, its recipients paged by cursor with hidden relations left out,
and bad input answered 400 with the reason, never 500."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from hub.accounts.users import create_token
from hub.db import Database
from hub.models import Relation, User
from hub.models.crm import relation_users
from tests.integration.test_campaign_sending import mailing_settings, run_to_end, seed_contacts


def _headers(db: Database, user: User) -> dict[str, str]:
    with db.transaction() as s:
        return {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id))}


def test_a_mailing_through_the_api(
    tmp_path: Path, db: Database, client: FlaskClient, make_user: Callable[..., User], smtp_server: Any
) -> None:
    seed_contacts(db, 60)
    insider, marketer = make_user("Insider"), make_user("Marketer")
    with db.transaction() as s:
        hidden = s.scalar(select(Relation.id).where(Relation.name == "Company r7"))
        s.execute(relation_users.insert().values(relation_id=hidden, user_id=insider.id))
    headers = _headers(db, marketer)

    group = client.post(
        "/api/v1/target-groups",
        json={"name": "Customers", "rules": {"relation_status": ["customer"], "city": "Utrecht"}},
        headers=headers,
    )
    assert group.status_code == 201, group.json
    # The marketer is shown what he may see (Company r7 is hidden from him): 59 of the group's 60.
    assert group.json["count"] == 59 and group.json["with_address"] == 59
    assert all(c["relation"] != "Company r7" for c in group.json["sample"])
    campaign = client.post("/api/v1/campaigns", json={"name": "Autumn", "costs_actual": "300.00"}, headers=headers).json
    mailing = client.post(
        "/api/v1/mailings",
        json={
            "campaign_id": campaign["id"],
            "subject": "Hello {{ contact.first_name }}",
            "from_address": "news@hub.example",
            "text_body": "Dear {{ contact.name }}",
            "target_group_id": group.json["id"],
        },
        headers=headers,
    )
    assert mailing.status_code == 201, mailing.json
    mailing_id = mailing.json["id"]
    assert mailing.json["state"] == "draft"
    scheduled = client.post(f"/api/v1/mailings/{mailing_id}/state", json={"action": "schedule"}, headers=headers)
    assert scheduled.status_code == 200 and scheduled.json["state"] == "scheduled"
    again = client.post(f"/api/v1/mailings/{mailing_id}/state", json={"action": "schedule"}, headers=headers)
    assert again.status_code == 400 and "draft" in again.json["error"]["message"]

    run_to_end(db, mailing_settings(tmp_path, db, smtp_server.url), mailing_id)
    detail = client.get(f"/api/v1/mailings/{mailing_id}", headers=headers).json
    # All 60 were sent; the marketer's results count the 59 he may see (a hidden relation is left out
    # of counts too), the insider, who sees Company r7 as well, gets all 60.
    assert detail["state"] == "sent" and detail["results"]["sent"] == 59 and detail["results"]["total"] == 59
    insider_sees = client.get(f"/api/v1/mailings/{mailing_id}", headers=_headers(db, insider)).json
    assert insider_sees["results"]["sent"] == 60 and insider_sees["results"]["total"] == 60

    seen: list[str] = []
    url = f"/api/v1/mailings/{mailing_id}/recipients?per_page=25"
    while url:
        page = client.get(url, headers=headers)
        assert page.status_code == 200, page.json
        seen += [r["address"] for r in page.json["items"]]
        url = (
            f"/api/v1/mailings/{mailing_id}/recipients?per_page=25&cursor={page.json['next']}"
            if page.json["next"]
            else ""
        )
    assert len(seen) == 59 == len(set(seen)) and "r7@example.test" not in seen
    found = client.get(f"/api/v1/mailings/{mailing_id}/recipients?q=r12%40", headers=headers).json["items"]
    assert [r["address"] for r in found] == ["r12@example.test"]
    assert found[0]["status"] == "sent" and found[0]["message_id"].endswith(".hub@hub.example>")

    summary = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=headers).json
    assert summary["results"]["sent"] == 59 and summary["mailing_ids"] == [mailing_id]
    listed = client.get(f"/api/v1/mailings?campaign_id={campaign['id']}", headers=headers).json
    assert [m["id"] for m in listed["items"]] == [mailing_id]


def test_bad_input_is_a_400_with_the_reason(db: Database, client: FlaskClient, make_user: Callable[..., User]) -> None:
    headers = _headers(db, make_user("Marketer"))
    cases = [
        ("/api/v1/target-groups", {"name": "x", "rules": {"colour": "red"}}),
        ("/api/v1/target-groups", {"name": "x", "rules": {"project_free_text": {"free_text_9": "a"}}}),
        ("/api/v1/target-groups", {"name": "x", "exclude_ids": [99999999999]}),
        ("/api/v1/campaigns", {"name": "x", "budget_planned": "1e999999"}),
        ("/api/v1/campaigns", {"name": "x", "starts_on": "2026-05-01", "ends_on": "2026-04-01"}),
        ("/api/v1/mailings", {"campaign_id": 12345, "subject": "s", "from_address": "a@b.example"}),
    ]
    for url, body in cases:
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == 400, (url, body, response.status_code, response.text)
    campaign = client.post("/api/v1/campaigns", json={"name": "x"}, headers=headers).json
    escape = client.post(
        "/api/v1/mailings",
        json={
            "campaign_id": campaign["id"],
            "subject": "s",
            "from_address": "a@b.example",
            "text_body": "{{ cycler.__init__.__globals__ }}",
        },
        headers=headers,
    )
    assert escape.status_code == 400 and "not allowed" in escape.json["error"]["message"]
    assert client.get("/api/v1/mailings/99999999999", headers=headers).status_code == 404
    assert client.get("/api/v1/target-groups/424242", headers=headers).status_code == 404
