"""Nasty real-world mail among ordinary mail, through a real Dovecot and the real sync, on SQLite and
PostgreSQL: each nasty message is stored with what a user must see (its text, its attachments, its
true sender), none is merged into another, none stops its folder, and a second sync adds nothing."""

from __future__ import annotations

import base64
from collections.abc import Callable

from sqlalchemy import select

from hub.config import Settings
from hub.db import Database
from hub.models import Attachment, Email, EmailLocation
from tests.mail_fixtures import MailAccount, sync_account


def ordinary(n: int) -> bytes:
    return (
        f"From: kees@visser.example.nl\r\nTo: staff@hub.example\r\nSubject: gewoon {n}\r\n"
        f"Date: Tue, 03 Nov 2026 09:{n:02d}:00 +0100\r\nMessage-ID: <gewoon{n}@test>\r\n\r\nHallo {n}\r\n"
    ).encode()


HEAD = b"To: staff@hub.example\r\nDate: Tue, 03 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
BOSS = base64.b64encode(b"Directeur <directeur@hub.example>")
NASTY = {
    # An encoded display name that decodes to another address.
    "spoof": b"From: =?utf-8?B?" + BOSS + b"?= <oplichter@evil.example>\r\nSubject: spoof\r\n"
    b"Message-ID: <spoof@test>\r\n" + HEAD + b"\r\nBetaal deze factuur.\r\n",
    # A blank before a colon, which used to push every later header into the body.
    "spaced": b"From: anna@bakker.example.nl\r\nSubject : spaced\r\nMessage-ID: <spaced@test>\r\n"
    + HEAD
    + b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Caf\xc3\xa9</p>\r\n",
    # A charset label with a NUL in it, which used to cost the whole body.
    "nul charset": b"From: anna@bakker.example.nl\r\nSubject: nul charset\r\nMessage-ID: <nulcharset@test>\r\n"
    + HEAD
    + b"Content-Type: text/plain; charset=us-ascii\x00\r\n\r\nDe tekst blijft.\r\n",
    # A nested multipart reusing the outer boundary: the PDF after it used to be lost.
    "reused boundary": b"From: anna@bakker.example.nl\r\nSubject: reused boundary\r\nMessage-ID: <reused@test>\r\n"
    + HEAD
    + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: multipart/alternative; boundary="b"'
    b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nZie de offerte.\r\n--b--\r\n--b\r\n"
    b'Content-Type: application/pdf; name="offerte.pdf"\r\n\r\n%PDF-1.4\r\n--b--\r\n',
    # A uuencoded file in the text.
    "uuencoded": b"From: anna@bakker.example.nl\r\nSubject: uuencoded\r\nMessage-ID: <uu@test>\r\n"
    + HEAD
    + b"Content-Type: text/plain\r\n\r\nZie bijlage.\r\n\r\nbegin 644 notities.txt\r\n#:&DA\r\n`\r\nend\r\n",
}
# Two different messages with old Mac line ends (CR alone) and no Message-ID: they used to have one
# key, so the second was taken for a copy of the first and never stored.
MAC = [
    b"Received: from mx1\rFrom: anna@bakker.example.nl\rTo: staff@hub.example\rSubject: mac een\r\rEerste\r",
    b"Received: from mx2\rFrom: kees@visser.example.nl\rTo: staff@hub.example\rSubject: mac twee\r\rTweede\r",
]


def fill(account: MailAccount) -> None:
    client = account.client()
    raws = [ordinary(1), *NASTY.values(), ordinary(2), *MAC, ordinary(3)]
    for raw in raws:
        client.append("INBOX", raw)
    client.logout()


def test_nasty_mail_among_good_mail_is_stored_whole_and_once(
    any_db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    account = mail_account(database=any_db)
    fill(account)
    result = sync_account(any_db, settings, account)
    assert (result.new, result.quarantined) == (3 + len(NASTY) + len(MAC), 0)
    with any_db.transaction() as s:
        emails = {e.subject: e for e in s.scalars(select(Email))}
        assert len(emails) == 3 + len(NASTY) + len(MAC)
        files = {
            e.subject: [a.filename for a in s.scalars(select(Attachment).where(Attachment.email_id == e.id))]
            for e in emails.values()
        }
        spoof = emails["spoof"]
        assert (spoof.from_address, spoof.from_name) == ("oplichter@evil.example", "Directeur <directeur@hub.example>")
        spaced = emails["spaced"]
        assert spaced.message_id == "<spaced@test>" and "Café" in spaced.html_body and spaced.sent_at is not None
        assert emails["nul charset"].text_body.startswith("De tekst blijft.")
        assert "Zie de offerte." in emails["reused boundary"].text_body
        assert files["reused boundary"] == ["offerte.pdf"]
        assert files["uuencoded"] == ["notities.txt"] and "begin 644" not in emails["uuencoded"].text_body
        assert emails["mac een"].text_body.strip() == "Eerste" and emails["mac twee"].text_body.strip() == "Tweede"
        assert len(s.scalars(select(EmailLocation)).all()) == 3 + len(NASTY) + len(MAC)
    assert sync_account(any_db, settings, account).new == 0
