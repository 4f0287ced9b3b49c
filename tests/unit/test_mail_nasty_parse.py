"""Nasty real-world mail through the parser the sync uses (hub.mail.parse.parse_message): each case
once lost, garbled or merged something a user would miss. Raw bytes, as a server hands them over."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from hub.mail.dates import parse_date
from hub.mail.identity import content_key
from hub.mail.mime import fast_message
from hub.mail.parse import ParsedMessage, message_id_from_header, parse_message
from hub.mail.text import decode_text

HEAD = (
    b"From: Anna Bakker <anna@bakker.example>\r\nTo: staff@hub.example\r\nSubject: Offerte\r\n"
    b"Date: Tue, 03 Nov 2026 09:30:00 +0100\r\nMessage-ID: <nasty@bakker.example>\r\nMIME-Version: 1.0\r\n"
)


def multipart(*parts: bytes, boundary: bytes = b"b") -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="'
        + boundary
        + b'"\r\n\r\n'
        + body
        + b"--"
        + boundary
        + b"--\r\n"
    )


def files(parsed: ParsedMessage) -> list[tuple[str, str, bytes]]:
    return [(a.filename, a.content_type, a.data) for a in parsed.attachments]


def test_a_charset_label_python_cannot_look_up_does_not_lose_the_body() -> None:
    # A NUL in the label made the codec lookup raise ValueError; "undefined" is a Python codec that
    # fails on every byte: both lost the whole body ("body unreadable").
    for label in (b"us-ascii\x00", b"utf-8\x00junk", b"undefined", b"unicode_escape", b"base64", b"idna"):
        parsed = parse_message(HEAD + b"Content-Type: text/plain; charset=" + label + b"\r\n\r\nCaf\xc3\xa9 open\r\n")
        assert parsed.text_body.startswith("Café open"), label
        assert not any("unreadable" in p for p in parsed.problems), label
    # and in an RFC 2231 file name's charset
    parsed = parse_message(
        multipart(
            b"Content-Type: text/plain\r\n\r\nZie bijlage",
            b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*=utf\x00-8''offerte%C3%A9.pdf"
            b"\r\n\r\n%PDF",
        )
    )
    assert parsed.text_body == "Zie bijlage" and files(parsed) == [("offerteé.pdf", "application/pdf", b"%PDF")]


def test_charset_labels_as_mailers_spell_them() -> None:
    assert decode_text(b"Caf\x82", "cp-850") == "Café"
    assert decode_text(b"\xcf\xf0\xe8\xe2\xe5\xf2", "x-mac-cyrillic") == decode_text(
        b"\xcf\xf0\xe8\xe2\xe5\xf2", "mac-cyrillic"
    )
    assert decode_text(b"\xb1", "latin-2") == "ą"
    assert decode_text(b"\xe9", '"windows-1252 "') == "é"
    assert decode_text("\u00e9".encode(), "utf8mb4") == "é"
    problems: list[str] = []
    assert decode_text(b"caf\xc3\xa9", "x-klingon", problems) == "café" and problems == [
        "unknown charset 'x-klingon', read as UTF-8"
    ]


def test_a_transfer_encoding_written_loosely_is_still_decoded() -> None:
    # email decodes only the bare name: a trailing blank or quotes showed the base64 letters.
    for encoding in (b"base64 ", b"BASE64\t", b'"base64"', b"base64; x=y", b" Base64"):
        parsed = parse_message(
            HEAD
            + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
            + encoding
            + b"\r\n\r\nQ2Fmw6k\r\n"
        )
        assert parsed.text_body == "Café", encoding
    parsed = parse_message(
        multipart(
            b"Content-Type: text/plain\r\n\r\nZie bijlage",
            b'Content-Type: application/pdf; name="a.pdf"\r\n'
            b"Content-Transfer-Encoding: quoted-printable \r\n\r\n%PDF=3D1",
        )
    )
    assert files(parsed) == [("a.pdf", "application/pdf", b"%PDF=1")]


def test_html_without_a_declared_charset_is_read_in_the_charset_its_meta_names() -> None:
    body = (
        "<html><head><meta http-equiv=Content-Type content='text/html; charset=windows-1251'></head><body>Привет</body>"
    )
    parsed = parse_message(HEAD + b"Content-Type: text/html\r\n\r\n" + body.encode("cp1251"))
    assert "Привет" in parsed.html_body
    html5 = '<meta charset="koi8-r"><p>Привет</p>'
    assert "Привет" in parse_message(HEAD + b"Content-Type: text/html\r\n\r\n" + html5.encode("koi8-r")).html_body
    # A charset in the Content-Type still wins, as in browsers.
    declared = (
        HEAD + b"Content-Type: text/html; charset=utf-8\r\n\r\n" + '<meta charset="koi8-r"><p>Привет</p>'.encode()
    )
    assert "Привет" in parse_message(declared).html_body


def test_parts_after_a_reused_boundary_are_not_lost() -> None:
    # The alternative reuses the outer boundary, so its "--b--" closes the outer multipart and the PDF
    # after it landed in the epilogue, which nothing read.
    raw = multipart(
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nHallo\r\n--b--",
        b'Content-Type: application/pdf; name="offerte.pdf"\r\n\r\n%PDF',
    )
    parsed = parse_message(raw)
    assert "Hallo" in parsed.text_body
    assert files(parsed) == [("offerte.pdf", "application/pdf", b"%PDF")]
    assert any("closing boundary" in p for p in parsed.problems)
    # The fast path leaves such mail to the standard parser rather than drop the epilogue's parts.
    late = (
        multipart(b"Content-Type: text/plain\r\n\r\nHallo")
        + b"--b\r\nContent-Type: image/png; name=x.png\r\n\r\nPNG\r\n--b--\r\n"
    )
    assert fast_message(late) is None
    assert files(parse_message(late)) == [("x.png", "image/png", b"PNG")]
    # An epilogue of plain words stays unread, as in every mail client.
    plain = multipart(b"Content-Type: text/plain\r\n\r\nHallo") + b"This is the end.\r\n"
    assert fast_message(plain) is not None and parse_message(plain).problems == []


def test_uuencoded_files_in_a_text_body_become_attachments() -> None:
    raw = HEAD + (
        b"Content-Type: text/plain\r\n\r\nZie bijlage.\r\n\r\nbegin 644 notities.txt\r\n"
        b"#:&DA\r\n`\r\nend\r\n\r\nbegin 600 foto.png\r\n$B5!.1P``\r\n`\r\nend\r\nGroet, Anna\r\n"
    )
    parsed = parse_message(raw)
    assert files(parsed) == [("notities.txt", "text/plain", b"hi!"), ("foto.png", "image/png", b"\x89PNG")]
    assert "begin 644" not in parsed.text_body
    assert "Zie bijlage." in parsed.text_body and "Groet, Anna" in parsed.text_body
    # Words that only look like the start of one are left alone.
    prose = HEAD + b"Content-Type: text/plain\r\n\r\nWe begin 644 days\r\nbegin 644 here is no file\r\nat the end\r\n"
    assert parse_message(prose).attachments == []


def test_header_lines_the_parser_stopped_at_no_longer_take_the_other_headers_along() -> None:
    # "Subject : x" (obsolete but legal syntax) ended the header block: Date, Message-ID and
    # Content-Type went into the body, the HTML showed as text.
    spaced = HEAD.replace(b"Subject: Offerte", b"Subject : Offerte") + b"Content-Type: text/html\r\n\r\n<p>Hallo</p>"
    parsed = parse_message(spaced)
    assert parsed.subject == "Offerte" and parsed.message_id == "<nasty@bakker.example>"
    assert parsed.sent_at is not None and parsed.html_body == "<p>Hallo</p>" and parsed.text_body == ""
    # A long value broken onto a line of its own without the folding blank.
    broken = (
        HEAD.replace(b"Subject: Offerte", b"Subject: Offerte voor\r\nhet dak")
        + b"Content-Type: text/html\r\n\r\n<p>Hallo</p>"
    )
    parsed = parse_message(broken)
    assert parsed.subject == "Offerte voor het dak" and parsed.html_body == "<p>Hallo</p>"
    assert parsed.message_id == "<nasty@bakker.example>"
    # Without a blank line the body may follow the headers directly: such lines stay body.
    direct = b"Subject: x\r\nHallo daar\r\nFrom: Anna\r\n"
    assert parse_message(direct).text_body == "Hallo daar\r\nFrom: Anna\r\n"


def test_messages_with_old_mac_line_ends_are_not_one_email() -> None:
    # CR-only mail was one header line to the key: every such message had the same key, so the second
    # was taken for a copy of the first and never shown.
    first = b"Received: from a\rFrom: anna@x.example\rSubject: een\r\rEerste bericht\r"
    second = b"Received: from b\rFrom: kees@x.example\rSubject: twee\r\rTweede bericht\r"
    assert content_key(first) != content_key(second)
    # Still one e-mail when only transport headers differ, and the same as its CRLF copy.
    assert content_key(first) == content_key(first.replace(b"from a", b"from z"))
    assert content_key(first) == content_key(first.replace(b"\r", b"\r\n"))
    parsed = parse_message(first)
    assert parsed.subject == "een" and parsed.text_body.strip() == "Eerste bericht"
    # A header behind a bare CR is a header to the parser, so it is one to the key too.
    real = b"From: anna@x.example\r\nSubject: Offerte\r\n\r\nZie bijlage\r\n"
    hidden = b"X-Junk: a\rSubject: Nep\r\n" + real
    assert parse_message(hidden).subject == "Nep" and content_key(hidden) != content_key(real)


def _report(status_part: bytes) -> bytes:
    return (
        b"From: MAILER-DAEMON@mx.example\r\nTo: staff@hub.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"Date: Tue, 03 Nov 2026 09:30:00 +0100\r\nMessage-ID: <dsn@mx.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        b"--r\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n--r\r\n" + status_part + b"\r\n--r\r\n"
        b"Content-Type: text/rfc822-headers\r\n\r\nMessage-ID: <offerte-7@hub.example>\r\nTo: kees@gone.example\r\n"
        b"\r\n--r--\r\n"
    )


def test_a_base64_encoded_delivery_status_is_still_a_bounce() -> None:
    fields = (
        b"Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; kees@gone.example\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
    )
    encoded = base64.encodebytes(fields)
    parsed = parse_message(
        _report(b"Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n" + encoded)
    )
    assert parsed.kind == "bounce"
    assert parsed.details["recipient"] == "kees@gone.example" and parsed.details["status"] == "5.1.1"
    assert parsed.details["original_message_id"] == "<offerte-7@hub.example>"
    status = next(a for a in parsed.attachments if a.content_type == "message/delivery-status")
    assert b"Final-Recipient: rfc822; kees@gone.example" in status.data  # the fields, not base64 letters


def _invite(calendar: bytes) -> bytes:
    return multipart(
        b"Content-Type: text/plain\r\n\r\nUitnodiging",
        b"Content-Type: text/calendar; method=REQUEST\r\n\r\n" + calendar,
    )


def test_one_bad_field_or_a_second_calendar_does_not_cost_the_invitation() -> None:
    event = (
        b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:dak-1\r\nSEQUENCE:twee\r\n"
        b"DTSTART:20261110T130000Z\r\nSUMMARY:Dakinspectie\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    for calendar in (event, event + event.replace(b"dak-1", b"dak-2")):
        parsed = parse_message(_invite(calendar))
        assert parsed.kind == "invitation", parsed.problems
        assert parsed.details["uid"] == "dak-1" and parsed.details["sequence"] == 0
        assert parsed.details["start"] == "2026-11-10T13:00:00Z"


def test_inline_images_keep_the_content_id_their_html_names_them_by() -> None:
    raw = multipart(
        b'Content-Type: text/html; charset=utf-8\r\n\r\n<p>Logo</p><img src="cid:logo@mail.example">',
        b"Content-Type: image/png\r\nContent-ID:  <logo@mail.example >\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"iVBORw0KGgo=",
        b'Content-Type: application/pdf; name="offerte.pdf"\r\n\r\n%PDF',
    )
    parsed = parse_message(raw)
    assert [(a.filename, a.content_id) for a in parsed.attachments] == [
        ("part-2.png", "logo@mail.example"),
        ("offerte.pdf", ""),
    ]


def _from(value: bytes) -> ParsedMessage:
    return parse_message(
        b"From: " + value + b"\r\nTo: staff@hub.example, =?utf-8?Q?Kees_=3Ckees=40x=2Eexample=3E?= "
        b"<mallory@evil.example>\r\nSubject: Factuur\r\n\r\nBetaal vandaag.\r\n"
    )


def test_an_encoded_display_name_cannot_pose_as_another_sender() -> None:
    # Decoded before the list was split, "Boss <boss@company.example>" inside an encoded-word became
    # the sender's address: hub showed (and filed) the attacker's mail as the boss's.
    boss = base64.b64encode(b"Boss <boss@company.example>")
    parsed = _from(b"=?utf-8?B?" + boss + b"?= <attacker@evil.example>")
    assert parsed.from_address == "attacker@evil.example" and parsed.from_name == "Boss <boss@company.example>"
    assert [p[:2] for p in parsed.participants] == [
        ("from", "attacker@evil.example"),
        ("to", "staff@hub.example"),
        ("to", "mallory@evil.example"),
    ]
    # A whole mailbox list in one encoded-word names nobody.
    listed = _from(b"=?utf-8?B?" + base64.b64encode(b'"Boss" <boss@company.example>, x@y.example') + b"?=")
    assert listed.from_address == "" and all(p[0] != "from" for p in listed.participants)
    # What mailers really send still reads as before, and a comma in an encoded name stays in the name.
    assert _from(b"=?utf-8?Q?Bakker=2C_Anna?= <anna@x.example>").from_name == "Bakker, Anna"
    assert _from(b'"=?utf-8?Q?Zo=C3=AB?=" <=?utf-8?Q?zoe@x.example?=>').from_address == "zoe@x.example"
    assert _from("Jürgen <jürgen@bücher.example>".encode()).from_name == "Jürgen"


def test_a_multipart_without_parts_shows_the_text_it_has() -> None:
    raw = HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\nDe offerte volgt morgen.\r\n--b--\r\n'
    parsed = parse_message(raw)
    assert parsed.text_body.strip() == "De offerte volgt morgen."
    assert "multipart without parts: shown as text" in parsed.problems


def test_a_quoted_or_spaced_content_type_is_still_its_type() -> None:
    # email reads '"text/plain"' as an unknown type: the body was only a nameless attachment.
    quoted = parse_message(HEAD + b'Content-Type: "text/plain"; charset=utf-8\r\n\r\nCaf\xc3\xa9')
    assert quoted.text_body == "Café" and quoted.attachments == []
    spaced = parse_message(HEAD + b"Content-Type: text / html; charset=utf-8\r\n\r\n<b>Caf\xc3\xa9</b>")
    assert spaced.html_body == "<b>Café</b>" and spaced.attachments == []
    pdf = multipart(b"Content-Type: text/plain\r\n\r\nZie bijlage", b"Content-Type: 'application/pdf'\r\n\r\n%PDF")
    assert files(parse_message(pdf)) == [("part-2.pdf", "application/pdf", b"%PDF")]


def test_text_labelled_latin1_that_is_utf8_is_read_as_utf8() -> None:
    parsed = parse_message(HEAD + b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nCaf\xc3\xa9 \xe2\x82\xac 5\r\n")
    assert parsed.text_body == "Café € 5\r\n"
    assert "text labelled iso-8859-1 is UTF-8, read as UTF-8" in parsed.problems
    # Real Windows-1252 stays Windows-1252.
    assert decode_text(b"Caf\xe9 \x80 5", "iso-8859-1") == "Café € 5"
    assert decode_text(b"=?iso-8859-1?q?", "iso-8859-1") == "=?iso-8859-1?q?"


def test_a_message_id_folded_inside_its_brackets_still_threads() -> None:
    # Unfolding "<1234.abc\r\n @mail.example>" leaves a blank inside the brackets: the id was not
    # read at all, so the message had no Message-ID and replies to it no thread.
    parsed = parse_message(
        b"Message-ID: <1234.abc\r\n @mail.example>\r\nIn-Reply-To: < root.1@mail.example >\r\n"
        b"References: <root.1@mail.example> <mid.2\r\n\t@mail.example>\r\n\r\nHallo\r\n"
    )
    assert parsed.message_id == "<1234.abc@mail.example>"
    assert parsed.in_reply_to == "<root.1@mail.example>"
    assert parsed.references == ["<root.1@mail.example>", "<mid.2@mail.example>"]
    assert message_id_from_header(b"Message-ID: <1234.abc\r\n @mail.example>\r\n") == "<1234.abc@mail.example>"
    assert parse_message(b"Message-ID: <no id here>\r\n\r\nx").message_id == ""


def test_dates_with_a_named_offset_or_dutch_and_german_names() -> None:
    # dateutil reads "GMT+0100" POSIX-style (sign turned round): mail from Java, Lotus Notes and
    # JavaScript was dated two hours off. Dutch and German names made the date unreadable.
    expected = datetime(2026, 11, 3, 8, 30, tzinfo=UTC)
    for text in (
        "Tue, 03 Nov 2026 09:30:00 GMT+0100",
        "Tue, 03 Nov 2026 09:30:00 UTC+1",
        "Tue Nov 03 2026 09:30:00 GMT+0100 (Midden-Europese standaardtijd)",
        "Tue, 03 Nov 2026 03:30:00 GMT-05:00",
        "Di, 03 Nov 2026 09:30:00 +0100",
        "di 3 nov 2026 09:30 +0100",
    ):
        assert parse_date(text) == expected, text
    assert parse_date("Do, 5 Mrt 2026 10:00 +0100") == datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    assert parse_date("Sa, 3 Okt 2026 10:00:00 +0200") == datetime(2026, 10, 3, 8, 0, tzinfo=UTC)
    assert parse_date("Mo, 1 Dez 2026 10:00:00 +0100") == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    parsed = parse_message(HEAD.replace(b"Tue, 03 Nov 2026 09:30:00 +0100", b"wo 13 mei 2026 14:00 +0200") + b"\r\nx")
    assert parsed.sent_at == datetime(2026, 5, 13, 12, 0, tzinfo=UTC) and parsed.problems == []


def test_a_byte_order_mark_is_no_text_and_says_utf8() -> None:
    bom = b"\xef\xbb\xbf"
    parsed = parse_message(HEAD + b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n" + bom + b"Caf\xc3\xa9\r\n")
    assert parsed.text_body == "Café\r\n"
    calendar = bom + (
        b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:bom-1\r\nDTSTART:20261110T130000Z\r\n"
        b"SUMMARY:Overleg\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    invite = parse_message(_invite(calendar))
    assert invite.kind == "invitation" and invite.details["uid"] == "bom-1"


def test_raw_8bit_in_an_rfc2231_name_or_a_broken_multipart_type_does_not_lose_the_body() -> None:
    # Both raised UnicodeEncodeError while reading the parts: text and every attachment were lost.
    raw_name = multipart(
        b"Content-Type: text/plain\r\n\r\nZie bijlage",
        "Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*=utf-8''Überweisung €.pdf"
        "\r\n\r\n%PDF".encode(),
    )
    parsed = parse_message(raw_name)
    assert parsed.text_body == "Zie bijlage" and files(parsed) == [("Überweisung €.pdf", "application/pdf", b"%PDF")]
    eight_bit_type = HEAD + (
        b'Content-Type: multipart/mix\x80d; boundary="wrong"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nZie bijlage\r\n"
        b'--b\r\nContent-Type: application/pdf; name="offerte.pdf"\r\n\r\n%PDF\r\n--b--\r\n'
    )
    parsed = parse_message(eight_bit_type)
    assert parsed.text_body.strip() == "Zie bijlage" and files(parsed) == [("offerte.pdf", "application/pdf", b"%PDF")]
    assert not any("unreadable" in p for p in parsed.problems)


def test_text_full_of_uuencode_look_alikes_is_read_in_one_pass_and_kept() -> None:
    # Every "begin" line used to start a search to the end of the text (and a decoding of all of it):
    # a message of such lines took minutes. Now it is one pass, and the text is kept as it was.
    lines = b"begin 644 x.bin\r\nniet uuencoded\r\n" * 5000
    parsed = parse_message(HEAD + b"Content-Type: text/plain\r\n\r\n" + lines + b"end\r\nGroet\r\n")
    assert parsed.attachments == [] and parsed.text_body.count("begin 644 x.bin") == 5000
    assert parsed.text_body.endswith("end\r\nGroet\r\n")
    no_end = parse_message(HEAD + b"Content-Type: text/plain\r\n\r\n" + b"begin 644 x.bin\r\n" * 5000)
    assert no_end.attachments == [] and no_end.text_body.count("begin") == 5000


def test_direction_controls_cannot_make_a_name_or_subject_read_as_something_else() -> None:
    # "\u202e" reverses what follows: the name would show as "service@bank.example" beside the real address.
    raw = (
        'From: "\u202eelpmaxe.knab@ecivres" <oplichter@evil.example>\r\nTo: staff@hub.example\r\n'
        "Subject: Factuur \u2067fdp.exe\u2069\r\n\r\nBetaal.\r\n"
    ).encode()
    parsed = parse_message(raw)
    assert parsed.from_name == "elpmaxe.knab@ecivres" and parsed.from_address == "oplichter@evil.example"
    assert parsed.subject == "Factuur fdp.exe" and parsed.participants[0][2] == "elpmaxe.knab@ecivres"
    assert "text direction controls were removed from the subject and names" in parsed.problems
    # Hebrew and Arabic need no controls and are kept as written.
    hebrew = parse_message("From: שרה כהן <sara@x.example>\r\nSubject: שלום עולם\r\n\r\nx".encode())
    assert (hebrew.from_name, hebrew.subject) == ("שרה כהן", "שלום עולם") and not any(
        "direction" in p for p in hebrew.problems
    )


def test_a_person_writing_about_absence_is_no_auto_reply() -> None:
    # Taken for auto-replies (nobody's correspondence, no contact moment), these were filed away.
    def kind(subject: str) -> str:
        return parse_message(f"From: jan@klant.example\r\nSubject: {subject}\r\n\r\nHoi\r\n".encode()).kind

    for subject in (
        "Afwezig op vrijdag",
        "Afwezigheid Jan",
        "Absence of the signed contract",
        "Out of office party on Friday!",
        "Auto-reply not working in Outlook",
    ):
        assert kind(subject) == "", subject
    for subject in (
        "Afwezig: offerte dakwerk",
        "Automatisch antwoord: offerte",
        "Out of Office - back Monday",
        "Abwesenheitsnotiz: Angebot",
        "Réponse automatique : devis",
        "Automatic reply",
    ):
        assert kind(subject) == "auto_reply", subject


def test_windows_1252_text_joined_to_utf8_text_reads_as_both() -> None:
    # A list server's Latin-1 footer under a UTF-8 message used to come out as U+FFFD.
    body = "Beste Zoë,\r\n\r\nTot ziens.\r\n".encode() + "-- \r\nLijst Café-été, afmelden: €0\r\n".encode("cp1252")
    parsed = parse_message(HEAD + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body)
    assert parsed.text_body == "Beste Zoë,\r\n\r\nTot ziens.\r\n-- \r\nLijst Café-été, afmelden: €0\r\n"
    assert "text mixes UTF-8 with other bytes, read as Windows-1252" in parsed.problems
    assert decode_text(b"Caf\xc3\xa9 \xe9t\xe9", "x-unknown") == "Café été"
