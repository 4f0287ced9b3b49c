"""`hub worker` survives losing Redis: killed outright, back on the same port, three times over.

Each round holds a task in flight (its job row is locked in PostgreSQL, so the worker's claim
waits), kills Redis with SIGKILL, lets the task finish while the broker is gone (its ack cannot
reach Redis: kombu's "Restoring unacknowledged message(s)" path, where the worker used to exit),
starts Redis again on the same port with the same data directory, and then checks that the same
worker process is alive and runs a task sent after the restart.

The Redis here is this test's own: killing the session-wide one would break the other tests.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from hub.accounts.users import UserInput, create_user
from hub.blobs import BlobStore
from hub.config import Settings
from hub.crm.import_jobs import create_import_job
from hub.db import Database
from hub.models import ImportJob, JobStatus
from tests.conftest import make_settings, settings_env
from tests.servers import free_port, wait_for_port
from workers.app import create_celery

CSV = b"relation,domain,contact_name,email,phone\nLoss BV,loss.example.nl,Lot Loss,lot@loss.example.nl,\n"
ROUNDS = 3


class KillableRedis:
    """A Redis on a fixed loopback port that can be SIGKILLed and started again on that port."""

    def __init__(self, base: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("Redis is not installed: apt-get install redis-server (.ci/run does this)")
        self.binary = binary
        self.base = base
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        base.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # AOF, as docker-compose runs it: queued messages survive the restart.
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(self.base),
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, 30, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def killable_redis(tmp_path: Path) -> Iterator[KillableRedis]:
    server = KillableRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _new_job(settings: Settings, database: Database) -> int:
    with database.transaction() as s:
        user = create_user(
            s, UserInput(email=f"loss{time.monotonic_ns()}@staff.example", name="L", password="long enough pw")
        )
        return create_import_job(s, BlobStore(settings.documents_dir), user, "c.csv", io.BytesIO(CSV), 10_000).id


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _worker_log(log: Path) -> str:
    return log.read_text(errors="replace")[-6000:]


def _wait_for(
    what: str, check: Callable[[], bool], log: Path, worker: subprocess.Popen[bytes], timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise AssertionError(f"the worker exited ({worker.returncode}) while {what}; it said:\n{_worker_log(log)}")
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not {what} after {timeout} s; the worker said:\n{_worker_log(log)}")


def _count(log: Path, text: str) -> int:
    return log.read_text(errors="replace").count(text)


def _job_status(database: Database, job_id: int) -> JobStatus:
    with database.transaction() as s:
        return s.scalars(select(ImportJob.status).where(ImportJob.id == job_id)).one()


def _claim_is_waiting_on_lock(admin: psycopg.Connection[tuple[object, ...]]) -> bool:
    # The worker's claim (UPDATE import_jobs …) blocks on the row this test locked.
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE 'UPDATE import_job%%'"
    ).fetchone()
    return bool(row and row[0])


def test_worker_survives_redis_being_killed_and_restarted(
    tmp_path: Path, pg_url: str, killable_redis: KillableRedis
) -> None:
    settings = make_settings(tmp_path / "var", pg_url, HUB_BROKER_URL=killable_redis.url)
    env = settings_env(settings)
    database = Database(pg_url)
    app = create_celery(settings)
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "worker", "--queues", "default,crm", "--concurrency", "1"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    admin = psycopg.connect(_libpq(pg_url), autocommit=True)
    try:
        for round_no in range(1, ROUNDS + 1):
            # A task in flight: its job row is locked, so the worker holds the message unacked.
            in_flight = _new_job(settings, database)
            locker = psycopg.connect(_libpq(pg_url))
            try:
                locker.execute("SELECT id FROM import_job WHERE id = %s FOR UPDATE", (in_flight,))
                app.send_task("hub.crm.import_relations", args=[in_flight])
                _wait_for(f"holding the task (round {round_no})", lambda: _claim_is_waiting_on_lock(admin), log, worker)
                retries = _count(log, "Trying again")
                connects = _count(log, "Connected to redis")
                killable_redis.kill()
                task_ends_during_outage = round_no % 2 == 0
                if task_ends_during_outage:
                    locker.rollback()
                # Redis stays away over several reconnection attempts, as in the outage ops saw.
                _wait_for(
                    f"retrying the broker (round {round_no})",
                    lambda: _count(log, "Trying again") >= retries + 2,  # noqa: B023 (called before the loop moves on)
                    log,
                    worker,
                )
                killable_redis.start()
                _wait_for(
                    f"reconnecting (round {round_no})",
                    lambda: _count(log, "Connected to redis") > connects,  # noqa: B023 (called before the loop moves on)
                    log,
                    worker,
                )
                # Otherwise the task outlives the outage and acknowledges, after the worker has
                # reconnected, a message that came in on the connection that was lost.
                locker.rollback()
            finally:
                locker.close()
            _wait_for(
                f"finishing the in-flight job (round {round_no})",
                lambda: _job_status(database, in_flight) in (JobStatus.done, JobStatus.failed),  # noqa: B023 (called before the loop moves on)
                log,
                worker,
            )
            assert worker.poll() is None, f"the worker exited in round {round_no}:\n{_worker_log(log)}"

            # A task sent after the restart runs: the worker reconnected and consumes again.
            after = _new_job(settings, database)
            app.send_task("hub.crm.import_relations", args=[after])
            _wait_for(
                f"running a task sent after Redis came back (round {round_no})",
                lambda: _job_status(database, after) == JobStatus.done,  # noqa: B023 (called before the loop moves on)
                log,
                worker,
            )
            assert _job_status(database, in_flight) == JobStatus.done
        assert worker.poll() is None
    finally:
        admin.close()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        database.dispose()


def test_hub_worker_starts_a_dead_celery_worker_again(
    tmp_path: Path, pg_url: str, killable_redis: KillableRedis
) -> None:
    """Whatever Celery cannot recover from ends only the Celery process: `hub worker` starts another."""
    settings = make_settings(tmp_path / "var", pg_url, HUB_BROKER_URL=killable_redis.url)
    env = settings_env(settings)
    database = Database(pg_url)
    app = create_celery(settings)
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "worker", "--queues", "default,crm", "--concurrency", "1"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for("ready", lambda: _count(log, "ready.") >= 1, log, worker)
        children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 1, children
        # The way an "Unrecoverable error" ends it, minus the chance to clean up.
        os.kill(int(children[0]), signal.SIGKILL)
        _wait_for("saying it restarts the Celery worker", lambda: _count(log, "stopped unexpectedly") >= 1, log, worker)
        assert "killed by SIGKILL" in log.read_text(errors="replace")
        # kombu's "Unrecoverable error" after a Redis restart ends Celery with exit code 0 (seen by
        # bench/recovery.py): an end nobody asked for is restarted too. A remote shutdown exits the same way.
        _wait_for("ready again", lambda: _count(log, "ready.") >= 2, log, worker)
        app.control.shutdown()
        _wait_for("restarting after exit code 0", lambda: _count(log, "(exit code 0)") >= 1, log, worker)

        job = _new_job(settings, database)
        app.send_task("hub.crm.import_relations", args=[job])
        _wait_for("running a task after the restart", lambda: _job_status(database, job) == JobStatus.done, log, worker)
        restarted = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
        assert len(restarted) == 1 and restarted != children, restarted
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            raise
        database.dispose()
    # A stop that was asked for is a clean stop, and takes the Celery worker with it.
    assert code == 0, _worker_log(log)
    with pytest.raises(ProcessLookupError):
        os.kill(int(restarted[0]), 0)
