"""A real Dovecot configured to behave like the other IMAP servers hub's users run.

Each variant is Dovecot settings appended to tests/mail_server.py's defaults (``dovecot_server(config=)``):
later settings win and same-named sections merge, so a variant can take capabilities away, move the
namespace or rename the special folders. What each imitates:

- ``EXCHANGE``: Exchange / Office 365: a bare capability list (no CONDSTORE, QRESYNC, ESEARCH, ENABLE,
  UIDPLUS, MOVE, SPECIAL-USE, LITERAL+, NOTIFY), "Sent Items" without a special-use flag.
- ``COURIER``: Courier and Cyrus without SPECIAL-USE: everything under the ``INBOX.`` namespace with
  ``.`` as separator (``INBOX.Sent``, ``INBOX.Archief.2025``); ``COURIER_OLD`` without NAMESPACE.
- ``CYRUS``: Cyrus: the ``INBOX.`` namespace, every extension, special-use flags in lower case.
- ``GMAIL``: ``[Gmail]/All Mail`` (\\All) and ``[Gmail]/Sent Mail`` (\\Sent) under a ``[Gmail]`` parent
  that holds no mail, labels as folders.
- ``NO_IDLE``: a server that does not offer IDLE (nor NOTIFY).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.mail_server import ImapServer, dovecot_server

# The default namespace's Sent, Drafts and Trash lose their special-use flag and are not created.
_NO_DEFAULT_FOLDERS = """
namespace inbox {
  mailbox Sent {
    special_use =
    auto = no
  }
  mailbox Drafts {
    special_use =
    auto = no
  }
  mailbox Trash {
    special_use =
    auto = no
  }
"""

EXCHANGE = (
    """
imap_capability = IMAP4rev1 IDLE NAMESPACE CHILDREN UNSELECT ID
"""
    + _NO_DEFAULT_FOLDERS
    + """
  mailbox "Sent Items" {
    auto = subscribe
  }
  mailbox "Deleted Items" {
    auto = subscribe
  }
}
"""
)

COURIER = (
    """
imap_capability = IMAP4rev1 UIDPLUS CHILDREN NAMESPACE IDLE
"""
    + _NO_DEFAULT_FOLDERS
    + """
  prefix = INBOX.
  separator = .
}
"""
)

# Cyrus IMAP (as Debian's cyrus-imapd 3.6 answers): the INBOX. namespace with every modern extension, and
# special-use flags in lower case ("\\sent"; flags are case-insensitive, RFC 3501), here on a folder
# whose name alone would not say it holds sent mail.
CYRUS = """
namespace inbox {
  prefix = INBOX.
  separator = .
  mailbox Sent {
    special_use =
    auto = no
  }
  mailbox Verstuurd {
    special_use = \\sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \\drafts
  }
}
"""

# An older Courier: the same, without NAMESPACE (RFC 2342) to say so.
COURIER_OLD = COURIER.replace("CHILDREN NAMESPACE IDLE", "CHILDREN IDLE")

GMAIL = (
    _NO_DEFAULT_FOLDERS
    + """
  mailbox "[Gmail]/All Mail" {
    special_use = \\All
    auto = subscribe
  }
  mailbox "[Gmail]/Sent Mail" {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox "[Gmail]/Trash" {
    special_use = \\Trash
    auto = subscribe
  }
}
"""
)

NO_IDLE = """
imap_capability = IMAP4rev1 NAMESPACE CHILDREN UNSELECT ID
"""

ACCOUNTS = 30


@contextmanager
def imap_variant(config: str) -> Iterator[ImapServer]:
    """A Dovecot behaving as ``config`` says, with accounts user1 … user30 (password imap-secret)."""
    with dovecot_server({f"user{n}": "imap-secret" for n in range(1, ACCOUNTS + 1)}, config=config) as server:
        yield server
