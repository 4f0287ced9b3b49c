"""A connection dropped in the middle of a sync: the mailbox is marked failing in plain words, and the
next sync finishes the job without losing or duplicating anything."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select, update

from hub.config import Settings
from hub.db import Database
from hub.mail.imap import MailServerError
from hub.models import Email, EmailLocation, Mailbox
from tests.integration.test_mail_sync import message
from tests.mail_fixtures import MailAccount, sync_account
from tests.mail_server import ImapServer


class CuttingProxy:
    """Forwards a TCP port to Dovecot and cuts every connection after ``budget`` bytes from the server."""

    def __init__(self, target: tuple[str, int], budget: int) -> None:
        self.target, self.budget = target, budget
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, self.budget), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, budget: int | None) -> None:
        sent = 0
        try:
            while data := source.recv(65536):
                if budget is not None and sent + len(data) > budget:
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy(dovecot: ImapServer) -> Iterator[CuttingProxy]:
    cutting = CuttingProxy((dovecot.host, dovecot.port), budget=60_000)
    yield cutting
    cutting.close()


def test_dropped_connection_then_resume(
    db: Database,
    settings: Settings,
    mail_account: Callable[..., MailAccount],
    proxy: CuttingProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hub.mail.sync as sync_module

    monkeypatch.setattr(sync_module, "BATCH", 10)
    account = mail_account()
    client = account.client()
    for i in range(60):
        client.append("INBOX", message(subject=f"d{i}", msgid=f"<d{i}@test>", body="x" * 2000))
    client.logout()
    with db.transaction() as s:
        s.execute(update(Mailbox).where(Mailbox.id == account.mailbox_id).values(port=proxy.port))
    with pytest.raises(MailServerError, match=r"dropped|did not answer"):
        sync_account(db, settings, account)
    with db.transaction() as s:
        box = s.get_one(Mailbox, account.mailbox_id)
        assert box.failures == 1 and box.last_error
        partial = s.scalar(select(func.count()).select_from(Email)) or 0
    assert 0 < partial < 60  # some batches made it before the cut
    with db.transaction() as s:  # the network is back
        s.execute(update(Mailbox).where(Mailbox.id == account.mailbox_id).values(port=account.server.port))
    assert sync_account(db, settings, account).new == 60 - partial
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Email)) == 60
        assert s.scalar(select(func.count()).select_from(EmailLocation)) == 60
        box = s.get_one(Mailbox, account.mailbox_id)
        assert box.failures == 0 and box.last_error == ""
