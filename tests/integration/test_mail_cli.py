"""`hub mailbox add` and `hub mail sync --now` against a real Dovecot, and a sync run by a real worker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from imapclient import IMAPClient
from sqlalchemy import func, select

from hub.db import Database
from hub.models import Email, Mailbox
from tests.integration.test_mail_sync import message
from tests.mail_server import ImapServer


def _env(var: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_VAR_DIR=str(var),
        HUB_SECRET_KEY="cli-test-secret-key-0123456789",
        HUB_MAIL_ALLOWED_HOSTS="127.0.0.1,localhost,::1",
        **extra,
    )
    return env


def _hub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _fill(dovecot: ImapServer, user: str, n: int) -> None:
    client = IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)
    client.login(user, "imap-secret")
    for i in range(n):
        client.append("INBOX", message(subject=f"cli {i}", msgid=f"<cli{i}.{user}@test>"))
    client.logout()


def test_mailbox_add_and_sync_now(tmp_path: Path, dovecot: ImapServer) -> None:
    env = _env(tmp_path / "var")
    assert _hub(env, "db", "upgrade").returncode == 0
    assert _hub(env, "user", "add", "eva@staff.example", "--password", "long password").returncode == 0
    _fill(dovecot, "user99", 12)
    added = _hub(
        env,
        "mailbox",
        "add",
        "--owner",
        "eva@staff.example",
        "--host",
        dovecot.host,
        "--port",
        str(dovecot.port),
        "--security",
        "none",
        "--username",
        "user99",
        "--password",
        "imap-secret",
    )
    assert added.returncode == 0, added.stderr
    mailbox_id = added.stdout.strip()
    assert mailbox_id.isdigit() and "imap-secret" not in added.stdout
    synced = _hub(env, "mail", "sync", "--now", "--mailbox", mailbox_id)
    assert synced.returncode == 0, synced.stderr
    assert re.search(r"^synced 12 messages \(12 new, 0 linked, 0 quarantined\) in \d+\.\d s$", synced.stdout.strip())
    again = _hub(env, "mail", "sync", "--now")
    assert again.stdout.startswith("synced 0 messages (0 new, 0 linked, 0 quarantined)")
    bad = _hub(
        env,
        "mailbox",
        "add",
        "--host",
        dovecot.host,
        "--port",
        "0",
        "--security",
        "none",
        "--username",
        "x",
        "--password",
        "y",
    )
    assert bad.returncode != 0 and "port" in bad.stderr
    database = Database(f"sqlite:///{tmp_path / 'var' / 'hub.db'}")
    with database.transaction() as s:
        box = s.get_one(Mailbox, int(mailbox_id))
        assert "imap-secret" not in box.password_encrypted and box.messages_stored == 12
    database.dispose()


def test_a_real_worker_syncs_a_mailbox_through_redis(
    tmp_path: Path, dovecot: ImapServer, pg_url: str, redis_url: str
) -> None:
    env = _env(tmp_path / "var", HUB_DATABASE_URL=pg_url, HUB_BROKER_URL=redis_url)
    assert _hub(env, "user", "add", "w@staff.example", "--password", "long password").returncode == 0
    # The batch goes to the parse helper: Celery's pool processes are daemonic, and the helper must
    # work there too.
    count = 20
    _fill(dovecot, "user98", count)
    mailbox_id = _hub(
        env,
        "mailbox",
        "add",
        "--host",
        dovecot.host,
        "--port",
        str(dovecot.port),
        "--security",
        "none",
        "--username",
        "user98",
        "--password",
        "imap-secret",
    ).stdout.strip()
    worker = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "worker", "--queues", "default,mail", "--concurrency", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    database = Database(pg_url)
    helpers: list[int] = []
    try:
        assert _hub(env, "mail", "sync", "--mailbox", mailbox_id).returncode == 0  # queued, not run here
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline and stored < count:
            with database.transaction() as s:
                stored = s.scalar(select(func.count()).select_from(Email)) or 0
            time.sleep(0.5)
        assert stored == count
        helpers = _parse_helpers_under(worker.pid)
        assert len(helpers) == 1, "the worker's pool process parsed without its helper"
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        database.dispose()
    deadline = time.monotonic() + 20
    while any(_running(pid) for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_running(pid) for pid in helpers), "the helper outlived the worker"


def _running(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()  # a zombie has exited
    except FileNotFoundError:
        return False


def _parse_helpers_under(ancestor: int) -> list[int]:
    """Pids of parse helper processes descending from ``ancestor``."""
    parents: dict[int, int] = {}
    helpers: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        if b"hub.mail.parse_helper" in cmdline:
            helpers.append(int(entry.name))

    def descends(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == ancestor:
                return True
        return False

    return [pid for pid in helpers if descends(pid)]
