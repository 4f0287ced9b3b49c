"""In a real Chromium: an e-mail containing script is shown, and the script stays inert."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from hub.config import Settings
from hub.db import Database
from hub.models import Email, User
from tests.conftest import PASSWORD
from tests.mail_fixtures import MailAccount, sync_account

HOSTILE = (
    b"From: Evil <evil@attacker.example>\r\nTo: staff@hub.example\r\nSubject: Factuur\r\n"
    b"Message-ID: <evil@attacker.example>\r\nDate: Mon, 02 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    b"<p id=greeting>Beste klant,</p>"
    b"<script>window.top.document.title='pwned'; alert('xss');</script>"
    b"<img src=x onerror=\"window.top.document.title='pwned'\">"
    b"<a href=\"javascript:window.top.document.title='pwned'\">klik</a>\r\n"
)


def test_script_in_an_email_is_inert(
    browser: Any,
    live_url: str,
    db: Database,
    settings: Settings,
    make_user: Callable[..., User],
    mail_account: Callable[..., MailAccount],
) -> None:
    user = make_user("Reader", language="en")
    account = mail_account(owner_id=user.id)
    client = account.client()
    client.append("INBOX", HOSTILE)
    client.logout()
    sync_account(db, settings, account)
    with db.transaction() as s:
        email_id = s.scalars(select(Email.id)).one()

    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{live_url}/login")
    page.fill("#email", user.email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_url}/projects")
    page.goto(f"{live_url}/emails/{email_id}")
    frame = page.frame_locator("iframe.email-body")
    assert frame.locator("p", has_text="Beste klant").inner_text() == "Beste klant,"
    frame.locator("a", has_text="klik").click()
    page.wait_for_timeout(500)
    assert page.title() == "Factuur · hub"
    assert dialogs == []
    context.close()
