"""What the workers store (an import's bad rows, a call file's rejected lines, a mailbox's failure) is
shown in the reader's language: the same stored text reads Dutch to a Dutch user and English to an
English one, and the CLI and logs keep the English."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.claims import try_claim
from hub.crm.import_jobs import run_import_job
from hub.db import Database
from hub.i18n import english
from hub.mail import mailboxes
from hub.mail.imap import MailServerError, connect
from hub.models import ImportJob, Mailbox, User
from tests.conftest import csrf_token
from tests.servers import free_port

Login = Callable[[FlaskClient, User], FlaskClient]
CSV = (
    b"relation,domain,contact_name,email,phone\n"
    b"Smit BV,smit.example,Tess Smit,tess@smit.example,+31 30 1234567\n"
    b",x.example,No Relation,a@x.example,\n"
    b"Smit BV,smit.example,Vera Smit,not-mail,\n"
)


def test_import_errors_read_in_the_users_language(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    dutch = make_user(language="nl")
    login(client, dutch)
    token = csrf_token(client.get("/import").text)
    response = client.post(
        "/import",
        data={"csrf_token": token, "file": (io.BytesIO(CSV), "relaties.csv")},
        content_type="multipart/form-data",
    )
    job_url = response.headers["Location"]
    run_import_job(db, app.extensions["hub.blobs"], int(job_url.rsplit("/", 1)[1]))
    page = client.get(job_url).text
    assert "regel 3: de naam van de relatie is leeg" in page
    assert "regel 4: &#39;not-mail&#39; is geen geldig e-mailadres" in page
    assert "\x1d" not in page and "\x1e" not in page  # nothing of the stored form shows

    with db.transaction() as session:
        session.get_one(User, dutch.id).language = "en"  # the same stored text, read in English
    english_page = client.get(job_url).text
    assert "line 3: the relation name is empty" in english_page
    assert "regel 3" not in english_page
    with db.transaction() as session:
        stored = session.scalars(select(ImportJob.errors)).one()
    assert english(stored).splitlines() == [
        "line 3: the relation name is empty",
        "line 4: 'not-mail' is not a valid e-mail address",
    ]


def test_a_mailbox_failure_reads_dutch_on_the_health_page(
    app: Flask, make_user: Callable[..., User], login: Login, db: Database, tmp_path: Path
) -> None:
    admin = make_user(admin=True, language="nl")
    port = free_port()  # nothing listens here
    try:
        with connect("127.0.0.1", port, "none", "u", "p", allowed_hosts="127.0.0.1"):
            pass
    except MailServerError as exc:
        failure = exc
    assert str(failure) == f"Nothing answers at 127.0.0.1 port {port} (connection refused)."
    with db.transaction() as session:
        box = Mailbox(
            name="Verkoop",
            host="127.0.0.1",
            port=port,
            security="none",
            username="u",
            password_encrypted="",
            owner_id=admin.id,
        )
        session.add(box)
        session.flush()
        box_id = box.id
    claim = try_claim(db, Mailbox, box_id)
    assert claim is not None
    mailboxes.record_failure(claim, failure.stored)
    page = login(app.test_client(), admin).get("/mail/health").text
    assert re.search(rf"Niets antwoordt op 127\.0\.0\.1 poort {port} \(verbinding geweigerd\)", page), page[-3000:]
