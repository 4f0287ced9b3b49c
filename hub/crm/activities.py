"""Activities: to-dos on a project assigned to a user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, joinedload

from hub.crm.access import claim_version, project_visible
from hub.errors import NotFound, ValidationError
from hub.i18n import _
from hub.models import Activity, Project, User
from hub.models.base import utcnow


class _Identified(Protocol):
    """A project as far as activities need it: its id (a Project, or a tab's ProjectHeader)."""

    @property
    def id(self) -> int: ...


@dataclass
class ActivityInput:
    title: str
    description: str = ""
    due_date: date | None = None
    assigned_user_id: int | None = None
    done: bool = False


def can_see_project(session: Session, someone: User, project: _Identified) -> bool:
    """Whether ``someone`` may see ``project`` (the one rule, asked of the database)."""
    return session.scalar(select(Project.id).where(Project.id == project.id, project_visible(someone))) is not None


def save_activity(
    session: Session,
    user: User,
    project: _Identified,
    data: ActivityInput,
    activity: Activity | None = None,
    *,
    expected_version: int | None = None,
) -> Activity:
    """Create or change an activity. It can only be given to someone who may see its project: on a
    project hidden from them it would vanish from their list without a word. Raises
    :class:`~hub.crm.access.StaleVersion` as :func:`hub.crm.projects.save_project` does."""
    errors: dict[str, str] = {}
    title = data.title.strip()
    if not title:
        errors["title"] = _("An activity needs a title.")
    elif len(title) > 200:
        errors["title"] = _("The title can be at most 200 characters.")
    if data.assigned_user_id is not None:
        assignee = session.get(User, data.assigned_user_id)
        if assignee is None or not assignee.is_active:
            errors["assigned_user_id"] = _("Choose an active user.")
        elif (activity is None or activity.assigned_user_id != assignee.id) and not can_see_project(
            session, assignee, project
        ):
            errors["assigned_user_id"] = _(
                "%(name)s cannot see this project: link them to the project (or its relation) first, "
                "or choose someone else.",
                name=assignee.name,
            )
    if errors:
        raise ValidationError(errors)
    if activity is not None:
        claim_version(session, activity, expected_version)
    if activity is None:
        activity = Activity(project_id=project.id, title=title, created_by_id=user.id)
        session.add(activity)
    activity.title = title
    activity.description = data.description
    activity.due_date = data.due_date
    activity.assigned_user_id = data.assigned_user_id
    set_done(activity, data.done)
    session.flush()
    return activity


def mark_done(session: Session, activity: Activity, done: bool, *, expected_version: int | None = None) -> None:
    """Mark an activity done or not done (a change like any other: it raises the version)."""
    claim_version(session, activity, expected_version)
    set_done(activity, done)
    session.flush()


def stranded_activities(session: Session, project: _Identified) -> list[Activity]:
    """Open activities of ``project`` assigned to someone who can no longer see it.

    After access changes the responsible user is told about these (on the project's Activities and
    Linked users tabs, and right after the change), so they are reassigned rather than forgotten:
    the assignees' own lists no longer show them.
    """
    open_items = list(
        session.scalars(
            select(Activity)
            .where(Activity.project_id == project.id, Activity.done.is_(False), Activity.assigned_user_id.is_not(None))
            .options(joinedload(Activity.assigned_user))
            .order_by(Activity.id)
        )
    )
    verdicts: dict[int, bool] = {}
    stranded = []
    for item in open_items:
        assignee = item.assigned_user
        if assignee is None:
            continue
        if assignee.id not in verdicts:
            verdicts[assignee.id] = assignee.is_active and can_see_project(session, assignee, project)
        if not verdicts[assignee.id]:
            stranded.append(item)
    return stranded


def set_done(activity: Activity, done: bool) -> None:
    if done and not activity.done:
        activity.done_at = utcnow()
    if not done:
        activity.done_at = None
    activity.done = done


def get_activity(session: Session, user: User, activity_id: int) -> Activity:
    activity = session.scalar(
        select(Activity).join(Activity.project).where(Activity.id == activity_id, project_visible(user))
    )
    if activity is None:
        raise NotFound(activity_id)
    return activity


def project_activities(session: Session, project: Project) -> list[Activity]:
    query = (
        select(Activity)
        .where(Activity.project_id == project.id)
        .order_by(Activity.done, Activity.due_date.is_(None), Activity.due_date, Activity.id)
        .options(joinedload(Activity.assigned_user))
    )
    return list(session.scalars(query))


def my_activities(session: Session, user: User, *, include_done: bool = False) -> list[Activity]:
    """Activities assigned to ``user`` on projects they can still see, due first."""
    query = (
        select(Activity)
        .join(Activity.project)
        .where(Activity.assigned_user_id == user.id, project_visible(user))
        .order_by(Activity.done, Activity.due_date.is_(None), Activity.due_date, Activity.id)
        .options(joinedload(Activity.project).joinedload(Project.relation))
        .limit(500)
    )
    if not include_done:
        query = query.where(Activity.done.is_(False))
    return list(session.scalars(query))


def is_overdue(activity: Activity, today: date | None = None) -> bool:
    return not activity.done and activity.due_date is not None and activity.due_date < (today or date.today())


def delete_activity(session: Session, activity: Activity, *, expected_version: int | None = None) -> None:
    claim_version(session, activity, expected_version)
    session.delete(activity)
    session.flush()


class ActivityRow(NamedTuple):
    """An activity as a project's Activities tab lists it: the attributes the tab (and
    :func:`is_overdue`) read of an :class:`Activity`, with the assigned user's name. A named tuple:
    made from a row at a third of a frozen dataclass's cost (a tab lists every activity)."""

    id: int
    title: str
    description: str
    due_date: date | None
    done: bool
    assigned_user_id: int | None
    assigned_name: str | None


def _activity_rows_statement() -> Select[Any]:
    return (
        select(
            Activity.id,
            Activity.title,
            Activity.description,
            Activity.due_date,
            Activity.done,
            Activity.assigned_user_id,
            User.name,
        )
        .outerjoin(User, User.id == Activity.assigned_user_id)
        .where(Activity.project_id == bindparam("project_id"))
        .order_by(Activity.done, Activity.due_date.is_(None), Activity.due_date, Activity.id)
    )


# Built once: the same statement for every project (its id is bound), keyed by SQLAlchemy only once.
_ACTIVITY_ROWS = _activity_rows_statement()


def project_activity_rows(session: Session, project_id: int) -> list[ActivityRow]:
    """:func:`project_activities` as plain values in one query (the tab shows them all, in that
    order): no Activity and User objects to build for a list that only shows them."""
    return list(map(ActivityRow._make, session.connection().execute(_ACTIVITY_ROWS, {"project_id": project_id})))
