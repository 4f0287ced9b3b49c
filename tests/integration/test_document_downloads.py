"""A project document is a colleague's upload, with the type his browser (or his API call) claimed.
Served with that type, a .js or .css upload was a script or style sheet on hub's own address, which
the pages' Content-Security-Policy (script-src 'self') lets any injected <script src> load. Documents
now download as e-mail attachments do: such types as bytes, every download sandboxed and nosniff; a
PDF keeps its type. Through the page and the API."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.accounts.users import create_token
from hub.blobs import BlobStore
from hub.crm.documents import add_document
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.models import User

UPLOADS = [
    ("evil.js", "application/javascript", "application/octet-stream"),
    ("evil.mjs", "text/javascript; charset=utf-8", "application/octet-stream"),
    ("look.css", "text/css", "application/octet-stream"),
    ("odd.bin", "text/\u202ehtml", "application/octet-stream"),
    ("plan.pdf", "application/pdf", "application/pdf"),
    ("page.html", "text/html", "text/html"),
]


@pytest.mark.parametrize(("filename", "claimed", "served"), UPLOADS)
def test_a_document_downloads_as_an_inert_file_whatever_type_was_claimed(
    app: Flask,
    client: FlaskClient,
    db: Database,
    make_user: Callable[..., User],
    login: Callable[[FlaskClient, User], FlaskClient],
    filename: str,
    claimed: str,
    served: str,
) -> None:
    anna = make_user("Anna")
    data = b"alert(document.cookie)\n" * 10
    with db.transaction() as s:
        me = s.get_one(User, anna.id)
        relation = save_relation(s, RelationInput(name="Jansen BV"))
        project = save_project(s, me, ProjectInput(name="Oven", relation_id=relation.id))
        blobs: BlobStore = app.extensions["hub.blobs"]
        document = add_document(s, blobs, me, project, filename, io.BytesIO(data), claimed, 10**6)
        project_id, document_id = project.id, document.id
        token = create_token(s, me, "test")
    login(client, anna)
    page = client.get(f"/projects/{project_id}/documents/{document_id}")
    api = client.get(f"/api/v1/documents/{document_id}/content", headers={"Authorization": f"Bearer {token}"})
    for response in (page, api):
        assert response.status_code == 200 and response.data == data
        assert response.mimetype == served
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"].startswith("sandbox")
        assert response.headers["Content-Disposition"].startswith("attachment")
