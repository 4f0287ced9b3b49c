"""Mailbox sync against a real Dovecot: first sync, no-op resync, new mail, flags, expunge, move,
a recreated folder, the same message in two mailboxes, bad mail, a wrong password, a crash mid-batch."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from sqlalchemy import func, select

from hub.blobs import BlobStore
from hub.config import Settings
from hub.crm.importer import import_relations
from hub.crm.projects import ProjectInput, save_project
from hub.db import Database
from hub.i18n import english
from hub.mail.imap import MailServerError
from hub.mail.sync import _Interrupt, sync_mailbox
from hub.models import (
    Email,
    EmailLocation,
    EmailParticipant,
    EmailProject,
    EmailRelation,
    Mailbox,
    MailQuarantine,
    Relation,
    User,
)
from tests.mail_fixtures import MailAccount, sync_account

CONTACTS = (
    b"relation,domain,contact_name,email,phone\n"
    b"Bakker BV,bakker.example.nl,Anna Bakker,anna@bakker.example.nl,\n"
    b"Visser NV,visser.example.nl,Kees Visser,kees@visser.example.nl,\n"
)


def message(
    sender: str = "Anna Bakker <Anna@Bakker.example.nl>",
    subject: str = "Offerte",
    *,
    msgid: str | None = None,
    reply_to: str | None = None,
    body: str = "Beste,\n\nGraag een offerte.\n",
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "Staff <staff@hub.example>"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))
    msg["Message-ID"] = msgid or make_msgid(domain="test.example")
    if reply_to:
        msg["In-Reply-To"] = reply_to
        msg["References"] = reply_to
    msg.set_content(body)
    return bytes(msg)


def count(db: Database, model: type, *where: object) -> int:
    with db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


@pytest.fixture
def crm(db: Database) -> None:
    import_relations(db, io.BytesIO(CONTACTS))


def test_first_sync_stores_and_links_then_resync_is_a_no_op(
    db: Database,
    settings: Settings,
    mail_account: Callable[..., MailAccount],
    crm: None,
    make_user: Callable[..., User],
) -> None:
    account = mail_account()
    with db.transaction() as s:
        bakker = s.scalars(select(Relation).where(Relation.name == "Bakker BV")).one()
        project = save_project(s, s.get_one(User, make_user().id), ProjectInput(relation_id=bakker.id, name="Dak"))
        project_id = project.id
    client = account.client()
    client.append("INBOX", message(subject="Offerte dak"))
    client.append("INBOX", message("Someone <x@unknown.example>", "Hello"))
    client.append("INBOX", message("Jan <jan@bakker.example.nl>", "From the domain"))
    client.append(
        "Sent",
        message("Staff <staff@hub.example>", "Re: offerte").replace(
            b"To: Staff <staff@hub.example>", b"To: kees@visser.example.nl"
        ),
    )
    client.logout()

    first = sync_account(db, settings, account)
    assert (first.messages, first.new, first.linked) == (4, 4, 3)
    with db.transaction() as s:
        anna = s.scalars(select(EmailParticipant).where(EmailParticipant.address_key == "anna@bakker.example.nl")).one()
        assert anna.contact_id is not None and anna.relation_id == bakker.id
        by_domain = s.scalars(
            select(EmailParticipant).where(EmailParticipant.address_key == "jan@bakker.example.nl")
        ).one()
        assert by_domain.contact_id is None and by_domain.relation_id == bakker.id
        linked = s.scalars(select(EmailProject.how).where(EmailProject.project_id == project_id)).all()
        assert sorted(linked) == ["single-open", "single-open"]  # Bakker's only open project
        assert s.get_one(Mailbox, account.mailbox_id).last_error == ""
    again = sync_account(db, settings, account)
    assert (again.messages, again.new, again.skipped_folders) == (0, 0, 2)  # STATUS said nothing changed
    assert count(db, Email) == 4


def test_new_mail_flags_expunge_and_move(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    account = mail_account()
    client = account.client()
    client.append("INBOX", message(subject="one", msgid="<one@test>"))
    sync_account(db, settings, account)
    client.append("INBOX", message(subject="two", msgid="<two@test>"))
    assert sync_account(db, settings, account).new == 1
    client.select_folder("INBOX")
    uids = client.search(["ALL"])
    client.add_flags(uids[:1], [b"\\Seen", b"\\Flagged"])
    sync_account(db, settings, account)
    with db.transaction() as s:
        flags = s.scalar(select(EmailLocation.flags).join(Email).where(Email.message_id == "<one@test>"))
        assert flags is not None and "\\Flagged" in flags and "\\Seen" in flags
    client.move(uids[1:], "Trash")
    account_trash = sync_account(db, settings, account)  # Trash is not synced: the message left the synced folders
    assert account_trash.new == 0
    assert (
        count(db, EmailLocation, EmailLocation.email_id.in_(select(Email.id).where(Email.message_id == "<two@test>")))
        == 0
    )
    assert count(db, Email) == 2  # the e-mail itself is kept
    client.select_folder("INBOX")
    client.delete_messages(client.search(["ALL"]))
    client.expunge()
    sync_account(db, settings, account)
    assert count(db, EmailLocation) == 0
    client.logout()


def test_move_between_synced_folders_keeps_one_email(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    account = mail_account(folders="INBOX\nArchive")
    client = account.client()
    client.create_folder("Archive")
    client.append("INBOX", message(subject="move me", msgid="<move@test>"))
    sync_account(db, settings, account)
    client.select_folder("INBOX")
    client.move(client.search(["ALL"]), "Archive")
    result = sync_account(db, settings, account)
    assert result.new == 0
    assert count(db, Email) == 1 and count(db, EmailLocation) == 1
    client.logout()


def test_recreated_folder_with_new_uidvalidity_gives_no_duplicates(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    account = mail_account(folders="INBOX\nProjects")
    client = account.client()
    client.create_folder("Projects")
    for i in range(3):
        client.append("Projects", message(subject=f"p{i}", msgid=f"<p{i}@test>"))
    sync_account(db, settings, account)
    client.delete_folder("Projects")
    client.create_folder("Projects")
    for i in range(4):  # the old three again, and one new
        client.append("Projects", message(subject=f"p{i}", msgid=f"<p{i}@test>"))
    result = sync_account(db, settings, account)
    assert result.new == 1
    assert count(db, Email) == 4 and count(db, EmailLocation) == 4
    client.logout()


def test_same_message_in_two_mailboxes_is_one_email(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount], crm: None
) -> None:
    first, second = mail_account(), mail_account()
    raw = message(msgid="<shared@test>")
    for account in (first, second):
        client = account.client()
        client.append("INBOX", raw)
        client.logout()
    sync_account(db, settings, first)
    assert sync_account(db, settings, second).new == 0
    assert count(db, Email) == 1 and count(db, EmailLocation) == 2
    assert count(db, EmailRelation) == 1 and count(db, EmailParticipant) == 2  # from + to, once


def test_bad_mail_is_stored_as_well_as_can_be(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    account = mail_account()
    client = account.client()
    client.append(
        "INBOX", b"From: broken\r\nSubject: caf\xe9 \r\nContent-Type: text/plain; charset=klingon\r\n\r\nh\xe9llo\r\n"
    )
    client.append("INBOX", b"Content-Type: multipart/mixed; boundary=nope\r\n\r\n--wrong\r\ngarbage")
    client.append("INBOX", message(subject="fine"))
    client.logout()
    result = sync_account(db, settings, account)
    assert result.new == 3 and result.quarantined == 0
    with db.transaction() as s:
        broken = s.scalars(select(Email).where(Email.subject == "café")).one()
        assert "no Message-ID" in broken.problems and "unknown charset" in broken.problems
        assert broken.text_body.startswith("héllo") and broken.message_key.startswith("c:") and broken.message_id == ""
    assert sync_account(db, settings, account).new == 0  # identified by content: not stored twice


def test_wrong_password_marks_the_mailbox_failing_and_backs_off(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    from hub.mail.mailboxes import MailboxInput, save_mailbox

    account = mail_account()
    with db.transaction() as s:
        box = s.get_one(Mailbox, account.mailbox_id)
        save_mailbox(
            s,
            settings.secret_key,
            MailboxInput(host=box.host, port=box.port, security="none", username=box.username, password="wrong"),
            box,
            allowed_hosts=settings.mail_allowed_hosts,
        )
    with pytest.raises(MailServerError, match="refused the user name or password"):
        sync_account(db, settings, account)
    with db.transaction() as s:
        box = s.get_one(Mailbox, account.mailbox_id)
        assert english(box.last_error) == "The server refused the user name or password."
        assert box.failures == 1 and box.failing_since is not None and box.next_attempt_at is not None
        assert "wrong" not in box.password_encrypted
    # Backing off: an unforced sync does not hammer the server.
    assert (
        sync_mailbox(
            db,
            BlobStore(settings.documents_dir),
            account.mailbox_id,
            secret_key=settings.secret_key,
            allowed_hosts=settings.mail_allowed_hosts,
        )
        is None
    )


def test_crash_between_fetch_and_store_resumes_without_loss_or_duplicates(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount], monkeypatch: pytest.MonkeyPatch
) -> None:
    import hub.mail.sync as sync_module

    monkeypatch.setattr(sync_module, "BATCH", 5)
    account = mail_account()
    client = account.client()
    for i in range(23):
        client.append("INBOX", message(subject=f"m{i}", msgid=f"<m{i}@test>"))
    client.logout()
    with pytest.raises(_Interrupt):
        sync_account(db, settings, account, fail_after_fetch=2)  # two batches commit, the third dies
    assert count(db, Email) == 10
    result = sync_account(db, settings, account)
    assert result.new == 13
    assert count(db, Email) == 23 and count(db, EmailLocation) == 23
    assert count(db, MailQuarantine) == 0


def test_servers_without_condstore_still_get_flag_changes(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount], monkeypatch: pytest.MonkeyPatch
) -> None:
    from imapclient import IMAPClient

    import hub.mail.sync as sync_module

    monkeypatch.setattr(sync_module, "FLAG_RESCAN_SECONDS", 0)
    real = IMAPClient.capabilities
    monkeypatch.setattr(
        IMAPClient, "capabilities", lambda self: tuple(c for c in real(self) if c not in (b"CONDSTORE", b"QRESYNC"))
    )
    account = mail_account()
    client = account.client()
    client.append("INBOX", message(subject="plain server", msgid="<plain@test>"))
    sync_account(db, settings, account)
    client.select_folder("INBOX")
    client.add_flags(client.search(["ALL"]), [b"\\Answered"])
    client.logout()
    sync_account(db, settings, account)
    with db.transaction() as s:
        assert "\\Answered" in (s.scalar(select(EmailLocation.flags)) or "")
