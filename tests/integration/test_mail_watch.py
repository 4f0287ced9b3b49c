"""The IDLE watcher wakes a mailbox's sync when the server reports new mail."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from hub.config import Settings
from hub.db import Database
from hub.mail.watch import watch
from tests.integration.test_mail_sync import message
from tests.mail_fixtures import MailAccount


def test_append_wakes_the_mailbox_within_seconds(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    account = mail_account()
    woken: list[tuple[int, float]] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=watch,
        args=(db, settings.secret_key, lambda m: woken.append((m, time.monotonic())), stop),
        kwargs={"allowed_hosts": settings.mail_allowed_hosts},
        daemon=True,
    )
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not woken and time.monotonic() < deadline:  # the catch-up wake on connect
            time.sleep(0.05)
        assert woken and woken[0][0] == account.mailbox_id
        time.sleep(0.5)  # let it settle into IDLE
        woken.clear()
        client = account.client()
        appended = time.monotonic()
        client.append("INBOX", message(subject="arrives now"))
        client.logout()
        while not woken and time.monotonic() < appended + 15:
            time.sleep(0.02)
        assert woken, "the watcher did not notice the new mail"
        assert woken[0][0] == account.mailbox_id
        assert woken[0][1] - appended < 10
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
