"""Invitations by e-mail (iMIP) through a real SMTP server (aiosmtpd), parsed back with icalendar:
REQUEST with an increasing SEQUENCE on every change, CANCEL on delete, nothing twice, a relay that
says "later" gets the invitation again; a METHOD:REPLY stored by mail sync sets the answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from icalendar import Calendar

from hub.calendar.accounts import AccountInput, save_account
from hub.calendar.appointments import AppointmentInput, delete_appointment, get_appointment, save_appointment
from hub.calendar.imip import apply_replies, due_invitations, send_invitations
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Appointment, Email, User
from tests.conftest import make_settings
from tests.integration.test_calendar_imip_nasty import stored_reply


def _calendar_part(message: Any) -> tuple[str, Calendar]:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            return part.get_param("method"), Calendar.from_ical(part.get_content())
    raise AssertionError("no text/calendar part")


def test_invitations_requests_updates_and_cancel(
    db: Database, tmp_path: Path, smtp_server: Any, make_user: Callable[..., User]
) -> None:
    settings = make_settings(
        tmp_path / "var", db.url, HUB_SMTP_URL=smtp_server.url, HUB_MAIL_FROM="hub@company.example"
    )
    anna, olga = make_user("Anna"), make_user("Olga")
    with db.transaction() as s:
        # Olga uses Outlook without CalDAV: she chose invitations.
        save_account(s, settings.secret_key, s.get_one(User, olga.id), AccountInput(delivery="invitations"))
        relation = save_relation(s, RelationInput(name="Jansen BV"))
        piet = save_contact(s, relation, ContactInput(name="Piet Jansen", emails=["piet@jansen.example"]))
        me = s.get_one(User, anna.id)
        appointment = save_appointment(
            s,
            me,
            AppointmentInput(
                title="Oven demo",
                start=datetime(2026, 12, 7, 10, 0),
                end=datetime(2026, 12, 7, 11, 0),
                relation_id=relation.id,
                staff_ids=[anna.id, olga.id],
                contact_ids=[piet.id],
                location="Dorpsstraat 1",
            ),
        )
        appointment_id, uid = appointment.id, appointment.uid
    with db.transaction() as s:
        assert due_invitations(s) == [appointment_id]

    smtp_server.fail_next(451)  # the relay defers the first one: it is sent again, not lost
    first = send_invitations(db, settings, appointment_id)
    assert (first.sent, first.deferred) == (1, 1)
    again = send_invitations(db, settings, appointment_id)
    assert (again.sent, again.deferred) == (1, 0)
    assert send_invitations(db, settings, appointment_id).sent == 0  # nothing twice
    assert sorted(smtp_server.recipients()) == sorted(["piet@jansen.example", olga.email])
    for message in smtp_server.messages():
        method, cal = _calendar_part(message)
        (event,) = cal.walk("VEVENT")
        assert method == "REQUEST" and str(cal["method"]) == "REQUEST"
        assert str(event["uid"]) == uid and int(event["sequence"]) == 0
        assert event.decoded("dtstart").hour == 10 and str(event.decoded("dtstart").tzinfo) == "Europe/Amsterdam"
        assert str(event["organizer"]).lower() == f"mailto:{anna.email}"
        attendees = {str(a).lower(): a.params["PARTSTAT"] for a in event["attendee"]}
        assert attendees["mailto:piet@jansen.example"] == "NEEDS-ACTION"
        assert message["Reply-To"].addresses[0].addr_spec == anna.email  # replies reach the organizer
    smtp_server.clear()

    with db.transaction() as s:
        me = s.get_one(User, anna.id)
        appointment = get_appointment(s, me, appointment_id)
        save_appointment(
            s,
            me,
            AppointmentInput(
                title="Oven demo",
                start=datetime(2026, 12, 7, 14, 0),
                end=datetime(2026, 12, 7, 15, 0),
                relation_id=appointment.relation_id,
                staff_ids=[anna.id, olga.id],
                contact_ids=[piet.id],
                location="Dorpsstraat 1",
            ),
            appointment,
        )
    assert send_invitations(db, settings, appointment_id).sent == 2
    sequences = {int(_calendar_part(m)[1].walk("VEVENT")[0]["sequence"]) for m in smtp_server.messages()}
    assert sequences == {1}
    smtp_server.clear()

    with db.transaction() as s:
        me = s.get_one(User, anna.id)
        delete_appointment(s, me, get_appointment(s, me, appointment_id))
    assert send_invitations(db, settings, appointment_id).sent == 2
    for message in smtp_server.messages():
        method, cal = _calendar_part(message)
        (event,) = cal.walk("VEVENT")
        assert method == "CANCEL" and int(event["sequence"]) == 2 and str(event["status"]) == "CANCELLED"
    assert send_invitations(db, settings, appointment_id).sent == 0
    with db.transaction() as s:
        assert due_invitations(s) == []


def test_a_reply_stored_by_mail_sync_sets_the_answer(
    db: Database, make_user: Callable[..., User], client: FlaskClient, login: Callable[..., FlaskClient]
) -> None:
    anna = make_user("Anna")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Jansen BV"))
        piet = save_contact(s, relation, ContactInput(name="Piet Jansen", emails=["Piet@Jansen.example"]))
        me = s.get_one(User, anna.id)
        appointment = save_appointment(
            s,
            me,
            AppointmentInput(
                title="Oven demo",
                start=datetime(2026, 12, 7, 10, 0),
                end=datetime(2026, 12, 7, 11, 0),
                relation_id=relation.id,
                contact_ids=[piet.id],
            ),
        )
        # What mail sync stores for a METHOD:REPLY message (hub.mail.kinds: kind and details).
        details = {
            "method": "REPLY",
            "uid": appointment.uid,
            "sequence": 0,
            "attendees": [{"address": "piet@jansen.example", "partstat": "ACCEPTED"}],
        }
        # In Anna's mailbox, from Piet (see test_calendar_imip_nasty.py for what else changes nothing).
        reply_id = stored_reply(s, anna.id, "piet@jansen.example", details)
        unrelated = Email(message_key="<r2@jansen.example>", raw_sha256="1" * 64, kind="", details="")
        s.add(unrelated)
        s.flush()
        reply = s.get_one(Email, reply_id)
        assert apply_replies(s, [reply.id, unrelated.id]) == 1
        assert apply_replies(s, [reply.id]) == 0  # the same reply again changes nothing
        appointment_id = appointment.id
    with db.transaction() as s:
        stored = s.get_one(Appointment, appointment_id)
        answers = {a.email_key: a.partstat for a in stored.attendees}
        assert answers["piet@jansen.example"] == "ACCEPTED"
    # The reply's page says the answer in the reader's words (it showed iCalendar's "ACCEPTED").
    login(client, anna)
    page = client.get(f"/emails/{reply_id}").text
    assert "piet@jansen.example — Accepted" in page and "ACCEPTED" not in page


def test_a_reply_through_the_real_mail_sync_sets_the_answer(
    db: Database, settings: Any, mail_account: Callable[..., Any], make_user: Callable[..., User]
) -> None:
    """Piet answers the invitation in Outlook; the REPLY lands in Anna's mailbox (Dovecot), mail sync
    files it on his relation, and his answer is on the appointment."""
    from email.message import EmailMessage

    from icalendar import Event

    from tests.mail_fixtures import sync_account

    anna = make_user("Anna")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Jansen BV"))
        piet = save_contact(s, relation, ContactInput(name="Piet Jansen", emails=["piet@jansen.example"]))
        appointment = save_appointment(
            s,
            s.get_one(User, anna.id),
            AppointmentInput(
                title="Oven demo",
                start=datetime(2026, 12, 7, 10, 0),
                end=datetime(2026, 12, 7, 11, 0),
                relation_id=relation.id,
                contact_ids=[piet.id],
            ),
        )
        appointment_id, uid = appointment.id, appointment.uid
    reply = Calendar()
    reply.add("prodid", "-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN")
    reply.add("version", "2.0")
    reply.add("method", "REPLY")
    event = Event()
    event.add("uid", uid)
    event.add("sequence", 0)
    event.add("dtstamp", datetime(2026, 11, 27, 12, 0))
    event.add("dtstart", datetime(2026, 12, 7, 9, 0))
    event.add("organizer", f"mailto:{anna.email}")
    event.add("attendee", "mailto:piet@jansen.example", parameters={"PARTSTAT": "DECLINED", "CN": "Piet Jansen"})
    reply.add_component(event)
    mail = EmailMessage()
    mail["From"] = "Piet Jansen <piet@jansen.example>"
    mail["To"] = anna.email
    mail["Subject"] = "Declined: Oven demo"
    mail["Message-ID"] = "<reply-1@jansen.example>"
    mail["Date"] = "Fri, 27 Nov 2026 13:00:00 +0100"
    mail.set_content("Piet Jansen has declined.")
    mail.add_alternative(reply.to_ical(), maintype="text", subtype="calendar", params={"method": "REPLY"})
    account = mail_account(owner_id=anna.id)
    client = account.client()
    client.append("INBOX", mail.as_bytes())
    client.logout()

    sync_account(db, settings, account)
    with db.transaction() as s:
        stored = s.get_one(Appointment, appointment_id)
        assert {a.email_key: a.partstat for a in stored.attendees}["piet@jansen.example"] == "DECLINED"


def _oven_demo(
    db: Database, organizer_id: int, relation_id: int, staff: list[int], contacts: list[int], appointment_id: int = 0
) -> tuple[int, str]:
    """Make (or, given its id, change) the demo appointment with these attendees: (its id, its UID)."""
    with db.transaction() as s:
        me = s.get_one(User, organizer_id)
        current = get_appointment(s, me, appointment_id) if appointment_id else None
        fields = AppointmentInput(
            title="Oven demo",
            start=datetime(2026, 12, 7, 10, 0),
            end=datetime(2026, 12, 7, 11, 0),
            relation_id=relation_id,
            staff_ids=staff,
            contact_ids=contacts,
        )
        saved = save_appointment(s, me, fields, current)
        return saved.id, saved.uid


def test_someone_taken_off_an_appointment_gets_a_cancel_naming_him_alone(
    db: Database, tmp_path: Path, smtp_server: Any, make_user: Callable[..., User]
) -> None:
    """Removed after the invitation reached them, a contact and a staff member on invitations each get
    one CANCEL (the relay deferring one first); who stays gets nothing new; someone removed and
    invited again before the CANCEL left gets no CANCEL; nobody is told twice."""
    settings = make_settings(
        tmp_path / "var", db.url, HUB_SMTP_URL=smtp_server.url, HUB_MAIL_FROM="hub@company.example"
    )
    anna, olga = make_user("Anna"), make_user("Olga")
    with db.transaction() as s:
        save_account(s, settings.secret_key, s.get_one(User, olga.id), AccountInput(delivery="invitations"))
        relation = save_relation(s, RelationInput(name="Jansen BV"))
        piet = save_contact(s, relation, ContactInput(name="Piet Jansen", emails=["piet@jansen.example"]))
        kees = save_contact(s, relation, ContactInput(name="Kees Jansen", emails=["kees@jansen.example"]))
        relation_id, piet_id, kees_id = relation.id, piet.id, kees.id
    appointment_id, uid = _oven_demo(db, anna.id, relation_id, [anna.id, olga.id], [piet_id, kees_id])

    def change(staff: list[int], contacts: list[int]) -> None:
        _oven_demo(db, anna.id, relation_id, staff, contacts, appointment_id)

    assert send_invitations(db, settings, appointment_id).sent == 3
    smtp_server.clear()
    change([anna.id], [kees_id])  # Olga and Piet are taken off
    with db.transaction() as s:
        assert due_invitations(s) == [appointment_id]
    smtp_server.fail_next(451)
    first = send_invitations(db, settings, appointment_id)
    assert (first.sent, first.deferred) == (1, 1)
    assert send_invitations(db, settings, appointment_id).sent == 1
    assert send_invitations(db, settings, appointment_id).sent == 0
    assert sorted(smtp_server.recipients()) == sorted(["piet@jansen.example", olga.email])
    for message in smtp_server.messages():
        method, cal = _calendar_part(message)
        (event,) = cal.walk("VEVENT")
        assert method == "CANCEL" and str(event["uid"]) == uid and str(event["status"]) == "CANCELLED"
        attendees = event["attendee"] if isinstance(event["attendee"], list) else [event["attendee"]]
        assert [str(a).lower() for a in attendees] == [f"mailto:{message['To'].addresses[0].addr_spec.lower()}"]
    with db.transaction() as s:
        assert due_invitations(s) == []
    smtp_server.clear()

    # Taken off and invited again before the CANCEL left: a new invitation, no CANCEL.
    change([anna.id], [])
    change([anna.id], [kees_id])
    assert send_invitations(db, settings, appointment_id).sent == 1
    ((method, _cal),) = [_calendar_part(m) for m in smtp_server.messages()]
    assert method == "REQUEST" and smtp_server.recipients() == ["kees@jansen.example"]
    smtp_server.clear()
    # Piet, told once, is invited again, then taken off again: he is told again, once.
    change([anna.id], [kees_id, piet_id])
    assert send_invitations(db, settings, appointment_id).sent == 1
    change([anna.id], [kees_id])
    assert send_invitations(db, settings, appointment_id).sent == 1
    assert send_invitations(db, settings, appointment_id).sent == 0
    assert [_calendar_part(m)[0] for m in smtp_server.messages()] == ["REQUEST", "CANCEL"]
