"""Outbound mail through the configured SMTP relay (``HUB_SMTP_URL``).

Calendar invitations and campaign mailings both leave through here. A :class:`Connection` is
opened lazily and reused for many messages (a new TCP and TLS handshake per message would be the
slowest part of a mailing), checked before reuse after a pause, and every
answer is sorted into the two kinds callers act on: *try again later* (4xx, a lost connection, a
timeout) and *never for this recipient* (5xx), each with the relay's own words.

What real relays do, and how hub copes: a relay that ends the session after so many messages
(Postfix's limits, Office 365 after 30) or answers the next MAIL with 421 gets that message again on
a new session, as nothing of it was taken yet; "452 too many recipients" sends the rest in a new
transaction (RFC 5321 3.3); a message over the relay's SIZE is refused before it is sent, with a
plain reason; 8-bit text goes with BODY=8BITMIME, or converted to 7 bits where the relay lacks
8BITMIME (RFC 6152); an address with an international domain goes as IDNA where the relay lacks
SMTPUTF8. Trouble opening the session (TLS, login) is never a recipient's fault, so it is always
*try again later*. The relay's certificate must be valid for its name unless ``HUB_SMTP_URL``
says otherwise: ``?cafile=/path.pem`` trusts that file alone (a private CA or a self-signed
certificate), ``?verify=no`` checks nothing.
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
from urllib.parse import parse_qs, unquote, urlsplit

from hub.config import Settings

Security = Literal["starttls", "tls", "plain"]
_IDLE_CHECK_SECONDS = 5.0


class RelayNotConfigured(Exception):
    """No ``HUB_SMTP_URL`` is set, so hub cannot send mail."""

    def __init__(self) -> None:
        super().__init__("no mail relay is configured (HUB_SMTP_URL)")


class Refused(Exception):
    """The relay did not take a message; ``temporary`` says whether trying later may help.
    ``recipient``: the relay answered about that recipient (greylisting, a full mailbox), its
    session fine, so this is no sign of a relay in trouble."""

    def __init__(self, code: int, reason: str, *, temporary: bool, recipient: bool = False) -> None:
        super().__init__(f"{code} {reason}".strip())
        self.code = code
        self.reason = reason
        self.temporary = temporary
        self.recipient = recipient


@dataclass(frozen=True)
class Relay:
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    security: Security = "starttls"
    timeout: float = 30.0
    cafile: str = ""  # trust only this CA or self-signed certificate (PEM)
    verify: bool = True  # False only when the operator wrote ?verify=no

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 30.0) -> Relay:
        parts = urlsplit(url)
        security: Security = {"smtps": "tls", "smtp+plain": "plain"}.get(parts.scheme, "starttls")  # type: ignore[assignment]
        default_port = {"tls": 465, "plain": 25, "starttls": 587}[security]
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or default_port,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            security=security,
            timeout=timeout,
            cafile=query.get("cafile", ""),
            verify=query.get("verify", "yes").lower() not in ("no", "false", "0", "off"),
        )

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cafile or None)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def relay_for(settings: Settings) -> Relay:
    if not settings.smtp_url:
        raise RelayNotConfigured()
    return Relay.from_url(settings.smtp_url)


def refusal(exc: Exception) -> Refused:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reason = next(iter(exc.recipients.values()), (550, b"recipient refused"))
        return Refused(code, _text(reason), temporary=400 <= code < 500, recipient=code != 421)
    if isinstance(exc, smtplib.SMTPResponseException):
        return Refused(exc.smtp_code, _text(exc.smtp_error), temporary=400 <= exc.smtp_code < 500)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Refused(
            421,
            f"the relay's certificate is not trusted ({exc.verify_message}); if this relay is meant, add "
            "?cafile=/path/to/its-ca.pem (or, knowingly, ?verify=no) to HUB_SMTP_URL",
            temporary=True,
        )
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
        context = relay.tls_context()
        smtp: smtplib.SMTP
        if relay.security == "tls":
            smtp = smtplib.SMTP_SSL(relay.host, relay.port, timeout=relay.timeout, context=context)
        else:
            smtp = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout)
        if smtp.ehlo()[0] != 250:
            # A relay without ESMTP (RFC 5321 4.1.4: fall back to HELO), or one behind a box that
            # hides it: plain SMTP then, no extensions (so no PIPELINING, 8BITMIME, SIZE).
            smtp.helo()
        encrypted = relay.security == "tls"
        if relay.security == "starttls" and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
            encrypted = True
        if relay.username:
            if not encrypted and relay.security != "plain":
                smtp.close()
                # A password never crosses the network in clear text unless the admin said so.
                # (As every trouble opening a session: no recipient's fault, so "try again later".)
                raise Refused(530, "the relay offers no STARTTLS; use smtps:// or smtp+plain://", temporary=True)
            try:
                smtp.login(relay.username, relay.password)
            except smtplib.SMTPException as exc:
                smtp.close()
                detail = (
                    f"{exc.smtp_code} {_text(exc.smtp_error)}"
                    if isinstance(exc, smtplib.SMTPResponseException)
                    else str(exc)
                )
                raise Refused(
                    535, f"the relay did not accept hub's user name and password ({detail})", temporary=True
                ) from exc
        return smtp

    def send(
        self, message: EmailMessage | bytes, *, sender: str, recipients: Sequence[str]
    ) -> dict[str, tuple[int, str]]:
        """Hand one message to the relay. Returns the recipients it refused while taking the others
        (code, reason); raises :class:`Refused` when it took nobody."""
        try:
            had = self._smtp
            smtp = self._session()
            if smtp is had:
                try:
                    return self._send(smtp, message, sender, recipients)
                except _Untouched:
                    # The relay ended a session it had kept (after so many messages, or idle)
                    # before taking any of this message: once more on a new session.
                    self._drop()
                    smtp = self._session()
            try:
                return self._send(smtp, message, sender, recipients)
            except _Untouched as exc:
                raise exc.cause from exc
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as exc:
            if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 421:
                self._drop()
            else:
                self._reset()
            raise refusal(exc) from exc
        except (OSError, smtplib.SMTPException) as exc:
            # Lost mid-transaction: whether the relay kept the message is unknown, so it is not
            # sent again here; the caller's ledger decides (a deferral, retried later).
            self._drop()
            raise refusal(exc) from exc

    def _send(
        self, smtp: smtplib.SMTP, message: EmailMessage | bytes, sender: str, recipients: Sequence[str]
    ) -> dict[str, tuple[int, str]]:
        """One message in as many transactions as the relay's recipient limit asks for."""
        envelope_sender, envelope_to, refused = _envelope(smtp, sender, recipients)
        if envelope_sender is None:
            raise Refused(553, f"{sender}: {_NO_SMTPUTF8}", temporary=False)
        if not envelope_to:
            address, (code, reason) = next(iter(refused.items()))
            raise Refused(code, f"{address}: {reason}", temporary=False)
        data, options = _prepared(
            smtp, message, international=not all(a.isascii() for a in (envelope_sender, *envelope_to))
        )
        first = True
        while envelope_to:
            try:
                later = self._transaction(smtp, data, envelope_sender, envelope_to, options, untouched=first)
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as exc:
                if first:
                    raise
                # (the others took it already: these ones are this message's refusals)
                self._reset()
                answer = refusal(exc)
                refused.update({address: (answer.code, answer.reason) for address in envelope_to})
                break
            first = False
            self._last_used = time.monotonic()
            # "452 4.5.3 Too many recipients": the relay took as many as it takes in one
            # transaction; the rest go in the next (each takes at least one, so this ends).
            envelope_to = [address for address, (code, _reason) in later.items() if code == 452]
            refused.update({address: answer for address, answer in later.items() if answer[0] != 452})
        return refused

    def _transaction(
        self,
        smtp: smtplib.SMTP,
        data: bytes,
        sender: str,
        recipients: Sequence[str],
        options: Sequence[str],
        *,
        untouched: bool,
    ) -> dict[str, tuple[int, str]]:
        """MAIL, RCPT, DATA as smtplib's ``sendmail``, but telling apart a relay gone before it took
        anything of this message (:class:`_Untouched`, when ``untouched`` allows it)."""

        def gone(exc: Exception) -> Exception:
            return _Untouched(exc) if untouched else exc

        try:
            code, reply = smtp.mail(sender, list(options))
        except smtplib.SMTPServerDisconnected as exc:
            raise gone(exc) from exc
        if code == 421:
            smtp.close()
            raise gone(smtplib.SMTPSenderRefused(code, reply, sender))
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        refused: dict[str, tuple[int, str]] = {}
        for address in recipients:
            try:
                code, reply = smtp.rcpt(address)
            except smtplib.SMTPServerDisconnected as exc:
                raise gone(exc) from exc
            if code == 421:
                smtp.close()
                raise gone(smtplib.SMTPRecipientsRefused({address: (code, reply)}))
            if code not in (250, 251):
                refused[address] = (code, _text(reply))
        if len(refused) == len(recipients):
            raise smtplib.SMTPRecipientsRefused({a: (c, r.encode()) for a, (c, r) in refused.items()})
        code, reply = smtp.data(data)
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        return refused

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


class _Untouched(Exception):
    """The relay closed the session (or said 421) before it took anything of this message."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


_NO_SMTPUTF8 = "the relay does not take international addresses (it offers no SMTPUTF8)"


def _envelope(
    smtp: smtplib.SMTP, sender: str, recipients: Sequence[str]
) -> tuple[str | None, list[str], dict[str, tuple[int, str]]]:
    """The envelope as this relay can take it: without SMTPUTF8 an international domain goes as IDNA
    (the same mailbox), a local part that is not ASCII cannot go at all (refused here, plainly)."""
    if smtp.has_extn("smtputf8"):
        return sender, list(recipients), {}
    refused: dict[str, tuple[int, str]] = {}
    to = []
    for address in recipients:
        ascii_address = _ascii(address)
        if ascii_address is None:
            refused[address] = (553, _NO_SMTPUTF8)
        else:
            to.append(ascii_address)
    return _ascii(sender), to, refused


def _ascii(address: str) -> str | None:
    if address.isascii():
        return address
    local, _at, domain = address.rpartition("@")
    if not local.isascii():
        return None
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return None


def _prepared(smtp: smtplib.SMTP, message: EmailMessage | bytes, *, international: bool) -> tuple[bytes, list[str]]:
    """The message's bytes and the MAIL options this relay needs for them."""
    eight_bit = smtp.has_extn("8bitmime")
    if isinstance(message, EmailMessage):
        policy = SMTPUTF8 if international else SMTP
        # Without 8BITMIME (RFC 6152) 8-bit text is sent base64- or quoted-printable-encoded.
        data = message.as_bytes(policy=policy if eight_bit else policy.clone(cte_type="7bit"))
    else:
        data = message  # (hub's mailings are made 7-bit: hub.campaigns.messages)
    options = ["SMTPUTF8"] if international else []
    if eight_bit and not data.isascii():
        options.append("BODY=8BITMIME")
    limit = size_limit(smtp)
    if limit:
        if len(data) > limit:
            raise too_big(len(data), limit)
        options.append(f"SIZE={len(data)}")
    return data, options


def size_limit(smtp: smtplib.SMTP) -> int:
    """The largest message the relay takes (its SIZE, RFC 1870), 0 when it names none."""
    value = smtp.esmtp_features.get("size", "").strip() if smtp.has_extn("size") else ""
    return int(value) if value.isdigit() else 0


def too_big(size: int, limit: int) -> Refused:
    return Refused(
        552,
        f"the message is {_kb(size)} and the relay takes messages up to {_kb(limit)} (its SIZE limit)",
        temporary=False,
    )


def _kb(size: int) -> str:
    return f"{(size + 1023) // 1024} kB"


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
