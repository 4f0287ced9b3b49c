"""Parsing and packing a sync batch in a second process, so a first sync uses two cores.

Python parses mail under the GIL, one message at a time, and on a first sync parsing is half the
work. So while the sync's own process downloads the next batch and stores the previous one, a helper
process parses the current one and writes its pack (raw messages and attachments, see
:mod:`hub.mail.packs`): the bytes never travel back, only what goes into the rows.

The helper is a plain child process fed through its stdin (not a multiprocessing pool): when the
sync's process dies, even by kill -9, the helper reads end-of-file and exits, so no orphan stays
behind; and it works inside Celery's daemonic pool processes, which multiprocessing refuses to give
children. A helper that dies or cannot start costs nothing but time: that batch is parsed
in-process, and so are the batches of the next few minutes.

Frames on both pipes are a 4-byte length and a pickle (our own two processes, over private pipes).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import IO

from hub.mail.packs import PackWriter
from hub.mail.parse import ParsedMessage, parse_message

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 300  # after a helper died, parse in-process this long before trying again
# A batch the helper has not answered by then holds a message the parser cannot get through: the
# batch is parsed again a message at a time, each with MESSAGE_SECONDS, and such a message is
# quarantined instead of holding its folder forever. (A normal batch takes seconds; both together
# stay inside the mailbox's five-minute lease, so no other worker takes the mailbox meanwhile.)
BATCH_SECONDS = 180.0
MESSAGE_SECONDS = 60.0
# Tests only: a helper started with this in its environment never finishes a message containing it.
_HANG_ON = os.environ.get("HUB_TEST_PARSE_HELPER_HANGS_ON", "").encode()
_HEADER = struct.Struct("!I")

Parsed = ParsedMessage | str  # a parsed message, or why it could not be parsed (it is quarantined)


def parse_one(raw: bytes) -> Parsed:
    """One message as the sync stores it; the reason as text if the parser failed on it."""
    try:
        message = parse_message(raw)
    except Exception as exc:  # the parser promises not to raise; if it does, quarantine the message
        return f"could not be parsed: {type(exc).__name__}: {exc}"
    for attachment in message.attachments:
        attachment.sha256 = hashlib.sha256(attachment.data).hexdigest()
        attachment.size = len(attachment.data)
    return message


def parse_and_pack(raws: list[bytes], packs: Path) -> list[Parsed]:
    """Parse a batch and keep its raw messages (gzip) and attachments in one new pack under ``packs``.

    The pack is on disk (fsynced) when this returns, and each message knows where its bytes are.
    """
    pack = PackWriter(packs)
    results: list[Parsed] = []
    slots: list[tuple[int, list[int]]] = []
    try:
        for raw in raws:
            message = parse_one(raw)
            results.append(message)
            if isinstance(message, ParsedMessage):
                # Queued now, so compression (in a thread, outside the GIL) overlaps the next parse.
                raw_slot = pack.add(raw, compress=True)
                slots.append((raw_slot, [pack.add(a.data, compress=False) for a in message.attachments]))
        pack.close()
    except BaseException:
        pack.abandon()
        raise
    packed = (m for m in results if isinstance(m, ParsedMessage))
    for message, (raw_slot, attachment_slots) in zip(packed, slots, strict=True):
        message.raw_pack = pack.name
        message.raw_offset, message.raw_length = pack.location(raw_slot)
        for attachment, slot in zip(message.attachments, attachment_slots, strict=True):
            attachment.pack, attachment.offset = pack.name, pack.location(slot)[0]
            attachment.data = b""  # in the pack: the bytes need not travel back
    return results


def _write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise EOFError("the other side closed the pipe")
    return data


def _read_frame(stream: IO[bytes]) -> bytes:
    (size,) = _HEADER.unpack(_read_exactly(stream, _HEADER.size))
    return _read_exactly(stream, size)


class HelperGone(Exception):
    """The helper process died or could not start; the batch is parsed in-process instead."""


class ParseHelper:
    """One helper process; batches are answered in the order they were sent."""

    def __init__(self) -> None:
        # The helper must import hub from wherever this process did, installed or not.
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "hub.mail.parse_helper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self._pending: deque[Future[list[Parsed]]] = deque()
        self._lock = threading.Lock()
        self.gone = False
        self.stuck = False  # killed because it did not finish a batch (not its own failure)
        self._reader = threading.Thread(target=self._read_answers, name="parse-helper-reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    def submit(self, raws: list[bytes], packs: Path) -> Future[list[Parsed]]:
        future: Future[list[Parsed]] = Future()
        payload = pickle.dumps((raws, str(packs)), protocol=pickle.HIGHEST_PROTOCOL)
        assert self._process.stdin is not None
        with self._lock:
            if self.gone:
                future.set_exception(HelperGone("the parse helper is not running"))
                return future
            self._pending.append(future)
            # Blocks while the helper is busy with the batch before: the pipeline is one deep. A
            # broken pipe is left to the reader, which sees the end and fails every pending batch.
            with contextlib.suppress(OSError):
                _write_frame(self._process.stdin, payload)
        return future

    def _read_answers(self) -> None:
        assert self._process.stdout is not None
        try:
            while True:
                answer = pickle.loads(_read_frame(self._process.stdout))
                self._pending.popleft().set_result(answer)
        except (EOFError, OSError, pickle.UnpicklingError):
            pass
        with self._lock:
            self.gone = True
            while self._pending:
                self._pending.popleft().set_exception(HelperGone("the parse helper stopped"))
        self.close()

    def kill(self) -> None:
        """Stop a helper stuck on a message; its pending batches fail with :class:`HelperGone`."""
        self.stuck = True
        # Killed before taking the lock: another thread may hold it, blocked writing the next batch
        # to the stuck helper; the kill breaks that pipe and so frees the lock.
        with contextlib.suppress(OSError):
            self._process.kill()
        with self._lock:
            self.gone = True

    def close(self) -> None:
        """Stop the helper: it exits when its stdin closes."""
        with self._lock:
            self.gone = True
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


_helper: ParseHelper | None = None
_helper_pid = 0  # the process that started it: a forked child must start its own
_helper_lock = threading.Lock()
_retry_at = 0.0


def _shared_helper() -> ParseHelper | None:
    global _helper, _helper_pid, _retry_at
    with _helper_lock:
        if _helper is not None and _helper_pid == os.getpid() and not _helper.gone:
            return _helper
        if _helper is not None and _helper_pid == os.getpid() and not _helper.stuck:  # it died
            log.warning("the mail parse helper stopped; parsing in-process for %s s", RETRY_AFTER_SECONDS)
            _retry_at = time.monotonic() + RETRY_AFTER_SECONDS
            _helper = None
        if time.monotonic() < _retry_at:
            return None
        try:
            _helper, _helper_pid = ParseHelper(), os.getpid()
        except OSError as exc:
            log.warning("cannot start the mail parse helper (%s); parsing in-process", exc)
            _retry_at = time.monotonic() + RETRY_AFTER_SECONDS
            return None
        return _helper


def start_parsing(raws: list[bytes], packs: Path) -> Callable[[], list[Parsed]]:
    """Begin :func:`parse_and_pack` of a batch; the returned function gives the results in order.

    The batch goes to the helper process at once and is parsed while the caller does other work; when
    no helper runs, it is parsed in-process when the results are asked for.
    """

    def in_process() -> list[Parsed]:
        return parse_and_pack(raws, packs)

    helper = _shared_helper()
    if helper is None:
        return in_process
    future = helper.submit(raws, packs)

    def collect() -> list[Parsed]:
        try:
            return future.result(timeout=BATCH_SECONDS)
        except HelperGone:
            return in_process()
        except TimeoutError:
            assert helper is not None
            log.warning("the mail parse helper is stuck on a batch of %s messages; parsing them one by one", len(raws))
            helper.kill()
            return _one_at_a_time(raws, packs)

    return collect


def _one_at_a_time(raws: list[bytes], packs: Path) -> list[Parsed]:
    """Each message in a helper with a time limit; one the parser cannot get through is quarantined."""
    results: list[Parsed] = []
    helper: ParseHelper | None = None
    for raw in raws:
        answer: Parsed | None = None
        for _attempt in range(2):  # a helper that dies once may have died of something else
            if helper is None or helper.gone:
                try:
                    helper = ParseHelper()
                except OSError:  # no process to be had: the message is parsed here, as ever
                    helper, answer = None, parse_and_pack([raw], packs)[0]
                    break
            try:
                answer = helper.submit([raw], packs).result(timeout=MESSAGE_SECONDS)[0]
                break
            except TimeoutError:
                helper.kill()
                answer = f"could not be parsed: the parser did not finish within {MESSAGE_SECONDS:.0f} s"
                break
            except HelperGone:
                answer = "could not be parsed: the parser's process stopped on it"
        assert answer is not None
        results.append(answer)
    if helper is not None:
        helper.close()
    return results


def stop_helper() -> None:
    """Stop this process's helper, if it started one (tests; a worker simply exits)."""
    global _helper
    with _helper_lock:
        helper, _helper = _helper, None
    if helper is not None and _helper_pid == os.getpid():
        helper.close()


def main() -> None:
    """The helper: parse each batch read from stdin, answer on stdout, until stdin closes."""
    # Ctrl-C reaches the whole process group; the sync's process decides, and closes our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout carries answers: a stray print must not corrupt a frame
    while True:
        try:
            raws, packs = pickle.loads(_read_frame(source))
        except EOFError:
            return
        if _HANG_ON and any(_HANG_ON in raw for raw in raws):
            time.sleep(3600)
        results = parse_and_pack(raws, Path(packs))
        del raws  # before the answer is built: memory stays at one batch
        _write_frame(sink, pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    main()
