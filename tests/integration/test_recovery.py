"""Recovery in seconds, not minutes: work whose worker died is taken again within one claim's length,
by the redelivered task itself, and a database restart mid-sync costs at most a claim's length too
(no beat runs here: the sweep is the safety net, not the only path)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from hub.claims import LEASE
from hub.db import Database
from hub.models import Mailbox
from tests.conftest import make_settings, settings_env
from tests.mail_fixtures import MailAccount
from workers.app import create_celery


def _claim(database: Database, mailbox_id: int) -> str:
    with database.transaction() as s:
        return s.scalar(select(Mailbox.claimed_by).where(Mailbox.id == mailbox_id)) or ""


def _wait_for(condition: Callable[[], str], seconds: float, log: Path, every: float = 0.2) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not reached in {seconds} s; the worker said:\n{log.read_text(errors='replace')[-4000:]}")


def test_a_sync_whose_worker_process_was_killed_is_taken_again_within_one_claim(
    tmp_path: Path, pg_url: str, redis_url: str, mail_account: Callable[..., MailAccount]
) -> None:
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    database = Database(pg_url)
    settings = make_settings(tmp_path / "var", pg_url, HUB_BROKER_URL=redis_url)
    account = mail_account(database=database)
    imap = account.client()
    for n in range(5):
        # The parse helper's test hook never finishes a message with this word: the sync is then
        # reliably "in the middle" when the test kills the process that runs it.
        imap.append("INBOX", f"From: a@b.example\r\nSubject: m{n} hang-here\r\n\r\nbody {n}\r\n".encode())
    imap.logout()
    env = settings_env(settings, HUB_TEST_PARSE_HELPER_HANGS_ON="hang-here")
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "worker", "--queues", "mail,default", "--concurrency", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=output,
            start_new_session=True,
        )
    try:
        create_celery(settings).send_task("hub.mail.sync_mailbox", args=[account.mailbox_id])
        first = _wait_for(lambda: _claim(database, account.mailbox_id), 60, log)
        _host, pid, _run = first.split(":")
        os.kill(int(pid), signal.SIGKILL)  # the pool process running the sync, mid-batch
        killed_at = time.monotonic()
        second = _wait_for(
            lambda: c if (c := _claim(database, account.mailbox_id)) and c != first else "",
            LEASE.total_seconds() + 60,
            log,
        )
        recovered_in = time.monotonic() - killed_at
        # Taken again by another process once the dead run's claim lapsed: one lease, plus the
        # redelivery and the retry's own start-up, never the old five minutes.
        assert second.split(":")[1] != pid
        assert recovered_in < LEASE.total_seconds() + 30, f"took {recovered_in:.0f} s"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)
        database.dispose()


def test_a_sync_goes_on_within_one_claim_after_postgresql_restarts_mid_sync(
    tmp_path: Path, redis_url: str, mail_account: Callable[..., MailAccount]
) -> None:
    import redis
    from sqlalchemy import func

    from hub.migrate import upgrade
    from hub.models import Email
    from tests.servers import PostgresServer, create_database

    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    server = PostgresServer()
    server.start()
    worker: subprocess.Popen[bytes] | None = None
    try:
        pg_url = create_database(server.url, "hub_restart")
        upgrade(pg_url)
        database = Database(pg_url)
        settings = make_settings(tmp_path / "var", pg_url, HUB_BROKER_URL=redis_url)
        account = mail_account(database=database)
        messages = 10_000
        imap = account.client()
        for start in range(0, messages, 500):
            imap.multiappend(
                "INBOX",
                [
                    f"From: k{n}@klant.example\r\nSubject: bericht {n}\r\nMessage-ID: <r{n}@test>\r\n\r\n"
                    f"{'tekst ' * 200}{n}\r\n".encode()
                    for n in range(start, min(start + 500, messages))
                ],
            )
        imap.logout()
        log = tmp_path / "worker.log"
        with log.open("wb") as output:
            worker = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "worker", "--queues", "mail,default", "--concurrency", "1"],
                env=settings_env(settings),
                stdout=subprocess.DEVNULL,
                stderr=output,
                start_new_session=True,
            )

        def progress() -> int:
            with database.transaction() as s:
                return int(s.scalar(select(Mailbox.progress_done).where(Mailbox.id == account.mailbox_id)) or 0)

        create_celery(settings).send_task("hub.mail.sync_mailbox", args=[account.mailbox_id])
        _wait_for(lambda: "yes" if progress() > 0 else "", 120, log, every=0.02)
        server.stop()  # mid-sync: the sync's and the heartbeat's connections are cut
        time.sleep(3)
        server.start()
        back_at = time.monotonic()
        database.engine.dispose()
        before = progress()
        assert before < messages, "the sync ended before the restart: the test needs a bigger mailbox"
        _wait_for(lambda: "yes" if progress() > before else "", LEASE.total_seconds() + 60, log)
        moved_in = time.monotonic() - back_at
        assert moved_in < LEASE.total_seconds() + 30, f"took {moved_in:.0f} s"

        def stored() -> int:
            with database.transaction() as s:
                return int(s.scalar(select(func.count()).select_from(Email)) or 0)

        # Nothing lost, nothing doubled (the next slices may be queued by the task itself).
        _wait_for(lambda: "yes" if stored() == messages else "", 300, log)
        assert stored() == messages
        database.dispose()
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(30)
        server.remove()
