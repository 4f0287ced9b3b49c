"""A message's MIME tree → the bodies a mail client shows and the attachments it offers, losing
nothing: every leaf part ends up as body text or as an attachment (often both).

How mail clients show mail, and so how it is read here:

- multipart/alternative shows one version: the first with plain text, the last with HTML (the most
  faithful, RFC 2046); versions neither shows are kept as attachments;
- every other multipart shows its parts one after the other: text parts on both sides of an
  attachment (a mailing-list footer) and HTML fragments split by an inline image (Apple Mail) are
  joined in order; plain text among HTML is shown in the HTML as preformatted text;
- a part with a file name, an attachment disposition or a type no body shows is an attachment
  (named after its type when it has no name); calendar parts are both read and kept (invite.ics),
  read only when among the first few and small (hub.mail.kinds.MAX_CALENDAR_PARTS, _BYTES);
- an attached message (message/rfc822, also base64-encoded) is kept as an .eml that opens as mail;
- an opaque S/MIME signed message shows its content; an encrypted one says why it cannot;
- a winmail.dat (TNEF) gives way to the files inside it, and its body shows when the message has
  none of its own (hub.mail.tnef); it stays when it cannot be read or holds more than was taken out;
- a multipart whose boundary is missing or wrong is split at the delimiters its body does have, or
  shown as text.
"""

from __future__ import annotations

import base64
import binascii
import html
import io
import mimetypes
import quopri
import re
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from hub.mail import smime, tnef
from hub.mail.filenames import safe_filename
from hub.mail.kinds import MAX_CALENDAR_BYTES, MAX_CALENDAR_PARTS, Findings, message_of
from hub.mail.text import decode_header_text, decode_text, unflow

# Deeper than this no mail client shows anything either; the raw message stays whole.
MAX_DEPTH = 60
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# text/* types that are data rather than something to read as the message.
_TEXT_DATA_TYPES = frozenset(
    {"text/calendar", "text/rfc822-headers", "text/vcard", "text/x-vcard", "text/directory", "text/csv"}
)
_CALENDAR_TYPES = frozenset({"text/calendar", "application/ics", "text/x-vcalendar"})
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
_STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_DELIMITER_LINE = re.compile(rb"^--(\S[^\r\n]{0,71}?)[ \t]*\r?$", re.M)
# An HTML part's own charset declaration, for when its Content-Type names none (as browsers read it).
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?\s*([A-Za-z0-9_:.+-]{1,40})", re.I)
# A uuencoded file in a text part (Outlook Express, old Usenet tools): "begin 644 name" … "end".
_UU_BEGIN = re.compile(rb"^begin [0-7]{3,4} ([^\r\n]+)\r?\n", re.M)
_UU_END = re.compile(rb"^end[ \t]*(?:\r?\n|\Z)", re.M)


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str = ""  # what the HTML body's "cid:" URLs name it by (an inline image), without <>


@dataclass
class Content:
    """What a subtree shows: plain text and HTML pieces, each with the leaf it came from."""

    text: list[tuple[str, Message]] = field(default_factory=list)
    html: list[tuple[str, Message]] = field(default_factory=list)


@dataclass
class Parts:
    text_body: str = ""
    html_body: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    findings: Findings = field(default_factory=Findings)


_TRANSFER_ENCODINGS = frozenset({"base64", "quoted-printable", "x-uuencode", "uuencode", "uue", "x-uue"})
_ENCODING_JUNK = re.compile(r"[\s\"']+")
_TYPE_JUNK = re.compile(r"[\s\"']+")


def _payload(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return b""
    # email decodes only an exact, bare name: "base64 " (a trailing blank), '"base64"' or
    # "base64; x" would show the encoded letters. Mail clients read the name leniently; so does hub.
    declared = str(part.get("Content-Transfer-Encoding", "")).lower()
    name = _transfer_encoding(part)
    if name != declared and name in _TRANSFER_ENCODINGS:
        stand_in = Message()
        stand_in["Content-Transfer-Encoding"] = name
        stand_in.set_payload(part.get_payload())
        decoded = stand_in.get_payload(decode=True)
        return decoded if isinstance(decoded, bytes) else data
    return data


def _flatten(msg: Message) -> bytes:
    """A parsed message back as bytes; compat32 keeps headers as they came (8-bit bytes too)."""
    buffer = io.BytesIO()
    BytesGenerator(buffer, mangle_from_=False, maxheaderlen=0, policy=compat32).flatten(msg, linesep="\r\n")
    return buffer.getvalue()


def _charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:  # a charset parameter email cannot make sense of (bad RFC 2231 value)
        return None


def _params_of(part: Message, header: str) -> Message:
    """The part itself, or for a header with raw 8-bit bytes (which email's parameter parsing turns
    into U+FFFD) a stand-in holding that header decoded as UTF-8 or Windows-1252."""
    raw = next((value for name, value in part.raw_items() if name.lower() == header), None)
    if not isinstance(raw, str) or raw.isascii():
        return part
    stand_in = Message()
    stand_in[header] = decode_text(raw.encode("utf-8", "surrogateescape"))
    return stand_in


def _declared_name(part: Message) -> str | None:
    """The file name as the sender meant it: RFC 2231 (with its charset, continuations), RFC 2047
    encoded-words in a quoted name (Outlook), raw UTF-8 or Windows-1252."""
    try:
        return _name_parameter(part)
    except Exception:  # a name email cannot take apart: the part keeps a name made from its type
        return None


def _name_parameter(part: Message) -> str | None:
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        value = _params_of(part, header).get_param(param, None, header)
        if value is None:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, percent-decoded text as latin-1)
            charset, _language, text = value
            try:
                data = str(text).encode("latin-1", "surrogateescape")
            except UnicodeEncodeError:  # raw 8-bit text in the value, already read as text above
                return str(text)
            return decode_text(data, charset or None)
        return decode_header_text(str(value).strip('"'))
    return None


class _Reader:
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.parts = Parts()
        self.index = 0  # leaves met so far: "part-3.bin" is the third
        self.in_report = 0
        self.shown_attachments: list[tuple[str, Message]] = []  # named inline text, shown if nothing else is
        self.positions: dict[int, int] = {}  # id of a leaf shown as a body → its number, should it be attached
        self.calendar_parts = 0  # calendar parts met so far (only the first few are read as invitations)
        self.tnef_bodies: list[tuple[tnef.Unpacked, Message]] = []  # shown if the message has no body
        self.rtf_only: list[tuple[int, Attachment]] = []  # winmail.dat kept if the message has no body

    def note(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    def attach(self, part: Message, data: bytes, content_type: str, name: str | None = None) -> None:
        self.parts.attachments.append(self.attachment(part, data, content_type, name))

    def attachment(self, part: Message, data: bytes, content_type: str, name: str | None = None) -> Attachment:
        index = self.positions.get(id(part), self.index)
        filename = safe_filename(name if name is not None else _declared_name(part), content_type, index)
        return Attachment(filename, content_type[:120], data, _content_id(part))

    def entity(self, part: Message, depth: int) -> Content:
        if depth > MAX_DEPTH:
            self.note(f"MIME structure deeper than {MAX_DEPTH} levels: the parts below were not read")
            return Content()
        content_type = _content_type(part)
        if content_type.startswith("message/"):
            self.index += 1
            self.message_part(part, content_type)
            return Content()
        if part.is_multipart():
            return self.multipart(part, content_type, depth)
        self.index += 1
        if content_type.startswith("multipart/"):
            return self.broken_multipart(part, content_type, depth)
        return self.leaf(part, content_type, depth)

    def multipart(self, part: Message, content_type: str, depth: int) -> Content:
        children = [c for c in part.get_payload() if isinstance(c, Message)]
        report = content_type == "multipart/report"
        if report:
            self.parts.findings.report_type = str(part.get_param("report-type", "")).lower()
            self.in_report += 1
        children += self.epilogue_parts(part)
        if not children:
            return self.partless(part)
        try:
            contents = [self.entity(child, depth + 1) for child in children]
        finally:
            self.in_report -= report
        if content_type == "multipart/alternative":
            return self.alternative(contents)
        return _in_order(contents)

    def partless(self, part: Message) -> Content:
        """A multipart without a single part: the text around its delimiters is all it has."""
        around = "\n".join(t for t in (part.preamble, part.epilogue) if t and t.strip())
        if not around:
            return Content()
        self.note("multipart without parts: shown as text")
        return Content(text=[(decode_text(around.encode("utf-8", "surrogateescape"), None, self.problems), part)])

    def epilogue_parts(self, part: Message) -> list[Message]:
        """Parts after the closing delimiter: a nested multipart that reuses its parent's boundary
        closes the parent early, and the parent's later parts end up in the epilogue, unread."""
        epilogue, boundary = part.epilogue, part.get_boundary()
        if not epilogue or not boundary or '"' in boundary or f"--{boundary}" not in epilogue:
            return []
        head = f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        rest = message_from_bytes((head + epilogue).encode("utf-8", "surrogateescape"))
        found = [c for c in rest.get_payload() if isinstance(c, Message)] if rest.is_multipart() else []
        if found:
            self.note("parts after a multipart's closing boundary (a reused boundary) were read as well")
        return found

    def alternative(self, contents: list[Content]) -> Content:
        with_text = [c for c in contents if c.text]
        with_html = [c for c in contents if c.html]
        chosen = Content(with_text[0].text if with_text else [], with_html[-1].html if with_html else [])
        shown = {id(leaf) for _piece, leaf in chosen.text + chosen.html}
        for content in contents:  # versions no client shows are still the sender's: kept as files
            for _piece, leaf in content.text + content.html:
                if id(leaf) not in shown:
                    shown.add(id(leaf))
                    self.attach(leaf, _payload(leaf), _content_type(leaf))
        return chosen

    def broken_multipart(self, part: Message, content_type: str, depth: int) -> Content:
        """A multipart the parser could not split: its boundary is missing or not the one used."""
        body = _payload(part)
        found = Counter(m[1] for m in _DELIMITER_LINE.finditer(body))
        # A boundary opens parts twice or more, or opens one and closes it ("-----Original Message-----"
        # does neither).
        boundary = next(
            (b for b, n in found.most_common() if not b.endswith(b"--") and (n >= 2 or b + b"--" in found)), None
        )
        if boundary and b'"' not in boundary:
            self.note("multipart without its declared boundary: split where its parts start")
            subtype = content_type.encode("ascii") if content_type.isascii() else b"multipart/mixed"  # 8-bit junk
            head = b'Content-Type: %s; boundary="%s"\r\n\r\n' % (subtype, boundary)
            repaired = message_from_bytes(head + body)
            if repaired.is_multipart():
                return self.multipart(repaired, content_type, depth)
        self.note("multipart without parts: shown as text")
        return Content(text=[(decode_text(body, _charset(part), self.problems), part)])

    def leaf(self, part: Message, content_type: str, depth: int) -> Content:
        data = _payload(part)
        disposition = (part.get_content_disposition() or "").lower()
        name = _declared_name(part)
        if content_type in _CALENDAR_TYPES or (name or "").lower().endswith(".ics"):
            self.calendar(part, data)
            self.attach(part, data, content_type, name or "invite.ics")
            return Content()
        if content_type in smime.PKCS7_TYPES or (name or "").lower().endswith(".p7m"):
            return self.smime(part, data, content_type, depth)
        if content_type == "text/rfc822-headers" and self.in_report:
            self.parts.findings.returned_headers.append(decode_text(data, _charset(part)))
        is_html = content_type in _HTML_TYPES
        is_text = content_type.startswith("text/") and content_type not in _TEXT_DATA_TYPES and not is_html
        if (is_text or is_html) and not name and disposition != "attachment":
            self.positions[id(part)] = self.index
            charset = _charset(part)
            if is_html and not charset and not data.isascii():
                meta = _META_CHARSET.search(data[:4096])
                charset = meta[1].decode("ascii") if meta else None
            if not is_html and b"begin " in data:
                data = self.uudecoded(data)
            text = decode_text(data, charset, self.problems)
            if is_html:
                return Content(html=[(text, part)])
            if str(part.get_param("format", "")).lower() == "flowed":
                text = unflow(text, str(part.get_param("delsp", "")).lower() == "yes")
            return Content(text=[(text, part)])
        if (is_text or is_html) and disposition == "inline":
            self.shown_attachments.append((decode_text(data, _charset(part)), part))
        if tnef.is_tnef(content_type, name):
            self.winmail(part, data, content_type, name)
            return Content()
        self.attach(part, data, content_type, name)
        return Content()

    def winmail(self, part: Message, data: bytes, content_type: str, name: str | None) -> None:
        """A TNEF part (winmail.dat): the files inside it instead, or itself when it cannot be read."""
        unpacked = tnef.unpack(data, self.index)
        if isinstance(unpacked, str):
            if unpacked != tnef.NOT_TNEF:  # (an ordinary file that happens to be called winmail.dat)
                self.note(f"winmail.dat could not be unpacked ({unpacked}): kept as it is")
            self.attach(part, data, content_type, name)
            return
        self.parts.attachments += [Attachment(f.filename, f.content_type, f.data, f.content_id) for f in unpacked.files]
        self.tnef_bodies.append((unpacked, part))
        if unpacked.kept_for:
            self.note(f"winmail.dat kept next to the files taken out of it ({unpacked.kept_for})")
            self.attach(part, data, content_type, name)
        elif unpacked.rtf_only:
            self.rtf_only.append((len(self.parts.attachments), self.attachment(part, data, content_type, name)))

    def without_body(self, content: Content) -> None:
        """A message with no body of its own: the body Outlook put in its winmail.dat shows instead;
        one that is only RTF (which hub does not show) keeps its winmail.dat."""
        for unpacked, part in self.tnef_bodies:
            if unpacked.text_body.strip() or unpacked.html_body.strip():
                content.text = [(unpacked.text_body, part)] if unpacked.text_body.strip() else []
                content.html = [(unpacked.html_body, part)] if unpacked.html_body.strip() else []
                return
        for position, kept in reversed(self.rtf_only):
            self.note("the message's body is only in its winmail.dat, as RTF: winmail.dat kept")
            self.parts.attachments.insert(position, kept)

    def calendar(self, part: Message, data: bytes) -> None:
        """A calendar part, to be read as an invitation (hub.mail.kinds) when it is one of the first
        few and small: its text is decoded only then. It is kept as an attachment either way."""
        self.calendar_parts += 1
        if self.calendar_parts > MAX_CALENDAR_PARTS:
            self.note(
                f"more than {MAX_CALENDAR_PARTS} calendar parts: the others were kept as attachments,"
                " not read as invitations"
            )
            return
        if len(data) > MAX_CALENDAR_BYTES:
            self.note(
                f"calendar part larger than {MAX_CALENDAR_BYTES:,} bytes kept as an attachment,"
                " not read as an invitation"
            )
            return
        self.parts.findings.calendars.append(decode_text(data, _charset(part), self.problems))

    def uudecoded(self, data: bytes) -> bytes:
        """The text with each uuencoded file in it taken out and kept as an attachment."""

        # One pass over the text (text full of "begin" lines must not cost a pass per line): an "end"
        # found is reused for the next "begin" before it, and text that turns out not to be
        # uuencoding is passed over up to its "end".
        kept: list[bytes] = []
        position = 0
        end: re.Match[bytes] | None = None
        while (begin := _UU_BEGIN.search(data, position)) is not None:
            if end is None or end.start() < begin.end():
                end = _UU_END.search(data, begin.end())
                if end is None:
                    break
            decoded = _uudecode(data[begin.end() : end.start()])
            if decoded is None:  # not uuencoding after all: the text up to its "end" stays as it is
                kept.append(data[position : end.end()])
                position = end.end()
                continue
            name = decode_text(begin[1].strip())
            content_type = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
            filename = safe_filename(name, content_type, self.index)
            self.parts.attachments.append(Attachment(filename, content_type[:120], decoded))
            kept.append(data[position : begin.start()])
            position = end.end()
        kept.append(data[position:])
        return b"".join(kept)

    def smime(self, part: Message, data: bytes, content_type: str, depth: int) -> Content:
        self.attach(part, data, content_type, _declared_name(part) or "smime.p7m")
        unwrapped = smime.unwrap(data)
        if unwrapped.content is None:
            self.note(unwrapped.problem)
            return Content()
        try:
            inner = message_from_bytes(unwrapped.content)
        except Exception as exc:
            self.note(f"S/MIME content unreadable ({type(exc).__name__})")
            return Content()
        return self.entity(inner, depth + 1)

    def message_part(self, part: Message, content_type: str) -> None:
        payload = part.get_payload()
        if content_type in _STATUS_TYPES or content_type == "message/feedback-report":
            blocks = [b for b in payload if isinstance(b, Message)] if isinstance(payload, list) else []
            text = "\n".join(message_of(b) + _rest(b) for b in blocks) if blocks else _payload(part).decode("latin-1")
            encoding = _transfer_encoding(part)
            if encoding in ("base64", "quoted-printable"):
                # The parser read the encoded text as field blocks: decode it, then read the fields.
                data = text.encode("utf-8", "surrogateescape")
                text = decode_text(_lenient_base64(data) if encoding == "base64" else quopri.decodestring(data))
            target = self.parts.findings.feedback_report
            if content_type in _STATUS_TYPES:
                target = self.parts.findings.delivery_status
            target.append(text)
            self.attach(part, text.encode("utf-8", "surrogateescape"), content_type)
            return
        data = self.eml_bytes(part, payload)
        if content_type not in _MESSAGE_TYPES:
            self.attach(part, data, content_type)
            return
        head = BytesHeaderParser(policy=compat32).parsebytes(data)
        if self.in_report:
            self.parts.findings.returned_headers.append(message_of(head))
        subject = " ".join(decode_header_text(str(head.get("Subject", ""))).split())
        name = f"{subject}.eml" if subject else _declared_name(part) or "forwarded-message.eml"
        if not name.lower().endswith(".eml"):
            name += ".eml"
        self.attach(part, data, "message/rfc822", name)

    def eml_bytes(self, part: Message, payload: object) -> bytes:
        """The attached message's own bytes, undoing a transfer encoding put on the whole of it."""
        if not isinstance(payload, list) or not payload:
            return _payload(part)
        try:
            data = _flatten(payload[0])
        except Exception as exc:
            self.note(f"attached message could not be written back whole ({type(exc).__name__})")
            data = str(payload[0]).encode("utf-8", "surrogateescape")
        encoding = _transfer_encoding(part)
        if encoding == "base64":  # the parser read base64 text as a message: decode it after all
            return _lenient_base64(data)
        if encoding == "quoted-printable":
            return quopri.decodestring(data)
        return data


def _content_type(part: Message) -> str:
    """The part's type, also where the sender quoted it or put blanks in it ('"text/plain"',
    "text / html"), which email reads as an unknown type and so shows nowhere."""
    content_type = part.get_content_type()
    if not _TYPE_JUNK.search(content_type):
        return content_type
    maintype, slash, subtype = _TYPE_JUNK.sub("", content_type).partition("/")
    return f"{maintype}/{subtype}" if maintype and slash and subtype and "/" not in subtype else "text/plain"


def _content_id(part: Message) -> str:
    try:
        value = decode_header_text(str(part.get("Content-ID", "")))
    except Exception:  # a header email cannot turn into text: the part is still kept, without its id
        return ""
    return "".join(value.split()).strip("<>")[:300]


def _transfer_encoding(part: Message) -> str:
    """The Content-Transfer-Encoding name, read leniently ("base64 ", '"base64"', "Base64; x")."""
    declared = str(part.get("Content-Transfer-Encoding", "")).lower()
    if declared in _PLAIN_ENCODINGS:  # (nearly every part: no need to clean it)
        return declared
    return _ENCODING_JUNK.sub("", declared.partition(";")[0])


_PLAIN_ENCODINGS = frozenset(("", "7bit", "8bit", "binary", "base64", "quoted-printable"))


def _lenient_base64(data: bytes) -> bytes:
    """Base64 decoded as far as it goes: stray characters skipped, missing padding added."""
    letters = _NOT_BASE64.sub(b"", data)
    letters = letters[: len(letters) - 1] if len(letters) % 4 == 1 else letters
    return base64.b64decode(letters + b"=" * (-len(letters) % 4))


def _uudecode(block: bytes) -> bytes | None:
    """The bytes of uuencoded lines; None when a line is not uuencoding. Lines with padding beyond
    their length byte (some encoders add it) are cut to what the length byte says, as email does."""
    out = []
    for line in block.splitlines():
        if not line.strip():
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            try:
                out.append(binascii.a2b_uu(line[: (((line[0] - 32) & 63) * 4 + 5) // 3]))
            except binascii.Error:
                return None
    return b"".join(out)


def _rest(block: Message) -> str:
    rest = block.get_payload()
    return rest if isinstance(rest, str) else ""


def _in_order(contents: list[Content]) -> Content:
    """Parts one after the other; plain text among HTML shown in the HTML as preformatted text."""
    joined = Content()
    any_html = any(c.html for c in contents)
    for content in contents:
        joined.text += content.text
        if content.html:
            joined.html += content.html
        elif any_html:
            joined.html += [(f"<pre>{html.escape(text)}</pre>", leaf) for text, leaf in content.text]
    return joined


def _join_text(pieces: list[str]) -> str:
    out: list[str] = []
    for piece in pieces:
        if out and not out[-1].endswith("\n"):
            out.append("\n")
        out.append(piece)
    return "".join(out)


def read_parts(msg: Message, problems: list[str]) -> Parts:
    """The bodies, attachments and kind-telling findings of a parsed message."""
    reader = _Reader(problems)
    content = reader.entity(msg, 0)
    if reader.tnef_bodies and all(not text or text.isspace() for text, _leaf in content.text + content.html):
        reader.without_body(content)
    if not content.text and not content.html and reader.shown_attachments:
        content.text = reader.shown_attachments  # only named text parts: shown as well as attached
    reader.parts.text_body = _join_text([text for text, _leaf in content.text])
    reader.parts.html_body = "".join(text for text, _leaf in content.html)
    return reader.parts
