"""hub's outgoing mail on the relays companies really use (tests/smtp_relays.py: real aiosmtpd
relays behaving as Office 365, Gmail, Postfix and Exim do), driven as users drive it: an
appointment's invitations, a mailing sent end to end, a test send. The mailing's ledger must show
every recipient sent exactly once, or failed with the relay's or hub's plain reason."""

from __future__ import annotations

import email
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.calendar.accounts import AccountInput, save_account
from hub.calendar.appointments import AppointmentInput, save_appointment
from hub.calendar.imip import SendResult, send_invitations
from hub.campaigns import sending
from hub.config import Settings
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.i18n import english
from hub.models import User
from hub.models.campaigns import MailingRecipient
from hub.outbound import Refused, send_one
from tests.conftest import make_settings
from tests.integration import test_campaign_pipelining
from tests.integration.test_campaign_sending import mailing_settings, make_mailing, run_to_end, seed_contacts
from tests.smtp_relays import Behaviour, Certificates, Relay, make_certificates, started

sink = test_campaign_pipelining.sink  # (the fixture starting postfix's smtp-sink)
LOGIN = ("hub@company.example", "s3cret pass")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certificates"))


def ledger(db: Database, mailing_id: int) -> dict[str, tuple[str, int, str]]:
    """address -> (status, attempts, error in English)"""
    with db.transaction() as s:
        rows = s.execute(
            select(
                MailingRecipient.address, MailingRecipient.status, MailingRecipient.attempts, MailingRecipient.error
            ).where(MailingRecipient.mailing_id == mailing_id)
        ).all()
    return {address: (status, attempts, english(error)) for address, status, attempts, error in rows}


@dataclass(frozen=True)
class Outcome:
    mailing_id: int
    state: str  # the mailing's, after the last run
    deferred_total: int  # deferrals over all runs


def mail_out(
    tmp_path: Path, db: Database, relay: Relay, certificates: Certificates, count: int, **kwargs: Any
) -> Outcome:
    """A mailing to ``count`` customers through ``relay``, run until nothing is due."""
    seed_contacts(db, count)
    mailing_id = make_mailing(db, **kwargs.pop("mailing", {}))
    settings = mailing_settings(tmp_path, db, relay.url(certificates))
    results = run_to_end(db, settings, mailing_id, **kwargs)
    return Outcome(mailing_id, results[-1].state, sum(r.deferred for r in results))


def addresses(count: int) -> list[str]:
    return [f"r{i}@example.test" for i in range(count)]


def exactly_once(relay: Relay, expected: list[str]) -> None:
    received = Counter(relay.recipients())
    assert sorted(received) == sorted(expected)
    assert set(received.values()) == {1}, [a for a, n in received.items() if n > 1]


def invite(
    db: Database, settings: Settings, make_user: Callable[..., User], title: str = "Oven demo"
) -> tuple[int, list[str]]:
    """An appointment with a customer's contact and a colleague who takes invitations by mail."""
    anna, olga = make_user("Anna"), make_user("Olga")
    with db.transaction() as s:
        save_account(s, settings.secret_key, s.get_one(User, olga.id), AccountInput(delivery="invitations"))
        relation = save_relation(s, RelationInput(name="Jansen BV"))
        piet = save_contact(s, relation, ContactInput(name="Piet Jansen", emails=["piet@jansen.example"]))
        appointment = save_appointment(
            s,
            s.get_one(User, anna.id),
            AppointmentInput(
                title=title,
                start=datetime(2026, 12, 7, 10, 0),
                end=datetime(2026, 12, 7, 11, 0),
                relation_id=relation.id,
                staff_ids=[anna.id, olga.id],
                contact_ids=[piet.id],
                location="Dorpsstraße 1, Café de Zwaan",
            ),
        )
        return appointment.id, ["piet@jansen.example", olga.email]


def settings_for(tmp_path: Path, db: Database, url: str) -> Settings:
    return make_settings(tmp_path / "var", db.url, HUB_SMTP_URL=url, HUB_MAIL_FROM="hub@company.example")


def counts(result: SendResult) -> tuple[int, int, int]:
    return result.sent, result.deferred, result.refused


# Office 365 ---------------------------------------------------------------------------------------
def test_office365_starttls_login_only_and_30_messages_a_session(
    tmp_path: Path, db: Database, certificates: Certificates, make_user: Callable[..., User]
) -> None:
    """STARTTLS before AUTH, AUTH LOGIN alone, PIPELINING only after TLS, and the session ended
    after 30 messages: a mailing of 70 goes out in three sessions, nobody deferred or doubled."""
    office365 = Behaviour(tls="starttls", login=LOGIN, mechanisms=("LOGIN",), size=35_000_000, messages_per_session=30)
    with started(office365, certificates) as relay:
        appointment_id, invitees = invite(db, settings_for(tmp_path, db, relay.url(certificates)), make_user)
        assert counts(send_invitations(db, settings_for(tmp_path, db, relay.url(certificates)), appointment_id)) == (
            2,
            0,
            0,
        )
        exactly_once(relay, invitees)
        relay.state.received.clear()

        result = mail_out(tmp_path, db, relay, certificates, 70, connections=1)
        assert result.state == "sent" and result.deferred_total == 0
        exactly_once(relay, addresses(70))
        assert {item.login for item in relay.received} == {LOGIN[0]}
        assert len({item.session for item in relay.received}) == 3  # 30 + 30 + 10
        assert {status for status, _a, _e in ledger(db, result.mailing_id).values()} == {"sent"}


def test_office365_too_many_recipients_go_in_a_new_transaction(tmp_path: Path, db: Database) -> None:
    """ "452 4.5.3 Too many recipients": the rest are sent in the next transaction, none lost."""
    with started(Behaviour(max_recipients=2)) as relay:
        message = EmailMessage()
        message["From"] = "hub@company.example"
        message["To"] = ", ".join(f"person{i}@example.test" for i in range(5))
        message["Subject"] = "Agenda"
        message.set_content("See you there.")
        send_one(settings_for(tmp_path, db, relay.url()), message)
        assert [item.rcpt_tos for item in relay.received] == [
            ("person0@example.test", "person1@example.test"),
            ("person2@example.test", "person3@example.test"),
            ("person4@example.test",),
        ]


def test_concurrent_connections_limit_sends_everyone_once(
    tmp_path: Path, db: Database, certificates: Certificates
) -> None:
    """ "432 4.3.2 Concurrent connections limit exceeded" to hub's extra sessions: deferred, sent later
    on the one session the relay allows, each recipient once."""
    with started(Behaviour(max_sessions=1)) as relay:
        result = mail_out(tmp_path, db, relay, certificates, 30, connections=3)
        assert result.state == "sent"
        exactly_once(relay, addresses(30))
        assert {status for status, _a, _e in ledger(db, result.mailing_id).values()} == {"sent"}


# Gmail --------------------------------------------------------------------------------------------
def test_gmail_implicit_tls_try_again_later_and_blocked_content(
    tmp_path: Path, db: Database, certificates: Certificates
) -> None:
    """smtps:// on an implicit-TLS relay; its 421 "try again later" closing the session defers one
    message (sent later, once); a multi-line 550 5.7.1 fails two recipients with the relay's words."""
    gmail = Behaviour(
        tls="implicit", login=LOGIN, later_at_message=(5,), blocked=("r7@example.test", "r8@example.test")
    )
    with started(gmail, certificates) as relay:
        result = mail_out(tmp_path, db, relay, certificates, 25, connections=1)
        assert result.state == "sent" and result.deferred_total == 1
        exactly_once(relay, [a for a in addresses(25) if a not in ("r7@example.test", "r8@example.test")])
        rows = ledger(db, result.mailing_id)
        for blocked in ("r7@example.test", "r8@example.test"):
            status, _attempts, error = rows[blocked]
            assert status == "failed" and error.startswith("550 5.7.1") and "has been blocked" in error
        assert Counter(status for status, _a, _e in rows.values()) == {"sent": 23, "failed": 2}


# Postfix and Exim ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "behaviour",
    [
        Behaviour(pipelining=False, messages_per_session=7),
        Behaviour(pipelining=True, messages_per_session=7),
        Behaviour(pipelining=True, messages_per_session=7, goodbye=True),
    ],
    ids=["no-pipelining-closes", "pipelining-closes", "pipelining-421-to-next-mail"],
)
def test_a_relay_ending_the_session_after_n_messages(
    tmp_path: Path, any_db: Database, certificates: Certificates, behaviour: Behaviour
) -> None:
    with started(behaviour) as relay:
        result = mail_out(tmp_path, any_db, relay, certificates, 25, connections=1)
        assert result.state == "sent" and result.deferred_total == 0
        exactly_once(relay, addresses(25))
        assert len({item.session for item in relay.received}) == 4  # 7 + 7 + 7 + 4


def test_a_relay_lost_while_taking_a_message_gets_it_again_once(
    tmp_path: Path, any_db: Database, certificates: Certificates
) -> None:
    """The connection drops after the 9th message's text went and before the relay answered: hub
    cannot know whether it was kept, so the recipient is deferred, marked in doubt, and sent again
    on a new session (this relay kept nothing: he has it once); the others are not repeated."""
    with started(Behaviour(lost_at_message=(9,))) as relay:
        result = mail_out(tmp_path, any_db, relay, certificates, 20, connections=1)
        assert result.state == "sent" and result.deferred_total == 1
        exactly_once(relay, addresses(20))
        with any_db.transaction() as s:
            doubted = s.scalars(
                select(MailingRecipient.address).where(
                    MailingRecipient.mailing_id == result.mailing_id, MailingRecipient.in_doubt.is_(True)
                )
            ).all()
        assert doubted == ["r8@example.test"]


def test_greylisting_defers_then_sends_once_without_pausing(
    tmp_path: Path, db: Database, certificates: Certificates, make_user: Callable[..., User]
) -> None:
    """Greylisting answers "451 4.7.1" to a recipient's first RCPT: deferred and sent on the next
    try. A run of greylisted recipients is not a relay in trouble: the mailing is not paused."""
    greylisted = tuple(f"r{i}@example.test" for i in range(3, 9))
    with started(Behaviour(greylist=greylisted)) as relay:
        result = mail_out(tmp_path, db, relay, certificates, 20, connections=1)
        assert result.state == "sent" and result.deferred_total == 6
        exactly_once(relay, addresses(20))
        rows = ledger(db, result.mailing_id)
        assert {address for address, (_s, attempts, _e) in rows.items() if attempts > 1} == set(greylisted)

    with started(Behaviour(greylist=("piet@jansen.example",))) as relay:  # an invitation: the same
        settings = settings_for(tmp_path, db, relay.url())
        appointment_id, invitees = invite(db, settings, make_user)
        assert counts(send_invitations(db, settings, appointment_id)) == (1, 1, 0)
        assert counts(send_invitations(db, settings, appointment_id)) == (1, 0, 0)
        exactly_once(relay, invitees)


def test_a_relay_refusing_every_recipient_for_now_pauses_the_mailing(
    tmp_path: Path, db: Database, certificates: Certificates
) -> None:
    """Every RCPT answered "451" (a relay throttling hub, or in trouble of its own) is the relay, not
    the recipients: after sending.PAUSE_AFTER_RECIPIENT_FAILURES in a row the mailing pauses with
    the reason, rather than spending every recipient's attempts; nobody has failed."""
    count = sending.PAUSE_AFTER_RECIPIENT_FAILURES + 10
    with started(Behaviour(greylist=tuple(addresses(count)))) as relay:
        result = mail_out(tmp_path, db, relay, certificates, count, connections=1)
        assert result.state == "paused" and result.deferred_total == sending.PAUSE_AFTER_RECIPIENT_FAILURES
        assert relay.received == []
        rows = ledger(db, result.mailing_id)
        assert {status for status, _attempts, _error in rows.values()} == {"pending"}


def test_a_message_over_the_relays_size_fails_with_a_plain_reason(
    tmp_path: Path, db: Database, certificates: Certificates
) -> None:
    big = "<p>" + "Our spring catalogue, page after page. " * 400 + "</p>"
    with started(Behaviour(size=10_000)) as relay:
        result = mail_out(tmp_path, db, relay, certificates, 5, connections=1, mailing={"html": big})
        assert relay.received == []
        errors = {error for status, _a, error in ledger(db, result.mailing_id).values() if status == "failed"}
        (error,) = errors
        assert "the relay takes messages up to 10 kB (its SIZE limit)" in error, error


def test_invitation_through_a_relay_without_8bitmime_smtputf8_or_pipelining(
    tmp_path: Path, db: Database, make_user: Callable[..., User]
) -> None:
    """A strict relay refuses 8-bit data unless it announced 8BITMIME: hub sends the invitation's
    text encoded to 7 bits, and reads back the same. An international domain goes as IDNA; a
    mailbox name that is not ASCII cannot go through this relay, and hub says so plainly."""
    with started(Behaviour(eight_bit=False, smtputf8=False, pipelining=False)) as relay:
        settings = settings_for(tmp_path, db, relay.url())
        appointment_id, invitees = invite(db, settings, make_user, title="Overleg über de oven")
        assert counts(send_invitations(db, settings, appointment_id)) == (2, 0, 0)
        exactly_once(relay, invitees)
        for item in relay.received:
            assert item.data.isascii() and not any(o.upper().startswith("BODY=") for o in item.mail_options)
            calendar = next(p for p in item.message().walk() if p.get_content_type() == "text/calendar")
            text = calendar.get_content()
            assert "Overleg über de oven" in text and "Dorpsstraße 1" in text

        relay.state.received.clear()
        message = EmailMessage()
        message["From"] = "hub@company.example"
        message["Subject"] = "Test"
        message.set_content("Grüße")
        send_one(settings, message, recipients=["info@bäckerei.example"])
        assert relay.recipients() == ["info@xn--bckerei-5wa.example"]
        with pytest.raises(Refused) as refused:
            send_one(settings, message, recipients=["jürgen@example.test"])
        assert not refused.value.temporary and "offers no SMTPUTF8" in str(refused.value)


# Certificates and passwords -----------------------------------------------------------------------
@pytest.mark.parametrize("certificate", ["self_signed", "wrong_name"])
def test_an_untrusted_certificate_is_refused_unless_the_operator_allows_it(
    tmp_path: Path, db: Database, certificates: Certificates, make_user: Callable[..., User], certificate: str
) -> None:
    with started(Behaviour(tls="starttls", login=LOGIN, certificate=certificate), certificates) as relay:  # type: ignore[arg-type]
        settings = settings_for(tmp_path, db, relay.url(certificates))
        appointment_id, invitees = invite(db, settings, make_user)
        assert counts(send_invitations(db, settings, appointment_id)) == (0, 2, 0)  # kept for later
        assert relay.received == []  # and the password never went
        with pytest.raises(Refused) as refused:
            send_one(settings, EmailMessage(), sender="hub@company.example", recipients=["piet@jansen.example"])
        assert refused.value.temporary and "certificate is not trusted" in refused.value.reason

        allowed = (
            f"cafile={certificates.self_signed[0]}" if certificate == "self_signed" else "verify=no"
        )  # (trusting that one certificate; or, for a name that does not match, checking nothing)
        settings = settings_for(tmp_path, db, relay.url(query=allowed))
        assert counts(send_invitations(db, settings, appointment_id)) == (2, 0, 0)
        exactly_once(relay, invitees)


def test_a_wrong_password_pauses_a_mailing_and_fails_nobody(
    tmp_path: Path, db: Database, certificates: Certificates
) -> None:
    with started(Behaviour(tls="starttls", login=LOGIN, mechanisms=("LOGIN",)), certificates) as relay:
        seed_contacts(db, 10)
        mailing_id = make_mailing(db)
        url = relay.url(certificates).replace("s3cret%20pass", "wrong").replace("s3cret pass", "wrong")
        result = run_to_end(db, mailing_settings(tmp_path, db, url), mailing_id, connections=1)[-1]
        assert result.state == "paused" and "user name and password" in english(result.paused_reason)
        assert {status for status, _a, _e in ledger(db, mailing_id).values()} == {"pending"}
        assert relay.received == []


# An old relay (postfix's smtp-sink) --------------------------------------------------------------
def test_invitation_through_a_relay_without_esmtp(
    tmp_path: Path, db: Database, make_user: Callable[..., User], sink: Callable[..., tuple[str, Path]]
) -> None:
    """smtp-sink -e answers EHLO with 500 (no ESMTP, so no 8BITMIME, PIPELINING or SIZE): hub says
    HELO instead and sends the invitation's 8-bit text encoded to 7 bits."""
    url, dumps = sink("-e")
    settings = settings_for(tmp_path, db, url)
    appointment_id, invitees = invite(db, settings, make_user, title="Overleg über de oven")
    assert counts(send_invitations(db, settings, appointment_id)) == (2, 0, 0)
    dumped = test_campaign_pipelining._dumped(dumps, 2)
    assert sorted(dumped) == sorted(invitees)
    for dump in dumped.values():
        assert b"X-Helo-Args: " in dump.split(b"\n\n", 1)[0], dump[:400]
        body = email.message_from_bytes(dump, policy=default).get_body(("plain",))
        assert dump.isascii() and body is not None and "Overleg über de oven" in body.get_content()
