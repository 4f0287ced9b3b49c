"""Near-real-time mail: one IMAP IDLE connection per mailbox wakes that mailbox's sync.

The watcher only says "something changed"; the sync itself (STATUS, fetch, store) runs as usual,
so a missed notification costs a delay until the next poll, never mail. Connections re-IDLE every
few minutes (servers drop idle clients after ~30) and reconnect with backoff after errors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import select

from hub.db import Database
from hub.mail.imap import MailServerError, connect
from hub.models import Mailbox
from hub.secrets import SecretUnreadable, decrypt

log = logging.getLogger(__name__)
IDLE_SECONDS = 240
RELOAD_SECONDS = 60


class MailboxWatch(threading.Thread):
    def __init__(
        self,
        database: Database,
        secret_key: str,
        allowed_hosts: str,
        mailbox_id: int,
        on_change: Callable[[int], None],
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"watch-mailbox-{mailbox_id}", daemon=True)
        self.database, self.secret_key, self.mailbox_id = database, secret_key, mailbox_id
        self.allowed_hosts = allowed_hosts
        self.on_change, self.stop = on_change, stop

    def run(self) -> None:
        delay = 1.0
        while not self.stop.is_set():
            try:
                self._watch_once()
                delay = 1.0
            except (MailServerError, SecretUnreadable, OSError) as exc:
                log.warning("mailbox %s watcher: %s; retrying in %.0f s", self.mailbox_id, exc, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 300)

    def _watch_once(self) -> None:
        with self.database.transaction() as session:
            box = session.get(Mailbox, self.mailbox_id)
            if box is None or not box.active:
                self.stop.wait(RELOAD_SECONDS)
                return
            host, port, security, username = box.host, box.port, box.security.value, box.username
            password = decrypt(self.secret_key, box.password_encrypted)
        with connect(host, port, security, username, password, allowed_hosts=self.allowed_hosts) as client:
            client.select_folder("INBOX", readonly=True)
            # Anything that arrived while we were not listening.
            self.on_change(self.mailbox_id)
            while not self.stop.is_set():
                client.idle()
                started = time.monotonic()
                changed = False
                while not self.stop.is_set() and time.monotonic() - started < IDLE_SECONDS:
                    responses = client.idle_check(timeout=1)
                    if any(_is_change(r) for r in responses):
                        changed = True
                        break
                client.idle_done()
                if changed:
                    self.on_change(self.mailbox_id)


def _is_change(response: object) -> bool:
    return (
        isinstance(response, tuple)
        and len(response) >= 2
        and response[1] in (b"EXISTS", b"EXPUNGE", b"FETCH", b"RECENT")
    )


def watch(
    database: Database,
    secret_key: str,
    on_change: Callable[[int], None],
    stop: threading.Event,
    *,
    allowed_hosts: str,
) -> None:
    """Keep one watcher per active mailbox until ``stop`` is set; picks up new mailboxes as they come."""
    watchers: dict[int, MailboxWatch] = {}
    while not stop.is_set():
        with database.transaction() as session:
            active = set(session.scalars(select(Mailbox.id).where(Mailbox.active.is_(True))))
        for mailbox_id in active - watchers.keys():
            watchers[mailbox_id] = MailboxWatch(database, secret_key, allowed_hosts, mailbox_id, on_change, stop)
            watchers[mailbox_id].start()
        for mailbox_id in [m for m, w in watchers.items() if not w.is_alive()]:
            del watchers[mailbox_id]
        stop.wait(RELOAD_SECONDS)
