"""PostgreSQL reads the names that start with the text as a range of migration 0020's btree on
``hub_fold(name) COLLATE "C"`` (hub.crm.search ``_tiers``): every page lists exactly what the
ranking lists by its definition (exact, starting with the text, a later word, the rest; the first
two by folded name in code point order, then by id; the others by id), every match once, for
contacts, relations and projects, with accents, and texts whose last character is one the range's
end has to step over (LIKE's wildcards, the last ASCII letter, a character beyond the BMP)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from psycopg import sql
from sqlalchemy import event, func, select

from hub.accounts.users import UserInput, create_user
from hub.crm.search import ANYWHERE, CAP, EXACT, PREFIX, WORD, _past_prefix, search
from hub.db import Database
from hub.models import Contact, Project, Relation, User
from hub.text import fold

# More matches than CAP (so pages come tier by tier, from the index), most holding the text and
# fewer starting with it; "Bakkes" and "bakkerij" after "bakker": just past the range's end and in it.
BAKKER = (
    "De Bakker {k:03d}",
    "Zus bakker-{k:03d}",
    "Van den Bakkerij {k:03d}",
    "Oudbakker {k:03d}",
    "Ten Bäkker {k:03d}",
    "Bakker",
    "De Bakker {k:03d}",
    "Bäkker {k:03d}",
    "Müller-Bakker {k:03d}",
    "BAKKERIJ {k:03d}",
    "Bakkes {k:03d}",
    "Bakkes",
)
MATCHING = 260
MODELS: dict[str, Any] = {"contacts": Contact, "relations": Relation, "projects": Project}
KINDS = tuple(MODELS)


def _rank(folded: str, text: str) -> int:
    if folded == text:
        return EXACT
    if folded.startswith(text):
        return PREFIX
    return WORD if f" {text}" in folded or f"-{text}" in folded else ANYWHERE


def _expected(s: Any, model: Any, text: str) -> list[int]:
    """The ids matching ``text`` by name in the ranking's order, from the folded names as PostgreSQL
    folds them (Python compares code points, as the "C" collation does)."""
    rows = s.execute(select(model.id, func.hub_fold(model.name))).tuples()
    ranked = sorted(
        (_rank(folded, text), folded if _rank(folded, text) <= PREFIX else "", row_id)
        for row_id, folded in rows
        if text in folded
    )
    return [row_id for _rank_of, _key, row_id in ranked]


def _listed(database: Database, user_id: int, kind: str, text: str, per_page: int) -> list[int]:
    listed: list[int] = []
    cursor = None
    with database.transaction() as s:
        viewer = s.get_one(User, user_id)
        while True:
            group = search(s, viewer, text, kinds=(kind,), cursor=cursor, per_page=per_page).group(kind)
            assert group is not None and (group.total, group.capped) == (CAP, True)
            listed += [item.id for item in group.items]
            cursor = group.next_cursor
            if cursor is None:
                return listed


def _add_named(s: Any, user: User, names: list[str]) -> None:
    """A contact, a relation and a project of each name (one relation holds the contacts and projects)."""
    holder = Relation(kind="company", name="Houder", search_name="houder")
    s.add(holder)
    s.flush()
    for name in names:
        s.add(Contact(relation_id=holder.id, name=name))
        s.add(Relation(kind="company", name=name, search_name=fold(name)))
        s.add(Project(relation_id=holder.id, name=name, responsible_user_id=user.id))
    s.flush()


def test_every_page_is_the_ranking_of_each_kind_read_from_the_name_range(pg_db: Database) -> None:
    with pg_db.transaction() as s:
        user = create_user(s, UserInput(email="prefix@staff.example", name="P", password="pw-123456789"))
        _add_named(s, user, [BAKKER[k % len(BAKKER)].format(k=k) for k in range(MATCHING)] + ["Jansen"])
        expected = {kind: _expected(s, model, "bakker") for kind, model in MODELS.items()}
    for kind in KINDS:
        listed = _listed(pg_db, user.id, kind, "BÄKKER", per_page=40)
        assert listed == expected[kind], kind
        assert len(listed) > CAP
        # Each tier is there, and most matches only hold the text.
        with pg_db.transaction() as s:
            model = MODELS[kind]
            names = dict(s.execute(select(model.id, func.hub_fold(model.name))).tuples().all())
        ranks = [_rank(names[row_id], "bakker") for row_id in listed]
        assert ranks == sorted(ranks) and set(ranks) == {EXACT, PREFIX, WORD, ANYWHERE}
        assert ranks.count(PREFIX) < ranks.count(WORD) + ranks.count(ANYWHERE)
        assert not any(names[row_id].startswith("bakkes") for row_id in listed)


# Texts whose last character the range's end steps over, with names that start with the text,
# names just past the end, and names that only hold the text.
ODD = {
    "100%": ("100% {k:03d}", "100%{k:03d}", "Voor 100% {k:03d}", "100& {k:03d}", "1000 {k:03d}"),
    "a_b": ("a_b{k:03d}", "A_B {k:03d}", "ka_b {k:03d}", "a_c {k:03d}", "axb {k:03d}"),
    "z": ("Z{k:03d}", "Zé {k:03d}", "De Zee {k:03d}", "{{z}} {k:03d}", "y {k:03d}"),
    "Muller": ("Müller {k:03d}", "MULLER{k:03d}", "Van Müller {k:03d}", "Mulles {k:03d}", "Schmüller {k:03d}"),
    "😀": ("😀 {k:03d}", "Feest 😀 {k:03d}", "x😀 {k:03d}", "😁 {k:03d}", "😀😀 {k:03d}"),
}


@pytest.mark.parametrize("text", list(ODD))
def test_a_text_ending_in_an_odd_character_finds_the_same_rows_in_the_same_order(pg_db: Database, text: str) -> None:
    per_name = 50  # each pattern that holds the text: more than CAP in all
    with pg_db.transaction() as s:
        user = create_user(s, UserInput(email="odd@staff.example", name="O", password="pw-123456789"))
        names = [pattern.format(k=k) for pattern in ODD[text] for k in range(per_name)]
        _add_named(s, user, names)
        expected = _expected(s, Contact, fold(text))
    assert len(expected) > CAP
    assert _listed(pg_db, user.id, "contacts", text, per_page=30) == expected


def _generic_plan(connection: Any, statement: str, parameters: dict[str, Any]) -> list[str]:
    """``statement``'s plan for any values of its parameters (a generic plan, as PostgreSQL may use for
    a statement psycopg prepares): ``%(name)s`` made ``$n``, prepared, explained with the values."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    prepared = re.sub(r"%\((\w+)\)s", number, statement).replace("%%", "%")
    raw = connection.connection.driver_connection
    raw.execute(f"PREPARE search_tiers AS {prepared}")
    raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    values = sql.SQL(", ").join(sql.Literal(parameters[name]) for name in names)
    try:
        return [row[0] for row in raw.execute(sql.SQL("EXPLAIN EXECUTE search_tiers ({})").format(values))]
    finally:
        raw.execute("DEALLOCATE search_tiers")


def test_the_names_that_start_with_the_text_are_a_range_of_the_index(pg_db: Database) -> None:
    """The tiers' statement finds the names that start with the text as a range of migration 0020's
    index (its expression and collation are the index's), whatever the text: in a generic plan too,
    where ``LIKE $1`` has no prefix PostgreSQL could make a range of (it read the whole index in
    order, checking each name)."""
    with pg_db.transaction() as s:
        user = create_user(s, UserInput(email="plan@staff.example", name="P", password="pw-123456789"))
        _add_named(s, user, [BAKKER[k % len(BAKKER)].format(k=k) for k in range(MATCHING)])
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "search_head" in statement:
            statements.append((statement, parameters))

    index = {"contacts": "ix_contact_fold_name_c", "relations": "ix_relation_fold_name_c"}
    index["projects"] = "ix_project_fold_name_c"
    with pg_db.transaction() as s:
        viewer = s.get_one(User, user.id)
        event.listen(pg_db.engine, "before_cursor_execute", seen)
        try:
            for kind in KINDS:
                search(s, viewer, "bakker", kinds=(kind,))
        finally:
            event.remove(pg_db.engine, "before_cursor_execute", seen)
        assert len(statements) == len(KINDS)
        # A table this small may be read whole, whatever its indexes: asked here is whether the
        # index serves the range.
        s.connection().exec_driver_sql("SET LOCAL enable_seqscan = off")
        for kind, (statement, parameters) in zip(KINDS, statements, strict=True):
            plan = _generic_plan(s.connection(), statement, parameters)
            at = next(i for i, line in enumerate(plan) if f"Index Scan using {index[kind]}" in line)
            condition = plan[at + 1]
            assert "Index Cond:" in condition and ">=" in condition and " < " in condition, "\n".join(plan)
        s.rollback()


def test_the_end_of_the_range_steps_past_the_last_character() -> None:
    assert _past_prefix("bakker") == "bakkes"
    assert _past_prefix("z") == "{"
    assert _past_prefix("100%") == "100&"
    assert _past_prefix("😀") == "😁"
    # Past the surrogates (no stored text holds one), and past the greatest code point.
    assert _past_prefix("a\ud7ff") == "a\ue000"
    assert _past_prefix("ab\U0010ffff") == "ac"
