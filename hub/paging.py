"""Paging and sorting of list queries, shared by every list page and API list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    page: int
    per_page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def paginate(session: Session, query: Select[tuple[T]], page: int, per_page: int) -> Page[T]:
    """One page of ``query``; fetches one row more than shown to know whether a next page exists.

    No COUNT(*): on a table of hundreds of thousands of rows a count costs more than the page.
    """
    page = max(page, 1)
    rows = list(session.scalars(query.limit(per_page + 1).offset((page - 1) * per_page)))
    return Page(items=rows[:per_page], page=page, per_page=per_page, has_next=len(rows) > per_page)


def sort_clause(sorts: dict[str, Any], sort: str, default: str) -> tuple[str, list[Any]]:
    """Resolve ``sort`` ("name" or "-name") against the allowed columns, with id as tie-breaker."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in sorts:
        key, descending = default.lstrip("-"), default.startswith("-")
    column = sorts[key]
    order = [column.desc() if descending else column.asc()]
    return ("-" if descending else "") + key, order
