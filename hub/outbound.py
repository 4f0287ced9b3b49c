"""Outbound mail through the configured SMTP relay (``HUB_SMTP_URL``).

Calendar invitations and campaign mailings both leave through here. A :class:`Connection` is
opened lazily and reused for many messages (a new TCP and TLS handshake per message would be the
slowest part of a mailing), checked before reuse after a pause, and every
answer is sorted into the two kinds callers act on: *try again later* (4xx, a lost connection, a
timeout) and *never for this recipient* (5xx), each with the relay's own words.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from types import TracebackType
from typing import Literal
from urllib.parse import unquote, urlsplit

from hub.config import Settings

Security = Literal["starttls", "tls", "plain"]
_IDLE_CHECK_SECONDS = 5.0


class RelayNotConfigured(Exception):
    """No ``HUB_SMTP_URL`` is set, so hub cannot send mail."""

    def __init__(self) -> None:
        super().__init__("no mail relay is configured (HUB_SMTP_URL)")


class Refused(Exception):
    """The relay did not take a message; ``temporary`` says whether trying later may help."""

    def __init__(self, code: int, reason: str, *, temporary: bool) -> None:
        super().__init__(f"{code} {reason}".strip())
        self.code = code
        self.reason = reason
        self.temporary = temporary


@dataclass(frozen=True)
class Relay:
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    security: Security = "starttls"
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 30.0) -> Relay:
        parts = urlsplit(url)
        security: Security = {"smtps": "tls", "smtp+plain": "plain"}.get(parts.scheme, "starttls")  # type: ignore[assignment]
        default_port = {"tls": 465, "plain": 25, "starttls": 587}[security]
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or default_port,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            security=security,
            timeout=timeout,
        )


def relay_for(settings: Settings) -> Relay:
    if not settings.smtp_url:
        raise RelayNotConfigured()
    return Relay.from_url(settings.smtp_url)


def _refusal(exc: Exception) -> Refused:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reason = next(iter(exc.recipients.values()), (550, b"recipient refused"))
        return Refused(code, _text(reason), temporary=400 <= code < 500)
    if isinstance(exc, smtplib.SMTPResponseException):
        return Refused(exc.smtp_code, _text(exc.smtp_error), temporary=400 <= exc.smtp_code < 500)
    # Lost connection, timeout, refused connect, TLS failure: the relay may be back later.
    return Refused(421, str(exc) or exc.__class__.__name__, temporary=True)


def _text(reason: bytes | str) -> str:
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else reason


class Connection:
    """One reusable session with the relay. Use as a context manager; not shared between threads."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._smtp: smtplib.SMTP | None = None
        self._last_used = 0.0

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _open(self) -> smtplib.SMTP:
        relay = self.relay
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if relay.security == "tls":
            smtp = smtplib.SMTP_SSL(relay.host, relay.port, timeout=relay.timeout, context=context)
        else:
            smtp = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout)
        smtp.ehlo()
        encrypted = relay.security == "tls"
        if relay.security == "starttls" and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
            encrypted = True
        if relay.username:
            if not encrypted and relay.security != "plain":
                smtp.close()
                # A password never crosses the network in clear text unless the admin said so.
                raise Refused(530, "the relay offers no STARTTLS; use smtps:// or smtp+plain://", temporary=False)
            smtp.login(relay.username, relay.password)
        return smtp

    def send(
        self, message: EmailMessage | bytes, *, sender: str, recipients: Sequence[str]
    ) -> dict[str, tuple[int, str]]:
        """Hand one message to the relay. Returns the recipients it refused while taking the others
        (code, reason); raises :class:`Refused` when it took nobody."""
        international = any(not address.isascii() for address in (sender, *recipients))
        if isinstance(message, EmailMessage):
            data = message.as_bytes(policy=SMTPUTF8 if international else SMTP)
        else:
            data = message
        try:
            smtp = self._session()
            options = ["SMTPUTF8"] if international and smtp.has_extn("smtputf8") else []
            refused = smtp.sendmail(sender, list(recipients), data, mail_options=options)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as exc:
            if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 421:
                self._drop()
            else:
                self._reset()
            raise _refusal(exc) from exc
        except (OSError, smtplib.SMTPException) as exc:
            # Lost mid-transaction: whether the relay kept the message is unknown, so it is not
            # sent again here; the caller's ledger decides (a deferral, retried later).
            self._drop()
            raise _refusal(exc) from exc
        self._last_used = time.monotonic()
        return {address: (code, _text(reason)) for address, (code, reason) in refused.items()}

    def _session(self) -> smtplib.SMTP:
        """The open session, checked with NOOP when it sat idle (relays close idle sessions, and
        finding that out by losing a message half-way would leave its fate unknown)."""
        if self._smtp is not None and time.monotonic() - self._last_used > _IDLE_CHECK_SECONDS:
            try:
                if self._smtp.noop()[0] != 250:
                    self._drop()
            except (OSError, smtplib.SMTPException):
                self._drop()
        if self._smtp is None:
            self._smtp = self._open()
            self._last_used = time.monotonic()
        return self._smtp

    def _reset(self) -> None:
        # After a refused transaction the session stays usable once RSET clears it.
        if self._smtp is not None:
            try:
                self._smtp.rset()
            except (OSError, smtplib.SMTPException):
                self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError):
                self._smtp.close()
        self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
        self._drop()


def _addresses(message: EmailMessage, *headers: str) -> list[str]:
    """The bare addresses in ``headers`` (an envelope takes "a@b.example", not "Name <a@b.example>")."""
    return [a.addr_spec for h in headers if message[h] is not None for a in message[h].addresses]


def send_one(settings: Settings, message: EmailMessage, *, sender: str = "", recipients: Sequence[str] = ()) -> None:
    """Send a single message (an invitation, a test send). Envelope defaults come from the headers."""
    envelope_from = sender or settings.mail_from or next(iter(_addresses(message, "From")), "")
    to = list(recipients) or _addresses(message, "To", "Cc")
    with Connection(relay_for(settings)) as connection:
        refused = connection.send(message, sender=envelope_from, recipients=to)
    if refused:
        address, (code, reason) = next(iter(refused.items()))
        raise Refused(code, f"{address}: {reason}", temporary=400 <= code < 500)
