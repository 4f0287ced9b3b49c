"""An invitation's headers from text people typed: a title or a name with a line break in it (the
API keeps one, a pasted text brings one) made the email package refuse the header, so the
invitation was never sent and its task failed on every run. Now the header is the text on one line
(and no line break can add a header); sent through a real SMTP server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.calendar.appointments import AppointmentInput, save_appointment
from hub.calendar.imip import send_invitations
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Contact, User
from tests.conftest import make_settings


def test_line_breaks_in_a_title_or_a_name_are_sent_on_one_line_and_add_no_header(
    db: Database, tmp_path: Path, smtp_server: Any, make_user: Callable[..., User]
) -> None:
    settings = make_settings(
        tmp_path / "var", db.url, HUB_SMTP_URL=smtp_server.url, HUB_MAIL_FROM="hub@company.example"
    )
    anna = make_user("Anna")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Jansen BV"))
        piet = save_contact(s, relation, ContactInput(name="Piet Jansen", emails=["piet@jansen.example"]))
        # A name as an import or a synced address book may bring it.
        s.get_one(Contact, piet.id).name = "Piet\r\nJansen\x1b"
        appointment = save_appointment(
            s,
            s.get_one(User, anna.id),
            AppointmentInput(
                title="Oven demo\r\nBcc: everyone@elsewhere.example\nsecond line",
                start=datetime(2026, 12, 7, 10, 0),
                end=datetime(2026, 12, 7, 11, 0),
                relation_id=relation.id,
                staff_ids=[anna.id],
                contact_ids=[piet.id],
            ),
        )
        appointment_id = appointment.id
    result = send_invitations(db, settings, appointment_id)
    assert (result.sent, result.deferred, result.refused) == (1, 0, 0)
    assert send_invitations(db, settings, appointment_id).sent == 0  # sent once, and the task is done
    (message,) = smtp_server.messages()
    assert smtp_server.recipients() == ["piet@jansen.example"]
    assert message["Subject"] == "Oven demo Bcc: everyone@elsewhere.example second line"
    assert message["Bcc"] is None
    assert message["To"] == "Piet Jansen <piet@jansen.example>"
