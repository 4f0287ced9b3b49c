"""Telephony through the JSON API, on SQLite and PostgreSQL: the calls list (cursor pages, filters,
the visibility rule), caller ID (hub's own and 3CX's), and the phone systems' webhooks through the
real web app (Twilio's signature computed here as Twilio documents it, the generic HMAC, a bad
signature stores nothing, a retry is stored once)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.accounts.users import UserInput, create_token, create_user
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Call, User
from hub.models.crm import relation_users
from hub.telephony.sources import SourceInput, save_source
from tests.conftest import EnglishClient, make_settings

Headers = dict[str, str]
NOT_FOUND = {"error": {"message": "Not found", "field": None}}
SECRET_KEY = "test-secret-key-0123456789"
PUBLIC_BASE = "https://hub.example.nl"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
VISIBLE_CALLS = 30


@dataclass
class World:
    client: FlaskClient
    db: Database
    admin: Headers
    staff: Headers
    insider: Headers
    reader: Headers  # the staff member's read-only token
    ids: dict[str, int]


def _token(s: Any, user: User, scope: str = "write") -> Headers:
    return {"Authorization": "Bearer " + create_token(s, user, scope=scope)}


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    """An open relation (Acme) with a contact and a project and 30 calls; a hidden relation linked
    to ``insider`` only, with 3 calls; two phone systems (generic JSON and Twilio)."""
    from web import create_app

    database = Database(database_url)
    settings = make_settings(tmp_path / "var", database_url, HUB_BASE_URL=PUBLIC_BASE)
    app = create_app(settings, database=database, TESTING=True)
    app.test_client_class = EnglishClient
    with database.transaction() as s:
        admin = create_user(
            s, UserInput(email="admin@staff.example", name="Admin", password="pw-123456789", is_admin=True)
        )
        staff = create_user(s, UserInput(email="staff@staff.example", name="Staff", password="pw-123456789"))
        insider = create_user(s, UserInput(email="in@staff.example", name="Insider", password="pw-123456789"))
        acme = save_relation(s, RelationInput(name="Acme BV", phones=["020 555 0000"]))
        jan = save_contact(s, acme, ContactInput(name="Jan de Vries", phones=["020 123 4567"], emails=["jan@acme.nl"]))
        project = save_project(s, admin, ProjectInput(relation_id=acme.id, name="Kitchen"))
        hidden = save_relation(s, RelationInput(name="Hidden Zq BV"))
        s.execute(relation_users.insert().values(relation_id=hidden.id, user_id=insider.id))
        secret = save_contact(s, hidden, ContactInput(name="Secret Zq", phones=["030 765 4321"]))
        hidden_project = save_project(s, admin, ProjectInput(relation_id=hidden.id, name="Hidden Zq project"))
        set_linked(s, hidden_project, [insider.id], [])
        pbx = save_source(
            s, SECRET_KEY, SourceInput(name="pbx", format="generic-csv", timezone="UTC", secret="hmac-s3cret")
        )
        cloud = save_source(
            s, SECRET_KEY, SourceInput(name="cloud", format="twilio", timezone="UTC", secret="tw-token")
        )
        for n in range(VISIBLE_CALLS):
            s.add(
                Call(
                    source_id=pbx.id if n % 2 else cloud.id,
                    call_key=f"visible-{n}",
                    direction="inbound" if n % 3 else "outbound",
                    number="0201234567",
                    e164="+31201234567",
                    # Two calls per minute: equal start times page by id.
                    started_at=START + timedelta(minutes=n // 2),
                    outcome="missed" if n % 5 == 0 else "answered",
                    duration=60,
                    billsec=50,
                    user_id=staff.id if n < 10 else None,
                    contact_id=jan.id,
                    relation_id=acme.id,
                    project_id=project.id if n % 4 == 0 else None,
                )
            )
        for n in range(3):
            s.add(
                Call(
                    source_id=pbx.id,
                    call_key=f"hidden-{n}",
                    direction="inbound",
                    number="0307654321",
                    e164="+31307654321",
                    started_at=START + timedelta(hours=1, minutes=n),
                    outcome="answered",
                    contact_id=secret.id,
                    relation_id=hidden.id,
                    project_id=hidden_project.id,
                )
            )
        s.flush()
        hidden_call = s.scalar(select(Call.id).where(Call.call_key == "hidden-0"))
        assert hidden_call is not None
        world = World(
            app.test_client(),
            database,
            _token(s, admin),
            _token(s, staff),
            _token(s, insider),
            _token(s, staff, "read"),
            {
                "acme": acme.id,
                "jan": jan.id,
                "project": project.id,
                "hidden": hidden.id,
                "secret": secret.id,
                "hidden_project": hidden_project.id,
                "hidden_call": hidden_call,
                "staff": staff.id,
            },
        )
    yield world
    database.dispose()


def _all_pages(client: FlaskClient, url: str, headers: Headers) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        sep = "&" if "?" in url else "?"
        page = client.get(url + (f"{sep}cursor={cursor}" if cursor else ""), headers=headers)
        assert page.status_code == 200, page.get_json()
        body = page.get_json()
        items += body["items"]
        pages += 1
        cursor = body["next"]
        assert body["has_next"] == (cursor is not None)
        if cursor is None:
            return items, pages


# --- calls ----------------------------------------------------------------------------------------


def test_calls_page_by_cursor_newest_first_without_hidden_ones(world: World) -> None:
    client = world.client
    items, pages = _all_pages(client, "/api/v1/calls?per_page=7", world.staff)
    assert pages == 5 and len(items) == VISIBLE_CALLS
    assert len({c["id"] for c in items}) == VISIBLE_CALLS
    keys = [(c["started_at"], c["id"]) for c in items]
    assert keys == sorted(keys, reverse=True)
    assert all(c["relation_id"] == world.ids["acme"] for c in items)
    first = client.get("/api/v1/calls?per_page=7&total=1", headers=world.staff).get_json()
    assert first["total"] == VISIBLE_CALLS and len(first["items"]) == 7
    # Admins and the insider see the hidden relation's calls too.
    assert client.get("/api/v1/calls?total=1", headers=world.admin).get_json()["total"] == VISIBLE_CALLS + 3
    assert client.get("/api/v1/calls?total=1", headers=world.insider).get_json()["total"] == VISIBLE_CALLS + 3
    # A read-only token reads.
    assert client.get("/api/v1/calls", headers=world.reader).status_code == 200


def test_one_call_has_every_field_in_utc(world: World) -> None:
    newest = world.client.get("/api/v1/calls?per_page=1", headers=world.staff).get_json()["items"][0]
    call = world.client.get(f"/api/v1/calls/{newest['id']}", headers=world.staff).get_json()
    assert call == newest
    assert call["source"] in {"pbx", "cloud"} and call["call_key"].startswith("visible-")
    assert call["number"] == "0201234567" and call["e164"] == "+31201234567"
    assert call["started_at"] == "2026-03-02T09:14:00Z"
    assert call["duration"] == 60 and call["billable_seconds"] == 50
    assert call["contact_id"] == world.ids["jan"] and call["relation_id"] == world.ids["acme"]
    expected = {
        "id", "source", "call_key", "direction", "number", "e164", "started_at", "answered_at", "ended_at",
        "duration", "billable_seconds", "outcome", "user_id", "extension", "recording_url", "contact_id",
        "relation_id", "project_id",
    }  # fmt: skip
    assert set(call) == expected


def test_filters(world: World) -> None:
    client, h = world.client, world.staff

    def count(query: str) -> int:
        response = client.get(f"/api/v1/calls?total=1&{query}", headers=h)
        assert response.status_code == 200, (query, response.get_json())
        return int(response.get_json()["total"])

    assert count("source=pbx") == 15 and count("source=cloud") == 15 and count("source=nope") == 0
    assert count(f"relation_id={world.ids['acme']}") == VISIBLE_CALLS
    assert count(f"contact_id={world.ids['jan']}") == VISIBLE_CALLS
    assert count(f"project_id={world.ids['project']}") == 8
    assert count(f"user_id={world.ids['staff']}") == 10
    assert count("direction=outbound") == 10 and count("direction=inbound") == 20
    assert count("outcome=missed") == 6 and count("outcome=answered") == 24
    assert count("since=2026-03-02T09:10:00Z") == 10
    assert count("since=2026-03-02T10:10:00%2B01:00") == 10  # the same moment in another zone
    assert count("direction=inbound&outcome=missed&source=pbx") == 2
    # Filtering on something hidden answers like filtering on something that does not exist.
    for query in (
        f"relation_id={world.ids['hidden']}",
        f"contact_id={world.ids['secret']}",
        f"project_id={world.ids['hidden_project']}",
        "relation_id=999999",
    ):
        assert count(query) == 0, query
    for query, field in (("direction=sideways", "direction"), ("outcome=maybe", "outcome"), ("bogus=1", "bogus")):
        response = client.get(f"/api/v1/calls?{query}", headers=h)
        assert response.status_code == 400 and response.get_json()["error"]["field"] == field


def test_a_hidden_call_is_404_like_a_missing_one(world: World) -> None:
    client, hidden = world.client, world.ids["hidden_call"]
    for url in (f"/api/v1/calls/{hidden}", "/api/v1/calls/999999"):
        response = client.get(url, headers=world.staff)
        assert response.status_code == 404 and response.get_json() == NOT_FOUND
    listed = client.get("/api/v1/calls?per_page=100", headers=world.staff)
    assert hidden not in {c["id"] for c in listed.get_json()["items"]} and b"Zq" not in listed.data
    for headers in (world.insider, world.admin):
        assert client.get(f"/api/v1/calls/{hidden}", headers=headers).get_json()["relation_id"] == world.ids["hidden"]
    assert client.get(f"/api/v1/calls/{hidden}").status_code == 401


# --- caller ID ------------------------------------------------------------------------------------


def test_callerid_known_unknown_and_hidden(world: World) -> None:
    client = world.client
    for number in (
        "020 123 4567",
        "+31201234567",
        "0031201234567",
        "%2B31 20 123 4567",
        "+31201234567".replace("+", " "),
    ):
        known = client.get(f"/api/v1/callerid?number={number}", headers=world.reader).get_json()
        assert known["found"] is True, number
        assert known["number"] == "+31201234567"
        assert known["contact"] == {"id": world.ids["jan"], "name": "Jan de Vries"}
        assert known["relation"] == {"id": world.ids["acme"], "name": "Acme BV"}
        assert known["name"] == "Jan de Vries (Acme BV)"
        assert known["url"] == f"http://localhost/relations/{world.ids['acme']}"
    company = client.get("/api/v1/callerid?number=0205550000", headers=world.staff).get_json()
    assert company["found"] and company["contact"] is None and company["name"] == "Acme BV"
    unknown = client.get("/api/v1/callerid?number=0209999999", headers=world.staff).get_json()
    assert unknown == {
        "found": False,
        "number": "+31209999999",
        "name": "",
        "contact": None,
        "relation": None,
        "url": None,
    }
    # The hidden relation's number answers exactly like a number nobody has.
    hidden = client.get("/api/v1/callerid?number=0307654321", headers=world.staff)
    assert hidden.get_json() == {**unknown, "number": "+31307654321"} and b"Zq" not in hidden.data
    assert client.get("/api/v1/callerid?number=0307654321", headers=world.insider).get_json()["found"] is True
    anonymous = client.get("/api/v1/callerid?number=anonymous", headers=world.staff).get_json()
    assert anonymous["found"] is False and anonymous["number"] is None
    assert client.get("/api/v1/callerid", headers=world.staff).status_code == 400
    assert client.get("/api/v1/callerid?number=0201234567").status_code == 401


def test_3cx_lookup_and_template(world: World) -> None:
    client = world.client
    # What the template makes 3CX send: GET …/callerid/3cx?number=[Number] with the bearer token.
    found = client.get("/api/v1/callerid/3cx?number=0031201234567", headers=world.reader)
    assert found.status_code == 200
    assert found.get_json() == {
        "contacts": [
            {
                "id": f"contact-{world.ids['jan']}",
                "firstName": "Jan",
                "lastName": "de Vries",
                "companyName": "Acme BV",
                "email": "jan@acme.nl",
                "phoneBusiness": "+31201234567",
                "url": f"http://localhost/relations/{world.ids['acme']}",
                "entityType": "Contacts",
            }
        ]
    }
    company = client.get("/api/v1/callerid/3cx?number=0205550000", headers=world.reader).get_json()["contacts"][0]
    assert company["id"] == f"relation-{world.ids['acme']}" and company["lastName"] == "Acme BV"
    for number in ("0209999999", "0307654321"):  # unknown, and hidden from this token's user
        assert client.get(f"/api/v1/callerid/3cx?number={number}", headers=world.reader).get_json() == {"contacts": []}
    assert client.get("/api/v1/callerid/3cx?number=0201234567").status_code == 401

    template = _admin_page(world, "/settings/telephony/3cx.xml")
    assert template.status_code == 200 and template.mimetype == "application/xml"
    assert "attachment" in template.headers["Content-Disposition"]
    crm = ET.fromstring(template.data)
    request = crm.find("./Scenarios/Scenario/Request")
    assert request is not None and request.get("Url") == "http://localhost/api/v1/callerid/3cx?number=[Number]"
    assert crm.find("./Number") is not None and crm.find("./Number").get("Prefix") == "Zeros"  # type: ignore[union-attr]
    header = crm.find("./Scenarios/Scenario/Request/Headers/Value")
    assert header is not None and header.get("Key") == "Authorization" and header.text == "Bearer [ApiToken]"
    paths = {v.get("Path") for v in crm.iter("Variable")}
    assert paths == {f"contacts.{k}" for k in found.get_json()["contacts"][0] if k != "entityType"}
    assert {o.get("Type") for o in crm.iter("Output")} >= {"FirstName", "LastName", "CompanyName", "ContactUrl"}


def _admin_page(world: World, url: str) -> Any:
    """``url`` as the admin (logged in), and as a staff member, who gets a 404."""
    from tests.conftest import csrf_token

    responses = []
    for email in ("admin@staff.example", "staff@staff.example"):
        client = world.client.application.test_client()
        token = csrf_token(client.get("/login").text)
        client.post("/login", data={"email": email, "password": "pw-123456789", "csrf_token": token})
        responses.append(client.get(url))
    assert responses[1].status_code == 404
    return responses[0]


# --- webhooks -------------------------------------------------------------------------------------

TWILIO_CALL = "CA00000000000000000000000000000001"


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """As Twilio documents it: the full URL, then each POST parameter sorted by name, name and value
    appended without separators; HMAC-SHA1 keyed by the auth token; base64."""
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _twilio_params(status: str, seq: int, stamp: str, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": "AC1",
        "CallSid": TWILIO_CALL,
        "From": "+31201234567",
        "To": "+31851234567",
        "Direction": "inbound",
        "CallStatus": status,
        "SequenceNumber": str(seq),
        "Timestamp": stamp,
        **extra,
    }


def _post_twilio(world: World, params: dict[str, str], signed_url: str, **headers: str) -> Any:
    signature = twilio_signature("tw-token", signed_url, params)
    return world.client.post(
        "/api/v1/telephony/cloud/events",
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature, **headers},
    )


def _calls(world: World, key: str) -> list[tuple[str, str, int]]:
    with world.db.transaction() as s:
        rows = s.execute(select(Call.call_key, Call.outcome, Call.duration).where(Call.call_key == key))
        return [(r[0], r[1], r[2]) for r in rows]


def _call_count(world: World) -> int:
    with world.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(Call)) or 0)


def test_twilio_callbacks_signed_as_twilio_does_stored_once(world: World) -> None:
    url = "http://localhost/api/v1/telephony/cloud/events"  # as the test client's requests arrive
    completed = _twilio_params("completed", 3, "Mon, 02 Mar 2026 09:32:03 +0000", CallDuration="90")
    ringing = _twilio_params("ringing", 1, "Mon, 02 Mar 2026 09:30:03 +0000")
    answered = _twilio_params("in-progress", 2, "Mon, 02 Mar 2026 09:30:33 +0000")
    first = _post_twilio(world, completed, url)  # out of order: the last event first
    assert first.status_code == 200, first.get_json()
    assert first.get_json() == {"legs": 1, "imported": 1, "known": 0, "rejected": []}
    assert _post_twilio(world, ringing, url).status_code == 200
    assert _post_twilio(world, answered, url).status_code == 200
    once = _calls(world, TWILIO_CALL)
    retry = _post_twilio(world, completed, url)  # Twilio retries
    assert retry.status_code == 200 and retry.get_json()["imported"] == 0
    assert _calls(world, TWILIO_CALL) == once == [(TWILIO_CALL, "answered", 120)]
    stored = world.client.get("/api/v1/calls?source=cloud&per_page=100", headers=world.admin).get_json()["items"]
    assert [c["call_key"] for c in stored].count(TWILIO_CALL) == 1


def test_twilio_behind_a_proxy_is_checked_against_hub_base_url_not_forwarded_headers(world: World) -> None:
    params = _twilio_params("completed", 3, "Mon, 02 Mar 2026 09:32:03 +0000", CallDuration="30")
    public = f"{PUBLIC_BASE}/api/v1/telephony/cloud/events"
    assert _post_twilio(world, params, public).status_code == 200  # HUB_BASE_URL is what Twilio calls
    # X-Forwarded-* are not trusted: anyone could send them.
    forged = {**params, "CallSid": "CA00000000000000000000000000000002"}
    response = _post_twilio(
        world,
        forged,
        "https://evil.example/api/v1/telephony/cloud/events",
        **{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"},
    )
    assert response.status_code == 401 and _calls(world, forged["CallSid"]) == []


def test_a_bad_or_missing_signature_is_401_and_stores_nothing(world: World) -> None:
    before = _call_count(world)
    params = _twilio_params("completed", 3, "Mon, 02 Mar 2026 09:32:03 +0000")
    wrong = world.client.post(
        "/api/v1/telephony/cloud/events",
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={
            "X-Twilio-Signature": twilio_signature(
                "not-the-token", "http://localhost/api/v1/telephony/cloud/events", params
            )
        },
    )
    assert wrong.status_code == 401 and wrong.mimetype == "application/json"
    assert set(wrong.get_json()["error"]) >= {"message", "field"}
    body = json.dumps({"call_id": "g-1", "from": "0201234567", "to": "100", "start": "2026-03-02T09:00:00Z"})
    for headers in (
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"Authorization": "Basic " + base64.b64encode(b"fs:wrong").decode()},
        {"Authorization": world.admin["Authorization"]},  # an API token is not a signature
        {},
    ):
        response = world.client.post(
            "/api/v1/telephony/pbx/events", data=body, content_type="application/json", headers=headers
        )
        assert response.status_code == 401, headers
        assert response.get_json()["error"]["message"]
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert _call_count(world) == before


def test_generic_json_signed_with_hmac_sha256_stored_once(world: World) -> None:
    legs = [
        {
            "call_id": "g-1",
            "direction": "inbound",
            "from": "020 123 4567",
            "to": "100",
            "start": "2026-03-02T10:00:00Z",
            "answer": "2026-03-02T10:00:05Z",
            "end": "2026-03-02T10:02:05Z",
            "duration": 125,
            "billsec": 120,
            "outcome": "answered",
            "extension": "100",
        },
        {"call_id": "g-2", "from": "0209999999", "to": "100", "start": "2026-03-02T10:05:00Z"},
        {"call_id": "", "start": "2026-03-02T10:05:00Z"},
    ]
    body = json.dumps(legs).encode()
    signature = "sha256=" + hmac.new(b"hmac-s3cret", body, hashlib.sha256).hexdigest()

    def post() -> Any:
        return world.client.post(
            "/api/v1/telephony/pbx/events",
            data=body,
            content_type="application/json",
            headers={"X-Hub-Signature-256": signature},
        )

    first = post()
    assert first.status_code == 200, first.get_json()
    result = first.get_json()
    assert result["legs"] == 2 and result["imported"] == 2 and len(result["rejected"]) == 1
    again = post()
    assert again.status_code == 200 and again.get_json()["imported"] == 0
    assert _calls(world, "g-1") == [("g-1", "answered", 125)]
    assert len(_calls(world, "g-2")) == 1
    matched = world.client.get("/api/v1/calls?source=pbx&per_page=100", headers=world.staff).get_json()["items"]
    g1 = next(c for c in matched if c["call_key"] == "g-1")
    assert g1["relation_id"] == world.ids["acme"] and g1["e164"] == "+31201234567"
    assert g1["answered_at"] == "2026-03-02T10:00:05Z" and g1["billable_seconds"] == 120


def test_unknown_source_is_404_and_the_webhook_is_documented_without_a_token(world: World) -> None:
    body = b"{}"
    signature = "sha256=" + hmac.new(b"hmac-s3cret", body, hashlib.sha256).hexdigest()
    for name in ("nope", "bad%20name"):
        response = world.client.post(
            f"/api/v1/telephony/{name}/events",
            data=body,
            content_type="application/json",
            headers={"X-Hub-Signature-256": signature},
        )
        assert response.status_code == 404 and response.get_json() == NOT_FOUND, name
    operation = world.client.get("/api/v1/openapi.json").get_json()["paths"]["/telephony/{source}/events"]["post"]
    assert operation["security"] == [{"twilioSignature": []}, {"hubSignature": []}, {"webhookBasicAuth": []}]
    assert set(operation["requestBody"]["content"]) == {"application/json", "application/x-www-form-urlencoded"}
    assert {"200", "401", "404"} <= set(operation["responses"])


def test_freeswitch_json_cdr_with_basic_auth_through_the_app(world: World) -> None:
    with world.db.transaction() as s:
        save_source(s, SECRET_KEY, SourceInput(name="fs", format="freeswitch-json", timezone="UTC", secret="fs-s3cret"))
    samples = Path(__file__).resolve().parents[1] / "telephony_samples"
    for name in ("freeswitch_b_leg.cdr.json", "freeswitch_a_leg.cdr.json", "freeswitch_a_leg.cdr.json"):
        response = world.client.post(
            "/api/v1/telephony/fs/events",
            data=urlencode({"cdr": (samples / name).read_text()}),
            content_type="application/x-www-form-urlencoded",
            headers={"Authorization": "Basic " + base64.b64encode(b"freeswitch:fs-s3cret").decode()},
        )
        assert response.status_code == 200, response.get_json()
    key = "5b0e9a1c-0000-4000-8000-00000000000a"
    assert [row[:2] for row in _calls(world, key)] == [(key, "answered")]
