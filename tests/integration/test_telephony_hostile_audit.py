"""Telephony judged on what we never see, on SQLite and PostgreSQL: a Master.csv a crash, a broken
PBX clock and a forger wrote (bad rows rejected with their reason, the rest imported once),
webhook bodies no PBX sends (a clear 4xx or a rejected record, never a 500, nothing stored twice),
and colleagues who must not learn what is hidden from them through calls, "My calls" or caller ID."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.accounts.users import create_token
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.i18n import english
from hub.models import Call, CallImport, CallSource, Contact, Relation, User
from hub.telephony.ingest import import_path
from hub.telephony.sources import SourceInput, save_source
from hub.telephony.webhooks import generic_signature, twilio_signature
from tests.conftest import EnglishClient, log_in, make_settings, new_user

SAMPLES = Path(__file__).resolve().parents[1] / "telephony_samples"
SECRET_KEY = "test-secret-key-0123456789"
HMAC_SECRET = "hmac-s3cret"
TWILIO_TOKEN = "tw-token"
HIDDEN = "Zq"  # in every name colleagues must never see


@dataclass
class World:
    client: FlaskClient
    db: Database
    staff: User  # extension 100; sees Acme, not the hidden relation
    insider: User  # extension 200; sees both
    admin: User
    ids: dict[str, int]

    def token(self, user: User) -> dict[str, str]:
        with self.db.transaction() as session:
            return {"Authorization": "Bearer " + create_token(session, session.get_one(User, user.id), scope="read")}

    def calls(self) -> list[Call]:
        with self.db.transaction() as session:
            return list(session.scalars(select(Call).order_by(Call.started_at, Call.id)))


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    """Acme BV (Jan, 020 123 4567) open to all; Hidden Zq BV (Secret Zq, 030 765 4321, and a
    project) linked to the insider only; a PBX (asterisk-csv, extensions 100 and 200), a signed
    generic webhook source and a Twilio source."""
    from web import create_app

    database = Database(database_url)
    settings = make_settings(tmp_path / "var", database_url)
    app = create_app(settings, database=database, TESTING=True)
    app.test_client_class = EnglishClient
    staff, insider = new_user(database, "Staff"), new_user(database, "Insider")
    admin = new_user(database, "Admin", admin=True)
    with database.transaction() as s:
        acme = save_relation(s, RelationInput(name="Acme BV"))
        jan = save_contact(s, acme, ContactInput(name="Jan de Vries", phones=["020 123 4567"]))
        hidden = save_relation(s, RelationInput(name=f"Hidden {HIDDEN} BV"))
        set_relation_linked(s, hidden, [insider.id], [])
        secret = save_contact(s, hidden, ContactInput(name=f"Secret {HIDDEN}", phones=["030 765 4321"]))
        project = save_project(s, admin, ProjectInput(relation_id=hidden.id, name=f"Project {HIDDEN}"))
        set_linked(s, project, [insider.id], [])
        ids = {"acme": acme.id, "jan": jan.id, "hidden": hidden.id, "secret": secret.id, "project": project.id}
        for name, fmt, secret_value in (("pbx", "asterisk-csv", None), ("hooks", "generic-csv", HMAC_SECRET)):
            ids[name] = save_source(
                s,
                SECRET_KEY,
                SourceInput(
                    name=name,
                    format=fmt,
                    timezone="Europe/Amsterdam",
                    secret=secret_value,
                    extensions={"100": staff.id, "200": insider.id},
                ),
            ).id
        ids["cloud"] = save_source(
            s, SECRET_KEY, SourceInput(name="cloud", format="twilio", timezone="UTC", secret=TWILIO_TOKEN)
        ).id
    yield World(app.test_client(), database, staff, insider, admin, ids)
    database.dispose()


# --- a Master.csv written by a crash, a broken clock and a forger ----------------------------------------


def test_a_hostile_master_csv_imports_its_good_rows_once(world: World) -> None:
    """NUL bytes (a crash's block, one inside a uniqueid), a 300-character uniqueid, durations of
    infinity and 95 years, the year 1, an unknown disposition, 22 columns, a record twice, a
    Latin-1 name, a SIP URI and an anonymous caller: each bad row rejected with its reason, every
    good one imported, and a second import changes nothing."""
    sample = SAMPLES / "asterisk_hostile.csv"
    first = import_path(world.db, world.ids["pbx"], sample)
    assert (first.rows, first.imported, first.known, first.rejected) == (13, 6, 0, 6), first
    assert [english(reason) for _line, reason in first.errors] == [
        "a call id longer than 200 characters",
        "bad duration: inf",
        "bad date: 0001-01-01 00:00:00",
        "bad duration: 3000000000",
        "unknown disposition: TRANSFERRED",
        "wrong column count: 22 (expected 16, 17, 18 or 21)",
    ]
    calls = {call.call_key: call for call in world.calls()}
    assert sorted(calls) == [f"1741083302.{n}" for n in (1, 2, 3, 5, 6, 7)]
    assert calls["1741083302.2"].e164 == "+3225551234" and calls["1741083302.3"].e164 == "+493012345678"
    assert calls["1741083302.6"].e164 == "+31612345678" and calls["1741083302.7"].e164 == ""
    assert {call.user_id for call in calls.values()} == {world.staff.id}
    again = import_path(world.db, world.ids["pbx"], sample)
    assert (again.imported, again.known, again.rejected) == (0, 6, 6)
    assert len(world.calls()) == 6
    with world.db.transaction() as session:
        reports = list(session.scalars(select(CallImport.errors).order_by(CallImport.id)))
    assert len(reports) == 2 and "line 4:" in english(reports[0]) and "\x00" not in reports[0]


# --- webhooks: bodies no PBX sends ---------------------------------------------------------------------


def _post_generic(world: World, body: bytes, content_type: str = "application/json") -> Any:
    headers = {"X-Hub-Signature-256": generic_signature(HMAC_SECRET, body), "Content-Type": content_type}
    return world.client.post("/api/v1/telephony/hooks/events", data=body, headers=headers)


def test_signed_webhook_bodies_no_pbx_sends_are_a_clear_400(world: World) -> None:
    for body in (
        b"[" * 100_000 + b"]" * 100_000,  # nested deeper than Python's parser goes
        b'{"call_id": ' * 50_000,
        b"\xff\xfe\x00garbage",
        b"",
    ):
        response = _post_generic(world, body)
        assert response.status_code == 400, (body[:20], response.status_code)
        assert "JSON" in response.get_json()["error"]["message"]
    assert world.calls() == []


def test_hostile_webhook_calls_are_rejected_one_by_one_and_stored_once(world: World) -> None:
    good = {"call_id": "good-1", "from": "+31201234567", "to": "100", "start": "2026-03-02T09:00:00Z", "duration": 60}
    calls = [
        good,
        {**good, "call_id": "\u0000\u200b"},
        {**good, "call_id": "x" * 500},
        {**good, "call_id": "inf", "duration": 1e400},
        {**good, "call_id": "year", "start": 10**13},
        {
            **good,
            "call_id": "nul\u0000id",
            "recording_url": "javascript:alert(document.cookie)",
            "extension": "1\u000000",
        },
    ]
    body = json.dumps(calls).replace("Infinity", "1e400").encode()
    for attempt in range(2):  # a retry of the same request
        response = _post_generic(world, body)
        assert response.status_code == 200, response.get_json()
        result = response.get_json()
        assert (result["imported"], result["known"]) == ((2, 0) if attempt == 0 else (0, 2))
        assert [reason.split(":", 1)[0] for reason in result["rejected"]] == ["2", "3", "4", "5"]
    stored = {call.call_key: call for call in world.calls()}
    assert sorted(stored) == ["good-1", "nulid"]
    assert (stored["nulid"].recording_url, stored["nulid"].user_id) == ("", world.staff.id)
    # The same calls in UTF-16 (with its BOM), as a Windows script may post them: read, not refused.
    utf16 = json.dumps([{**good, "call_id": "utf16"}]).encode("utf-16")
    assert _post_generic(world, utf16).get_json()["imported"] == 1


def test_a_twilio_callback_with_a_nul_or_a_forged_duration_is_no_500(world: World) -> None:
    url = "http://localhost/api/v1/telephony/cloud/events"
    base = {"CallSid": "CA\x001", "From": "+31201234567", "To": "+31307654321", "Direction": "inbound"}
    for params, stored in (
        ({**base, "CallStatus": "completed", "CallDuration": "99999999999999"}, False),
        ({**base, "CallStatus": "completed", "CallDuration": "30", "Timestamp": "9999999999999"}, False),
        ({**base, "CallStatus": "completed", "CallDuration": "30"}, True),
    ):
        signature = twilio_signature(TWILIO_TOKEN, url, params.items())
        response = world.client.post(
            url,
            data=urlencode(params),
            headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["imported"] == int(stored)
    assert [call.call_key for call in world.calls()] == ["CA1"]


# --- colleagues: what is hidden stays hidden -------------------------------------------------------------


def _csv_call(world: World, tmp_path: Path, number: str, extension: str, uid: str = "1772442000.1") -> None:
    line = (
        f'"","{number}","{extension}","from-trunk","","PJSIP/trunk-1","PJSIP/{extension}-2","Dial","",'
        '"2026-03-02 10:00:00","2026-03-02 10:00:05","2026-03-02 10:01:05",65,60,"ANSWERED","DOCUMENTATION",'
        f'"{uid}",""\n'
    )
    path = tmp_path / f"{uid}.csv"
    path.write_text(line)
    assert import_path(world.db, world.ids["pbx"], path).imported == 1


def test_my_calls_show_a_call_i_took_but_never_the_hidden_relation_it_is_filed_with(
    world: World, tmp_path: Path
) -> None:
    """The staff member took a call from the hidden relation's contact: it is his call (he sees it
    in "My calls" and the API), but who it was filed with stays hidden, as a hidden mail link does
    from the mail's owner: no name, no id."""
    _csv_call(world, tmp_path, "0307654321", "100")
    (call,) = world.calls()
    assert (call.relation_id, call.contact_id, call.project_id, call.user_id) == (
        world.ids["hidden"],
        world.ids["secret"],
        world.ids["project"],
        world.staff.id,
    )
    with world.db.transaction() as session:  # a recording link stored before hub refused such links
        session.get_one(Call, call.id).recording_url = "javascript:alert(document.cookie)"
    client = log_in(world.client, world.staff)
    mine = client.get("/calls/mine")
    assert mine.status_code == 200 and "+31307654321" in mine.text
    assert HIDDEN not in mine.text and f"/relations/{world.ids['hidden']}" not in mine.text
    assert "javascript:" not in mine.text
    headers = world.token(world.staff)
    listed = world.client.get(f"/api/v1/calls?user_id={world.staff.id}", headers=headers).get_json()["items"]
    one = world.client.get(f"/api/v1/calls/{call.id}", headers=headers).get_json()
    for shown in (listed[0], one):
        assert shown["id"] == call.id
        assert (shown["relation_id"], shown["contact_id"], shown["project_id"]) == (None, None, None)
    for url in (f"/api/v1/calls?relation_id={world.ids['hidden']}", f"/api/v1/calls?contact_id={world.ids['secret']}"):
        assert world.client.get(url, headers=headers).get_json()["items"] == []
    insider = world.client.get(f"/api/v1/calls/{call.id}", headers=world.token(world.insider)).get_json()
    assert (insider["relation_id"], insider["project_id"]) == (world.ids["hidden"], world.ids["project"])


def test_caller_id_of_a_number_shared_with_a_hidden_contact_answers_as_if_he_were_missing(world: World) -> None:
    """Jan (Acme, open) and a hidden contact share 020 123 4567. For a colleague the hidden one does
    not exist, so the number is Jan's; whoever sees both gets no guess (unknown)."""
    with world.db.transaction() as session:
        hidden = session.get_one(Relation, world.ids["hidden"])
        save_contact(session, hidden, ContactInput(name=f"Twin {HIDDEN}", phones=["+31 20 123 4567"]))
    staff, insider, admin = (world.token(u) for u in (world.staff, world.insider, world.admin))
    found = world.client.get("/api/v1/callerid?number=0201234567", headers=staff)
    assert found.get_json()["found"] is True and found.get_json()["contact"]["id"] == world.ids["jan"]
    assert HIDDEN not in found.text
    threecx = world.client.get("/api/v1/callerid/3cx?number=0031201234567", headers=staff).get_json()
    assert [c["id"] for c in threecx["contacts"]] == [f"contact-{world.ids['jan']}"]
    for headers in (insider, admin):
        assert world.client.get("/api/v1/callerid?number=0201234567", headers=headers).get_json()["found"] is False
    # The hidden contact's own number is unknown to the colleague, known to the insider.
    assert world.client.get("/api/v1/callerid?number=0307654321", headers=staff).get_json()["found"] is False
    assert world.client.get("/api/v1/callerid?number=0307654321", headers=insider).get_json()["found"] is True


def test_a_number_a_colleague_adds_pulls_no_call_that_is_not_plainly_his(world: World, tmp_path: Path) -> None:
    """0612 345 678 is on the hidden relation and on Acme: a call from it is nobody's (unmatched).
    A colleague who then adds that number to a contact of his own relation does not get the call
    filed there: the number is still on two relations. Once it is on one only, its calls follow."""
    with world.db.transaction() as session:
        hidden, acme = session.get_one(Relation, world.ids["hidden"]), session.get_one(Relation, world.ids["acme"])
        save_contact(session, hidden, ContactInput(name=f"Mobile {HIDDEN}", phones=["0612345678"]))
        save_contact(session, acme, ContactInput(name="Piet", phones=["06 12 34 56 78"]))
    _csv_call(world, tmp_path, "0612345678", "200")
    (call,) = world.calls()
    assert call.relation_id is None and call.e164 == "+31612345678"
    with world.db.transaction() as session:
        own = save_relation(session, RelationInput(name="Staff's own BV"))
        contact = save_contact(session, own, ContactInput(name="Claimed", phones=["+31612345678"]))
        contact_id = contact.id
    (call,) = world.calls()
    assert call.relation_id is None, "a number on three relations filed a call with one of them"
    listed = world.client.get("/api/v1/calls", headers=world.token(world.staff)).get_json()["items"]
    assert listed == []
    # Only the colleague's contact keeps the number: the call is plainly his now.
    with world.db.transaction() as session:
        for name in (f"Mobile {HIDDEN}", "Piet"):
            other = session.scalars(select(Contact).where(Contact.name == name)).one()
            save_contact(session, other.relation, ContactInput(name=name, phones=[]), other)
        claimed = session.get_one(Contact, contact_id)
        save_contact(session, claimed.relation, ContactInput(name="Claimed", phones=["0612345678"]), claimed)
    (call,) = world.calls()
    assert call.contact_id == contact_id


def test_the_3cx_template_is_xml_for_a_hub_at_an_internationalised_domain() -> None:
    """müller.example is xn--mller-kva.example: "--" inside an XML comment makes the file no XML."""
    import xml.etree.ElementTree as ET

    from web.api.telephony import threecx_template

    crm = ET.fromstring(threecx_template("https://crm.xn--mller-kva.example/"))
    request = crm.find("./Scenarios/Scenario/Request")
    assert request is not None
    assert request.get("Url") == "https://crm.xn--mller-kva.example/api/v1/callerid/3cx?number=[Number]"


def test_since_at_the_calendars_edge_is_a_list_not_a_500(world: World, tmp_path: Path) -> None:
    _csv_call(world, tmp_path, "0201234567", "100")
    headers = world.token(world.staff)
    for since, count in (("0001-01-01T00:00:00%2B14:00", 1), ("9999-12-31T23:59:59-14:00", 0)):
        response = world.client.get(f"/api/v1/calls?since={since}", headers=headers)
        assert response.status_code == 200, since
        assert len(response.get_json()["items"]) == count, since


# --- realistic sizes and odd encodings -----------------------------------------------------------------


def test_hostile_rows_among_5000_good_ones_across_batches(world: World, tmp_path: Path) -> None:
    """A generic CSV longer than one batch (and stored with COPY on PostgreSQL) with a NUL in a
    call id, a NUL in an extension, a javascript: recording and a duration of infinity every few
    dozen rows: those with an id left imported cleanly, the infinite ones rejected, all once."""
    header = "call_id,from,to,start,duration,extension,recording_url\n"
    lines, expected, rejected = [header], 0, 0
    for n in range(5200):
        call_id, extension, recording, duration = f"c{n}", "100", f"https://pbx.example.nl/rec/{n}.wav", "60"
        if n % 97 == 0:
            call_id = f"c\x00{n}"
        if n % 89 == 0:
            extension = "1\x0000"
        if n % 83 == 0:
            recording = "javascript:alert(document.cookie)"
        if n % 101 == 0:
            duration, rejected = "inf", rejected + 1
        else:
            expected += 1
        start = f"2026-03-02 {8 + n // 3600 % 10:02d}:{n // 60 % 60:02d}:{n % 60:02d}"
        lines.append(f"{call_id},+3120{n % 10_000_000:07d},100,{start},{duration},{extension},{recording}\n")
    path = tmp_path / "calls.csv"
    path.write_bytes("".join(lines).encode())
    with world.db.transaction() as session:
        source = session.get_one(CallSource, world.ids["hooks"])
        source.timezone = "UTC"
    first = import_path(world.db, world.ids["hooks"], path)
    assert (first.imported, first.rejected) == (expected, rejected)
    assert all(english(reason) == "bad duration: inf" for _line, reason in first.errors)
    again = import_path(world.db, world.ids["hooks"], path)
    assert (again.imported, again.known, again.rejected) == (0, expected, rejected)
    calls = world.calls()
    assert len(calls) == expected and len({call.call_key for call in calls}) == expected
    assert all("\x00" not in call.call_key and call.user_id == world.staff.id for call in calls)
    assert {call.recording_url.split(":", 1)[0] for call in calls} == {"https", ""}


def test_a_utf16_master_csv_in_the_drop_folder_grows_without_loss_or_doubles(world: World, tmp_path: Path) -> None:
    """Windows PowerShell's ``>`` writes UTF-16 with a BOM; the PBX's export script appends to it."""
    from hub.telephony.sources import poll_source

    folder = tmp_path / "drop"
    folder.mkdir()
    with world.db.transaction() as session:
        source = session.get_one(CallSource, world.ids["pbx"])
        source.drop_folder = str(folder)
    rows = (SAMPLES / "asterisk_master_18.csv").read_text().splitlines(keepends=True)
    data = ("\ufeff" + "".join(rows)).encode("utf-16-le")
    cut = len(("\ufeff" + rows[0]).encode("utf-16-le")) + 61  # in the middle of row 2, and of a character
    master = folder / "Master.csv"
    master.write_bytes(data[:cut])
    first = poll_source(world.db, world.ids["pbx"])
    assert first is not None and (first.rows, first.imported, first.rejected) == (1, 1, 0)
    master.write_bytes(data)
    second = poll_source(world.db, world.ids["pbx"])
    assert second is not None and (second.rows, second.imported, second.rejected) == (len(rows) - 1, len(rows) - 1, 0)
    third = poll_source(world.db, world.ids["pbx"])
    assert third is not None and third.rows == 0
    assert len(world.calls()) == len(rows)


def test_a_call_seen_through_its_relation_does_not_name_a_project_hidden_from_me(world: World, tmp_path: Path) -> None:
    with world.db.transaction() as session:
        acme = session.get_one(Relation, world.ids["acme"])
        project = save_project(session, world.admin, ProjectInput(relation_id=acme.id, name=f"Tender {HIDDEN}"))
        set_linked(session, project, [world.insider.id], [])
        project_id = project.id
    _csv_call(world, tmp_path, "0201234567", "200")
    (call,) = world.calls()
    assert (call.relation_id, call.project_id) == (world.ids["acme"], project_id)
    staff = world.token(world.staff)
    for shown in (
        world.client.get("/api/v1/calls", headers=staff).get_json()["items"][0],
        world.client.get(f"/api/v1/calls/{call.id}", headers=staff).get_json(),
    ):
        assert (shown["relation_id"], shown["contact_id"], shown["project_id"]) == (
            world.ids["acme"],
            world.ids["jan"],
            None,
        )
    assert world.client.get(f"/api/v1/calls?project_id={project_id}", headers=staff).get_json()["items"] == []
    insider = world.client.get(f"/api/v1/calls/{call.id}", headers=world.token(world.insider)).get_json()
    assert insider["project_id"] == project_id


def test_logrotate_in_the_drop_folder_doubles_nothing(world: World, tmp_path: Path) -> None:
    """logrotate (compress) turns Master.csv into Master.csv.1.gz and starts a new Master.csv: the
    packed file is read unpacked (its calls known), the new one from its start, each once."""
    import gzip
    import os

    from hub.telephony.sources import poll_source

    folder = tmp_path / "cdr-csv"
    folder.mkdir()
    with world.db.transaction() as session:
        session.get_one(CallSource, world.ids["pbx"]).drop_folder = str(folder)
    old = (SAMPLES / "asterisk_master_18.csv").read_bytes()
    master = folder / "Master.csv"
    master.write_bytes(old)
    first = poll_source(world.db, world.ids["pbx"])
    assert first is not None and (first.imported, first.rejected) == (3, 0)
    master.rename(folder / "Master.csv.1")
    rotated = folder / "Master.csv.1.gz"
    rotated.write_bytes(gzip.compress(old))
    (folder / "Master.csv.1").unlink()
    os.utime(rotated, (1, 1))  # older than the new Master.csv
    master.write_bytes((SAMPLES / "asterisk_hostile.csv").read_bytes())
    second = poll_source(world.db, world.ids["pbx"])
    assert second is not None and (second.imported, second.known, second.rejected) == (6, 3, 6)
    third = poll_source(world.db, world.ids["pbx"])
    assert third is not None and third.rows == 0
    with world.db.transaction() as session:
        reports = list(session.scalars(select(CallImport.filename).order_by(CallImport.id)))
    assert reports == ["Master.csv", "Master.csv.1.gz", "Master.csv"]
    assert len(world.calls()) == 9
