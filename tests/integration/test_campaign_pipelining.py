"""hub.campaigns.pipelining against real relays: postfix's smtp-sink (what the campaign benchmark sends
to, announcing PIPELINING, told to refuse or to hang up where a test needs it) and a scripted relay
on a loopback socket for what postfix never does on cue (replies of several lines, split over
several writes, a relay that answers more than it was asked)."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.campaigns import messages
from hub.campaigns.pipelining import BodySent, PipeliningConnection
from hub.campaigns.render import Templates, field_values
from hub.outbound import Refused, Relay
from tests.servers import free_port, wait_for_port

SINK = "/usr/sbin/smtp-sink"


@pytest.fixture
def sink() -> Iterator[Callable[..., tuple[str, Path]]]:
    """Starts smtp-sink with the given options; (relay URL, the folder its dumps go to)."""
    started: list[subprocess.Popen[bytes]] = []
    # Not under tmp_path: smtp-sink runs as nobody when the tests run as root, and pytest's temporary
    # folders are the owner's only.
    with tempfile.TemporaryDirectory() as folder:

        def start(*options: str) -> tuple[str, Path]:
            if not os.path.exists(SINK):
                pytest.fail("postfix's smtp-sink is not installed: apt-get install postfix")
            dumps = Path(folder) / f"dumps{len(started)}"
            dumps.mkdir()
            for path in (Path(folder), dumps):
                path.chmod(0o777)  # (smtp-sink writes as the user it runs as)
            port = free_port()
            user = ["-u", "nobody"] if os.geteuid() == 0 else []
            command = [SINK, *user, "-d", f"{dumps}/%M.", *options, f"127.0.0.1:{port}", "100"]
            process = subprocess.Popen(command)
            started.append(process)
            wait_for_port(port, proc=process)
            return f"smtp+plain://127.0.0.1:{port}", dumps

        yield start
        for process in started:
            process.terminate()
            process.wait()


def _dumped(dumps: Path, count: int) -> dict[str, bytes]:
    """The messages smtp-sink took by recipient (its dumps: LF line ends, dots unstuffed, its own
    headers first)."""
    deadline = time.monotonic() + 30
    while len(list(dumps.iterdir())) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    dumped = {}
    for path in dumps.iterdir():
        dump = path.read_bytes()
        recipient = dump.split(b"X-Rcpt-Args: <", 1)[1].split(b">", 1)[0].decode()
        dumped[recipient] = dump
    return dumped


def _mailing(count: int) -> list[tuple[str, bytes]]:
    """(address, message) of a mailing as sending builds them, with lines that begin with a dot."""
    templates = Templates.compile(
        "News for {{ contact.name }}",
        "<p>Dear {{ contact.name }},</p>\n.<p>{{ relation.city }}</p>",
        "Dear {{ contact.name }},\n.\n..{{ relation.city }}\n" + "A line of the offer, long enough to fold. " * 4,
    )
    assert templates.fills is not None
    envelope = messages.Envelope.of("News", "news@hub.example", "")
    skeleton = messages.Skeleton(envelope, templates.fills, "Unsubscribe")
    built = []
    for number in range(count):
        address = f"p{number}@example.test"
        url = messages.unsubscribe_url("https://hub.example", "secret-key-0123456789", number)
        city = ".Utrecht" if number % 2 else "Zwolle"
        values = field_values(
            contact_name=f"Person{number} Example",
            contact_function="",
            address=address,
            relation={"name": "", "street": "", "postcode": "", "city": city, "country": "", "website": ""},
            owner_name="",
            owner_email="",
            unsubscribe_url=url,
        )
        _subject, data = skeleton.build(
            values,
            to_name=f"Person{number} Example",
            to_address=address,
            message_id=f"<{number}.1.x.hub@hub.example>",
            list_unsubscribe=url,
            date=datetime(2026, 3, 1, tzinfo=UTC),
            boundary=f"=_hub_1_{number}",
        )
        built.append((address, data))
    return built


def test_a_mailing_reaches_postfix_intact(sink: Callable[..., tuple[str, Path]]) -> None:
    url, dumps = sink()
    mailing = _mailing(120)
    settled: list[str] = []
    with PipeliningConnection(Relay.from_url(url)) as smtp:
        for address, data in mailing:
            assert (
                smtp.send(data, sender="bounces@hub.example", recipients=[address], ready=lambda: settled.append(""))
                == {}
            )
    assert len(settled) == len(mailing)  # every message waited for the previous one's mark
    dumped = _dumped(dumps, len(mailing))
    assert sorted(dumped) == sorted(address for address, _data in mailing)
    for address, data in mailing:
        # The message as built, every line that began with a dot unstuffed again by the relay.
        assert dumped[address].endswith(data.replace(b"\r\n", b"\n") + b"\n")


def test_a_session_lost_after_the_text_leaves_the_message_in_doubt(sink: Callable[..., tuple[str, Path]]) -> None:
    url, _dumps = sink("-q", ".")  # hangs up after the final dot, without an answer
    (address, data), *_rest = _mailing(1)
    with PipeliningConnection(Relay.from_url(url)) as smtp, pytest.raises(Refused) as refused:
        smtp.send(data, sender="bounces@hub.example", recipients=[address])
    assert refused.value.temporary and isinstance(refused.value.__cause__, BodySent)


# --- a scripted relay: replies of several lines, split over several writes ---------------------------


class ScriptedRelay:
    """Answers each connection's commands with ``script``: for each step, what it waits for and
    the chunks it answers with, written one by one with a pause between (each its own segment)."""

    def __init__(self, script: list[tuple[bytes, list[bytes]]]) -> None:
        self.script = script
        self.received: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"smtp+plain://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with client:
                client.sendall(b"220 scripted ESMTP\r\n")
                data = b""
                for expected, chunks in [
                    (b"\r\n", [b"250-scripted\r\n250-PIPELINING\r\n250 SIZE 100000\r\n"]),
                    *self.script,
                ]:
                    while expected not in data:
                        more = client.recv(65536)
                        if not more:
                            break
                        data += more
                    self.received.append(data)
                    data = b""
                    for chunk in chunks:
                        client.sendall(chunk)
                        time.sleep(0.02)
                if client.recv(65536).lower().startswith(b"quit"):
                    client.sendall(b"221 bye\r\n")

    def close(self) -> None:
        self.listener.close()


MESSAGE = b"Subject: hello\r\n\r\n.a dot\r\n"


def test_replies_of_several_lines_in_several_writes_are_read_whole() -> None:
    relay = ScriptedRelay(
        [
            (
                b"DATA\r\n",
                [b"250-sender\r\n25", b"0 ok\r\n250 2.1.5 recipient ok\r\n354-go", b" on\r\n354 end with .\r\n"],
            ),
            (b"\r\n.\r\n", [b"250-queued\r\n", b"250 as 42\r\n"]),
            (b"DATA\r\n", [b"250 ok\r\n550-5.1.1 no such\r\n550 5.1.1 user here\r\n503 no recipients\r\n"]),
            (b"rset\r\n", [b"250 flushed\r\n"]),
        ]
    )
    try:
        with PipeliningConnection(Relay.from_url(relay.url)) as smtp:
            assert smtp.send(MESSAGE, sender="a@hub.example", recipients=["b@example.test"]) == {}
            with pytest.raises(Refused) as refused:
                smtp.send(MESSAGE, sender="a@hub.example", recipients=["c@example.test"])
    finally:
        relay.close()
    assert (refused.value.code, refused.value.reason, refused.value.temporary) == (
        550,
        "5.1.1 no such\n5.1.1 user here",
        False,
    )
    assert relay.received[2].endswith(b"\r\n..a dot\r\n.\r\n")  # stuffed once
    assert relay.connections == 1


def test_refusals_are_sorted_as_the_relay_meant_them() -> None:
    # (smtp-sink stops announcing PIPELINING when told to refuse, so the scripted relay refuses)
    relay = ScriptedRelay(
        [
            (b"DATA\r\n", [b"451 4.3.0 try later\r\n503 no sender\r\n503 no sender\r\n"]),
            (b"rset\r\n", [b"250 flushed\r\n"]),
            (b"DATA\r\n", [b"250 ok\r\n250 ok\r\n354 go on\r\n"]),
            (b"\r\n.\r\n", [b"554-5.7.1 looks like spam\r\n", b"554 5.7.1 go away\r\n"]),
            (b"rset\r\n", [b"250 flushed\r\n"]),
        ]
    )
    settled: list[str] = []
    outcomes = []
    try:
        with PipeliningConnection(Relay.from_url(relay.url)) as smtp:
            for recipient in ("b@example.test", "c@example.test"):
                with pytest.raises(Refused) as refused:
                    smtp.send(MESSAGE, sender="a@hub.example", recipients=[recipient], ready=lambda: settled.append(""))
                outcomes.append((refused.value.code, refused.value.temporary, len(settled)))
                # The relay answered: not lost, not in doubt.
                assert not isinstance(refused.value.__cause__, BodySent)
    finally:
        relay.close()
    # The refused sender: nothing handed over, nothing waited for; the refused text: waited for.
    assert outcomes == [(451, True, 0), (554, False, 1)]
    assert relay.connections == 1  # the session stays usable after each


def test_a_relay_answering_more_than_asked_keeps_the_message_but_not_the_session() -> None:
    relay = ScriptedRelay(
        [(b"DATA\r\n", [b"250 ok\r\n250 ok\r\n354 go on\r\n"]), (b"\r\n.\r\n", [b"250 queued\r\n250 what?\r\n"])]
    )
    try:
        with PipeliningConnection(Relay.from_url(relay.url)) as smtp:
            assert smtp.send(MESSAGE, sender="a@hub.example", recipients=["b@example.test"]) == {}
            assert smtp._smtp is None  # dropped: its next answers could not be trusted
    finally:
        relay.close()


def test_a_relay_out_of_step_after_a_refused_recipient_is_left_without_a_message() -> None:
    relay = ScriptedRelay([(b"DATA\r\n", [b"250 ok\r\n550 5.1.1 no such user\r\n354 go on\r\n250 what?\r\n"])])
    try:
        with PipeliningConnection(Relay.from_url(relay.url)) as smtp:
            with pytest.raises(Refused) as refused:
                smtp.send(MESSAGE, sender="a@hub.example", recipients=["b@example.test"], ready=pytest.fail)
            assert smtp._smtp is None  # closed, which ends the transaction: no empty message sent
    finally:
        relay.close()
    assert (refused.value.code, refused.value.temporary) == (550, False)
    assert relay.received[1].endswith(b"DATA\r\n")
