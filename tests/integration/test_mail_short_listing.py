"""A server whose SEARCH lists fewer messages than its SELECT said it holds (a half-answered
listing) makes the sync remove nothing; the deletion is noticed on a later, complete sync."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select

from hub.config import Settings
from hub.db import Database
from hub.models import EmailLocation
from tests.mail_fixtures import MailAccount, sync_account


def locations(db: Database) -> int:
    with db.transaction() as s:
        return s.scalar(select(func.count()).select_from(EmailLocation)) or 0


def mail(n: int) -> bytes:
    return f"From: a@b.example\r\nSubject: {n}\r\nMessage-ID: <short{n}@test>\r\n\r\nbody\r\n".encode()


def test_a_short_listing_removes_nothing(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount], monkeypatch: pytest.MonkeyPatch
) -> None:
    account = mail_account(folders="INBOX")
    client = account.client()
    for n in range(3):
        client.append("INBOX", mail(n))
    sync_account(db, settings, account)
    assert locations(db) == 3

    real_search = IMAPClient.search

    def half_answered(self: IMAPClient, criteria: Any = "ALL", charset: str | None = None) -> list[int]:
        found = real_search(self, criteria, charset)
        return found[:1] if criteria == ["ALL"] else found

    client.append("INBOX", mail(3))  # something changed: the folder is not skipped
    with monkeypatch.context() as patch:
        patch.setattr(IMAPClient, "search", half_answered)
        assert sync_account(db, settings, account).new == 1
    assert locations(db) == 4  # nothing unlinked on the strength of a short answer

    client.select_folder("INBOX")
    client.delete_messages(client.search(["ALL"])[:1])
    client.expunge()
    client.logout()
    again = sync_account(db, settings, account)
    assert again.skipped_folders == 0 and locations(db) == 3  # the real deletion is seen
