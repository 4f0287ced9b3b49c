"""A page after a cursor starts reading at the cursor's value, on PostgreSQL too.

The keyset condition "after (value, id)" is an OR (value beyond, or the same value with a later id),
which PostgreSQL cannot read as a range of the sorted column's index: it walked the index from the
list's start and filtered out every row before the cursor, so page 50 read 1,300 rows for 26.
hub.paging.Sort adds the range the OR implies (the column on the cursor's side, the value
included). The pages stay the same rows in the same order; deep pages read what page 1 reads.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, text

from hub.crm.projects import PROJECT_SORTS
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.models import Project
from hub.paging import keyset_page

ROWS = 1500
PER_PAGE = 25


def _world(db: Database) -> None:
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Visser BV")).id
        # Names repeat (every third row the same name as the one before): ties broken by id.
        s.execute(
            insert(Project),
            [{"relation_id": relation, "name": f"Project {i - (i % 3 == 2):05d}"} for i in range(ROWS)],
        )
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("ANALYZE project"))


def _all_pages(db: Database, sort_name: str) -> tuple[list[int], str | None]:
    """Every page by cursor, and the cursor of the last full page's last row."""
    ids: list[int] = []
    cursor: str | None = None
    deep: str | None = None
    sort = PROJECT_SORTS[sort_name.lstrip("-")].directed(sort_name.startswith("-"))
    while True:
        with db.transaction() as s:
            page = keyset_page(s, select(Project), sort_name=sort_name, sort=sort, cursor=cursor, per_page=PER_PAGE)
        ids += [p.id for p in page.items]
        if len(ids) == PER_PAGE * 50:
            deep = page.next_cursor
        if page.next_cursor is None:
            return ids, deep
        cursor = page.next_cursor


def test_pages_after_a_cursor_are_the_list_in_order_both_ways(any_db: Database) -> None:
    _world(any_db)
    with any_db.transaction() as s:
        by_name = [row.id for row in s.execute(select(Project.id).order_by(Project.name, Project.id))]
    forwards, _deep = _all_pages(any_db, "name")
    backwards, _deep = _all_pages(any_db, "-name")
    assert forwards == by_name
    assert backwards == by_name[::-1]


def test_postgresql_reads_a_deep_page_from_the_cursor(any_db: Database) -> None:
    _world(any_db)
    _ids, deep = _all_pages(any_db, "name")
    assert deep is not None
    sort = PROJECT_SORTS["name"]
    with any_db.transaction() as s:
        if s.get_bind().dialect.name != "postgresql":
            return  # SQLite reads the OR as ranges of its index itself
        from hub.paging import read_cursor

        value, last_id = read_cursor(deep, "name", sort)
        statement = select(Project.id).where(sort.after(value, last_id)).order_by(*sort.order()).limit(PER_PAGE + 1)
        compiled = statement.compile(s.get_bind(), compile_kwargs={"literal_binds": True})
        s.execute(text("SET LOCAL enable_seqscan = off"))  # a table this small would be read whole
        plan: Any = s.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}")).scalar()
    scans = _nodes(plan[0]["Plan"])
    read = sum(node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0) for node in scans)
    # 26 rows wanted; before, the walk from the start read the 1,250 before the cursor too.
    assert read <= PER_PAGE + 10, scans


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan] if "Scan" in plan["Node Type"] else []
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found
