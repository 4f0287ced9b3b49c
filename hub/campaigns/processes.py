"""Sending processes started ahead of a run (see "sending processes" in hub.campaigns.sending).

A sending process spends about a second importing hub before it can send its first message. A run
started from the command line (``hub campaign send MAILING --now``) asks for its processes first,
so they import while the run fills the ledger instead of after it. This module imports nothing of
hub's own for the same reason: asking costs the caller no import either.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

_spare: list[subprocess.Popen[bytes]] = []
_lock = threading.Lock()


def spawn() -> subprocess.Popen[bytes]:
    """A new sending process, waiting (after its imports) for the run to send its spec on stdin."""
    # hub importable in the child as it is here (an installed hub, or a checkout run from elsewhere)
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, "-c", "from hub.campaigns.sending import child_main; child_main()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},
    )


def how_many(connections: int, cores: int | None = None) -> int:
    """How many sending processes a run with ``connections`` SMTP sessions uses: one per core at
    most (``cores``, the machine's by default); one means the run sends from its own process."""
    return max(1, min(connections, cores or os.cpu_count() or 1))


def start_ahead(connections: int) -> None:
    """Have the sending processes of a run with ``connections`` sessions ready for this process's
    next run (none when that run sends from its own process). One that is never used ends quietly
    with this process (its stdin closes before a spec came)."""
    count = how_many(connections)
    if count == 1:
        return
    with _lock:
        _spare[:] = [process for process in _spare if process.poll() is None]
        while len(_spare) < count:
            _spare.append(spawn())


def take() -> subprocess.Popen[bytes]:
    """A process started ahead if one is still waiting, else a new one."""
    with _lock:
        while _spare:
            process = _spare.pop(0)
            if process.poll() is None:
                return process
    return spawn()
