"""A contact's name and function longer than their columns are refused by the service with the reason,
for every caller (pages, API, the call page's "new contact", importers), on SQLite and PostgreSQL;
nothing is stored, and a contact at the limit is kept whole."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.errors import ValidationError
from hub.models import Contact


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (ContactInput(name="N" * 201), "name", "The name can be at most 200 characters."),
        (ContactInput(name="Ann", function="F" * 201), "function", "The function can be at most 200 characters."),
        (ContactInput(name="é" * 300_000), "name", "The name can be at most 200 characters."),
    ],
)
def test_too_long_is_refused_with_its_reason(any_db: Database, data: ContactInput, field: str, reason: str) -> None:
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakker BV"))
        relation_id = relation.id
    with pytest.raises(ValidationError) as refused, any_db.transaction() as s:
        save_contact(s, s.get_one(type(relation), relation_id), data)
    assert refused.value.errors == {field: reason}
    with any_db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 0


def test_at_the_limit_is_kept_whole(any_db: Database) -> None:
    name, function = "ß" * 200, "Ω" * 200
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakker BV"))
        contact_id = save_contact(s, relation, ContactInput(name=name, function=function)).id
    with any_db.transaction() as s:
        contact = s.get_one(Contact, contact_id)
        assert (contact.name, contact.function) == (name, function)
