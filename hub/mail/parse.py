"""Raw RFC 5322 bytes → what hub stores. Never raises for bad mail: it keeps what it can read and
lists the problems (unknown charset, missing Date, truncated body …) next to the message."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.header import Header, decode_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from hub.mail.identity import content_key
from hub.mail.mime import fast_message

MAX_BODY_CHARS = 1_000_000
# The message_key column holds 500 characters: a longer "Message-ID" cannot identify the message
# whole, so it is not used (the content hash is) rather than cut and mismatched later.
# Nor are control characters or lone surrogates part of a usable one.
_MSGID = re.compile("<[^<>\\s\x00-\x1f\x7f\ud800-\udfff]{1,498}>")
# Text no database column takes: NUL (PostgreSQL refuses it) and lone surrogates (not UTF-8 at all;
# a UTF-7 or broken UTF-16 part can decode to them). One such message must not stop its folder.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Address lists as most mail carries them ("Anna Bakker <anna@x.nl>, kees@y.nl") are read with one
# regular expression; anything else (quotes, comments, groups, dots in names, odd characters) goes to
# email.utils.getaddresses. Where the fast reading applies it gives exactly what getaddresses gives
# (a test compares them on generated and random input).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR_SPEC = rf"{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*"
_NAME_WORD = r'[^\s()<>@,:;."\[\]\\]+'
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


def _bytes_text(data: bytes, charset: str | None) -> str:
    if charset and charset.lower() not in ("unknown-8bit", "x-unknown"):
        try:
            return data.decode(charset, errors="replace")
        except LookupError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _decode(value: object) -> str:
    """A header value as text: RFC 2047 encoded-words decoded, raw 8-bit bytes read as UTF-8 (else
    Windows-1252, what such mail nearly always is), unknown charsets likewise."""
    text = value if isinstance(value, Header) else str(value)
    if isinstance(text, str):
        # isascii() is C speed: only text that is not plain ASCII is looked at character by character.
        if not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text):
            return _bytes_text(text.encode("ascii", "surrogateescape"), None)
        if "=?" not in text:
            return text
    try:
        parts = decode_header(text)
    except (ValueError, LookupError):
        return str(text)
    return "".join(_bytes_text(part, charset) if isinstance(part, bytes) else part for part, charset in parts)


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


def _header(msg: Message, headers: _Headers, name: str, problems: list[str]) -> str:
    try:
        raw = headers.get(name.lower())
        value = None if raw is None else msg.policy.header_fetch_parse(*raw)
        return "" if value is None else " ".join(_decode(value).split())
    except Exception as exc:  # a header the parser chokes on must not lose the message
        problems.append(f"unreadable {name} header ({type(exc).__name__})")
        return ""


def _ids(text: str) -> list[str]:
    return _MSGID.findall(text)


def message_id_from_header(header: bytes) -> str:
    """The Message-ID in a raw header line, read exactly as :func:`parse_message` reads it."""
    ids = _ids(" ".join(_bytes_text(header, None).split()))
    return ids[0] if ids else ""


def _decode_part(part: Message, problems: list[str]) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset)
    except LookupError:
        problems.append(f"unknown charset {charset!r}, read as UTF-8")
    except UnicodeDecodeError:
        problems.append(f"text is not valid {charset}, read with replacements")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("cp1252", errors="replace")


def _bodies_and_attachments(msg: Message, parsed: ParsedMessage) -> None:
    for part in msg.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = part.get_filename()
        filename = _decode(filename) if filename else None
        if disposition == "attachment" or (filename and content_type not in ("text/plain", "text/html")):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                name = str(filename or "attachment").replace("/", "_").replace("\\", "_")[:255]
                parsed.attachments.append(ParsedAttachment(name, content_type[:120], data))
            continue
        if content_type == "text/plain" and not parsed.text_body:
            parsed.text_body = _decode_part(part, parsed.problems)
        elif content_type == "text/html" and not parsed.html_body:
            parsed.html_body = _decode_part(part, parsed.problems)
    for name in ("text_body", "html_body"):
        body = getattr(parsed, name)
        if len(body) > MAX_BODY_CHARS:
            setattr(parsed, name, body[:MAX_BODY_CHARS])
            parsed.problems.append(f"{name.replace('_', ' ')} cut at {MAX_BODY_CHARS:,} characters (the .eml is whole)")


def _storable(text: str, problems: list[str]) -> str:
    if _UNSTORABLE.search(text) is None:
        return text
    note = "characters no database can store were replaced"
    if note not in problems:
        problems.append(note)
    return _UNSTORABLE.sub("\ufffd", text)


def _make_storable(parsed: ParsedMessage) -> None:
    """Every text field as the database will take it (C-speed check; replaced only when needed)."""
    # Message-IDs need nothing: _MSGID does not match such characters.
    problems = parsed.problems
    for name in ("subject", "from_address", "from_name", "text_body", "html_body"):
        setattr(parsed, name, _storable(getattr(parsed, name), problems))
    parsed.participants = [
        (role, _storable(key, problems), _storable(name, problems)) for role, key, name in parsed.participants
    ]
    for attachment in parsed.attachments:
        attachment.filename = _storable(attachment.filename, problems)
        attachment.content_type = _storable(attachment.content_type, problems)


def parse_message(raw: bytes) -> ParsedMessage:
    digest = hashlib.sha256(raw).hexdigest()
    problems: list[str] = []
    msg: Message
    try:
        # compat32: several times faster than the new header registry, and lenient with bad mail;
        # well-formed multiparts take the faster path of hub.mail.mime.
        msg = fast_message(raw) or message_from_bytes(raw)
    except Exception as exc:
        problems.append(f"MIME structure unreadable ({type(exc).__name__}); kept as raw")
        msg = Message()
    headers = _first_headers(msg)
    ids = _ids(_header(msg, headers, "Message-ID", problems))
    message_id = ids[0] if ids else ""
    if not message_id:
        problems.append("no Message-ID")
    parsed = ParsedMessage(
        message_key=content_key(raw),
        message_id=message_id,
        raw_sha256=digest,
        size=len(raw),
        problems=problems,
    )
    parsed.subject = _header(msg, headers, "Subject", problems)[:2000]
    date_text = _header(msg, headers, "Date", problems)
    if date_text:
        try:
            sent = parsedate_to_datetime(date_text)
            parsed.sent_at = sent if sent.tzinfo else sent.replace(tzinfo=UTC)
        except (TypeError, ValueError, IndexError):
            problems.append(f"unreadable Date {date_text[:60]!r}")
    else:
        problems.append("no Date")
    in_reply_to = _ids(_header(msg, headers, "In-Reply-To", problems))
    parsed.in_reply_to = in_reply_to[0] if in_reply_to else ""
    parsed.references = _ids(_header(msg, headers, "References", problems))[:100]
    seen: set[tuple[str, str]] = set()
    for role, header in (("from", "From"), ("to", "To"), ("cc", "Cc"), ("bcc", "Bcc")):
        text = _header(msg, headers, header, problems)
        for name, address in addresses(text) if text else []:
            key = address.strip().casefold()
            if "@" not in key or (role, key) in seen:
                continue
            seen.add((role, key))
            parsed.participants.append((role, key[:320], name.strip()[:300]))
            if role == "from" and not parsed.from_address:
                parsed.from_address, parsed.from_name = key[:320], name.strip()[:300]
    try:
        _bodies_and_attachments(msg, parsed)
    except Exception as exc:
        problems.append(f"body unreadable ({type(exc).__name__}); kept as raw")
    _make_storable(parsed)
    return parsed
