"""The corpus of nasty mail (tests/mail_corpus.py) delivered into a real Dovecot mailbox and synced by
the real sync into SQLite and PostgreSQL: every stored e-mail shows what a user must see (subject,
sender, sent_at in UTC, bodies, attachments with their bytes, kind and details)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from hub.blobs import BlobStore
from hub.config import Settings
from hub.db import Database
from hub.mail.identity import content_key
from hub.mail.parse import parse_message
from hub.mail.read import attachment_bytes
from hub.models import Email
from tests.mail_corpus import Seen, check, corpus
from tests.mail_fixtures import MailAccount, sync_account
from tests.unit.test_mail_corpus import parse_again

# The arrival time the server records: a message without a readable Date is dated by it.
ARRIVED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _seen(email: Email, blobs: BlobStore) -> Seen:
    sent_at = email.sent_at
    if sent_at is not None and sent_at.tzinfo is None:  # a naive value is UTC by the column's contract
        sent_at = sent_at.replace(tzinfo=UTC)
    return Seen(
        subject=email.subject,
        from_address=email.from_address,
        from_name=email.from_name,
        sent_at=sent_at,
        message_id=email.message_id,
        in_reply_to=email.in_reply_to,
        references=email.references.split(),
        text_body=email.text_body,
        html_body=email.html_body,
        attachments=[(a.filename, a.content_type, attachment_bytes(blobs, a)) for a in email.attachments],
        kind=email.kind,
        details=json.loads(email.details) if email.details else {},
        problems=email.problems.splitlines(),
    )


def test_the_corpus_synced_shows_every_message_as_a_mail_client_does(
    any_db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    samples = corpus()
    account = mail_account(database=any_db)
    client = account.client()
    for sample in samples:
        client.append("INBOX", sample.raw, msg_time=ARRIVED)
    client.logout()
    blobs = BlobStore(settings.documents_dir)
    for _ in range(10):
        result = sync_account(any_db, settings, account)
        if not result.more:
            break
    failures: dict[str, list[str]] = {}
    with any_db.transaction() as s:
        emails = {e.message_key: e for e in s.scalars(select(Email).options(selectinload(Email.attachments))).all()}
        assert len(emails) == len(samples)
        for sample in samples:
            email = emails.get(content_key(sample.raw))
            if email is None:
                failures[sample.name] = ["not stored (or stored under another key)"]
                continue
            seen = _seen(email, blobs)
            # No readable Date: the parser leaves sent_at empty and the sync dates it by its arrival.
            errors = check(replace(sample.expected, no_sent_at=False), seen, parse_again)
            if sample.expected.no_sent_at and seen.sent_at != ARRIVED:  # the sync dates it by its arrival
                errors.append(f"sent_at: want the arrival time {ARRIVED}, got {seen.sent_at}")
            # What the sync stored is what the parser gives for the same bytes.
            parsed = parse_message(sample.raw)
            if (email.kind, email.subject) != (parsed.kind, parsed.subject):
                errors.append(f"stored {(email.kind, email.subject)!r}, parsed {(parsed.kind, parsed.subject)!r}")
            if errors:
                failures[sample.name] = errors
    assert failures == {}
