"""A real Celery worker takes tasks from a real Redis and commits to a real PostgreSQL.

Also shows the two safety nets: a duplicated message changes nothing (the job is claimed in the
database), and a job whose message was lost is found by beat's sweep.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from hub.accounts.users import UserInput, create_user
from hub.blobs import BlobStore
from hub.config import Settings
from hub.crm.import_jobs import create_import_job
from hub.db import Database
from hub.models import Contact, ImportJob, JobStatus, Relation
from tests.conftest import settings_env
from tests.worker_stack import WorkerStack, worker_on_redis
from workers.app import create_celery

CSV = (
    b"relation,domain,contact_name,email,phone\n"
    b"Worker BV,worker.example.nl,Anna Worker,anna@worker.example.nl,+31 20 123 4567\n"
    b"Worker BV,worker.example.nl,Bram Worker,bram@worker.example.nl,\n"
    b"Other NV,other.example.nl,Olaf,not-an-address,\n"
)


@pytest.fixture
def stack(tmp_path: Path, pg_url: str, redis_url: str) -> Iterator[WorkerStack]:
    with worker_on_redis(tmp_path, pg_url, redis_url, queues="default,crm") as started:
        yield started


def _new_job(settings: Settings, database: Database) -> int:
    with database.transaction() as s:
        user = create_user(
            s, UserInput(email=f"w{time.monotonic_ns()}@staff.example", name="W", password="long enough pw")
        )
        return create_import_job(s, BlobStore(settings.documents_dir), user, "c.csv", io.BytesIO(CSV), 10_000).id


def _wait_done(stack: WorkerStack, job_id: int, timeout: float = 60) -> ImportJob:
    database = stack.database
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database.transaction() as s:
            job = s.get_one(ImportJob, job_id)
            if job.status in (JobStatus.done, JobStatus.failed):
                return job
        time.sleep(0.3)
    log = stack.log.read_text(errors="replace")[-4000:]
    raise AssertionError(f"job {job_id} not done after {timeout} s; the worker said:\n{log}")


def _counts(database: Database) -> tuple[int, int]:
    with database.transaction() as s:
        return (
            s.scalar(select(func.count()).select_from(Relation)) or 0,
            s.scalar(select(func.count()).select_from(Contact)) or 0,
        )


def test_worker_runs_the_task_through_redis_and_commits_to_postgres(stack: WorkerStack) -> None:
    settings, database, _ = stack
    job_id = _new_job(settings, database)
    app = create_celery(settings)
    app.send_task("hub.crm.import_relations", args=[job_id])
    job = _wait_done(stack, job_id)
    assert job.status == JobStatus.done
    assert (job.relations_created, job.contacts_created) == (1, 2)
    assert "line 4" in job.errors and "not-an-address" in job.errors
    assert _counts(database) == (1, 2)

    # The same message again (a broker redelivery): the job is already done, nothing changes.
    app.send_task("hub.crm.import_relations", args=[job_id])
    # A second job behind it on the same queue (one worker process, prefetch 1: handled in
    # order), so once that one is done the duplicate has certainly been handled. It imports the
    # same file, which changes nothing either.
    barrier_id = _new_job(settings, database)
    app.send_task("hub.crm.import_relations", args=[barrier_id])
    barrier = _wait_done(stack, barrier_id)
    assert (barrier.status, barrier.relations_created, barrier.contacts_created) == (JobStatus.done, 0, 0)
    assert _counts(database) == (1, 2)
    with database.transaction() as s:
        again = s.get_one(ImportJob, job_id)
        assert (again.attempts, again.relations_created, again.contacts_created) == (1, 1, 2)


def test_sweep_finds_a_job_whose_message_was_lost(stack: WorkerStack) -> None:
    settings, database, _ = stack
    job_id = _new_job(settings, database)
    with database.transaction() as s:
        # No message was ever sent for this job; it has been waiting for a while.
        s.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id)
            .values(created_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 5))
        )
    create_celery(settings).send_task("hub.default.sweep")
    assert _wait_done(stack, job_id).status == JobStatus.done
    assert _counts(database) == (1, 2)


def test_flower_shows_the_worker_and_its_tasks(stack: WorkerStack, tmp_path: Path) -> None:
    import json
    import urllib.request

    from tests.servers import free_port, wait_for_port

    settings, database, _ = stack
    port = free_port()
    env = settings_env(settings, FLOWER_UNAUTHENTICATED_API="true")
    flower = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "flower", "--port", str(port), "--address=127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 60)
        job_id = _new_job(settings, database)
        create_celery(settings).send_task("hub.crm.import_relations", args=[job_id])
        _wait_done(stack, job_id)
        deadline = time.monotonic() + 60
        workers: dict[str, object] = {}
        tasks: dict[str, dict[str, object]] = {}
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/workers?refresh=1", timeout=10) as r:
                workers = json.load(r)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tasks", timeout=10) as r:
                tasks = json.load(r)
            if workers and any(t.get("name") == "hub.crm.import_relations" for t in tasks.values()):
                break
            job_id = _new_job(settings, database)  # events flow once Flower listens; send another
            create_celery(settings).send_task("hub.crm.import_relations", args=[job_id])
            time.sleep(1)
        assert any(name.startswith("celery@") for name in workers), workers
        assert any(t.get("name") == "hub.crm.import_relations" and t.get("state") == "SUCCESS" for t in tasks.values())
    finally:
        flower.terminate()
        flower.wait(20)
