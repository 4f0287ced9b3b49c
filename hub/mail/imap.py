"""Talking to the IMAP server: connect with timeouts, find folders, and say failures in plain words."""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

TIMEOUT_SECONDS = 60


class MailServerError(Exception):
    """The server could not be used; the message says why in words a user understands."""


def plain_words(exc: BaseException, host: str, port: int) -> str:
    if isinstance(exc, LoginError):
        return "The server refused the user name or password."
    if isinstance(exc, socket.gaierror):
        return f"The server name {host} cannot be found."
    if isinstance(exc, ConnectionRefusedError):
        return f"Nothing answers at {host} port {port} (connection refused)."
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"The server {host} did not answer within {TIMEOUT_SECONDS} seconds."
    if isinstance(exc, ssl.SSLError):
        return f"The secure connection to {host} failed ({exc.reason or exc})."
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, EOFError, imaplib.IMAP4.abort)):
        return f"The connection to {host} was dropped."
    if isinstance(exc, OSError):
        return f"Cannot reach {host} port {port}: {exc.strerror or exc}."
    if isinstance(exc, IMAPClientError):
        return f"The server said: {exc}"
    return f"Unexpected error: {type(exc).__name__}: {exc}"


@contextmanager
def connect(host: str, port: int, security: str, username: str, password: str) -> Iterator[IMAPClient]:
    """A logged-in client; every failure becomes :class:`MailServerError` in plain words."""
    try:
        client = IMAPClient(
            host,
            port=port,
            ssl=security == "ssl",
            timeout=TIMEOUT_SECONDS,
            ssl_context=ssl.create_default_context() if security == "ssl" else None,
        )
        if security == "starttls":
            client.starttls(ssl.create_default_context())
        client.login(username, password)
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
