"""Calendar pages: week and month views (yours, a colleague's, a team's), an appointment's page (with
the conflict rule and the history), the form to make or change one, the project's Agenda tab's
content, the Calendar settings (CalDAV account with "test connection", or invitations by e-mail;
the private feed URL), and the feed itself."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import format_date, format_time
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from hub.accounts.users import active_users, all_groups
from hub.calendar import times
from hub.calendar.accounts import (
    AccountInput,
    account_of,
    choose,
    discover,
    health_of,
    pending_counts,
    save_account,
    test_connection,
)
from hub.calendar.appointments import (
    AppointmentInput,
    Entry,
    appointments_query,
    delete_appointment,
    entries,
    get_appointment,
    history,
    occurrences_of,
    save_appointment,
    set_status,
    week_start,
)
from hub.calendar.dav import CalendarError
from hub.calendar.feed import feed_ics, feed_owner, has_feed, new_feed, revoke_feed
from hub.crm.access import StaleVersion, project_visible
from hub.errors import NotFound, ValidationError
from hub.models import Appointment, Contact, EmailAddress, Project
from web.context import db_session, settings
from web.forms import show_errors
from web.security import login_required, user
from web.views import int_arg

bp = Blueprint("calendar", __name__)
LOCAL = ZoneInfo(times.DEFAULT_TZ)
# The days the week and month views open (?date=); others answer like a day that does not exist.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)

STATUS_LABELS = {"planned": _l("Planned"), "done": _l("Done"), "cancelled": _l("Cancelled")}
PARTSTAT_LABELS = {
    "NEEDS-ACTION": _l("No answer yet"),
    "ACCEPTED": _l("Accepted"),
    "DECLINED": _l("Declined"),
    "TENTATIVE": _l("Tentative"),
}


class AppointmentForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    start_date = DateField(_l("Date"), validators=[DataRequired()])
    start_time = TimeField(_l("From"), validators=[Optional()])
    end_date = DateField(_l("Until (date)"), validators=[Optional()])
    end_time = TimeField(_l("To"), validators=[Optional()])
    all_day = BooleanField(_l("All day"))
    timezone = StringField(_l("Time zone"), default=times.DEFAULT_TZ, validators=[Length(max=64)])
    location = StringField(_l("Location"), validators=[Length(max=500)])
    description = TextAreaField(_l("Description"))
    repeat = SelectField(
        _l("Repeat"),
        choices=[("", _l("Does not repeat")), ("WEEKLY", _l("Every week")), ("MONTHLY", _l("Every month"))],
        default="",
    )
    interval = IntegerField(_l("Every … weeks or months"), default=1, validators=[Optional(), NumberRange(1, 52)])
    count = IntegerField(_l("Number of times (empty: no end)"), validators=[Optional(), NumberRange(1, 500)])
    staff = SelectMultipleField(_l("Staff"), coerce=int)
    contacts = SelectMultipleField(_l("Contacts"), coerce=int)
    status = SelectField(_l("Status"), choices=list(STATUS_LABELS.items()), default="planned")
    visit_report = TextAreaField(_l("Visit report"))
    version = HiddenField()


class AccountForm(FlaskForm):
    delivery = RadioField(
        _l("How your calendar receives appointments"),
        choices=[
            ("caldav", _l("CalDAV: hub writes into my calendar and my changes there come back")),
            ("invitations", _l("Invitations by e-mail (Outlook and calendars without CalDAV)")),
        ],
        default="caldav",
    )
    url = StringField(_l("CalDAV address"), validators=[Length(max=1000)])
    username = StringField(_l("User name"), validators=[Length(max=254)])
    password = PasswordField(_l("Password"))
    calendar = StringField(_l("Calendar (name; empty: the first one)"), validators=[Length(max=200)])


# --- helpers -------------------------------------------------------------------------------------------


@bp.app_template_filter("local_time")
def local_time(value: datetime | None, tzid: str = times.DEFAULT_TZ) -> str:
    if value is None:
        return ""
    # Shown on the appointment's own clock (rebase=False: Babel would move it to the default zone).
    return format_time(value.astimezone(ZoneInfo(tzid)), "short", rebase=False)


@bp.app_template_filter("local_date")
def local_date(value: datetime | date | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(LOCAL).date()
    return format_date(value, fmt)


def _date_arg() -> date:
    raw = request.args.get("date", "")
    try:
        day = date.fromisoformat(raw) if raw else datetime.now(LOCAL).date()
    except ValueError:
        abort(404)
    # Like a date that does not exist: a week or month around year 1 or 9999 runs off Python's
    # calendar (an OverflowError, a 500), and no appointment is kept that far off.
    if not FIRST_DAY <= day <= LAST_DAY:
        abort(404)
    return day


def _people() -> tuple[list[int] | None, str, Any, Any]:
    """Whose calendar a view shows: ?user=ID, ?group=ID (a team), else yours."""
    session = db_session()
    groups = all_groups(session)
    users = active_users(session)
    group_id = request.args.get("group", type=int)
    user_id = request.args.get("user", type=int)
    if group_id:
        group = next((g for g in groups if g.id == group_id), None)
        if group is None:
            abort(404)
        return [m.id for m in group.members], group.name, users, groups
    if user_id:
        person = next((u for u in users if u.id == user_id), None)
        if person is None:
            abort(404)
        return [person.id], person.name, users, groups
    return [user().id], user().name, users, groups


def _by_day(items: list[Entry], first: date, days: int) -> list[tuple[date, list[Entry]]]:
    result = []
    for n in range(days):
        day = first + timedelta(days=n)
        start = datetime.combine(day, time(0), tzinfo=LOCAL).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=LOCAL).astimezone(UTC)
        start_all = datetime.combine(day, time(0), tzinfo=UTC)  # all-day appointments keep UTC days
        result.append(
            (
                day,
                [
                    e
                    for e in items
                    if (e.all_day and e.start_at <= start_all < e.end_at)
                    or (not e.all_day and e.start_at < end and e.end_at > start)
                ],
            )
        )
    return result


def _window(first: date, days: int) -> tuple[datetime, datetime]:
    # A day either side: all-day appointments are kept in UTC days, which straddle local midnight.
    return (
        datetime.combine(first - timedelta(days=1), time(0), tzinfo=UTC),
        datetime.combine(first + timedelta(days=days + 1), time(0), tzinfo=UTC),
    )


# --- views -----------------------------------------------------------------------------------------------


@bp.route("/calendar")
@login_required
def index() -> Any:
    args: dict[str, Any] = request.args.to_dict()
    return redirect(url_for("calendar.week", **args))


@bp.route("/calendar/week")
@login_required
def week() -> Any:
    first = week_start(_date_arg())
    people, whose, users, groups = _people()
    items = entries(db_session(), user(), people, *_window(first, 7))
    return render_template(
        "calendar/week.html",
        days=_by_day(items, first, 7),
        first=first,
        prev=first - timedelta(days=7),
        next=first + timedelta(days=7),
        whose=whose,
        users=users,
        groups=groups,
        names={u.id: u.name for u in users},
        team=bool(request.args.get("group")),
        args={k: v for k, v in request.args.items() if k in ("user", "group")},
        today=datetime.now(LOCAL).date(),
    )


@bp.route("/calendar/month")
@login_required
def month() -> Any:
    day = _date_arg()
    first_of_month = day.replace(day=1)
    first = week_start(first_of_month)
    next_month = (first_of_month + timedelta(days=32)).replace(day=1)
    days = ((next_month - first).days + 6) // 7 * 7
    people, whose, users, groups = _people()
    items = entries(db_session(), user(), people, *_window(first, days))
    by_day = _by_day(items, first, days)
    return render_template(
        "calendar/month.html",
        weeks=[by_day[i : i + 7] for i in range(0, days, 7)],
        month=first_of_month,
        prev=(first_of_month - timedelta(days=1)).replace(day=1),
        next=next_month,
        whose=whose,
        users=users,
        groups=groups,
        args={k: v for k, v in request.args.items() if k in ("user", "group")},
        today=datetime.now(LOCAL).date(),
    )


def _appointment_or_404(appointment_id: int) -> Appointment:
    try:
        return get_appointment(db_session(), user(), appointment_id)
    except NotFound:
        abort(404)


@bp.route("/appointments/<int:appointment_id>")
@login_required
def show(appointment_id: int) -> Any:
    session = db_session()
    appointment = _appointment_or_404(appointment_id)
    project = session.get(Project, appointment.project_id) if appointment.project_id else None
    return render_template(
        "calendar/appointment.html",
        appointment=appointment,
        project=project,
        history=history(session, appointment),
        last_day=(appointment.end_at - timedelta(days=1)).date(),
        status_labels=STATUS_LABELS,
        partstat_labels=PARTSTAT_LABELS,
        occurrences=occurrences_of(
            appointment, datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=400)
        )[:12]
        if appointment.rrule
        else [],
    )


def _contact_choices(project: Project | None) -> list[tuple[int, str]]:
    if project is None:
        return []
    session = db_session()
    contacts = list(
        session.scalars(select(Contact).where(Contact.relation_id == project.relation_id).order_by(Contact.name))
    )
    with_mail = set(
        session.scalars(select(EmailAddress.contact_id).where(EmailAddress.contact_id.in_([c.id for c in contacts])))
    )
    return [(c.id, c.name if c.id in with_mail else f"{c.name} ({_l('no e-mail address')})") for c in contacts]


def _form_view(appointment: Appointment | None, project: Project | None, activity: Any = None) -> Any:
    session = db_session()
    form = AppointmentForm()
    form.staff.choices = [(u.id, u.name) for u in active_users(session)]
    form.contacts.choices = _contact_choices(project)
    if request.method == "GET":
        if appointment is not None:
            start = appointment.start_at.astimezone(ZoneInfo(appointment.tzid))
            end = appointment.end_at.astimezone(ZoneInfo(appointment.tzid))
            if appointment.all_day:
                start, end = appointment.start_at, appointment.end_at - timedelta(days=1)
            form.title.data, form.location.data = appointment.title, appointment.location
            form.description.data, form.visit_report.data = appointment.description, appointment.visit_report
            form.start_date.data, form.start_time.data = start.date(), start.time()
            form.end_date.data, form.end_time.data = end.date(), end.time()
            form.all_day.data, form.timezone.data, form.status.data = (
                appointment.all_day,
                appointment.tzid,
                appointment.status,
            )
            parts = dict(p.split("=", 1) for p in appointment.rrule.split(";") if "=" in p)
            form.repeat.data = parts.get("FREQ", "")
            form.interval.data = int(parts.get("INTERVAL", "1"))
            form.count.data = int(parts["COUNT"]) if "COUNT" in parts else None
            form.staff.data = [a.user_id for a in appointment.attendees if a.user_id]
            form.contacts.data = [a.contact_id for a in appointment.attendees if a.contact_id]
            form.version.data = str(appointment.version)
        else:
            default = project.responsible_user_id if project is not None and project.responsible_user_id else user().id
            form.staff.data = [default]
            form.start_time.data, form.end_time.data = time(10, 0), time(11, 0)
            form.start_date.data = datetime.now(LOCAL).date() + timedelta(days=1)
            if activity is not None:
                form.title.data = activity.title
                form.start_date.data = activity.due_date or form.start_date.data
                if activity.assigned_user_id:
                    form.staff.data = [activity.assigned_user_id]
    if form.validate_on_submit():
        start_date = form.start_date.data
        end_date = form.end_date.data or start_date
        start_time = form.start_time.data or time(0)
        end_time = form.end_time.data or start_time
        try:
            rule = (
                times.build_rrule(form.repeat.data, form.interval.data or 1, form.count.data)
                if form.repeat.data
                else ""
            )
            data = AppointmentInput(
                title=form.title.data or "",
                start=datetime.combine(start_date, start_time),
                end=datetime.combine(end_date, end_time),
                tzid=form.timezone.data or times.DEFAULT_TZ,
                all_day=bool(form.all_day.data),
                description=form.description.data or "",
                location=form.location.data or "",
                rrule=rule,
                exdates=times.parse_exdates(appointment.exdates)
                if appointment is not None and rule == appointment.rrule
                else [],
                status=form.status.data or "planned",
                project_id=project.id if project is not None else None,
                relation_id=appointment.relation_id if appointment is not None and project is None else None,
                staff_ids=list(form.staff.data or []) or None,  # none chosen: the responsible user
                contact_ids=list(form.contacts.data or []),
                visit_report=form.visit_report.data or "",
                activity_id=appointment.activity_id if appointment is not None else (activity.id if activity else None),
            )
            version = form.version.data or ""
            expected = (
                int(version)
                if appointment is not None and version.isascii() and version.isdigit() and len(version) < 19
                else None
            )
            saved = save_appointment(session, user(), data, appointment, expected_version=expected)
        except ValidationError as error:
            show_errors(form, error)
        except StaleVersion:
            form.form_errors.append(
                str(
                    _l(
                        "Someone else changed this appointment meanwhile. "
                        "Reload the page to see it, then make your change again."
                    )
                )
            )
        else:
            _push_after_commit(session)
            return redirect(url_for("calendar.show", appointment_id=saved.id))
    status = 400 if request.method == "POST" else 200
    return render_template("calendar/form.html", form=form, appointment=appointment, project=project), status


def _push_after_commit(session: Any) -> None:
    """Wake the workers for the accounts the change made due (the sweep would find them anyway)."""
    from hub.db import after_commit

    def send() -> None:
        try:
            from workers.tasks import calendar_sweep

            calendar_sweep.delay()
        except Exception:  # broker down: beat's sweep picks the pushes up
            import logging

            logging.getLogger(__name__).warning("could not wake the calendar workers; the sweep will")

    after_commit(session, send)


@bp.route("/appointments/new", methods=["GET", "POST"])
@login_required
def new() -> Any:
    """?project_id=: on a project's Agenda tab. ?activity_id=: "plan visit", the activity's follow-up."""
    project = None
    project_id = int_arg("project_id")
    activity_id = int_arg("activity_id")
    if (request.args.get("project_id") and project_id is None) or (
        request.args.get("activity_id") and activity_id is None
    ):
        abort(404)  # an id beyond any row: as missing as one that is not there
    if activity_id is not None:
        from hub.crm.activities import get_activity

        try:
            activity = get_activity(db_session(), user(), activity_id)
        except NotFound:
            abort(404)
        return _form_view(None, activity.project, activity=activity)
    if project_id is not None:
        project = db_session().scalar(select(Project).where(Project.id == project_id, project_visible(user())))
        if project is None:
            abort(404)
    return _form_view(None, project)


@bp.route("/appointments/<int:appointment_id>/edit", methods=["GET", "POST"])
@login_required
def edit(appointment_id: int) -> Any:
    appointment = _appointment_or_404(appointment_id)
    project = db_session().get(Project, appointment.project_id) if appointment.project_id else None
    return _form_view(appointment, project)


@bp.route("/appointments/<int:appointment_id>/delete", methods=["POST"])
@login_required
def delete(appointment_id: int) -> Any:
    session = db_session()
    appointment = _appointment_or_404(appointment_id)
    project_id = appointment.project_id
    delete_appointment(session, user(), appointment)
    _push_after_commit(session)
    if project_id:
        return redirect(url_for("projects.agenda", project_id=project_id))
    return redirect(url_for("calendar.week"))


@bp.route("/appointments/<int:appointment_id>/status", methods=["POST"])
@login_required
def status(appointment_id: int) -> Any:
    session = db_session()
    appointment = _appointment_or_404(appointment_id)
    try:
        set_status(session, user(), appointment, request.form.get("status", ""))
    except ValidationError:
        abort(400)
    _push_after_commit(session)
    return redirect(url_for("calendar.show", appointment_id=appointment.id))


def agenda_context(project: Project) -> dict[str, Any]:
    """What the project's Agenda tab shows: its appointments, upcoming first, then the past ones."""
    session = db_session()
    now = datetime.now(UTC)
    items = list(session.scalars(appointments_query(user(), project_id=project.id).order_by(Appointment.start_at)))
    upcoming = [a for a in items if a.series_end_at is None or a.series_end_at >= now]
    past = [a for a in items if a not in upcoming]
    return {"upcoming": upcoming, "past": list(reversed(past)), "status_labels": STATUS_LABELS}


# --- settings: the calendar account and the feed -------------------------------------------------------------


@bp.route("/calendar/settings", methods=["GET", "POST"])
@login_required
def account_settings() -> Any:
    session = db_session()
    me = user()
    account = account_of(session, me)
    form = AccountForm()
    message: tuple[bool, str] | None = None
    if request.method == "GET" and account is not None:
        form.delivery.data = account.delivery
        form.url.data, form.username.data, form.calendar.data = account.url, account.username, account.calendar_name
    if form.validate_on_submit():
        password = form.password.data or ""
        if not password and account is not None and account.password_encrypted:
            from hub.calendar.accounts import password_of

            try:
                password = password_of(account, settings().secret_key)
            except CalendarError as exc:
                message = (False, exc.words)
        data = AccountInput(
            delivery=form.delivery.data or "caldav",
            url=(form.url.data or "").strip(),
            username=form.username.data or "",
            password=password or None,
            calendar=form.calendar.data or "",
        )
        if message is None and request.form.get("action") == "test":
            message = test_connection(
                data.url, data.username, password, data.calendar, allowed_hosts=settings().mail_allowed_hosts
            )
        elif message is None:
            try:
                found = None
                if data.delivery == "caldav":
                    if not data.url.startswith(("http://", "https://")):
                        raise ValidationError(str(_l("The CalDAV address starts with https:// (or http://).")), "url")
                    found = discover(data.url, data.username, password, allowed_hosts=settings().mail_allowed_hosts)
                    choose(found, data.calendar)
                account = save_account(session, settings().secret_key, me, data, found=found)
            except CalendarError as exc:
                message = (False, exc.words)
            except ValidationError as error:
                show_errors(form, error)
            else:
                _push_after_commit(session)
                return redirect(url_for("calendar.account_settings", saved=1))
    form.password.data = ""
    status = (
        400 if request.method == "POST" and (form.errors or form.form_errors or (message and not message[0])) else 200
    )
    from web.context import installation

    parts = installation()
    health = health_of(account, workers_alive=parts.workers_alive) if account is not None else None
    return render_template(
        "calendar/settings.html",
        form=form,
        account=account,
        message=message,
        saved=request.args.get("saved"),
        health=health,
        parts=parts,
        pending=pending_counts(session, [account.id]).get(account.id, 0) if account is not None else 0,
        has_feed=has_feed(session, me),
        feed_url=request.args.get("feed_url", ""),
    ), status


@bp.route("/calendar/feed-url", methods=["POST"])
@login_required
def feed_url() -> Any:
    """Make a new feed URL (the old one stops working), or revoke it."""
    session = db_session()
    if request.form.get("action") == "revoke":
        revoke_feed(session, user())
        return redirect(url_for("calendar.account_settings"))
    token = new_feed(session, user())
    url = url_for("calendar.feed", token=token, _external=True)
    # Shown once, on the next page only (not stored readable): pass it along in the redirect.
    return render_template(
        "calendar/feed_url.html", url=url, webcal=url.replace("https://", "webcal://").replace("http://", "webcal://")
    )


@bp.route("/calendar/feed/<token>.ics")
def feed(token: str) -> Any:
    """The private feed: no login (calendar apps cannot log in); the URL's secret is the key."""
    session = db_session()
    owner = feed_owner(session, token)
    if owner is None:
        abort(404)
    body = feed_ics(session, owner)
    return Response(
        body,
        mimetype="text/calendar",
        headers={"Cache-Control": "private, max-age=300", "Content-Disposition": 'inline; filename="hub.ics"'},
    )
