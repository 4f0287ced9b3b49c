"""Outlook mail with a winmail.dat, through a real Dovecot and the real sync: the PDF and .docx inside
are stored as the e-mail's attachments (on SQLite and PostgreSQL), the e-mail page lists them and
downloads them whole, and a broken winmail.dat next to them stays the one attachment it was."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.config import Settings
from hub.db import Database
from hub.models import Attachment, Email, User
from tests.mail_fixtures import MailAccount, sync_account
from tests.unit.test_mail_tnef import PDF, File, docx, message, winmail

CONTRACT = docx()
GOOD = winmail([File("Offerte 2026.pdf", PDF), File("Contract Bakker.docx", CONTRACT)])
BROKEN = GOOD[: len(GOOD) // 2]


def fill(account: MailAccount) -> None:
    client = account.client()
    client.append("INBOX", message(GOOD))
    client.append("INBOX", message(BROKEN).replace(b"<tnef@test>", b"<broken@test>").replace(b"Offerte", b"Kapot"))
    client.append("INBOX", message(winmail([], body=b"Alleen in TNEF"), text=None).replace(b"<tnef@test>", b"<b@t>"))
    client.logout()


def stored_files(database: Database) -> dict[str, list[tuple[str, int]]]:
    with database.transaction() as s:
        return {
            email.message_id: [
                (a.filename, a.size) for a in s.scalars(select(Attachment).where(Attachment.email_id == email.id))
            ]
            for email in s.scalars(select(Email))
        }


def test_winmail_dat_is_stored_as_the_files_inside_it(
    any_db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    account = mail_account(database=any_db)
    fill(account)
    result = sync_account(any_db, settings, account)
    assert (result.new, result.quarantined) == (3, 0)
    files = stored_files(any_db)
    assert sorted(files["<tnef@test>"]) == [("Contract Bakker.docx", len(CONTRACT)), ("Offerte 2026.pdf", len(PDF))]
    assert files["<broken@test>"] == [("winmail.dat", len(BROKEN))]
    assert files["<b@t>"] == []
    with any_db.transaction() as s:
        assert s.scalars(select(Email.text_body).where(Email.message_id == "<b@t>")).one().strip() == "Alleen in TNEF"
    assert sync_account(any_db, settings, account).new == 0


def test_the_e_mail_page_lists_and_downloads_the_unpacked_files(
    app: Flask,
    db: Database,
    settings: Settings,
    mail_account: Callable[..., MailAccount],
    make_user: Callable[..., User],
    login: Callable[[FlaskClient, User], FlaskClient],
) -> None:
    owner = make_user("Owner")
    account = mail_account(owner_id=owner.id)
    fill(account)
    sync_account(db, settings, account)
    with db.transaction() as s:
        email_id = s.scalars(select(Email.id).where(Email.message_id == "<tnef@test>")).one()
    client = login(app.test_client(), owner)
    page = client.get(f"/emails/{email_id}")
    assert page.status_code == 200
    assert "Offerte 2026.pdf" in page.text and "Contract Bakker.docx" in page.text and "winmail.dat" not in page.text
    links = re.findall(rf'href="(/emails/{email_id}/attachments/\d+)"', page.text)
    downloads = {client.get(link).data for link in links}
    assert downloads == {PDF, CONTRACT}
