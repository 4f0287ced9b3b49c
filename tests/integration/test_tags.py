"""Tags as services, on SQLite and PostgreSQL: one tag whatever the capitals or accents, names
cleaned and checked, counts only of what the user may see, and links that go with what they link."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from hub.crm import tags
from hub.crm.relations import (
    ContactInput,
    RelationInput,
    delete_contact,
    delete_relation,
    save_contact,
    save_relation,
    set_relation_linked,
)
from hub.db import Database
from hub.errors import ValidationError
from hub.models import Contact, Relation, Tag, User, contact_tags, relation_tags
from tests.integration.test_campaign_channels import person


def _links(db: Database) -> tuple[int, int]:
    with db.transaction() as s:
        return (
            s.scalar(select(func.count()).select_from(relation_tags)) or 0,
            s.scalar(select(func.count()).select_from(contact_tags)) or 0,
        )


def test_one_tag_whatever_the_capitals_accents_and_spaces(any_db: Database) -> None:
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakkerij Zoë"))
        first = tags.tag_relation(s, relation, "Beurs  2026")
        again = tags.tag_relation(s, relation, "beurs 2026, BEÜRS 2026 ,Beurs\u200b 2026")
        assert [t.id for t in again] == [first[0].id]  # the same tag, linked once
        assert [t.name for t in s.get_one(Relation, relation.id).tags] == ["Beurs 2026"]  # first spelling kept
        # Composed and decomposed accents, a NUL, tabs: cleaned to one spelling.
        tagged = tags.tag_relation(s, relation, "Cafe\u0301\x00 \t Zoë")
        assert tagged[0].name == "Café Zoë" and tags.find_tag(s, "cafe zoe") is not None
        assert s.scalar(select(func.count()).select_from(Tag)) == 2

    bad = ("", "   ", "\x00", "x" * 61)
    for text in bad:
        with any_db.transaction() as s, pytest.raises(ValidationError) as refused:
            tags.tag_relation(s, s.get_one(Relation, relation.id), text)
        assert refused.value.field == "tag"
    with any_db.transaction() as s:
        # A box with a good and a bad name adds neither: nothing half-done.
        with pytest.raises(ValidationError, match="at most 60"):
            tags.tag_relation(s, s.get_one(Relation, relation.id), "Goed, " + "y" * 61)
        assert tags.find_tag(s, "goed") is None


def test_rename_recolour_and_delete(any_db: Database) -> None:
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Acme"))
        contact = save_contact(s, relation, ContactInput(name="Ann"))
        reseller = tags.tag_relation(s, relation, "Reseller")[0]
        tags.tag_contact(s, contact, "Reseller, Beslisser")
        tags.rename_tag(s, reseller, "Wederverkoper", "#2DA44E")
        assert (reseller.name, reseller.colour) == ("Wederverkoper", "#2da44e")
        # Another spelling of its own name is fine; another tag's name is refused (no silent merge).
        tags.rename_tag(s, reseller, "wederverkoper")
        with pytest.raises(ValidationError, match="Beslisser already exists"):
            tags.rename_tag(s, reseller, "BESLISSER")
        for colour in ("red", "#12345", "#gggggg"):
            with pytest.raises(ValidationError) as refused:
                tags.rename_tag(s, reseller, "Wederverkoper", colour)
            assert refused.value.field == "colour"
        with pytest.raises(ValidationError, match="comma"):
            tags.create_tag(s, "a, b")
        with pytest.raises(ValidationError, match="already exists"):
            tags.create_tag(s, "Wederverkoper")
    assert _links(any_db) == (1, 2)
    with any_db.transaction() as s:
        tags.delete_tag(s, s.get_one(Tag, reseller.id))
    assert _links(any_db) == (0, 1)
    with any_db.transaction() as s:
        assert [t.name for t in s.get_one(Contact, contact.id).tags] == ["Beslisser"]


def test_deleting_a_relation_or_contact_removes_its_links(any_db: Database) -> None:
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Gone BV"))
        kept = save_relation(s, RelationInput(name="Kept BV"))
        ann = save_contact(s, relation, ContactInput(name="Ann"))
        bob = save_contact(s, kept, ContactInput(name="Bob"))
        for target in (relation, kept):
            tags.tag_relation(s, target, "Klant")
        for who in (ann, bob):
            tags.tag_contact(s, who, "Klant")
    assert _links(any_db) == (2, 2)
    with any_db.transaction() as s:
        delete_relation(s, s.get_one(Relation, relation.id))  # its contact goes with it
    assert _links(any_db) == (1, 1)
    with any_db.transaction() as s:
        delete_contact(s, s.get_one(Contact, bob.id))
        assert tags.untag_relation(s, s.get_one(Relation, kept.id), 10**6) is False
    assert _links(any_db) == (1, 0)
    with any_db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Tag)) == 1  # the tag itself stays


def test_counts_are_of_what_the_user_may_see(any_db: Database, make_user: Callable[..., User]) -> None:
    """30 relations with 2 contacts each carry "Beurs"; 5 of them only the insider may see. Each user's
    counts are of his own view, also per page of tags."""
    viewer, insider = person(any_db, "Viewer"), person(any_db, "Insider")
    with any_db.transaction() as s:
        for n in range(30):
            relation = save_relation(s, RelationInput(name=f"Relation {n}"))
            tags.tag_relation(s, relation, "Beurs")
            for m in range(2):
                tags.tag_contact(s, save_contact(s, relation, ContactInput(name=f"C{n}.{m}")), "Beurs, Beslisser")
            if n < 5:
                set_relation_linked(s, relation, [insider.id], [])
        tags.tag_named(s, "Unused")
    with any_db.transaction() as s:
        counts = {c.tag.name: (c.relations, c.contacts) for c in tags.tags_with_counts(s, s.get_one(User, viewer.id))}
        assert counts == {"Beurs": (25, 50), "Beslisser": (0, 50), "Unused": (0, 0)}
        counts = {c.tag.name: (c.relations, c.contacts) for c in tags.tags_with_counts(s, s.get_one(User, insider.id))}
        assert counts == {"Beurs": (30, 60), "Beslisser": (0, 60), "Unused": (0, 0)}
        page = tags.counts_of(s, s.get_one(User, viewer.id), [tags.find_tag(s, "beurs")])  # type: ignore[list-item]
        assert [(c.relations, c.contacts) for c in page] == [(25, 50)]
        assert tags.tags_with_counts(s, None)[0].relations == 0  # nobody logged in sees nothing


def test_tags_by_id_or_by_name(any_db: Database) -> None:
    with any_db.transaction() as s:
        beurs, klant = tags.tag_named(s, "Beurs"), tags.tag_named(s, "Klant")
        assert tags.ids_of(s, [beurs.id, "KLANT", "beurs"]) == sorted([beurs.id, klant.id])
        for unknown in ([10**6], ["Nope"]):
            with pytest.raises(ValidationError, match="There is no tag") as refused:
                tags.ids_of(s, unknown, "relation_tags")
            assert refused.value.field == "relation_tags"


def test_two_people_typing_the_same_new_tag_at_once_get_one_tag(pg_db: Database) -> None:
    """PostgreSQL: the second insert waits on the first's uncommitted unique key, then fails when the
    first commits; the second person's tagging then uses the first one's tag, in the same transaction."""
    import threading

    from sqlalchemy import text

    with pg_db.transaction() as s:
        first_id = save_relation(s, RelationInput(name="First BV")).id
        second_id = save_relation(s, RelationInput(name="Second BV")).id
    result: dict[str, object] = {}

    with pg_db.transaction() as first:
        tags.tag_relation(first, first.get_one(Relation, first_id), "Nieuw")  # not committed yet

        def second_person() -> None:
            try:
                with pg_db.transaction() as second:
                    result["tags"] = [
                        t.name for t in tags.tag_relation(second, second.get_one(Relation, second_id), "NIEUW")
                    ]
            except Exception as exc:  # reported by the assertion below
                result["error"] = exc

        thread = threading.Thread(target=second_person)
        thread.start()
        # Wait until the second insert really waits on the first one's row lock (asked on a connection
        # of its own: a transaction sees pg_stat_activity as it was at its first look).
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO tag%'"
        )
        for _attempt in range(10_000):
            with pg_db.engine.connect() as probe:
                if probe.scalar(text(waiting)) or not thread.is_alive():
                    break
            threading.Event().wait(0.01)
        else:
            raise AssertionError("the second insert never waited")
    thread.join()
    assert "error" not in result, result
    assert result["tags"] == ["Nieuw"]
    with pg_db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Tag)) == 1
        assert _links(pg_db) == (2, 0)


def test_replacement_characters_are_no_name(any_db: Database) -> None:
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Acme"))
        with pytest.raises(ValidationError, match="Type the name"):
            tags.tag_relation(s, relation, "\ufffd\ufffd")
        assert tags.tag_relation(s, relation, "Beurs\ufffd")[0].name == "Beurs"
