"""A corpus of nasty mail, written by hand the way real mailers write it (Outlook, Apple Mail, Gmail,
Thunderbird, Postfix, qmail, Exchange, mailbox providers' feedback loops, calendar servers), each
with what a user must see of it once synced: subject, sender, the moment it was sent (UTC), body
text, attachments, and what kind of message it is.

:func:`corpus` gives the messages; :func:`check` compares one with what was stored of it (a
:class:`Seen`, built from a ParsedMessage in unit tests or from the Email row after a real sync).
"""

from __future__ import annotations

import base64
import datetime as dt
import quopri
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

Z = UTC


@dataclass
class Expected:
    subject: str | None = None
    from_address: str | None = None
    from_name: str | None = None
    sent_at: datetime | None = None
    no_sent_at: bool = False  # sent_at must be None (the sync then uses the arrival time)
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] | None = None
    text: tuple[str, ...] = ()  # the text body contains each, in this order
    not_text: tuple[str, ...] = ()
    html: tuple[str, ...] = ()  # the HTML body contains each, in this order
    attachments: list[tuple[str, str]] | None = None  # exactly these (file name, type), in order
    has_attachments: list[tuple[str, str]] = field(default_factory=list)  # at least these
    attachment_data: dict[str, bytes] = field(default_factory=dict)  # file name → exact bytes
    eml: dict[str, Expected] = field(default_factory=dict)  # an attached .eml, parsed again
    kind: str = ""
    details: dict[str, object] = field(default_factory=dict)  # at least these items
    problems: tuple[str, ...] = ()  # each is part of some problem
    check: Callable[[Seen], list[str]] | None = None  # anything more


@dataclass
class Sample:
    name: str
    raw: bytes
    expected: Expected


@dataclass
class Seen:
    """What was stored of a message."""

    subject: str
    from_address: str
    from_name: str
    sent_at: datetime | None
    message_id: str
    in_reply_to: str
    references: list[str]
    text_body: str
    html_body: str
    attachments: list[tuple[str, str, bytes]]
    kind: str
    details: dict[str, object]
    problems: list[str]


def _in_order(body: str, pieces: tuple[str, ...]) -> str | None:
    at = 0
    for piece in pieces:
        found = body.find(piece, at)
        if found == -1:
            return piece
        at = found + len(piece)
    return None


def check(expected: Expected, seen: Seen, parse_again: Callable[[bytes], Seen] | None = None) -> list[str]:
    """What differs from what is expected (empty when all is well)."""
    errors: list[str] = []

    def same(what: str, want: object, got: object) -> None:
        if want is not None and want != got:
            errors.append(f"{what}: want {want!r}, got {got!r}")

    same("subject", expected.subject, seen.subject)
    same("from_address", expected.from_address, seen.from_address)
    same("from_name", expected.from_name, seen.from_name)
    same("message_id", expected.message_id, seen.message_id)
    same("in_reply_to", expected.in_reply_to, seen.in_reply_to)
    same("references", expected.references, seen.references)
    if expected.sent_at is not None:
        got = seen.sent_at.astimezone(UTC) if seen.sent_at and seen.sent_at.tzinfo else seen.sent_at
        same("sent_at", expected.sent_at, got)
    if expected.no_sent_at and seen.sent_at is not None:
        errors.append(f"sent_at: want None, got {seen.sent_at!r}")
    missing = _in_order(seen.text_body, expected.text)
    if missing is not None:
        errors.append(f"text body lacks {missing!r} (in order): {seen.text_body[:300]!r}")
    for piece in expected.not_text:
        if piece in seen.text_body:
            errors.append(f"text body holds {piece!r}")
    missing = _in_order(seen.html_body, expected.html)
    if missing is not None:
        errors.append(f"HTML body lacks {missing!r} (in order): {seen.html_body[:300]!r}")
    names = [(name, content_type) for name, content_type, _data in seen.attachments]
    same("attachments", expected.attachments, names)
    for wanted in expected.has_attachments:
        if wanted not in names:
            errors.append(f"no attachment {wanted!r} among {names!r}")
    data = {name: blob for name, _type, blob in seen.attachments}
    for name, blob in expected.attachment_data.items():
        if data.get(name) != blob:
            errors.append(f"attachment {name!r} bytes differ")
    for name, inner in expected.eml.items():
        if name not in data:
            errors.append(f"no attached message {name!r}")
        elif parse_again is not None:
            errors += [f"{name}: {e}" for e in check(inner, parse_again(data[name]), parse_again)]
    same("kind", expected.kind, seen.kind)
    for key, value in expected.details.items():
        if seen.details.get(key) != value:
            errors.append(f"details[{key!r}]: want {value!r}, got {seen.details.get(key)!r}")
    for problem in expected.problems:
        if not any(problem in p for p in seen.problems):
            errors.append(f"no problem mentioning {problem!r} in {seen.problems!r}")
    if expected.check is not None:
        errors += expected.check(seen)
    return errors


# --- building blocks ----------------------------------------------------------------------------

STAFF = "Staff <staff@hub.example>"


def crlf(text: str) -> bytes:
    """Text with bare line ends as the CRLF bytes of the wire (8-bit characters as UTF-8)."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", "surrogateescape")


EXPECTED_DATE = "Tue, 03 Nov 2026 09:30:00 +0100"


def mail(headers: str, body: bytes | str, *, date: str | None = EXPECTED_DATE) -> bytes:
    head = headers.strip("\n") + "\n"
    if date is not None and "\nDate:" not in "\n" + head:
        head += f"Date: {date}\n"
    return crlf(head + "\n") + (crlf(body) if isinstance(body, str) else body)


def b64(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii")


def qp(data: bytes) -> str:
    return quopri.encodestring(data).decode("ascii")


PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)
EXPECTED_3_NOV = datetime(2026, 11, 3, 8, 30, tzinfo=Z)


def _plain(name: str, headers: str, body: str, expected: Expected, date: str | None = EXPECTED_DATE) -> Sample:
    default = (
        f"From: Anna Bakker <anna@bakker.example>\nTo: {STAFF}\nMessage-ID: <{name}@corpus.example>\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
    )
    return Sample(name, mail(default + headers, body, date=date), expected)


# --- dates --------------------------------------------------------------------------------------


def _dates() -> list[Sample]:
    cases = [
        ("date_cet_name", "Tue, 03 Nov 2026 09:30:00 CET", EXPECTED_3_NOV),
        ("date_cest_name", "Wed, 15 Jul 2026 14:00:00 CEST", datetime(2026, 7, 15, 12, 0, tzinfo=Z)),
        ("date_est_name", "Mon, 2 Nov 2026 08:15:00 EST", datetime(2026, 11, 2, 13, 15, tzinfo=Z)),
        ("date_pdt_name", "Thu, 1 Oct 2026 10:00:00 PDT", datetime(2026, 10, 1, 17, 0, tzinfo=Z)),
        ("date_bst_name", "Fri, 12 Jun 2026 16:45:00 BST", datetime(2026, 6, 12, 15, 45, tzinfo=Z)),
        ("date_eest_name", "Fri, 12 Jun 2026 16:45:00 EEST", datetime(2026, 6, 12, 13, 45, tzinfo=Z)),
        ("date_two_digit_year_no_seconds", "3 Nov 26 9:30 MET", EXPECTED_3_NOV),
        (
            "date_wrong_day_and_comment",
            "Sun, 03 Nov 2026 09:30:00 +0100 (W. Europe Standard Time)",
            EXPECTED_3_NOV,
        ),
        ("date_offset_and_zone_comment", "Tue, 3 Nov 2026 09:30:00 +0100 (CET)", EXPECTED_3_NOV),
        ("date_iso_8601", "2026-11-03T09:30:00+01:00", EXPECTED_3_NOV),
        ("date_spelled_out", "Tuesday, November 3, 2026 3:30 AM EST", EXPECTED_3_NOV),
    ]
    samples = [
        _plain(name, f"Subject: Afspraak {name}\n", "Tot dan.\n", Expected(sent_at=when), date=date)
        for name, date, when in cases
    ]
    samples.append(
        _plain(
            "date_missing",
            "Subject: Zonder datum\n",
            "Geen Date-kop.\n",
            Expected(subject="Zonder datum", no_sent_at=True, problems=("no Date",)),
            date=None,
        )
    )
    samples.append(
        _plain(
            "date_unreadable",
            "Subject: Rare datum\n",
            "Onleesbare Date-kop.\n",
            Expected(no_sent_at=True, problems=("unreadable Date",)),
            date="gisteren na de lunch",
        )
    )
    return samples


# --- parts --------------------------------------------------------------------------------------


def _multipart(name: str, headers: str, boundary: str, parts: list[str], subtype: str = "mixed") -> str:
    body = "".join(f"--{boundary}\n{part.strip(chr(10))}\n" for part in parts) + f"--{boundary}--\n"
    return (
        f"From: Anna Bakker <anna@bakker.example>\nTo: {STAFF}\nMessage-ID: <{name}@corpus.example>\n"
        f'{headers}MIME-Version: 1.0\nContent-Type: multipart/{subtype}; boundary="{boundary}"\n\n'
        f"This is a multi-part message in MIME format.\n{body}"
    )


def _raw(text: str, date: str = "Tue, 03 Nov 2026 09:30:00 +0100") -> bytes:
    head, _, body = text.partition("\n\n")
    return mail(head, body, date=date)


def _named_text_attachment() -> Sample:
    raw = _raw(
        _multipart(
            "named_text",
            "Subject: Notities\n",
            "----=_NextPart_000_0001",
            [
                "Content-Type: text/plain; charset=utf-8\n\nZie de notities in de bijlage.\n",
                'Content-Type: text/plain; charset=utf-8; name="notities.txt"\n'
                'Content-Disposition: attachment; filename="notities.txt"\n\nPunt 1: dakpannen\n',
                'Content-Type: text/html; charset=utf-8; name="offerte.html"\n\n<p>Offerte als HTML</p>\n',
            ],
        )
    )
    return Sample(
        "named_text_attachment",
        raw,
        Expected(
            text=("Zie de notities",),
            not_text=("Punt 1",),
            attachments=[("notities.txt", "text/plain"), ("offerte.html", "text/html")],
            attachment_data={"notities.txt": b"Punt 1: dakpannen"},
        ),
    )


def _nameless_parts() -> Sample:
    raw = _raw(
        _multipart(
            "nameless",
            "Subject: Scan\n",
            "b1",
            [
                "Content-Type: text/plain\n\nDe scan.\n",
                f"Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n{b64(PDF)}",
                f"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n{b64(b'raw data')}",
                f"Content-Type: image/png\nContent-Transfer-Encoding: base64\n\n{b64(PNG)}",
            ],
        )
    )
    return Sample(
        "nameless_non_text_parts",
        raw,
        Expected(
            text=("De scan.",),
            attachments=[
                ("part-2.pdf", "application/pdf"),
                ("part-3.bin", "application/octet-stream"),
                ("part-4.png", "image/png"),
            ],
            attachment_data={"part-2.pdf": PDF, "part-4.png": PNG},
        ),
    )


def _unknown_types() -> Sample:
    raw = _raw(
        _multipart(
            "unknown",
            "Subject: Vreemde types\n",
            "b2",
            [
                "Content-Type: text/plain\n\nTwee vreemde bijlagen.\n",
                "Content-Type: application/x-hub-unheard-of\n\nopaque one\n",
                'Content-Type: chemical/x-strange; name="molecule.xyz"\n\nC6H6\n',
                "Content-Type: text/enriched\n\n<bold>Verrijkt</bold>\n",
            ],
        )
    )
    return Sample(
        "unknown_content_types",
        raw,
        Expected(
            text=("Twee vreemde bijlagen.", "Verrijkt"),
            attachments=[("part-2.bin", "application/x-hub-unheard-of"), ("molecule.xyz", "chemical/x-strange")],
            attachment_data={"part-2.bin": b"opaque one"},
        ),
    )


def _xhtml_body() -> Sample:
    raw = _raw(
        _multipart(
            "xhtml",
            "Subject: XHTML\n",
            "alt1",
            [
                "Content-Type: text/plain; charset=us-ascii\n\nPlain version\n",
                "Content-Type: application/xhtml+xml; charset=utf-8\n\n"
                '<html xmlns="http://www.w3.org/1999/xhtml"><body><p>XHTML versie</p></body></html>\n',
            ],
            "alternative",
        )
    )
    return Sample("xhtml_body", raw, Expected(text=("Plain version",), html=("XHTML versie",), attachments=[]))


INNER_FORWARDED = crlf(
    "From: Kees Visser <kees@visser.example>\n"
    "To: Anna Bakker <anna@bakker.example>\n"
    "Subject: Offerte dak\n"
    "Date: Mon, 02 Nov 2026 15:00:00 +0100\n"
    "Message-ID: <inner-offerte@visser.example>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="inner"\n'
    "\n"
    "--inner\n"
    "Content-Type: text/plain; charset=iso-8859-1\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Hierbij de offerte voor het dak, prijs =80 12.500.\n"
    "--inner\n"
    'Content-Type: application/pdf; name="offerte.pdf"\n'
    'Content-Disposition: attachment; filename="offerte.pdf"\n'
    "Content-Transfer-Encoding: base64\n"
    "\n" + b64(PDF) + "--inner--\n"
)
INNER_EXPECTED = Expected(
    subject="Offerte dak",
    from_address="kees@visser.example",
    sent_at=datetime(2026, 11, 2, 14, 0, tzinfo=Z),
    text=("prijs € 12.500",),
    attachments=[("offerte.pdf", "application/pdf")],
    attachment_data={"offerte.pdf": PDF},
)


def _forwarded(name: str, encoded: bool) -> Sample:
    if encoded:
        part = (
            "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n"
            'Content-Disposition: attachment; filename="ForwardedMessage.eml"\n\n' + b64(INNER_FORWARDED)
        )
    else:
        part = "Content-Type: message/rfc822\nContent-Disposition: attachment\n\n" + INNER_FORWARDED.decode(
            "latin-1"
        ).replace("\r\n", "\n")
    raw = _raw(
        _multipart(
            name,
            "Subject: Fwd: Offerte dak\n",
            "fwd",
            ["Content-Type: text/plain; charset=utf-8\n\nZie het doorgestuurde bericht.\n", part],
        )
    )
    return Sample(
        name,
        raw,
        Expected(
            subject="Fwd: Offerte dak",
            text=("Zie het doorgestuurde bericht.",),
            not_text=("Hierbij de offerte",),
            attachments=[("Offerte dak.eml", "message/rfc822")],
            eml={"Offerte dak.eml": INNER_EXPECTED},
        ),
    )


def _mailing_list_footer() -> Sample:
    raw = _raw(
        _multipart(
            "list_footer",
            "Subject: [dakdekkers] Nieuwe normen\nList-Id: <dakdekkers.lists.example>\n",
            "===============1234567890==",
            [
                "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
                "De nieuwe normen staan in de bijlage.\n",
                'Content-Type: application/pdf; name="normen.pdf"\nContent-Transfer-Encoding: base64\n'
                'Content-Disposition: attachment; filename="normen.pdf"\n\n' + b64(PDF),
                "Content-Type: text/plain; charset=us-ascii\nContent-Disposition: inline\n\n"
                "_______________________________________________\n"
                "dakdekkers mailing list\nhttps://lists.example/listinfo/dakdekkers\n",
            ],
        )
    )
    return Sample(
        "mailing_list_footer",
        raw,
        Expected(
            text=("De nieuwe normen staan in de bijlage.", "dakdekkers mailing list"),
            attachments=[("normen.pdf", "application/pdf")],
        ),
    )


def _apple_mail_fragments() -> Sample:
    inner = (
        "--Apple-Mail=_B\nContent-Transfer-Encoding: 7bit\nContent-Type: text/html;\n\tcharset=us-ascii\n\n"
        "<html><head></head><body><div>Hier is de foto van het dak:</div><div><br></div></body></html>\n"
        "--Apple-Mail=_B\nContent-Transfer-Encoding: base64\nContent-Disposition: inline;\n\tfilename=dak.png\n"
        'Content-Type: image/png;\n\tx-unix-mode=0644;\n\tname="dak.png"\nContent-Id: <dak@apple>\n\n'
        + b64(PNG)
        + "--Apple-Mail=_B\nContent-Transfer-Encoding: 7bit\nContent-Type: text/html;\n\tcharset=us-ascii\n\n"
        "<html><head></head><body><div><br></div><div>Groet, Anna</div></body></html>\n"
        "--Apple-Mail=_B--\n"
    )
    raw = _raw(
        _multipart(
            "apple",
            "Subject: Foto dak\nX-Mailer: Apple Mail (2.3774.200.91.1.1)\n",
            "Apple-Mail=_A",
            [
                "Content-Transfer-Encoding: 7bit\nContent-Type: text/plain;\n\tcharset=us-ascii\n\n"
                "Hier is de foto van het dak:\n\n\nGroet, Anna\n",
                'Content-Type: multipart/mixed;\n\tboundary="Apple-Mail=_B"\n\n' + inner,
            ],
            "alternative",
        )
    )
    return Sample(
        "apple_mail_html_fragments",
        raw,
        Expected(
            text=("Hier is de foto", "Groet, Anna"),
            html=("Hier is de foto van het dak", "Groet, Anna"),
            attachments=[("dak.png", "image/png")],
        ),
    )


def _missing_boundary() -> Sample:
    raw = mail(
        f"From: Anna Bakker <anna@bakker.example>\nTo: {STAFF}\nSubject: Zonder boundary\n"
        "Message-ID: <noboundary@corpus.example>\nMIME-Version: 1.0\nContent-Type: multipart/mixed\n",
        "--XyZ123\nContent-Type: text/plain; charset=utf-8\n\nDe tekst die anders verdwijnt.\n"
        '--XyZ123\nContent-Type: application/pdf; name="bijlage.pdf"\nContent-Transfer-Encoding: base64\n\n'
        + b64(PDF)
        + "--XyZ123--\n",
    )
    return Sample(
        "multipart_missing_boundary",
        raw,
        Expected(
            text=("De tekst die anders verdwijnt.",),
            has_attachments=[("bijlage.pdf", "application/pdf")],
            problems=("boundary",),
        ),
    )


def _wrong_boundary() -> Sample:
    raw = mail(
        f"From: Anna Bakker <anna@bakker.example>\nTo: {STAFF}\nSubject: Verkeerde boundary\n"
        "Message-ID: <wrongboundary@corpus.example>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="declared-but-unused"\n',
        "--actual-boundary\nContent-Type: text/plain; charset=utf-8\n\nTekst met de echte boundary.\n"
        "--actual-boundary\nContent-Type: text/html; charset=utf-8\n\n<p>HTML met de echte boundary</p>\n"
        "--actual-boundary--\n",
    )
    return Sample(
        "multipart_wrong_boundary",
        raw,
        Expected(text=("Tekst met de echte boundary.",), html=("HTML met de echte boundary",), attachments=[]),
    )


def _no_delimiters() -> Sample:
    raw = mail(
        f"From: Anna Bakker <anna@bakker.example>\nTo: {STAFF}\nSubject: Multipart zonder delen\n"
        "Message-ID: <nodelim@corpus.example>\nMIME-Version: 1.0\nContent-Type: multipart/mixed\n",
        "Alleen tekst, geen delen.\n",
    )
    return Sample("multipart_without_parts", raw, Expected(text=("Alleen tekst, geen delen.",), problems=("text",)))


def _format_flowed() -> Sample:
    body = (
        "Dit is een lange zin die door de mailer is afgebroken \n"
        "op een zachte regeleinde.\n"
        "\n"
        "> Geciteerde tekst die ook \n"
        "> doorloopt.\n"
        " From here, space-stuffed.\n"
        "-- \n"
        "Anna\n"
    )
    delsp = "Met DelSp: hottentotten \ntentoonstelling.\n"
    return Sample(
        "format_flowed",
        _raw(
            _multipart(
                "flowed",
                "Subject: Flowed\nUser-Agent: Mozilla Thunderbird\n",
                "fl",
                [
                    "Content-Type: text/plain; charset=UTF-8; format=flowed\nContent-Transfer-Encoding: 7bit\n\n"
                    + body,
                    "Content-Type: text/plain; charset=UTF-8; format=flowed; delsp=yes\n\n" + delsp,
                ],
            )
        ),
        Expected(
            text=(
                "afgebroken op een zachte regeleinde.",
                "> Geciteerde tekst die ook doorloopt.",
                "\nFrom here, space-stuffed.",
                "-- \nAnna",
                "Met DelSp: hottentottententoonstelling.",
            ),
        ),
    )


@cache
def _smime_material() -> tuple[object, object]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "anna@bakker.example")])
    now = datetime(2026, 1, 1, tzinfo=Z)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert, key


SIGNED_CONTENT = crlf(
    'Content-Type: multipart/mixed; boundary="signed-inner"\n\n'
    "--signed-inner\nContent-Type: text/plain; charset=utf-8\n\nOndertekende opdrachtbevestiging.\n"
    '--signed-inner\nContent-Type: application/pdf; name="opdracht.pdf"\nContent-Transfer-Encoding: base64\n\n'
    + b64(PDF)
    + "--signed-inner--\n"
)


def _smime_signed() -> Sample:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    cert, key = _smime_material()
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(SIGNED_CONTENT)
        .add_signer(cert, key, hashes.SHA256())  # type: ignore[arg-type]
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    raw = mail(
        f"From: Anna Bakker <anna@bakker.example>\nTo: {STAFF}\nSubject: Ondertekend\n"
        "Message-ID: <smime-signed@corpus.example>\nMIME-Version: 1.0\n"
        'Content-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"\n'
        'Content-Disposition: attachment; filename="smime.p7m"\nContent-Transfer-Encoding: base64\n',
        b64(der),
    )
    return Sample(
        "smime_opaque_signed",
        raw,
        Expected(
            text=("Ondertekende opdrachtbevestiging.",),
            has_attachments=[("opdracht.pdf", "application/pdf"), ("smime.p7m", "application/pkcs7-mime")],
            attachment_data={"opdracht.pdf": PDF},
        ),
    )


def _smime_encrypted() -> Sample:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    cert, _key = _smime_material()
    der = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(b"Content-Type: text/plain\r\n\r\nGeheim.\r\n")
        .add_recipient(cert)  # type: ignore[arg-type]
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    raw = mail(
        f"From: Anna Bakker <anna@bakker.example>\nTo: {STAFF}\nSubject: Versleuteld\n"
        "Message-ID: <smime-enveloped@corpus.example>\nMIME-Version: 1.0\n"
        'Content-Type: application/x-pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\n'
        'Content-Disposition: attachment; filename="smime.p7m"\nContent-Transfer-Encoding: base64\n',
        b64(der),
    )
    return Sample(
        "smime_encrypted",
        raw,
        Expected(
            subject="Versleuteld",
            attachments=[("smime.p7m", "application/x-pkcs7-mime")],
            attachment_data={"smime.p7m": der},
            problems=("encrypted",),
        ),
    )


def _deep_nesting() -> Sample:
    depth = 400
    opening = "".join(f'Content-Type: multipart/mixed; boundary="d{i}"\n\n--d{i}\n' for i in range(1, depth))
    closing = "".join(f"--d{i}--\n" for i in reversed(range(1, depth)))
    raw = mail(
        f"From: Anna Bakker <anna@bakker.example>\nTo: {STAFF}\nSubject: Heel diep\n"
        "Message-ID: <deep@corpus.example>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="d0"\n',
        "--d0\n" + opening + "Content-Type: text/plain\n\nonderin\n" + closing + "--d0--\n",
    )
    return Sample(
        "nesting_hundreds_deep",
        raw,
        Expected(
            subject="Heel diep",
            from_address="anna@bakker.example",
            sent_at=EXPECTED_3_NOV,
            problems=("structure",),
        ),
    )


def _inline_named_text_only() -> Sample:
    raw = mail(
        f"From: Anna Bakker <anna@bakker.example>\nTo: {STAFF}\nSubject: Alleen een benoemd tekstdeel\n"
        "Message-ID: <inline-named@corpus.example>\nMIME-Version: 1.0\n"
        'Content-Type: text/plain; charset=utf-8; name="bericht.txt"\nContent-Disposition: inline\n',
        "Dit bericht is een benoemd tekstdeel.\n",
    )
    return Sample(
        "inline_named_text_only",
        raw,
        Expected(text=("benoemd tekstdeel",), attachments=[("bericht.txt", "text/plain")]),
    )


def _outlook_related_tnef() -> Sample:
    related = (
        '--rel\nContent-Type: text/html; charset="utf-8"\nContent-Transfer-Encoding: quoted-printable\n\n'
        + qp(b'<html><body><p>Zie logo: <img src="cid:image001.png@01DA"></p></body></html>\n')
        + '--rel\nContent-Type: image/png; name="image001.png"\nContent-Description: image001.png\n'
        'Content-Disposition: inline; filename="image001.png"; size=70\nContent-ID: <image001.png@01DA>\n'
        "Content-Transfer-Encoding: base64\n\n" + b64(PNG) + "--rel--\n"
    )
    raw = _raw(
        _multipart(
            "outlook",
            "Subject: Logo\nX-Mailer: Microsoft Outlook 16.0\nThread-Index: AdpEz1234==\n",
            "----=_NextPart_000_0000_01DA1234.56789ABC",
            [
                'Content-Type: multipart/alternative;\n\tboundary="----=_NextPart_001"\n\n'
                '------=_NextPart_001\nContent-Type: text/plain; charset="utf-8"\n'
                "Content-Transfer-Encoding: quoted-printable\n\nZie logo:\n\n"
                '------=_NextPart_001\nContent-Type: multipart/related; boundary="rel"\n\n' + related + "\n"
                "------=_NextPart_001--\n",
                'Content-Type: application/ms-tnef; name="winmail.dat"\nContent-Transfer-Encoding: base64\n'
                'Content-Disposition: attachment; filename="winmail.dat"\n\n' + b64(b"\x78\x9f\x3e\x22 tnef"),
            ],
        )
    )
    return Sample(
        "outlook_related_and_tnef",
        raw,
        Expected(
            text=("Zie logo:",),
            html=('src="cid:image001.png@01DA"',),
            attachments=[("image001.png", "image/png"), ("winmail.dat", "application/ms-tnef")],
        ),
    )


def _parts() -> list[Sample]:
    return [
        _named_text_attachment(),
        _nameless_parts(),
        _unknown_types(),
        _xhtml_body(),
        _forwarded("forwarded_message", encoded=False),
        _forwarded("forwarded_message_base64", encoded=True),
        _mailing_list_footer(),
        _apple_mail_fragments(),
        _missing_boundary(),
        _wrong_boundary(),
        _no_delimiters(),
        _format_flowed(),
        _smime_signed(),
        _smime_encrypted(),
        _deep_nesting(),
        _inline_named_text_only(),
        _outlook_related_tnef(),
    ]


# --- text ---------------------------------------------------------------------------------------


def _text() -> list[Sample]:
    latin1 = Sample(
        "latin1_holding_windows_1252",
        mail(
            f"From: =?iso-8859-1?q?Ren=E9_M=FCller?= <rene@muller.example>\nTo: {STAFF}\n"
            "Subject: =?iso-8859-1?q?=80_100_korting_=93vandaag=94_=96_alleen?=\n"
            "Message-ID: <latin1@corpus.example>\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n",
            "Prijs: =80 100, =93aanbieding=94 =96 caf=E9.\n",
        ),
        Expected(
            subject="€ 100 korting “vandaag” \u2013 alleen",
            from_name="René Müller",
            text=("Prijs: € 100, “aanbieding” \u2013 café.",),
        ),
    )
    ascii_label = Sample(
        "us_ascii_holding_windows_1252",
        mail(
            f"From: rene@muller.example\nTo: {STAFF}\nSubject: =?us-ascii?q?=93Quote=94?=\n"
            "Message-ID: <ascii1252@corpus.example>\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 8bit\n",
            "It\x92s \x80 5.\n".encode("latin-1"),
        ),
        Expected(subject="“Quote”", text=("It\u2019s € 5.",)),
    )
    raw_utf8 = Sample(
        "raw_utf8_headers_and_file_name",
        mail(
            f"From: Jürgen Groß <juergen@gross.example>\nTo: {STAFF}\nSubject: Überweisung für März ✓\n"
            "Message-ID: <rawutf8@corpus.example>\nMIME-Version: 1.0\n"
            'Content-Type: multipart/mixed; boundary="u8"\n',
            "--u8\nContent-Type: text/plain; charset=utf-8\n\nGrüße\n"
            '--u8\nContent-Type: application/pdf; name="Überweisung März €.pdf"\n'
            'Content-Disposition: attachment; filename="Überweisung März €.pdf"\n'
            "Content-Transfer-Encoding: base64\n\n" + b64(PDF) + "--u8--\n",
        ),
        Expected(
            subject="Überweisung für März ✓",
            from_name="Jürgen Groß",
            text=("Grüße",),
            attachments=[("Überweisung März €.pdf", "application/pdf")],
        ),
    )
    cp1252_header = Sample(
        "raw_windows_1252_header",
        mail(
            f"From: Ren\xe9 <rene@muller.example>\nTo: {STAFF}\nSubject: Caf\xe9 \x93De Hoek\x94\n"
            "Message-ID: <raw1252@corpus.example>\n",
            "Tekst.\n",
        )
        .decode("utf-8")
        .encode("latin-1"),
        Expected(subject="Café “De Hoek”", from_name="René"),
    )
    broken_b64 = _plain(
        "encoded_word_broken_base64",
        "Subject: =?UTF-8?B?T2ZmZXJ0ZSB2b29yIGhldCBkYWs?=\n",  # padding missing
        "Tekst.\n",
        Expected(subject="Offerte voor het dak"),
    )
    stray = _plain(
        "encoded_word_stray_characters",
        "Subject: =?utf-8?b?QmVzdGVsbGluZy!BrbGFhcg==?= =?utf-8?b?IGdlbGV2ZXJk?\n",
        "Tekst.\n",
        Expected(check=lambda seen: [] if seen.subject.startswith("Bestelling") else [f"subject {seen.subject!r}"]),
    )
    split_char = _plain(
        "encoded_words_split_inside_a_character",
        "Subject: =?UTF-8?Q?Caf=C3?= =?UTF-8?Q?=A9_om_tien?=\n =?UTF-8?B?4oKs?=\n"
        "  =?utf-8?b?IDUg8J+Y?= =?utf-8?b?gA==?=\n",
        "Tekst.\n",
        Expected(subject="Café om tien€ 5 😀"),
    )
    bare_ids = _plain(
        "message_ids_without_angle_brackets",
        "Subject: Re: Offerte\nIn-Reply-To: 20261102.abc123@visser.example\n"
        "References: root.1@visser.example 20261102.abc123@visser.example\n",
        "Akkoord.\n",
        Expected(
            in_reply_to="<20261102.abc123@visser.example>",
            references=["<root.1@visser.example>", "<20261102.abc123@visser.example>"],
        ),
    )
    bare_ids.raw = bare_ids.raw.replace(
        b"Message-ID: <message_ids_without_angle_brackets@corpus.example>", b"Message-ID: bare-id.42@corpus.example"
    )
    bare_ids.expected.message_id = "<bare-id.42@corpus.example>"
    standin = Sample(
        "dovecot_nul_stand_in",
        mail(
            f"From: Anna Bakker <anna@bakker.example>\nTo: {STAFF}\nSubject: Nul\x80byte in onderwerp é\n"
            "Message-ID: <standin@corpus.example>\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n",
            "Veld A\x80Veld B, café\n".encode("latin-1").replace(b"caf\xe9", "café".encode()),
        ).replace(b"Nul\xc2\x80byte", b"Nul\x80byte"),
        Expected(
            text=("Veld A", "Veld B, café"),
            not_text=("€",),
            check=lambda seen: ["€ in subject"] if "€" in seen.subject or "é" not in seen.subject else [],
        ),
    )
    japanese = Sample(
        "iso_2022_jp",
        mail(
            f"From: =?ISO-2022-JP?B?GyRCRURDZhsoQg==?= <tanaka@example.jp>\nTo: {STAFF}\n"
            "Subject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\nMessage-ID: <jp@corpus.example>\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit\n",
            "こんにちは、世界\n".encode("iso-2022-jp").decode("ascii") + "\n",
        ),
        Expected(subject="こんにちは", from_name="田中", text=("こんにちは、世界",)),
    )
    return [latin1, ascii_label, raw_utf8, cp1252_header, broken_b64, stray, split_char, bare_ids, standin, japanese]


# --- file names ---------------------------------------------------------------------------------


def _attachment_named(name: str, disposition: str, expected_name: str, content_type: str = "application/pdf") -> Sample:
    raw = _raw(
        _multipart(
            name,
            f"Subject: Bijlage {name}\n",
            "fn",
            [
                "Content-Type: text/plain\n\nZie bijlage.\n",
                f"Content-Type: {content_type}\nContent-Disposition: {disposition}\n"
                f"Content-Transfer-Encoding: base64\n\n{b64(PDF)}",
            ],
        )
    )
    return Sample(
        name, raw, Expected(attachments=[(expected_name, content_type)], attachment_data={expected_name: PDF})
    )


def _file_names() -> list[Sample]:
    long_stem = "Offerte_" + "é" * 200
    samples = [
        _attachment_named("filename_unix_path", 'attachment; filename="../../etc/passwd"', "passwd"),
        _attachment_named(
            "filename_windows_path", 'attachment; filename="C:\\\\Users\\\\anna\\\\offerte.pdf"', "offerte.pdf"
        ),
        _attachment_named(
            "filename_right_to_left_override",
            "attachment; filename*=utf-8''factuur%E2%80%AEfdp.exe",
            "factuurfdp.exe",
            "application/octet-stream",
        ),
        _attachment_named("filename_only_dots", 'attachment; filename=".."', "part-2.pdf"),
        _attachment_named("filename_empty", 'attachment; filename=""', "part-2.pdf"),
        _attachment_named(
            "filename_rfc2231_continuations",
            "attachment;\n filename*0*=utf-8''Offerte%20dak%20;\n filename*1*=caf%C3%A9%20%E2%82%AC.pdf",
            "Offerte dak café €.pdf",
        ),
        _attachment_named(
            "filename_rfc2231_latin1", "attachment; filename*=iso-8859-1''%80uro%20%93nota%94.pdf", "€uro “nota”.pdf"
        ),
        _attachment_named(
            "filename_encoded_word_outlook", 'attachment; filename="=?utf-8?B?b2ZmZXJ0ZV/DqS5wZGY=?="', "offerte_é.pdf"
        ),
        _attachment_named("filename_control_characters", 'attachment; filename="rap\tport\x07.pdf"', "rap port.pdf"),
    ]
    long_name = long_stem + ".pdf"
    long = _attachment_named("filename_too_long", f'attachment; filename="{long_name}"', "")
    long.expected = Expected(
        check=lambda seen: (
            []
            if len(seen.attachments) == 1
            and seen.attachments[0][0].endswith(".pdf")
            and seen.attachments[0][0].startswith("Offerte_é")
            and len(seen.attachments[0][0].encode()) <= 255
            else [f"long name kept as {[a[0] for a in seen.attachments]!r}"]
        )
    )
    samples.append(long)
    return samples


# --- kinds --------------------------------------------------------------------------------------

ORIGINAL_HEADERS = (
    f"From: {STAFF}\nTo: Piet Jansen <piet@jansen.example>\nSubject: Offerte dak\n"
    "Date: Mon, 02 Nov 2026 10:00:00 +0100\nMessage-ID: <original-offerte@hub.example>\n"
)


def _dsn(
    name: str,
    sender: str,
    subject: str,
    human: str,
    status_fields: str,
    returned: str,
    extra_headers: str = "",
) -> bytes:
    return _raw(
        f"From: {sender}\nTo: {STAFF}\nSubject: {subject}\nMessage-ID: <{name}@mx.example>\n{extra_headers}"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status;\n\tboundary="dsn-boundary"\n\n'
        "This is a MIME-encapsulated message.\n\n"
        f"--dsn-boundary\nContent-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\n{human}\n"
        f"--dsn-boundary\nContent-Description: Delivery report\nContent-Type: message/delivery-status\n\n"
        f"{status_fields}\n"
        f"--dsn-boundary\n{returned}\n"
        "--dsn-boundary--\n"
    )


def _bounces() -> list[Sample]:
    postfix = _dsn(
        "postfix_dsn",
        "MAILER-DAEMON@mx.hub.example (Mail Delivery System)",
        "Undelivered Mail Returned to Sender",
        "This is the mail system at host mx.hub.example.\n\nI'm sorry to have to inform you that your message "
        "could not\nbe delivered to one or more recipients.\n\n<piet@jansen.example>: host mx.jansen.example said: "
        "550 5.1.1\n    <piet@jansen.example>: Recipient address rejected: User unknown",
        "Reporting-MTA: dns; mx.hub.example\nX-Postfix-Queue-ID: 4Q1234\n"
        "Arrival-Date: Mon,  2 Nov 2026 10:00:01 +0100 (CET)\n\n"
        "Final-Recipient: rfc822; piet@jansen.example\nOriginal-Recipient: rfc822;piet@jansen.example\n"
        "Action: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.jansen.example\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <piet@jansen.example>: Recipient address rejected:\n"
        "    User unknown in virtual mailbox table",
        "Content-Description: Undelivered Message\nContent-Type: message/rfc822\n\n"
        + ORIGINAL_HEADERS
        + "\nBeste Piet,\n",
    )
    gmail = _dsn(
        "gmail_dsn",
        "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        "Delivery Status Notification (Failure)",
        "** Address not found **\n\nYour message wasn't delivered to piet@jansen.example because the address "
        "couldn't be found.",
        "Reporting-MTA: dns; googlemail.com\n\nFinal-Recipient: rfc822; piet@jansen.example\nAction: failed\n"
        "Status: 5.1.1\nDiagnostic-Code: smtp; The email account that you tried to reach does not exist.",
        "Content-Type: text/rfc822-headers; charset=UTF-8\n\n" + ORIGINAL_HEADERS,
        extra_headers="Auto-Submitted: auto-replied\n",
    )
    exchange = _dsn(
        "exchange_ndr",
        "Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@hub.example>",
        "Undeliverable: Offerte dak",
        "Delivery has failed to these recipients or groups:\n\npiet@jansen.example\nThe email address you "
        "entered couldn't be found.",
        "Reporting-MTA: dns;EX01.hub.example\nReceived-From-MTA: dns;EX02.hub.example\n\n"
        "Original-Recipient: rfc822;piet@jansen.example\nFinal-Recipient: rfc822;piet@jansen.example\n"
        "Action: failed\nStatus: 5.1.10\n"
        "Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
        "Content-Type: message/rfc822\n\n" + ORIGINAL_HEADERS + "\nBeste Piet,\n",
    )
    delayed = _dsn(
        "delayed_dsn",
        "MAILER-DAEMON@mx.hub.example (Mail Delivery System)",
        "Delayed Mail (still being retried)",
        "This is the mail system at host mx.hub.example.\n\n####################################\n"
        "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #",
        "Reporting-MTA: dns; mx.hub.example\n\nFinal-Recipient: rfc822; piet@jansen.example\nAction: delayed\n"
        "Status: 4.4.1\nDiagnostic-Code: X-Postfix; connect to mx.jansen.example: Connection timed out",
        "Content-Type: text/rfc822-headers\n\n" + ORIGINAL_HEADERS,
    )
    qmail = _raw(
        "From: MAILER-DAEMON@mail.jansen.example\nTo: staff@hub.example\nSubject: failure notice\n"
        "Message-ID: <qmail-bounce@mail.jansen.example>\n\n"
        "Hi. This is the qmail-send program at mail.jansen.example.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<piet@jansen.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
        "--- Below this line is a copy of the message.\n\n"
        "Return-Path: <staff@hub.example>\n" + ORIGINAL_HEADERS + "\nBeste Piet,\n"
    )
    postfix_plain = _raw(
        "From: MAILER-DAEMON (Mail Delivery System)\nTo: staff@hub.example\n"
        "Subject: Undelivered Mail Returned to Sender\nMessage-ID: <plain-bounce@mx.hub.example>\n"
        "Auto-Submitted: auto-replied\n\n"
        "This is the mail system at host mx.hub.example.\n\n"
        "<piet@jansen.example>: host mx.jansen.example[192.0.2.7] said: 552 5.2.2 Mailbox full\n"
    )
    expected = {
        "hard": True,
        "recipient": "piet@jansen.example",
        "status": "5.1.1",
        "action": "failed",
        "original_message_id": "<original-offerte@hub.example>",
    }
    return [
        Sample(
            "postfix_dsn",
            postfix,
            Expected(
                subject="Undelivered Mail Returned to Sender",
                from_address="mailer-daemon@mx.hub.example",
                kind="bounce",
                details=expected,
                has_attachments=[("Offerte dak.eml", "message/rfc822")],
                check=lambda seen: (
                    []
                    if "Recipient address rejected" in str(seen.details.get("diagnostic"))
                    else [f"diagnostic {seen.details.get('diagnostic')!r}"]
                ),
            ),
        ),
        Sample("gmail_dsn_auto_submitted", gmail, Expected(kind="bounce", details=expected)),
        Sample("exchange_ndr", exchange, Expected(kind="bounce", details={**expected, "status": "5.1.10"})),
        Sample(
            "delayed_dsn",
            delayed,
            Expected(
                kind="bounce",
                details={**expected, "hard": False, "status": "4.4.1", "action": "delayed"},
            ),
        ),
        Sample("qmail_failure_notice", qmail, Expected(kind="bounce", details=expected)),
        Sample(
            "postfix_plain_text_bounce",
            postfix_plain,
            Expected(
                kind="bounce",
                details={"hard": True, "recipient": "piet@jansen.example", "status": "5.2.2", "action": "failed"},
            ),
        ),
    ]


def _arf(name: str, report: str, returned: str) -> bytes:
    return _raw(
        f"From: Mail Feedback <feedback@fbl.mailprovider.example>\nTo: abuse@hub.example\n"
        f"Subject: Email Feedback Report for IP 192.0.2.10\nMessage-ID: <{name}@fbl.mailprovider.example>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report;\n\tboundary="arf"\n\n'
        "--arf\nContent-Type: text/plain; charset=us-ascii\n\nThis is an email abuse report for an email message "
        "received from IP 192.0.2.10.\n"
        f"--arf\nContent-Type: message/feedback-report\n\n{report}\n"
        f"--arf\n{returned}\n--arf--\n"
    )


def _complaints() -> list[Sample]:
    full = _arf(
        "arf_full",
        "Feedback-Type: abuse\nUser-Agent: MailProviderFBL/1.0\nVersion: 1\n"
        "Original-Mail-From: <bounces@hub.example>\nOriginal-Rcpt-To: <piet@jansen.example>\n"
        "Arrival-Date: Mon, 02 Nov 2026 10:00:05 +0000\nSource-IP: 192.0.2.10\nReported-Domain: hub.example",
        "Content-Type: message/rfc822\nContent-Disposition: inline\n\n" + ORIGINAL_HEADERS + "\nNieuwsbrief\n",
    )
    headers_only = _arf(
        "arf_headers_only",
        "Feedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1",
        "Content-Type: text/rfc822-headers\n\n" + ORIGINAL_HEADERS,
    )
    return [
        Sample(
            "arf_complaint",
            full,
            Expected(
                kind="complaint",
                details={
                    "feedback_type": "abuse",
                    "recipient": "piet@jansen.example",
                    "original_rcpt_to": "piet@jansen.example",
                    "original_message_id": "<original-offerte@hub.example>",
                    "user_agent": "MailProviderFBL/1.0",
                },
                has_attachments=[("Offerte dak.eml", "message/rfc822")],
            ),
        ),
        Sample(
            "arf_complaint_headers_only",
            headers_only,
            Expected(
                kind="complaint",
                details={
                    "feedback_type": "abuse",
                    "recipient": "piet@jansen.example",
                    "original_message_id": "<original-offerte@hub.example>",
                },
            ),
        ),
    ]


def _auto_replies() -> list[Sample]:
    exchange = _plain(
        "exchange_auto_reply",
        "Subject: Automatisch antwoord: Offerte dak\nAuto-Submitted: auto-generated\n"
        "X-Auto-Response-Suppress: All\nX-MS-Exchange-Inbox-Rules-Loop: piet@jansen.example\n",
        "Ik ben afwezig tot 10 november.\n",
        Expected(kind="auto_reply", details={"auto_submitted": "auto-generated"}, text=("afwezig",)),
    )
    rfc3834 = _plain(
        "rfc3834_auto_replied",
        "Subject: Re: Offerte dak\nAuto-Submitted: auto-replied (vacation)\n",
        "Op vakantie.\n",
        Expected(kind="auto_reply", details={"auto_submitted": "auto-replied (vacation)"}),
    )
    x_autoreply = _plain(
        "x_autoreply_out_of_office",
        "Subject: Out of Office: Offerte dak\nX-Autoreply: yes\n",
        "I am out of the office.\n",
        Expected(kind="auto_reply"),
    )
    precedence = _plain(
        "precedence_auto_reply",
        "Subject: Re: vraag\nPrecedence: auto_reply\n",
        "Bedankt.\n",
        Expected(kind="auto_reply"),
    )
    subject_only = _plain(
        "afwezig_subject_only", "Subject: Afwezig: vraag\n", "Tot maandag.\n", Expected(kind="auto_reply")
    )
    not_auto = _plain(
        "auto_submitted_no", "Subject: Gewoon bericht\nAuto-Submitted: no\n", "Hallo.\n", Expected(kind="", details={})
    )
    return [exchange, rfc3834, x_autoreply, precedence, subject_only, not_auto]


def _ics(method: str, extra: str = "", start: str = "DTSTART:20261110T130000Z\nDTEND:20261110T140000Z") -> str:
    return (
        "BEGIN:VCALENDAR\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\nVERSION:2.0\nCALSCALE:GREGORIAN\n"
        f"METHOD:{method}\n{extra}BEGIN:VEVENT\n{start}\nDTSTAMP:20261103T083000Z\n"
        "ORGANIZER;CN=Anna Bakker:mailto:anna@bakker.example\nUID:7kv3l0bq8@google.com\n"
        "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=staff@hub.example;"
        "X-NUM-GUESTS=0:mailto:staff@hub.example\n"
        "ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=TRUE;CN=Anna Bakker;"
        "X-NUM-GUESTS=0:mailto:anna@bakker.example\n"
        "SEQUENCE:2\nSTATUS:CONFIRMED\nSUMMARY:Dak bespreken\nEND:VEVENT\nEND:VCALENDAR\n"
    )


def _invitations() -> list[Sample]:
    request = _ics("REQUEST")
    google = _raw(
        _multipart(
            "google_invite",
            "Subject: Uitnodiging: Dak bespreken @ di 10 nov 2026 14:00 - 15:00 (CET)\n"
            "Reply-To: Anna Bakker <anna@bakker.example>\nSender: Google Calendar <calendar-notification@google.com>\n",
            "000000000000a1b2c3",
            [
                'Content-Type: multipart/alternative; boundary="000000000000a1b2c4"\n\n'
                '--000000000000a1b2c4\nContent-Type: text/plain; charset="UTF-8"; format=flowed; delsp=yes\n'
                "Content-Transfer-Encoding: base64\n\n"
                + b64(b"U bent uitgenodigd voor Dak bespreken.\n")
                + '--000000000000a1b2c4\nContent-Type: text/html; charset="UTF-8"\n\n'
                "<p>U bent uitgenodigd voor <b>Dak bespreken</b></p>\n"
                '--000000000000a1b2c4\nContent-Type: text/calendar; charset="UTF-8"; method=REQUEST\n'
                "Content-Transfer-Encoding: 7bit\n\n" + request + "--000000000000a1b2c4--\n",
                'Content-Type: application/ics; name="invite.ics"\nContent-Disposition: attachment; '
                'filename="invite.ics"\nContent-Transfer-Encoding: base64\n\n' + b64(crlf(request)),
            ],
        )
    )
    outlook = _raw(
        _multipart(
            "outlook_invite",
            "Subject: Dak bespreken\nX-Mailer: Microsoft Outlook 16.0\n",
            "_000_OUTLOOK",
            [
                "Content-Type: text/plain; charset=utf-8\n\nWanneer: dinsdag 10 november 2026 14:00-15:00.\n",
                'Content-Type: text/calendar; charset="utf-8"; method=REQUEST\nContent-Transfer-Encoding: base64\n\n'
                + b64(
                    crlf(
                        _ics(
                            "REQUEST",
                            "BEGIN:VTIMEZONE\nTZID:W. Europe Standard Time\nBEGIN:STANDARD\nDTSTART:16010101T030000\n"
                            "TZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\n"
                            "END:STANDARD\nBEGIN:DAYLIGHT\nDTSTART:16010101T020000\nTZOFFSETFROM:+0100\n"
                            "TZOFFSETTO:+0200\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\nEND:DAYLIGHT\n"
                            "END:VTIMEZONE\n",
                            "DTSTART;TZID=W. Europe Standard Time:20261110T140000\n"
                            "DTEND;TZID=W. Europe Standard Time:20261110T150000",
                        )
                    )
                ),
            ],
        )
    )
    reply = _raw(
        _multipart(
            "calendar_reply",
            "Subject: Geaccepteerd: Dak bespreken\n",
            "rep",
            [
                "Content-Type: text/plain; charset=utf-8\n\nAnna heeft de uitnodiging geaccepteerd.\n",
                "Content-Type: text/calendar; method=REPLY; charset=utf-8\n\n" + _ics("REPLY"),
            ],
        )
    )
    cancel = _raw(
        _multipart(
            "calendar_cancel",
            "Subject: Geannuleerd: Dak bespreken\n",
            "can",
            ["Content-Type: text/calendar; method=CANCEL; charset=utf-8\n\n" + _ics("CANCEL")],
        )
    )
    invitation = {
        "method": "REQUEST",
        "uid": "7kv3l0bq8@google.com",
        "sequence": 2,
        "summary": "Dak bespreken",
        "start": "2026-11-10T13:00:00Z",
        "end": "2026-11-10T14:00:00Z",
        "organizer": "anna@bakker.example",
        "attendees": [
            {"address": "staff@hub.example", "partstat": "NEEDS-ACTION"},
            {"address": "anna@bakker.example", "partstat": "ACCEPTED"},
        ],
    }
    return [
        Sample(
            "google_calendar_invite",
            google,
            Expected(
                kind="invitation",
                details=invitation,
                text=("U bent uitgenodigd",),
                html=("<b>Dak bespreken</b>",),
                attachments=[("invite.ics", "text/calendar"), ("invite.ics", "application/ics")],
            ),
        ),
        Sample(
            "outlook_invite_windows_time_zone",
            outlook,
            Expected(kind="invitation", details=invitation, has_attachments=[("invite.ics", "text/calendar")]),
        ),
        Sample("calendar_reply", reply, Expected(kind="invitation", details={"method": "REPLY"})),
        Sample("calendar_cancel", cancel, Expected(kind="invitation", details={"method": "CANCEL", "sequence": 2})),
    ]


def corpus() -> list[Sample]:
    """Every sample, each with a unique name and a unique message."""
    return _dates() + _parts() + _text() + _file_names() + _bounces() + _complaints() + _auto_replies() + _invitations()
