"""Saving a project refuses what a user could not have picked, on SQLite and PostgreSQL.

Each refusal names the field, so the form shows the message next to it; nothing is saved.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from hub.accounts.users import UserInput, create_user
from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.projects import ProjectInput, get_project, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.errors import ValidationError
from hub.models import Project, User


def _user(db: Database, name: str, admin: bool = False) -> User:
    with db.transaction() as s:
        return create_user(
            s, UserInput(email=f"{name}@staff.example", name=name, password="long enough pw", is_admin=admin)
        )


def _refused(db: Database, user: User, data: ProjectInput, project_id: int | None = None) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught, db.transaction() as s:
        current = get_project(s, user, project_id) if project_id else None
        save_project(s, user, data, current)
    return caught.value.errors


def _project_count(db: Database) -> int:
    with db.transaction() as s:
        return s.scalar(select(func.count()).select_from(Project)) or 0


def test_a_choice_of_another_dropdown_is_refused(any_db: Database) -> None:
    user = _user(any_db, "ann")
    with any_db.transaction() as s:
        relation_id = save_relation(s, RelationInput(name="Acme BV")).id
        won = save_choice(s, ChoiceInput(field="status", name="Won")).id
        service = save_choice(s, ChoiceInput(field="type", name="Service")).id
    errors = _refused(any_db, user, ProjectInput(relation_id=relation_id, name="P", choices={"type": won}))
    assert set(errors) == {"type"}
    errors = _refused(any_db, user, ProjectInput(relation_id=relation_id, name="P", choices={"status": 999_999}))
    assert set(errors) == {"status"}
    assert _project_count(any_db) == 0
    with any_db.transaction() as s:
        project = save_project(
            s, user, ProjectInput(relation_id=relation_id, name="P", choices={"type": service, "status": won})
        )
        assert (project.type_id, project.status_id) == (service, won)


def test_an_inactive_choice_stays_where_it_is_but_cannot_be_picked_anew(any_db: Database) -> None:
    user = _user(any_db, "ann")
    with any_db.transaction() as s:
        relation_id = save_relation(s, RelationInput(name="Acme BV")).id
        old = save_choice(s, ChoiceInput(field="status", name="Old status"))
        having = save_project(s, user, ProjectInput(relation_id=relation_id, name="Has it", choices={"status": old.id}))
        save_choice(s, ChoiceInput(field="status", name="Old status", active=False), old)
        ids = (old.id, having.id)
    old_id, having_id = ids

    # The project that has it keeps it when saved again (its form shows the inactive choice).
    with any_db.transaction() as s:
        project = get_project(s, user, having_id)
        save_project(
            s, user, ProjectInput(relation_id=relation_id, name="Has it, renamed", choices={"status": old_id}), project
        )
    with any_db.transaction() as s:
        assert get_project(s, user, having_id).status_id == old_id

    # Another project cannot pick it, neither new nor existing.
    errors = _refused(any_db, user, ProjectInput(relation_id=relation_id, name="New", choices={"status": old_id}))
    assert "no longer active" in errors["status"]
    with any_db.transaction() as s:
        other_id = save_project(s, user, ProjectInput(relation_id=relation_id, name="Other")).id
    errors = _refused(
        any_db, user, ProjectInput(relation_id=relation_id, name="Other", choices={"status": old_id}), other_id
    )
    assert set(errors) == {"status"}


def test_a_relation_the_user_cannot_see_is_refused(any_db: Database) -> None:
    owner, outsider, admin = _user(any_db, "owner"), _user(any_db, "outsider"), _user(any_db, "admin", admin=True)
    with any_db.transaction() as s:
        hidden = save_relation(s, RelationInput(name="Secret BV", owner_id=owner.id))
        set_relation_linked(s, hidden, [owner.id], [])
        hidden_id = hidden.id
    errors = _refused(any_db, outsider, ProjectInput(relation_id=hidden_id, name="Sneaky"))
    assert set(errors) == {"relation_id"}
    errors = _refused(any_db, outsider, ProjectInput(relation_id=None, name="No relation"))
    assert set(errors) == {"relation_id"}
    assert _project_count(any_db) == 0
    for allowed in (owner, admin):
        with any_db.transaction() as s:
            save_project(s, allowed, ProjectInput(relation_id=hidden_id, name=f"By {allowed.name}"))
    assert _project_count(any_db) == 2


def test_contacts_must_belong_to_the_projects_relation(any_db: Database) -> None:
    user = _user(any_db, "ann")
    with any_db.transaction() as s:
        mine = save_relation(s, RelationInput(name="Mine BV"))
        theirs = save_relation(s, RelationInput(name="Theirs BV"))
        ours = save_contact(s, mine, ContactInput(name="Our Contact")).id
        foreign = save_contact(s, theirs, ContactInput(name="Their Contact")).id
        mine_id = mine.id
    errors = _refused(any_db, user, ProjectInput(relation_id=mine_id, name="P", contact_ids=[ours, foreign]))
    assert set(errors) == {"contact_ids"}
    assert _project_count(any_db) == 0
    with any_db.transaction() as s:
        project = save_project(s, user, ProjectInput(relation_id=mine_id, name="P", contact_ids=[ours]))
        assert [c.name for c in project.contacts] == ["Our Contact"]


def test_end_before_start_and_other_bad_fields_are_all_reported_at_once(any_db: Database) -> None:
    user = _user(any_db, "ann")
    with any_db.transaction() as s:
        relation_id = save_relation(s, RelationInput(name="Acme BV")).id
    errors = _refused(
        any_db,
        user,
        ProjectInput(
            relation_id=relation_id,
            name="  ",
            start_date=date(2024, 5, 1),
            end_date=date(2024, 4, 30),
            value="a lot",
            currency="EURO",
            one_off_contact_email="not an address",
        ),
    )
    assert set(errors) == {"name", "end_date", "value", "currency", "one_off_contact_email"}
    assert "before the start date" in errors["end_date"]
    assert _project_count(any_db) == 0
    with any_db.transaction() as s:
        project = save_project(
            s,
            user,
            ProjectInput(
                relation_id=relation_id,
                name=" Roll-out ",
                start_date=date(2024, 5, 1),
                end_date=date(2024, 5, 1),
                value="12.500,50",
                currency="eur",
            ),
        )
        assert (project.name, project.value, project.currency) == ("Roll-out", Decimal("12500.50"), "EUR")
