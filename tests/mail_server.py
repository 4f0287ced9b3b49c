"""A real Dovecot IMAP server for the tests: throwaway config, Maildir in a temp dir, free port.

Uses Debian's dovecot-imapd. The mail processes run as the ``dovecot`` system user when the
tests run as root (Dovecot refuses root), else as the current user.

A server can be stopped, killed and started again on the same port with the same mail (the watcher's
restart tests); ``notify=False`` gives a server without NOTIFY (RFC 5465).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers import free_port, wait_for_port


@dataclass
class ImapServer:
    host: str
    port: int
    root: Path
    users: dict[str, str]
    binary: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def add_user(self, name: str, password: str) -> None:
        self.users[name] = password
        _write_passwd(self.root, self.users)

    def start(self) -> None:
        """Start Dovecot (again) on this port with this mail; returns once it listens."""
        # Its own process group, so that kill() can take every Dovecot process down at once.
        self.process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        wait_for_port(self.port, 30, self.process)

    def stop(self) -> None:
        """Shut down cleanly, as ``systemctl stop`` does: SIGTERM to every Dovecot process (the master
        alone leaves the mail processes serving their connections); they tell their clients BYE."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
        self._wait_until_gone()

    def _wait_until_gone(self) -> None:
        """Until no process of the group is left: one still holding the port would stop a restart."""
        if self.process is None:
            return
        group, self.process = self.process.pid, None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)

    def kill(self) -> None:
        """A crash: SIGKILL to every Dovecot process (killing only the master leaves the mail
        processes serving their connections), so the clients' connections just end."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._wait_until_gone()


def _owner() -> tuple[int, int]:
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    entry = pwd.getpwnam("dovecot")
    return entry.pw_uid, entry.pw_gid


def _write_passwd(root: Path, users: dict[str, str]) -> None:
    uid, gid = _owner()
    lines = [f"{name}:{{PLAIN}}{password}:{uid}:{gid}::{root}/mail/{name}::" for name, password in users.items()]
    (root / "passwd").write_text("\n".join(lines) + "\n")


CONFIG = """
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir
mail_plugins = $mail_plugins
{extra}
protocol imap {{
  mail_max_userip_connections = 50
  imap_idle_notify_interval = 1 secs
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
"""


@contextmanager
def dovecot_server(
    users: dict[str, str] | None = None, *, notify: bool = True, config: str = ""
) -> Iterator[ImapServer]:
    """``config``: Dovecot settings appended to the default ones (later settings and same-named
    sections override and merge), to make it behave like another server (tests/imap_variants.py)."""
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not Path(binary).exists():
        pytest.fail("Dovecot is not installed: apt-get install dovecot-imapd (.ci/run does this)")
    root = Path(tempfile.mkdtemp(prefix="hub-test-imap-"))
    uid, gid = _owner()
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    port = free_port()
    # Dovecot offers NOTIFY only with the mailbox list index (its default); without it, no NOTIFY.
    extra = "" if notify else "mailbox_list_index = no"
    (root / "dovecot.conf").write_text(CONFIG.format(root=root, port=port, uid=uid, gid=gid, extra=extra) + config)
    server = ImapServer("127.0.0.1", port, root, dict(users or {"staff": "secret"}), binary)
    _write_passwd(root, server.users)
    if os.geteuid() == 0:
        for path in (root / "mail", root / "state"):
            os.chown(path, uid, gid)
        root.chmod(0o755)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
