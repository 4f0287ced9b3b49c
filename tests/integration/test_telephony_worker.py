"""Call records through a real Celery worker on a real Redis into a real PostgreSQL: an uploaded file
sent twice is imported once, and a drop folder polled by the worker picks up a file that grows
between two polls without losing or doubling a call."""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.accounts.users import UserInput, create_user
from hub.blobs import BlobStore
from hub.db import Database
from hub.models import Call, CallImport, CallSource
from hub.telephony.sources import SourceInput, create_upload, save_source
from tests.worker_stack import WorkerStack, worker_on_redis
from workers.app import create_celery

SAMPLES = Path(__file__).resolve().parents[1] / "telephony_samples"


@pytest.fixture
def stack(tmp_path: Path, pg_url: str, redis_url: str) -> Iterator[WorkerStack]:
    with worker_on_redis(tmp_path, pg_url, redis_url, queues="default,telephony", concurrency=2) as started:
        yield started


def _wait_for(stack: WorkerStack, done: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen; worker log:\n{stack.log.read_text()[-3000:]}")


def _calls(database: Database) -> int:
    with database.transaction() as session:
        return session.scalar(select(func.count()).select_from(Call)) or 0


def test_an_upload_sent_twice_is_imported_once_by_the_worker(stack: WorkerStack) -> None:
    settings, database, _log = stack
    with database.transaction() as session:
        admin = create_user(session, UserInput(email="a@staff.example", name="A", password="x" * 12, is_admin=True))
        source = save_source(
            session, settings.secret_key, SourceInput(name="pbx", format="asterisk-csv", timezone="Europe/Paris")
        )
        upload = create_upload(
            session,
            BlobStore(settings.documents_dir),
            admin,
            source,
            "Master.csv",
            io.BytesIO((SAMPLES / "asterisk_master_18.csv").read_bytes()),
            settings.upload_max_bytes,
        )
        upload_id = upload.id
    celery = create_celery(settings)
    for _ in range(2):  # a duplicated message (a redelivery) must change nothing
        celery.send_task("hub.telephony.import_upload", args=[upload_id], queue="telephony")

    def finished() -> bool:
        with database.transaction() as session:
            return session.get_one(CallImport, upload_id).status == "done"

    _wait_for(stack, finished, "the upload's import")
    time.sleep(1)  # the second message has had its chance
    with database.transaction() as session:
        reports = list(session.scalars(select(CallImport)))
        assert [(r.imported, r.known, r.rejected) for r in reports] == [(3, 0, 0)]
    assert _calls(database) == 3


def test_a_drop_folder_that_grows_between_polls_loses_and_doubles_nothing(stack: WorkerStack, tmp_path: Path) -> None:
    settings, database, _log = stack
    folder = tmp_path / "drop"
    folder.mkdir()
    rows = (SAMPLES / "asterisk_master_18.csv").read_text().splitlines(keepends=True)
    target = folder / "Master.csv"
    target.write_text(rows[0] + rows[1][: len(rows[1]) // 2])  # one record and half of the next
    with database.transaction() as session:
        source_id = save_source(
            session,
            settings.secret_key,
            SourceInput(name="pbx", format="asterisk-csv", timezone="Europe/Paris", drop_folder=str(folder)),
        ).id
    celery = create_celery(settings)
    celery.send_task("hub.telephony.poll_drop_folders", queue="telephony")
    _wait_for(stack, lambda: _calls(database) == 1, "the first poll")
    with target.open("a") as fh:  # the PBX finishes the record and writes the rest
        fh.write(rows[1][len(rows[1]) // 2 :])
        fh.writelines(rows[2:])
    with database.transaction() as session:
        session.get_one(CallSource, source_id).next_attempt_at = None  # due again now
    for _ in range(2):
        celery.send_task("hub.telephony.poll_source", args=[source_id], queue="telephony")
    _wait_for(stack, lambda: _calls(database) == 3, "the second poll")
    time.sleep(1)
    assert _calls(database) == 3
    shutil.rmtree(folder)
