"""`hub up` (what `make run` starts) works on a fresh embedded install and stops cleanly.

Runs the real command: SQLite and the filesystem broker under a temp var dir, gunicorn, a Celery
worker and beat. Checks the printed admin can log in, that a task goes through the embedded broker
to the worker and commits, and that Ctrl-C stops every process.
"""

from __future__ import annotations

import http.client
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid``, whatever session it started for itself (Celery's worker has
    its own), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ctrl_c_stops_everything_within_10_seconds_with_a_sync_running_and_connections_open(
    tmp_path: Path, dovecot: Any
) -> None:
    """Three rounds of: a mail sync stuck in the middle of a mailbox (its parse helper hangs on one
    message: the test hook of hub.mail.parse_helper), idle keep-alive connections and a request in
    flight, then Ctrl-C. Every round `hub up` is gone within 10 s, with every process it started
    (gunicorn's workers, Celery's pool, beat, the IMAP watcher) and the port free again."""
    from imapclient import IMAPClient
    from sqlalchemy import select, update

    from hub.models import Mailbox
    from tests.integration.test_mail_sync import message

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_VAR_DIR=str(tmp_path / "var"),
        HUB_WEB_PORT=str(port),
        HUB_SWEEP_INTERVAL="2",
        HUB_SECRET_KEY="up-test-secret-key-0123456789",
        HUB_MAIL_ALLOWED_HOSTS="127.0.0.1,localhost,::1",
        HUB_TEST_PARSE_HELPER_HANGS_ON="hangs-the-parser",
    )
    hub = [sys.executable, "-m", "hub.cli"]
    subprocess.run([*hub, "db", "upgrade"], env=env, check=True, capture_output=True)
    mailbox = ["--host", dovecot.host, "--port", str(dovecot.port), "--security", "none", "--folders", "INBOX"]
    subprocess.run(
        [*hub, "mailbox", "add", *mailbox, "--username", "user96", "--password", "imap-secret"],
        env=env,
        check=True,
        capture_output=True,
    )
    imap = IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=30)
    imap.login("user96", "imap-secret")
    for i in range(200):
        imap.append(
            "INBOX",
            message(subject=f"m{i}", msgid=f"<m{i}@up.test>", body="hangs-the-parser\n" if i == 100 else f"{i}\n"),
        )
    imap.logout()
    database = Database(load_settings(env).database_url)

    def claimed() -> bool:
        with database.transaction() as session:
            until = session.scalars(select(Mailbox.claimed_until)).one()
        return until is not None and until.replace(tzinfo=None) > datetime.now(UTC).replace(tzinfo=None)

    for round_number in range(3):
        with database.transaction() as session:
            # The claim of the round before, stopped mid-sync, lapses (45 s) before this round.
            session.execute(update(Mailbox).values(claimed_until=None, claimed_by=""))
        proc = subprocess.Popen(
            [*hub, "up"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        connections: list[http.client.HTTPConnection] = []
        try:
            _read_until(proc, r"running at (\S+)", 90)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not claimed():
                time.sleep(0.05)
            assert claimed(), "the mail sync did not start"
            for _ in range(6):  # idle keep-alive connections, each after one answered request
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("GET", "/login")
                connection.getresponse().read()
                connections.append(connection)
            in_flight = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            in_flight.putrequest("POST", "/login")
            in_flight.putheader("Content-Length", "100000")
            in_flight.endheaders()
            in_flight.send(b"x" * 10)  # a request still arriving
            connections.append(in_flight)
            everything = _descendants(proc.pid)
            still_syncing = claimed()
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            code = proc.wait(30)
            took = time.monotonic() - started
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            for connection in connections:
                connection.close()
        assert code == 0
        assert took <= 10, f"round {round_number + 1}: hub up took {took:.1f} s to stop"
        assert still_syncing, "the stop should come while the sync runs"
        time.sleep(0.3)
        left = [pid for pid in everything if _alive(pid)]
        assert left == [], f"round {round_number + 1}: processes left running: {left}"
        with socket.socket() as probe:
            # Free for the next start (which, like gunicorn, reuses an address still in TIME_WAIT).
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
            probe.listen()
    database.dispose()
