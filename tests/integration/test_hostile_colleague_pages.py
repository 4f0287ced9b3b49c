"""A hostile colleague at the pages: Bob, a member of staff, types what no form offers into URLs,
query strings and forms — ids of twenty digits, NUL bytes, texts of 300,000 characters — and Alice's
restricted relation must answer him exactly like a missing one. Each case here was a 500 (on SQLite,
PostgreSQL or both) or a leak before the fix it names. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.accounts.users import create_token
from hub.calendar.appointments import AppointmentInput, save_appointment
from hub.campaigns.groups import GroupInput, save_group
from hub.config import Settings
from hub.crm.activities import ActivityInput, save_activity
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.models import Activity, Call, Contact, Project, User
from hub.models.campaigns import TargetGroupMember
from hub.telephony.sources import SourceInput, save_source
from tests.conftest import EnglishClient, csrf_token, log_in, new_user

HUGE = "99999999999999999999"  # beyond 64 bits: SQLite cannot bind it, PostgreSQL cannot compare it


@dataclass
class World:
    admin: User
    alice: User  # linked to the hidden relation
    bob: User  # staff, not linked: the hostile colleague
    hidden_relation: int
    hidden_contact: int
    hidden_project: int
    open_relation: int
    open_contact: int
    open_project: int
    bobs_activity: int
    call: int  # an unmatched call: Bob may link it
    static_list: int


@pytest.fixture
def site(any_db: Database, settings: Settings) -> Iterator[Flask]:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    yield app


@pytest.fixture
def world(any_db: Database) -> World:
    admin, alice, bob = new_user(any_db, "Admin", admin=True), new_user(any_db, "Alice"), new_user(any_db, "Bob")
    with any_db.transaction() as s:
        me = s.get_one(User, admin.id)
        hidden = save_relation(s, RelationInput(name="Hidden Relation Zq"))
        set_relation_linked(s, hidden, [alice.id], [])
        hidden_contact = save_contact(s, hidden, ContactInput(name="Hidden Contact", emails=["h@hidden.example"]))
        hidden_project = save_project(s, me, ProjectInput(relation_id=hidden.id, name="Hidden Project Zq"))
        set_linked(s, hidden_project, [alice.id], [])
        save_appointment(
            s,
            s.get_one(User, alice.id),
            AppointmentInput(
                title="Hidden visit",
                start=datetime(2026, 12, 1, 10),
                end=datetime(2026, 12, 1, 11),
                project_id=hidden_project.id,
                staff_ids=[alice.id],
            ),
        )
        open_ = save_relation(s, RelationInput(name="Open BV"))
        open_contact = save_contact(s, open_, ContactInput(name="Olga Open", emails=["olga@open.example"]))
        open_project = save_project(s, me, ProjectInput(relation_id=open_.id, name="Open Project"))
        activity = save_activity(
            s, s.get_one(User, bob.id), open_project, ActivityInput(title="Call Olga", assigned_user_id=bob.id)
        )
        source = save_source(s, "test-secret-key-0123456789", SourceInput(name="pbx", format="asterisk-csv"))
        call = Call(
            source_id=source.id,
            call_key="unmatched-1",
            user_id=bob.id,  # Bob took it: an unmatched call is his to link
            direction="inbound",
            number="0301234567",
            e164="+31301234567",
            started_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
            outcome="answered",
        )
        s.add(call)
        static = save_group(s, GroupInput(name="Fair visitors", static=True, consent_required=False), me)
        s.flush()
        return World(
            admin,
            alice,
            bob,
            hidden.id,
            hidden_contact.id,
            hidden_project.id,
            open_.id,
            open_contact.id,
            open_project.id,
            activity.id,
            call.id,
            static.id,
        )


def _token(client: FlaskClient) -> str:
    return csrf_token(client.get("/profile").text)


# --- ids beyond any row ---------------------------------------------------------------------------------


def test_an_id_of_twenty_digits_in_any_url_is_a_plain_404(any_db: Database, site: Flask, world: World) -> None:
    """Every route of the app, every method, with each argument 99999999999999999999: the answer a
    missing object gives (the pages' 404 page, the API's JSON 404), never a 500. Before the fix some
    sixty page routes handed the number to the database (SQLite: OverflowError; PostgreSQL: integer
    out of range)."""
    client = log_in(site.test_client(), world.bob)
    token = _token(client)
    with any_db.transaction() as s:
        bearer = {"Authorization": "Bearer " + create_token(s, s.get_one(User, world.bob.id))}
    walked = 0
    for rule in site.url_map.iter_rules():
        if not rule.arguments or rule.endpoint == "static":
            continue
        url = re.sub(r"<(?:[a-z]+:)?[a-z_]+>", HUGE, rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if url.startswith("/api/"):
                body = {} if method != "GET" else None
                response = site.test_client().open(url, method=method, headers=bearer, json=body)
            else:
                response = client.open(url, method=method, data={"csrf_token": token} if method != "GET" else None)
            assert response.status_code in {401, 404}, f"{method} {url} gave {response.status_code}"
            if url.startswith("/api/") and response.status_code == 404:
                assert response.get_json() == {"error": {"field": None, "message": "Not found"}}, url
            walked += 1
    assert walked > 100


@pytest.mark.parametrize(
    "path",
    [
        "/appointments/new?project_id={v}",
        "/appointments/new?activity_id={v}",
        "/projects?page={v}",
        "/relations?page={v}",
        "/calls/mine?page={v}",
        "/calls/unmatched?page={v}",
        "/projects/new?relation_id={v}",
    ],
)
def test_ids_and_pages_beyond_any_row_in_the_query_string(
    any_db: Database, site: Flask, world: World, path: str
) -> None:
    """A query-string id beyond any row answers like a missing one; a page beyond any opens like a
    broken link (the first page)."""
    client = log_in(site.test_client(), world.bob)
    for value in (HUGE, "-1", "1e5", "٣", "0x10", "9" * 5000):
        response = client.get(path.format(v=value))
        assert response.status_code in {200, 404}, f"{path} with {value[:30]} gave {response.status_code}"
    missing = client.get(path.format(v=999_999))
    assert client.get(path.format(v=HUGE)).status_code == missing.status_code


def test_the_hidden_project_and_a_huge_id_open_the_appointment_form_alike(
    any_db: Database, site: Flask, world: World
) -> None:
    client = log_in(site.test_client(), world.bob)
    hidden = client.get(f"/appointments/new?project_id={world.hidden_project}")
    missing = client.get("/appointments/new?project_id=999999")
    huge = client.get(f"/appointments/new?project_id={HUGE}")
    assert hidden.status_code == missing.status_code == huge.status_code == 404
    assert hidden.text == missing.text == huge.text
    assert "Hidden" not in hidden.text


@pytest.mark.parametrize("day", ["0001-01-01", "0001-01-07", "9999-12-31", "9999-12-25"])
def test_the_calendar_at_the_ends_of_time(any_db: Database, site: Flask, world: World, day: str) -> None:
    """A week or month around year 1 or 9999 ran off Python's calendar (OverflowError): now the
    404 of a day that does not exist; the years a calendar is used for still open."""
    client = log_in(site.test_client(), world.bob)
    for view in ("week", "month"):
        assert client.get(f"/calendar/{view}?date={day}").status_code == 404
        assert client.get(f"/calendar/{view}?date=2999-12-31").status_code == 200
        assert client.get(f"/calendar/{view}?date=1900-01-01").status_code == 200


# --- NUL bytes and texts no column holds --------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/relations?q={v}", "/relations/lookup?q={v}", "/mail/to-file?q={v}", "/mail/to-file/lookup?q={v}"]
)
def test_search_boxes_take_nul_bytes_and_novels(any_db: Database, site: Flask, world: World, path: str) -> None:
    """PostgreSQL refuses a NUL in a LIKE, SQLite a LIKE pattern over 50,000 bytes: both were 500s.
    The search looks for what it can (NUL dropped, the first 200 characters)."""
    client = log_in(site.test_client(), world.bob)
    for value in ("Open%00BV", "%00", "x" * 300_000, "Hidden Relation Zq"):
        response = client.get(path.format(v=value))
        assert response.status_code == 200, f"{path} with {value[:20]} gave {response.status_code}"
        assert "Hidden Relation Zq" not in response.text.replace('value="Hidden Relation Zq"', "")
    assert "Open BV" in client.get(path.format(v="Open%00 BV")).text or path.startswith("/mail")


def test_the_call_link_search_takes_nul_bytes_and_novels(any_db: Database, site: Flask, world: World) -> None:
    client = log_in(site.test_client(), world.bob)
    for value in ("Ol%00ga", "x" * 300_000):
        assert client.get(f"/calls/{world.call}/link?q={value}").status_code == 200
    assert "Olga Open" in client.get(f"/calls/{world.call}/link?q=Ol%00ga").text


def test_nul_bytes_in_forms_become_spaces_not_a_500(any_db: Database, site: Flask, world: World) -> None:
    """A NUL in a contact's name, an activity's title or a field label was a 500 on PostgreSQL (and
    stored on SQLite); it is saved as a space, as tags always did with control characters."""
    bob = log_in(site.test_client(), world.bob)
    token = _token(bob)
    response = bob.post(
        f"/relations/{world.open_relation}/contacts/new", data={"csrf_token": token, "name": "Peter\x00Pan"}
    )
    assert response.status_code == 302
    response = bob.post(
        f"/projects/{world.open_project}/activities", data={"csrf_token": token, "title": "Ring\x00back"}
    )
    assert response.status_code == 302
    admin = log_in(site.test_client(), world.admin)
    admin_token = _token(admin)
    labels = admin.get("/settings/labels").text
    fields = dict(re.findall(r'name="(free_[a-z]+_\d+)" value="([^"]*)"', labels))
    assert "free_text_1" in fields, "the labels page lists its fields"
    data = {**fields, "free_text_1": "Sales\x00region", "csrf_token": admin_token}
    response = admin.post("/settings/labels", data=data)
    assert response.status_code == 302
    assert "Sales region" in admin.get("/settings/labels").text
    with any_db.transaction() as s:
        assert s.scalar(select(Contact.name).where(Contact.name == "Peter Pan")) == "Peter Pan"
        assert s.scalar(select(Activity.title).where(Activity.title == "Ring back")) == "Ring back"


def test_a_new_contact_from_a_call_with_a_name_no_column_holds(any_db: Database, site: Flask, world: World) -> None:
    """300,000 characters was a 500 on PostgreSQL (value too long); now the link page says why."""
    client = log_in(site.test_client(), world.bob)
    token = _token(client)
    data = {"csrf_token": token, "action": "new", "relation_id": str(world.open_relation), "name": "x" * 300_000}
    response = client.post(f"/calls/{world.call}/link", data=data)
    assert response.status_code == 400
    assert "The name can be at most 200 characters." in response.text
    with any_db.transaction() as s:
        assert s.get_one(Call, world.call).contact_id is None


# --- ids in forms that no picker gave out ----------------------------------------------------------------


@pytest.mark.parametrize("value", [HUGE, "-5", "abc", "1\x00", "0"])
def test_hostile_ids_and_versions_in_forms(any_db: Database, site: Flask, world: World, value: str) -> None:
    """Hidden fields and pickers filled with what no page offers: refused as unknown (stale versions,
    unknown users, contacts and projects), each as a missing one would be, never a 500."""
    client = log_in(site.test_client(), world.bob)
    token = _token(client)
    cases = [
        (f"/activities/{world.bobs_activity}/edit", {"title": "Call Olga", "assigned_user_id": value}),
        (f"/activities/{world.bobs_activity}/edit", {"title": "Call Olga", "version": value}),
        (f"/contacts/{world.open_contact}/edit", {"name": "Olga Open", "version": value}),
        (f"/projects/{world.open_project}/notepad", {"notepad": "n", "version": value}),
        (
            f"/projects/{world.open_project}/edit",
            {"relation_id": str(world.open_relation), "name": "Open Project", "contact_ids": value},
        ),
        ("/projects/new", {"relation_id": value, "name": "P"}),
        ("/projects/new", {"relation_name": "x" * 300_000, "name": "P"}),
        (f"/calls/{world.call}/link", {"contact_id": value}),
        (f"/calls/{world.call}/link", {"action": "new", "relation_id": value, "name": "N"}),
    ]
    for url, data in cases:
        response = client.post(url, data={"csrf_token": token, **data})
        assert response.status_code in {302, 400, 404, 409}, f"{url} {data} gave {response.status_code}"
    with any_db.transaction() as s:
        assert s.scalar(select(Project.id).where(Project.name == "P")) is None
        assert s.get_one(Call, world.call).contact_id is None


def test_linking_a_call_to_a_hidden_contact_or_relation_answers_like_a_missing_one(
    any_db: Database, site: Flask, world: World
) -> None:
    client = log_in(site.test_client(), world.bob)
    token = _token(client)
    answers = []
    for contact_id in (world.hidden_contact, 999_999, HUGE):
        response = client.post(f"/calls/{world.call}/link", data={"csrf_token": token, "contact_id": contact_id})
        answers.append((response.status_code, response.text))
    for relation_id in (world.hidden_relation, 999_999, HUGE):
        data = {"csrf_token": token, "action": "new", "relation_id": relation_id, "name": "New"}
        response = client.post(f"/calls/{world.call}/link", data=data)
        answers.append((response.status_code, response.text))
    assert {status for status, _ in answers} == {404}
    assert len({text for _, text in answers}) == 1
    with any_db.transaction() as s:
        assert s.get_one(Call, world.call).contact_id is None
        assert s.scalar(select(Contact.id).where(Contact.name == "New")) is None


# --- a static list tells nothing of hidden contacts -------------------------------------------------------


def _import(client: FlaskClient, group_id: int, csv: bytes) -> str:
    token = csrf_token(client.get(f"/campaigns/groups/{group_id}").text)
    response = client.post(
        f"/campaigns/groups/{group_id}/import",
        data={"csrf_token": token, "file": (io.BytesIO(csv), "list.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    return response.text


def test_a_static_list_import_treats_a_hidden_contacts_address_as_unknown(
    any_db: Database, site: Flask, world: World
) -> None:
    """Bob uploads a CSV of guessed addresses. Before the fix the hidden contact's address was
    "added" while a made-up one was "no contact has the address": a list of guesses told him who the
    hidden relation's people are. Now both are reported alike and the hidden contact is not added by
    him; Alice, who may see it, adds it; Bob's second upload then still reports it unknown, not
    "already on the list"."""
    csv = b"email\nh@hidden.example\nnobody@missing.example\nolga@open.example\n"
    text = _import(log_in(site.test_client(), world.bob), world.static_list, csv)
    assert "1 contacts added, 0 already on the list, 2 rows with errors." in text
    assert "line 2: no contact has the address h@hidden.example" in text
    assert "line 3: no contact has the address nobody@missing.example" in text
    with any_db.transaction() as s:
        members = set(s.scalars(select(TargetGroupMember.contact_id)))
    assert members == {world.open_contact}

    text = _import(log_in(site.test_client(), world.alice), world.static_list, csv)
    assert "1 contacts added, 1 already on the list, 1 rows with errors." in text
    text = _import(log_in(site.test_client(), world.bob), world.static_list, csv)
    assert "0 contacts added, 1 already on the list, 2 rows with errors." in text
    assert "line 2: no contact has the address h@hidden.example" in text

    # The live count leaves the hidden member out for Bob only (hub.campaigns.groups.preview).
    bobs = log_in(site.test_client(), world.bob).get(f"/campaigns/groups/{world.static_list}/count").get_json()
    alices = log_in(site.test_client(), world.alice).get(f"/campaigns/groups/{world.static_list}/count").get_json()
    assert (bobs["count"], [row["name"] for row in bobs["sample"]]) == (1, ["Olga Open"])
    assert (alices["count"], [row["name"] for row in alices["sample"]]) == (2, ["Hidden Contact", "Olga Open"])


def test_calendar_of_a_colleague_shows_a_hidden_appointment_as_busy_only(
    any_db: Database, site: Flask, world: World
) -> None:
    """The appointment is in Alice's calendar; Bob looking at her week or month sees no title."""
    client = log_in(site.test_client(), world.bob)
    for view in ("week", "month"):
        page = client.get(f"/calendar/{view}?user={world.alice.id}&date=2026-12-01")
        assert page.status_code == 200
        assert "Hidden visit" not in page.text and "Hidden Project" not in page.text
    alices = log_in(site.test_client(), world.alice).get("/calendar/week?date=2026-12-01").text
    assert "Hidden visit" in alices


# --- cursors of another user's list, and forged ones ---------------------------------------------------


def test_a_colleagues_cursor_pages_on_through_what_bob_may_see(any_db: Database, site: Flask, world: World) -> None:
    """Alice's `next` cursor handed to Bob (a shared script, a pasted URL) continues Bob's own list:
    his visible rows after that point, never hers; a forged or foreign cursor is a clear 400."""
    with any_db.transaction() as s:
        for n in range(30):
            hidden = save_relation(s, RelationInput(name=f"Alpha {n:02} secret"))
            set_relation_linked(s, hidden, [world.alice.id], [])
            save_relation(s, RelationInput(name=f"Alpha {n:02} open"))
    with any_db.transaction() as s:
        alice_headers = {"Authorization": "Bearer " + create_token(s, s.get_one(User, world.alice.id))}
        bob_headers = {"Authorization": "Bearer " + create_token(s, s.get_one(User, world.bob.id))}
    api = site.test_client()
    alices = api.get("/api/v1/relations?per_page=10&total=1", headers=alice_headers).get_json()
    assert alices["total"] == 62 and any("secret" in r["name"] for r in alices["items"])
    seen: list[str] = []
    cursor = alices["next"]
    while cursor:
        page = api.get(f"/api/v1/relations?per_page=10&cursor={cursor}", headers=bob_headers)
        assert page.status_code == 200
        seen += [r["name"] for r in page.get_json()["items"]]
        cursor = page.get_json()["next"]
    assert seen and not any("secret" in name or "Hidden" in name for name in seen)
    bobs_all = api.get("/api/v1/relations?per_page=100", headers=bob_headers).get_json()["items"]
    assert set(seen) <= {r["name"] for r in bobs_all}
    for forged in ("eyJ2IjpbMV19", "W10", "x" * 2000, "%00", "eyJzIjoiLWlkIiwidiI6Wzk5OTk5OTk5OTk5OTk5OTk5OTk5XX0"):
        response = api.get(f"/api/v1/relations?cursor={forged}", headers=bob_headers)
        assert response.status_code == 400, forged
        assert response.get_json()["error"]["field"] == "cursor"
