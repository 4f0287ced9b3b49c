"""One recipient's message as bytes: headers, bodies, the signed unsubscribe link, VERP and DKIM.

Built as bytes directly (quoted-printable by binascii, headers encoded by the email package only
when they are not plain ASCII): ``EmailMessage.as_bytes`` costs more per message than the SMTP
exchange itself, and a mailing builds a hundred thousand of them. A mailing's messages are built
from its :class:`Skeleton`, which encodes the templates' constant text once per mailing and only
the recipient's values per message, to the same bytes.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from email.headerregistry import Address
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from functools import cache
from html import escape
from typing import Any

from itsdangerous import BadSignature, Signer
from markupsafe import escape as markup_escape

from hub.campaigns.render import Form, Slot
from hub.i18n import _

_UNSUBSCRIBE_SALT = "hub.campaigns.unsubscribe"
_VERP = re.compile(r"\+(\d+)\.([0-9a-f]{10})@", re.I)
_ADDRESS = re.compile(r"^[^@\s\"<>(),;:\\\[\]]{1,64}@[^@\s\"<>(),;:\\\[\]]+\.[^@\s\"<>(),;:\\\[\].]{2,}$")
_SIGNED_HEADERS = [
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
]


def valid_address(address: str) -> bool:
    """Whether ``address`` can be put in RCPT TO at all (the relay judges the rest). ASCII only:
    an address with other characters needs SMTPUTF8 (RFC 6531), which hub does not send with."""
    return len(address) <= 254 and address.isascii() and _ADDRESS.match(address) is not None


def _mac(secret: str, purpose: str, value: str, length: int) -> str:
    mac = _keyed(secret.encode(), "sha256").copy()
    mac.update(f"{purpose}:{value}".encode())
    return mac.hexdigest()[:length]


@cache
def _keyed(key: bytes, digest: str) -> hmac.HMAC:
    """An HMAC with ``key`` and no message yet, to copy: a copy skips the key's preparation, which
    the one-shot ``hmac.digest`` repeats for every message (two of them per message)."""
    return hmac.new(key, digestmod=digest)


# --- unsubscribe tokens ---------------------------------------------------------------------------


@cache
def _signer(secret: str) -> Signer:
    return Signer(secret, salt=_UNSUBSCRIBE_SALT)


@cache
def _signing_key(secret: str) -> bytes:
    return _signer(secret).derive_key()


def unsubscribe_token(secret: str, recipient_id: int) -> str:
    """The signed, URL-safe token of one ledger row (it names the recipient and the mailing).

    Exactly what itsdangerous' ``Signer.sign`` makes (and ``unsign`` checks): HMAC-SHA1 with the
    salted, derived key, base64url; computed with the key derived and prepared once, because
    ``Signer`` derives the key and builds an HMAC object for every token.
    """
    value = str(recipient_id).encode()
    mac = _keyed(_signing_key(secret), "sha1").copy()
    mac.update(value)
    # itsdangerous' base64_encode (urlsafe base64 without padding), without its Python layers
    signature = binascii.b2a_base64(mac.digest(), newline=False).rstrip(b"=").translate(_URL_SAFE)
    return (value + b"." + signature).decode()


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def recipient_of_token(secret: str, token: str) -> int | None:
    """The ledger row a token names; None for a forged, damaged or foreign token."""
    if len(token) > 200:
        return None
    try:
        value = _signer(secret).unsign(token.encode("utf-8", "replace")).decode()
    except (BadSignature, UnicodeDecodeError):
        return None
    return int(value) if value.isdigit() else None


def unsubscribe_url(base_url: str, secret: str, recipient_id: int) -> str:
    return f"{base_url.rstrip('/')}/u/{unsubscribe_token(secret, recipient_id)}"


# --- VERP and Message-ID --------------------------------------------------------------------------


def verp_signature(message_id: str) -> str:
    """The VERP token's check: derived from the message's Message-ID, which carries an HMAC of the
    secret key, so outsiders cannot forge a bounce address, and hub checks it against the ledger
    row without the key (mail sync, which reads the bounce, does not hold it)."""
    return hashlib.sha256(f"verp:{message_id}".encode()).hexdigest()[:10]


def verp_address(bounce_address: str, recipient_id: int, message_id: str) -> str:
    """bounces+<ledger id>.<signature>@domain: a bounce to it names the recipient even when the
    report itself is unreadable."""
    local, _at, domain = bounce_address.partition("@")
    return f"{local}+{recipient_id}.{verp_signature(message_id)}@{domain}"


def verp_parts(address: str) -> tuple[int, str] | None:
    """(ledger row id, signature) of a VERP address; None for any other address."""
    match = _VERP.search(address)
    return (int(match[1]), match[2].lower()) if match else None


def message_id(secret: str, mailing_id: int, recipient_id: int, domain: str) -> str:
    """The ledger row's Message-ID: replies quote it (In-Reply-To), so they can be counted."""
    mac = _mac(secret, "msgid", f"{mailing_id}.{recipient_id}", 8)
    return f"<{recipient_id}.{mailing_id}.{mac}.hub@{domain or 'hub.invalid'}>"


# --- the message ----------------------------------------------------------------------------------


_SECOND = timedelta(seconds=1)
_last_second: tuple[tzinfo | None, datetime, datetime, str] | None = None


def _date_header(moment: datetime) -> str:
    # The same for every message of a second: formatted once per second, not per message, the
    # second recognised by two comparisons (rounding ``moment`` down cost more than the look-up)
    # and its time zone (aware datetimes of one instant compare equal whatever their zone).
    global _last_second
    last = _last_second
    if last is not None and moment.tzinfo is last[0] and last[1] <= moment < last[2]:
        return last[3]
    second = moment.replace(microsecond=0)
    text = format_datetime(second)
    _last_second = (moment.tzinfo, second, second + _SECOND, text)
    return text


def _header_text(value: str) -> str:
    value = " ".join(value.split())  # no CR/LF can reach a header: no header injection
    if value.isascii() and len(value) < 60:
        return value
    if "=?" not in value:  # (text that reads as an encoded word is left to the email package)
        if not value.isascii():
            return _encoded_words(value)
        if value.isprintable() and max(map(len, value.split(" "))) < 900:
            return _folded_at_spaces(value, len("Subject: "))
    return _folded("Subject", value)


_SPECIALS = re.compile(r'[][\\()<>@,:;".]')  # email.utils' specialsre: a name with one is quoted


def _address_header(name: str, address: str) -> str:
    name = " ".join(name.split())
    if name.isascii() and address.isascii() and len(name) + len(address) < 57 and _SPECIALS.search(name) is None:
        return f"{name} <{address}>" if name else address  # what formataddr makes of it, without its calls
    if name.isascii() or not address.isascii():  # (not ASCII: the relay must take SMTPUTF8)
        shown = formataddr((name, address), charset="utf-8")  # quoted where the name needs it
        if len(shown) < 60 or not address.isascii():
            return shown
    # A name that is not ASCII, or a long one: the email package encodes and folds it (its parser
    # costs ten times formataddr, so only for these).
    return _folded("To", str(Address(name, addr_spec=address)) if name else address)


# The email package's header folding (its parser, then its folder) cost 100 to 300 us a header,
# more than the rest of the message: a subject or name that is not ASCII is written as RFC 2047
# encoded words, and a long ASCII subject folded at its spaces, here. The email package reads them
# back as the same text (tests/unit/test_campaign_messages.py).


def _to_header(name: str, address: str) -> str:
    """The To header's value: :func:`_address_header`, a name that is not ASCII written as encoded
    words here. (The From header keeps the email package's: it is made once per mailing, and a
    test message puts it in an EmailMessage, which takes no folded value.)"""
    spaced = " ".join(name.split())
    if spaced and not spaced.isascii() and address.isascii() and "=?" not in spaced:
        return _with_address(_encoded_words(spaced), address, len("To: "))
    return _address_header(name, address)


_WORD_BYTES = 42  # UTF-8 bytes an encoded word carries: 68 characters, so "Subject: " and one fit in 78


def _encoded_words(text: str) -> str:
    """``text`` as RFC 2047 encoded words (UTF-8, base64), one per line: readers join adjacent
    encoded words without the white space between them (RFC 2047 6.2; the email package's address
    parser is the exception, with a space, in the rare name of more than one word). No character
    is split between words."""
    data = text.encode()
    words = []
    start = 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # (a UTF-8 continuation byte)
            end -= 1
        words.append(f"=?utf-8?b?{binascii.b2a_base64(data[start:end], newline=False).decode()}?=")
        start = end
    return "\r\n ".join(words)


def _with_address(words: str, address: str, start: int) -> str:
    """A display name in encoded words and its address, on the last line when it fits."""
    last = words.rpartition("\r\n ")[2]
    column = (start if len(last) == len(words) else 1) + len(last)
    separator = " " if column + len(address) + 3 <= 78 else "\r\n "
    return f"{words}{separator}<{address}>"


def _folded_at_spaces(value: str, start: int) -> str:
    """Printable ASCII folded before spaces so no line passes 78 characters where a word allows."""
    lines = []
    line = ""
    column = start
    for word in value.split(" "):
        if line and column + 1 + len(word) > 78:
            lines.append(line)
            line, column = word, 1 + len(word)
        else:
            line, column = (f"{line} {word}", column + 1 + len(word)) if line else (word, column + len(word))
    lines.append(line)
    return "\r\n ".join(lines)


def _folded(name: str, value: str) -> str:
    """The value of a long or non-ASCII header, folded by the email package (RFC 5322 lines of at
    most 78 characters, RFC 2047 encoded words where it is not ASCII); the name is put back by the
    caller. The plain short ones, nearly all, are written as they are."""
    folded = SMTP.header_factory(name, value).fold(policy=SMTP)
    return folded[len(name) + 2 :].rstrip("\r\n")


def _qp(text: str) -> bytes:
    body = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(body, istext=True, header=False).replace(b"\n", b"\r\n")


def with_unsubscribe_footer(html: str, text: str, url: str, label: str = "") -> tuple[str, str]:
    """The visible unsubscribe link the bulk-sender rules ask for, unless the template placed it."""
    label = label or _("Unsubscribe")
    if text and url not in text:
        text = f"{text.rstrip()}\n\n--\n{label}: {url}\n"
    if html and url not in html and escape(url) not in html:
        at = _body_end(html)
        html = f"{html[:at]}{_html_footer(url, label)}{html[at:]}"
    return html, text


_BODY_END = re.compile(r"(?s).*(</body>)", re.I)


def _body_end(html: str) -> int:
    """Where the last ``</body>`` starts (the end when there is none). ``lower().rfind`` alone put the
    footer in the wrong place when lowering changed the text's length (İ becomes two characters)."""
    lowered = html.lower()
    if len(lowered) == len(html):  # every character lowered to one: the positions are the same
        at = lowered.rfind("</body>")
        return at if at != -1 else len(html)
    match = _BODY_END.match(html)
    return match.start(1) if match else len(html)


_FOOTER_LINK = '<p style="font-size:12px;color:#666"><a href="'


def _html_footer(url: str, label: str) -> str:
    return f"{_FOOTER_LINK}{escape(url)}{_html_footer_end(label)}"


def _html_footer_end(label: str) -> str:
    return f'">{escape(label)}</a></p>'


@dataclass(frozen=True)
class Envelope:
    """What stays the same for every message of one mailing (computed once per run)."""

    from_header: str
    reply_to: str
    domain: str

    @classmethod
    def of(cls, from_name: str, from_address: str, reply_to: str) -> Envelope:
        return cls(
            from_header=_address_header(from_name, from_address),
            reply_to=" ".join(reply_to.split()),
            domain=from_address.rpartition("@")[2] or "hub.invalid",
        )


def _head(
    envelope: Envelope,
    to_name: str,
    to_address: str,
    subject: str,
    message_id: str,
    list_unsubscribe: str,
    date: datetime,
    content_type: str,
) -> bytes:
    """The header block, ending in the empty line (one format, one encode)."""
    reply_to = f"Reply-To: {envelope.reply_to}\r\n" if envelope.reply_to else ""
    return (
        f"From: {envelope.from_header}\r\n"
        f"To: {_to_header(to_name, to_address)}\r\n"
        f"Subject: {_header_text(subject)}\r\n"
        f"Date: {_date_header(date)}\r\n"
        f"Message-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\n"
        f"List-Unsubscribe: <{list_unsubscribe}>\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        "Precedence: bulk\r\n"
        "Auto-Submitted: auto-generated\r\n"
        f"{reply_to}{content_type}\r\n\r\n"
    ).encode()


_QP = "Content-Transfer-Encoding: quoted-printable"
_PLAIN_PART = f"Content-Type: text/plain; charset=utf-8\r\n{_QP}\r\n\r\n".encode()
_HTML_PART = f"Content-Type: text/html; charset=utf-8\r\n{_QP}\r\n\r\n".encode()


def _multipart(head: bytes, boundary: str, text: bytes, html: bytes) -> bytes:
    marker = f"--{boundary}\r\n".encode()
    return b"".join(
        (head, marker, _PLAIN_PART, text, b"\r\n", marker, _HTML_PART, html, f"\r\n--{boundary}--\r\n".encode())
    )


def _content_type(boundary: str, html: str, text: str) -> str:
    if html and text:
        return f'Content-Type: multipart/alternative; boundary="{boundary}"'
    return f"Content-Type: text/{'html' if html else 'plain'}; charset=utf-8\r\n{_QP}"


def build(
    envelope: Envelope,
    *,
    to_name: str,
    to_address: str,
    subject: str,
    html: str,
    text: str,
    message_id: str,
    list_unsubscribe: str,
    date: datetime,
    boundary: str,
) -> bytes:
    """The message as the relay will get it (CRLF line ends)."""
    content_type = _content_type(boundary, html, text)
    head = _head(envelope, to_name, to_address, subject, message_id, list_unsubscribe, date, content_type)
    if html and text:
        return _multipart(head, boundary, _qp(text), _qp(html))
    return head + _qp(html or text)


# --- quoted-printable piece by piece -----------------------------------------------------------------------
#
# A mailing's bodies are mostly the template's constant text; quoted-printable (binascii, in C, at
# about 7 ns a byte) over the whole body was the largest cost of a message. Encoded piece by piece,
# the constant pieces are encoded once per mailing and only the fields per recipient, with the very
# bytes binascii gives for the whole body: its encoding of a byte depends only on the column it
# starts at and, for the last byte of a piece, on what follows (a newline, a NUL, anything else, or
# the end: see _qp_piece), so a piece encoded with that context is the same as inside the whole.

_FILLER = tuple(b"x" * n for n in range(77))  # a column's worth of plain characters
_AFTER = {"\n": b"\n", "\0": b"\0"}  # what follows a piece, as far as its encoding can tell; else b"x"
_QP_CACHE_LIMIT = 20_000


def _qp_piece(data: bytes, column: int, after: bytes) -> tuple[bytes, int]:
    """``data`` quoted-printable (CRLF line ends) as :func:`_qp` encodes it inside a longer text,
    starting at ``column`` and followed by a character of ``after``'s kind (b"" for the end of the
    text); and the column it ends at.

    binascii is given the piece between a plain filler and that follower, and both are cut off:
    the filler (plain characters before column 76) encodes as itself, and the follower as itself
    (b"x"), as "\\n" or as "=00", after a soft line break that belongs to the next piece."""
    out = binascii.b2a_qp(_FILLER[column] + data + after, istext=True, header=False)
    if after:
        out = out[: -3 if after == b"\0" else -1]
        if out.endswith(b"=\n"):
            out = out[:-2]
    end = len(out) - out.rfind(b"\n") - 1
    return out[column:].replace(b"\n", b"\r\n"), end


def _qp_pieces(pieces: list[str], cache: dict[tuple[str, int, bytes], tuple[bytes, int]]) -> bytes:
    """What :func:`_qp` gives for ``"".join(pieces)``: the pieces at even places are constant text,
    those at odd places a recipient's values; each is encoded once per column and follower (kept in
    ``cache``), a value of plain characters not at all.
    No piece holds a CR (the caller's condition): :func:`_qp` turns CRs into newlines over the
    whole text, and a CR ending one piece and a newline starting the next would be one line end."""
    out: list[bytes] = []
    column = 0
    last = len(pieces) - 1
    for at in range(last + 1):
        piece = pieces[at]
        if not piece:
            continue
        if piece[0] == "\n":
            column = 0  # (a line end starts a new line wherever the previous one ended)
        if (
            at % 2
            and column + len(piece) < 75
            and piece.isascii()
            and piece.isprintable()
            and "=" not in piece
            and piece[-1] != " "
            and (column or piece[0] != ".")
        ):
            # A value of printable ASCII but "=" within the line, not ending in a space that a line
            # end would encode, not a lone dot starting a line: quoted-printable as it is.
            out.append(piece.encode())
            column += len(piece)
            continue
        following = at + 1
        while following <= last and not pieces[following]:
            following += 1
        after = _AFTER.get(pieces[following][0], b"x") if following <= last else b""
        key = (piece, column, after)
        found = cache.get(key)
        if found is None:
            if len(cache) >= _QP_CACHE_LIMIT:  # (values that come back, a town or the sender's name,
                cache.clear()  # are kept too: the unique ones fill it now and then)
            found = cache[key] = _qp_piece(piece.encode("utf-8"), column, after)
        encoded, column = found
        out.append(encoded)
    return b"".join(out)


# --- the per-mailing skeleton ------------------------------------------------------------------------------

_HTML_SPECIAL = re.compile("[&<>\"']")


@dataclass(frozen=True)
class _Body:
    """A body's fill-in form as constant texts around its slots, for :func:`_qp_pieces`: the first
    constant, then each slot with the constant after it."""

    first: str
    slots: tuple[tuple[Slot, str], ...]
    pieced: bool  # whether no constant holds a CR (see _qp_pieces; never one from Jinja's lexer)

    @classmethod
    def of(cls, form: Form) -> _Body:
        constants = [""]
        for piece in form.pieces:
            if isinstance(piece, str):
                constants[-1] += piece
            else:
                constants.append("")
        pieced = not any("\r" in constant for constant in constants)
        return cls(constants[0], tuple(zip(form.slots, constants[1:], strict=True)), pieced)

    def pieces(self, values: dict[str, str]) -> list[str]:
        """The constants with the slots' texts (as :meth:`Slot.text` gives them) between them; joined,
        what :func:`hub.campaigns.render.fill` gives. (A value without HTML's special characters is
        its own escape: markupsafe's escape, the costly part, only for the others.)"""
        pieces = [self.first]
        for slot, constant in self.slots:
            value: Any = values[slot.key]
            if slot.default is not None and not value:
                value = slot.default
            if not isinstance(value, str):
                value = slot.text(values)
            elif slot.escaped and _HTML_SPECIAL.search(value) is not None:
                value = str(markup_escape(value))
            pieces += (value, constant)
        return pieces


def _with_text_footer(pieces: list[str], text: str, footer: str, url: str) -> list[str]:
    """``pieces`` of ``text`` as :func:`with_unsubscribe_footer` ends it: stripped of its final
    white space, then ``footer`` and the link on a line of its own."""
    strip = len(text) - len(text.rstrip())
    at = len(pieces) - 1
    while strip:
        cut = min(strip, len(pieces[at]))
        pieces[at] = pieces[at][: len(pieces[at]) - cut]
        strip -= cut
        at -= 1
    return [*pieces[:-1], pieces[-1] + footer, url, "\n"]


def _with_html_footer(pieces: list[str], html: str, before: str, url: str, after: str) -> list[str] | None:
    """``pieces`` of ``html`` with the footer (``before``, the escaped link, ``after``) where
    :func:`with_unsubscribe_footer` puts it; None when that is inside a recipient's value."""
    at = _body_end(html)
    start = 0
    for place, piece in enumerate(pieces):
        end = start + len(piece)
        if place % 2 == 0 and start <= at <= end:
            cut = at - start
            return [*pieces[:place], piece[:cut] + before, url, after + piece[cut:], *pieces[place + 1 :]]
        start = end
    return None


class Skeleton:
    """What every message of one mailing shares, prepared once per run: the envelope and the three
    templates in fill-in form (:func:`hub.campaigns.render.fill_in_form`), so a recipient costs the
    filling in of the fields, not a render in the sandbox. The message is exactly what rendering,
    :func:`with_unsubscribe_footer` and :func:`build` make of it, byte for byte; its bodies'
    quoted-printable is encoded piece by piece (:func:`_qp_pieces`), the template's constant text
    once per mailing."""

    def __init__(self, envelope: Envelope, fills: tuple[Form, Form, Form], label: str) -> None:
        self.envelope = envelope
        self.subject, self.html, self.text = fills
        self.label = label
        self._subject, self._html, self._text = _Body.of(self.subject), _Body.of(self.html), _Body.of(self.text)
        # Piece by piece unless a constant holds a CR (see _qp_pieces); an empty label is
        # translated per message by with_unsubscribe_footer.
        self._pieced_bodies = self._html.pieced and self._text.pieced and bool(label) and "\r" not in label
        self._text_footer = f"\n\n--\n{label}: "
        self._html_footer_end = _html_footer_end(label)
        self._cache: dict[tuple[str, int, bytes], tuple[bytes, int]] = {}

    def build(
        self,
        values: dict[str, str],
        *,
        to_name: str,
        to_address: str,
        message_id: str,
        list_unsubscribe: str,
        date: datetime,
        boundary: str,
    ) -> tuple[str, bytes]:
        """(subject, message) for one recipient: what rendering the templates, adding the footer
        (:func:`with_unsubscribe_footer`) and :func:`build` give."""
        subject = " ".join("".join(self._subject.pieces(values)).split())
        html_pieces, text_pieces = self._html.pieces(values), self._text.pieces(values)
        # (joined, what fill gives: without str.format parsing the whole pattern)
        html, text = "".join(html_pieces), "".join(text_pieces)
        message = None
        if self._pieced_bodies and "\r" not in html and "\r" not in text:  # (a CR here is in a value)
            message = self._pieced(
                html_pieces,
                html,
                text_pieces,
                text,
                list_unsubscribe,
                _head(
                    self.envelope,
                    to_name,
                    to_address,
                    subject,
                    message_id,
                    list_unsubscribe,
                    date,
                    _content_type(boundary, html, text),
                ),
                boundary,
            )
        if message is None:  # (a CR in a value, a footer inside one: the whole text encoded)
            html, text = with_unsubscribe_footer(html, text, list_unsubscribe, self.label)
            message = build(
                self.envelope,
                to_name=to_name,
                to_address=to_address,
                subject=subject,
                html=html,
                text=text,
                message_id=message_id,
                list_unsubscribe=list_unsubscribe,
                date=date,
                boundary=boundary,
            )
        return subject, message

    def _pieced(
        self, html_pieces: list[str], html: str, text_pieces: list[str], text: str, url: str, head: bytes, boundary: str
    ) -> bytes | None:
        """The message from its head and the bodies' pieces, the footer added as
        :func:`with_unsubscribe_footer` adds it; None when it goes inside a value."""
        if html and url not in html and escape(url) not in html:
            footed = _with_html_footer(html_pieces, html, _FOOTER_LINK, str(escape(url)), self._html_footer_end)
            if footed is None:
                return None
            html_pieces = footed
        if text and url not in text:
            text_pieces = _with_text_footer(text_pieces, text, self._text_footer, url)
        if html and text:
            return _multipart(
                head, boundary, _qp_pieces(text_pieces, self._cache), _qp_pieces(html_pieces, self._cache)
            )
        return head + _qp_pieces(html_pieces if html else text_pieces, self._cache)


class Dkim:
    """Signs with dkimpy; the List-Unsubscribe headers are in ``h=`` as RFC 8058 requires."""

    def __init__(self, selector: str, domain: str, key_file: str) -> None:
        with open(key_file, "rb") as handle:
            self.key = handle.read()
        self.selector = selector.encode()
        self.domain = domain.encode()

    def sign(self, message: bytes) -> bytes:
        import dkim

        signature: bytes = dkim.sign(
            message, self.selector, self.domain, self.key, include_headers=_SIGNED_HEADERS, linesep=b"\r\n"
        )
        return signature + message
