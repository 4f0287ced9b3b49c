"""A fast path for reading well-formed messages into the same compat32 Message tree.

The standard library's feed parser reads a message line by line in Python: a 200 KB base64
attachment costs thousands of iterations, and even a header block goes through a generic state
machine. Here multipart boundaries are found with bytes.find (C speed) and header blocks are split
with str.splitlines, each header stored exactly as the feed parser stores it (compat32's
``header_source_parse``). Anything unusual (a line that is not a header, an envelope "From " line,
no closing boundary, deep nesting, a boundary-less multipart, an attached message/rfc822) returns
None and the caller uses the standard parser, so odd mail is handled exactly as before.
"""

from __future__ import annotations

import re
from email.message import Message
from email.policy import compat32

MAX_DEPTH = 4
# A header line as the feed parser recognises one: a field name of printable ASCII without ':' or
# a space, then ':'. Continuation lines start with a space or tab.
_HEADER_LINE = re.compile(r"[\041-\071\073-\176]+:")
# str.splitlines also breaks lines at these; the feed parser does not: leave such mail to it.
_OTHER_LINE_BREAKS = re.compile("[\x0b\x0c\x1c-\x1e]")


def _split_head(raw: bytes) -> tuple[bytes, bytes] | None:
    for separator in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(separator)
        if at != -1:
            return raw[: at + len(separator) // 2], raw[at + len(separator) :]
    return None


def _parse_head(head: bytes) -> Message | None:
    """A header block (ending with its line break) as the feed parser reads it; None if unusual."""
    text = head.decode("ascii", "surrogateescape")
    if _OTHER_LINE_BREAKS.search(text):
        return None
    msg = Message()
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        if line[0] in " \t":
            if not current:
                return None  # a continuation with nothing to continue
            current.append(line)
            continue
        if _HEADER_LINE.match(line) is None:
            return None  # a blank line inside the block, an envelope line, a line without a name
        if current:
            msg.set_raw(*compat32.header_source_parse(current))
        current = [line]
    if current:
        msg.set_raw(*compat32.header_source_parse(current))
    return msg


def _entity(raw: bytes, depth: int) -> Message | None:
    split = _split_head(raw)
    if split is None:
        return None
    head, body = split
    msg = _parse_head(head)
    if msg is None:
        return None
    maintype = msg.get_content_maintype()
    if maintype == "message":
        return None  # the feed parser reads an attached message as a message of its own
    if maintype != "multipart":
        # Leaf: keep the body as the feed parser would (ASCII with the raw bytes escaped).
        msg.set_payload(body.decode("ascii", "surrogateescape"))
        return msg
    if depth >= MAX_DEPTH:
        return None
    boundary = msg.get_boundary()
    if not boundary:
        return None
    parts = _split_parts(body, boundary.encode("ascii", "surrogateescape"))
    if parts is None:
        return None
    children: list[Message | str] = []
    for part in parts:
        child = _entity(part, depth + 1)
        if child is None:
            return None
        children.append(child)
    msg.set_payload(children)
    return msg


def _split_parts(body: bytes, boundary: bytes) -> list[bytes] | None:
    newline = b"\r\n" if b"\r\n--" + boundary in body else b"\n"
    delimiter = newline + b"--" + boundary
    text = newline + body  # the first boundary may start the body
    start = text.find(delimiter)
    if start == -1:
        return None
    parts: list[bytes] = []
    position = start + len(delimiter)
    while True:
        if text.startswith(b"--", position):  # the closing delimiter
            # Delimiters after it (a nested part reused this boundary): the standard parser keeps
            # them in the epilogue, where hub.mail.parts reads them; here they would be dropped. So
            # would the preamble of a multipart without parts, the only text such a message has.
            return None if not parts or text.find(delimiter, position) != -1 else parts
        line_end = text.find(newline, position)
        if line_end == -1:
            return None
        if text[position:line_end].strip(b" \t"):
            # Not a delimiter but a longer line starting like one (a nested boundary that begins with
            # this one): the standard parser tells them apart.
            return None
        following = text.find(delimiter, line_end)
        if following == -1:
            return None  # no closing boundary: let the standard parser cope
        parts.append(text[line_end + len(newline) : following])
        position = following + len(delimiter)


def fast_message(raw: bytes) -> Message | None:
    """The message tree of a well-formed message, else None (use the standard parser)."""
    try:
        return _entity(raw, 0)
    except Exception:
        return None
