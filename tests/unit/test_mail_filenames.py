"""Attachment file names are safe to show and to save, and never empty."""

from __future__ import annotations

import pytest

from hub.mail.filenames import fallback_name, safe_filename
from hub.mail.parse import parse_message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("offerte.pdf", "offerte.pdf"),
        ("../../etc/passwd", "passwd"),
        ("/etc/passwd", "passwd"),
        ("C:\\Users\\anna\\offerte.docx", "offerte.docx"),
        ("..\\..\\windows\\system32\\x.dll", "x.dll"),
        ("factuur\u202efdp.exe", "factuurfdp.exe"),  # a right-to-left override
        ("fact\u200buur\u2066.pdf\u2069", "factuur.pdf"),  # zero-width space, bidi isolates
        ("rap\x07port\x00.pdf", "rapport.pdf"),
        ("twee\twoorden.pdf", "twee woorden.pdf"),
        ('a<b>c:d"e|f?g*.pdf', "a_b_c_d_e_f_g_.pdf"),
        ("  naam.pdf  ", "naam.pdf"),
        ("naam.pdf.", "naam.pdf"),
        ("Cafe\u0301.pdf", "Café.pdf"),  # NFC
        ("bad\udcffname.pdf", "bad_name.pdf"),  # a lone surrogate: no valid UTF-8
    ],
)
def test_names_are_reduced_to_a_safe_base_name(name: str, expected: str) -> None:
    assert safe_filename(name, "application/pdf", 2) == expected


@pytest.mark.parametrize("name", [None, "", " ", ".", "..", "...", "../..", "\u202e", "dir/"])
def test_a_name_with_nothing_left_falls_back_to_one_from_the_type(name: str | None) -> None:
    assert safe_filename(name, "application/pdf", 3) == "part-3.pdf"


def test_fallback_names_take_their_extension_from_the_type() -> None:
    assert fallback_name("image/png", 2) == "part-2.png"
    assert fallback_name("application/octet-stream", 4) == "part-4.bin"
    assert fallback_name("application/x-never-heard-of", 5) == "part-5.bin"
    assert fallback_name("text/calendar", 1) == "part-1.ics"
    assert fallback_name("message/rfc822", 1) == "part-1.eml"
    assert fallback_name("image/jpeg", 1) == "part-1.jpg"


def test_long_names_are_cut_to_255_bytes_keeping_the_extension() -> None:
    name = safe_filename("é" * 300 + ".pdf", "application/pdf", 1)
    assert name.endswith(".pdf") and len(name.encode("utf-8")) <= 255 and name.startswith("éé")
    name.encode("utf-8")  # not cut inside a character
    no_extension = safe_filename("x" * 400, "application/pdf", 1)
    assert no_extension == "x" * 255
    odd_extension = safe_filename("y" * 300 + "." + "z" * 40, "application/pdf", 1)
    assert len(odd_extension.encode()) == 255


def _with_disposition(disposition: bytes) -> bytes:
    return (
        b"From: a@x.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
        b"zie bijlage\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: "
        + disposition
        + b"\r\n\r\n%PDF\r\n--b--\r\n"
    )


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        (b"attachment; filename*=utf-8''caf%C3%A9%20%E2%82%AC.pdf", "café €.pdf"),
        (b"attachment; filename*0*=utf-8''Offerte%20; filename*1*=dak.pdf", "Offerte dak.pdf"),
        (b'attachment; filename*0="lange "; filename*1="naam.pdf"', "lange naam.pdf"),
        (b"attachment; filename*=iso-8859-1''%80%20%93x%94.pdf", "€ “x”.pdf"),
        (b'attachment; filename="\xc3\x9cberweisung.pdf"', "Überweisung.pdf"),  # raw UTF-8
        (b'attachment; filename="caf\xe9.pdf"', "café.pdf"),  # raw Windows-1252
        (b'attachment; filename="=?utf-8?q?caf=C3=A9.pdf?="', "café.pdf"),  # Outlook's encoded-word
        (b'attachment; filename="../../x.pdf"', "x.pdf"),
        (b'attachment; filename=""', "part-2.pdf"),
        (b"attachment", "part-2.pdf"),
    ],
)
def test_declared_names_are_decoded_then_made_safe(disposition: bytes, expected: str) -> None:
    parsed = parse_message(_with_disposition(disposition))
    assert [(a.filename, a.data) for a in parsed.attachments] == [(expected, b"%PDF")]
