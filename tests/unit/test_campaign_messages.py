"""A mailing's messages built the fast way (hub.campaigns.messages.Skeleton: quoted-printable piece by
piece, the template's constant text encoded once per mailing) are byte for byte the messages the
plain way builds (render, footer, quoted-printable over each whole body), for hostile values."""

from __future__ import annotations

import email
import random
from datetime import UTC, datetime
from email.policy import default
from typing import Any

import pytest
from markupsafe import escape

from hub.campaigns import messages
from hub.campaigns.render import Templates, context_for, field_values

URL = messages.unsubscribe_url("https://hub.example", "secret-key-0123456789", 7)

# Every way a value can meet quoted-printable's rules: soft line breaks at column 76, "=" and
# non-ASCII encoded, white space at a line's end, a dot alone at a line's start (SMTP's end of
# message), "From " (mbox), line ends of every kind, NUL, and a value that is empty.
HOSTILE = [
    "Anna de Vries",
    "",
    " ",
    "Zoë Ünal-Øster Łukasz 山田太郎",
    "emoji 😀🎉 party",
    "a=b=c ==",
    ".",
    ".starts with a dot",
    "From the start",
    "trailing spaces   ",
    "trailing tab\t",
    "line\nbreak",
    "\n",
    "\nstarts with a line end",
    "ends with a line end\n",
    "carriage\rreturn",
    "Evil\r\nBcc: victim@example.org",
    "nul\0byte",
    "<script>alert('x')</script> & \"quotes\" {0} }{",
    "W" * 300 + " Longname",
    "x" * 74,
    "x" * 75,
    "x" * 76,
    "İstanbul İnci",
    "https://hub.example/u/not-the-link",
]

TEMPLATES = {
    # (subject, html, text)
    "both, link in the HTML": (
        "{{ contact.first_name }}, news for {{ relation.name }}",
        "<html><body><p>Dear {{ contact.name }},</p><p>As {{ contact.function or 'a customer' }} at"
        " <b>{{ relation.name }}</b> in {{ relation.city }}.</p>"
        + "<p>We measured, we compared, we improved: the new range is here for you.</p>" * 4
        + '{{ owner.name }}<a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>',
        "Dear {{ contact.name }},\n\nAs {{ contact.function or 'a customer' }} at {{ relation.name }}"
        " in {{ relation.city }} you get our offers first.\n"
        + "We measured, we compared, we improved: the new range is here for you.\n" * 3
        + "\nKind regards,\n{{ owner.name }}\n",
    ),
    "footers in both": (
        "Hello {{ contact.name }}",
        "<HTML><BODY>{{ contact.name }}{{ relation.name }}\n.{{ relation.city }}\n{{ owner.name }}</BODY></HTML>",
        "{{ contact.name }}{{ relation.name }}\n{{ relation.city }} =\n.{{ owner.name }}   \n\n",
    ),
    "no body end, fields at the edges": (
        "{{ contact.name }}",
        "{{ contact.name }} " + "long constant text " * 9 + "{{ relation.city }}",
        "{{ contact.name }}",
    ),
    "text only": ("Hi", "", "From {{ contact.name }}\n.\n{{ relation.name }} " + "=" * 30 + "{{ relation.city }}"),
    "HTML only": ("Hi", "<p>{{ contact.name }}</p><p>{{ relation.city }}</p>", ""),
    "link in the text": ("Hi", "<p>{{ contact.name }}</p>", "{{ contact.name }}\nLeave: {{ unsubscribe_url }}"),
    # A CR the template itself places (quoted-printable's line end then spans pieces): the whole
    # body encoded as one, the same message.
    "a CR in the template": ("Hi", "<p>{{ contact.name }}</p>", "A {{ '\\r' }}{{ contact.name }}\n{{ relation.city }}"),
}


def _messages(templates: Templates, name: str, city: str) -> tuple[tuple[str, bytes], tuple[str, bytes]]:
    """(subject, message) built the plain way and the fast way, for one recipient."""
    envelope = messages.Envelope.of("News", "news@hub.example", "replies@hub.example")
    fields: dict[str, Any] = {
        "contact_name": name,
        "contact_function": name,
        "address": "p1@example.test",
        "relation": {"name": name, "street": "", "postcode": "", "city": city, "country": "NL", "website": ""},
        "owner_name": name[::-1],
        "owner_email": "owner@hub.example",
        "unsubscribe_url": URL,
    }
    common: dict[str, Any] = {
        "to_name": name,
        "to_address": "p1@example.test",
        "message_id": "<7.1.abc.hub@hub.example>",
        "list_unsubscribe": URL,
        "date": datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC),
        "boundary": "=_hub_1_7",
    }
    subject, html, text = templates.render(context_for(**fields))
    html, text = messages.with_unsubscribe_footer(html, text, URL, "Unsubscribe")
    plain = messages.build(envelope, subject=subject, html=html, text=text, **common)
    assert templates.fills is not None
    skeleton = messages.Skeleton(envelope, templates.fills, "Unsubscribe")
    return (subject, plain), skeleton.build(field_values(**fields), **common)


@pytest.mark.parametrize("kind", TEMPLATES)
def test_the_fast_messages_are_the_plain_ones(kind: str) -> None:
    templates = Templates.compile(*TEMPLATES[kind])
    for name in HOSTILE:
        for city in ("Zwolle", "", "x" * 60, " ."):
            plain, fast = _messages(templates, name, city)
            assert fast == plain, (kind, name, city)


def test_a_fast_message_reads_as_its_values() -> None:
    # What a mail program shows: the headers and bodies with the recipient's values, the footer.
    templates = Templates.compile(*TEMPLATES["footers in both"])
    name = "Zoë =.\n.From 😀 " + "W" * 120
    _plain, (subject, data) = _messages(templates, name, "Zwolle")
    message = email.message_from_bytes(data, policy=default)
    assert message["Subject"] == subject == f"Hello {' '.join(name.split())}"
    assert message["List-Unsubscribe"] == f"<{URL}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    plain, markup = (part.get_content().replace("\r\n", "\n") for part in (text, html))
    assert plain == f"{name}{name}\nZwolle =\n.{name[::-1].rstrip()}\n\n--\nUnsubscribe: {URL}\n"
    assert markup.startswith(f"<HTML><BODY>{escape(name)}{escape(name)}\n.Zwolle\n")
    assert markup.endswith(f'<a href="{URL}">Unsubscribe</a></p></BODY></HTML>')
    body = data.split(b"\r\n\r\n", 1)[1]
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    assert b"\n" not in body.replace(b"\r\n", b"")  # CRLF line ends only


def test_quoted_printable_piece_by_piece_is_that_of_the_whole() -> None:
    # binascii's encoding of the joined pieces, for many random mixes of what changes it.
    atoms = ["a", " ", "\t", "\n", ".", "=", "é", "😀", "\0", "x" * 10, "y" * 70, "z" * 74, "z" * 75, " \n", "From "]
    chance = random.Random(13)
    cache: dict[tuple[str, int, bytes], tuple[bytes, int]] = {}
    for _ in range(20_000):
        pieces = ["".join(chance.choices(atoms, k=chance.randint(0, 6))) for _ in range(chance.randint(1, 9))]
        whole = "".join(pieces)
        assert messages._qp_pieces(pieces, cache) == messages._qp(whole), pieces


def test_unsubscribe_tokens_and_message_ids_are_what_they_were() -> None:
    # Tokens already sent stay valid: itsdangerous' own signature, and its check accepts ours.
    import hashlib
    import hmac

    from itsdangerous import Signer

    secret = "secret-key-0123456789"
    signer = Signer(secret, salt="hub.campaigns.unsubscribe")
    for recipient in (1, 7, 12345, 10**12):
        token = messages.unsubscribe_token(secret, recipient)
        assert token == signer.sign(str(recipient)).decode()
        assert messages.recipient_of_token(secret, token) == recipient
        mac = hmac.digest(secret.encode(), f"msgid:3.{recipient}".encode(), hashlib.sha256).hex()[:8]
        assert messages.message_id(secret, 3, recipient, "hub.example") == f"<{recipient}.3.{mac}.hub@hub.example>"
    assert messages.recipient_of_token("another-secret-0123456", messages.unsubscribe_token(secret, 7)) is None


@pytest.mark.parametrize(
    "name",
    ["Anna de Vries", "", " Anna  de Vries ", "Vries, Anna", 'Anna "boss"', "back\\slash", "A. B.", "x" * 40],
)
def test_address_headers_are_what_formataddr_makes(name: str) -> None:
    # (names that are not ASCII: test_headers_read_back_as_their_text)
    from email.headerregistry import Address
    from email.utils import formataddr

    address = "anna@example.test"
    spaced = " ".join(name.split())
    expected = formataddr((spaced, address), charset="utf-8")
    if len(expected) >= 60:
        expected = messages._folded("To", str(Address(spaced, addr_spec=address)) if spaced else address)
    assert messages._address_header(name, address) == expected


def test_the_date_header_is_the_second_of_each_moment() -> None:
    from datetime import timedelta, timezone
    from email.utils import format_datetime

    start = datetime(2026, 3, 1, 9, 30, 15, 999_000, tzinfo=UTC)
    amsterdam = timezone(timedelta(hours=1))
    moments = [start, start + timedelta(microseconds=1_000), start - timedelta(microseconds=1)]
    moments += [start.astimezone(amsterdam), start.replace(tzinfo=None), start + timedelta(days=400), start]
    for moment in moments:
        assert messages._date_header(moment) == format_datetime(moment.replace(microsecond=0))


HEADER_TEXTS = [
    "Zoë",
    "Zoë Ünal-Øster Łukasz 山田太郎",
    "emoji 😀🎉 " * 9,
    'Müller & Söhne, "quoted" <not@an.address> (comment); x',
    "ü" * 100,
    "long ascii words " * 8,
    "x" * 90 + " tail",
    "exactly sixty-nine characters of plain ASCII text in one subject line",
]


@pytest.mark.parametrize("value", HEADER_TEXTS)
def test_headers_read_back_as_their_text(value: str) -> None:
    # Encoded and folded here or by the email package: a mail program reads the same text back.
    from email.header import decode_header, make_header

    text = " ".join(value.split())
    address = "p1@example.test"
    head = f"Subject: {messages._header_text(value)}\r\nTo: {messages._to_header(value, address)}\r\n\r\n"
    assert all(len(line) <= 78 for line in head.split("\r\n")) or max(len(word) for word in value.split()) > 60
    assert head.isascii()
    message = email.message_from_bytes(head.encode(), policy=default)
    assert message["Subject"] == text
    assert message["To"].addresses[0].addr_spec == address
    # The name as RFC 2047 reads it (encoded words joined without the space between them); the
    # email package's address parser keeps a space there, where a name takes more than one word.
    to = head.split("\r\nTo: ", 1)[1].split("\r\n\r\n")[0]
    shown = to.replace("\r\n", "").rsplit("<", 1)[0].strip()
    if text.isascii():
        assert message["To"].addresses[0].display_name == text
    else:
        assert str(make_header(decode_header(shown))) == text
