"""Who may see what, and who may change who sees what: the one access rule, as SQL clauses every
query uses, and the one rule for managing access.

Seeing. A relation with no linked users or groups is visible to all staff. Once users and/or groups
are linked, only they, its owner and admins see it. A project follows the same rule with its
responsible user in the owner's place, **and** is visible only to those who may also see its
relation: restricting a relation restricts its projects, contacts and the mail on them. Everything
else hangs off a project or a relation and follows it. Others get 404, never 403, so the existence of
a hidden object is not revealed — in pages, search, lists, the API and downloads.

Managing. Changing who sees an object (its linked users and groups), who is responsible for a project
or owns a relation, and deleting it, is for the responsible user (project) or owner (relation) and
for admins. An object with nobody responsible (or no owner) is managed by admins only: if any
colleague who sees it could manage it, anyone could make himself responsible and then lock the others
out or delete it — the very thing this rule is for. There is always an admin (an admin cannot take
away his own rights), and the responsible user of an orphaned project is set by one.

Versions. Projects, relations, contacts, activities and the notepad carry a version number; a save
based on an older version is refused (:class:`StaleVersion`) instead of silently overwriting what
someone else saved in between.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    false,
    or_,
    select,
    true,
    union,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import False_, True_
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.util import HasMemoized

from hub.models import Contact, Project, Relation, User
from hub.models.crm import project_groups, project_users, relation_groups, relation_users
from hub.models.users import group_members


def _linked_clause(
    user: BindParameter[int],
    object_id: Any,
    users_table: Table,
    groups_table: Table,
    key: str,
    *,
    per_row: bool = False,
) -> ColumnElement[bool]:
    u_col = users_table.c[key]
    g_col = groups_table.c[key]
    if per_row:  # (see asked_per_row: otherwise PostgreSQL hashes every object's links first)
        no_links = and_(
            ~asked_per_row(select(u_col).where(u_col == object_id)),
            ~asked_per_row(select(g_col).where(g_col == object_id)),
        )
    else:
        no_links = and_(
            ~exists().where(u_col == object_id),
            ~exists().where(g_col == object_id),
        )
    user_linked = exists().where(u_col == object_id, users_table.c.user_id == user)
    group_linked = exists().where(
        g_col == object_id,
        groups_table.c.group_id.in_(select(group_members.c.group_id).where(group_members.c.user_id == user)),
    )
    return or_(no_links, user_linked, group_linked)


def _relation_rule(user: BindParameter[int], relation: Any) -> ColumnElement[bool]:
    return or_(
        relation.owner_id == user,
        _linked_clause(user, relation.id, relation_users, relation_groups, "relation_id"),
    )


class _Rule(ColumnElement[bool]):
    """One user's visibility rule as a single SQL element that renders as its whole clause.

    Why: SQLAlchemy finds a statement's compiled SQL in its cache by a key it computes from the
    statement on every execution, walking every element. The rule's dozen EXISTS made that walk cost
    more than running the query (0.3 ms a query on a list page). This element's key is only its kind
    and its one bound parameter, the user's id: the rule's SQL is the same for every user, only that
    value differs, and every place in the clause uses that one parameter object, so a cached
    statement compiled for one user runs with the next user's id (SQLAlchemy substitutes the
    parameters the key collected, as it does for any literal). The clause itself stays a child for
    copying and adapting (``_traverse_internals``), so the ORM can still rewrite it.
    """

    __visit_name__ = "hub_visibility_rule"
    type = Boolean()
    _traverse_internals = [
        ("kind", InternalTraversal.dp_string),
        ("user", InternalTraversal.dp_clauseelement),
        ("clause", InternalTraversal.dp_clauseelement),
    ]
    # The tables it filters are in the key too: the rule adapted to an alias renders other SQL.
    _cache_key_traversal = [
        ("kind", InternalTraversal.dp_string),
        ("user", InternalTraversal.dp_clauseelement),
        ("_from_objects", InternalTraversal.dp_fromclause_ordered_set),
    ]

    def __init__(self, kind: str, user: BindParameter[int], clause: ColumnElement[bool]) -> None:
        self.kind, self.user, self.clause = kind, user, clause

    @HasMemoized.memoized_attribute
    def _from_objects(self) -> list[Any]:  # forgotten by a copy (an adapted rule), so found anew
        return self.clause._from_objects

    def self_group(self, against: Any = None) -> ColumnElement[bool]:
        return self  # always rendered in parentheses


@compiles(_Rule)
def _render_rule(element: _Rule, compiler: Any, **kw: Any) -> str:
    return "(" + str(compiler.process(element.clause, **kw)) + ")"


def _user_parameter(user_id: int) -> BindParameter[int]:
    # Typed, so comparing a column with it uses this very object (an untyped one would be copied).
    return bindparam("visible_to", user_id, type_=Integer(), unique=True)


# Each user's rules are built once and reused: building one (an alias, a dozen EXISTS) cost about as
# much as running the query it goes into. Only the id is in them: who is linked, group membership and
# owners are read by the database on every query, so a change of access counts from the next query
# on; whether the user is an admin or still active is asked of the user object on every call, below.
# SQL expressions are immutable, so one rule may serve many statements and threads at once.
_RULES_KEPT = 4096


@functools.lru_cache(maxsize=_RULES_KEPT)
def _project_rule(user_id: int) -> _Rule:
    user = _user_parameter(user_id)
    return _Rule("project", user, _project_clause(user, per_row=False))


def _project_clause(user: BindParameter[int], *, per_row: bool) -> ColumnElement[bool]:
    """The project rule's clause; ``per_row``: its relation's part and its look-ups of the links
    every project has asked per row (asked_per_row), for a list read a page at a time."""
    # An alias: the queries this clause goes into often join Relation themselves.
    its_relation = aliased(Relation)
    relation_ok: ColumnElement[bool]
    if per_row:
        relation_ok = asked_per_row(
            select(its_relation.id).where(its_relation.id == Project.relation_id, _relation_rule(user, its_relation))
        )
    else:
        relation_ok = exists().where(its_relation.id == Project.relation_id, _relation_rule(user, its_relation))
    return and_(
        relation_ok,
        or_(
            Project.responsible_user_id == user,
            _linked_clause(user, Project.id, project_users, project_groups, "project_id", per_row=per_row),
        ),
    )


@functools.lru_cache(maxsize=_RULES_KEPT)
def _relation_visible_rule(user_id: int) -> _Rule:
    user = _user_parameter(user_id)
    return _Rule("relation", user, _relation_rule(user, Relation))


def project_visible(user: User | None) -> ColumnElement[bool]:
    """SQL condition: ``Project`` rows ``user`` may see (its own rule and its relation's)."""
    if user is None or not user.is_active:
        return false()
    if user.is_admin:
        return true()
    return _project_rule(user.id)


def relation_visible(user: User | None) -> ColumnElement[bool]:
    """SQL condition: ``Relation`` rows ``user`` may see."""
    if user is None or not user.is_active:
        return false()
    if user.is_admin:
        return true()
    return _relation_visible_rule(user.id)


def asked_per_row(query: Select[Any]) -> ColumnElement[bool]:
    """EXISTS (``query``), a look-up correlated to the row being read, asked of each row as it is read.

    PostgreSQL turns a correlated EXISTS into a hashed set of every match when it expects to ask
    it of many rows, and expects so of a list walking an index for its first page (it plans the
    walk as if read to the end): the API's call list hashed the rule of all 30,000 relations to
    show 25 calls (61 of its 68 ms); its e-mail list the rules of every linked project and relation
    (350 ms). OFFSET 0 is PostgreSQL's documented fence against that rewrite: the look-up runs per
    row, through its indexes, and a page costs what its rows cost. SQLite asks an EXISTS per row
    anyway; its SQL stays as it was."""
    return query.suffix_with("OFFSET 0", dialect="postgresql").exists()


# --- the same rule, asked of very many rows -------------------------------------------------------------
# A search that finds a common name thousands of times asked the whole rule (a relation look-up and
# four EXISTS) of every row found: three times what finding them cost. These ask it only where it can
# say no. By the rule's first case, an object nobody is linked to, on a relation nobody is linked to,
# is seen by every active staff member, which a look-up in the (few) linked ids settles; the whole
# rule is asked of the rest. The answers are relation_visible's and project_visible's
# (tests/integration/test_search_index.py holds search to them for every kind of link).


def _linked_relations() -> Any:
    return union(select(relation_users.c.relation_id), select(relation_groups.c.relation_id))


def _linked_projects() -> Any:
    return union(select(project_users.c.project_id), select(project_groups.c.project_id))


def _same_for_every_row(rule: ColumnElement[bool]) -> bool:
    """Whether the rule is a constant (an admin sees all, an inactive user nothing)."""
    return isinstance(rule, True_ | False_)


def relation_visible_among_many(user: User | None) -> ColumnElement[bool]:
    """:func:`relation_visible`, for a query that asks it of very many rows."""
    rule = relation_visible(user)
    return rule if _same_for_every_row(rule) else _relation_many_rule(user.id)  # type: ignore[union-attr]


def contact_visible_among_many(user: User | None) -> ColumnElement[bool]:
    """A contact is visible with its relation: :func:`relation_visible` of it, for very many rows."""
    rule = relation_visible(user)
    return rule if _same_for_every_row(rule) else _contact_many_rule(user.id)  # type: ignore[union-attr]


def project_visible_among_many(user: User | None) -> ColumnElement[bool]:
    """:func:`project_visible`, for a query that asks it of very many rows."""
    rule = project_visible(user)
    return rule if _same_for_every_row(rule) else _project_many_rule(user.id)  # type: ignore[union-attr]


# Built once per user and keyed as cheaply as the rules they restate (see _Rule): built anew, with
# their unions of linked ids, keying them cost a search more than a millisecond a query.


@functools.lru_cache(maxsize=_RULES_KEPT)
def _relation_many_rule(user_id: int) -> ColumnElement[bool]:
    rule = _relation_visible_rule(user_id)
    return _Rule("relation_many", rule.user, or_(Relation.id.not_in(_linked_relations()), rule))


@functools.lru_cache(maxsize=_RULES_KEPT)
def _contact_many_rule(user_id: int) -> ColumnElement[bool]:
    rule = _relation_visible_rule(user_id)
    clause = or_(
        Contact.relation_id.not_in(_linked_relations()), exists().where(Relation.id == Contact.relation_id, rule)
    )
    return _Rule("contact_many", rule.user, clause)


@functools.lru_cache(maxsize=_RULES_KEPT)
def _project_many_rule(user_id: int) -> ColumnElement[bool]:
    rule = _project_rule(user_id)
    unlinked = and_(Project.relation_id.not_in(_linked_relations()), Project.id.not_in(_linked_projects()))
    return _Rule("project_many", rule.user, or_(unlinked, rule))


def project_visible_walking(user: User | None) -> ColumnElement[bool]:
    """:func:`project_visible`, for a query that walks very many rows in order to skip them (a list
    opened at an OFFSET, by an old ?page=N link): the rule's first case asked first, as four indexed
    look-ups a row (nobody linked to the project or its relation), the whole rule only of the rest.
    Skipping 1,200 rows took 5.5 ms with the rule alone, 3.5 ms so (SQLite); the NOT IN form of
    :func:`project_visible_among_many` suits a search's few thousand rows, not an ordered walk."""
    rule = project_visible(user)
    return rule if _same_for_every_row(rule) else _project_walking_rule(user.id)  # type: ignore[union-attr]


def project_visible_listing(user: User | None) -> ColumnElement[bool]:
    """:func:`project_visible` for a list read a page at a time along an index (keyset pages): the
    same rows, each row's rule asked as the row is read. PostgreSQL plans such a walk as if it read
    the whole table and so worked out every project's links first (a hash of the whole project-user
    table, 40,000 rows at 200,000 projects, for every page of 25); SQLite's SQL is the same as
    :func:`project_visible`'s. Counts and searches over many rows keep :func:`project_visible`."""
    rule = project_visible(user)
    return rule if _same_for_every_row(rule) else _project_listing_rule(user.id)  # type: ignore[union-attr]


@functools.lru_cache(maxsize=_RULES_KEPT)
def _project_listing_rule(user_id: int) -> _Rule:
    user = _user_parameter(user_id)
    return _Rule("project_per_row", user, _project_clause(user, per_row=True))


@functools.lru_cache(maxsize=_RULES_KEPT)
def _project_walking_rule(user_id: int) -> ColumnElement[bool]:
    # The rule asked per row: inside this OR PostgreSQL made its relation part a hashed set of every
    # relation's rule (78 of an old ?page=50 link's 135 ms at 30,000 relations).
    rule = _project_listing_rule(user_id)
    # Asked per row too: a walk asks them of the rows it passes, not of every project (hashing the
    # links of every project first was most of a walk's time on PostgreSQL).
    nobody_linked = and_(
        ~asked_per_row(select(project_users.c.project_id).where(project_users.c.project_id == Project.id)),
        ~asked_per_row(select(project_groups.c.project_id).where(project_groups.c.project_id == Project.id)),
        ~asked_per_row(select(relation_users.c.relation_id).where(relation_users.c.relation_id == Project.relation_id)),
        ~asked_per_row(
            select(relation_groups.c.relation_id).where(relation_groups.c.relation_id == Project.relation_id)
        ),
    )
    return _Rule("project_walking", rule.user, or_(nobody_linked, rule))


class _HasResponsible(Protocol):
    @property
    def responsible_user_id(self) -> int | None: ...


def may_manage_project(user: User | None, project: _HasResponsible) -> bool:
    """Whether ``user`` may change who sees ``project``, who is responsible for it, or delete it."""
    if user is None or not user.is_active:
        return False
    return user.is_admin or (project.responsible_user_id is not None and project.responsible_user_id == user.id)


def may_manage_relation(user: User | None, relation: Relation) -> bool:
    """Whether ``user`` may change who sees ``relation``, who owns it, or delete it."""
    if user is None or not user.is_active:
        return False
    return user.is_admin or (relation.owner_id is not None and relation.owner_id == user.id)


# --- versions --------------------------------------------------------------------------------------


class StaleVersion(Exception):
    """The object was changed by someone else after the version the save was based on.

    ``current`` is the version now stored; the object in the session still holds what is stored.
    """

    def __init__(self, current: int) -> None:
        super().__init__(f"changed meanwhile: now version {current}")
        self.current = current


def claim_version(session: Session, obj: Any, expected: int | None, column: str = "version") -> int:
    """Raise the object's version by one, if it still is ``expected`` (any version when None).

    One conditional UPDATE, run before the save changes anything: two saves based on the same version
    cannot both pass (on PostgreSQL the second waits for the first's row lock, then matches no row).
    Returns the new version; raises :class:`StaleVersion` when the stored one is another.
    """
    model = type(obj)
    col = getattr(model, column)
    statement = update(model).where(model.id == obj.id)
    if expected is not None:
        statement = statement.where(col == expected)
    result = session.execute(
        statement.values({column: col + 1}).returning(col).execution_options(synchronize_session=False)
    )
    row = result.first()
    if row is None:
        current = session.scalar(select(col).where(model.id == obj.id))
        raise StaleVersion(int(current or 0))
    set_committed_value(obj, column, int(row[0]))
    return int(row[0])
