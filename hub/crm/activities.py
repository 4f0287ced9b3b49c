"""Activities: to-dos on a project assigned to a user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from hub.crm.access import project_visible
from hub.errors import NotFound, ValidationError
from hub.i18n import _
from hub.models import Activity, Project, User
from hub.models.base import utcnow


@dataclass
class ActivityInput:
    title: str
    description: str = ""
    due_date: date | None = None
    assigned_user_id: int | None = None
    done: bool = False


def save_activity(
    session: Session, user: User, project: Project, data: ActivityInput, activity: Activity | None = None
) -> Activity:
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
    if errors:
        raise ValidationError(errors)
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


def delete_activity(session: Session, activity: Activity) -> None:
    session.delete(activity)
    session.flush()
