"""Company-defined dropdown choices: a choice in use cannot be deleted, only deactivated."""

from __future__ import annotations

import pytest

from hub.accounts.users import UserInput, create_user
from hub.crm.choices import ChoiceInput, choices_for, delete_choice, get_choice, save_choice
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.errors import NotFound, ValidationError
from hub.models import ChoiceField


def test_a_choice_in_use_cannot_be_deleted_but_can_be_deactivated(any_db: Database) -> None:
    with any_db.transaction() as s:
        user = create_user(s, UserInput(email="ann@staff.example", name="Ann", password="long enough pw"))
        relation = save_relation(s, RelationInput(name="Acme BV"))
        used = save_choice(s, ChoiceInput(field="free_choice_3", name="Gold"))
        unused = save_choice(s, ChoiceInput(field="free_choice_3", name="Silver"))
        save_project(s, user, ProjectInput(relation_id=relation.id, name="P", choices={"free_choice_3": used.id}))
        used_id, unused_id = used.id, unused.id

    with pytest.raises(ValidationError, match="in use"), any_db.transaction() as s:
        delete_choice(s, get_choice(s, used_id))
    with any_db.transaction() as s:
        delete_choice(s, get_choice(s, unused_id))
        save_choice(s, ChoiceInput(field="free_choice_3", name="Gold", active=False), get_choice(s, used_id))
    with any_db.transaction() as s:
        assert get_choice(s, used_id).name == "Gold"
        with pytest.raises(NotFound):
            get_choice(s, unused_id)
        # Dropdowns offer only active choices; the settings page lists the inactive ones too.
        assert choices_for(s, ChoiceField.free_choice_3) == []
        assert [c.name for c in choices_for(s, ChoiceField.free_choice_3, include_inactive=True)] == ["Gold"]


def test_choice_names_are_unique_per_dropdown_and_choices_stay_in_theirs(any_db: Database) -> None:
    with any_db.transaction() as s:
        won = save_choice(s, ChoiceInput(field="status", name="Won"))
        save_choice(s, ChoiceInput(field="chance", name="Won"))  # another dropdown may use the name
        won_id = won.id
    with pytest.raises(ValidationError) as caught, any_db.transaction() as s:
        save_choice(s, ChoiceInput(field="status", name="  won "))
    assert set(caught.value.errors) == {"name"}
    with pytest.raises(ValidationError) as caught, any_db.transaction() as s:
        save_choice(s, ChoiceInput(field="type", name="Won"), get_choice(s, won_id))
    assert set(caught.value.errors) == {"field"}
    with pytest.raises(ValidationError) as caught, any_db.transaction() as s:
        save_choice(s, ChoiceInput(field="colour", name=""))
    assert set(caught.value.errors) == {"field", "name"}
