"""What makes two copies of a message the same e-mail: their content, never a claim in a header.

A Message-ID is chosen by the sender. Anyone (a colleague, or an outsider writing to a shared
mailbox) can send a message that claims the Message-ID of someone's private mail; keyed by that
claim, hub used to treat the two as one e-mail and show the private copy to the sender of the fake.
So an e-mail's key is a hash of what people read: the headers that say who wrote what to whom and
when, and the whole body. Headers that transport adds or changes on the way (Received, Return-Path,
Delivered-To, DKIM and other trace or X- headers, Bcc, which only the sender's copy carries) are left
out, so the same message delivered to two mailboxes, or kept in Sent and in a recipient's inbox,
is still one e-mail; line endings and trailing blanks, which servers rewrite, do not count either.
"""

from __future__ import annotations

import hashlib
import re

# The headers that make up what a reader sees of a message (and its structure).
IDENTITY_HEADERS = (
    b"from",
    b"sender",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"content-type",
    b"content-transfer-encoding",
)
_WANTED = frozenset(IDENTITY_HEADERS)
_TRAILING_BLANKS = re.compile(rb"[ \t]+\n")
_SPACE = re.compile(rb"[ \t\r\n]+")
_FIELD_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?![ \t])")
PREFIX = "c:"


def _split(raw: bytes) -> tuple[bytes, bytes]:
    """(header block, body) at the first empty line; a message without one is all header."""
    match = re.search(rb"\r?\n\r?\n", raw)
    if match is None:
        return raw, b""
    return raw[: match.start()], raw[match.end() :]


def _headers(head: bytes) -> list[tuple[bytes, bytes]]:
    """(lower-cased name, unfolded value with whitespace collapsed) of the identity headers, in order."""
    found: list[tuple[bytes, bytes]] = []
    # A bare CR ends a line as well: the parser reads one, so a header hidden behind it counts here too.
    for field in _FIELD_END.split(head):
        name, colon, value = field.partition(b":")
        key = name.strip().lower()
        if colon and key in _WANTED:
            found.append((key, _SPACE.sub(b" ", value).strip()))
    # Transport may reorder headers; the order among same-named headers is kept (stable sort).
    found.sort(key=lambda item: IDENTITY_HEADERS.index(item[0]))
    return found


def content_key(raw: bytes) -> str:
    """The e-mail's key: ``c:`` and the SHA-256 of its identity headers and normalised body."""
    if b"\n" not in raw and b"\r" in raw:
        # Old Mac line ends (CR alone), which the parser reads as line ends too: read as one header
        # line, such messages kept none of their identity headers and all had one key.
        raw = raw.replace(b"\r", b"\n")
    head, body = _split(raw)
    digest = hashlib.sha256()
    for name, value in _headers(head):
        digest.update(name + b":" + value + b"\n")
    digest.update(b"\n")
    digest.update(_normal_body(body))
    return PREFIX + digest.hexdigest()


def _normal_body(body: bytes) -> bytes:
    """Line ends as LF, no blanks at the end of a line or of the body. The C-speed replace does the
    common case; the regular expression runs only on bodies that have trailing blanks at all (a base64
    attachment of megabytes has none, and a regex over it cost most of a message's parse time)."""
    body = body.replace(b"\r\n", b"\n")
    if b" \n" in body or b"\t\n" in body:
        body = _TRAILING_BLANKS.sub(b"\n", body)
    return body.rstrip(b"\r\n \t")
