"""The sync-health page, /api/v1/health and /healthz tell the truth about a real installation:
a real worker and beat on Redis and PostgreSQL, then the worker gone, then the broker unreachable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.accounts.users import UserInput, create_token, create_user
from hub.config import Settings
from hub.db import Database
from hub.mail.mailboxes import MailboxInput, save_mailbox
from hub.models import User
from hub.ops.health import clear_cache
from tests.conftest import PASSWORD, make_settings, settings_env
from tests.servers import free_port

Login = Callable[[FlaskClient, User], FlaskClient]


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.cli", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=output,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)


def _until(read: Callable[[], Any], check: Callable[[Any], bool], seconds: float, log: Path) -> Any:
    deadline = time.monotonic() + seconds
    value = None
    while time.monotonic() < deadline:
        clear_cache()  # the page caches its probes for a few seconds
        value = read()
        if check(value):
            return value
        time.sleep(0.5)
    raise AssertionError(f"last answer {value!r}; processes said:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def installation(tmp_path: Path, pg_url: str, redis_url: str) -> Iterator[tuple[Settings, Database, dict[str, str]]]:
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    settings = make_settings(tmp_path / "var", pg_url, HUB_BROKER_URL=redis_url, HUB_SWEEP_INTERVAL="2")
    env = settings_env(settings, HUB_SWEEP_INTERVAL="2")
    database = Database(pg_url)
    yield settings, database, env
    database.dispose()


def test_health_tells_workers_beat_and_each_mailbox_as_they_are(
    installation: tuple[Settings, Database, dict[str, str]], tmp_path: Path, login: Login
) -> None:
    from web import create_app

    settings, database, env = installation
    with database.transaction() as s:
        admin = create_user(
            s, UserInput(email="ops@staff.example", name="Ops", password=PASSWORD, is_admin=True, language="en")
        )
        token = create_token(s, admin)
        # A mailbox whose server is not there: it must read as failing, in plain words.
        save_mailbox(
            s,
            settings.secret_key,
            MailboxInput(host="127.0.0.1", port=free_port(), security="none", username="u", password="p"),
            allowed_hosts=settings.mail_allowed_hosts,
        )
    app: Flask = create_app(settings, database=database, TESTING=True)
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def health() -> dict[str, Any]:
        return api.get("/api/v1/health", headers=headers).get_json()

    log = tmp_path / "processes.log"
    # Nothing runs yet: never "OK".
    first = _until(health, lambda h: h is not None, 30, log)
    assert first["workers"] == [] and first["ok"] is False
    assert first["mailboxes"][0]["state"] == "waiting_for_worker"
    assert "never run" in first["beat"]["words"]
    assert api.get("/healthz").status_code == 200  # database and broker answer

    worker = _start(["worker", "--queues", "default,mail", "--concurrency", "1"], env, log)
    beat = _start(["beat"], env, log)
    try:
        alive = _until(health, lambda h: h["workers"] and h["beat"]["ok"], 90, log)
        assert alive["database"]["ok"] and alive["broker"]["ok"]
        assert set(alive["queues"]) >= {"default", "mail"}
        # Beat's sweep sends the due mailbox to the worker; the closed port makes it fail.
        failing = _until(health, lambda h: h["mailboxes"][0]["state"] == "failing", 90, log)
        assert "Failing" in failing["mailboxes"][0]["state_words"]
        assert "refused" in failing["mailboxes"][0]["last_error"]  # an admin sees the detail
        page = login(app.test_client(), admin).get("/mail/health").text
        assert "Workers alive" in page and "Beat alive" in page and "Failing" in page
    finally:
        _stop(worker)
    gone = _until(health, lambda h: not h["workers"], 60, log)
    assert gone["ok"] is False
    page = login(app.test_client(), admin).get("/mail/health").text
    assert "No worker is running" in page and ">OK<" not in page
    _stop(beat)


def test_healthz_says_unavailable_when_the_broker_is_unreachable(tmp_path: Path, pg_url: str) -> None:
    from web import create_app

    settings = make_settings(tmp_path / "var", pg_url, HUB_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")
    database = Database(pg_url)
    try:
        clear_cache()
        response = create_app(settings, database=database, TESTING=True).test_client().get("/healthz")
        assert response.status_code == 503 and response.text == "unavailable\n"
    finally:
        clear_cache()
        database.dispose()
