"""What comes back from a mailing, through hub's own mail sync of a real Dovecot bounce mailbox: an
RFC 3464 delivery status notification to the VERP address suppresses the contact and shows on it;
a soft bounce only after repeats; an ARF complaint suppresses; a reply counts as a response and an
out-of-office does not; the next mailing skips the suppressed address."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hub.campaigns.bounces import SOFT_BOUNCES_TO_SUPPRESS, bounces_of_contact, is_suppressed
from hub.campaigns.mailings import results
from hub.db import Database
from hub.models.campaigns import MailingRecipient
from tests.integration.test_campaign_sending import mailing_settings, make_mailing, run_to_end, seed_contacts
from tests.mail_fixtures import sync_account


def _dsn(to: str, failed: str, message_id: str, status: str, action: str = "failed") -> bytes:
    report = (
        "Reporting-MTA: dns; mx.example.test\n\n"
        f"Final-Recipient: rfc822; {failed}\nAction: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; {'550 5.1.1 User unknown' if status.startswith('5') else '452 4.2.2 Mailbox full'}\n"
    )
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn-{failed}-{status}@mx.example.test>\r\n"
        "Date: Fri, 27 Nov 2026 13:00:00 +0100\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        f"--b1\r\nContent-Type: message/delivery-status\r\n\r\n{report.replace(chr(10), chr(13) + chr(10))}\r\n"
        f"--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {message_id}\r\nTo: {failed}\r\n"
        "Subject: Hello\r\n\r\n--b1--\r\n"
    ).encode()


def _arf(to: str, complainer: str, message_id: str) -> bytes:
    return (
        "From: feedback@isp.example.test\r\n"
        f"To: {to}\r\n"
        "Subject: Abuse report\r\n"
        f"Message-ID: <arf-{complainer}@isp.example.test>\r\n"
        "Date: Fri, 27 Nov 2026 13:00:00 +0100\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b2"\r\n\r\n'
        "--b2\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
        "--b2\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: isp/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: {complainer}\r\n\r\n"
        f"--b2\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {message_id}\r\n"
        f"To: {complainer}\r\n\r\n--b2--\r\n"
    ).encode()


def _reply(sender: str, in_reply_to: str, *, auto: bool = False) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "news@hub.example"
    mail["Subject"] = "Automatic reply: Hello" if auto else "Re: Hello"
    mail["Message-ID"] = f"<reply-{sender}-{auto}@example.test>"
    mail["In-Reply-To"] = in_reply_to
    mail["Date"] = "Fri, 27 Nov 2026 14:00:00 +0100"
    if auto:
        mail["Auto-Submitted"] = "auto-replied"
    mail.set_content("I am out of the office." if auto else "Interested, please call me.")
    return mail.as_bytes()


def test_bounces_complaints_and_replies_through_the_bounce_mailbox(
    tmp_path: Path, db: Database, settings: Any, smtp_server: Any, mail_account: Callable[..., Any]
) -> None:
    contact_ids = seed_contacts(db, 8)
    send_settings = mailing_settings(tmp_path, db, smtp_server.url, HUB_BOUNCE_ADDRESS="bounces@hub.example")
    mailing_id = make_mailing(db)
    run_to_end(db, send_settings, mailing_id)
    sent = {item.rcpt_tos[0]: (item.mail_from, item.message()["Message-ID"]) for item in smtp_server.received}
    assert len(sent) == 8 and all(verp.startswith("bounces+") for verp, _mid in sent.values())

    account = mail_account()
    client = account.client()
    verp, mid = sent["r1@example.test"]
    client.append("INBOX", _dsn(verp, "r1@example.test", mid, "5.1.1"))  # hard: suppressed at once
    for n in range(SOFT_BOUNCES_TO_SUPPRESS - 1):  # soft: not yet
        verp, mid = sent["r2@example.test"]
        client.append("INBOX", _dsn(verp, "r2@example.test", mid, f"4.2.{n + 2}"))
    verp, mid = sent["r3@example.test"]
    client.append("INBOX", _dsn(verp, "r3@example.test", mid, "4.4.7", action="delayed"))  # a warning only
    verp, mid = sent["r4@example.test"]
    client.append("INBOX", _arf("bounces@hub.example", "r4@example.test", mid))
    client.append("INBOX", _reply("r5@example.test", sent["r5@example.test"][1]))
    client.append("INBOX", _reply("r6@example.test", sent["r6@example.test"][1], auto=True))
    # A Message-ID names its ledger row, but only the one hub sent counts: r7's row with another
    # signature, or with r5's, is no reply of r7's.
    row, mailing, _mac, rest = sent["r7@example.test"][1].split(".", 3)
    client.append("INBOX", _reply("r7@example.test", f"{row}.{mailing}.forged.{rest}"))
    client.append("INBOX", _reply("r7@example.test", f"{row}.{sent['r5@example.test'][1].split('.', 1)[1]}"))
    # Someone's own bounce, not of a mailing: nothing happens.
    client.append("INBOX", _dsn("anna@staff.example", "stranger@else.example", "<x@staff.example>", "5.1.1"))
    client.logout()

    sync_account(db, settings, account)
    sync_account(db, settings, account)  # a second sync (the same mail again) changes nothing
    with db.transaction() as s:
        assert is_suppressed(s, "r1@example.test") == "hard_bounce"
        assert is_suppressed(s, "r2@example.test") == ""
        assert is_suppressed(s, "r3@example.test") == ""
        assert is_suppressed(s, "r4@example.test") == "complaint"
        assert is_suppressed(s, "stranger@else.example") == ""
        shown = bounces_of_contact(s, contact_ids[1])
        assert [(b.kind, b.status) for b in shown] == [("hard", "5.1.1")]
        assert "User unknown" in shown[0].diagnostic
        counted = results(s, [mailing_id])
        assert (counted.bounced, counted.replies, counted.delivered) == (2, 1, 6)
        replied = s.scalars(select(MailingRecipient.address).where(MailingRecipient.replied_at.isnot(None))).all()
        assert replied == ["r5@example.test"]

    client = account.client()
    verp, mid = sent["r2@example.test"]
    client.append("INBOX", _dsn(verp, "r2@example.test", mid, "4.2.9"))  # one soft bounce too many
    client.logout()
    sync_account(db, settings, account)
    with db.transaction() as s:
        assert is_suppressed(s, "r2@example.test") == "soft_bounces"

    smtp_server.clear()
    second = make_mailing(db)
    run_to_end(db, send_settings, second)
    assert sorted(smtp_server.recipients()) == [f"r{i}@example.test" for i in (0, 3, 5, 6, 7)]
