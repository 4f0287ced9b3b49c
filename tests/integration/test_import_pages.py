"""Importing relations from a CSV file in the browser: upload, the job page, bad rows, re-import.

There is no broker in these tests: the upload's task message goes nowhere, so the test runs the
job itself with the same service function the worker calls.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from hub.crm.import_jobs import run_import_job
from hub.db import Database
from hub.models import Contact, Relation, User
from tests.conftest import csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]
CSV = (
    b"relation,domain,contact_name,email,phone\n"
    b"Smit BV,smit.example,Tess Smit,tess@smit.example,+31 30 1234567\n"
    b",x.example,No Relation,a@x.example,\n"
    b"Smit BV,smit.example,Vera Smit,vera@smit.example,12\n"
)


def _upload(client: FlaskClient, content: bytes, filename: str = "relations.csv") -> TestResponse:
    token = csrf_token(client.get("/import").text)
    return client.post(
        "/import",
        data={"csrf_token": token, "file": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
    )


def _summary(page: str) -> dict[str, str]:
    return dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]*)</dd>", page))


def _counts(db: Database) -> tuple[int, int]:
    with db.transaction() as s:
        relations = s.scalar(select(func.count()).select_from(Relation)) or 0
        contacts = s.scalar(select(func.count()).select_from(Contact)) or 0
    return relations, contacts


def test_upload_runs_and_the_job_page_shows_counts_and_bad_rows(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    login(client, make_user())
    form = client.get("/import").text
    assert "relation,domain,contact_name,email,phone" in form and 'enctype="multipart/form-data"' in form

    response = _upload(client, CSV)
    assert response.status_code == 302
    job_url = response.headers["Location"]
    job_id = int(job_url.rsplit("/", 1)[1])
    waiting = client.get(job_url).text
    assert "Waiting for a worker" in waiting and '<meta http-equiv="refresh" content="3">' in waiting

    run_import_job(db, app.extensions["hub.blobs"], job_id)
    page = client.get(job_url).text
    assert "Done" in page and 'http-equiv="refresh"' not in page
    assert _summary(page) == {"Rows read": "3", "Relations created": "1", "Contacts created": "1", "Unchanged": "0"}
    assert "line 3: the relation name is empty" in page
    assert "line 4: &#39;12&#39; is not a valid phone number" in page
    assert _counts(db) == (1, 1)
    assert "relations.csv" in client.get("/import").text  # listed under recent imports


def test_importing_the_same_file_again_changes_nothing(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    login(client, make_user())
    for _attempt in (1, 2):
        job_url = _upload(client, CSV).headers["Location"]
        run_import_job(db, app.extensions["hub.blobs"], int(job_url.rsplit("/", 1)[1]))
    page = client.get(job_url).text
    assert _summary(page) == {"Rows read": "3", "Relations created": "0", "Contacts created": "0", "Unchanged": "1"}
    assert "line 4: &#39;12&#39; is not a valid phone number" in page
    assert _counts(db) == (1, 1)


def test_bad_uploads_are_explained(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    login(client, make_user())
    no_file = client.post(
        "/import", data={"csrf_token": csrf_token(client.get("/import").text)}, content_type="multipart/form-data"
    )
    assert no_file.status_code == 400 and "Choose a CSV file" in no_file.text
    empty = _upload(client, b"")
    assert empty.status_code == 400 and "The file is empty." in empty.text

    wrong = _upload(client, b"klantnummer;mail\n1001;a@b.example\n", "wrong.csv")
    job_url = wrong.headers["Location"]
    run_import_job(db, app.extensions["hub.blobs"], int(job_url.rsplit("/", 1)[1]))
    page = client.get(job_url).text
    assert "line 1: the header row lacks the column(s): relation, contact_name" in page
    assert _counts(db) == (0, 0)


def test_a_job_is_only_shown_to_whoever_uploaded_it(app: Flask, make_user: Callable[..., User], login: Login) -> None:
    uploader = login(app.test_client(), make_user())
    job_url = _upload(uploader, CSV).headers["Location"]
    other = login(app.test_client(), make_user())
    assert other.get(job_url).status_code == 404
    assert "relations.csv" not in other.get("/import").text
    admin = login(app.test_client(), make_user("Admin", admin=True))
    assert admin.get(job_url).status_code == 200
