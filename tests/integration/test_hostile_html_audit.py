"""What outsiders write, served back by hub as an attacker would want it: attachments whose declared
type is the trap, downloaded through a real HTTP server."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.serving import make_server

from hub.config import Settings
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.models import Contact, Document, Email, User
from hub.models.campaigns import Mailing
from tests.conftest import PASSWORD, csrf_token
from tests.mail_fixtures import MailAccount, sync_account

# (file name, the Content-Type line as the sender wrote it, its bytes)
ATTACHMENTS = [
    ("steal.js", b"application/javascript", b"fetch('/settings/users').then(r => r.text())"),
    ("old.js", b"text/x-javascript", b"alert(document.cookie)"),
    ("look.css", b"text/css", b"body { background: url(https://evil.example/?leak) }"),
    ("spoof.html", "text/\u202ehtml".encode(), b"<script>alert(1)</script>"),
    ("latin.bin", "text/h\u00e9ml".encode(), b"<script>alert(2)</script>"),
    ("page.svg", b"image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(3)"/>'),
    ("offerte.pdf", b"application/pdf", b"%PDF-1.4 quote"),
]


def _message() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Olaf Bos <olaf@bos.example>"
    msg["To"] = "staff@hub.example"
    msg["Subject"] = "Stukken"
    msg["Message-ID"] = "<attachments@bos.example>"
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0100"
    msg.set_content("Zie bijlagen")
    for index, (name, _type, data) in enumerate(ATTACHMENTS):
        msg.add_attachment(data, maintype="application", subtype=f"x-placeholder-{index}", filename=name)
    raw = bytes(msg)
    # The declared types go in as raw bytes: EmailMessage would not write most of them.
    for index, (_name, declared, _data) in enumerate(ATTACHMENTS):
        raw = raw.replace(f"application/x-placeholder-{index}".encode(), declared)
    return raw


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    """hub behind a real HTTP server: headers go over the wire as bytes, as in production."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join()


def test_attachments_of_any_declared_type_download_as_inert_files(
    app: Flask,
    db: Database,
    settings: Settings,
    served: str,
    mail_account: Callable[..., MailAccount],
    make_user: Callable[..., User],
) -> None:
    owner = make_user("Owner")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bos Installatie"))
        project_id = save_project(s, s.get_one(User, owner.id), ProjectInput(relation_id=relation.id, name="Dak")).id
    account = mail_account(owner_id=owner.id)
    client = account.client()
    client.append("INBOX", _message())
    client.logout()
    sync_account(db, settings, account)
    with db.transaction() as s:
        email_id = s.scalars(select(Email.id)).one()

    # Logged in through the real server's login form, as a browser is.
    browser = requests.Session()
    login_page = browser.get(f"{served}/login", timeout=30).text
    form = {"email": owner.email, "password": PASSWORD, "csrf_token": csrf_token(login_page)}
    assert browser.post(f"{served}/login", data=form, timeout=30).url.endswith("/projects")
    page = browser.get(f"{served}/emails/{email_id}", timeout=30).text
    links = list(dict.fromkeys(re.findall(rf"/emails/{email_id}/attachments/\d+(?=\")", page)))
    assert len(links) == len(ATTACHMENTS)

    types = {}
    for link, (name, _declared, data) in zip(links, ATTACHMENTS, strict=True):
        # Before: a type that is not Latin-1 made the server drop the connection (no download at all).
        response = browser.get(served + link, timeout=30)
        assert response.status_code == 200 and response.content == data, name
        assert (
            name in response.headers["Content-Disposition"] and "attachment" in response.headers["Content-Disposition"]
        )
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"].startswith("sandbox")
        types[name] = response.headers["Content-Type"].split(";")[0]
    # A script or style sheet type would make the file loadable by <script src> / <link> on hub's own
    # address, which the page CSP (script-src 'self') allows: served as bytes instead.
    for name in ("steal.js", "old.js", "look.css", "spoof.html", "latin.bin"):
        assert types[name] == "application/octet-stream", name
    assert types["offerte.pdf"] == "application/pdf" and types["page.svg"] == "image/svg+xml"

    # The whole message, the sender's bytes too, is sandboxed like its parts (it was served with the
    # page CSP, under which an HTML rendering of it would have run hub's own scripts).
    raw = browser.get(f"{served}/emails/{email_id}/raw", timeout=30)
    assert raw.status_code == 200 and raw.headers["Content-Security-Policy"].startswith("sandbox")
    assert raw.headers["X-Content-Type-Options"] == "nosniff"

    # Saved as a project document, the script keeps the inert type (the document download serves
    # what was stored).
    token = csrf_token(page)
    saved = browser.post(f"{served}{links[0]}/save", data={"csrf_token": token, "project_id": project_id}, timeout=30)
    assert saved.status_code == 200 and saved.url.endswith(f"/projects/{project_id}/documents")
    with db.transaction() as s:
        document = s.scalars(select(Document)).one()
        assert document.filename == "steal.js" and document.content_type == "application/octet-stream"
    download = browser.get(f"{served}/projects/{project_id}/documents/{document.id}", timeout=30)
    assert download.status_code == 200 and download.headers["Content-Type"].startswith("application/octet-stream")


# --- the calendar feed: what a colleague typed into an appointment ------------------------------------

NEXT_MONDAY = "2026-12-07"


def test_control_characters_and_line_breaks_typed_into_an_appointment_stay_text_in_the_feed(
    app: Flask, db: Database, make_user: Callable[..., User]
) -> None:
    from icalendar import Calendar

    from tests.conftest import log_in

    admin, anna = make_user("Admin", admin=True), make_user("Anna")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakkerij <b>Jansen</b>"))
        project_id = save_project(
            s,
            s.get_one(User, admin.id),
            ProjectInput(relation_id=relation.id, name="Oven", responsible_user_id=anna.id),
        ).id
    client = log_in(app.test_client(), anna)
    page = client.get(f"/appointments/new?project_id={project_id}")
    title = "Demo \x1b[31m<script>alert(1)</script>\x0b\x7f\x08 oven"
    description = "Regel 1\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:Injected\nUID:x\rDTSTART:19700101T000000Z\x0c"
    saved = client.post(
        f"/appointments/new?project_id={project_id}",
        data={
            "csrf_token": csrf_token(page.text),
            "title": title,
            "location": "Hal 3\x1c;ATTENDEE:mailto:eve@evil.example",
            "description": description,
            "start_date": NEXT_MONDAY,
            "start_time": "10:00",
            "end_time": "11:30",
            "timezone": "Europe/Amsterdam",
            "repeat": "",
            "interval": "1",
            "status": "planned",
        },
    )
    assert saved.status_code == 302, saved.text
    appointment = client.get(saved.headers["Location"]).text
    week = client.get(f"/calendar/week?date={NEXT_MONDAY}").text
    for shown in (appointment, week):
        assert "<script>alert(1)</script>" not in shown and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown

    settings_page = client.get("/calendar/settings")
    made = client.post("/calendar/feed-url", data={"csrf_token": csrf_token(settings_page.text), "action": "new"})
    url = re.search(r'value="(http[^"]+\.ics)"', made.text).group(1)  # type: ignore[union-attr]
    feed = client.get(url.replace("http://localhost", ""))
    assert feed.status_code == 200
    # RFC 5545 3.3.11: a TEXT value holds no control character but a tab; calendar programs that
    # hold to it refuse the line, or the whole feed, and every attendee's calendar goes stale.
    for line in feed.data.split(b"\r\n"):
        assert not re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", line), line
    (event,) = Calendar.from_ical(feed.data).walk("VEVENT")
    assert str(event["summary"]) == "Demo [31m<script>alert(1)</script> oven"
    assert str(event["description"]).splitlines()[:3] == ["Regel 1", "END:VEVENT", "BEGIN:VEVENT"]
    assert str(event["location"]) == "Hal 3;ATTENDEE:mailto:eve@evil.example"
    assert "attendee" not in event or all("evil" not in str(a) for a in event.get("attendee", []))


# --- a marketer's templates written to bring hub down --------------------------------------------------

# Hours of CPU for a recipient named Person7, nothing for the sample recipient the editor checks with.
ONE_RECIPIENT_BOMB = (
    "{% if contact.first_name == 'Person7' %}{% for a in 'x' * 3000 %}{% for b in 'x' * 3000 %}"
    "{% endfor %}{% endfor %}{% endif %}<p>Hallo {{ contact.first_name }}</p>"
)


def test_a_mailing_template_that_would_exhaust_the_server_is_explained_not_run(
    tmp_path: Path,
    db: Database,
    client: FlaskClient,
    make_user: Callable[..., User],
    smtp_server: Any,
) -> None:
    from hub.models.campaigns import MailingRecipient
    from tests.conftest import log_in
    from tests.integration.test_campaign_sending import mailing_settings, make_mailing, run_to_end, seed_contacts

    seed_contacts(db, 30)
    mailing_id = make_mailing(db, scheduled=False)
    log_in(client, make_user("Marketer"))
    page = client.get(f"/campaigns/mailings/{mailing_id}")
    with db.transaction() as s:
        group_id = s.get_one(Mailing, mailing_id).target_group_id
    form = {
        "target_group_id": str(group_id),
        "csrf_token": csrf_token(page.text),
        "name": "Spring",
        "subject": "News",
        "from_name": "News",
        "from_address": "news@hub.example",
        # Folded into a 100 GB constant while compiling: the save request died (or took the server).
        "html_body": "<p>{{ ('x' * 10**11)|length }}</p>",
        "text_body": "Hallo",
    }
    saved = client.post(f"/campaigns/mailings/{mailing_id}", data=form)
    assert saved.status_code == 200 and "more than any mailing needs" in saved.text
    assert "{{ (&#39;x&#39; * 10**11)|length }}" in saved.text  # the input is kept to correct
    with db.transaction() as s:
        assert "10**11" not in s.get_one(Mailing, mailing_id).html_body
    # Nested deeper than Jinja's compiler recurses: that was a 500.
    nested = client.post(
        f"/campaigns/mailings/{mailing_id}", data={**form, "text_body": "{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}"}
    )
    assert nested.status_code == 200 and "more than any mailing needs" in nested.text

    # A bomb for one recipient passes the editor's check (it renders for the sample recipient) …
    assert (
        client.post(f"/campaigns/mailings/{mailing_id}", data={**form, "html_body": ONE_RECIPIENT_BOMB}).status_code
        == 302
    )
    with db.transaction() as s:
        person7 = s.scalars(select(Contact.id).where(Contact.name == "Person7 R")).one()
    preview = client.get(f"/campaigns/mailings/{mailing_id}/preview?contact={person7}")
    assert preview.status_code == 200 and "more than any mailing needs" in preview.text

    # … and costs that recipient his message, not the worker its afternoon.
    token = csrf_token(client.get(f"/campaigns/mailings/{mailing_id}").text)
    assert (
        client.post(f"/campaigns/mailings/{mailing_id}/schedule", data={"csrf_token": token, "send_at": ""}).status_code
        == 302
    )
    run_to_end(db, mailing_settings(tmp_path, db, smtp_server.url), mailing_id)
    with db.transaction() as s:
        rows = {
            r.address: r for r in s.scalars(select(MailingRecipient).where(MailingRecipient.mailing_id == mailing_id))
        }
    assert rows["r7@example.test"].status == "failed" and "more than any mailing needs" in rows["r7@example.test"].error
    assert sorted(smtp_server.recipients()) == sorted(address for address in rows if address != "r7@example.test")


def test_the_preview_shows_a_marketers_html_only_inside_a_sandboxed_frame(
    db: Database, client: FlaskClient, make_user: Callable[..., User]
) -> None:
    from tests.conftest import log_in
    from tests.integration.test_campaign_sending import make_mailing, seed_contacts

    (contact_id,) = seed_contacts(db, 1)
    with db.transaction() as s:
        s.get_one(Contact, contact_id).name = "<img src=x onerror=alert(2)> Eve"
    html = (
        '<p>{{ contact.name }}</p>"></iframe><script>alert(1)</script><iframe srcdoc="'
        '<form action="/settings/users"><input name=x></form><a href="javascript:alert(3)">x</a>'
    )
    mailing_id = make_mailing(db, html=html, scheduled=False)
    log_in(client, make_user("Admin", admin=True))
    page = client.get(f"/campaigns/mailings/{mailing_id}/preview?contact={contact_id}")
    assert page.status_code == 200
    # One frame, sandboxed without scripts, forms, popups or its own origin; the HTML only in its
    # srcdoc, escaped, so nothing of it is markup of the page itself.
    frames = re.findall(r"<iframe[^>]*>", page.text)
    assert len(frames) == 1 and ' sandbox="" ' in frames[0]
    srcdoc = re.search(r'srcdoc="([^"]*)"', frames[0])
    assert srcdoc is not None and "&lt;script&gt;alert(1)" in srcdoc.group(1)
    assert "&amp;lt;img src=x onerror=alert(2)&amp;gt; Eve" in srcdoc.group(1)  # the name escaped twice: text
    outside = page.text.replace(frames[0], "")
    assert "<script>alert" not in outside and '<form action="/settings' not in outside
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]  # (a srcdoc frame inherits it)
