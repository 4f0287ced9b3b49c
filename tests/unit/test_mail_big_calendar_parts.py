"""Calendar parts a hostile or broken mail uses to make the sync worker decode and parse without end
(a 5 MB .ics, hundreds of calendar parts): the message is still stored whole, every part is still
an attachment, only the first few small ones are read as invitations, and the problems say why the
others were not. Raw bytes, as a server hands them over, through the parser the sync uses."""

from __future__ import annotations

import base64

from hub.mail.kinds import MAX_CALENDAR_BYTES, MAX_CALENDAR_PARTS
from hub.mail.parse import parse_message

HEAD = (
    b"From: Anna Bakker <anna@bakker.example>\r\nTo: staff@hub.example\r\nSubject: Uitnodiging\r\n"
    b"Date: Tue, 03 Nov 2026 09:30:00 +0100\r\nMessage-ID: <big-ics@bakker.example>\r\nMIME-Version: 1.0\r\n"
)


def multipart(*parts: bytes) -> bytes:
    body = b"".join(b"--b\r\n" + part + b"\r\n" for part in parts)
    return HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + body + b"--b--\r\n"


def invitation(uid: str, description_bytes: int = 0) -> bytes:
    """A calendar that is an invitation (METHOD:REQUEST, one VEVENT), its description as long as asked."""
    description = b"".join(b" " + b"x" * 73 + b"\r\n" for _ in range(description_bytes // 76))
    return (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
        + f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261110T130000Z\r\n".encode()
        + b"SUMMARY:Dakinspectie\r\nDESCRIPTION:start\r\n"
        + description
        + b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def ics_attachment(calendar: bytes, name: str) -> bytes:
    """A calendar as Outlook attaches it: base64, with a file name."""
    encoded = base64.encodebytes(calendar)
    return (
        f'Content-Type: text/calendar; method=REQUEST; name="{name}"\r\n'
        f'Content-Disposition: attachment; filename="{name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    ).encode() + encoded


TEXT = b"Content-Type: text/plain; charset=utf-8\r\n\r\nZie de uitnodiging."


def test_a_huge_calendar_attachment_is_kept_but_not_read_as_an_invitation() -> None:
    big = invitation("big-1", 5_000_000)
    assert len(big) > 4 * MAX_CALENDAR_BYTES
    small = invitation("dak-1")

    alone = parse_message(multipart(TEXT, ics_attachment(big, "agenda.ics")))

    assert alone.message_id == "<big-ics@bakker.example>" and alone.text_body == "Zie de uitnodiging."
    assert [(a.filename, a.data) for a in alone.attachments] == [("agenda.ics", big)]  # stored, downloadable
    assert alone.kind == "" and alone.details == {}
    assert alone.problems == [
        "calendar part larger than 1,000,000 bytes kept as an attachment, not read as an invitation"
    ]

    # A normal invitation beside it is still read; both files are kept.
    both = parse_message(multipart(TEXT, ics_attachment(big, "agenda.ics"), ics_attachment(small, "invite.ics")))
    assert both.kind == "invitation" and both.details["uid"] == "dak-1", both.problems
    assert [(a.filename, a.data) for a in both.attachments] == [("agenda.ics", big), ("invite.ics", small)]
    assert any("larger than 1,000,000 bytes" in p for p in both.problems)

    # Just under the limit, it is read as it always was.
    near = invitation("near-1", MAX_CALENDAR_BYTES - 2_000)
    assert len(near) <= MAX_CALENDAR_BYTES
    parsed = parse_message(multipart(TEXT, ics_attachment(near, "invite.ics")))
    assert parsed.kind == "invitation" and parsed.details["uid"] == "near-1" and parsed.problems == []


def test_only_the_first_calendar_parts_are_read_as_invitations() -> None:
    # Calendars that are no invitation (a journal entry each), then an invitation as the 500th part.
    journal = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VJOURNAL\r\nUID:j\r\n"
        b"SUMMARY:Notitie\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n"
    )
    parts = [b"Content-Type: text/calendar\r\n\r\n" + journal for _ in range(499)]
    raw = multipart(TEXT, *parts, b"Content-Type: text/calendar; method=REQUEST\r\n\r\n" + invitation("late-1"))

    parsed = parse_message(raw)

    assert parsed.text_body == "Zie de uitnodiging."
    assert len(parsed.attachments) == 500 and parsed.attachments[-1].data == invitation("late-1")
    assert parsed.kind == "" and parsed.details == {}
    assert parsed.problems == [
        f"more than {MAX_CALENDAR_PARTS} calendar parts: the others were kept as attachments, not read as invitations"
    ]

    # Among the first few, an invitation is read as before (the rest still attached, the problem noted).
    early = multipart(
        TEXT,
        b"Content-Type: text/calendar\r\n\r\n" + journal,
        b"Content-Type: text/calendar; method=REQUEST\r\n\r\n" + invitation("early-1"),
        *parts,
    )
    parsed = parse_message(early)
    assert parsed.kind == "invitation" and parsed.details["uid"] == "early-1"
    assert len(parsed.attachments) == 501
    assert parsed.problems == [
        f"more than {MAX_CALENDAR_PARTS} calendar parts: the others were kept as attachments, not read as invitations"
    ]
