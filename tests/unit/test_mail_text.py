"""Text decoded as people wrote it: the charsets mailers mislabel read as browsers read them,
encoded-words decoded as far as they go, a server's NUL stand-in not shown as €, format=flowed
un-flowed, Message-IDs without angle brackets kept."""

from __future__ import annotations

import pytest

from hub.mail.ids import message_ids
from hub.mail.parse import message_id_from_header, parse_message
from hub.mail.text import decode_header_text, decode_text, unflow


@pytest.mark.parametrize("label", ["iso-8859-1", "ISO-8859-1", '"latin1"', "us-ascii", "windows-1252", None])
def test_windows_1252_bytes_are_read_as_windows_1252(label: str | None) -> None:
    assert decode_text(b"\x80 5, \x93ja\x94 \x96 caf\xe9", label) == "€ 5, “ja” \u2013 café"


def test_bytes_windows_1252_leaves_undefined_are_their_c1_code_points() -> None:
    assert decode_text(b"a\x81b\x9dc", "iso-8859-1") == "a\x81b\x9dc"


def test_utf8_is_preferred_for_undeclared_and_ascii_labelled_text() -> None:
    assert decode_text("café €".encode(), None) == "café €"
    assert decode_text("café €".encode(), "us-ascii") == "café €"


def test_a_lone_0x80_in_utf8_is_a_removed_nul_not_a_euro_sign() -> None:
    problems: list[str] = []
    assert decode_text(b"Veld A\x80Veld B caf\xc3\xa9", "utf-8", problems) == "Veld AVeld B café"
    assert decode_text(b"A\x80B", None) == "AB"
    assert decode_text(b"A\x80B", "us-ascii") == "AB"
    assert any("stand-in" in p for p in problems)
    assert decode_text(b"A\xc2\x80B", "utf-8") == "A\x80B"  # a real U+0080 stays
    assert decode_text(b"\x80 100 caf\xe9", None) == "€ 100 café"  # Windows-1252 text (more than 0x80 is off)
    assert decode_text(b"\x80 100", "iso-8859-1") == "€ 100"  # declared latin-1: the € it holds


def test_declared_charsets_and_aliases() -> None:
    assert decode_text("Привет".encode("koi8-r"), "koi8-r") == "Привет"
    assert decode_text("こんにちは".encode("iso-2022-jp"), "ISO-2022-JP") == "こんにちは"  # 7-bit, not ASCII
    assert decode_text("中文".encode("gb18030"), "gb2312") == "中文"
    assert decode_text(b"+AOk-t+AOk-", "utf-7") == "été"
    problems: list[str] = []
    assert decode_text(b"h\xe9llo", "klingon", problems) == "héllo"
    assert problems == ["unknown charset 'klingon', read as UTF-8"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("=?utf-8?q?Caf=C3=A9?= =?utf-8?q?_om_tien?=", "Café om tien"),
        ("=?UTF-8?B?T2ZmZXJ0ZQ?=", "Offerte"),  # no padding
        ("=?UTF-8?B?T2ZmZXJ0ZQ=?=", "Offerte"),  # wrong padding
        ("=?UTF-8?B?T2Zm!ZXJ0ZQ==?=", "Offerte"),  # a stray character
        ("=?UTF-8?B?T2ZmZXJ0Z?=", "Offert"),  # cut: decoded as far as it goes
        ("=?UTF-8?B?w6k?=", "é"),
        ("=?UTF-8?Q?caf=C3?= =?UTF-8?Q?=A9?=", "café"),  # a character split over two words
        ("=?utf-8?b?8J+Y?=\r\n =?utf-8?b?gA==?=", "😀"),
        ("=?iso-8859-1?q?=80_5?=", "€ 5"),  # latin-1 label, Windows-1252 bytes
        ("=?us-ascii?q?=93x=94?=", "“x”"),
        ("=?utf-8*en?q?hi?=", "hi"),  # RFC 2231 language
        ("=?iso-8859-1?q?caf=E9?= =?utf-8?q?_=E2=82=AC?=", "café €"),
        ("Re: =?utf-8?q?Caf=C3=A9?= (2)", "Re: Café (2)"),
        ("caf\udce9 \udc93x\udc94", "café “x”"),  # raw 8-bit bytes as the email package keeps them
        ("\udcc3\udca9t\udcc3\udca9", "été"),
        ("=?klingon?q?abc?=", "abc"),
        ("=?utf-8?x?abc?=", "=?utf-8?x?abc?="),  # not an encoded-word
    ],
)
def test_header_text_is_decoded_as_far_as_it_goes(header: str, expected: str) -> None:
    assert decode_header_text(header) == expected


def test_headers_of_a_message_are_decoded_the_same_way() -> None:
    parsed = parse_message(
        b"From: =?iso-8859-1?q?Ren=E9?= <rene@x.example>\r\nSubject: =?UTF-8?B?T2ZmZXJ0ZSBkYWs?=\r\n"
        b"To: J\xc3\xbcrgen <j@x.example>\r\n\r\nbody\r\n"
    )
    assert parsed.subject == "Offerte dak" and parsed.from_name == "René"
    assert ("to", "j@x.example", "Jürgen") in parsed.participants


def test_format_flowed_is_unflowed() -> None:
    flowed = "Een lange \r\nzin.\r\n> Geciteerd \r\n> stuk.\r\n>> Dieper\r\n From stuffed\r\n-- \r\nAnna\r\n"
    assert unflow(flowed, delsp=False) == "Een lange zin.\n> Geciteerd stuk.\n>> Dieper\nFrom stuffed\n-- \nAnna\n"
    assert unflow("hotten \r\ntotten\r\n", delsp=True) == "hottentotten\n"
    assert unflow("laatste regel zacht ", delsp=False) == "laatste regel zacht "


def test_flowed_parts_of_a_message_are_unflowed_and_others_are_not() -> None:
    head = b"From: a@x.example\r\nContent-Type: text/plain; charset=utf-8; "
    flowed = parse_message(head + b"format=flowed\r\n\r\nEen lange \r\nzin.\r\n")
    fixed = parse_message(head + b"format=fixed\r\n\r\nEen lange \r\nzin.\r\n")
    assert flowed.text_body == "Een lange zin.\n" and fixed.text_body == "Een lange \r\nzin.\r\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<a@b.example>", ["<a@b.example>"]),
        ("a@b.example", ["<a@b.example>"]),
        ("1234.abc@mail.example (comment)", ["<1234.abc@mail.example>"]),
        ("root@x.example mid@x.example", ["<root@x.example>", "<mid@x.example>"]),
        ("<id@x.example> (Anna <anna@x.example>'s message)", ["<id@x.example>", "<anna@x.example>"]),
        ("no id here", []),
        ("", []),
    ],
)
def test_message_ids_without_angle_brackets_are_kept(text: str, expected: list[str]) -> None:
    assert message_ids(text) == expected


def test_a_bare_message_id_threads_as_the_same_id() -> None:
    parsed = parse_message(
        b"Message-ID: abc.1@x.example\r\nIn-Reply-To: root.1@x.example\r\nReferences: root.1@x.example\r\n\r\nx"
    )
    assert (parsed.message_id, parsed.in_reply_to, parsed.references) == (
        "<abc.1@x.example>",
        "<root.1@x.example>",
        ["<root.1@x.example>"],
    )
    assert message_id_from_header(b"Message-ID: abc.1@x.example\r\n\r\n") == "<abc.1@x.example>"
    assert message_id_from_header(b"Message-Id: <abc.1@x.example>\r\n") == "<abc.1@x.example>"
