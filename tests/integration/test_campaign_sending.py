"""A mailing reaches every recipient exactly once through a real SMTP server (aiosmtpd), across a
deferral mid-send, the relay vanishing (pause, resume), a manual pause/resume and a second run
racing the first; suppression and consent apply at send time; a template failing for one
recipient fails only that recipient; invalid addresses are skipped with the reason."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select, update

from hub.campaigns import sending
from hub.campaigns.bounces import suppress
from hub.campaigns.groups import GroupInput, save_group
from hub.campaigns.mailings import CampaignInput, MailingInput, pause, resume, save_campaign, save_mailing, schedule
from hub.campaigns.pipelining import PipeliningConnection
from hub.config import Settings
from hub.db import Database
from hub.i18n import shown
from hub.models import Contact, EmailAddress, Relation, RelationKind, RelationStatus
from hub.models.campaigns import Mailing, MailingRecipient, SuppressionReason
from hub.outbound import Refused, Relay
from tests.conftest import make_settings
from tests.smtp_server import SmtpServer, _Handler

TEXT = "Dear {{ contact.first_name }},\n\nNews from us for {{ relation.name }} in {{ relation.city }}.\n"
HTML = "<p>Dear {{ contact.first_name }}</p><p>{{ relation.name }}</p>"


def seed_contacts(
    database: Database, count: int, *, consent: bool = True, prefix: str = "r", city: str = "Utrecht"
) -> list[int]:
    """``count`` relations with one contact each (address r<i>@example.test); returns contact ids."""
    ids = []
    with database.transaction() as s:
        for i in range(count):
            relation = Relation(
                kind=RelationKind.company,
                name=f"Company {prefix}{i}",
                search_name=f"company {prefix}{i}",
                city=city,
                status=RelationStatus.customer,
            )
            s.add(relation)
            s.flush()
            contact = Contact(relation_id=relation.id, name=f"Person{i} {prefix.upper()}", marketing_consent=consent)
            s.add(contact)
            s.flush()
            address = f"{prefix}{i}@example.test"
            s.add(EmailAddress(relation_id=relation.id, contact_id=contact.id, address=address, address_key=address))
            ids.append(contact.id)
    return ids


def make_mailing(
    database: Database,
    *,
    rules: dict[str, Any] | None = None,
    text: str = TEXT,
    html: str = HTML,
    consent_required: bool = True,
    scheduled: bool = True,
) -> int:
    with database.transaction() as s:
        group = save_group(
            s,
            GroupInput(
                name="Customers", rules=rules or {"relation_status": ["customer"]}, consent_required=consent_required
            ),
            None,
        )
        campaign = save_campaign(s, CampaignInput(name="Spring", costs_actual="100"), None)
        mailing = save_mailing(
            s,
            campaign,
            MailingInput(
                name="First",
                subject="Hello {{ contact.first_name }}",
                from_name="Hub Marketing",
                from_address="news@hub.example",
                html_body=html,
                text_body=text,
                target_group_id=group.id,
            ),
            None,
        )
        if scheduled:
            schedule(s, mailing, None)
        return mailing.id


def mailing_settings(tmp_path: Path, database: Database, smtp_url: str, **env: str) -> Settings:
    return make_settings(
        tmp_path / "var-send", database.url, HUB_SMTP_URL=smtp_url, HUB_BASE_URL="https://hub.example", **env
    )


def run_to_end(database: Database, settings: Settings, mailing_id: int, **kwargs: Any) -> list[sending.SendResult]:
    """Start the mailing if due and run it until nothing is due (deferrals made due at once)."""
    sending.start_due(database)
    results = []
    for _round in range(50):
        result = sending.send_mailing(database, settings, mailing_id, retry_base=0.0, **kwargs)
        assert result is not None
        results.append(result)
        if result.state != "sending":
            break
    return results


def statuses(database: Database, mailing_id: int) -> Counter[str]:
    with database.transaction() as s:
        return Counter(
            dict(
                s.execute(
                    select(MailingRecipient.status, func.count())
                    .where(MailingRecipient.mailing_id == mailing_id)
                    .group_by(MailingRecipient.status)
                ).all()
            )
        )


def assert_exactly_once(smtp_server: Any, addresses: list[str]) -> None:
    received = Counter(smtp_server.recipients())
    assert sorted(received) == sorted(addresses)
    assert set(received.values()) == {1}, [a for a, n in received.items() if n > 1]


@pytest.mark.parametrize("connections", [1, 3])
def test_every_recipient_once_with_personal_fields(
    tmp_path: Path, any_db: Database, smtp_server: Any, connections: int
) -> None:
    seed_contacts(any_db, 130)  # more than two chunks per connection
    mailing_id = make_mailing(any_db)
    settings = mailing_settings(tmp_path, any_db, smtp_server.url)
    results = run_to_end(any_db, settings, mailing_id, connections=connections)
    assert results[-1].state == "sent"
    assert sum(r.sent for r in results) == 130
    assert_exactly_once(smtp_server, [f"r{i}@example.test" for i in range(130)])
    message = next(m for m in smtp_server.messages() if m["To"].addresses[0].addr_spec == "r7@example.test")
    assert str(message["Subject"]) == "Hello Person7"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<https://hub.example/u/")
    text = message.get_body(("plain",)).get_content()
    assert "Dear Person7," in text and "Company r7 in Utrecht" in text
    assert message["List-Unsubscribe"].strip("<>") in text  # the visible link
    with any_db.transaction() as s:
        rows = s.execute(select(MailingRecipient.message_id, MailingRecipient.sent_at)).all()
        state = s.scalar(select(Mailing.state).where(Mailing.id == mailing_id))
    assert state == "sent"
    assert all(mid and at for mid, at in rows)
    ids = {m["Message-ID"] for m in smtp_server.messages()}
    assert ids == {mid for mid, _at in rows}


def test_deferral_mid_send_is_retried_not_repeated(tmp_path: Path, any_db: Database, smtp_server: Any) -> None:
    seed_contacts(any_db, 60)
    mailing_id = make_mailing(any_db)
    settings = mailing_settings(tmp_path, any_db, smtp_server.url)
    sent_before_fault = threading.Event()

    def progress(done: int, _total: int) -> None:
        if done == 20 and not sent_before_fault.is_set():
            sent_before_fault.set()
            smtp_server.fail_next(451, times=2)

    results = run_to_end(any_db, settings, mailing_id, connections=1, progress=progress)
    assert results[-1].state == "sent"
    assert sum(r.deferred for r in results) == 2
    assert_exactly_once(smtp_server, [f"r{i}@example.test" for i in range(60)])
    with any_db.transaction() as s:
        retried = s.scalars(select(MailingRecipient.attempts).where(MailingRecipient.attempts > 1)).all()
    assert sorted(retried) == [2, 2]


def test_relay_vanishing_pauses_then_resume_sends_the_rest_once(
    tmp_path: Path, any_db: Database, smtp_server: Any
) -> None:
    seed_contacts(any_db, 80)
    mailing_id = make_mailing(any_db)
    settings = mailing_settings(tmp_path, any_db, smtp_server.url)

    def progress(done: int, _total: int) -> None:
        if done == 30:
            smtp_server.stop()  # between two messages: the relay is gone

    results = run_to_end(any_db, settings, mailing_id, connections=1, progress=progress)
    assert results[-1].state == "paused"
    assert "relay" in results[-1].paused_reason
    with any_db.transaction() as s:
        mailing = s.get(Mailing, mailing_id)
        assert mailing is not None and mailing.state == "paused" and mailing.paused_reason
    assert len(smtp_server.recipients()) == 30
    smtp_server.start()  # the relay is back (same port)
    with any_db.transaction() as s:
        resume(s, s.get(Mailing, mailing_id))
    results = run_to_end(any_db, settings, mailing_id, connections=2)
    assert results[-1].state == "sent"
    assert_exactly_once(smtp_server, [f"r{i}@example.test" for i in range(80)])


def test_relay_refusing_with_421_pauses(tmp_path: Path, db: Database, smtp_server: Any) -> None:
    seed_contacts(db, 10)
    mailing_id = make_mailing(db)
    settings = mailing_settings(tmp_path, db, smtp_server.url)
    smtp_server.fail_next(421, times=sending.PAUSE_AFTER_FAILURES)
    results = run_to_end(db, settings, mailing_id, connections=1)
    assert results[-1].state == "paused"
    assert "421" in results[-1].paused_reason
    with db.transaction() as s:
        resume(s, s.get(Mailing, mailing_id))
    results = run_to_end(db, settings, mailing_id, connections=1)
    assert results[-1].state == "sent"
    assert_exactly_once(smtp_server, [f"r{i}@example.test" for i in range(10)])


def test_pause_and_resume_by_the_user(tmp_path: Path, any_db: Database, smtp_server: Any) -> None:
    seed_contacts(any_db, 120)
    mailing_id = make_mailing(any_db)
    settings = mailing_settings(tmp_path, any_db, smtp_server.url)

    paused = []

    def progress(done: int, _total: int) -> None:
        # (on PostgreSQL two sessions run in two processes, whose counts arrive a few at a time;
        # each process sees the pause in its look at the mailing's state)
        if done >= 40 and not paused:
            paused.append(done)
            with any_db.transaction() as s:
                pause(s, s.get(Mailing, mailing_id))

    results = run_to_end(any_db, settings, mailing_id, connections=2, progress=progress)
    assert results[-1].state == "paused"
    count = len(smtp_server.recipients())
    assert 40 <= count < 120
    assert statuses(any_db, mailing_id)["sending"] == 0  # the rest went back to pending
    with any_db.transaction() as s:
        resume(s, s.get(Mailing, mailing_id))
    results = run_to_end(any_db, settings, mailing_id, connections=2)
    assert results[-1].state == "sent"
    assert_exactly_once(smtp_server, [f"r{i}@example.test" for i in range(120)])


def test_second_run_racing_the_first_sends_nothing_twice(tmp_path: Path, any_db: Database, smtp_server: Any) -> None:
    seed_contacts(any_db, 150)
    mailing_id = make_mailing(any_db)
    settings = mailing_settings(tmp_path, any_db, smtp_server.url)
    assert sending.start_due(any_db) == [mailing_id]
    assert sending.start_due(any_db) == [mailing_id]  # a second beat: starts nothing again
    outcomes: list[Any] = []
    racers = [
        threading.Thread(target=lambda: outcomes.append(sending.send_mailing(any_db, settings, mailing_id)))
        for _ in range(3)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    winners = [o for o in outcomes if o is not None]
    assert len(winners) == 1  # the others found the mailing claimed
    assert winners[0].state == "sent" and winners[0].sent == 150
    assert_exactly_once(smtp_server, [f"r{i}@example.test" for i in range(150)])
    with any_db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(MailingRecipient)) == 150


def test_suppression_and_consent_apply_at_send_time(tmp_path: Path, any_db: Database, smtp_server: Any) -> None:
    contact_ids = seed_contacts(any_db, 12)
    seed_contacts(any_db, 3, consent=False, prefix="n")
    mailing_id = make_mailing(any_db)
    settings = mailing_settings(tmp_path, any_db, smtp_server.url)
    sending.start_due(any_db)  # ledger filled now: the 12 consenting contacts
    with any_db.transaction() as s:
        suppress(s, "r1@example.test", SuppressionReason.unsubscribed)
        suppress(s, "R2@example.test", SuppressionReason.hard_bounce)
        s.execute(update(Contact).where(Contact.id == contact_ids[3]).values(marketing_consent=False))
    results = run_to_end(any_db, settings, mailing_id)
    assert results[-1].state == "sent"
    expected = [f"r{i}@example.test" for i in range(12) if i not in (1, 2, 3)]
    assert_exactly_once(smtp_server, expected)
    with any_db.transaction() as s:
        reasons = dict(
            s.execute(
                select(MailingRecipient.address, MailingRecipient.error).where(MailingRecipient.status == "skipped")
            ).all()
        )
    reasons = {address: shown(error) for address, error in reasons.items()}
    assert reasons == {
        "r1@example.test": "unsubscribed",
        "r2@example.test": "suppressed: hard bounce",
        "r3@example.test": "no marketing consent",
    }


def test_template_failure_and_bad_address_affect_only_that_recipient(
    tmp_path: Path, db: Database, smtp_server: Any
) -> None:
    seed_contacts(db, 6)
    with db.transaction() as s:
        s.execute(
            update(EmailAddress).where(EmailAddress.address == "r4@example.test").values(address="not an address")
        )
        # The template divides by the length of the city: empty for one relation.
        s.execute(update(Relation).where(Relation.name == "Company r2").values(city=""))
    mailing_id = make_mailing(db, text="{{ 10 // relation.city|length }} for {{ contact.name }}", html="")
    settings = mailing_settings(tmp_path, db, smtp_server.url)
    results = run_to_end(db, settings, mailing_id)
    assert results[-1].state == "sent"
    assert_exactly_once(smtp_server, ["r0@example.test", "r1@example.test", "r3@example.test", "r5@example.test"])
    with db.transaction() as s:
        rows = dict(
            s.execute(
                select(MailingRecipient.status, MailingRecipient.error).where(MailingRecipient.status != "sent")
            ).all()
        )
    assert shown(rows["failed"]).startswith("template:") and "division" in rows["failed"]
    assert shown(rows["skipped"]) == "not a valid e-mail address: not an address"


def test_addresses_beyond_ascii_are_skipped_with_the_reason(tmp_path: Path, db: Database, smtp_server: Any) -> None:
    """hub sends without SMTPUTF8: such an address is skipped and says why; the others go out."""
    seed_contacts(db, 5)
    with db.transaction() as s:
        for old, new in (("r1@example.test", "jörg@example.test"), ("r3@example.test", "info@bücher.test")):
            s.execute(update(EmailAddress).where(EmailAddress.address == old).values(address=new, address_key=new))
    mailing_id = make_mailing(db)
    results = run_to_end(db, mailing_settings(tmp_path, db, smtp_server.url), mailing_id)
    assert results[-1].state == "sent"
    assert_exactly_once(smtp_server, ["r0@example.test", "r2@example.test", "r4@example.test"])
    with db.transaction() as s:
        skipped = dict(
            s.execute(
                select(MailingRecipient.address, MailingRecipient.error).where(MailingRecipient.status == "skipped")
            ).all()
        )
    assert {address: shown(why) for address, why in skipped.items()} == {
        address: f"{address} has characters outside ASCII, which need SMTPUTF8; hub does not send with it"
        for address in ("jörg@example.test", "info@bücher.test")
    }


def test_relay_refusing_a_recipient_fails_it_and_suppresses(tmp_path: Path, db: Database, smtp_server: Any) -> None:
    seed_contacts(db, 5)
    smtp_server.refuse_recipient("r2@example.test", 550)
    mailing_id = make_mailing(db)
    settings = mailing_settings(tmp_path, db, smtp_server.url)
    results = run_to_end(db, settings, mailing_id)
    assert results[-1].state == "sent"
    assert sorted(smtp_server.recipients()) == [f"r{i}@example.test" for i in (0, 1, 3, 4)]
    with db.transaction() as s:
        error = s.scalar(select(MailingRecipient.error).where(MailingRecipient.status == "failed"))
        from hub.campaigns.bounces import is_suppressed

        assert is_suppressed(s, "r2@example.test") == "hard_bounce"
    assert error is not None and error.startswith("550")


def test_cli_sends_in_the_foreground_and_says_how_it_went(tmp_path: Path, any_db: Database, smtp_server: Any) -> None:
    """On PostgreSQL the command starts its sending processes ahead, while it fills the ledger;
    those of a command that ends without sending (a mailing already sent, or none) end with it,
    quietly (run() returns once every holder of the captured stderr has exited)."""
    import subprocess
    import sys

    from tests.conftest import settings_env

    db = any_db
    seed_contacts(db, 7)
    with db.transaction() as s:  # one without an address: skipped, and counted
        s.execute(update(EmailAddress).where(EmailAddress.address == "r6@example.test").values(contact_id=None))
    make_mailing(db, scheduled=False)  # a draft named "First": --now schedules and sends it
    settings = mailing_settings(tmp_path, db, smtp_server.url)
    env = settings_env(settings, HUB_SMTP_URL=smtp_server.url, HUB_BASE_URL="https://hub.example")
    hub = [sys.executable, "-m", "hub.cli", "campaign", "send"]
    done = subprocess.run([*hub, "First", "--now"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("sent 6 messages (0 failed, 1 skipped) in ") and last.endswith(" s")
    assert len(smtp_server.recipients()) == 6
    again = subprocess.run([*hub, "First", "--now"], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "is sent" in again.stderr
    missing = subprocess.run([*hub, "Nope", "--now"], env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "no mailing Nope" in missing.stderr
    assert not any("Traceback" in run.stderr for run in (done, again, missing))


@pytest.mark.parametrize(
    ("connections", "cores", "plan"),
    [(1, 2, [1]), (2, 2, [1, 1]), (3, 2, [2, 1]), (8, 2, [4, 4]), (2, 1, [2]), (3, 8, [1, 1, 1])],
)
def test_sessions_are_spread_over_at_most_one_process_per_core(connections: int, cores: int, plan: list[int]) -> None:
    assert sending.session_plan(connections, cores) == plan


# --- through a relay that announces PIPELINING (postfix and every common relay do) --------------------


class _PipeliningHandler(_Handler):
    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


class PipeliningServer(SmtpServer):
    """The recording test relay, announcing PIPELINING: aiosmtpd reads pipelined commands in order
    but does not say so, and without it a mailing takes smtplib's one-command-at-a-time path, so
    the pipelined one (hub.campaigns.pipelining, what every real relay gets) went untested."""

    def start(self) -> None:
        self._controller = Controller(
            _PipeliningHandler(self), hostname="127.0.0.1", port=self.port, decode_data=False, enable_SMTPUTF8=True
        )
        self._controller.start()


@pytest.fixture
def pipelining_server() -> Iterator[PipeliningServer]:
    server = PipeliningServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _message(to: str) -> bytes:
    return f"From: news@hub.example\r\nTo: {to}\r\nSubject: hello\r\n\r\n.a line that starts with a dot\r\n".encode()


def test_no_message_reaches_the_relay_before_the_previous_mark_is_settled(pipelining_server: PipeliningServer) -> None:
    # ``ready`` (the previous message's ledger mark) is waited for after the relay answered the
    # envelope and before the text goes: when it fails, the relay has nothing to deliver.
    settled: list[str] = []

    def mark_failed() -> None:
        settled.append("failed")
        raise RuntimeError("the ledger mark could not be committed")

    with PipeliningConnection(Relay.from_url(pipelining_server.url)) as smtp:
        with pytest.raises(RuntimeError, match="could not be committed"):
            smtp.send(
                _message("a@example.test"), sender="news@hub.example", recipients=["a@example.test"], ready=mark_failed
            )
        assert settled == ["failed"] and pipelining_server.received == []
        # A recipient the relay refuses: nothing to hand over, so nothing waited for.
        pipelining_server.refuse_recipient("b@example.test", 550)
        with pytest.raises(Refused) as refused:
            smtp.send(
                _message("b@example.test"),
                sender="news@hub.example",
                recipients=["b@example.test"],
                ready=lambda: settled.append("b"),
            )
        assert refused.value.code == 550 and not refused.value.temporary and settled == ["failed"]
        # The session dropped after the failed mark is opened again for the next message.
        smtp.send(
            _message("c@example.test"),
            sender="news@hub.example",
            recipients=["c@example.test"],
            ready=lambda: settled.append("c"),
        )
    assert settled == ["failed", "c"]
    assert pipelining_server.recipients() == ["c@example.test"]
    assert b"\r\n.a line that starts with a dot" in pipelining_server.received[0].data


@pytest.mark.parametrize("connections", [1, 2])
def test_every_recipient_once_through_a_pipelining_relay(
    tmp_path: Path, any_db: Database, pipelining_server: PipeliningServer, connections: int
) -> None:
    seed_contacts(any_db, 230)  # more than two chunks
    pipelining_server.refuse_recipient("r17@example.test", 550)  # refused at RCPT: failed
    pipelining_server.fail_next(451)  # the first message deferred after its text: sent later, once
    mailing_id = make_mailing(any_db)
    settings = mailing_settings(tmp_path, any_db, pipelining_server.url)
    results = run_to_end(any_db, settings, mailing_id, connections=connections)
    assert results[-1].state == "sent"
    assert_exactly_once(pipelining_server, [f"r{i}@example.test" for i in range(230) if i != 17])
    assert statuses(any_db, mailing_id) == Counter({"sent": 229, "failed": 1})
    with any_db.transaction() as s:
        ids = set(s.scalars(select(MailingRecipient.message_id).where(MailingRecipient.status == "sent")))
        doubtful = s.scalar(select(func.count()).where(MailingRecipient.in_doubt.is_(True)))
    assert ids == {m["Message-ID"] for m in pipelining_server.messages()}
    assert doubtful == 0


def test_pause_is_seen_through_the_marks(tmp_path: Path, any_db: Database, pipelining_server: PipeliningServer) -> None:
    # Every mark returns the mailing's state: a pause made while the run sends stops it with the
    # rest given back, and nothing is sent twice after resuming.
    seed_contacts(any_db, 150)
    mailing_id = make_mailing(any_db)
    settings = mailing_settings(tmp_path, any_db, pipelining_server.url)
    paused: list[int] = []

    def progress(done: int, _total: int) -> None:
        if done >= 30 and not paused:
            paused.append(done)
            with any_db.transaction() as s:
                pause(s, s.get(Mailing, mailing_id))

    results = run_to_end(any_db, settings, mailing_id, connections=1, progress=progress)
    assert results[-1].state == "paused"
    # (paused from the session's own progress call: the mark committed next returns "paused", and
    # the session stops before its next message, or the one after when a writer thread commits)
    assert 30 <= len(pipelining_server.recipients()) <= paused[0] + 2
    assert statuses(any_db, mailing_id)["sending"] == 0
    with any_db.transaction() as s:
        resume(s, s.get(Mailing, mailing_id))
    assert run_to_end(any_db, settings, mailing_id)[-1].state == "sent"
    assert_exactly_once(pipelining_server, [f"r{i}@example.test" for i in range(150)])


def _failing_mark(database: Database, address: str) -> tuple[list[str], list[str]]:
    """SQL that makes the database refuse to mark ``address`` sent (a real error from the database,
    as a full disk or a lost connection would give), and the SQL that takes that away again."""
    if database.url.startswith("sqlite"):
        return (
            [
                "CREATE TRIGGER fail_mark BEFORE UPDATE OF status ON mailing_recipient"
                f" WHEN NEW.status = 'sent' AND NEW.address = '{address}'"
                " BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"
            ],
            ["DROP TRIGGER fail_mark"],
        )
    return (
        [
            "CREATE FUNCTION fail_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.status = 'sent' AND NEW.address = '{address}' THEN RAISE EXCEPTION 'the disk is full';"
            " END IF; RETURN NEW; END $$",
            "CREATE TRIGGER fail_mark BEFORE UPDATE ON mailing_recipient FOR EACH ROW EXECUTE FUNCTION fail_mark()",
        ],
        ["DROP TRIGGER fail_mark ON mailing_recipient", "DROP FUNCTION fail_mark()"],
    )


def test_a_mark_that_fails_stops_the_next_message_before_its_text(
    tmp_path: Path, any_db: Database, pipelining_server: PipeliningServer
) -> None:
    # r5 is accepted by the relay but its ledger mark fails. r6's envelope is already with the relay
    # when the session waits for that mark: the session ends there, so r6 is not delivered, and the
    # next run sends r6 once and r5 again, marked in doubt (the one documented duplicate).
    from sqlalchemy import text

    seed_contacts(any_db, 30)
    mailing_id = make_mailing(any_db)
    settings = mailing_settings(tmp_path, any_db, pipelining_server.url)
    create, drop = _failing_mark(any_db, "r5@example.test")
    with any_db.transaction() as s:
        for statement in create:
            s.execute(text(statement))
    sending.start_due(any_db)
    result = sending.send_mailing(any_db, settings, mailing_id, retry_base=0.0, connections=1)
    assert result is not None and result.state == "sending"  # stopped with the error, to be tried again
    assert pipelining_server.recipients() == [f"r{i}@example.test" for i in range(6)]
    with any_db.transaction() as s:
        mailing = s.get(Mailing, mailing_id)
        assert mailing is not None and "the disk is full" in mailing.last_error
        for statement in drop:
            s.execute(text(statement))
    assert statuses(any_db, mailing_id) == Counter({"sent": 5, "sending": 25})

    assert run_to_end(any_db, settings, mailing_id, connections=1)[-1].state == "sent"
    received = Counter(pipelining_server.recipients())
    assert sorted(received) == sorted(f"r{i}@example.test" for i in range(30))
    assert {a for a, n in received.items() if n > 1} == {"r5@example.test"}
    with any_db.transaction() as s:
        doubtful = s.scalars(select(MailingRecipient.address).where(MailingRecipient.in_doubt.is_(True))).all()
    assert doubtful == ["r5@example.test"]
