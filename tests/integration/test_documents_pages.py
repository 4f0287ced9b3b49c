"""Documents on a project: upload, list, download the same bytes, and the size limits."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from hub.config import Settings
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.models import Document, User
from tests.conftest import csrf_token, make_settings

Login = Callable[[FlaskClient, User], FlaskClient]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # A small limit keeps the oversized uploads small.
    return make_settings(tmp_path / "var", HUB_UPLOAD_MAX_BYTES="2K")


@pytest.fixture
def staff(make_user: Callable[..., User]) -> User:
    return make_user("Dana")


@pytest.fixture
def project_ids(db: Database, staff: User) -> tuple[int, int]:
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Docs BV"))
        author = s.get_one(User, staff.id)
        first = save_project(s, author, ProjectInput(relation_id=relation.id, name="Docs")).id
        second = save_project(s, author, ProjectInput(relation_id=relation.id, name="Other")).id
        return first, second


def _upload(client: FlaskClient, url: str, content: bytes, filename: str) -> TestResponse:
    data = {"csrf_token": csrf_token(client.get(url).text), "file": (io.BytesIO(content), filename)}
    return client.post(url, data=data, content_type="multipart/form-data")


def _documents(db: Database) -> int:
    with db.transaction() as s:
        return s.scalar(select(func.count()).select_from(Document)) or 0


def test_upload_then_download_the_same_bytes(
    client: FlaskClient, login: Login, staff: User, project_ids: tuple[int, int], db: Database
) -> None:
    project_id, other_id = project_ids
    login(client, staff)
    url = f"/projects/{project_id}/documents"
    page = client.get(url).text
    assert 'enctype="multipart/form-data"' in page and "No documents yet." in page and "At most 2.0 KB." in page
    content = "Offerte €1.250 — café\n".encode() * 20
    response = _upload(client, url, content, "../offerte 2026.txt")
    assert response.status_code == 302 and response.headers["Location"] == url
    page = client.get(url).text
    assert "offerte 2026.txt" in page and f"{len(content)} bytes" in page and "Dana" in page
    with db.transaction() as s:
        doc_id = s.scalars(select(Document.id)).one()
    assert f'href="/projects/{project_id}/documents/{doc_id}"' in page
    download = client.get(f"/projects/{project_id}/documents/{doc_id}")
    assert download.status_code == 200 and download.data == content
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert 'filename="offerte 2026.txt"' in download.headers["Content-Disposition"]
    # The document belongs to one project only.
    assert client.get(f"/projects/{other_id}/documents/{doc_id}").status_code == 404


def test_oversized_upload_is_refused_next_to_the_field(
    client: FlaskClient, login: Login, staff: User, project_ids: tuple[int, int], db: Database
) -> None:
    login(client, staff)
    url = f"/projects/{project_ids[0]}/documents"
    response = _upload(client, url, b"x" * 5000, "big.bin")
    assert response.status_code == 400
    html = response.text
    assert "The file is larger than the limit of 2.0 KB." in html
    assert html.index('id="file"') < html.index("larger than the limit") < html.index(">Upload</button>")
    assert _documents(db) == 0


def test_empty_or_missing_file_is_refused(
    client: FlaskClient, login: Login, staff: User, project_ids: tuple[int, int], db: Database
) -> None:
    login(client, staff)
    url = f"/projects/{project_ids[0]}/documents"
    assert "The file is empty." in _upload(client, url, b"", "empty.txt").text
    missing = client.post(url, data={"csrf_token": csrf_token(client.get(url).text)})
    assert missing.status_code == 400 and "Choose a file to upload." in missing.text
    assert _documents(db) == 0


def test_request_above_the_server_cap_gets_a_friendly_413(
    client: FlaskClient, login: Login, staff: User, project_ids: tuple[int, int], db: Database
) -> None:
    login(client, staff)
    url = f"/projects/{project_ids[0]}/documents"
    # Above Flask's MAX_CONTENT_LENGTH (our limit plus 1 MB) the body is not even read.
    response = _upload(client, url, b"x" * (1024 * 1024 + 4096), "huge.bin")
    assert response.status_code == 413
    assert "File too large" in response.text and "2.0 KB" in response.text
    assert _documents(db) == 0
