"""A real `hub worker` on a real Redis and PostgreSQL, for tests that carry work through Celery."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from hub.config import Settings
from hub.db import Database
from tests.conftest import make_settings, settings_env


class WorkerStack(NamedTuple):
    settings: Settings
    database: Database
    log: Path  # the worker's output, shown when work does not finish


@contextmanager
def worker_on_redis(
    tmp_path: Path, pg_url: str, redis_url: str, *, queues: str, concurrency: int = 1
) -> Iterator[WorkerStack]:
    """Start `hub worker` for ``queues``; on leaving, a warm shutdown (the task in hand finishes and
    is acknowledged), killed if it takes longer than 30 s."""
    import redis

    # Redis lives for the whole run: a message an earlier test left behind must not reach this
    # worker (ids repeat across the per-test databases).
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    settings = make_settings(tmp_path / "var", pg_url, HUB_BROKER_URL=redis_url)
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "worker", "--queues", queues, "--concurrency", str(concurrency)],
            env=settings_env(settings),
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    database = Database(pg_url)
    try:
        yield WorkerStack(settings, database, log)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        database.dispose()
