"""The one transaction helper: commit at the end, roll back on error, after-commit work only after commit."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub.crm.relations import RelationInput, save_relation
from hub.db import Database, after_commit
from hub.models import Relation


def test_commit_rollback_and_after_commit(any_db: Database) -> None:
    ran: list[str] = []
    with any_db.transaction() as s:
        save_relation(s, RelationInput(name="Kept"))
        after_commit(s, lambda: ran.append("sent"))
        assert ran == []  # not before the commit
    assert ran == ["sent"]
    with pytest.raises(RuntimeError), any_db.transaction() as s:
        save_relation(s, RelationInput(name="Lost"))
        after_commit(s, lambda: ran.append("never"))
        raise RuntimeError("boom")
    assert ran == ["sent"]
    with any_db.transaction() as s:
        assert s.scalars(select(Relation.name)).all() == ["Kept"]
        assert s.scalar(select(func.count()).select_from(Relation)) == 1
