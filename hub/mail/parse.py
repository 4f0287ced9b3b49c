"""Raw RFC 5322 bytes → what hub stores. Never raises for bad mail: it keeps what it can read and
lists the problems (unknown charset, missing Date, truncated body …) next to the message.

Headers are read here; the rest lives beside it: hub.mail.text (charsets, encoded-words),
hub.mail.dates (Date: in UTC), hub.mail.parts (bodies and attachments, losing no part),
hub.mail.filenames (safe names), hub.mail.kinds (bounce, complaint, auto-reply, invitation).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from functools import partial

from hub.mail.dates import parse_date
from hub.mail.identity import content_key
from hub.mail.ids import message_ids
from hub.mail.kinds import Envelope, classify
from hub.mail.mime import fast_message
from hub.mail.parts import read_parts
from hub.mail.text import decode_header_text, decode_text

MAX_BODY_CHARS = 1_000_000
# Text no database column takes: NUL (PostgreSQL refuses it) and lone surrogates (not UTF-8 at all;
# a UTF-7 or broken UTF-16 part can decode to them). One such message must not stop its folder.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Controls that reorder the text after them (embeddings and overrides U+202A to U+202E, isolates
# U+2066 to U+2069). In a sender's name or a subject they make what is shown beside them read as
# something else: "\u202eelpmaxe.knab@ecivres" shows as "service@bank.example". Written text needs
# none of them (the Unicode algorithm orders Hebrew and Arabic by itself), so they are removed there.
_REORDERING = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Address lists as most mail carries them ("Anna Bakker <anna@x.nl>, kees@y.nl") are read with one
# regular expression; anything else (quotes, comments, groups, dots in names, odd characters) goes to
# email.utils.getaddresses. Where the fast reading applies it gives exactly what getaddresses gives
# (a test compares them on generated and random input).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR_SPEC = rf"{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*"
_NAME_WORD = r'[^\s()<>@,:;."\[\]\\]+'
# Header lines the standard parser takes for the start of the body, taking every header after them
# along: "Subject : x" (a blank before the colon, which RFC 5322 still reads as obsolete syntax) and a
# long value a mailer broke onto a line of its own without the leading blank of a folded line.
_HEADER_START = re.compile(rb"[\041-\071\073-\176]+:")
_SPACED_NAME = re.compile(rb"([\041-\071\073-\176]+)[ \t]+:")
_KEY_HEADER = re.compile(
    rb"(?:from|to|cc|subject|date|message-id|mime-version|content-type|content-transfer-encoding|"
    rb"in-reply-to|references|reply-to|received)[ \t]*:",
    re.I,
)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_ADDR = re.compile(r"[^\s<>,;:\"()\[\]\\@]+@[^\s<>,;:\"()\[\]\\@]+")
_SIMPLE_MAILBOX = re.compile(
    rf" ?(?:(?P<name>{_NAME_WORD}(?: {_NAME_WORD})*) ?<(?P<angle>{_ADDR_SPEC})>|(?P<bare>{_ADDR_SPEC})) ?"
)


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    sha256: str = ""
    size: int = 0
    pack: str = ""  # where the bytes are kept once packed (then ``data`` is dropped)
    offset: int = 0
    content_id: str = ""  # an inline image's Content-ID (without <>), as "cid:" URLs in the HTML name it


@dataclass
class ParsedMessage:
    message_key: str
    message_id: str
    raw_sha256: str
    size: int
    subject: str = ""
    from_address: str = ""
    from_name: str = ""
    sent_at: datetime | None = None
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    participants: list[tuple[str, str, str]] = field(default_factory=list)  # (role, address_key, name)
    text_body: str = ""
    html_body: str = ""
    attachments: list[ParsedAttachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # "" for ordinary mail, else bounce, complaint, auto_reply or invitation, with what was read of it
    # (JSON-serialisable: failed recipient, status code, calendar method, UID, times …).
    kind: str = ""
    details: dict[str, object] = field(default_factory=dict)
    # Where the raw message is kept (gzip) once its batch is packed.
    raw_pack: str = ""
    raw_offset: int = 0
    raw_length: int = 0

    @property
    def thread_key(self) -> str:
        return (self.references[0] if self.references else self.in_reply_to) or self.message_id or self.message_key


def _decode(value: str) -> str:
    """A raw header value (8-bit bytes escaped as surrogates) as text, whitespace collapsed."""
    if value.isascii() and "=?" not in value:
        return " ".join(value.split())
    return " ".join(decode_header_text(value).split())


def addresses(text: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header whose whitespace is collapsed, as
    ``getaddresses([text])`` gives them."""
    found = []
    for item in text.split(","):
        simple = _SIMPLE_MAILBOX.fullmatch(item)
        if simple is None:
            return getaddresses([text])
        found.append((simple["name"] or "", simple["angle"] or simple["bare"]))
    return found


_Headers = dict[str, tuple[str, str]]


def _first_headers(msg: Message) -> _Headers:
    """Lower-cased name → the first (name, raw value): what ``msg.get`` finds, in one pass."""
    first: _Headers = {}
    for name, value in msg.raw_items():
        first.setdefault(name.lower(), (name, value))
    return first


def _header(headers: _Headers, name: str, problems: list[str]) -> str:
    try:
        raw = headers.get(name.lower())
        return "" if raw is None else _decode(str(raw[1]))
    except Exception as exc:  # a header the decoder chokes on must not lose the message
        problems.append(f"unreadable {name} header ({type(exc).__name__})")
        return ""


def _ids(text: str) -> list[str]:
    return message_ids(text)


def message_id_from_header(header: bytes) -> str:
    """The Message-ID in a raw header line, read exactly as :func:`parse_message` reads it."""
    ids = _ids(" ".join(decode_text(header).split()))
    return ids[0] if ids else ""


def _headers_only(raw: bytes) -> Message:
    """The header block alone, for a message whose structure the parser cannot get through."""
    try:
        return BytesHeaderParser(policy=compat32).parsebytes(raw)
    except Exception:
        return Message()


def _repaired_head(raw: bytes, problems: list[str]) -> bytes:
    """The message with header lines the parser would stop at mended, as mail clients read them:
    "Name : value" loses its blanks before the colon, and a stray line followed by more of the
    message's headers is read as the continuation of the header before it."""
    blank = _BLANK_LINE.search(raw)
    head_end = blank.start() if blank else len(raw)
    lines = raw[:head_end].split(b"\n")
    # Without a blank line there is no telling a header block from a body that follows it directly.
    last_key = max((i for i, line in enumerate(lines) if _KEY_HEADER.match(line)), default=-1) if blank else -1
    changed = False
    for i, line in enumerate(lines):
        if not line.strip() or line[:1] in (b" ", b"\t") or _HEADER_START.match(line) or line.startswith(b"From "):
            continue
        spaced = _SPACED_NAME.match(line)
        if spaced:
            lines[i], changed = spaced[1] + b":" + line[spaced.end() :], True
        elif 0 < i < last_key:
            lines[i], changed = b" " + line, True
    if not changed:
        return raw
    problems.append("malformed header lines were read as mail clients read them")
    return b"\n".join(lines) + raw[head_end:]


def _bodies_and_attachments(msg: Message, parsed: ParsedMessage, headers: _Headers) -> None:
    parts = read_parts(msg, parsed.problems)
    parsed.text_body, parsed.html_body = parts.text_body, parts.html_body
    parsed.attachments = [
        ParsedAttachment(a.filename, a.content_type, a.data, content_id=a.content_id) for a in parts.attachments
    ]
    for name in ("text_body", "html_body"):
        body = getattr(parsed, name)
        if len(body) > MAX_BODY_CHARS:
            setattr(parsed, name, body[:MAX_BODY_CHARS])
            parsed.problems.append(f"{name.replace('_', ' ')} cut at {MAX_BODY_CHARS:,} characters (the .eml is whole)")
    envelope = Envelope(
        parsed.subject, parsed.from_address, parsed.from_name, lambda name: _header(headers, name, parsed.problems)
    )
    parsed.kind, parsed.details = classify(envelope, parts.findings, parsed.text_body, parsed.problems)


def _storable(text: str, problems: list[str]) -> str:
    if _UNSTORABLE.search(text) is None:
        return text
    note = "characters no database can store were replaced"
    if note not in problems:
        problems.append(note)
    return _UNSTORABLE.sub("\ufffd", text)


def _shown_plainly(text: str, problems: list[str]) -> str:
    if _REORDERING.search(text) is None:
        return text
    note = "text direction controls were removed from the subject and names"
    if note not in problems:
        problems.append(note)
    return _REORDERING.sub("", text)


def _make_storable(parsed: ParsedMessage) -> None:
    """Every text field as the database will take it (C-speed check; replaced only when needed)."""
    # Message-IDs need nothing: hub.mail.ids does not match such characters.
    problems = parsed.problems
    for name in ("subject", "from_address", "from_name"):
        setattr(parsed, name, _shown_plainly(getattr(parsed, name), problems))
    for name in ("subject", "from_address", "from_name", "text_body", "html_body"):
        setattr(parsed, name, _storable(getattr(parsed, name), problems))
    # The participants' keys and names looked at together first: such characters are rare, and two
    # searches per name cost more than the rest of this.
    together = "\n".join(text for _role, key, name in parsed.participants for text in (key, name))
    if _REORDERING.search(together) is not None or _UNSTORABLE.search(together) is not None:
        plain = partial(_shown_plainly, problems=problems)
        parsed.participants = [
            (role, _storable(plain(key), problems), _storable(plain(name), problems))
            for role, key, name in parsed.participants
        ]
    for attachment in parsed.attachments:
        attachment.filename = _storable(attachment.filename, problems)
        attachment.content_type = _storable(attachment.content_type, problems)
        attachment.content_id = _storable(attachment.content_id, problems)
    parsed.details = _storable_value(parsed.details, problems)  # type: ignore[assignment]


def _storable_value(value: object, problems: list[str]) -> object:
    """A details value as JSON will hold it: strings storable, containers walked, anything else text."""
    if isinstance(value, str):
        return _storable(value, problems)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _storable_value(v, problems) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable_value(v, problems) for v in value]
    return _storable(str(value), problems)


def parse_message(raw: bytes) -> ParsedMessage:
    """What hub stores of a raw message. Never raises: what cannot be read is listed in ``problems``."""
    digest = hashlib.sha256(raw).hexdigest()
    problems: list[str] = []
    parsed = ParsedMessage(
        message_key=content_key(raw), message_id="", raw_sha256=digest, size=len(raw), problems=problems
    )
    try:
        _read(raw, parsed)
    except Exception as exc:  # the promise is that a message never stops its folder
        problems.append(f"message unreadable ({type(exc).__name__}); kept as raw")
    try:
        _make_storable(parsed)
    except Exception as exc:
        problems.append(f"fields could not be made storable ({type(exc).__name__})")
        parsed.kind, parsed.details = "", {}
    return parsed


def _read(raw: bytes, parsed: ParsedMessage) -> None:
    problems = parsed.problems
    msg: Message
    structured = True
    try:
        # compat32: several times faster than the new header registry, and lenient with bad mail;
        # well-formed multiparts take the faster path of hub.mail.mime.
        msg = fast_message(raw) or message_from_bytes(_repaired_head(raw, problems))
    except Exception as exc:  # RecursionError for parts nested hundreds deep, among others
        problems.append(f"MIME structure unreadable ({type(exc).__name__}); kept as raw")
        msg, structured = _headers_only(raw), False
    headers = _first_headers(msg)
    ids = _ids(_header(headers, "Message-ID", problems))
    parsed.message_id = ids[0] if ids else ""
    if not parsed.message_id:
        problems.append("no Message-ID")
    parsed.subject = _header(headers, "Subject", problems)[:2000]
    date_text = _header(headers, "Date", problems)
    if date_text:
        parsed.sent_at = parse_date(date_text)
        if parsed.sent_at is None:
            problems.append(f"unreadable Date {date_text[:60]!r}")
    else:
        problems.append("no Date")
    in_reply_to = _ids(_header(headers, "In-Reply-To", problems))
    parsed.in_reply_to = in_reply_to[0] if in_reply_to else ""
    parsed.references = _ids(_header(headers, "References", problems))[:100]
    _participants(headers, parsed)
    if not structured:
        return
    try:
        _bodies_and_attachments(msg, parsed, headers)
    except RecursionError:
        problems.append("MIME structure unreadable (nested too deep); kept as raw")
    except Exception as exc:
        problems.append(f"body unreadable ({type(exc).__name__}); kept as raw")


def _mailboxes(headers: _Headers, name: str, problems: list[str]) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header. The list is split before encoded-words are
    decoded (RFC 2047 allows them only as words of a display name): decoded first, a name such as
    ``=?utf-8?B?Qm9zcyA8Ym9zc0BleGFtcGxlLmNvbT4=?=`` ("Boss <boss@example.com>") became a second
    address, and hub took the message to be from someone who never sent it."""
    raw = headers.get(name.lower())
    if raw is None:
        return []
    try:
        text = " ".join(str(raw[1]).split())
        pairs = addresses(text)
        if text.isascii() and "=?" not in text:
            return pairs  # nothing encoded: the pairs are as they will be shown
        found = [(_decode(display), address, _decode(address)) for display, address in pairs]
    except Exception as exc:  # a header the decoder chokes on must not lose the message
        problems.append(f"unreadable {name} header ({type(exc).__name__})")
        return []
    # An address that is an encoded-word (which RFC 2047 does not allow) counts only when it
    # decodes to one address: "=?utf-8?Q?anna@x.example?=" does, a whole encoded mailbox list not.
    return [(display, decoded) for display, address, decoded in found if decoded == address or _ADDR.fullmatch(decoded)]


def _participants(headers: _Headers, parsed: ParsedMessage) -> None:
    seen: set[tuple[str, str]] = set()
    for role, header in (("from", "From"), ("to", "To"), ("cc", "Cc"), ("bcc", "Bcc")):
        for name, address in _mailboxes(headers, header, parsed.problems):
            key = address.strip().casefold()
            if "@" not in key or (role, key) in seen:
                continue
            seen.add((role, key))
            parsed.participants.append((role, key[:320], name.strip()[:300]))
            if role == "from" and not parsed.from_address:
                parsed.from_address, parsed.from_name = key[:320], name.strip()[:300]
