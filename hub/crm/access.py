"""Who may see what: the one access rule, as SQL clauses every query uses.

A project (or relation) with no linked users or groups is visible to all staff. Once users and/or
groups are linked, only they, the responsible user (the owner, for a relation) and admins see it —
in pages, search, lists, the API and downloads. Others get 404, never 403, so the existence of a
hidden project is not revealed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, and_, exists, false, or_, select, true

from hub.models import Project, Relation, User
from hub.models.crm import project_groups, project_users, relation_groups, relation_users
from hub.models.users import group_members


def _linked_clause(
    user: User, object_id: Any, users_table: Table, groups_table: Table, key: str
) -> ColumnElement[bool]:
    u_col = users_table.c[key]
    g_col = groups_table.c[key]
    no_links = and_(
        ~exists().where(u_col == object_id),
        ~exists().where(g_col == object_id),
    )
    user_linked = exists().where(u_col == object_id, users_table.c.user_id == user.id)
    group_linked = exists().where(
        g_col == object_id,
        groups_table.c.group_id.in_(select(group_members.c.group_id).where(group_members.c.user_id == user.id)),
    )
    return or_(no_links, user_linked, group_linked)


def project_visible(user: User | None) -> ColumnElement[bool]:
    """SQL condition: ``Project`` rows ``user`` may see."""
    if user is None or not user.is_active:
        return false()
    if user.is_admin:
        return true()
    return or_(
        Project.responsible_user_id == user.id,
        _linked_clause(user, Project.id, project_users, project_groups, "project_id"),
    )


def relation_visible(user: User | None) -> ColumnElement[bool]:
    """SQL condition: ``Relation`` rows ``user`` may see."""
    if user is None or not user.is_active:
        return false()
    if user.is_admin:
        return true()
    return or_(
        Relation.owner_id == user.id,
        _linked_clause(user, Relation.id, relation_users, relation_groups, "relation_id"),
    )
