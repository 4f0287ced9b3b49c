"""What a project's tabs show above their own content, read as plain values: the project's name, whether
it is closed, its relation by name, and who is responsible (whether the reader may manage it).

The E-mails, Calls and Activities tabs loaded the whole Project object with its relation for those few
values (:func:`hub.crm.projects.get_project`): a third of such a tab. This is one small query, its
statement built once per kind of reader and kept. What may change a project still loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from hub.crm.access import project_visible
from hub.crm.projects import Named
from hub.errors import NotFound
from hub.kept import kept
from hub.models import Project, Relation, User


@dataclass(frozen=True, slots=True)
class ProjectHeader:
    """The attributes the tabs' layout (projects/_layout.html) and the manage rule read of a
    :class:`Project`, under the same names."""

    id: int
    name: str
    closed: bool
    relation_id: int
    relation: Named
    responsible_user_id: int | None


# Statements per reader's rule: what hub.crm.access.project_visible gives depends on the user's id,
# whether the user is active and whether an admin, nothing else (it reads the user object for the
# last two on every call). Keyed on exactly those, a kept statement is the one that would be built.
_KEPT: dict[tuple[Any, ...], Select[Any]] = {}
KEPT_STATEMENTS = 4096


def reader_key(user: User) -> tuple[int, bool, bool]:
    """What a visibility rule of :mod:`hub.crm.access` depends on, for keying statements built with it."""
    return user.id, bool(user.is_active), bool(user.is_admin)


def _header_statement(user: User) -> Select[Any]:
    def make() -> Select[Any]:
        return (
            select(
                Project.id,
                Project.name,
                Project.closed,
                Project.relation_id,
                Relation.name.label("relation_name"),
                Project.responsible_user_id,
            )
            .join(Relation, Relation.id == Project.relation_id)
            .where(Project.id == bindparam("project_id"), project_visible(user))
        )

    return kept(_KEPT, ("header", *reader_key(user)), make, KEPT_STATEMENTS)


def project_header(session: Session, user: User, project_id: int) -> ProjectHeader:
    """The project's header if ``user`` may see it; :class:`NotFound` otherwise, as a missing one
    (the same rule and answer as :func:`hub.crm.projects.get_project`)."""
    row = session.connection().execute(_header_statement(user), {"project_id": project_id}).one_or_none()
    if row is None:
        raise NotFound(project_id)
    key, name, closed, relation_id, relation_name, responsible = row
    return ProjectHeader(key, name, bool(closed), relation_id, Named(relation_id, relation_name), responsible)
