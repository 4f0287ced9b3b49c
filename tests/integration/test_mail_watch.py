"""The watcher wakes a mailbox's sync when the server reports new mail in any folder the sync syncs,
and stops promptly when told to."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

import hub.mail.watch as watch_module
from hub.config import Settings
from hub.db import Database
from hub.mail.watch import watch, watcher_states
from tests.integration.test_mail_sync import message
from tests.mail_fixtures import MailAccount


class Wakes:
    """Records on_change calls; tests wait for them with a bound, never assert on how long they took."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []
        self._changed = threading.Condition()  # its lock is re-entrant, so count() works inside wait_for

    def __call__(self, mailbox_id: int) -> None:
        with self._changed:
            self.calls.append((mailbox_id, time.monotonic()))
            self._changed.notify_all()

    def count(self, mailbox_id: int) -> int:
        with self._changed:
            return sum(1 for m, _t in self.calls if m == mailbox_id)

    def wait_beyond(self, mailbox_id: int, seen: int, timeout: float) -> bool:
        """Wait until ``mailbox_id`` has been woken more than ``seen`` times; False after ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: self.count(mailbox_id) > seen, timeout)


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def watching(mailbox_id: int) -> bool:
    state = watcher_states().get(mailbox_id)
    return state is not None and state.text.startswith("watching")


@contextmanager
def running_watch(db: Database, settings: Settings, wakes: Wakes) -> Iterator[threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(
        target=watch,
        args=(db, settings.secret_key, wakes, stop),
        kwargs={"allowed_hosts": settings.mail_allowed_hosts},
        daemon=True,
    )
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(watch_module.STOP_SECONDS + 2 * watch_module.CHECK_SECONDS)


def started(wakes: Wakes, mailbox_id: int) -> int:
    """Wait for the catch-up wake and for the watcher to be listening; the number of wakes so far."""
    assert wakes.wait_beyond(mailbox_id, 0, 15), "no catch-up wake on connect"
    assert wait_until(lambda: watching(mailbox_id), 15), watcher_states().get(mailbox_id)
    return wakes.count(mailbox_id)


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


def test_mail_in_sent_wakes_the_mailbox(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only NOTIFY can report Sent before the round ends: a new round would not re-check it.
    monkeypatch.setattr(watch_module, "IDLE_SECONDS", 3600)
    account = mail_account()
    wakes = Wakes()
    with running_watch(db, settings, wakes):
        seen = started(wakes, account.mailbox_id)
        assert watcher_states()[account.mailbox_id].text == "watching INBOX, Sent (NOTIFY)"
        client = account.client()
        client.append("Sent", message(subject="sent from a phone"))
        client.logout()
        assert wakes.wait_beyond(account.mailbox_id, seen, 15), "mail in Sent did not wake the mailbox"


def test_mail_in_a_configured_folder_wakes_the_mailbox(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch_module, "IDLE_SECONDS", 3600)
    account = mail_account(folders="INBOX\nProjects/Acme bv")
    client = account.client()
    client.create_folder("Projects/Acme bv")
    client.logout()
    wakes = Wakes()
    with running_watch(db, settings, wakes):
        seen = started(wakes, account.mailbox_id)
        assert watcher_states()[account.mailbox_id].text == "watching INBOX, Projects/Acme bv (NOTIFY)"
        client = account.client()
        client.append("Projects/Acme bv", message(subject="filed by a rule"))
        client.logout()
        assert wakes.wait_beyond(account.mailbox_id, seen, 15), "mail in the configured folder did not wake it"


def test_stop_ends_every_watcher_thread_promptly(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    account = mail_account()
    wakes = Wakes()
    stop = threading.Event()
    thread = threading.Thread(
        target=watch,
        args=(db, settings.secret_key, wakes, stop),
        kwargs={"allowed_hosts": settings.mail_allowed_hosts},
        daemon=True,
    )
    thread.start()
    started(wakes, account.mailbox_id)
    stop.set()
    # The threads look at the stop event every CHECK_SECONDS, then leave IDLE and log out.
    thread.join(watch_module.STOP_SECONDS + 2 * watch_module.CHECK_SECONDS)
    assert not thread.is_alive()
    ours = f"watch-mailbox-{account.mailbox_id}"
    names = [t.name for t in threading.enumerate()]
    assert not [n for n in names if n == ours or n.startswith(f"{ours}-")], names
    assert watcher_states()[account.mailbox_id].text == "stopped"
