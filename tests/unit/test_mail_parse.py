"""Parsing mail: the fast multipart path gives exactly what the standard parser gives, and bad mail
is read as well as it can be."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

import hub.mail.parse as parse_module
from hub.mail.mime import fast_message
from hub.mail.parse import parse_message


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
    assert parsed.message_key.startswith("sha256:") and parsed.from_address == ""
    assert {"no Date", "no Message-ID; identified by content"} <= set(parsed.problems)
    empty = parse_message(b"")
    assert empty.message_key.startswith("sha256:") and empty.size == 0


def test_text_no_database_stores_is_replaced_and_odd_message_ids_are_not_used() -> None:
    parsed = parse_message(
        b"From: Anna <anna@x.example>\r\nSubject: nul\x00here\r\nMessage-ID: <nul\x00@x>\r\n"
        b"Content-Type: text/plain; charset=utf-7\r\n\r\nbroken +2D0- text\x00\r\n"
    )
    assert parsed.subject == "nul\ufffdhere" and parsed.text_body == "broken \ufffd text\ufffd\r\n"
    assert "characters no database can store were replaced" in parsed.problems
    assert parsed.message_key.startswith("sha256:")  # a Message-ID with a NUL in it identifies nothing
    long_id = b"<" + b"x" * 600 + b"@x>"
    too_long = parse_message(b"Message-ID: " + long_id + b"\r\nReferences: " + long_id + b" <root@x>\r\n\r\n")
    assert too_long.message_key.startswith("sha256:") and too_long.references == ["<root@x>"]
    assert parse_message(b"Message-ID: <" + b"y" * 496 + b"@x>\r\n\r\n").message_key == "<" + "y" * 496 + "@x>"
