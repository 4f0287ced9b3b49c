"""The access rule, in the services every page and API call goes through, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hub.accounts.users import UserInput, create_user, save_group
from hub.blobs import BlobStore
from hub.crm.activities import ActivityInput, get_activity, save_activity
from hub.crm.documents import add_document, get_document
from hub.crm.projects import ProjectInput, get_project, list_projects, save_project, set_linked
from hub.crm.relations import (
    ContactInput,
    RelationInput,
    get_contact,
    get_relation,
    list_relations,
    save_contact,
    save_relation,
    set_relation_linked,
)
from hub.db import Database
from hub.errors import NotFound
from hub.models import User


def _user(db: Database, name: str, admin: bool = False) -> User:
    with db.transaction() as s:
        return create_user(
            s, UserInput(email=f"{name}@staff.example", name=name, password="long enough pw", is_admin=admin)
        )


def test_project_visibility_follows_links(any_db: Database, tmp_path: Path) -> None:
    admin, resp, linked, member, outsider = (
        _user(any_db, n, admin=(n == "admin")) for n in ("admin", "resp", "linked", "member", "outsider")
    )
    blobs = BlobStore(tmp_path / "blobs")
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Open BV"))
        open_project = save_project(s, admin, ProjectInput(relation_id=relation.id, name="Open one"))
        closed = save_project(
            s, admin, ProjectInput(relation_id=relation.id, name="Closed one", responsible_user_id=resp.id)
        )
        group = save_group(s, "Sales", [member.id])
        set_linked(s, closed, [linked.id], [group.id])
        activity = save_activity(s, admin, closed, ActivityInput(title="t"))
        doc = add_document(s, blobs, admin, closed, "a.txt", io.BytesIO(b"abc"), None, 100)
        ids = (open_project.id, closed.id, activity.id, doc.id)
    open_id, closed_id, activity_id, doc_id = ids
    with any_db.transaction() as s:
        for viewer in (admin, resp, linked, member):
            assert get_project(s, viewer, closed_id).name == "Closed one"
            names = {p.name for p in list_projects(s, viewer)[0].items}
            assert names == {"Open one", "Closed one"}
            assert get_activity(s, viewer, activity_id).id == activity_id
            assert get_document(s, viewer, doc_id).id == doc_id
        assert {p.name for p in list_projects(s, outsider)[0].items} == {"Open one"}
        assert get_project(s, outsider, open_id).name == "Open one"
        for lookup, object_id in ((get_project, closed_id), (get_activity, activity_id), (get_document, doc_id)):
            with pytest.raises(NotFound):
                lookup(s, outsider, object_id)


def test_relation_visibility_and_unlinking(any_db: Database) -> None:
    owner, linked, outsider = (_user(any_db, n) for n in ("owner", "linked", "outsider"))
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Private BV", owner_id=owner.id))
        set_relation_linked(s, relation, [linked.id], [])
        relation_id = relation.id
    with any_db.transaction() as s:
        assert get_relation(s, owner, relation_id).name == "Private BV"
        assert get_relation(s, linked, relation_id).name == "Private BV"
        assert list_relations(s, outsider, search="private")[0].items == []
        with pytest.raises(NotFound):
            get_relation(s, outsider, relation_id)
        set_relation_linked(s, get_relation(s, owner, relation_id), [], [])
    with any_db.transaction() as s:
        assert get_relation(s, outsider, relation_id).name == "Private BV"


def test_relation_and_its_contacts_follow_the_same_rule(any_db: Database) -> None:
    admin, owner, member, outsider = (
        _user(any_db, n, admin=(n == "radmin")) for n in ("radmin", "rowner", "rmember", "routsider")
    )
    with any_db.transaction() as s:
        open_relation = save_relation(s, RelationInput(name="Everyone BV"))
        closed = save_relation(s, RelationInput(name="Closed BV", owner_id=owner.id))
        set_relation_linked(s, closed, [], [save_group(s, "Accounts", [member.id]).id])
        contact_id = save_contact(s, closed, ContactInput(name="Carla Closed")).id
        open_contact_id = save_contact(s, open_relation, ContactInput(name="Olga Open")).id
        closed_id = closed.id
    with any_db.transaction() as s:
        for viewer in (admin, owner, member):
            assert {r.name for r in list_relations(s, viewer)[0].items} == {"Everyone BV", "Closed BV"}
            assert get_relation(s, viewer, closed_id).name == "Closed BV"
            assert get_contact(s, viewer, contact_id).name == "Carla Closed"
        assert [r.name for r in list_relations(s, outsider)[0].items] == ["Everyone BV"]
        assert get_contact(s, outsider, open_contact_id).name == "Olga Open"
        with pytest.raises(NotFound):
            get_contact(s, outsider, contact_id)
        with pytest.raises(NotFound):
            get_relation(s, outsider, closed_id)


def test_inactive_user_sees_nothing(any_db: Database) -> None:
    admin = _user(any_db, "admin2", admin=True)
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="X"))
        save_project(s, admin, ProjectInput(relation_id=relation.id, name="P"))
        gone = create_user(
            s, UserInput(email="gone@staff.example", name="Gone", password="long enough pw", is_active=False)
        )
    with any_db.transaction() as s:
        assert list_projects(s, gone)[0].items == []
