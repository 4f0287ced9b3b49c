"""Outbound webhooks about calls and appointments, to the real HTTP receiver of test_webhooks.py:
``call.created`` from every import path (a file, a PBX webhook) once per call and only for calls of
the last 24 hours (a first import of a year of history tells nothing old), ``call.updated`` when a
number added to a contact links calls (or a user links one by hand), ``appointment.created``,
``.updated`` and ``.deleted`` through the API, the pages and a pull from a real Radicale calendar;
each event body is what the API answers the subscription's owner, and nothing is told about what
he may not see (a call he took filed with a relation hidden from him: told without that link)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy import func, select

from hub.accounts.users import create_token
from hub.calendar.appointments import AppointmentInput, delete_appointment, save_appointment
from hub.calendar.sync import pull_now, push_now
from hub.config import Settings
from hub.crm.projects import ProjectInput, delete_project, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.models import Appointment, Call, Contact, Project, Relation, User
from hub.models.webhooks import WebhookDelivery
from hub.telephony.ingest import import_path
from hub.telephony.links import link_to_contact
from hub.telephony.sources import SourceInput, poll_source, save_source
from hub.telephony.webhooks import generic_signature, ingest_webhook
from tests.caldav_server import RadicaleServer, connect_calendar
from tests.conftest import csrf_token
from tests.integration import test_webhooks
from tests.integration.test_webhooks import KEY, Receiver, _send, _subscribe, _user

receiver = test_webhooks.receiver  # the real HTTP receiver that checks each signature itself

HEADER = "call_id,direction,from,to,start,answer,end,duration,billsec,outcome,extension\n"
NOW = datetime.now(UTC).replace(microsecond=0)


def _source(db: Database, name: str = "pbx", extensions: dict[str, int] | None = None) -> int:
    with db.transaction() as s:
        source = SourceInput(name=name, format="generic-csv", timezone="UTC", secret="s3cret", extensions=extensions)
        return save_source(s, KEY, source).id


def _row(key: str, number: str, started: datetime, extension: str = "100", outcome: str = "answered") -> str:
    end = started + timedelta(minutes=2)
    answer = started.isoformat() if outcome == "answered" else ""
    times = f"{started.isoformat()},{answer},{end.isoformat()}"
    return f"{key},inbound,{number},{extension},{times},120,115,{outcome},{extension}\n"


def _file(tmp_path: Path, rows: list[str], name: str = "calls.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(rows))
    return path


def _deliveries(db: Database, event: str | None = None) -> int:
    with db.transaction() as s:
        query = select(func.count()).select_from(WebhookDelivery)
        if event is not None:
            query = query.where(WebhookDelivery.event == event)
        return int(s.scalar(query) or 0)


def _relation(db: Database, name: str, phone: str, *, owner: User | None = None) -> tuple[int, int]:
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name=name))
        contact = save_contact(s, relation, ContactInput(name=f"{name} contact", phones=[phone]))
        if owner is not None:
            set_relation_linked(s, relation, [owner.id], [])
        return relation.id, contact.id


# --- calls -----------------------------------------------------------------------------------------


def test_an_imported_file_tells_each_recent_call_once_and_no_history(
    any_db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    db = any_db
    admin = _user(db, "Ada", admin=True)
    relation_id, contact_id = _relation(db, "Kees BV", "+31201234567")
    _subscribe(db, receiver, admin, ["call.created"])
    source_id = _source(db, extensions={"100": admin.id})
    # A year of history and a busy last day: 60 calls of today (more than a page of anything),
    # 300 older ones, a bad row among them.
    recent = [_row(f"r-{n}", "+31201234567", NOW - timedelta(minutes=20 * n + 5)) for n in range(60)]
    old = [_row(f"o-{n}", "+31201234567", NOW - timedelta(days=2 + n)) for n in range(300)]
    path = _file(tmp_path, [*old[:150], "broken,inbound,+3120,100,not a date,,,0,0,missed,100\n", *recent, *old[150:]])

    first = import_path(db, source_id, path)
    assert (first.imported, first.rejected) == (360, 1)
    assert _deliveries(db, "call.created") == 60  # only the calls of the last 24 hours
    again = import_path(db, source_id, path)  # the same file again: nothing new, nothing told
    assert (again.imported, again.known) == (0, 360)
    assert _deliveries(db) == 60

    assert _send(db) == 60
    events = receiver.events()
    assert all(r.signature_ok for r in receiver.received)
    assert {e["type"] for e in events} == {"call.created"}
    assert {r.headers["X-Hub-Event"] for r in receiver.received} == {"call.created"}
    with db.transaction() as s:
        keys = dict(s.execute(select(Call.id, Call.call_key)).tuples().all())
    told = sorted(keys[e["data"]["id"]] for e in events)
    assert told == sorted(f"r-{n}" for n in range(60))  # each recent call once, no old one
    data = next(e["data"] for e in events if keys[e["data"]["id"]] == "r-0")
    assert (data["source"], data["call_key"], data["e164"], data["outcome"]) == (
        "pbx",
        "r-0",
        "+31201234567",
        "answered",
    )
    assert (data["relation_id"], data["contact_id"], data["user_id"]) == (relation_id, contact_id, admin.id)
    assert _send(db) == 0


def test_a_phone_system_webhook_tells_its_call_once(any_db: Database, receiver: Receiver) -> None:
    db = any_db
    admin = _user(db, "Ada", admin=True)
    _subscribe(db, receiver, admin, ["call.created", "call.updated"])
    _source(db, "cloudpbx")
    started = NOW - timedelta(minutes=3)
    body = json.dumps(
        [
            {
                "call_id": "c-1",
                "direction": "inbound",
                "from": "0031 20 765 4321",
                "to": "100",
                "start": started.isoformat(),
                "end": (started + timedelta(seconds=30)).isoformat(),
                "outcome": "missed",
            },
            {"call_id": "c-old", "direction": "inbound", "from": "+31207654321", "start": "2025-03-04T10:00:00Z"},
        ]
    ).encode()
    url = "https://hub.example.nl/api/v1/telephony/cloudpbx/events"
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": generic_signature("s3cret", body)}
    assert ingest_webhook(db, "cloudpbx", body, url, headers, secret_key=KEY).imported == 2
    ingest_webhook(db, "cloudpbx", body, url, headers, secret_key=KEY)  # the phone system retries
    assert _send(db) == 1
    (event,) = receiver.events()
    assert event["type"] == "call.created" and event["data"]["call_key"] == "c-1"
    assert event["data"]["started_at"] == started.isoformat().replace("+00:00", "Z")
    assert receiver.received[0].signature_ok


def test_the_drop_folder_tells_each_call_once_as_the_file_grows(
    any_db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    db = any_db
    admin = _user(db, "Ada", admin=True)
    folder = tmp_path / "drop"
    folder.mkdir()
    with db.transaction() as s:
        # The columns named on the source: a file read on from its cursor has no header line to read them from.
        source = SourceInput(
            name="pbx", format="generic-csv", timezone="UTC", drop_folder=str(folder), fields=HEADER.strip()
        )
        source_id = save_source(s, KEY, source).id
    _subscribe(db, receiver, admin, ["call.created"])
    rows = [_row(f"d-{n}", "+31201234567", NOW - timedelta(minutes=n + 1)) for n in range(4)]
    master = folder / "calls.csv"
    master.write_text(HEADER + rows[0] + rows[1] + rows[2][:20])  # the PBX is writing row 3
    assert poll_source(db, source_id) is not None
    assert _deliveries(db) == 2
    with master.open("a") as stream:
        stream.write(rows[2][20:] + rows[3])
    second = poll_source(db, source_id)
    assert second is not None and (second.imported, second.rejected) == (2, 0), second
    assert poll_source(db, source_id) is not None  # nothing new: nothing told
    assert _sent_types(db, receiver) == ["call.created"] * 4
    assert sorted(e["data"]["call_key"] for e in receiver.events()) == ["d-0", "d-1", "d-2", "d-3"]


def test_a_number_added_to_a_contact_tells_the_calls_it_links(
    any_db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    db = any_db
    admin = _user(db, "Ada", admin=True)
    source_id = _source(db)
    rows = [_row(f"r-{n}", "+31301112233", NOW - timedelta(hours=n + 1)) for n in range(3)]
    rows += [_row(f"o-{n}", "+31301112233", NOW - timedelta(days=30 + n)) for n in range(40)]
    rows.append(_row("lone", "+31309998877", NOW - timedelta(days=90)))
    import_path(db, source_id, _file(tmp_path, rows))
    _subscribe(db, receiver, admin, ["call.created", "call.updated"])
    assert _deliveries(db) == 0  # stored before the subscription

    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Late BV"))
        project = save_project(s, admin, ProjectInput(relation_id=relation.id, name="Late deal"))
        contact = save_contact(s, relation, ContactInput(name="Jan", phones=["030 111 2233"]))
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Call).where(Call.relation_id == relation.id)) == 43
    assert _deliveries(db, "call.updated") == 3  # the 40 old ones are linked too, but not told

    # A user links an old unmatched call by hand: told, whenever it was.
    with db.transaction() as s:
        lone = s.scalars(select(Call).where(Call.call_key == "lone")).one()
        link_to_contact(s, lone, s.get_one(Contact, contact.id))
    assert _sent_types(db, receiver) == ["call.updated"] * 4
    linked = {e["data"]["call_key"]: e["data"] for e in receiver.events()}
    assert set(linked) == {"r-0", "r-1", "r-2", "lone"}
    assert all(
        (d["relation_id"], d["contact_id"], d["project_id"]) == (relation.id, contact.id, project.id)
        for d in linked.values()
    )


def _sent_types(db: Database, receiver: Receiver) -> list[str]:
    _send(db)
    assert all(r.signature_ok for r in receiver.received)
    return [e["type"] for e in receiver.events()]


def test_a_colleagues_subscription_hears_only_of_calls_he_may_see(
    any_db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    db = any_db
    admin, sam, olga = _user(db, "Ada", admin=True), _user(db, "Sam"), _user(db, "Olga")
    hidden_id, hidden_contact = _relation(db, "Secret Relation BV", "+31201110000", owner=olga)
    with db.transaction() as s:
        secret_project = save_project(s, admin, ProjectInput(relation_id=hidden_id, name="Secret merger"))
        set_linked(s, secret_project, [olga.id], [])
    open_id, open_contact = _relation(db, "Open BV", "+31202220000")
    _subscribe(db, receiver, sam, ["call.created", "call.updated"])
    source_id = _source(db, extensions={"100": sam.id, "200": olga.id})
    rows = [
        _row("sam-hidden", "+31201110000", NOW - timedelta(hours=1), extension="100"),  # his, on a hidden relation
        _row("olga-hidden", "+31201110000", NOW - timedelta(hours=2), extension="200"),  # neither his nor visible
        _row("olga-open", "+31202220000", NOW - timedelta(hours=3), extension="200"),  # on a relation he sees
        _row("nobody", "+31209990000", NOW - timedelta(hours=4), extension="200"),  # unmatched, not his
    ]
    import_path(db, source_id, _file(tmp_path, rows))
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 2  # no row about the others
    _send(db)
    told = {e["data"]["call_key"]: e["data"] for e in receiver.events()}
    assert set(told) == {"sam-hidden", "olga-open"}
    # His own call is told, without the relation, contact and project he may not see.
    assert (told["sam-hidden"]["relation_id"], told["sam-hidden"]["contact_id"]) == (None, None)
    assert told["sam-hidden"]["project_id"] is None and told["sam-hidden"]["user_id"] == sam.id
    assert (told["olga-open"]["relation_id"], told["olga-open"]["contact_id"]) == (open_id, open_contact)
    bodies = "".join(r.body for r in receiver.received)
    assert f'"relation_id":{hidden_id}' not in bodies and f'"contact_id":{hidden_contact}' not in bodies
    assert f'"project_id":{secret_project.id}' not in bodies


def test_a_call_event_is_what_the_api_answers_its_owner(
    app: Flask, db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    admin, sam = _user(db, "Ada", admin=True), _user(db, "Sam")
    hidden_id, _contact = _relation(db, "Secret Relation BV", "+31201110000", owner=admin)
    _subscribe(db, receiver, sam, ["call.created"])
    source_id = _source(db, extensions={"100": sam.id})
    started = NOW - timedelta(minutes=30)
    import_path(db, source_id, _file(tmp_path, [_row("k-1", "+31201110000", started)]))
    _send(db)
    (event,) = receiver.events()
    with db.transaction() as s:
        token = create_token(s, s.get_one(User, sam.id), "t")
    answer = app.test_client().get(f"/api/v1/calls/{event['data']['id']}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert event["data"] == answer.json
    assert (event["data"]["relation_id"], event["data"]["contact_id"]) == (None, None)  # hidden from Sam
    assert f'"relation_id":{hidden_id}' not in receiver.received[0].body


# --- appointments --------------------------------------------------------------------------------------


def test_appointments_made_changed_and_deleted_through_the_api_are_told(
    app: Flask, db: Database, receiver: Receiver
) -> None:
    admin = _user(db, "Ada", admin=True)
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Visit BV"))
        token = create_token(s, s.get_one(User, admin.id), "t")
    _subscribe(db, receiver, admin, ["appointment.created", "appointment.updated", "appointment.deleted"])
    api = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    made = api.post(
        "/api/v1/appointments",
        json={
            "title": "Visit",
            "start": "2026-12-01T10:00:00+01:00",
            "end": "2026-12-01T11:00:00+01:00",
            "relation_id": relation.id,
            "location": "Utrecht",
        },
        headers=auth,
    )
    assert made.status_code == 201, made.text
    appointment_id = made.json["id"]
    unchanged = api.patch(
        f"/api/v1/appointments/{appointment_id}",
        json={"location": "Utrecht"},
        headers={**auth, "If-Match": made.headers["ETag"]},
    )
    assert unchanged.status_code == 200  # nothing changed: nothing told
    changed = api.patch(
        f"/api/v1/appointments/{appointment_id}",
        json={"location": "Amersfoort"},
        headers={**auth, "If-Match": unchanged.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.text
    shown = api.get(f"/api/v1/appointments/{appointment_id}", headers=auth).json
    gone = api.delete(f"/api/v1/appointments/{appointment_id}", headers={**auth, "If-Match": changed.headers["ETag"]})
    assert gone.status_code == 204
    assert _sent_types(db, receiver) == ["appointment.created", "appointment.updated", "appointment.deleted"]
    created, updated, deleted = (e["data"] for e in receiver.events())
    assert created == made.json  # the body is what the API answers
    assert updated == shown and updated["location"] == "Amersfoort"
    assert deleted["id"] == appointment_id and deleted["title"] == "Visit"  # a deletion tells what it was
    assert len({r.headers["X-Hub-Delivery"] for r in receiver.received}) == 3


def test_appointments_made_on_the_pages_are_told(
    app: Flask,
    db: Database,
    receiver: Receiver,
    make_user: Callable[..., User],
    login: Callable[[FlaskClient, User], FlaskClient],
) -> None:
    admin = make_user("Ada", admin=True)
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Oven BV"))
        project = save_project(s, admin, ProjectInput(relation_id=relation.id, name="New oven"))
    _subscribe(db, receiver, admin, ["appointment.created", "appointment.deleted"])
    client = login(app.test_client(), admin)
    page = client.get(f"/appointments/new?project_id={project.id}")
    saved = client.post(
        f"/appointments/new?project_id={project.id}",
        data={
            "csrf_token": csrf_token(page.text),
            "title": "Oven demo",
            "start_date": "2026-12-07",
            "start_time": "10:00",
            "end_time": "11:30",
            "timezone": "Europe/Amsterdam",
            "repeat": "",
            "interval": "1",
            "status": "planned",
        },
    )
    assert saved.status_code == 302, saved.text
    appointment_id = int(saved.headers["Location"].rsplit("/", 1)[1])
    shown = client.get(f"/appointments/{appointment_id}")
    deleted = client.post(f"/appointments/{appointment_id}/delete", data={"csrf_token": csrf_token(shown.text)})
    assert deleted.status_code == 302
    assert _sent_types(db, receiver) == ["appointment.created", "appointment.deleted"]
    created = receiver.events()[0]["data"]
    assert (created["id"], created["title"], created["project_id"]) == (appointment_id, "Oven demo", project.id)
    assert created["start_at"] == "2026-12-07T09:00:00Z"


def test_a_change_pulled_from_the_calendar_is_told(
    db: Database,
    settings: Settings,
    caldav_server: RadicaleServer,
    receiver: Receiver,
    make_user: Callable[..., User],
) -> None:
    anna = make_user("Anna", admin=True)
    _account_id, calendar_url = connect_calendar(db, settings.secret_key, caldav_server, anna)
    with db.transaction() as s:
        data = AppointmentInput(title="Visit", start=datetime(2026, 12, 1, 10), end=datetime(2026, 12, 1, 11))
        appointment_id = save_appointment(s, s.get_one(User, anna.id), data).id
    _subscribe(db, receiver, anna, ["appointment.created", "appointment.updated", "appointment.deleted"])
    hosts = settings.mail_allowed_hosts
    push_now(db, secret_key=settings.secret_key, allowed_hosts=hosts)
    assert pull_now(db, secret_key=settings.secret_key, allowed_hosts=hosts).pulled == 0
    assert _deliveries(db) == 0  # hub's own write coming back is no change

    login = calendar_url.rstrip("/").split("/")[-2]
    with caldav_server.client(login) as client:
        (event,) = client.calendar(url=calendar_url).events()
        cal = Calendar.from_ical(event.data)
        master = next(iter(cal.walk("VEVENT")))
        for name, value in (("location", "Amersfoort"), ("last-modified", datetime.now(UTC) + timedelta(seconds=5))):
            master.pop(name, None)
            master.add(name, value)
        event.data = cal.to_ical().decode()
        event.save()
    assert pull_now(db, secret_key=settings.secret_key, allowed_hosts=hosts).pulled == 1
    # Deleted in the calendar: hub cancels it (the others attending still see it): a change.
    with caldav_server.client(login) as client:
        (event,) = client.calendar(url=calendar_url).events()
        event.delete()
    assert pull_now(db, secret_key=settings.secret_key, allowed_hosts=hosts).pulled == 1
    assert _sent_types(db, receiver) == ["appointment.updated", "appointment.updated"]
    moved, cancelled = (e["data"] for e in receiver.events())
    assert (moved["id"], moved["location"], moved["status"]) == (appointment_id, "Amersfoort", "planned")
    assert (cancelled["status"], cancelled["version"]) == ("cancelled", 3)


def test_a_colleagues_subscription_hears_only_of_appointments_he_may_see(any_db: Database, receiver: Receiver) -> None:
    db = any_db
    admin, sam, olga = _user(db, "Ada", admin=True), _user(db, "Sam"), _user(db, "Olga")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Open BV"))
        secret = save_project(s, admin, ProjectInput(relation_id=relation.id, name="Secret merger"))
        set_linked(s, secret, [olga.id], [])
        open_project = save_project(s, admin, ProjectInput(relation_id=relation.id, name="Open project"))
    _subscribe(db, receiver, sam, ["appointment.created", "appointment.updated", "appointment.deleted"])

    def make(title: str, project_id: int) -> int:
        with db.transaction() as s:
            data = AppointmentInput(
                title=title,
                start=datetime(2026, 12, 1, 10),
                end=datetime(2026, 12, 1, 11),
                project_id=project_id,
                staff_ids=[admin.id],
            )
            return save_appointment(s, s.get_one(User, admin.id), data).id

    hidden_id = make("Secret takeover talk", secret.id)
    open_id = make("Open talk", open_project.id)
    with db.transaction() as s:
        me = s.get_one(User, admin.id)
        for appointment_id in (hidden_id, open_id):
            a = s.get_one(Appointment, appointment_id)
            save_appointment(
                s,
                me,
                AppointmentInput(
                    title=a.title + " (moved)",
                    start=datetime(2026, 12, 2, 10),
                    end=datetime(2026, 12, 2, 11),
                    project_id=a.project_id,
                    staff_ids=[admin.id],
                ),
                a,
            )
    with db.transaction() as s:
        delete_appointment(s, s.get_one(User, admin.id), s.get_one(Appointment, open_id))
    # The hidden project is deleted with its appointment: not told either.
    with db.transaction() as s:
        delete_project(s, s.get_one(Project, secret.id))
    with db.transaction() as s:
        assert s.get_one(Appointment, hidden_id).deleted_at is not None
    assert _sent_types(db, receiver) == ["appointment.created", "appointment.updated", "appointment.deleted"]
    assert {e["data"]["id"] for e in receiver.events()} == {open_id}
    assert "Secret" not in "".join(r.body for r in receiver.received)


def test_a_deleted_relation_tells_its_appointments_deleted(any_db: Database, receiver: Receiver) -> None:
    db = any_db
    admin = _user(db, "Ada", admin=True)
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Closing BV"))
        data = AppointmentInput(
            title="Last visit", start=datetime(2026, 12, 1, 10), end=datetime(2026, 12, 1, 11), relation_id=relation.id
        )
        appointment_id = save_appointment(s, s.get_one(User, admin.id), data).id
    _subscribe(db, receiver, admin, ["appointment.deleted"])
    from hub.crm.relations import delete_relation

    with db.transaction() as s:
        delete_relation(s, s.get_one(Relation, relation.id))
    assert _sent_types(db, receiver) == ["appointment.deleted"]
    assert receiver.events()[0]["data"]["id"] == appointment_id


# --- the settings page -------------------------------------------------------------------------------------


def test_the_settings_form_offers_the_new_events_in_english_and_dutch(
    app: Flask, db: Database, make_user: Callable[..., User], login: Callable[[FlaskClient, User], FlaskClient]
) -> None:
    english = login(app.test_client(), make_user("Root", admin=True)).get("/settings/webhooks/new").text
    dutch = login(app.test_client(), make_user("Beheerder", admin=True, language="nl")).get("/settings/webhooks/new")
    for name in ("call.created", "call.updated", "appointment.created", "appointment.updated", "appointment.deleted"):
        assert re.search(rf'value="{re.escape(name)}"', english), name
        assert f'value="{name}"' in dutch.text
    assert "Appointment created" in english and "Call stored (started in the last 24 hours)" in english
    assert "Afspraak aangemaakt" in dutch.text and "Afspraak verwijderd" in dutch.text
    assert "Gesprek gekoppeld aan een contactpersoon, relatie of project" in dutch.text
