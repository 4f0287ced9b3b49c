"""One message the database would refuse (a lone surrogate from a UTF-7 part, a Message-ID longer
than its column) never stops its folder: it is stored as well as can be, or quarantined with the
reason, and the messages around it are stored — on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from hub.config import Settings
from hub.db import Database
from hub.models import Email, EmailLocation, EmailParticipant, MailQuarantine
from tests.mail_fixtures import MailAccount, sync_account

# ASCII on the wire (so the server keeps it as it is), a lone surrogate once decoded as UTF-7.
SURROGATE = (
    b"From: Anna <anna@bakker.example.nl>\r\nTo: staff@hub.example\r\nSubject: utf-7\r\n"
    b"Message-ID: <utf7@test>\r\nContent-Type: text/plain; charset=utf-7\r\n\r\nbroken +2D0- text\r\n"
)
LONG_ID = b"From: anna@bakker.example.nl\r\nSubject: long id\r\nMessage-ID: <" + b"x" * 700 + b"@test>\r\n\r\nbody\r\n"


def fine(n: int) -> bytes:
    return f"From: kees@visser.example.nl\r\nSubject: fine {n}\r\nMessage-ID: <fine{n}@test>\r\n\r\nok\r\n".encode()


def count(database: Database, model: type) -> int:
    with database.transaction() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def fill(account: MailAccount) -> None:
    client = account.client()
    for raw in (fine(1), SURROGATE, LONG_ID, fine(2)):
        client.append("INBOX", raw)
    client.logout()


def test_odd_text_is_stored_as_well_as_can_be(
    any_db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    account = mail_account(database=any_db)
    fill(account)
    result = sync_account(any_db, settings, account)
    assert (result.new, result.quarantined) == (4, 0)
    assert count(any_db, EmailLocation) == 4  # the long-id message has its place too
    with any_db.transaction() as s:
        utf7 = s.scalars(select(Email).where(Email.message_id == "<utf7@test>")).one()
        assert utf7.text_body == "broken \ufffd text\r\n"
        assert "characters no database can store were replaced" in utf7.problems
        long_id = s.scalars(select(Email).where(Email.subject == "long id")).one()
        assert long_id.message_id == "" and long_id.message_key.startswith("c:")
        assert s.scalar(
            select(func.count()).select_from(EmailParticipant).where(EmailParticipant.email_id == long_id.id)
        )
    assert sync_account(any_db, settings, account).new == 0


def test_a_message_the_database_refuses_is_quarantined_and_the_folder_goes_on(
    any_db: Database,
    settings: Settings,
    mail_account: Callable[..., MailAccount],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hub.mail.parse as parse_module
    from hub.mail import parse_helper

    # A case the parser does not foresee: here, it no longer replaces what no database stores (parsed
    # in this process, where the patch applies, not in the helper).
    monkeypatch.setattr(parse_module, "_UNSTORABLE", re.compile("(?!)"))
    monkeypatch.setattr(parse_helper, "_shared_helper", lambda: None)
    account = mail_account(database=any_db)
    fill(account)
    result = sync_account(any_db, settings, account)
    assert (result.messages, result.new, result.quarantined) == (4, 3, 1)
    with any_db.transaction() as s:
        quarantined = s.scalars(select(MailQuarantine)).one()
        assert quarantined.reason.startswith("the database refused it: ")
        assert len(quarantined.reason) < 400  # the database's words, not the whole message
    assert count(any_db, Email) == 3 and count(any_db, EmailLocation) == 3
    client = account.client()
    client.append("INBOX", fine(3))
    client.logout()
    again = sync_account(any_db, settings, account)
    assert (again.new, again.quarantined) == (1, 0)  # the folder moved on past the bad message
    assert count(any_db, Email) == 4 and count(any_db, MailQuarantine) == 1


def test_a_message_the_parser_cannot_finish_is_quarantined_and_the_folder_goes_on(
    db: Database,
    settings: Settings,
    mail_account: Callable[..., MailAccount],
    monkeypatch: pytest.MonkeyPatch,
    parser_trap: bytes,
) -> None:
    import hub.mail.sync as sync_module

    # Small batches of big messages: while the helper is stuck, the next batch, already downloaded,
    # is blocked writing into its full pipe; stopping the stuck helper must free that too.
    monkeypatch.setattr(sync_module, "BATCH", 2)
    padding = "x" * 60_000
    account = mail_account(database=db)
    client = account.client()
    for n in range(6):
        client.append("INBOX", fine(n)[:-4] + f"\r\n{padding}\r\n".encode())
        if n == 2:
            client.append(
                "INBOX", b"From: x@y.example\r\nSubject: " + parser_trap + b"\r\nMessage-ID: <trap@test>\r\n\r\nx\r\n"
            )
    result = sync_account(db, settings, account)
    assert (result.messages, result.new, result.quarantined) == (7, 6, 1)
    with db.transaction() as s:
        assert s.scalars(select(MailQuarantine.reason)).one() == (
            "could not be parsed: the parser did not finish within 2 s"
        )
    client.append("INBOX", fine(7))
    client.logout()
    assert sync_account(db, settings, account).new == 1  # the folder moved on past the message
