"""Target groups by tag, on SQLite and PostgreSQL: the relation has any of, the contact has any of,
and without tags (on the contact or its relation); tags by id or by name, saved as ids so a rename
keeps the group; in the group editor (checkboxes, live count and sample) and in the API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.accounts.users import create_token
from hub.campaigns.groups import GroupError, GroupInput, members, preview, save_group
from hub.config import Settings
from hub.crm import tags
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.models import Contact, Tag, User
from hub.models.campaigns import TargetGroup
from tests.conftest import EnglishClient, csrf_token
from tests.integration.test_campaign_channels import _login, person


class World:
    """40 relations (Company 00 … 39) with two consenting contacts each (first: "Boss", second: "Staff").
    Even relations carry "Beurs 2026"; relations 0, 5, 10 … carry "Concurrent"; every first contact
    carries "Beslisser"; the second contact of Company 02 carries "Concurrent" itself. Company 04 is
    the insider's only."""

    def __init__(self, db: Database) -> None:
        self.viewer, self.insider = person(db, "Viewer"), person(db, "Insider")
        with db.transaction() as s:
            for n in range(40):
                relation = save_relation(s, RelationInput(name=f"Company {n:02d}", city="Utrecht"))
                boss = save_contact(s, relation, ContactInput(name=f"Boss {n:02d}", emails=[f"boss{n}@c.example"]))
                staff = save_contact(s, relation, ContactInput(name=f"Staff {n:02d}", emails=[f"staff{n}@c.example"]))
                for contact in (boss, staff):
                    contact.marketing_consent = True
                if n % 2 == 0:
                    tags.tag_relation(s, relation, "Beurs 2026")
                if n % 5 == 0:
                    tags.tag_relation(s, relation, "Concurrent")
                tags.tag_contact(s, boss, "Beslisser")
                if n == 2:
                    tags.tag_contact(s, staff, "Concurrent")
                if n == 4:
                    set_relation_linked(s, relation, [self.insider.id], [])
            self.ids = {t.name: t.id for t in s.scalars(select(Tag))}


def _group(db: Database, rules: dict[str, Any], viewer: User | None = None) -> tuple[int, list[str], list[str]]:
    """The count the viewer is shown (without a viewer: every member), the member names (all of them)
    and the sample's names."""
    with db.transaction() as s:
        group = save_group(s, GroupInput(name="g", rules=rules), None)
        names = list(s.scalars(select(Contact.name).where(Contact.id.in_(members(s, group))).order_by(Contact.name)))
        if viewer is None:
            return len(names), names, []
        shown = preview(s, group, s.get_one(User, viewer.id))
        return shown.count, names, [row["name"] for row in shown.sample]


def _member_count(s: Session, group: TargetGroup) -> int:
    return s.scalar(select(func.count()).select_from(members(s, group).subquery())) or 0


def test_groups_select_by_tag(any_db: Database) -> None:
    world = World(any_db)
    count, names, sample = _group(any_db, {"relation_tags": ["beurs 2026"]}, world.viewer)
    assert len(names) == 40 and names[:2] == ["Boss 00", "Boss 02"]  # more than one page of 25
    # The viewer is shown only what he may see, in the count as in the sample: Company 04 is hidden.
    assert count == 38 and "Boss 04" not in sample and len(sample) == 10

    count, names, _sample = _group(any_db, {"relation_tags": ["Beurs 2026"], "contact_tags": ["BESLISSER"]})
    assert count == 20 and all(n.startswith("Boss") for n in names)
    # Any of: a relation with either tag.
    count, _names, _sample = _group(any_db, {"relation_tags": [world.ids["Beurs 2026"], world.ids["Concurrent"]]})
    assert count == 2 * (20 + 4)  # even relations, plus 5, 15, 25, 35

    # Without: neither the contact nor its relation carries one; Staff 02 is left out by its own tag.
    count, names, _sample = _group(any_db, {"relation_tags": ["Beurs 2026"], "without_tags": ["Concurrent"]})
    left_out = {f"{who} {n:02d}" for n in (0, 10, 20, 30) for who in ("Boss", "Staff")} | {"Staff 02"}
    assert count == 40 - 9 == len(names) and not left_out & set(names)
    count, _names, _sample = _group(any_db, {"without_tags": [world.ids["Beslisser"]]})
    assert count == 40  # every second contact


def test_saved_as_ids_so_a_rename_keeps_the_group(any_db: Database) -> None:
    world = World(any_db)
    with any_db.transaction() as s:
        group = save_group(s, GroupInput(name="Fair", rules={"relation_tags": ["BEURS 2026"]}), None)
        assert f'"relation_tags":[{world.ids["Beurs 2026"]}]' in group.rules
        tags.rename_tag(s, s.get_one(Tag, world.ids["Beurs 2026"]), "Vakbeurs")
        assert _member_count(s, group) == 40
        for bad in (["Nope"], [10**6], [True], "Beurs 2026", [""], [{"id": 1}]):
            with pytest.raises(GroupError):
                save_group(s, GroupInput(name="Bad", rules={"relation_tags": bad}), None)
        # A tag deleted later selects nobody through "has any of" (never everybody).
        tags.delete_tag(s, s.get_one(Tag, world.ids["Beurs 2026"]))
        assert _member_count(s, s.get_one(TargetGroup, group.id)) == 0


# --- the editor and the API -------------------------------------------------------------------------


@pytest.fixture
def site(any_db: Database, settings: Settings) -> Iterator[Flask]:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    yield app


def test_the_group_editor_selects_by_tag(any_db: Database, site: Flask) -> None:
    world = World(any_db)
    client = _login(site, world.viewer)
    page = client.get("/campaigns/groups/new")
    assert page.status_code == 200
    beurs, concurrent = world.ids["Beurs 2026"], world.ids["Concurrent"]
    assert f'name="relation_tags" type="checkbox" value="{beurs}"' in page.text and "Beslisser" in page.text
    form = {
        "csrf_token": csrf_token(page.text),
        "name": "Fair visitors",
        "consent_required": "y",
        "relation_tags": [str(beurs)],
        "without_tags": [str(concurrent)],
    }
    counted = client.post("/campaigns/groups/new", data={**form, "action": "count"})
    # 20 even relations with 2 contacts each, less 0, 10, 20, 30 (Concurrent) and Staff 02: 31; the viewer may
    # not see Company 04: 29.
    assert counted.status_code == 200 and "29 contacts" in counted.text
    kept = rf'<input checked id="without_tags-\d+" name="without_tags" type="checkbox" value="{concurrent}">'
    assert re.search(kept, counted.text)  # the input is kept
    saved = client.post("/campaigns/groups/new", data={**form, "action": "save"})
    assert saved.status_code == 302
    group_page = client.get(saved.headers["Location"])
    assert "29 contacts" in group_page.text and "Boss 04" not in group_page.text
    assert group_page.text.count("checked") >= 3  # consent and both tags, kept

    # A tag deleted while the form was open: explained, nothing saved.
    with any_db.transaction() as s:
        tags.delete_tag(s, s.get_one(Tag, concurrent))
    refused = client.post("/campaigns/groups/new", data={**form, "name": "Again", "action": "save"})
    assert f"There is no tag {concurrent}." in refused.text
    with any_db.transaction() as s:
        assert s.scalar(select(TargetGroup.id).where(TargetGroup.name == "Again")) is None


def test_target_groups_by_tag_in_the_api(any_db: Database, site: Flask) -> None:
    world = World(any_db)
    with any_db.transaction() as s:
        headers = {"Authorization": "Bearer " + create_token(s, s.get_one(User, world.viewer.id))}
    client = site.test_client()
    created = client.post(
        "/api/v1/target-groups",
        json={
            "name": "Deciders at the fair",
            "rules": {
                "relation_tags": ["Beurs 2026", world.ids["Concurrent"]],
                "contact_tags": ["beslisser"],
                "without_tags": ["CONCURRENT"],
            },
        },
        headers=headers,
    )
    assert created.status_code == 201, created.json
    # Even relations and 5, 15, 25, 35; bosses only; not 0, 5, 10 … : 24 - 8 = 16, of which the viewer
    # may see 15 (Company 04 is the insider's only).
    assert created.json["count"] == 15 and len(created.json["sample"]) == 10
    assert created.json["rules"]["relation_tags"] == sorted([world.ids["Beurs 2026"], world.ids["Concurrent"]])
    assert created.json["rules"]["without_tags"] == [world.ids["Concurrent"]]
    assert all(row["relation"] != "Company 04" for row in created.json["sample"])

    for bad_rules, reason in (
        ({"relation_tags": ["Nope"]}, "There is no tag Nope."),
        ({"relation_tags": [999999]}, "There is no tag 999999."),
        ({"contact_tags": [True]}, "not valid"),
        ({"without_tags": "Beurs 2026"}, "not valid"),
        ({"relation_tags": ["x" * 201]}, "not valid"),
        ({"relation_tags": [2**40]}, "not valid"),
    ):
        response = client.post("/api/v1/target-groups", json={"name": "Bad", "rules": bad_rules}, headers=headers)
        assert response.status_code == 400, bad_rules
        assert reason in response.json["error"]["message"], response.json
    listed = client.get("/api/v1/target-groups", headers=headers).json["items"]
    assert [g["name"] for g in listed] == ["Deciders at the fair"]
