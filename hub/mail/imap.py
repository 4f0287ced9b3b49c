"""Talking to the IMAP server: connect with timeouts, find folders, and say failures in plain words."""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


SPECIAL_USES = ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All")
# Servers without SPECIAL-USE (RFC 6154) flags: Exchange, Courier, older Dovecots and Cyrus. Their sent
# folder is found by the names mail programs give it (compared without case), directly in the personal
# namespace: "Sent Items" (Outlook), "Verzonden items" (Dutch Outlook), "Sent Messages" (Apple Mail).
WELL_KNOWN_SENT = (
    "sent",
    "sent items",
    "sent messages",
    "sent mail",
    "sent-mail",
    "verzonden items",
    "verzonden",
    "verzonden berichten",
    "gesendet",
    "gesendete elemente",
    "gesendete objekte",
    "envoyés",
    "éléments envoyés",
    "elementos enviados",
    "enviados",
    "posta inviata",
)
# Folders that cannot be selected: a parent that only holds folders (Gmail's "[Gmail]", Courier's
# "INBOX.Archief" above "INBOX.Archief.2025"), or one listed only because its children exist.
_UNSELECTABLE = ("\\noselect", "\\nonexistent")


@dataclass(frozen=True)
class _Listed:
    name: str
    flags: frozenset[str]  # lower case
    delimiter: str


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")


def _personal_namespace(client: IMAPClient, listing: list[_Listed]) -> tuple[str, str]:
    """(prefix, delimiter) of the user's own folders: "" and "/" on Dovecot and Exchange, "INBOX." and
    "." on Courier and many Cyrus servers. From NAMESPACE (RFC 2342) if offered, else from the listing."""
    if client.has_capability("NAMESPACE"):
        with contextlib.suppress(IMAPClientError, imaplib.IMAP4.error):
            personal = client.namespace().personal
            if personal:
                prefix, delimiter = personal[0]
                return _text(prefix), _text(delimiter)
    delimiter = next((f.delimiter for f in listing if f.name.upper() == "INBOX"), "") or "/"
    others = [f.name for f in listing if f.name.upper() != "INBOX"]
    # Without NAMESPACE, a listing where every folder sits below INBOX shows the INBOX. style.
    if others and all(name.upper().startswith("INBOX" + delimiter) for name in others):
        return "INBOX" + delimiter, delimiter
    return "", delimiter


def _resolve(configured: str, existing: dict[str, _Listed], prefix: str, delimiter: str) -> str | None:
    """The server's name for a folder the user typed: as typed, or with the personal namespace's
    prefix ("Sent" → "INBOX.Sent") and with "/" as the server's separator ("Archief/2025" →
    "INBOX.Archief.2025"). INBOX is one name in any case (RFC 3501)."""
    if configured.upper() == "INBOX":
        return "INBOX"
    candidates = [configured]
    if delimiter and delimiter != "/":
        candidates.append(configured.replace("/", delimiter))
    if prefix:
        candidates += [prefix + name for name in list(candidates) if not name.startswith(prefix)]
    for name in candidates:
        if name in existing:
            return name
    return None


def folders_to_sync(client: IMAPClient, configured: str) -> list[tuple[str, str]]:
    """(name, special-use) of the folders to sync: the configured ones, else INBOX and the sent folder.

    The sent folder is the one flagged \\Sent, else the first with a well-known name directly in the
    personal namespace. Configured names are matched as :func:`_resolve` says; names that do not exist
    or cannot be selected are left out (the rest is synced).
    """
    listing = [
        _Listed(_text(name), frozenset(_text(flag).lower() for flag in flags), _text(delimiter))
        for flags, delimiter, name in client.list_folders()
    ]
    prefix, delimiter = _personal_namespace(client, listing)
    existing = {f.name: f for f in listing if not f.flags & set(_UNSELECTABLE)}
    special: dict[str, str] = {}
    for folder in existing.values():
        for use in SPECIAL_USES:
            if use.lower() in folder.flags:
                special.setdefault(folder.name, use)
    if "\\Sent" not in special.values():
        for folder in existing.values():
            leaf = folder.name.removeprefix(prefix) if prefix else folder.name
            if (not folder.delimiter or folder.delimiter not in leaf) and leaf.lower() in WELL_KNOWN_SENT:
                special[folder.name] = "\\Sent"
                break
    names = [line.strip() for line in configured.splitlines() if line.strip()]
    if not names:
        names = ["INBOX", *[name for name, use in special.items() if use == "\\Sent"][:1]]
    found: list[str] = []
    for name in names:
        resolved = _resolve(name, existing, prefix, delimiter)
        if resolved is not None and resolved not in found:
            found.append(resolved)
    return [(name, special.get(name, "")) for name in found]
