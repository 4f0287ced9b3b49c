"""Calendar pages: week and month views (yours, a colleague's, a team's), an appointment's page (with
the conflict rule and the history), the form to make or change one, the project's Agenda tab's
content, the Calendar settings (CalDAV account with "test connection", or invitations by e-mail;
the private feed URL), and the feed itself."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import babel.dates
from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask_babel import get_locale, get_translations
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
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

from hub.accounts.users import active_users
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
    ViewEntry,
    appointments_query,
    delete_appointment,
    get_appointment,
    group_member_ids,
    history,
    occurrences_of,
    save_appointment,
    set_status,
    view_entries,
    view_people,
    week_start,
)
from hub.calendar.dav import CalendarError
from hub.calendar.feed import feed_ics, feed_owner, has_feed, new_feed, revoke_feed
from hub.crm.access import StaleVersion, project_visible
from hub.errors import NotFound, ValidationError
from hub.models import Appointment, Contact, EmailAddress, Project
from web.context import db_session, settings
from web.forms import show_errors
from web.i18n import babel_locale, reader_locale
from web.lists import kept_rows, row_link
from web.menu import kept
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


@bp.app_template_filter("partstat")
def partstat(value: object) -> str:
    """An attendee's answer (iCalendar's PARTSTAT) in the reader's words; one hub does not know as
    written. A template filter (an invitation's answer shown on the e-mail page too)."""
    label = PARTSTAT_LABELS.get(str(value).upper())
    return str(label) if label is not None else str(value)


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
    # Shown on the appointment's own clock (Flask-Babel's format_time would move it to the default zone).
    return babel.dates.format_time(value.astimezone(ZoneInfo(tzid)), "short", locale=reader_locale())


@bp.app_template_filter("local_date")
def local_date(value: datetime | date | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(LOCAL).date()
    return babel.dates.format_date(value, fmt, locale=reader_locale())


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


def _by_day(items: list[Any], first: date, days: int) -> list[tuple[date, list[Any]]]:
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
    people, whose, users, groups = _staff()
    team = bool(request.args.get("group"))
    # Only a team's week names the staff of each appointment.
    items = view_entries(db_session(), user(), people, *_window(first, 7), with_staff=team)
    args = {k: v for k, v in request.args.items() if k in ("user", "group")}
    shown = WeekShown(
        first=first,
        whose=whose,
        users=users,
        groups=groups,
        team=team,
        args=args,
        today=datetime.now(LOCAL).date(),
    )
    _ = _words_of(get_translations())
    week_word = _("Week")
    language = str(get_locale() or "nl")
    return render_template(
        "calendar/week.html",
        title=Markup(f"{week_word} {escape(_date_text(first, 'medium', language))}"),
        content=week_html(shown, _by_day(items, first, 7), _, language),
    )


def _staff() -> tuple[list[int] | None, str, tuple[tuple[int, str], ...], tuple[tuple[int, str], ...]]:
    """Whose calendar a view shows: ?group=ID (a team: its members), ?user=ID, else yours (a team
    or person that is not there: 404); with the staff and teams to choose from, as (id, name)."""
    session = db_session()
    users, groups = view_people(session)
    group_id = request.args.get("group", type=int)
    user_id = request.args.get("user", type=int)
    if group_id:
        group = next((g for g in groups if g[0] == group_id), None)
        if group is None:
            abort(404)
        return group_member_ids(session, group_id), group[1], tuple(users), tuple(groups)
    if user_id:
        person = next((u for u in users if u[0] == user_id), None)
        if person is None:
            abort(404)
        return [person[0]], person[1], tuple(users), tuple(groups)
    return [user().id], user().name, tuple(users), tuple(groups)


# --- the week view, rendered in Python -------------------------------------------------------------------
# The week as a Jinja template (a loop of seven days, an include per appointment, ten dates and
# times formatted by Babel each time) was two fifths of the page. These give its HTML byte for byte
# (tests/integration/test_calendar_week_rendering.py renders the template they replaced); the parts
# that are the same on every request (the toolbar, whose calendar, the days' names) are kept.


@dataclass(frozen=True)
class WeekShown:
    """What a week or month view shows around its appointments (``first``: the week's Monday, or
    the month's first day)."""

    first: date
    whose: str
    users: tuple[tuple[int, str], ...]
    groups: tuple[tuple[int, str], ...]
    team: bool
    args: dict[str, str]
    today: date


Words = Callable[..., Markup]


def _words_of(translations: Any) -> Words:
    """The template's ``_``: the translation as markup, its variables escaped, %-formatted as
    Jinja's newstyle gettext does (web.i18n._filled)."""

    def _(text: str, **variables: Any) -> Markup:
        found = Markup(translations.ugettext(text))
        return found % variables if variables or "%" in found else found

    return _


@functools.lru_cache(maxsize=4096)
def _date_text(value: date, fmt: str, language: str) -> str:
    # What the local_date filter gives for a day (Flask-Babel's format_date: Babel's, in the locale).
    return babel.dates.format_date(value, fmt, locale=babel_locale(language))


@functools.lru_cache(maxsize=16384)
def _time_text(value: datetime, language: str) -> str:
    # What the local_time filter gives (on the company's clock, not rebased by Babel).
    return babel.dates.format_time(value.astimezone(LOCAL), "short", locale=babel_locale(language))


def week_html(shown: WeekShown, days: list[tuple[date, list[ViewEntry]]], _: Words, language: str) -> Markup:
    """The week view's content: what the templates calendar/week.html, _nav.html and _entry.html gave
    (quoted in tests/integration/test_calendar_week_rendering.py)."""
    args_key = tuple(shown.args.items())
    top = kept(
        "calendar_week_top",
        (request.script_root, language, shown.whose, args_key, shown.first),
        lambda: _week_top(shown, _, language),
    )
    nav = kept(
        "calendar_nav",
        (language, shown.first, shown.users, shown.groups, shown.args.get("user"), shown.args.get("group")),
        lambda: _nav_html(shown, _),
    )
    bottom = kept("calendar_week_bottom", (request.script_root, language), lambda: _week_bottom(_))
    href = row_link("calendar.show", "appointment_id")
    names = dict(shown.users) if shown.team else {}
    # Each entry as it was rendered before for the same values (a team's: the same names too).
    rendered = kept_rows("calendar_week", (language, href, shown.team, shown.users if shown.team else ()))
    label = _("Week of %(date)s", date=_date_text(shown.first, "medium", language))
    parts = [top, nav, f'\n<div class="week" aria-label="{label}">\n  ']
    for day, items in days:
        today = " today" if day == shown.today else ""
        parts.append(
            f'\n  <section class="day{today}">\n    <h2>{escape(_date_text(day, "EEE d MMM", language))}</h2>\n    '
        )
        if items:
            for e in items:
                html = rendered.get(e)
                if html is None:
                    html = rendered[e] = _entry_html(e, href, shown.team, names, _, language)
                parts.append(html)
        else:
            parts.append('<p class="muted">—</p>')
        parts.append("\n  </section>\n  ")
    parts.append(bottom)
    return Markup("".join(parts))


def _entry_html(e: ViewEntry, href: str, team: bool, names: dict[int, str], _: Words, language: str) -> str:
    when = ""
    if not e.all_day:
        start, end = escape(_time_text(e.start_at, language)), escape(_time_text(e.end_at, language))
        when = f'<span class="when">{start}\u2013{end}</span>'  # an en dash
    # The texts outside the f-strings: pybabel finds _("...") calls, not those inside f-strings.
    if e.appointment_id is None:
        busy = _("Busy")
        return f'\n<span class="appt busy">{when} <span class="what">{busy}</span></span>\n'
    cancelled = ""
    if e.status == "cancelled":
        word = _("cancelled")
        cancelled = f" <small>({word})</small>"
    staff = (
        f'<small class="muted">{", ".join(str(escape(names.get(uid, ""))) for uid in e.user_ids)}</small>'
        if team
        else ""
    )
    return (
        f'\n<a class="appt status-{escape(e.status)}" href="{href % e.appointment_id}">\n  {when}\n'
        f'  <span class="what">{escape(e.title)}</span>{cancelled}\n  {staff}\n</a>\n'
    )


def _week_top(shown: WeekShown, _: Words, language: str) -> str:
    url: Any = current_app.jinja_env.globals["url_for"]  # the templates' one, which remembers URLs
    args, first = shown.args, shown.first

    def link(endpoint: str, **values: Any) -> Markup:
        return escape(url(endpoint, **values))

    heading = _("Calendar of %(name)s", name=shown.whose)
    previous, this, following = _("Previous week"), _("This week"), _("Next week")
    month, new = _("Month"), _("New appointment")
    return (
        f'\n<div class="toolbar">\n  <h1>{heading}</h1>\n  <div>\n'
        f'    <a class="button" href="{link("calendar.week", date=(first - timedelta(days=7)).isoformat(), **args)}"'
        f' aria-label="{previous}">\u2039</a>\n'
        f'    <a class="button" href="{link("calendar.week", **args)}">{this}</a>\n'
        f'    <a class="button" href="{link("calendar.week", date=(first + timedelta(days=7)).isoformat(), **args)}"'
        f' aria-label="{following}">\u203a</a>\n'
        f'    <a class="button" href="{link("calendar.month", date=first.isoformat(), **args)}">{month}</a>\n'
        f'    <a class="button primary" href="{link("calendar.new")}">{new}</a>\n'
        "  </div>\n</div>\n"
    )


def _nav_html(shown: WeekShown, _: Words) -> str:
    """Whose calendar, for the week and month views (the template calendar/_nav.html was)."""
    chosen_user, chosen_group = shown.args.get("user"), shown.args.get("group")
    users = "".join(
        f'<option value="{i}" {"selected" if chosen_user == str(i) else ""}>{escape(name)}</option>'
        for i, name in shown.users
    )
    groups = "".join(
        f'<option value="{i}" {"selected" if chosen_group == str(i) else ""}>{escape(name)}</option>'
        for i, name in shown.groups
    )
    calendar_of, me, team, show = _("Calendar of"), _("me"), _("Team"), _("Show")
    return (
        '\n<form method="get" class="calendar-who">\n'
        f'  <input type="hidden" name="date" value="{shown.first.isoformat()}">\n'
        f"  <label>{calendar_of}\n"
        """    <select name="user" onchange="this.form.group.value='';this.form.submit()">\n"""
        f'      <option value="">{me}</option>\n'
        f"      {users}\n"
        "    </select>\n  </label>\n"
        f"  <label>{team}\n"
        """    <select name="group" onchange="this.form.user.value='';this.form.submit()">\n"""
        '      <option value="">—</option>\n'
        f"      {groups}\n"
        "    </select>\n  </label>\n"
        f'  <noscript><button type="submit">{show}</button></noscript>\n'
        "</form>"
    )


def _week_bottom(_: Words) -> str:
    url: Any = current_app.jinja_env.globals["url_for"]
    settings_href = escape(url("calendar.account_settings"))
    text = _("Calendar settings: your own calendar, Outlook, the private feed")
    return f'\n</div>\n<p><a href="{settings_href}">{text}</a></p>\n'


@bp.route("/calendar/month")
@login_required
def month() -> Any:
    day = _date_arg()
    first_of_month = day.replace(day=1)
    first = week_start(first_of_month)
    next_month = (first_of_month + timedelta(days=32)).replace(day=1)
    days = ((next_month - first).days + 6) // 7 * 7
    people, whose, users, groups = _staff()
    # The month names nobody's staff (its entries as the week's, without the team's names).
    items = view_entries(db_session(), user(), people, *_window(first, days), with_staff=False)
    shown = WeekShown(
        first=first_of_month,
        whose=whose,
        users=users,
        groups=groups,
        team=False,
        args={k: v for k, v in request.args.items() if k in ("user", "group")},
        today=datetime.now(LOCAL).date(),
    )
    _ = _words_of(get_translations())
    language = str(get_locale() or "nl")
    by_day = _by_day(items, first, days)
    return render_template(
        "calendar/month.html",
        title=escape(_date_text(first_of_month, "LLLL yyyy", language)),
        content=month_html(shown, [by_day[i : i + 7] for i in range(0, days, 7)], _, language),
    )


def month_html(shown: WeekShown, weeks: list[list[tuple[date, list[ViewEntry]]]], _: Words, language: str) -> Markup:
    """The month view's content (what the templates calendar/month.html, _nav.html and _entry.html gave);
    ``shown.first`` is the month's first day."""
    month = shown.first
    args_key = tuple(shown.args.items())
    top = kept(
        "calendar_month_top",
        (request.script_root, language, shown.whose, args_key, month),
        lambda: _month_top(shown, _, language),
    )
    nav = kept(
        "calendar_nav",
        (language, month, shown.users, shown.groups, shown.args.get("user"), shown.args.get("group")),
        lambda: _nav_html(shown, _),
    )
    url: Any = current_app.jinja_env.globals["url_for"]
    href = row_link("calendar.show", "appointment_id")
    rendered = kept_rows("calendar_week", (language, href, False, ()))
    parts = [top, nav, '\n<div class="month">\n  ']
    for week_days in weeks:
        parts.append('\n  <div class="month-week">\n    ')
        for day, items in week_days:
            css = (" other" if day.month != month.month else "") + (" today" if day == shown.today else "")
            link = escape(url("calendar.week", date=day.isoformat(), **shown.args))
            name = escape(_date_text(day, "EEE d", language))
            parts.append(f'\n    <section class="day{css}">\n      <h2><a href="{link}">{name}</a></h2>\n      ')
            for e in items:
                html = rendered.get(e)
                if html is None:
                    html = rendered[e] = _entry_html(e, href, False, {}, _, language)
                parts.append(html)
            parts.append("\n    </section>\n    ")
        parts.append("\n  </div>\n  ")
    parts.append("\n</div>\n")
    return Markup("".join(parts))


def _month_top(shown: WeekShown, _: Words, language: str) -> str:
    url: Any = current_app.jinja_env.globals["url_for"]
    args, month = shown.args, shown.first
    previous = (month - timedelta(days=1)).replace(day=1)
    following = (month + timedelta(days=32)).replace(day=1)

    def link(endpoint: str, **values: Any) -> Markup:
        return escape(url(endpoint, **values))

    name = escape(_date_text(month, "LLLL yyyy", language))
    heading = _("Calendar of %(name)s", name=shown.whose)
    before, this, after = _("Previous month"), _("This month"), _("Next month")
    week, new = _("Week"), _("New appointment")
    return (
        f'\n<div class="toolbar">\n  <h1>{heading}: {name}</h1>\n  <div>\n'
        f'    <a class="button" href="{link("calendar.month", date=previous.isoformat(), **args)}"'
        f' aria-label="{before}">\u2039</a>\n'
        f'    <a class="button" href="{link("calendar.month", **args)}">{this}</a>\n'
        f'    <a class="button" href="{link("calendar.month", date=following.isoformat(), **args)}"'
        f' aria-label="{after}">\u203a</a>\n'
        f'    <a class="button" href="{link("calendar.week", date=month.isoformat(), **args)}">{week}</a>\n'
        f'    <a class="button primary" href="{link("calendar.new")}">{new}</a>\n'
        "  </div>\n</div>\n"
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
