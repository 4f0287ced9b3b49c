"""Invitation mail from outside is not trusted (hub.calendar.imip.apply_replies): anyone can write
any From and any iCalendar. Only a REPLY changes anything, only its sender's own answer, and only
when it reached the organiser's (or a staff attendee's) mailbox; everything else changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from hub.calendar.appointments import AppointmentInput, history, save_appointment
from hub.calendar.imip import apply_replies
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Appointment, Email, Mailbox, MailboxEmail, User
from hub.models.mail import MailSecurity

_keys = iter(range(1, 1_000_000))


def stored_reply(
    session: Session, owner_id: int | None, sender: str, details: dict[str, Any] | str, kind: str = "invitation"
) -> int:
    """What mail sync stores for an invitation mail that reached ``owner_id``'s mailbox."""
    n = next(_keys)
    box = Mailbox(
        name=f"box{n}",
        owner_id=owner_id,
        host="imap.example",
        port=993,
        security=MailSecurity.ssl,
        username=f"u{n}",
        password_encrypted="x",
    )
    email = Email(
        message_key=f"<nasty-{n}@example>",
        raw_sha256=f"{n:064d}",
        kind=kind,
        from_address=sender,
        details=details if isinstance(details, str) else json.dumps(details),
    )
    session.add_all([box, email])
    session.flush()
    session.add(MailboxEmail(mailbox_id=box.id, email_id=email.id))
    session.flush()
    return email.id


def _reply(uid: str, *answers: tuple[str, str], method: str = "REPLY") -> dict[str, Any]:
    return {
        "method": method,
        "uid": uid,
        "sequence": 0,
        "attendees": [{"address": a, "partstat": p} for a, p in answers],
    }


@pytest.fixture
def demo(db: Database, make_user: Callable[..., User]) -> dict[str, Any]:
    """Anna's appointment with Piet and Klaas (contacts) and Olga (staff); Bert is staff, not invited."""
    anna, olga, bert = make_user("Anna"), make_user("Olga"), make_user("Bert")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Jansen BV"))
        piet = save_contact(s, relation, ContactInput(name="Piet Jansen", emails=["piet@jansen.example"]))
        klaas = save_contact(s, relation, ContactInput(name="Klaas Jansen", emails=["klaas@jansen.example"]))
        appointment = save_appointment(
            s,
            s.get_one(User, anna.id),
            AppointmentInput(
                title="Oven demo",
                start=datetime(2026, 12, 7, 10, 0),
                end=datetime(2026, 12, 7, 11, 0),
                relation_id=relation.id,
                contact_ids=[piet.id, klaas.id],
                staff_ids=[olga.id],
            ),
        )
        return {"anna": anna, "olga": olga, "bert": bert, "id": appointment.id, "uid": appointment.uid}


def _answers(db: Database, appointment_id: int) -> dict[str, str]:
    with db.transaction() as s:
        return {a.email_key: a.partstat for a in s.get_one(Appointment, appointment_id).attendees}


def test_a_reply_from_the_attendee_to_the_organisers_mailbox_counts(db: Database, demo: dict[str, Any]) -> None:
    with db.transaction() as s:
        email = stored_reply(
            s, demo["anna"].id, "Piet@Jansen.example", _reply(demo["uid"], ("piet@jansen.example", "ACCEPTED"))
        )
        assert apply_replies(s, [email]) == 1
    assert _answers(db, demo["id"])["piet@jansen.example"] == "ACCEPTED"


def test_a_reply_answers_for_its_sender_only(db: Database, demo: dict[str, Any]) -> None:
    """Piet's REPLY also 'declines' for Klaas and Olga: only Piet's own answer is taken."""
    everyone = [("piet@jansen.example", "TENTATIVE"), ("klaas@jansen.example", "DECLINED")]
    everyone.append((demo["olga"].email, "DECLINED"))
    with db.transaction() as s:
        email = stored_reply(s, demo["anna"].id, "piet@jansen.example", _reply(demo["uid"], *everyone))
        assert apply_replies(s, [email]) == 1
    answers = _answers(db, demo["id"])
    assert answers["piet@jansen.example"] == "TENTATIVE"
    assert answers["klaas@jansen.example"] == "NEEDS-ACTION"
    assert answers[demo["olga"].email.casefold()] == "NEEDS-ACTION"


NOTHING = {
    "someone else's answer, from a stranger": lambda d: (
        d["anna"].id,
        "mallory@evil.example",
        _reply(d["uid"], ("piet@jansen.example", "DECLINED")),
    ),
    "an answer 'from the organiser'": lambda d: (
        d["anna"].id,
        d["anna"].email,
        _reply(d["uid"], (d["anna"].email, "DECLINED"), ("piet@jansen.example", "DECLINED")),
    ),
    "a reply that reached a colleague who has nothing to do with it": lambda d: (
        d["bert"].id,
        "piet@jansen.example",
        _reply(d["uid"], ("piet@jansen.example", "DECLINED")),
    ),
    "a reply in a shared mailbox (nobody's own)": lambda d: (
        None,
        "piet@jansen.example",
        _reply(d["uid"], ("piet@jansen.example", "DECLINED")),
    ),
    "a CANCEL from outside": lambda d: (
        d["anna"].id,
        "piet@jansen.example",
        _reply(d["uid"], ("piet@jansen.example", "DECLINED"), method="CANCEL"),
    ),
    "a REQUEST from outside": lambda d: (
        d["anna"].id,
        "piet@jansen.example",
        _reply(d["uid"], ("piet@jansen.example", "DECLINED"), method="REQUEST"),
    ),
    "no METHOD": lambda d: (
        d["anna"].id,
        "piet@jansen.example",
        _reply(d["uid"], ("piet@jansen.example", "X"), method=""),
    ),
    "an unknown METHOD": lambda d: (
        d["anna"].id,
        "piet@jansen.example",
        _reply(d["uid"], ("piet@jansen.example", "DECLINED"), method="X-EVIL"),
    ),
    "an answer iCalendar does not have": lambda d: (
        d["anna"].id,
        "piet@jansen.example",
        _reply(d["uid"], ("piet@jansen.example", "X" * 60)),
    ),
    "two answers of the sender": lambda d: (
        d["anna"].id,
        "piet@jansen.example",
        _reply(d["uid"], ("piet@jansen.example", "ACCEPTED"), ("piet@jansen.example", "DECLINED")),
    ),
    "an unknown appointment": lambda d: (
        d["anna"].id,
        "piet@jansen.example",
        _reply("no-such-uid" * 50, ("piet@jansen.example", "DECLINED")),
    ),
    "details that are not JSON": lambda d: (d["anna"].id, "piet@jansen.example", "{not json"),
    "details that are a list": lambda d: (d["anna"].id, "piet@jansen.example", "[1, 2]"),
    "attendees that are not a list": lambda d: (
        d["anna"].id,
        "piet@jansen.example",
        {"method": "REPLY", "uid": d["uid"], "attendees": "piet@jansen.example"},
    ),
}


def test_mail_that_may_not_change_an_answer_changes_nothing(db: Database, demo: dict[str, Any]) -> None:
    # One appointment for all the cases (each is a mail of its own): the answers must stay unchanged.
    for name, case in NOTHING.items():
        owner_id, sender, details = case(demo)
        with db.transaction() as s:
            email = stored_reply(s, owner_id, sender, details)
            assert apply_replies(s, [email]) == 0, name
        assert set(_answers(db, demo["id"]).values()) == {"NEEDS-ACTION"}, name
    with db.transaction() as s:
        appointment = s.get_one(Appointment, demo["id"])
        assert appointment.status == "planned" and appointment.deleted_at is None
        assert [h.source for h in history(s, appointment)] == ["hub"]  # only its creation
