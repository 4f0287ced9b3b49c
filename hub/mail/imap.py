"""Talking to the IMAP server: connect with timeouts, find folders, and say failures in plain words."""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from imapclient import IMAPClient, tls
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imap4 import IMAP4WithTimeout

from hub.i18n import N_, _, english
from hub.net import AddressRefused, checked_addresses, keeping_time_left, set_deadline, time_left

TIMEOUT_SECONDS = 60
LOGIN_REFUSED = "The server refused the user name or password."


class MailServerError(Exception):
    """The server could not be used; the message says why in words a user understands.

    ``stored`` keeps it translatable (hub.i18n.N_) for the health page; ``str()`` is the English.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.stored = message

    def __str__(self) -> str:
        return english(self.stored)


def plain_words(exc: BaseException, host: str, port: int) -> str:
    """The failure in words a user understands, stored (hub.i18n.N_) to be shown in his language."""
    if isinstance(exc, LoginError):
        return N_(LOGIN_REFUSED)
    if isinstance(exc, socket.gaierror):
        return N_("The server name %(host)s cannot be found.", host=host)
    if isinstance(exc, ConnectionRefusedError):
        return N_("Nothing answers at %(host)s port %(port)s (connection refused).", host=host, port=port)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return N_("The server %(host)s did not answer within %(seconds)s seconds.", host=host, seconds=TIMEOUT_SECONDS)
    if isinstance(exc, ssl.SSLError):
        return N_("The secure connection to %(host)s failed (%(reason)s).", host=host, reason=exc.reason or str(exc))
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, EOFError, imaplib.IMAP4.abort)):
        return N_("The connection to %(host)s was dropped.", host=host)
    if isinstance(exc, OSError):
        return N_(
            "Cannot reach %(host)s port %(port)s: %(reason)s.", host=host, port=port, reason=exc.strerror or str(exc)
        )
    if isinstance(exc, IMAPClientError):
        return N_("The server said: %(text)s", text=str(exc))
    return N_("Unexpected error: %(kind)s: %(text)s", kind=type(exc).__name__, text=str(exc))


def public_error(message: str, host: str, port: int) -> str:
    """A mailbox error as a non-admin may read it (admins see ``message`` itself).

    "Connection refused", "timed out", "dropped" or "the server said: SSH-2.0…" would tell an open
    port from a closed one and name the service behind it: with a form where anyone picks host and
    port, that makes hub a port scanner. So every failure reads "Cannot connect to HOST:PORT.", except
    a refused login, which only a real IMAP server can answer and which the user can fix.
    """
    if not message:
        return ""
    if english(message) in (LOGIN_REFUSED, _(LOGIN_REFUSED)):
        return _("The server refused the user name or password.")
    return _("Cannot connect to %(host)s:%(port)s.", host=host, port=port)


@contextmanager
def connect(
    host: str, port: int, security: str, username: str, password: str, *, allowed_hosts: str = ""
) -> Iterator[IMAPClient]:
    """A logged-in client; every failure becomes :class:`MailServerError` in plain words.

    The host must resolve to public addresses only, or be allowed by ``allowed_hosts`` (the
    ``HUB_MAIL_ALLOWED_HOSTS`` setting, see :mod:`hub.net`); otherwise nothing is connected.

    Connecting, TLS, the greeting, STARTTLS and the login together end within ``TIMEOUT_SECONDS``:
    a server that drips its greeting a byte at a time (a tarpit, or a wrong port such as an SSH
    tarpit's) never trips the timeout of one wait, and held the sync's worker for good. After the
    login each wait has its ``TIMEOUT_SECONDS`` (a big mailbox's fetch may take long as a whole).
    """
    deadline = time.monotonic() + TIMEOUT_SECONDS
    try:
        addresses = checked_addresses(host, port, allowed_hosts)
    except AddressRefused as refused:
        raise MailServerError(str(refused)) from None
    except (OSError, UnicodeError) as exc:
        raise MailServerError(plain_words(exc, host, port)) from exc
    try:
        client = _PinnedClient(
            addresses,
            host,
            deadline,
            port=port,
            ssl=security == "ssl",
            timeout=TIMEOUT_SECONDS,
            ssl_context=keeping_time_left(ssl.create_default_context()) if security == "ssl" else None,
        )
        if security == "starttls":
            client.starttls(keeping_time_left(ssl.create_default_context()))
        client.login(username, password)
        set_deadline(client._imap.sock, float("inf"), TIMEOUT_SECONDS)
    except Exception as exc:
        raise MailServerError(plain_words(exc, host, port)) from exc
    try:
        yield client
    except (OSError, IMAPClientError, EOFError, imaplib.IMAP4.error) as exc:
        raise MailServerError(plain_words(exc, host, port)) from exc
    finally:
        # The connection may already be gone; there is nothing left to close cleanly then.
        with contextlib.suppress(Exception):
            client.logout()


def _open_socket(addresses: list[str], port: int, timeout: float | None, deadline: float) -> socket.socket:
    """A connection to the first of the checked addresses that answers, whose waits all end by
    ``deadline`` (hub.net.time_left) until the login lifts it."""
    error: OSError = OSError(f"no address to connect to on port {port}")
    for address in addresses:
        left = max(deadline - time.monotonic(), 0.001)
        try:
            sock = socket.create_connection((address, port), timeout=left if timeout is None else min(left, timeout))
        except OSError as exc:
            error = exc
            continue
        return time_left(sock, deadline, timeout)
    raise error


class _PinnedClient(IMAPClient):
    """An IMAPClient that connects to the addresses :func:`hub.net.checked_addresses` approved.

    Resolving the name a second time could give another answer (DNS rebinding: public for the check,
    127.0.0.1 for the connection). The name is still used for TLS (SNI, certificate check).
    """

    def __init__(self, addresses: list[str], host: str, deadline: float, **kwargs: Any) -> None:
        self._addresses = addresses
        self._deadline = deadline
        super().__init__(host, **kwargs)

    def _create_IMAP4(self) -> imaplib.IMAP4:
        timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _PinnedTLS(self._addresses, self.host, self.port, self.ssl_context, timeout, self._deadline)
        return _PinnedPlain(self._addresses, self.host, self.port, timeout, self._deadline)


class _PinnedPlain(IMAP4WithTimeout):
    def __init__(self, addresses: list[str], host: str, port: int, timeout: float | None, deadline: float) -> None:
        self._addresses = addresses
        self._deadline = deadline
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        timeout = timeout if timeout is not None else self._timeout
        return _open_socket(self._addresses, self.port, timeout, self._deadline)


class _PinnedTLS(tls.IMAP4_TLS):
    def __init__(
        self,
        addresses: list[str],
        host: str,
        port: int,
        context: ssl.SSLContext | None,
        timeout: float | None,
        deadline: float,
    ) -> None:
        self._addresses = addresses
        self._deadline = deadline
        super().__init__(host, port, context, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        timeout = timeout if timeout is not None else self._timeout
        sock = _open_socket(self._addresses, self.port, timeout, self._deadline)
        return tls.wrap_socket(sock, self.ssl_context, self.host)


def folders_to_sync(client: IMAPClient, configured: str) -> list[tuple[str, str]]:
    """(name, special-use) of the folders to sync: the configured ones, else INBOX and Sent."""
    listing = client.list_folders()
    special = {}
    for flags, _delimiter, name in listing:
        for flag in flags:
            text = flag.decode() if isinstance(flag, bytes) else str(flag)
            if text in ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All"):
                special[name] = text
    names = [line.strip() for line in configured.splitlines() if line.strip()]
    if not names:
        names = ["INBOX", *[name for name, use in special.items() if use == "\\Sent"][:1]]
    existing = {name for _f, _d, name in listing}
    return [(name, special.get(name, "")) for name in names if name in existing or name.upper() == "INBOX"]
