"""The parse helper process: a batch parsed there is exactly what in-process parsing gives, with the
bytes in a durable pack; a helper that dies costs nothing but time; a message the parser cannot get
through is quarantined instead of holding its batch; and a helper never outlives the process that
started it, even one killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from hub.mail import packs, parse_helper
from hub.mail.parse import ParsedMessage
from hub.mail.parse_helper import parse_and_pack, start_parsing


def _mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Klant {n} <klant{n}@bakker.example>"
    msg["To"] = "verkoop@hub.example"
    msg["Subject"] = f"Bestelling {n}"
    msg["Message-ID"] = f"<order{n}@test>"
    msg.set_content(f"Graag {n} dakpannen.\n")
    if n % 3 == 0:
        msg.add_attachment(os.urandom(3000), maintype="application", subtype="pdf", filename=f"order{n}.pdf")
    return msg.as_bytes()


BATCH = [_mail(n) for n in range(45)] + [b"\x00\xff not mail at all"]


def _rows(results: list[parse_helper.Parsed], root: Path) -> list[object]:
    """What the sync would store, with the bytes read back from the packs instead of pack names."""
    rows: list[object] = []
    for message in results:
        assert isinstance(message, ParsedMessage)
        raw = packs.read(root, message.raw_pack, message.raw_offset, message.raw_length, compressed=True)
        attachments = [
            (a.filename, a.sha256, a.size, packs.read(root, a.pack, a.offset, a.size, compressed=False))
            for a in message.attachments
        ]
        rows.append((message.message_key, message.subject, message.participants, message.text_body, raw, attachments))
    return rows


@pytest.fixture(autouse=True)
def _fresh_helper(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setattr(parse_helper, "_retry_at", 0.0)
    yield
    parse_helper.stop_helper()


def test_a_batch_parsed_by_the_helper_is_what_in_process_parsing_gives(tmp_path: Path) -> None:
    expected = parse_and_pack(BATCH, tmp_path / "a")
    results = start_parsing(BATCH, tmp_path / "b")()
    helper = parse_helper._helper
    assert helper is not None and not helper.gone  # it really went to the helper process
    assert _rows(results, tmp_path / "b") == _rows(expected, tmp_path / "a")
    assert _rows(results, tmp_path / "b")[0][4] == BATCH[0]  # type: ignore[index]  # the .eml is whole
    assert {a.data for m in results if isinstance(m, ParsedMessage) for a in m.attachments} == {b""}


def test_a_helper_that_dies_costs_only_time(tmp_path: Path) -> None:
    start_parsing(BATCH, tmp_path)()
    helper = parse_helper._helper
    assert helper is not None
    os.kill(helper.pid, signal.SIGKILL)
    results = start_parsing(BATCH, tmp_path)()  # parsed in-process instead
    assert len(results) == len(BATCH) and all(isinstance(m, ParsedMessage) for m in results)
    assert _rows(results, tmp_path) == _rows(parse_and_pack(BATCH, tmp_path), tmp_path)


def test_a_message_the_parser_cannot_finish_is_quarantined_and_the_rest_parsed(
    tmp_path: Path, parser_trap: bytes
) -> None:
    trap = b"From: x@y.example\r\nSubject: " + parser_trap + b"\r\n\r\nbody\r\n"
    batch = [*BATCH[:3], trap, *BATCH[3:5]]
    stuck = parse_helper._shared_helper()
    assert stuck is not None
    results = start_parsing(batch, tmp_path)()
    assert results[3] == "could not be parsed: the parser did not finish within 2 s"
    others = results[:3] + results[4:]
    assert _rows(others, tmp_path) == _rows(parse_and_pack(BATCH[:5], tmp_path / "in-process"), tmp_path / "in-process")
    deadline = time.monotonic() + 10
    while _alive(stuck.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(stuck.pid)  # the stuck helper was stopped, not left spinning
    fresh = parse_helper._shared_helper()  # and the next batch gets a new helper at once
    assert fresh is not None and fresh.pid != stuck.pid


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited; only its entry waits to be reaped


def test_the_helper_does_not_outlive_a_killed_sync(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys\n"
        "from hub.mail import parse_helper\n"
        "helper = parse_helper._shared_helper()\n"
        "print(helper.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL
    helper_pid = int(done.stdout.strip())
    deadline = time.monotonic() + 20
    while _alive(helper_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(helper_pid)
