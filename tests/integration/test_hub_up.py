"""`hub up` (what `make run` starts) works on a fresh embedded install and stops cleanly.

Runs the real command: SQLite and the filesystem broker under a temp var dir, gunicorn, a Celery
worker and beat. Checks the printed admin can log in, that a task goes through the embedded broker
to the worker and commits, and that Ctrl-C stops every process.
"""

from __future__ import annotations

import http.cookiejar
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from hub.blobs import BlobStore
from hub.config import load_settings
from hub.crm.import_jobs import create_import_job
from hub.db import Database
from hub.models import ImportJob, JobStatus, Relation, User

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_until(proc: subprocess.Popen[str], pattern: str, timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    seen = []
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"{pattern!r} not printed; got:\n{''.join(seen)}")


def test_hub_up_serves_logs_in_runs_tasks_and_stops(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_VAR_DIR=str(tmp_path / "var"), HUB_WEB_PORT=str(port), HUB_SWEEP_INTERVAL="2")
    errors = tmp_path / "up.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=errors.open("w"),
        text=True,
        start_new_session=True,
    )
    try:
        url = _read_until(proc, r"running at (\S+)", 90).group(1)
        admin = _read_until(proc, r"first admin: (\S+)\s+password: (\S+)", 10)
        email, password = admin.group(1), admin.group(2)

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(url.rstrip("/") + "/login").read().decode()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
            r'value="([^"]+)"[^>]*name="csrf_token"', page
        )
        assert token
        data = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token.group(1)})
        projects = opener.open(url.rstrip("/") + "/login", data=data.encode()).read().decode()
        assert "Admin" in projects and "/logout" in projects

        # A job with no message at all: beat's sweep must find it and the worker must run it.
        settings = load_settings(env)
        db = Database(settings.database_url)
        with db.transaction() as session:
            user = session.query(User).filter_by(email=email).one()
            job = create_import_job(
                session,
                BlobStore(settings.documents_dir),
                user,
                "c.csv",
                io.BytesIO(b"relation,domain,contact_name,email,phone\nUp BV,up.example.nl,Ann,ann@up.example.nl,\n"),
                1_000_000,
            )
            job.created_at = job.created_at.replace(year=2000)
            job_id = job.id
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline:
            with db.transaction() as session:
                status = session.get_one(ImportJob, job_id).status
                if status == JobStatus.done:
                    assert session.query(Relation).filter_by(name="Up BV").count() == 1
                    break
            time.sleep(0.5)
        assert status == JobStatus.done
        db.dispose()

        # A part that dies is started again, and hub up says so.
        beat = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "hub.cli beat"], capture_output=True, text=True)
        assert len(beat.stdout.split()) == 1, beat.stdout
        os.kill(int(beat.stdout.split()[0]), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "started the beat part again" not in errors.read_text():
            time.sleep(0.3)
        said = errors.read_text()
        assert "the beat part stopped (killed by SIGKILL)" in said and "started the beat part again" in said
        again = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "hub.cli beat"], capture_output=True, text=True)
        assert again.stdout.split() and again.stdout.split() != beat.stdout.split()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert code == 0
    # Every child (web, worker, beat) is gone with it.
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert left == [], f"processes left running: {left}"
