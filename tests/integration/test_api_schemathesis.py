"""The API against its own OpenAPI document, as schemathesis probes it: generated valid and invalid
requests for every operation, on SQLite and on PostgreSQL, through the live Flask app (WSGI).

Checked for every response: no server error; the status code, content type, headers and body are
ones the document declares; 405s name the allowed methods; requests the document calls invalid are
refused. Examples per operation are bounded so the file runs in about a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.specs.openapi import checks as openapi_checks

from hub.accounts.users import UserInput, create_token, create_user
from hub.db import Database
from tests.conftest import make_settings

# Examples per operation and mode (valid, invalid): bounded so the file stays near a minute.
EXAMPLES = 5
CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
]


@pytest.fixture
def live_api(tmp_path: Path, database_url: str) -> Iterator[tuple[Any, dict[str, str]]]:
    """The app on a fresh database with an admin's token and a little of everything in it."""
    from web import create_app

    database = Database(database_url)
    app = create_app(make_settings(tmp_path / "var", database_url), database=database, TESTING=True)
    with database.transaction() as s:
        user = create_user(
            s, UserInput(email="probe@staff.example", name="Probe", password="pw-123456789", is_admin=True)
        )
        headers = {"Authorization": "Bearer " + create_token(s, user)}
    client = app.test_client()
    rid = client.post("/api/v1/relations", json={"name": "Probe BV"}, headers=headers).get_json()["id"]
    pid = client.post("/api/v1/projects", json={"relation_id": rid, "name": "Probe"}, headers=headers).get_json()["id"]
    client.post(f"/api/v1/relations/{rid}/contacts", json={"name": "Kees"}, headers=headers)
    client.post(f"/api/v1/projects/{pid}/activities", json={"title": "Call"}, headers=headers)
    yield app, headers
    database.dispose()


def test_api_conforms_to_its_document(live_api: tuple[Any, dict[str, str]]) -> None:
    app, headers = live_api
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
            def probe(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                probe()
            except Exception as error:  # every operation is probed; the failures are reported together
                failures.append(f"{operation.label} ({mode.value}): {str(error)[:1500]}")
    assert not failures, "\n\n".join(failures)
