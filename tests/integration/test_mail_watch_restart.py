"""A watcher whose IMAP server goes away (stopped, or killed) notices at once, reconnects once the server
is back and wakes the sync; on a server without NOTIFY every synced folder is still watched, within
the connection limit.

These tests start their own Dovecot: the session-wide one is shared and must not be restarted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

import hub.mail.watch as watch_module
from hub.config import Settings
from hub.db import Database
from hub.mail.mailboxes import MailboxInput, save_mailbox
from hub.mail.watch import watch, watcher_states
from tests.integration.test_mail_sync import message
from tests.integration.test_mail_watch import Wakes, running_watch, started, wait_until
from tests.mail_server import ImapServer, dovecot_server
from tests.servers import free_port

USER, PASSWORD = "staff", "imap-secret"


@pytest.fixture
def own_dovecot() -> Iterator[ImapServer]:
    with dovecot_server({USER: PASSWORD}) as server:
        yield server


@pytest.fixture
def dovecot_without_notify() -> Iterator[ImapServer]:
    with dovecot_server({USER: PASSWORD}, notify=False) as server:
        yield server


def add_mailbox(db: Database, settings: Settings, host: str, port: int, folders: str = "") -> int:
    with db.transaction() as s:
        box = save_mailbox(
            s,
            settings.secret_key,
            MailboxInput(host=host, port=port, security="none", username=USER, password=PASSWORD, folders=folders),
            allowed_hosts=settings.mail_allowed_hosts,
        )
        return box.id


def deliver(server: ImapServer, folder: str = "INBOX", subject: str = "after the restart") -> None:
    from imapclient import IMAPClient

    client = IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
    client.login(USER, PASSWORD)
    client.append(folder, message(subject=subject))
    client.logout()


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_watcher_comes_back_after_a_server_restart(
    how: str,
    own_dovecot: ImapServer,
    db: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An IDLE round far longer than the waits below: the drop can only be seen by the watcher
    # noticing end of file, not by a round ending.
    monkeypatch.setattr(watch_module, "IDLE_SECONDS", 3600)
    caplog.set_level(logging.INFO, logger="hub.mail.watch")
    mailbox_id = add_mailbox(db, settings, own_dovecot.host, own_dovecot.port)
    wakes = Wakes()
    with running_watch(db, settings, wakes):
        started(wakes, mailbox_id)
        if how == "stopped":
            own_dovecot.stop()
        else:
            own_dovecot.kill()
        assert wait_until(lambda: logged(caplog, f"mailbox {mailbox_id} watcher: connection dropped"), 15), [
            r.getMessage() for r in caplog.records
        ]
        assert "reconnecting in" in watcher_states()[mailbox_id].text
        seen = wakes.count(mailbox_id)
        own_dovecot.start()
        # Back: a catch-up wake, since mail may have come in while the server was away...
        assert wakes.wait_beyond(mailbox_id, seen, 30 + watch_module.BACKOFF_MAX), "no wake after the restart"
        assert wait_until(lambda: watcher_states()[mailbox_id].text.startswith("watching"), 15)
        # ...and new mail wakes it again.
        seen = wakes.count(mailbox_id)
        deliver(own_dovecot)
        assert wakes.wait_beyond(mailbox_id, seen, 15), "new mail after the restart did not wake the mailbox"


def test_stop_is_honoured_while_waiting_to_reconnect(
    db: Database, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.mail.watch")
    mailbox_id = add_mailbox(db, settings, "127.0.0.1", free_port())  # nothing listens there
    stop = threading.Event()
    thread = threading.Thread(
        target=watch,
        args=(db, settings.secret_key, Wakes(), stop),
        kwargs={"allowed_hosts": settings.mail_allowed_hosts},
        daemon=True,
    )
    thread.start()
    assert wait_until(lambda: logged(caplog, f"mailbox {mailbox_id} watcher: cannot connect"), 15)
    assert "reconnecting in" in watcher_states()[mailbox_id].text
    stop.set()
    thread.join(watch_module.STOP_SECONDS + 2 * watch_module.CHECK_SECONDS)
    assert not thread.is_alive()


def test_without_notify_each_folder_is_watched_within_the_connection_limit(
    dovecot_without_notify: ImapServer,
    db: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = dovecot_without_notify
    monkeypatch.setattr(watch_module, "IDLE_SECONDS", 3600)
    monkeypatch.setattr(watch_module, "POLL_SECONDS", 1)
    folders = ["INBOX", "Sent", "Projects", "Archive", "Clients"]
    from imapclient import IMAPClient

    client = IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
    client.login(USER, PASSWORD)
    assert b"NOTIFY" not in client.capabilities()
    for folder in ("Projects", "Archive", "Clients"):
        client.create_folder(folder)
    client.logout()
    mailbox_id = add_mailbox(db, settings, server.host, server.port, folders="\n".join(folders))
    wakes = Wakes()
    with running_watch(db, settings, wakes):
        started(wakes, mailbox_id)
        limit = watch_module.MAX_CONNECTIONS
        assert wait_until(
            lambda: (
                watcher_states()[mailbox_id].text
                == f"watching {', '.join(folders[:limit])} (IDLE, {limit} connections), "
                f"polling {', '.join(folders[limit:])} every 1 s"
            ),
            15,
        ), watcher_states()[mailbox_id]
        # Each connection wakes the sync once when it starts listening.
        assert wait_until(lambda: wakes.count(mailbox_id) >= limit, 15)
        ours = f"watch-mailbox-{mailbox_id}"
        threads = [t.name for t in threading.enumerate() if t.name == ours or t.name.startswith(f"{ours}-")]
        assert len(threads) == limit, threads
        # A folder with its own IDLE connection, then one that is polled.
        for folder in ("Projects", "Clients"):
            seen = wakes.count(mailbox_id)
            deliver(server, folder, subject=f"into {folder}")
            assert wakes.wait_beyond(mailbox_id, seen, 15), f"mail in {folder} did not wake the mailbox"
