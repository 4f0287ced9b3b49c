"""Two mailboxes holding the same messages, synced at the same moment by two workers (PostgreSQL):
each message is one e-mail with its participants, relation links and count once."""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from hub.config import Settings
from hub.crm.importer import import_relations
from hub.db import Database
from hub.mail.sync import SyncResult
from hub.models import Email, EmailLocation, EmailParticipant, EmailRelation, Mailbox
from tests.mail_fixtures import MailAccount, sync_account

MESSAGES = 200


def mail(n: int) -> bytes:
    return (
        f"From: Anna <anna@bakker.example.nl>\r\nTo: staff@hub.example, sales@hub.example\r\n"
        f"Subject: order {n}\r\nMessage-ID: <both{n}@test>\r\n\r\nbody {n}\r\n"
    ).encode()


def test_the_same_mail_synced_by_two_workers_at_once_is_stored_once(
    pg_db: Database, settings: Settings, mail_account: Callable[..., MailAccount], monkeypatch: pytest.MonkeyPatch
) -> None:
    import hub.mail.sync as sync_module

    monkeypatch.setattr(sync_module, "BATCH", 10)  # many small transactions: many chances to interleave
    import_relations(
        pg_db, io.BytesIO(b"relation,domain,contact_name,email,phone\nBakker BV,,Anna,anna@bakker.example.nl,\n")
    )
    accounts = [mail_account(database=pg_db), mail_account(database=pg_db)]
    for account in accounts:
        client = account.client()
        for n in range(MESSAGES):
            client.append("INBOX", mail(n))
        client.logout()

    def run(account: MailAccount) -> SyncResult | None:
        return sync_account(pg_db, settings, account)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, accounts))
    assert all(results)
    assert sum(r.new for r in results if r) == MESSAGES
    with pg_db.transaction() as s:

        def count(model: type) -> int:
            return s.scalar(select(func.count()).select_from(model)) or 0

        assert count(Email) == MESSAGES and count(EmailLocation) == 2 * MESSAGES
        assert count(EmailParticipant) == 3 * MESSAGES  # from, two to: once each
        assert count(EmailRelation) == MESSAGES
        # Each mailbox counts the messages it holds; the e-mail itself is stored once.
        assert list(s.scalars(select(Mailbox.messages_stored))) == [MESSAGES, MESSAGES]
