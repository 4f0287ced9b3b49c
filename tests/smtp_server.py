"""A real SMTP server (aiosmtpd) on a free loopback port that records what it receives and can
answer 421/451/550 on demand, for calendar invitations and campaign mailings.

    def test_x(smtp_server):            # fixture from tests/conftest.py
        smtp_server.fail_next(451, times=2)   # the next two transactions are deferred
        ...
        assert smtp_server.recipients() == [...]
"""

from __future__ import annotations

import email
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.servers import free_port

_REPLIES = {
    421: "421 4.3.2 Service not available, closing transmission channel",
    451: "451 4.3.0 Temporary local problem, try again later",
    550: "550 5.1.1 Mailbox unavailable",
    552: "552 5.3.4 Message too big",
    554: "554 5.7.1 Rejected",
}


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=default_policy)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.server._reply_for_recipient(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.server._take_failure()
        if reply:
            if reply.startswith("421"):
                # 421 means the server closes the channel: do it, as a real relay would.
                smtp.transport.close()  # type: ignore[union-attr]
            return reply
        content = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else content.encode()
        self.server._record(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), data))
        return "250 2.0.0 OK queued"


class SmtpServer:
    """Start with :meth:`start`; ``url`` is the HUB_SMTP_URL that reaches it."""

    def __init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._failures: list[str] = []
        self._refused_recipients: dict[str, str] = {}
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp+plain://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, decode_data=False, enable_SMTPUTF8=True
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # What tests arrange -----------------------------------------------------------------------
    def fail_next(self, code: int, times: int = 1) -> None:
        """The next ``times`` messages are answered with ``code`` at DATA (421 also hangs up)."""
        with self._lock:
            self._failures.extend([_REPLIES[code]] * times)

    def refuse_recipient(self, address: str, code: int = 550) -> None:
        with self._lock:
            self._refused_recipients[address.lower()] = _REPLIES[code]

    # What tests read ---------------------------------------------------------------------------
    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def recipients(self) -> list[str]:
        """Every accepted recipient, once per message that reached them (duplicates show twice)."""
        return [rcpt for item in self.received for rcpt in item.rcpt_tos]

    def messages(self) -> Iterator[EmailMessage]:
        for item in self.received:
            yield item.message()

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    # Called by the handler ---------------------------------------------------------------------
    def _record(self, item: Received) -> None:
        with self._lock:
            self._received.append(item)

    def _take_failure(self) -> str:
        with self._lock:
            return self._failures.pop(0) if self._failures else ""

    def _reply_for_recipient(self, address: str) -> str:
        with self._lock:
            return self._refused_recipients.get(address.lower(), "")


def started() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
