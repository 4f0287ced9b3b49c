"""Ranking a common word (more than CAP matches, hub.crm.search ``_tiered_page``): both databases
list exactly the same rows in the same order, page after page: exact names first (accents and case
aside), then names that start with the text, each by folded name and then by id, then names with a
later word starting with it, then the rest, each by id; every match once."""

from __future__ import annotations

from sqlalchemy import select

from hub.accounts.users import UserInput, create_user
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.crm.search import ANYWHERE, CAP, EXACT, PREFIX, WORD, search
from hub.db import Database
from hub.models import Contact, User
from hub.text import fold

MATCHING = 1200  # more than CAP

# Names by id order: exact (as typed, accented, upper case), starting with the text, holding it; names
# repeat, so ties are settled by id.
NAMES = ("Bakker", "Zus Bakker", "Bäkker", "Bakkerij {k:04d}", "BAKKER", "De Bakker {k:04d}", "Bakker-Jansen")


def _rank(name: str) -> int:
    folded = fold(name)
    if folded == "bakker":
        return EXACT
    if folded.startswith("bakker"):
        return PREFIX
    return WORD if " bakker" in folded or "-bakker" in folded else ANYWHERE


def test_every_page_lists_every_match_in_rank_name_and_id_order(any_db: Database) -> None:
    with any_db.transaction() as s:
        user = create_user(s, UserInput(email="rank@staff.example", name="R", password="pw-123456789"))
        relation = save_relation(s, RelationInput(name="Open BV"))
        for k in range(MATCHING):
            save_contact(s, relation, ContactInput(name=NAMES[k % len(NAMES)].format(k=k)))
        save_contact(s, relation, ContactInput(name="Jansen"))  # no match among the matches
        contacts = sorted(s.execute(select(Contact.id, Contact.name).where(Contact.name != "Jansen")).tuples())
    ranked = sorted((_rank(name), fold(name) if _rank(name) <= PREFIX else "", cid) for cid, name in contacts)
    expected = [cid for _rank_of, _key, cid in ranked]

    listed: list[int] = []
    cursor = None
    with any_db.transaction() as s:
        viewer = s.get_one(User, user.id)
        while True:
            group = search(s, viewer, "BAKKER", kinds=("contacts",), cursor=cursor, per_page=90).group("contacts")
            assert group is not None and (group.total, group.capped) == (CAP, True)
            listed += [item.id for item in group.items]
            cursor = group.next_cursor
            if cursor is None:
                break
    assert listed == expected and len(expected) == MATCHING


def test_a_page_whose_rows_went_away_is_empty_and_still_counts_the_others(any_db: Database) -> None:
    """A cursor read after the rows of its page were removed: no items, no next page, and the kind's
    count is what is left (PostgreSQL counts a later page with its rows, so an empty one on its own)."""
    with any_db.transaction() as s:
        user = create_user(s, UserInput(email="gone@staff.example", name="G", password="pw-123456789"))
        relation = save_relation(s, RelationInput(name="Open BV"))
        for k in range(12):
            save_contact(s, relation, ContactInput(name=f"Hollander {k:02d}"))
    with any_db.transaction() as s:
        viewer = s.get_one(User, user.id)
        first = search(s, viewer, "hollander", kinds=("contacts",), per_page=10).group("contacts")
        assert first is not None and first.total == 12 and first.next_cursor is not None
        cursor = first.next_cursor
    with any_db.transaction() as s:
        for contact in s.scalars(select(Contact).where(Contact.name.in_(["Hollander 10", "Hollander 11"]))):
            s.delete(contact)
    with any_db.transaction() as s:
        viewer = s.get_one(User, user.id)
        page = search(s, viewer, "hollander", kinds=("contacts",), cursor=cursor, per_page=10).group("contacts")
        assert page is not None
        assert (page.items, page.total, page.next_cursor, page.cursor) == ([], 10, None, cursor)


def test_a_text_shorter_than_a_trigram_finds_every_way_of_matching(any_db: Database) -> None:
    """Two letters: no trigram to look up, so PostgreSQL tests each row in id order; it finds by name,
    city, e-mail address, free text and free choice (accents aside) as SQLite does, ranked alike."""
    from hub.crm.choices import ChoiceInput, save_choice
    from hub.crm.projects import ProjectInput, save_project

    with any_db.transaction() as s:
        user = create_user(s, UserInput(email="short@staff.example", name="S", password="pw-123456789"))
        save_relation(s, RelationInput(name="Zwolle", city="Delden"))
        save_relation(s, RelationInput(name="De Vries BV"))
        other = save_relation(s, RelationInput(name="Xyz"))
        save_contact(s, other, ContactInput(name="Piet"))
        save_contact(s, other, ContactInput(name="Jan", emails=["jan@de.example"]))
        save_contact(s, other, ContactInput(name="Anna de Boer"))
        luxe = save_choice(s, ChoiceInput(field="free_choice_1", name="Dé luxe")).id
        for name, texts, choices in [
            ("Vloer", {}, {}),
            ("Raam", {"free_text_1": "deel"}, {}),
            ("Kozijn", {}, {"free_choice_1": luxe}),
            ("Deur", {}, {}),
        ]:
            save_project(s, user, ProjectInput(relation_id=other.id, name=name, free_texts=texts, choices=choices))
    with any_db.transaction() as s:
        results = search(s, s.get_one(User, user.id), "DÉ")
        listed = {group.kind: [item.name for item in group.items] for group in results.groups}
    assert listed == {
        "contacts": ["Anna de Boer", "Jan"],
        "relations": ["De Vries BV", "Zwolle"],
        "projects": ["Deur", "Kozijn", "Raam"],
    }
