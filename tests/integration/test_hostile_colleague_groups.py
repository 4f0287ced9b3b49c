"""A hostile colleague and a target group's "last contact" rules: Bob sees Open BV, but not the
project on it that only Alice works on. A group "tagged Probe, contacted since ..." counted Alice's
visit and call on that project, so Bob, moving the day, learnt when Open BV was last visited, by
whom he may not know. What a group shows a user now counts only the contact moments he may see;
who is sent to is unchanged. On SQLite and PostgreSQL, in the pages and the API."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from hub.accounts.users import create_token
from hub.calendar.appointments import AppointmentInput, save_appointment
from hub.campaigns import groups
from hub.config import Settings
from hub.crm import tags
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Call, User
from hub.models.campaigns import TargetGroup
from hub.telephony.sources import SourceInput, save_source
from tests.conftest import EnglishClient, log_in, new_user

_n = itertools.count(1)


@dataclass
class World:
    admin: User
    alice: User
    bob: User
    contact: int  # Olga of Open BV, tagged Probe; her only contact moments are on Alice's project


@pytest.fixture
def site(any_db: Database, settings: Settings) -> Iterator[Flask]:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    yield app


@pytest.fixture
def world(any_db: Database) -> World:
    admin, alice, bob = new_user(any_db, "Admin", admin=True), new_user(any_db, "Alice"), new_user(any_db, "Bob")
    now = datetime.now(UTC)
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Open BV"))
        contact = save_contact(s, relation, ContactInput(name="Olga Open", emails=["olga@open.example"]))
        tags.tag_relation(s, relation, "Probe")
        project = save_project(s, s.get_one(User, admin.id), ProjectInput(relation_id=relation.id, name="Takeover"))
        set_linked(s, project, [alice.id], [])
        # Alice's visit, five days ago, on her project (which is on no relation of its own).
        start = (now - timedelta(days=5)).replace(tzinfo=None, microsecond=0)
        data = AppointmentInput(
            title="Takeover talk",
            start=start,
            end=start + timedelta(hours=1),
            tzid="UTC",
            project_id=project.id,
            staff_ids=[alice.id],
        )
        save_appointment(s, s.get_one(User, alice.id), data)
        source = save_source(s, "test-secret-key-0123456789", SourceInput(name="pbx", format="asterisk-csv"))
        s.add(
            Call(
                source_id=source.id,
                call_key="takeover-1",
                direction="outbound",
                number="0301234567",
                e164="+31301234567",
                started_at=now - timedelta(days=3),
                outcome="answered",
                user_id=alice.id,
                project_id=project.id,
            )
        )
        s.flush()
        return World(admin, alice, bob, contact.id)


def _bearer(db: Database, user: User) -> dict[str, str]:
    with db.transaction() as s:
        return {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id))}


def _group(site: Flask, db: Database, admin: User, rules: dict[str, Any]) -> int:
    """A rule-based group of relations tagged Probe, made through the API."""
    body = {"name": f"Probe {next(_n)}", "rules": {"relation_tags": ["Probe"], **rules}, "consent_required": False}
    response = site.test_client().post("/api/v1/target-groups", json=body, headers=_bearer(db, admin))
    assert response.status_code == 201, response.text
    return int(response.get_json()["id"])


def _counts(site: Flask, db: Database, user: User, group_id: int) -> tuple[int, int]:
    """What the API and the page's live count tell ``user`` of the group."""
    api = site.test_client().get(f"/api/v1/target-groups/{group_id}", headers=_bearer(db, user)).get_json()
    page = log_in(site.test_client(), user).get(f"/campaigns/groups/{group_id}/count").get_json()
    return int(api["count"]), int(page["count"])


def test_the_last_contact_rule_counts_only_moments_the_viewer_may_see(
    any_db: Database, site: Flask, world: World
) -> None:
    ten_days = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    contacted = _group(site, any_db, world.admin, {"contacted_since": ten_days})
    not_contacted = _group(site, any_db, world.admin, {"not_contacted_since": ten_days})

    # Alice (her visit and call) and the admin see them: Olga was contacted.
    for user in (world.alice, world.admin):
        assert _counts(site, any_db, user, contacted) == (1, 1), user.name
        assert _counts(site, any_db, user, not_contacted) == (0, 0), user.name
    # Bob sees Olga but none of the moments: to him she was not contacted, as with no moments at all.
    assert _counts(site, any_db, world.bob, contacted) == (0, 0)
    assert _counts(site, any_db, world.bob, not_contacted) == (1, 1)
    sample = log_in(site.test_client(), world.bob).get(f"/campaigns/groups/{not_contacted}/count").get_json()["sample"]
    assert [row["name"] for row in sample] == ["Olga Open"]

    # Who a mailing goes to does not depend on who looks: every moment counts.
    with any_db.transaction() as s:
        members = list(s.scalars(groups.members(s, s.get_one(TargetGroup, contacted))))
        assert members == [world.contact]
        assert list(s.scalars(groups.members(s, s.get_one(TargetGroup, not_contacted)))) == []


def test_an_exclusion_by_last_contact_is_judged_by_the_viewer_too(any_db: Database, site: Flask, world: World) -> None:
    """Excluding a "contacted since" group from "tagged Probe" asks the same question the other way."""
    ten_days = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    contacted = _group(site, any_db, world.admin, {"contacted_since": ten_days})
    with any_db.transaction() as s:
        admin = s.get_one(User, world.admin.id)
        everyone = groups.save_group(
            s,
            groups.GroupInput(
                name="All Probe", rules={"relation_tags": ["Probe"]}, consent_required=False, exclude_ids=[contacted]
            ),
            admin,
        ).id
    assert _counts(site, any_db, world.alice, everyone) == (0, 0)
    assert _counts(site, any_db, world.bob, everyone) == (1, 1)
