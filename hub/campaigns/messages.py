"""One recipient's message as bytes: headers, bodies, the signed unsubscribe link, VERP and DKIM.

Built as bytes directly (quoted-printable by binascii, headers encoded by the email package only
when they are not plain ASCII): ``EmailMessage.as_bytes`` costs more per message than the SMTP
exchange itself, and a mailing builds a hundred thousand of them.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from functools import cache, lru_cache
from html import escape

from itsdangerous import BadSignature, Signer
from itsdangerous.encoding import base64_encode

from hub.campaigns.render import Form, fill
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
    """Whether ``address`` can be put in RCPT TO at all (the relay judges the rest)."""
    return len(address) <= 254 and _ADDRESS.match(address) is not None


def _mac(secret: str, purpose: str, value: str, length: int) -> str:
    return hmac.digest(secret.encode(), f"{purpose}:{value}".encode(), "sha256").hex()[:length]


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
    salted, derived key, base64url; computed with the one-shot ``hmac.digest`` and the key derived
    once, because ``Signer`` derives the key and builds an HMAC object for every token.
    """
    value = str(recipient_id).encode()
    signature = base64_encode(hmac.digest(_signing_key(secret), value, "sha1"))
    return (value + b"." + signature).decode()


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


def _date_header(moment: datetime) -> str:
    # The same for every message of a second: formatted once per second, not per message.
    return _formatted_second(moment.replace(microsecond=0))


@lru_cache(maxsize=4)
def _formatted_second(moment: datetime) -> str:
    return format_datetime(moment)


def _header_text(value: str) -> str:
    value = " ".join(value.split())  # no CR/LF can reach a header: no header injection
    if value.isascii() and len(value) < 60:
        return value
    return _folded("Subject", value)


def _address_header(name: str, address: str) -> str:
    name = " ".join(name.split())
    if name.isascii() or not address.isascii():  # (not ASCII: the relay must take SMTPUTF8)
        shown = formataddr((name, address), charset="utf-8")  # quoted where the name needs it
        if len(shown) < 60 or not address.isascii():
            return shown
    # A name that is not ASCII, or a long one: the email package encodes and folds it (its parser
    # costs ten times formataddr, so only for these).
    return _folded("To", str(Address(name, addr_spec=address)) if name else address)


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


def _html_footer(url: str, label: str) -> str:
    return f'<p style="font-size:12px;color:#666"><a href="{escape(url)}">{escape(label)}</a></p>'


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
    headers = [
        f"From: {envelope.from_header}",
        f"To: {_address_header(to_name, to_address)}",
        f"Subject: {_header_text(subject)}",
        f"Date: {_date_header(date)}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        f"List-Unsubscribe: <{list_unsubscribe}>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "Precedence: bulk",
        "Auto-Submitted: auto-generated",
    ]
    if envelope.reply_to:
        headers.append(f"Reply-To: {envelope.reply_to}")
    qp = "Content-Transfer-Encoding: quoted-printable"
    if html and text:
        headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        head = ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8")
        marker = f"--{boundary}\r\n".encode()
        return b"".join(
            (
                head,
                marker,
                f"Content-Type: text/plain; charset=utf-8\r\n{qp}\r\n\r\n".encode(),
                _qp(text),
                b"\r\n",
                marker,
                f"Content-Type: text/html; charset=utf-8\r\n{qp}\r\n\r\n".encode(),
                _qp(html),
                f"\r\n--{boundary}--\r\n".encode(),
            )
        )
    kind = "html" if html else "plain"
    headers.append(f"Content-Type: text/{kind}; charset=utf-8")
    headers.append(qp)
    return ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8") + _qp(html or text)


# --- the per-mailing skeleton ------------------------------------------------------------------------------


class Skeleton:
    """What every message of one mailing shares, prepared once per run: the envelope and the three
    templates in fill-in form (:func:`hub.campaigns.render.fill_in_form`), so a recipient costs the
    filling in of the fields, not a render in the sandbox. The message is then built exactly as for
    a rendered one: the same bytes, the same footer rule.

    (Quoted-printable is applied to each whole body, in C, by binascii: encoding the constant text
    once per mailing and only the fields per recipient cost more in Python than it saved.)"""

    def __init__(self, envelope: Envelope, fills: tuple[Form, Form, Form], label: str) -> None:
        self.envelope = envelope
        self.subject, self.html, self.text = fills
        self.label = label

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
        subject = " ".join(fill(self.subject, values).split())
        html, text = with_unsubscribe_footer(
            fill(self.html, values), fill(self.text, values), list_unsubscribe, self.label
        )
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
