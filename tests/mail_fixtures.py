"""Mail fixtures: a real Dovecot for the whole run, a fresh IMAP account and hub mailbox per test."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from imapclient import IMAPClient

from hub.blobs import BlobStore
from hub.config import Settings
from hub.db import Database
from hub.mail import parse_helper
from hub.mail.mailboxes import MailboxInput, save_mailbox
from hub.mail.sync import SyncResult, sync_mailbox
from tests.mail_server import ImapServer, dovecot_server

_accounts = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[ImapServer]:
    # Accounts are made up front: Dovecot re-reads its passwd file only when its mtime changes,
    # which two additions within one second would not do.
    with dovecot_server({f"user{n}": "imap-secret" for n in range(1, 101)}) as server:
        yield server


@pytest.fixture
def parser_trap(monkeypatch: pytest.MonkeyPatch) -> Iterator[bytes]:
    """A word the parse helper never gets through (its test hook), and 2-second time limits.

    The helper is restarted around the test: the hook is read from the environment it starts with.
    """
    parse_helper.stop_helper()
    monkeypatch.setenv("HUB_TEST_PARSE_HELPER_HANGS_ON", "parser-trap")
    monkeypatch.setattr(parse_helper, "BATCH_SECONDS", 2.0)
    monkeypatch.setattr(parse_helper, "MESSAGE_SECONDS", 2.0)
    yield b"parser-trap"
    parse_helper.stop_helper()


def sync_account(database: Database, settings: Settings, account: MailAccount, **options: Any) -> SyncResult:
    """The real sync of the account's hub mailbox (forced past any backoff unless told otherwise)."""
    result = sync_mailbox(
        database,
        BlobStore(settings.documents_dir),
        account.mailbox_id,
        secret_key=settings.secret_key,
        allowed_hosts=settings.mail_allowed_hosts,
        **{"force": True, **options},
    )
    assert result is not None, "another sync holds the mailbox"
    return result


@dataclass
class MailAccount:
    server: ImapServer
    username: str
    password: str
    mailbox_id: int

    def client(self) -> IMAPClient:
        client = IMAPClient(self.server.host, port=self.server.port, ssl=False, timeout=10)
        client.login(self.username, self.password)
        return client


@pytest.fixture
def mail_account(dovecot: ImapServer, db: Database, settings: Settings) -> Callable[..., MailAccount]:
    def make(
        owner_id: int | None = None,
        folders: str = "",
        username: str | None = None,
        database: Database | None = None,
        sharing: str = "only_me",
        never_share: str = "",
    ) -> MailAccount:
        """A fresh IMAP account and its hub mailbox (in ``database``, default the test's SQLite ``db``).

        A personal mailbox (``owner_id``) shares nothing unless ``sharing="colleagues"``, as in hub."""
        name = username or f"user{next(_accounts)}"
        assert name in dovecot.users, "out of test IMAP accounts: raise the number in the dovecot fixture"
        with (database or db).transaction() as s:
            box = save_mailbox(
                s,
                settings.secret_key,
                MailboxInput(
                    host=dovecot.host,
                    port=dovecot.port,
                    security="none",
                    username=name,
                    password="imap-secret",
                    owner_id=owner_id,
                    folders=folders,
                    sharing=sharing,
                    never_share=never_share,
                ),
                allowed_hosts=settings.mail_allowed_hosts,
            )
            return MailAccount(dovecot, name, "imap-secret", box.id)

    return make
