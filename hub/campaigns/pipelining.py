"""hub.outbound's reused relay session, with SMTP PIPELINING (RFC 2920) for mailings.

smtplib sends MAIL, RCPT and DATA one at a time, waiting for each answer: four round trips per
message, which is what limits a mailing on a nearby relay. With PIPELINING (which every common
relay offers) MAIL, RCPT and DATA go out in one write and their three answers are read after it:
two round trips per message. Everything else (opening, TLS, login, the idle check, dropping the
session after a 421 or a lost connection, how answers are sorted into temporary and permanent)
is hub.outbound's own; a relay without PIPELINING gets hub.outbound's plain ``send``.

A mailing hands the relay each message only once the previous one's ledger mark is committed
(hub.campaigns.sending's rule). ``ready`` is that wait, and it is called as late as the rule
allows: after the relay answered MAIL, RCPT and DATA (354) and before the message's text goes.
Until the text and its final dot have gone nothing can be delivered (a session closed after the
354 ends the transaction with nothing queued), so the relay's first round trip overlaps the
previous mark's commit instead of following it.

(For the lead: this could move into hub.outbound.Connection as an option; it is kept here so
hub.outbound is unchanged.)
"""

from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Callable, Sequence
from email.message import EmailMessage

from hub.outbound import Connection, Refused, refusal, size_limit, too_big


class BodySent(smtplib.SMTPServerDisconnected):
    """The connection was lost after the whole message was sent and before the relay answered:
    whether the relay kept it cannot be known (the ledger marks the recipient in doubt)."""


def _stuffed(data: bytes) -> bytes:
    # A dot that begins a line is doubled (RFC 5321 4.5.2). Few messages have one: looked for with
    # the regex engine (which scans for a two-byte literal about three times faster than bytes.find
    # or bytes.replace do), and replaced only when there is one.
    body = data.replace(b"\n.", b"\n..") if _LINE_DOT.search(data) is not None else data
    if body.startswith(b"."):
        body = b"." + body
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


_LINE_DOT = re.compile(rb"\n\.")


def _nothing() -> None:
    return None


class PipeliningConnection(Connection):
    def send(
        self,
        message: EmailMessage | bytes,
        *,
        sender: str,
        recipients: Sequence[str],
        ready: Callable[[], None] = _nothing,
        meanwhile: Callable[[], None] | None = None,
    ) -> dict[str, tuple[int, str]]:
        """hub.outbound's ``send``; ``ready()`` is called before the message can reach the relay (see
        the module's note). When it raises, the message is not sent and the session is dropped.
        ``meanwhile()`` (which must not raise) is work for the time the relay reads the message: it
        is called once the text has gone, before the relay's answer is read, or not at all."""
        if isinstance(message, EmailMessage) or len(recipients) != 1 or not (sender + recipients[0]).isascii():
            ready()
            return super().send(message, sender=sender, recipients=recipients)
        try:
            had = self._smtp
            smtp = self._session()
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise refusal(exc) from exc
        if not smtp.has_extn("pipelining"):
            ready()
            return super().send(message, sender=sender, recipients=recipients)
        limit = size_limit(smtp)
        if limit and len(message) > limit:
            raise too_big(len(message), limit)
        try:
            try:
                self._envelope(smtp, message, sender, recipients[0])
            except (OSError, smtplib.SMTPException) as exc:
                if smtp is not had or not _gone(exc):
                    raise
                # The relay ended a session it had kept (after so many messages, as Postfix and
                # Office 365 do) before this message's text went: once more on a new session.
                self._drop()
                smtp = self._session()
                if not smtp.has_extn("pipelining"):
                    ready()
                    return super().send(message, sender=sender, recipients=recipients)
                self._envelope(smtp, message, sender, recipients[0])
        except (OSError, smtplib.SMTPException) as exc:
            raise self._refusal(exc) from exc
        try:
            ready()
        except BaseException:
            # The relay waits for the text after its 354: closing the session ends the transaction
            # with nothing delivered.
            self._drop()
            raise
        try:
            self._message(smtp, message, meanwhile)
        except (OSError, smtplib.SMTPException) as exc:
            raise self._refusal(exc) from exc
        if smtp.sock is None:  # (closed after a relay out of step answered)
            self._drop()
        return {}

    def _refusal(self, exc: OSError | smtplib.SMTPException) -> Refused:
        """The relay's refusal, or a lost session as a temporary one (the session dropped)."""
        if isinstance(exc, smtplib.SMTPResponseException):
            if exc.smtp_code == 421:
                self._drop()
            else:
                self._reset()
            return Refused(
                exc.smtp_code,
                _text(exc.smtp_error),
                temporary=400 <= exc.smtp_code < 500,
                recipient=isinstance(exc, _RecipientRefused) and exc.smtp_code != 421,
            )
        self._drop()
        return Refused(421, str(exc) or exc.__class__.__name__, temporary=True)

    def _envelope(self, smtp: smtplib.SMTP, data: bytes, sender: str, recipient: str) -> None:
        """MAIL, RCPT and DATA in one write; returns once the relay said 354 (raises otherwise)."""
        size = f" SIZE={len(data)}" if smtp.has_extn("size") else ""
        commands = f"MAIL FROM:<{sender}>{size}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()
        if smtp.sock is None:
            raise smtplib.SMTPServerDisconnected("not connected")
        try:
            smtp.sock.sendall(commands)
            (mail_code, mail_reply), (rcpt_code, rcpt_reply), (data_code, data_reply) = _replies(smtp, 3)
        except smtplib.SMTPServerDisconnected as exc:
            # Lost before the message went out: certainly not delivered (unlike BodySent).
            raise ConnectionResetError(str(exc)) from exc
        if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)) and smtp.sock is not None:
            # The relay would take a message with nobody to deliver it to: end it empty, unused.
            # (A session _replies closed ends it by closing.)
            smtp.sock.sendall(b".\r\n")
            _replies(smtp, 1)
        if mail_code != 250:
            raise smtplib.SMTPResponseException(mail_code, mail_reply)
        if rcpt_code not in (250, 251):
            raise _RecipientRefused(rcpt_code, rcpt_reply)
        if data_code != 354:
            raise smtplib.SMTPResponseException(data_code, data_reply)

    def _message(self, smtp: smtplib.SMTP, data: bytes, meanwhile: Callable[[], None] | None = None) -> None:
        """The message after the relay's 354; returns once the relay took it (250)."""
        if smtp.sock is None:
            raise smtplib.SMTPServerDisconnected("not connected")
        smtp.sock.sendall(_stuffed(data))
        if meanwhile is not None:
            meanwhile()
        try:
            ((code, reply),) = _replies(smtp, 1)
        except smtplib.SMTPServerDisconnected as exc:
            raise BodySent(str(exc)) from exc
        if code != 250:
            raise smtplib.SMTPResponseException(code, reply)
        self._last_used = time.monotonic()


class _RecipientRefused(smtplib.SMTPResponseException):
    """The relay's answer to RCPT: about the recipient, not the session."""


def _gone(exc: BaseException) -> bool:
    """A relay that closed the session, or said 421 (closing it), before taking a message."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    return isinstance(exc, OSError | smtplib.SMTPServerDisconnected)


def _replies(smtp: smtplib.SMTP, count: int) -> list[tuple[int, bytes]]:
    """The relay's next ``count`` replies, as smtplib's ``getreply`` reads each (code, the lines'
    texts joined by newlines; -1 for a line without a code; a line over 8 kB is a 500), but read
    straight from the socket, all that has arrived at a time: smtplib reads line by line through
    a file object, which cost more than the rest of sending a message.

    The relay says nothing unasked, so the last reply ends what it sent; anything after it is a
    relay out of step, and the session is closed once these replies are taken (none after them
    could be trusted to answer what it seems to)."""
    sock = smtp.sock
    if sock is None:
        raise smtplib.SMTPServerDisconnected("not connected")
    buffer = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError as exc:
            smtp.close()
            raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from exc
        if not chunk:
            smtp.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        buffer += chunk
        if len(buffer) - buffer.rfind(b"\n") - 1 > _MAXLINE:
            smtp.close()
            raise smtplib.SMTPResponseException(500, "Line too long.")
        if buffer.count(b"\n") < count:
            continue
        replies: list[tuple[int, bytes]] = []
        texts: list[bytes] = []
        lines = buffer.split(b"\n")
        for line in lines[:-1]:
            if len(line) >= _MAXLINE:
                smtp.close()
                raise smtplib.SMTPResponseException(500, "Line too long.")
            texts.append(line[4:].strip(b" \t\r\n"))
            try:
                code = int(line[:3])
            except ValueError:
                code = -1
            else:
                if line[3:4] == b"-":
                    continue
            replies.append((code, b"\n".join(texts)))
            texts = []
        if len(replies) < count:
            continue  # (a reply of several lines, not all here yet)
        if len(replies) > count or texts or lines[-1]:
            smtp.close()
        return replies[:count]


_MAXLINE = 8192  # smtplib's limit of a reply line


def _text(reason: bytes | str) -> str:
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else reason
