"""Telephony pages: Settings → Telephony, an upload queued for a worker, the Calls tabs, "My calls",
the unmatched calls with "link to contact", and the sources on the sync-health page; hidden = 404."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import select

from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Call, CallImport, CallSource, PhoneNumber, User
from hub.telephony.ingest import import_path
from tests.conftest import csrf_token

SAMPLES = Path(__file__).resolve().parents[1] / "telephony_samples"


def test_settings_upload_tabs_and_linking(
    client: FlaskClient, db: Database, make_user: Callable[..., User], login: Callable[..., FlaskClient]
) -> None:
    admin = make_user("Admin", admin=True)
    login(client, admin)
    page = client.get("/settings/telephony/new")
    assert page.status_code == 200
    response = client.post(
        "/settings/telephony/new",
        data={
            "csrf_token": csrf_token(page.text),
            "name": "pbx",
            "format": "asterisk-csv",
            "region": "NL",
            "timezone": "Europe/Paris",
            "poll_interval_seconds": "60",
            "missed_call_activities": "y",
            "active": "y",
            "extensions": f"100 = {admin.email}",
        },
    )
    assert response.status_code == 302, response.text
    with db.transaction() as session:
        source = session.scalars(select(CallSource)).one()
        assert [e.extension for e in source.extensions] == ["100"]
        relation = save_relation(session, RelationInput(name="Jean SA"))
        save_contact(session, relation, ContactInput(name="Jean", phones=["+33612345678"]))
        project = save_project(session, admin, ProjectInput(relation_id=relation.id, name="Deal"))
        other = save_relation(session, RelationInput(name="Other BV"))
    edit = client.get(f"/settings/telephony/{source.id}")
    assert "100 = " in edit.text
    upload = client.post(
        f"/settings/telephony/{source.id}/upload",
        data={"csrf_token": csrf_token(edit.text), "file": (io.BytesIO(b'"x"\n'), "Master.csv")},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 302
    with db.transaction() as session:
        assert session.scalars(select(CallImport.status)).all() == ["queued"]  # the worker's job now
    # the upload's state in the reader's words (it read "queued")
    assert "<td>Waiting</td>" in client.get(f"/settings/telephony/{source.id}").text
    import_path(db, source.id, SAMPLES / "asterisk_master_18.csv")
    assert "+33612345678" in client.get(f"/projects/{project.id}/calls").text
    assert "+33612345678" in client.get(f"/relations/{relation.id}/calls").text
    mine = client.get("/calls/mine")
    assert mine.text.count('<tr class="call-') == 3
    unmatched = client.get("/calls/unmatched")
    assert "+31612345678" in unmatched.text
    with db.transaction() as session:
        call = session.scalars(select(Call).where(Call.e164 == "+31612345678")).one()
    search = client.get(f"/calls/{call.id}/link?q=other")
    assert "Other BV" in search.text
    created = client.post(
        f"/calls/{call.id}/link",
        data={"csrf_token": csrf_token(search.text), "action": "new", "relation_id": str(other.id), "name": "Piet"},
    )
    assert created.status_code == 302, created.text
    with db.transaction() as session:
        assert session.get_one(Call, call.id).relation_id == other.id
        assert session.scalars(select(PhoneNumber.e164).where(PhoneNumber.relation_id == other.id)).all() == [
            "+31612345678"
        ]
    health = client.get("/mail/health")
    assert "Phone systems" in health.text and "pbx" in health.text


def test_hidden_calls_answer_404(
    client: FlaskClient, db: Database, make_user: Callable[..., User], login: Callable[..., FlaskClient]
) -> None:
    from hub.telephony.sources import SourceInput, save_source

    staff = make_user("Staff")
    with db.transaction() as session:
        source_id = save_source(session, "k", SourceInput(name="pbx", format="asterisk-csv")).id
    import_path(db, source_id, SAMPLES / "asterisk_master_18.csv")
    with db.transaction() as session:
        call_id = session.scalars(select(Call.id)).first()
    login(client, staff)
    assert client.get(f"/calls/{call_id}/link").status_code == 404  # not hers, on no relation she may see
    assert client.get("/settings/telephony").status_code in (403, 404)
    assert "+33612345678" not in client.get("/calls/unmatched").text
