"""Nothing in a message is lost out of sight: a quarantined message is listed with its reason, its
owner downloads it and retries it after an upgrade; a message without a usable Date is dated by its
arrival; a forwarded message opens as an e-mail of its own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.config import Settings
from hub.db import Database
from hub.mail import parse_helper
from hub.models import Email, MailQuarantine, User
from tests.conftest import csrf_token
from tests.mail_fixtures import MailAccount, sync_account

Login = Callable[[FlaskClient, User], FlaskClient]


def test_quarantined_mail_is_listed_downloadable_and_retried_by_its_owner_only(
    app: Flask,
    db: Database,
    settings: Settings,
    mail_account: Callable[..., MailAccount],
    make_user: Callable[..., User],
    login: Login,
    monkeypatch: pytest.MonkeyPatch,
    parser_trap: bytes,
) -> None:
    owner, colleague = make_user("Owner"), make_user("Colleague")
    account = mail_account(owner_id=owner.id)
    trapped = b"From: x@y.example\r\nSubject: " + parser_trap + b"\r\nMessage-ID: <trap@test>\r\n\r\nkeep me\r\n"
    client = account.client()
    client.append("INBOX", trapped)
    client.append("INBOX", b"From: x@y.example\r\nSubject: fine\r\nMessage-ID: <fine@test>\r\n\r\nok\r\n")
    client.logout()
    assert sync_account(db, settings, account).quarantined == 1

    mine = login(app.test_client(), owner)
    health = mine.get("/mail/health").text
    assert "Messages that could not be stored" in health and "did not finish" in health
    with db.transaction() as s:
        quarantine_id = s.scalars(select(MailQuarantine.id)).one()
    raw = mine.get(f"/mail/quarantine/{quarantine_id}/raw")
    assert raw.status_code == 200 and raw.data.replace(b"\r\n", b"\n") == trapped.replace(b"\r\n", b"\n")
    assert "sandbox" in raw.headers["Content-Security-Policy"]
    # A colleague sees neither the list entry nor the message: it is private mail.
    theirs = login(app.test_client(), colleague)
    assert "Messages that could not be stored" not in theirs.get("/mail/health").text
    assert theirs.get(f"/mail/quarantine/{quarantine_id}/raw").status_code == 404
    token = csrf_token(theirs.get("/mail/health").text)
    assert theirs.post(f"/mail/quarantine/{quarantine_id}/retry", data={"csrf_token": token}).status_code == 404

    # "After an upgrade" the parser gets through; the owner asks for a retry and the message arrives.
    parse_helper.stop_helper()
    monkeypatch.delenv("HUB_TEST_PARSE_HELPER_HANGS_ON")
    token = csrf_token(health)
    assert mine.post(f"/mail/quarantine/{quarantine_id}/retry", data={"csrf_token": token}).status_code == 302
    assert "Retry asked" in mine.get("/mail/health").text
    sync_account(db, settings, account)
    with db.transaction() as s:
        assert s.scalars(select(MailQuarantine)).all() == []
        assert s.scalars(select(Email.text_body).where(Email.message_id == "<trap@test>")).one().strip() == "keep me"


def test_a_message_without_a_usable_date_is_dated_by_its_arrival(
    any_db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    account = mail_account(database=any_db)
    arrived = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=1)))
    client = account.client()
    client.append("INBOX", b"From: a@b.example\r\nSubject: no date\r\n\r\nx\r\n", msg_time=arrived)
    client.append(
        "INBOX", b"From: a@b.example\r\nSubject: bad date\r\nDate: gisteren rond vieren\r\n\r\nx\r\n", msg_time=arrived
    )
    client.append("INBOX", b"From: a@b.example\r\nSubject: dutch\r\nDate: Mon, 2 Nov 2026 10:00:00 +0100\r\n\r\nx\r\n")
    client.logout()
    sync_account(any_db, settings, account)
    with any_db.transaction() as s:
        dates = dict(s.execute(select(Email.subject, Email.sent_at)).tuples().all())
    # UTC on every database: a Dutch 10:00 (+01:00) is 09:00 UTC, also on SQLite.
    assert dates["dutch"] == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert dates["no date"] == arrived.astimezone(UTC)
    assert dates["bad date"] == arrived.astimezone(UTC)


def test_a_forwarded_message_opens_as_an_email_of_its_own(
    app: Flask,
    db: Database,
    settings: Settings,
    mail_account: Callable[..., MailAccount],
    make_user: Callable[..., User],
    login: Login,
) -> None:
    owner = make_user("Owner")
    account = mail_account(owner_id=owner.id)
    inner = (
        b"From: Kees Klant <kees@klant.example>\r\nTo: anna@staff.example\r\nSubject: Originele vraag\r\n"
        b"Date: Mon, 2 Nov 2026 09:00:00 +0100\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="in"\r\n\r\n'
        b"--in\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nKunnen jullie het dak doen?\r\n"
        b'--in\r\nContent-Type: application/pdf; name="tekening.pdf"\r\nContent-Disposition: attachment; '
        b'filename="tekening.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQgdGVrZW5pbmc=\r\n--in--\r\n'
    )
    outer = (
        b"From: anna@staff.example\r\nTo: bob@staff.example\r\nSubject: Fwd: Originele vraag\r\n"
        b"Message-ID: <fwd@test>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="out"\r\n\r\n'
        b"--out\r\nContent-Type: text/plain\r\n\r\nZie hieronder.\r\n"
        b"--out\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" + inner + b"\r\n--out--\r\n"
    )
    client = account.client()
    client.append("INBOX", outer)
    client.logout()
    sync_account(db, settings, account)
    with db.transaction() as s:
        email = s.scalars(select(Email).where(Email.message_id == "<fwd@test>")).one()
        forwarded = [a for a in email.attachments if a.content_type == "message/rfc822"]
        assert len(forwarded) == 1
        email_id, attachment_id = email.id, forwarded[0].id
    mine = login(app.test_client(), owner)
    assert f"/emails/{email_id}/attachments/{attachment_id}/message" in mine.get(f"/emails/{email_id}").text
    page = mine.get(f"/emails/{email_id}/attachments/{attachment_id}/message").text
    assert "Originele vraag" in page and "kees@klant.example" in page and "Kunnen jullie het dak doen?" in page
    assert "tekening.pdf" in page
    part = mine.get(f"/emails/{email_id}/attachments/{attachment_id}/message/0")
    assert part.data == b"%PDF-1.4 tekening" and "sandbox" in part.headers["Content-Security-Policy"]
