"""winmail.dat (TNEF) unpacked into the files and body inside it, through the whole parser, with real
TNEF bytes: a PDF and a .docx come out whole in its place, a body only in TNEF becomes the message's
body, and a broken, truncated or hostile winmail.dat stays the attachment it is, quickly.

The TNEF files are written here by a small writer (TNEF is a signature, a key, then attributes of a
level, an id, a length, the data and a checksum; MAPI property lists inside some of them), laid out
as Outlook writes them and as tnefparse's own test files are.
"""

from __future__ import annotations

import base64
import io
import struct
import sys
import zipfile
from dataclasses import dataclass, field

import pytest

from hub.mail import tnef
from hub.mail.parse import ParsedMessage, parse_message

# --- a TNEF writer -------------------------------------------------------------------------------

SIGNATURE = 0x223E9F78
MESSAGE, ATTACHMENT = 1, 2
# Attribute ids: the attribute's number in the low word, its type in the high word.
ATT_TNEF_VERSION = 0x00089006
ATT_OEM_CODEPAGE = 0x00069007
ATT_MESSAGE_CLASS = 0x00078008
ATT_BODY = 0x0002800C
ATT_MAPI_PROPS = 0x00069003
ATT_ATTACH_REND_DATA = 0x00069002
ATT_ATTACH_TITLE = 0x00018010
ATT_ATTACH_DATA = 0x0006800F
ATT_ATTACHMENT = 0x00069005
# MAPI property types and ids.
PT_LONG, PT_STRING8, PT_UNICODE, PT_OBJECT, PT_BINARY = 0x0003, 0x001E, 0x001F, 0x000D, 0x0102
PR_BODY, PR_BODY_HTML, PR_RTF_COMPRESSED, PR_INTERNET_CPID = 0x1000, 0x1013, 0x1009, 0x3FDE
PR_ATTACH_DATA, PR_ATTACH_LONG_FILENAME, PR_ATTACH_MIME_TAG, PR_ATTACH_CONTENT_ID = 0x3701, 0x3707, 0x370E, 0x3712
# What an attached Outlook item's data starts with (IID_IMessage), then a TNEF stream of its own.
EMBEDDED_MESSAGE = b"\x07\x03\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
Prop = tuple[int, int, bytes | int]


def attribute(level: int, attr_id: int, data: bytes) -> bytes:
    return struct.pack("<BII", level, attr_id, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)


def mapi(props: list[Prop]) -> bytes:
    out = struct.pack("<I", len(props))
    for kind, number, value in props:
        out += struct.pack("<HH", kind, number)
        if isinstance(value, int):
            out += struct.pack("<I", value)
        else:  # one value: its length, the bytes, padding to four
            out += struct.pack("<II", 1, len(value)) + value + b"\0" * (-len(value) % 4)
    return out


def unicode(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\0\0"


@dataclass
class File:
    name: str
    data: bytes
    long_name: bool = True  # also in PR_ATTACH_LONG_FILENAME (Outlook); else only the 8-bit title
    props: list[Prop] = field(default_factory=list)


def winmail(
    files: list[File],
    *,
    body: bytes | None = None,
    props: list[Prop] | None = None,
    message_class: bytes = b"IPM.Microsoft Mail.Note",
) -> bytes:
    """A winmail.dat as Outlook writes one: message attributes, then each file's attributes."""
    out = struct.pack("<IH", SIGNATURE, 0x0BAD)
    out += attribute(MESSAGE, ATT_TNEF_VERSION, struct.pack("<I", 0x10000))
    out += attribute(MESSAGE, ATT_OEM_CODEPAGE, struct.pack("<II", 1252, 0))
    out += attribute(MESSAGE, ATT_MESSAGE_CLASS, message_class + b"\0")
    if body is not None:
        out += attribute(MESSAGE, ATT_BODY, body)
    if props:
        out += attribute(MESSAGE, ATT_MAPI_PROPS, mapi(props))
    for file in files:
        out += attribute(ATTACHMENT, ATT_ATTACH_REND_DATA, struct.pack("<HIHHI", 1, 0xFFFFFFFF, 0, 0, 0))
        out += attribute(ATTACHMENT, ATT_ATTACH_TITLE, file.name.encode("cp1252", "replace") + b"\0")
        out += attribute(ATTACHMENT, ATT_ATTACH_DATA, file.data)
        long_name: list[Prop] = [(PT_UNICODE, PR_ATTACH_LONG_FILENAME, unicode(file.name))] if file.long_name else []
        out += attribute(ATTACHMENT, ATT_ATTACHMENT, mapi(long_name + file.props))
    return out


# --- messages ------------------------------------------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
HEAD = (
    "From: Anna Bakker <anna@bakker.example>\r\nTo: staff@hub.example\r\nSubject: Offerte\r\n"
    "Date: Tue, 03 Nov 2026 10:00:00 +0100\r\nMessage-ID: <tnef@test>\r\nMIME-Version: 1.0\r\n"
    "X-Mailer: Microsoft Outlook 16.0\r\n"
)
TNEF_PART = 'Content-Type: application/ms-tnef; name="winmail.dat"\r\n'


def docx() -> bytes:
    """A real .docx: a ZIP file, whose last bytes (the empty comment's length) are NUL."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr("word/document.xml", "<w:document><w:body><w:p>Contract Bakker</w:p></w:body></w:document>")
    return buffer.getvalue()


def message(data: bytes, *, text: str | None = "Zie de bijlagen.", part_head: str = TNEF_PART) -> bytes:
    """An Outlook message: its own text (if any) and the winmail.dat, base64 as Exchange sends it."""
    parts = []
    if text is not None:
        parts.append(f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n")
    encoded = base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")
    parts.append(
        part_head + 'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="winmail.dat"\r\n'
        "\r\n" + encoded
    )
    body = "".join(f"--b\r\n{p}" for p in parts) + "--b--\r\n"
    return (HEAD + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + body).encode("ascii")


def files(parsed: ParsedMessage) -> list[tuple[str, str]]:
    return [(a.filename, a.content_type) for a in parsed.attachments]


def winmail_notes(parsed: ParsedMessage) -> list[str]:
    return [p for p in parsed.problems if "winmail" in p]


DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


# --- files inside --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "part_head",
    [
        TNEF_PART,
        'Content-Type: application/vnd.ms-tnef; name="winmail.dat"\r\n',
        'Content-Type: application/octet-stream; name="winmail.dat"\r\n',
        'Content-Type: application/octet-stream; name="WINMAIL.DAT"\r\n',
    ],
)
def test_the_pdf_and_docx_inside_become_the_attachments_in_its_place(part_head: str) -> None:
    contract = docx()
    raw = message(winmail([File("Offerte 2026.pdf", PDF), File("Contract Bakker.docx", contract)]), part_head=part_head)
    parsed = parse_message(raw)
    assert files(parsed) == [("Offerte 2026.pdf", "application/pdf"), ("Contract Bakker.docx", DOCX_TYPE)]
    assert parsed.attachments[0].data == PDF
    assert parsed.attachments[1].data == contract
    with zipfile.ZipFile(io.BytesIO(parsed.attachments[1].data)) as archive:  # it opens as Word would
        assert b"Contract Bakker" in archive.read("word/document.xml")
    assert parsed.text_body.strip() == "Zie de bijlagen."
    assert winmail_notes(parsed) == []


def test_a_file_repeated_in_the_mapi_properties_keeps_its_trailing_nul_bytes() -> None:
    """tnefparse reads a PR_ATTACH_DATA property with its trailing NULs cut off; a ZIP ends in them."""
    contract = docx()
    assert contract.endswith(b"\0")
    repeated = File("contract.docx", contract, props=[(PT_BINARY, PR_ATTACH_DATA, contract)])
    parsed = parse_message(message(winmail([repeated])))
    assert parsed.attachments[0].data == contract
    assert zipfile.ZipFile(io.BytesIO(parsed.attachments[0].data)).testzip() is None


def test_names_come_from_the_8_bit_title_when_there_is_no_long_name_and_types_from_names() -> None:
    inside = [
        File("café.pdf", PDF, long_name=False),
        File("RAPPORT.PDF", PDF),
        File("notities", b"platte tekst", props=[(PT_STRING8, PR_ATTACH_MIME_TAG, b"text/plain\0")]),
        File("onbekend", b"\x01\x02", props=[(PT_STRING8, PR_ATTACH_MIME_TAG, b"nonsense; x\0")]),
    ]
    parsed = parse_message(message(winmail(inside)))
    assert files(parsed) == [
        ("café.pdf", "application/pdf"),
        ("RAPPORT.PDF", "application/pdf"),
        ("notities", "text/plain"),
        ("onbekend", "application/octet-stream"),
    ]


def test_hostile_names_are_cleaned_as_every_attachment_name_is() -> None:
    inside = [
        File("../../etc/passwd", b"root:x:0:0"),
        File("C:\\Users\\anna\\factuur.pdf", PDF),
        File("", PDF),
        File("factuur\u202efdp.exe", b"MZ"),
        File("a\x00b\u200f.pdf", PDF),
        File("x" * 400 + ".pdf", PDF),
    ]
    parsed = parse_message(message(winmail(inside)))
    names = [a.filename for a in parsed.attachments]
    assert names[:5] == ["passwd", "factuur.pdf", "part-2.bin", "factuurfdp.exe", "ab.pdf"]
    assert names[5].endswith(".pdf") and len(names[5].encode()) <= 255
    assert all("/" not in n and "\\" not in n and "\x00" not in n for n in names)


# --- the body ------------------------------------------------------------------------------------


def test_a_body_only_in_tnef_becomes_the_message_body_with_its_inline_image() -> None:
    html = '<html><body><p>Geachte heer, zie het logo: <img src="cid:image001.png@01DA"> — groet</p></body></html>'
    logo = File("image001.png", PNG, props=[(PT_STRING8, PR_ATTACH_CONTENT_ID, b"<image001.png@01DA>\0")])
    data = winmail(
        [logo, File("offerte.pdf", PDF)],
        props=[
            (PT_LONG, PR_INTERNET_CPID, 65001),
            (PT_UNICODE, PR_BODY, unicode("Geachte heer, zie het logo — groet")),
            (PT_BINARY, PR_BODY_HTML, html.encode("utf-8")),
        ],
    )
    parsed = parse_message(message(data, text=None))
    assert "— groet" in parsed.text_body
    assert 'src="cid:image001.png@01DA"' in parsed.html_body and "— groet" in parsed.html_body
    assert files(parsed) == [("image001.png", "image/png"), ("offerte.pdf", "application/pdf")]
    assert parsed.attachments[0].content_id == "image001.png@01DA"
    assert winmail_notes(parsed) == []


def test_a_message_that_is_only_a_winmail_dat_shows_its_plain_body_in_its_codepage() -> None:
    body = "Beste Kees,\r\n\r\nIn de bijlage de offerte (€ 1.250, café).\r\n".encode("cp1252")
    data = winmail([File("offerte.pdf", PDF)], body=body + b"\0")  # (a C string, as Outlook writes it)
    raw = (HEAD + TNEF_PART + "Content-Transfer-Encoding: base64\r\n\r\n").encode() + base64.encodebytes(data)
    parsed = parse_message(raw)
    assert "In de bijlage de offerte (€ 1.250, café)." in parsed.text_body and parsed.html_body == ""
    assert "\x00" not in parsed.text_body and "\ufffd" not in parsed.text_body
    assert files(parsed) == [("offerte.pdf", "application/pdf")]


def test_a_body_its_declared_codepage_cannot_read_keeps_the_winmail_dat() -> None:
    """tnefparse decodes the 8-bit body with the HTML's codepage and fails: nothing comes out, all stays."""
    data = winmail([File("offerte.pdf", PDF)], body="één".encode("cp1252"), props=[(PT_LONG, PR_INTERNET_CPID, 65001)])
    parsed = kept_whole(data)
    assert any("winmail.dat could not be unpacked" in p for p in parsed.problems)


def test_the_message_s_own_body_wins_over_the_one_in_tnef() -> None:
    data = winmail([File("offerte.pdf", PDF)], body=b"De versie in TNEF.")
    parsed = parse_message(message(data, text="De eigen tekst."))
    assert parsed.text_body.strip() == "De eigen tekst." and "TNEF" not in parsed.text_body


def test_a_body_only_in_rtf_keeps_the_winmail_dat_next_to_the_files() -> None:
    """hub does not show RTF (tnefparse decompresses it only with another package): the winmail.dat
    with it stays, so the body is not lost, but the PDF opens all the same."""
    data = winmail([File("offerte.pdf", PDF)], props=[(PT_BINARY, PR_RTF_COMPRESSED, b"\x2d\0\0\0LZFu rtf")])
    parsed = parse_message(message(data, text=None))
    assert files(parsed) == [("offerte.pdf", "application/pdf"), ("winmail.dat", "application/ms-tnef")]
    assert parsed.attachments[1].data == data
    assert any("RTF" in p for p in parsed.problems)
    # With a body of its own the RTF is only another version of it: winmail.dat goes.
    assert files(parse_message(message(data))) == [("offerte.pdf", "application/pdf")]


# --- nothing is lost -----------------------------------------------------------------------------


def kept_whole(data: bytes) -> ParsedMessage:
    """The message with this winmail.dat: it is the one attachment, byte for byte; the rest is read."""
    parsed = parse_message(message(data))
    assert files(parsed) == [("winmail.dat", "application/ms-tnef")]
    assert parsed.attachments[0].data == data
    assert parsed.text_body.strip() == "Zie de bijlagen."
    assert parsed.message_id == "<tnef@test>" and not any("unreadable" in p for p in parsed.problems)
    return parsed


@pytest.mark.parametrize("cut", [5, 40, 200, 1000])
def test_a_truncated_winmail_dat_stays_as_it_is(cut: int) -> None:
    whole = winmail([File("offerte.pdf", PDF * 20), File("contract.docx", docx())])
    parsed = kept_whole(whole[:-cut])
    assert any("winmail.dat could not be unpacked" in p for p in winmail_notes(parsed))


def test_a_line_end_saved_after_the_last_attribute_does_not_stop_the_unpacking() -> None:
    parsed = parse_message(message(winmail([File("offerte.pdf", PDF)]) + b"\r\n"))
    assert files(parsed) == [("offerte.pdf", "application/pdf")] and parsed.attachments[0].data == PDF


def test_a_winmail_dat_cut_inside_its_last_file_s_header_stays_as_it_is() -> None:
    """Cut a few bytes into the attribute holding the last file's bytes: tnefparse stops before it and
    would hand out an empty contract.docx."""
    first = winmail([File("offerte.pdf", PDF)])
    whole = winmail([File("offerte.pdf", PDF), File("contract.docx", docx())])
    title = attribute(ATTACHMENT, ATT_ATTACH_TITLE, b"contract.docx\0")
    data_starts = whole.index(title, len(first)) + len(title)
    for keep in (1, 8, 12):
        kept_whole(whole[: data_starts + keep])


@pytest.mark.parametrize(
    "data",
    [
        struct.pack("<IH", SIGNATURE, 1),  # the signature alone
        struct.pack("<IH", SIGNATURE, 1) + b"\xff" * 500,  # then junk
        struct.pack("<IH", SIGNATURE, 1) + struct.pack("<BII", ATTACHMENT, ATT_ATTACH_DATA, 0xFFFFFFF0) + b"%PDF",
        winmail([File("x.pdf", PDF)])[:6] + bytes(range(256)) * 4,
    ],
    ids=["signature only", "junk", "huge declared size", "binary noise"],
)
def test_a_broken_winmail_dat_stays_as_it_is(data: bytes) -> None:
    kept_whole(data)


def test_a_winmail_dat_that_is_not_tnef_at_all_stays_without_a_note() -> None:
    parsed = parse_message(message(b"just some file", part_head="Content-Type: application/octet-stream\r\n"))
    assert files(parsed) == [("winmail.dat", "application/octet-stream")]
    assert winmail_notes(parsed) == []


def test_a_damaged_file_inside_is_not_handed_out_and_winmail_dat_stays() -> None:
    data = bytearray(winmail([File("goed.pdf", PDF), File("kapot.pdf", PDF)]))
    damaged = bytes(data).rindex(b"%PDF") + 3  # a byte inside the second file's data: its checksum fails
    data[damaged] ^= 0xFF
    parsed = parse_message(message(bytes(data)))
    assert files(parsed) == [("goed.pdf", "application/pdf"), ("winmail.dat", "application/ms-tnef")]
    assert parsed.attachments[1].data == bytes(data)


def test_an_attached_outlook_item_keeps_the_winmail_dat_next_to_the_files() -> None:
    item = winmail([File("binnen.pdf", PDF)])
    embedded = File("Doorgestuurd", b"", long_name=False, props=[(PT_OBJECT, PR_ATTACH_DATA, EMBEDDED_MESSAGE + item)])
    data = winmail([File("offerte.pdf", PDF), embedded])
    parsed = parse_message(message(data))
    assert files(parsed) == [("offerte.pdf", "application/pdf"), ("winmail.dat", "application/ms-tnef")]
    assert parsed.attachments[1].data == data


def test_a_meeting_request_keeps_its_winmail_dat_for_what_only_outlook_reads() -> None:
    data = winmail([File("agenda.pdf", PDF)], body=b"Overleg", message_class=b"IPM.Microsoft Schedule.MtgReq")
    parsed = parse_message(message(data))
    assert files(parsed) == [("agenda.pdf", "application/pdf"), ("winmail.dat", "application/ms-tnef")]
    assert any("MtgReq" in p for p in winmail_notes(parsed))


# --- hostile -------------------------------------------------------------------------------------


def test_thousands_of_tiny_files_stay_one_winmail_dat() -> None:
    kept_whole(winmail([File(f"f{i}.txt", b"x") for i in range(5000)]))


def test_more_files_than_the_limit_stay_one_winmail_dat() -> None:
    parsed = kept_whole(winmail([File(f"bijlage {i}.pdf", PDF) for i in range(tnef.MAX_FILES + 1)]))
    assert any(f"more than {tnef.MAX_FILES} files" in p for p in parsed.problems)
    # At the limit all of them come out.
    at_limit = parse_message(message(winmail([File(f"bijlage {i}.pdf", PDF) for i in range(tnef.MAX_FILES)])))
    assert len(at_limit.attachments) == tnef.MAX_FILES


def nested(depth: int) -> bytes:
    data = winmail([File("diep.pdf", PDF)])
    for _ in range(depth):
        data = winmail(
            [File("item", b"", long_name=False, props=[(PT_OBJECT, PR_ATTACH_DATA, EMBEDDED_MESSAGE + data)])]
        )
    return data


HEAD_ONLY = struct.pack("<IH", SIGNATURE, 1) + attribute(MESSAGE, ATT_OEM_CODEPAGE, struct.pack("<II", 1252, 0))


@pytest.mark.parametrize(
    "data",
    [
        # A property count of four billion over eight bytes.
        HEAD_ONLY + attribute(MESSAGE, ATT_MAPI_PROPS, struct.pack("<I", 0xFFFFFFFF) + b"\0" * 8),
        # One multi-valued property claiming four billion values.
        HEAD_ONLY + attribute(MESSAGE, ATT_MAPI_PROPS, struct.pack("<IHHI", 1, 0x1002, 0x6000, 0xFFFFFFFF)),
        # Tens of thousands of attributes in front of a big file (each makes tnefparse copy the rest).
        HEAD_ONLY
        + attribute(MESSAGE, ATT_MESSAGE_CLASS, b"x") * 20_000
        + winmail([File("groot.pdf", PDF + b"\0" * 5_000_000)])[6:],
        nested(60),
        nested(2000),
    ],
    ids=["property count", "multi-value count", "attributes before a big file", "nested 60", "nested 2000"],
)
def test_hostile_winmail_dat_is_kept_whole_and_bounded(data: bytes) -> None:
    before = sys.gettrace()
    kept_whole(data)
    assert sys.gettrace() is before  # the budget's tracing is undone, even when it stopped the work


def test_a_hostile_winmail_dat_among_the_parts_does_not_cost_the_rest() -> None:
    raw = message(nested(100), text="Tekst blijft.").replace(b"--b--\r\n", b"")
    raw += b'--b\r\nContent-Type: application/pdf; name="los.pdf"\r\n\r\n%PDF-1.4\r\n--b--\r\n'
    parsed = parse_message(raw)
    assert files(parsed) == [("winmail.dat", "application/ms-tnef"), ("los.pdf", "application/pdf")]
    assert parsed.text_body.strip() == "Tekst blijft."
