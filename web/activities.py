"""Activities pages: "my activities", editing one, marking done."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from hub.accounts.users import active_users
from hub.crm.access import StaleVersion
from hub.crm.activities import ActivityInput, get_activity, is_overdue, mark_done, my_activities, save_activity
from hub.errors import ValidationError
from web.context import db_session
from web.forms import optional_text, show_errors
from web.projects import conflict_rows, form_version
from web.security import login_required, user
from web.views import posted_id, safe_next

bp = Blueprint("activities", __name__)


class EditActivityForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"))
    due_date = DateField(_l("Due date"), validators=[Optional()])
    assigned_user_id = SelectField(_l("Assigned to"), coerce=optional_text, validate_choice=False)
    done = BooleanField(_l("Done"))
    version = HiddenField()


@bp.route("/activities")
@login_required
def mine() -> Any:
    show_done = request.args.get("done") == "1"
    items = my_activities(db_session(), user(), include_done=show_done)
    return render_template("activities/mine.html", items=items, show_done=show_done, is_overdue=is_overdue)


@bp.route("/activities/<int:activity_id>/edit", methods=["GET", "POST"])
@login_required
def edit(activity_id: int) -> Any:
    session = db_session()
    activity = get_activity(session, user(), activity_id)
    form = EditActivityForm(obj=activity) if request.method == "GET" else EditActivityForm()
    form.assigned_user_id.choices = [("", "—")] + [(str(u.id), u.name) for u in active_users(session)]
    if request.method == "GET":
        form.assigned_user_id.data = str(activity.assigned_user_id or "")
        form.version.data = str(activity.version)
    conflict = None
    if form.validate_on_submit():
        data = ActivityInput(
            title=form.title.data or "",
            description=form.description.data or "",
            due_date=form.due_date.data,
            assigned_user_id=posted_id(form.assigned_user_id.data),
            done=bool(form.done.data),
        )
        try:
            save_activity(session, user(), activity.project, data, activity, expected_version=form_version(form))
        except ValidationError as error:
            show_errors(form, error)
        except StaleVersion as stale:
            theirs = EditActivityForm(formdata=None, obj=activity)
            theirs.assigned_user_id.choices = form.assigned_user_id.choices
            theirs.assigned_user_id.data = str(activity.assigned_user_id or "")
            form.version.data = str(stale.current)
            conflict = conflict_rows(form, theirs)
        else:
            return redirect(url_for("projects.activities", project_id=activity.project_id))
    status = (409 if conflict is not None else 400) if request.method == "POST" else 200
    return render_template("activities/edit.html", form=form, activity=activity, conflict=conflict), status


@bp.route("/activities/<int:activity_id>/done", methods=["POST"])
@login_required
def toggle_done(activity_id: int) -> Any:
    activity = get_activity(db_session(), user(), activity_id)
    mark_done(db_session(), activity, not activity.done)
    return redirect(safe_next("activities.mine"))
