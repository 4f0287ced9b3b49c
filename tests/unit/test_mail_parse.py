"""Parsing mail: the fast paths (multipart splitting, header blocks, address lists) give exactly
what the standard library gives, unusual mail goes the standard way, and bad mail is read as well as
it can be."""

from __future__ import annotations

import random
from email.message import EmailMessage
from email.utils import getaddresses

import pytest

import hub.mail.parse as parse_module
from hub.mail.mime import fast_message
from hub.mail.parse import addresses, parse_message


def _rich() -> bytes:
    msg = EmailMessage()
    msg["From"] = "=?utf-8?q?Zo=C3=AB_Bakker?= <Zoe@Bakker.example>"
    msg["To"] = 'a@x.example, "B, C" <c@x.example>'
    msg["Cc"] = "d@x.example"
    msg["Subject"] = "Offerte \u2013 café ☕"
    msg["Message-ID"] = "<rich@test>"
    msg["References"] = "<root@test> <mid@test>"
    msg["In-Reply-To"] = "<mid@test>"
    msg["Date"] = "Tue, 03 Nov 2026 09:30:00 +0100"
    msg.set_content("Beste Zoë,\n\nZie bijlage.\n")
    msg.add_alternative("<p>Beste <b>Zoë</b></p>", subtype="html")
    msg.add_attachment(bytes(range(256)) * 50, maintype="application", subtype="pdf", filename="offerte.pdf")
    return msg.as_bytes()


def _standard(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    with monkeypatch.context() as patch:
        patch.setattr(parse_module, "fast_message", lambda _raw: None)
        return _summary(parse_message(raw))


def _summary(parsed: parse_module.ParsedMessage) -> dict[str, object]:
    data = dict(vars(parsed))
    data["attachments"] = [(a.filename, a.content_type, a.data) for a in parsed.attachments]
    return data


def test_fast_path_equals_the_standard_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _rich()
    assert fast_message(raw) is not None  # the fast path is really taken
    fast = _summary(parse_message(raw))
    assert fast == _standard(raw, monkeypatch)
    assert fast["subject"] == "Offerte \u2013 café ☕" and fast["from_name"] == "Zoë Bakker"
    assert fast["from_address"] == "zoe@bakker.example"
    assert parse_message(raw).thread_key == "<root@test>"
    assert fast["text_body"] == "Beste Zoë,\n\nZie bijlage.\n" and "<b>Zoë</b>" in str(fast["html_body"])
    assert fast["attachments"] == [("offerte.pdf", "application/pdf", bytes(range(256)) * 50)]
    assert [p[:2] for p in fast["participants"]] == [  # type: ignore[attr-defined]
        ("from", "zoe@bakker.example"),
        ("to", "a@x.example"),
        ("to", "c@x.example"),
        ("cc", "d@x.example"),
    ]


def test_a_multipart_without_its_closing_boundary_goes_the_standard_way(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _rich()
    cut = raw[: raw.rfind(b"--")]  # drop the closing delimiter
    assert fast_message(cut) is None
    assert parse_message(cut).text_body == _standard(cut, monkeypatch)["text_body"]


def test_bad_mail_is_read_as_well_as_can_be() -> None:
    parsed = parse_message(b"Subject: caf\xe9\r\nFrom: \r\nContent-Type: text/plain; charset=klingon\r\n\r\nh\xe9llo")
    assert parsed.subject == "café" and parsed.text_body == "héllo"
    assert parsed.message_key.startswith("c:") and parsed.from_address == ""
    assert {"no Date", "no Message-ID"} <= set(parsed.problems)
    empty = parse_message(b"")
    assert empty.message_key.startswith("c:") and empty.size == 0


def test_text_no_database_stores_is_replaced_and_odd_message_ids_are_not_used() -> None:
    parsed = parse_message(
        b"From: Anna <anna@x.example>\r\nSubject: nul\x00here\r\nMessage-ID: <nul\x00@x>\r\n"
        b"Content-Type: text/plain; charset=utf-7\r\n\r\nbroken +2D0- text\x00\r\n"
    )
    assert parsed.subject == "nul\ufffdhere" and parsed.text_body == "broken \ufffd text\ufffd\r\n"
    assert "characters no database can store were replaced" in parsed.problems
    assert parsed.message_id == ""  # a Message-ID with a NUL in it identifies nothing
    long_id = b"<" + b"x" * 600 + b"@x>"
    too_long = parse_message(b"Message-ID: " + long_id + b"\r\nReferences: " + long_id + b" <root@x>\r\n\r\n")
    assert too_long.message_id == "" and too_long.references == ["<root@x>"]
    assert parse_message(b"Message-ID: <" + b"y" * 496 + b"@x>\r\n\r\n").message_id == "<" + "y" * 496 + "@x>"


def _single_part(headers: str, body: str = "Hallo Anna,\r\n\r\nTot morgen.\r\n") -> bytes:
    return (headers + "\r\n" + body).encode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    "raw",
    [
        _single_part(
            "From: Anna Bakker <anna@bakker.example>\r\nTo: kees@visser.example,\r\n Piet <piet@x.example>\r\n"
            "Subject: =?utf-8?q?Caf=C3=A9?= afspraak\r\nMessage-ID: <single@test>\r\n"
            "Date: Mon, 2 Nov 2026 10:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n"
        ),
        # Folded with a tab, bare LF line ends, no Content-Type at all.
        b"From: a@x.example\nSubject: lang\n\tonderwerp\nMessage-ID: <lf@test>\n\nregel 1\nregel 2\n",
        # 8-bit header bytes (Windows-1252), which both paths read the same way.
        b"From: Jos\xe9 <jose@x.example>\r\nSubject: caf\xe9\r\nMessage-ID: <8bit@test>\r\n\r\nh\xe9\r\n",
    ],
)
def test_single_part_mail_takes_the_fast_path_with_the_same_result(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fast_message(raw) is not None
    assert _summary(parse_message(raw)) == _standard(raw, monkeypatch)


@pytest.mark.parametrize(
    "raw",
    [
        b"From sender@x.example Mon Nov  2 10:00:00 2026\r\nFrom: a@x.example\r\n\r\nbody\r\n",  # envelope line
        b" continued: first\r\nFrom: a@x.example\r\n\r\nbody\r\n",  # continuation with nothing before it
        b"From: a@x.example\r\nnot a header line\r\n\r\nbody\r\n",
        b"From: a@x.example\r\nSubject: odd\x0cbreak\r\n\r\nbody\r\n",  # a break str.splitlines sees, email does not
        b"From: a@x.example\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@y.example\r\n\r\ninner\r\n",
        b"From: a@x.example\r\nSubject: no body separator\r\n",
    ],
)
def test_unusual_mail_goes_the_standard_way(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fast_message(raw) is None
    assert _summary(parse_message(raw)) == _standard(raw, monkeypatch)


def test_attached_message_inside_a_multipart_goes_the_standard_way(monkeypatch: pytest.MonkeyPatch) -> None:
    forwarded = EmailMessage()
    forwarded["From"], forwarded["Subject"] = "b@y.example", "Doorgestuurd"
    forwarded.set_content("Zie onder.\n")
    forwarded.add_attachment(_rich(), maintype="message", subtype="rfc822")
    raw = forwarded.as_bytes()
    assert fast_message(raw) is None
    parsed = parse_message(raw)
    assert _summary(parsed) == _standard(raw, monkeypatch)
    assert parsed.text_body == "Zie onder.\n"


ADDRESS_HEADERS = [
    "Anna Bakker <anna@bakker.example>",
    "anna@bakker.example, Kees <kees@visser.example>",
    "Jürgen Müller <j.mueller@x.example>,o'neil@y.example",
    '"Bakker, Anna" <anna@bakker.example>',  # quotes: the standard way
    "J. de Vries <jan@x.example>",  # a dot in the name: the standard way
    "undisclosed-recipients:;",
    "anna@bakker.example (Anna)",
    "<anna@bakker.example>",
    "Anna <anna@bakker.example>,",
    "Anna <anna@[192.0.2.1]>",
    "=?utf-8?q?x?= <x@y.example>",
    "",
]


@pytest.mark.parametrize("text", ADDRESS_HEADERS)
def test_address_lists_read_exactly_as_getaddresses_reads_them(text: str) -> None:
    assert addresses(text) == getaddresses([text])


def test_random_address_lists_read_exactly_as_getaddresses_reads_them() -> None:
    rng = random.Random(7)
    pieces = ["anna", "Bakker", "van", "Jürgen", "o'neil", "x@y.nl", "<a@b.nl>", "a.b@c.d", ",", "!", '"', "(", ")"]
    characters = list("abAB z.@<>,\"'()\\;:[]-_+=?ü")
    for n in range(20_000):
        if n % 2:
            text = " ".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        else:
            text = "".join(rng.choice(characters) for _ in range(rng.randint(1, 25)))
        text = " ".join(text.split())  # as parse_message hands it over
        assert addresses(text) == getaddresses([text]), text


def _mixed(*parts: bytes, subtype: bytes = b"mixed") -> bytes:
    body = b"".join(b"--b\r\n" + part + b"\r\n" for part in parts) + b"--b--\r\n"
    return b"From: a@x.example\r\nContent-Type: multipart/" + subtype + b"; boundary=b\r\n\r\n" + body


def test_text_parts_are_joined_in_order_and_plain_text_among_html_shown_in_it() -> None:
    parsed = parse_message(
        _mixed(
            b"Content-Type: text/plain\r\n\r\nEerste deel",
            b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\n%PDF",
            b"Content-Type: text/plain\r\n\r\n-- \r\nlijst-voettekst <info>",
        )
    )
    assert parsed.text_body == "Eerste deel\n-- \r\nlijst-voettekst <info>"
    html_and_text = parse_message(
        _mixed(b"Content-Type: text/html\r\n\r\n<p>Hallo</p>", b"Content-Type: text/plain\r\n\r\nvoet <tekst>")
    )
    assert html_and_text.html_body == "<p>Hallo</p><pre>voet &lt;tekst&gt;</pre>"
    assert html_and_text.text_body == "voet <tekst>"


def test_alternatives_no_client_shows_are_kept_as_attachments() -> None:
    parsed = parse_message(
        _mixed(
            b"Content-Type: text/plain\r\n\r\nplain",
            b"Content-Type: text/plain\r\n\r\nsecond plain",
            b"Content-Type: text/html\r\n\r\n<p>first html</p>",
            b"Content-Type: text/html\r\n\r\n<p>last html</p>",
            subtype=b"alternative",
        )
    )
    assert (parsed.text_body, parsed.html_body) == ("plain", "<p>last html</p>")
    assert [(a.filename, a.data) for a in parsed.attachments] == [
        ("part-2.txt", b"second plain"),
        ("part-3.html", b"<p>first html</p>"),
    ]


def test_a_message_nested_too_deep_keeps_its_headers_and_says_why() -> None:
    depth = 2000
    raw = (
        b"From: Anna <anna@x.example>\r\nSubject: Diep\r\nDate: Tue, 03 Nov 2026 09:30:00 +0100\r\n"
        + b"".join(b"Content-Type: multipart/mixed; boundary=d%d\r\n\r\n--d%d\r\n" % (i, i) for i in range(depth))
        + b"Content-Type: text/plain\r\n\r\nonderin\r\n"
        + b"".join(b"--d%d--\r\n" % i for i in reversed(range(depth)))
    )
    parsed = parse_message(raw)
    assert (parsed.subject, parsed.from_address) == ("Diep", "anna@x.example") and parsed.sent_at is not None
    assert any("structure" in p for p in parsed.problems)


def test_a_boundary_that_starts_another_boundary_is_not_mistaken_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    inner = b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n--b0\r\nContent-Type: text/plain\r\n\r\ninner\r\n--b0--"
    raw = _mixed(inner, b"Content-Type: text/plain\r\n\r\nouter").replace(b"boundary=b\r\n", b"boundary=b0x\r\n")
    raw = raw.replace(b"--b\r\n", b"--b0x\r\n").replace(b"--b--", b"--b0x--")
    raw = raw.replace(b"boundary=b0x", b"boundary=b", 1).replace(b"--b0x", b"--b")
    # The outer boundary "b" begins the inner one "b0": the fast path leaves such mail to the standard parser.
    assert fast_message(raw) is None
    assert parse_message(raw).text_body == "inner\nouter"
    assert _summary(parse_message(raw)) == _standard(raw, monkeypatch)
