"""A sync process killed with SIGKILL in the middle of its work loses nothing and duplicates nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from imapclient import IMAPClient
from sqlalchemy import func, select

from hub.db import Database
from hub.models import Email, EmailLocation
from tests.integration.test_mail_sync import message
from tests.mail_server import ImapServer


def test_kill_9_mid_sync_then_resume(tmp_path: Path, dovecot: ImapServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_VAR_DIR=str(tmp_path / "var"),
        HUB_SECRET_KEY="kill-test-secret-key-0123456789",
        HUB_MAIL_ALLOWED_HOSTS="127.0.0.1,localhost,::1",
    )
    hub = [sys.executable, "-m", "hub.cli"]
    subprocess.run([*hub, "db", "upgrade"], env=env, check=True, capture_output=True)
    client = IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=30)
    client.login("user97", "imap-secret")
    for i in range(1200):
        client.append("INBOX", message(subject=f"k{i}", msgid=f"<k{i}@kill.test>", body=f"body {i}\n" * 50))
    client.logout()
    mailbox_id = subprocess.run(
        [
            *hub,
            "mailbox",
            "add",
            "--host",
            dovecot.host,
            "--port",
            str(dovecot.port),
            "--security",
            "none",
            "--username",
            "user97",
            "--password",
            "imap-secret",
            "--folders",
            "INBOX",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    database = Database(f"sqlite:///{tmp_path / 'var' / 'hub.db'}")

    def stored() -> tuple[int, int]:
        with database.transaction() as s:
            return (
                s.scalar(select(func.count()).select_from(Email)) or 0,
                s.scalar(select(func.count()).select_from(EmailLocation)) or 0,
            )

    proc = subprocess.Popen(
        [*hub, "mail", "sync", "--now", "--mailbox", mailbox_id],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while stored()[0] == 0 and time.monotonic() < deadline:  # wait until the first batch committed
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    emails, _locations = stored()
    assert 0 < emails < 1200, "the kill should land in the middle of the sync"

    # The killed sync's lease runs out within minutes; pretend those minutes passed.
    from sqlalchemy import update

    from hub.models import Mailbox

    with database.transaction() as s:
        lease = s.scalar(select(Mailbox.claimed_until))
        assert lease is not None  # still held by the dead process: no second sync could start meanwhile
        s.execute(update(Mailbox).values(claimed_until=func.datetime("now", "-1 second")))
    result = subprocess.run(
        [*hub, "mail", "sync", "--now", "--mailbox", mailbox_id], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert stored() == (1200, 1200)
    database.dispose()
