"""Mail in the UI: E-mails tabs, an e-mail shown safely, privacy of personal mailboxes, attachments,
linking by hand, the .eml download, and mail that arrived before its contact."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.config import Settings
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Document, Email, EmailRelation, Relation, User
from tests.conftest import csrf_token
from tests.mail_fixtures import MailAccount, sync_account

Login = Callable[[FlaskClient, User], FlaskClient]


def hostile_message() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Olaf Bos <olaf@bos.example>"
    msg["To"] = "staff@hub.example"
    msg["Subject"] = "Prijsopgave [P-{project}]"
    msg["Message-ID"] = "<hostile@bos.example>"
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0100"
    msg.set_content("Plain text version")
    msg.add_alternative(
        '<p onclick="steal()">Hello <b>there</b></p><script>parent.document.title="pwned"</script>'
        '<img src="https://tracker.example/pixel.gif">',
        subtype="html",
    )
    msg.add_attachment(b"%PDF-1.4 quote", maintype="application", subtype="pdf", filename="offerte.pdf")
    return bytes(msg)


def test_email_is_shown_safely_and_privately(
    app: Flask,
    db: Database,
    settings: Settings,
    mail_account: Callable[..., MailAccount],
    make_user: Callable[..., User],
    login: Login,
) -> None:
    owner, colleague = make_user("Owner"), make_user("Colleague")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bos Installatie"))
        project_id = save_project(s, s.get_one(User, owner.id), ProjectInput(relation_id=relation.id, name="Dak")).id
    account = mail_account(owner_id=owner.id, sharing="colleagues")
    original = hostile_message().replace(b"{project}", b"999999")  # an unknown project token
    client = account.client()
    client.append("INBOX", original)
    client.logout()
    sync_account(db, settings, account)
    with db.transaction() as s:
        email_id = s.scalars(select(Email.id)).one()

    mine = login(app.test_client(), owner)
    page = mine.get(f"/emails/{email_id}")
    assert page.status_code == 200 and 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page.text
    body = mine.get(f"/emails/{email_id}/body")
    assert "<script" not in body.text and "onclick" not in body.text and "<b>there</b>" in body.text
    policy = body.headers["Content-Security-Policy"]
    assert "img-src 'none'" in policy and "default-src 'none'" in policy and "sandbox" in policy
    shown = mine.get(f"/emails/{email_id}/body?images=1")
    assert "img-src 'self'" in shown.headers["Content-Security-Policy"]
    assert shown.headers["Referrer-Policy"] == "no-referrer"
    # Remote images load through hub's signed proxy, never straight from the tracker.
    assert 'src="/mail/image?url=https://tracker.example/pixel.gif&amp;sig=' in shown.text
    raw = mine.get(f"/emails/{email_id}/raw")
    assert raw.data == original.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # as the server holds it

    # Personal mail: the colleague sees nothing until it is linked to something they may see.
    theirs = login(app.test_client(), colleague)
    assert theirs.get(f"/emails/{email_id}").status_code == 404
    from hub.accounts.users import create_token

    with db.transaction() as s:
        owner_api = {"Authorization": "Bearer " + create_token(s, s.get_one(User, owner.id))}
        colleague_api = {"Authorization": "Bearer " + create_token(s, s.get_one(User, colleague.id))}
    found = app.test_client().get("/api/v1/emails?message_id=<hostile@bos.example>", headers=owner_api).get_json()
    assert [e["subject"] for e in found["items"]] == ["Prijsopgave [P-999999]"]
    assert app.test_client().get("/api/v1/emails", headers=colleague_api).get_json()["items"] == []
    assert app.test_client().get(f"/api/v1/emails/{email_id}", headers=colleague_api).status_code == 404
    token = csrf_token(page.text)
    assert (
        mine.post(f"/emails/{email_id}/link", data={"csrf_token": token, "project_id": project_id}).status_code == 302
    )
    assert theirs.get(f"/emails/{email_id}").status_code == 200
    tab = theirs.get(f"/projects/{project_id}/emails").text
    assert "Prijsopgave" in tab and "📎" in tab

    # One click: the attachment becomes a document of the project.
    attachment_id = mine.get(f"/emails/{email_id}").text.split(f"/emails/{email_id}/attachments/")[1].split('"')[0]
    saved = mine.post(
        f"/emails/{email_id}/attachments/{attachment_id}/save", data={"csrf_token": token, "project_id": project_id}
    )
    assert saved.status_code == 302
    with db.transaction() as s:
        document = s.scalars(select(Document)).one()
        assert document.filename == "offerte.pdf" and document.project_id == project_id
    assert mine.get(f"/projects/{project_id}/documents/{document.id}").data == b"%PDF-1.4 quote"

    mine.post(f"/emails/{email_id}/link", data={"csrf_token": token, "project_id": project_id, "action": "unlink"})
    assert "Prijsopgave" not in theirs.get(f"/projects/{project_id}/emails").text


def test_contact_added_later_links_the_mail_that_already_arrived(
    app: Flask,
    db: Database,
    settings: Settings,
    mail_account: Callable[..., MailAccount],
    make_user: Callable[..., User],
    login: Login,
) -> None:
    account = mail_account()  # a shared mailbox
    client = account.client()
    client.append("INBOX", hostile_message().replace(b"{project}", b"1"))
    client.logout()
    sync_account(db, settings, account)
    with db.transaction() as s:
        assert s.scalars(select(EmailRelation)).all() == []
        relation = save_relation(s, RelationInput(name="Bos BV"))
        save_contact(s, relation, ContactInput(name="Olaf Bos", emails=["OLAF@bos.example"]))
        relation_id = relation.id
    with db.transaction() as s:
        assert s.scalars(select(EmailRelation.relation_id)).all() == [relation_id]
    viewer = login(app.test_client(), make_user())
    assert "Prijsopgave" in viewer.get(f"/relations/{relation_id}/emails").text


def test_mailbox_form_and_health_page(
    app: Flask, db: Database, make_user: Callable[..., User], login: Login, dovecot: object
) -> None:
    client = login(app.test_client(), make_user("Mia"))
    url = "/mail/mailboxes/new"
    bad = client.post(
        url,
        data={
            "csrf_token": csrf_token(client.get(url).text),
            "host": "imap example",
            "port": "993",
            "security": "ssl",
            "username": "mia",
            "password": "",
        },
    )
    assert bad.status_code == 400 and "Enter the password." in bad.text and 'value="mia"' in bad.text
    ok = client.post(
        url,
        data={
            "csrf_token": csrf_token(client.get(url).text),
            "host": "127.0.0.1",
            "port": "1",
            "security": "none",
            "username": "mia",
            "password": "pw-never-shown",
            "poll_interval_seconds": "300",
        },
    )
    assert ok.status_code == 302
    health = client.get("/mail/health").text
    # No worker runs in this test: the page says so instead of "OK" or a silent "waiting".
    assert "mia@127.0.0.1" in health and "Waiting for a worker: no worker is running" in health
    assert "No worker is running" in health
    assert "pw-never-shown" not in client.get("/mail/mailboxes/1").text
    with db.transaction() as s:
        assert s.scalar(select(Relation.id)) is None
    import pytest

    from hub.mail.imap import MailServerError
    from hub.mail.sync import sync_mailbox as run

    with pytest.raises(MailServerError):
        settings = app.extensions["hub.settings"]
        run(
            db,
            app.extensions["hub.blobs"],
            1,
            secret_key=settings.secret_key,
            allowed_hosts=settings.mail_allowed_hosts,
            force=True,
        )
    health = client.get("/mail/health").text
    # A non-admin is not told a closed port from a filtered one (no port scanning through the form).
    assert "Failing" in health and "Cannot connect to 127.0.0.1:1." in health


def test_mailbox_api_never_shows_the_password(app: Flask, db: Database, make_user: Callable[..., User]) -> None:
    from hub.accounts.users import create_token

    staff, other = make_user(), make_user()
    with db.transaction() as s:
        headers = {"Authorization": "Bearer " + create_token(s, s.get_one(User, staff.id))}
        other_headers = {"Authorization": "Bearer " + create_token(s, s.get_one(User, other.id))}
    client = app.test_client()
    bad = client.post(
        "/api/v1/mailboxes",
        json={"host": "imap.example.nl", "port": 70000, "security": "ssl", "username": "me", "password": "p"},
        headers=headers,
    )
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "port"
    created = client.post(
        "/api/v1/mailboxes",
        json={"host": "imap.example.nl", "port": 993, "security": "ssl", "username": "me", "password": "top-secret"},
        headers=headers,
    )
    assert created.status_code == 201 and "top-secret" not in created.text
    box = created.get_json()
    assert box["owner_id"] == staff.id and box["failing"] is False
    assert client.get(f"/api/v1/mailboxes/{box['id']}", headers=other_headers).status_code == 404
    assert client.get("/api/v1/mailboxes", headers=other_headers).get_json()["items"] == []
    assert client.post(f"/api/v1/mailboxes/{box['id']}/sync", headers=headers).status_code == 202
