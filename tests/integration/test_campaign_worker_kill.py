"""A real Celery worker (real Redis, real PostgreSQL) killed with SIGKILL in the middle of a mailing,
then a new worker: every recipient has exactly one message, and nobody was skipped.

The relay here holds one recipient's transaction open (at RCPT: before it accepted anything) so the
kill lands at a known point. The other case, a kill after the relay accepted but before the ledger
row was marked, cannot be told apart by any sender (SMTP has no idempotency key); it is sent again
and marked in doubt, as the second test shows with ``hub campaign send --now`` killed the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select, update

from hub.campaigns import sending
from hub.db import Database
from hub.models.campaigns import Mailing, MailingRecipient
from tests.conftest import make_settings, settings_env
from tests.integration.test_campaign_sending import make_mailing, seed_contacts
from tests.smtp_server import SmtpServer, _Handler


class _HoldingHandler(_Handler):
    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        holding: HoldingServer = self.server  # type: ignore[assignment]
        if not holding.pipelining:
            return responses
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        server: HoldingServer = self.server  # type: ignore[assignment]
        if address == server.hold_rcpt:
            server.holding.set()
            while not server.release.is_set():
                await asyncio.sleep(0.01)
        return await super().handle_RCPT(smtp, session, envelope, address, rcpt_options)

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        server: HoldingServer = self.server  # type: ignore[assignment]
        reply = await super().handle_DATA(smtp, session, envelope)
        if server.hold_after_data in envelope.rcpt_tos:
            # Recorded (accepted) but the 250 not yet sent: the sender cannot know it was taken.
            server.holding.set()
            while not server.release.is_set():
                await asyncio.sleep(0.01)
        return reply


class HoldingServer(SmtpServer):
    """The recording test relay, which can hold one recipient's transaction open until released."""

    def __init__(self) -> None:
        super().__init__()
        self.hold_rcpt = ""
        self.hold_after_data = ""
        # Announce PIPELINING (as postfix does): the mailing then takes its pipelined path.
        self.pipelining = False
        self.holding = threading.Event()
        self.release = threading.Event()

    def start(self) -> None:
        self._controller = Controller(
            _HoldingHandler(self), hostname="127.0.0.1", port=self.port, decode_data=False, enable_SMTPUTF8=True
        )
        self._controller.start()


@pytest.fixture
def holding_server() -> Iterator[HoldingServer]:
    server = HoldingServer()
    server.start()
    try:
        yield server
    finally:
        server.release.set()
        server.stop()


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli", *args],
            env=env,
            stdout=output,
            stderr=output,
            start_new_session=True,  # its own process group: SIGKILL reaches the worker's children too
        )


def _kill(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)


def _lease_passed(database: Database, mailing_id: int) -> None:
    # The killed run's claim lapses within a minute; pretend that minute passed.
    with database.transaction() as s:
        until = s.scalar(select(Mailing.claimed_until).where(Mailing.id == mailing_id))
        assert until is not None  # still held by the dead run: nobody else could send meanwhile
        s.execute(update(Mailing).where(Mailing.id == mailing_id).values(claimed_until=func.now()))


def _wait_for_state(database: Database, mailing_id: int, state: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with database.transaction() as s:
            if s.scalar(select(Mailing.state).where(Mailing.id == mailing_id)) == state:
                return
        time.sleep(0.1)
    raise AssertionError(f"mailing not {state}; worker log:\n{log.read_text(errors='replace')[-3000:]}")


def test_worker_killed_mid_send_then_restarted(
    tmp_path: Path, pg_url: str, redis_url: str, holding_server: HoldingServer
) -> None:
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    settings = make_settings(
        tmp_path / "var",
        pg_url,
        HUB_BROKER_URL=redis_url,
        HUB_SMTP_URL=holding_server.url,
        HUB_BASE_URL="https://hub.example",
        HUB_CAMPAIGN_CONNECTIONS="1",
    )
    env = settings_env(
        settings, HUB_SMTP_URL=holding_server.url, HUB_BASE_URL="https://hub.example", HUB_CAMPAIGN_CONNECTIONS="1"
    )
    database = Database(pg_url)
    seed_contacts(database, 70)
    mailing_id = make_mailing(database)
    holding_server.hold_rcpt = "r25@example.test"
    log = tmp_path / "worker.log"
    worker = _start(["worker", "--no-supervise", "--queues", "default,campaigns", "--concurrency", "1"], env, log)
    try:
        from workers.app import create_celery

        create_celery(settings)
        from workers.tasks import campaigns_tick

        campaigns_tick.delay()  # as beat does: starts the mailing and queues its run
        assert holding_server.holding.wait(90), log.read_text(errors="replace")[-3000:]
        _kill(worker)
        holding_server.release.set()
        received = Counter(holding_server.recipients())
        assert len(received) == 25 and "r25@example.test" not in received
        with database.transaction() as s:
            in_flight = s.scalars(select(MailingRecipient.address).where(MailingRecipient.status == "sending")).all()
        assert "r25@example.test" in in_flight

        _lease_passed(database, mailing_id)
        worker = _start(["worker", "--no-supervise", "--queues", "default,campaigns", "--concurrency", "1"], env, log)
        campaigns_tick.delay()  # beat's next tick finds the mailing sending and unclaimed
        _wait_for_state(database, mailing_id, "sent", log)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            _kill(worker)
    received = Counter(holding_server.recipients())
    assert sorted(received) == sorted(f"r{i}@example.test" for i in range(70))
    assert set(received.values()) == {1}
    with database.transaction() as s:
        rows = s.execute(select(MailingRecipient.status, func.count()).group_by(MailingRecipient.status)).all()
        doubtful = s.scalars(select(MailingRecipient.address).where(MailingRecipient.in_doubt.is_(True))).all()
    assert dict(rows) == {"sent": 70}
    # The one row that was with the relay when the worker died is flagged: from the sender's side
    # it could have been delivered (here it was not: the relay never got to DATA).
    assert doubtful == ["r25@example.test"]
    database.dispose()


@pytest.mark.parametrize("pipelining", [False, True])
def test_killed_after_the_relay_accepted_is_resent_and_marked_in_doubt(
    tmp_path: Path, db: Database, holding_server: HoldingServer, pipelining: bool
) -> None:
    settings = make_settings(tmp_path / "var", HUB_SMTP_URL=holding_server.url, HUB_BASE_URL="https://hub.example")
    env = settings_env(settings, HUB_SMTP_URL=holding_server.url, HUB_BASE_URL="https://hub.example")
    seed_contacts(db, 30)
    mailing_id = make_mailing(db)
    holding_server.pipelining = pipelining
    holding_server.hold_after_data = "r10@example.test"
    log = tmp_path / "send.log"
    process = _start(["campaign", "send", str(mailing_id), "--now"], {**env, "HUB_CAMPAIGN_CONNECTIONS": "1"}, log)
    assert holding_server.holding.wait(60), log.read_text(errors="replace")
    _kill(process)
    holding_server.release.set()
    _lease_passed(db, mailing_id)
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "campaign", "send", str(mailing_id), "--now"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("sent 20 messages (0 failed, 0 skipped) in ")
    received = Counter(holding_server.recipients())
    assert sorted(received) == sorted(f"r{i}@example.test" for i in range(30))
    # The documented limit: accepted, then the sender died before it could record that. Sent again
    # (never silently skipped), so this one recipient has it twice, and the ledger says so.
    assert received["r10@example.test"] == 2
    assert {a for a, n in received.items() if n > 1} == {"r10@example.test"}
    with db.transaction() as s:
        doubtful = s.scalars(select(MailingRecipient.address).where(MailingRecipient.in_doubt.is_(True))).all()
    assert doubtful == ["r10@example.test"]


def _alive_in_group(group: int) -> list[int]:
    """Processes of a process group that still run (zombies, ended but not yet reaped, do not count)."""
    alive = []
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, OSError):
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == group:
                alive.append(process.pid)
    return alive


def test_sending_processes_stop_when_their_run_is_killed(
    tmp_path: Path, pg_url: str, holding_server: HoldingServer
) -> None:
    # Two sessions on a 2-core machine with PostgreSQL run in two sending processes under the run.
    # Only the run is killed: its processes must not send on for a dead run (the next run would
    # send the same rows).
    if len(sending.session_plan(2)) < 2:
        pytest.skip("one core: the sessions run as threads of the run")
    db = Database(pg_url)
    settings = make_settings(
        tmp_path / "var", pg_url, HUB_SMTP_URL=holding_server.url, HUB_BASE_URL="https://hub.example"
    )
    env = {**settings_env(settings, HUB_SMTP_URL=holding_server.url, HUB_BASE_URL="https://hub.example")}
    env["HUB_CAMPAIGN_CONNECTIONS"] = "2"
    seed_contacts(db, 250)  # more than a chunk each
    mailing_id = make_mailing(db)
    holding_server.hold_rcpt = "r150@example.test"
    log = tmp_path / "send.log"
    process = _start(["campaign", "send", str(mailing_id), "--now"], env, log)
    assert holding_server.holding.wait(60), log.read_text(errors="replace")
    assert len(_alive_in_group(process.pid)) >= 2, "the run and (at least) the sending process held"
    os.kill(process.pid, signal.SIGKILL)  # the run alone, not its group
    process.wait(30)
    holding_server.release.set()
    deadline = time.monotonic() + 60
    while _alive_in_group(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive_in_group(process.pid), log.read_text(errors="replace")[-3000:]
    # They stopped cleanly: the message in flight was finished and marked, the rest given back.
    with db.transaction() as s:
        in_flight = s.scalar(select(func.count()).where(MailingRecipient.status == "sending"))
    assert in_flight == 0
    sent_before = Counter(holding_server.recipients())
    assert set(sent_before.values()) == {1} and len(sent_before) < 250

    _lease_passed(db, mailing_id)
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "campaign", "send", str(mailing_id), "--now"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    received = Counter(holding_server.recipients())
    assert sorted(received) == sorted(f"r{i}@example.test" for i in range(250))
    assert set(received.values()) == {1}
    with db.transaction() as s:
        rows = s.execute(select(MailingRecipient.status, func.count()).group_by(MailingRecipient.status)).all()
        assert dict(rows) == {"sent": 250}
        assert not s.scalars(select(MailingRecipient.address).where(MailingRecipient.in_doubt.is_(True))).all()
    db.dispose()
