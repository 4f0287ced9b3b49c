"""The week and month views read their appointments as plain values (hub.calendar.appointments.
view_entries) and render them in Python (web/calendar.py week_html, month_html); GET
/api/v1/appointments and GET /api/v1/calls read plain columns from kept statements. Each must give
what the code they replaced gave: the pages byte for byte as the Jinja templates rendered
Appointment objects (hostile
names and titles escaped, Dutch and English, weeks around both daylight-saving changes, a person's
and a team's calendar, busy blocks for what the reader may not see, a series with a moved and a
dropped occurrence, all-day appointments), and the lists item for item as the pydantic models read
the ORM objects, over several cursor pages, with hidden appointments and calls left out; on SQLite
and PostgreSQL."""

# ruff: noqa: E501, RUF001  (the templates the Python code replaced are quoted line for line)
from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask, render_template_string
from flask_login import login_user
from sqlalchemy import select

from hub.accounts.users import create_token, save_group
from hub.calendar import times
from hub.calendar.appointments import (
    AppointmentInput,
    ViewEntry,
    appointments_query,
    drop_occurrence,
    entries,
    move_occurrence,
    save_appointment,
    view_entries,
    week_start,
)
from hub.config import Settings
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Appointment, Call, CallSource, Relation, User
from hub.telephony.read import calls_query
from tests.conftest import EnglishClient, log_in, new_user

HOSTILE = "<script>alert('x')</script> & \"q\" Zoë"
_n = itertools.count(1)

# calendar/week.html as it was, with calendar/_nav.html and calendar/_entry.html in place of their
# includes (each file's text without its last newline, as an include gives it).
NAV = """{# Whose calendar, and week/month: shared by the week and month views. #}
<form method="get" class="calendar-who">
  <input type="hidden" name="date" value="{{ first.isoformat() if first is defined else month.isoformat() }}">
  <label>{{ _('Calendar of') }}
    <select name="user" onchange="this.form.group.value='';this.form.submit()">
      <option value="">{{ _('me') }}</option>
      {% for u in users %}<option value="{{ u.id }}" {% if args.get('user') == u.id|string %}selected{% endif %}>{{ u.name }}</option>{% endfor %}
    </select>
  </label>
  <label>{{ _('Team') }}
    <select name="group" onchange="this.form.user.value='';this.form.submit()">
      <option value="">—</option>
      {% for g in groups %}<option value="{{ g.id }}" {% if args.get('group') == g.id|string %}selected{% endif %}>{{ g.name }}</option>{% endfor %}
    </select>
  </label>
  <noscript><button type="submit">{{ _('Show') }}</button></noscript>
</form>"""
ENTRY = """{% if e.appointment %}
<a class="appt status-{{ e.status }}" href="{{ url_for('calendar.show', appointment_id=e.appointment.id) }}">
  {% if not e.all_day %}<span class="when">{{ e.start_at|local_time }}–{{ e.end_at|local_time }}</span>{% endif %}
  <span class="what">{{ e.title }}</span>{% if e.status == 'cancelled' %} <small>({{ _('cancelled') }})</small>{% endif %}
  {% if team is defined and team %}<small class="muted">{% for uid in e.user_ids %}{{ names.get(uid, '') }}{% if not loop.last %}, {% endif %}{% endfor %}</small>{% endif %}
</a>
{% else %}
<span class="appt busy">{% if not e.all_day %}<span class="when">{{ e.start_at|local_time }}–{{ e.end_at|local_time }}</span>{% endif %} <span class="what">{{ _('Busy') }}</span></span>
{% endif %}"""
WEEK = (
    """{% extends "base.html" %}
{% block title %}{{ _('Week') }} {{ first|local_date }}{% endblock %}
{% block content %}
<div class="toolbar">
  <h1>{{ _('Calendar of %(name)s', name=whose) }}</h1>
  <div>
    <a class="button" href="{{ url_for('calendar.week', date=prev.isoformat(), **args) }}" aria-label="{{ _('Previous week') }}">‹</a>
    <a class="button" href="{{ url_for('calendar.week', **args) }}">{{ _('This week') }}</a>
    <a class="button" href="{{ url_for('calendar.week', date=next.isoformat(), **args) }}" aria-label="{{ _('Next week') }}">›</a>
    <a class="button" href="{{ url_for('calendar.month', date=first.isoformat(), **args) }}">{{ _('Month') }}</a>
    <a class="button primary" href="{{ url_for('calendar.new') }}">{{ _('New appointment') }}</a>
  </div>
</div>
"""
    + NAV
    + """
<div class="week" aria-label="{{ _('Week of %(date)s', date=first|local_date) }}">
  {% for day, items in days %}
  <section class="day{% if day == today %} today{% endif %}">
    <h2>{{ day|local_date('EEE d MMM') }}</h2>
    {% for e in items %}"""
    + ENTRY
    + """{% else %}<p class="muted">—</p>{% endfor %}
  </section>
  {% endfor %}
</div>
<p><a href="{{ url_for('calendar.account_settings') }}">{{ _('Calendar settings: your own calendar, Outlook, the private feed') }}</a></p>
{% endblock %}"""
)

MONTH = (
    """{% extends "base.html" %}
{% block title %}{{ month|local_date('LLLL yyyy') }}{% endblock %}
{% block content %}
<div class="toolbar">
  <h1>{{ _('Calendar of %(name)s', name=whose) }}: {{ month|local_date('LLLL yyyy') }}</h1>
  <div>
    <a class="button" href="{{ url_for('calendar.month', date=prev.isoformat(), **args) }}" aria-label="{{ _('Previous month') }}">‹</a>
    <a class="button" href="{{ url_for('calendar.month', **args) }}">{{ _('This month') }}</a>
    <a class="button" href="{{ url_for('calendar.month', date=next.isoformat(), **args) }}" aria-label="{{ _('Next month') }}">›</a>
    <a class="button" href="{{ url_for('calendar.week', date=month.isoformat(), **args) }}">{{ _('Week') }}</a>
    <a class="button primary" href="{{ url_for('calendar.new') }}">{{ _('New appointment') }}</a>
  </div>
</div>
"""
    + NAV
    + """
<div class="month">
  {% for week in weeks %}
  <div class="month-week">
    {% for day, items in week %}
    <section class="day{% if day.month != month.month %} other{% endif %}{% if day == today %} today{% endif %}">
      <h2><a href="{{ url_for('calendar.week', date=day.isoformat(), **args) }}">{{ day|local_date('EEE d') }}</a></h2>
      {% for e in items %}"""
    + ENTRY
    + """{% endfor %}
    </section>
    {% endfor %}
  </div>
  {% endfor %}
</div>
{% endblock %}"""
)


def _people() -> tuple[list[int] | None, str, Any, Any]:
    """Whose calendar a view showed (web/calendar.py before): ?user=ID, ?group=ID (a team), else yours."""
    from flask import abort, request

    from hub.accounts.users import active_users, all_groups
    from web.context import db_session
    from web.security import user

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


# Weeks around the daylight-saving changes of 2026 (29 March, 25 October), a plain one, this one.
WEEKS = [date(2026, 3, 23), date(2026, 10, 19), date(2026, 6, 8), week_start(datetime.now(UTC).date())]


def _app(settings: Settings, db: Database) -> Flask:
    from web import create_app

    app = create_app(settings, database=db, TESTING=True)
    app.test_client_class = EnglishClient
    return app


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute)


def _seed(db: Database, language: str = "en") -> dict[str, Any]:
    """A reader, a colleague and a team; appointments in each week of WEEKS: his own, his
    colleague's on a project he may not see (busy blocks), hostile titles, a cancelled one, an
    all-day one over two days, a night one across midnight, a weekly series with a moved and a
    dropped occurrence, one without a project or relation."""
    boss = new_user(db, "Boss", admin=True)
    reader = new_user(db, f"Reader {HOSTILE}", language=language)
    colleague = new_user(db, f"Colleague {HOSTILE}")
    gone = new_user(db, "Gone")
    with db.transaction() as s:
        team = save_group(s, f"Team {HOSTILE}", [reader.id, colleague.id, gone.id])
        relation = save_relation(s, RelationInput(name=f"Jansen {HOSTILE}", owner_id=boss.id))
        shared = save_project(
            s,
            s.get_one(User, boss.id),
            ProjectInput(relation_id=relation.id, name="Shared", responsible_user_id=reader.id),
        )
        hidden = save_project(
            s,
            s.get_one(User, boss.id),
            ProjectInput(relation_id=relation.id, name="Hidden", responsible_user_id=boss.id),
        )
        set_linked(s, hidden, [boss.id, colleague.id], [])
        admin = s.get_one(User, boss.id)
        for n, first in enumerate(WEEKS):
            plan: list[tuple[str, datetime, datetime, dict[str, Any]]] = [
                (f"Visit {n} {HOSTILE}", _at(first, 9), _at(first, 10, 30), {"project_id": shared.id}),
                (f"Secret {n}", _at(first, 11), _at(first, 12), {"project_id": hidden.id}),
                (f"Both {n} {HOSTILE}", _at(first + timedelta(days=1), 14), _at(first + timedelta(days=1), 15), {}),
                (
                    f"Cancelled {n}",
                    _at(first + timedelta(days=2), 8),
                    _at(first + timedelta(days=2), 9),
                    {"status": "cancelled"},
                ),
                (f"Fair {n}", _at(first + timedelta(days=3), 0), _at(first + timedelta(days=4), 0), {"all_day": True}),
                (f"Night {n}", _at(first + timedelta(days=5), 23), _at(first + timedelta(days=6), 1, 30), {}),
                (
                    f"Sunday {n}",
                    _at(first + timedelta(days=6), 4, 0),
                    _at(first + timedelta(days=6), 5, 0),
                    {"project_id": hidden.id},
                ),
            ]
            for title, start, end, extra in plan:
                staff = [colleague.id] if "Secret" in title or "Sunday" in title else [reader.id, colleague.id, gone.id]
                save_appointment(
                    s, admin, AppointmentInput(title=title, start=start, end=end, staff_ids=staff, **extra)
                )
        series = save_appointment(
            s,
            admin,
            AppointmentInput(
                title=f"Weekly {HOSTILE}",
                start=_at(WEEKS[0] - timedelta(days=7), 16),
                end=_at(WEEKS[0] - timedelta(days=7), 17),
                rrule="FREQ=WEEKLY;COUNT=6",
                staff_ids=[reader.id],
                project_id=shared.id,
            ),
        )
        # The series keeps its wall-clock time over the change to summer time: its UTC starts move.
        starts = list(times.occurrence_starts(series.rrule, series.start_at, series.tzid, series.all_day))
        move_occurrence(s, admin, series, starts[1], starts[1] + timedelta(hours=2), starts[1] + timedelta(hours=3))
        drop_occurrence(s, admin, series, starts[2])
    with db.transaction() as s:
        s.get_one(User, gone.id).is_active = False  # left: his name is no longer among the staff
    with db.transaction() as s:
        contact = save_contact(s, s.get_one(Relation, relation.id), ContactInput(name=f"Piet {HOSTILE}"))
    return {
        "reader": reader,
        "colleague": colleague,
        "team": team.id,
        "boss": boss,
        "relation": relation.id,
        "contact": contact.id,
        "shared": shared.id,
        "hidden": hidden.id,
    }


def _expected_week(app: Flask, viewer: User, url: str, language: str) -> str:
    """The page as the Jinja templates rendered it from Appointment objects (the code replaced)."""
    import web.calendar as view
    from web.context import db_session

    with app.test_request_context(url, headers={"Accept-Language": language}):
        login_user(viewer)
        first = week_start(view._date_arg())
        people, whose, users, groups = _people()
        items = entries(db_session(), viewer, people, *view._window(first, 7))
        return render_template_string(
            WEEK,
            days=view._by_day(items, first, 7),
            first=first,
            prev=first - timedelta(days=7),
            next=first + timedelta(days=7),
            whose=whose,
            users=users,
            groups=groups,
            names={u.id: u.name for u in users},
            team=bool(view.request.args.get("group")),
            args={k: v for k, v in view.request.args.items() if k in ("user", "group")},
            today=datetime.now(view.LOCAL).date(),
        )


def _expected_month(app: Flask, viewer: User, url: str, language: str) -> str:
    """The month page as the Jinja templates rendered it from Appointment objects."""
    import web.calendar as view
    from web.context import db_session

    with app.test_request_context(url, headers={"Accept-Language": language}):
        login_user(viewer)
        day = view._date_arg()
        first_of_month = day.replace(day=1)
        first = week_start(first_of_month)
        next_month = (first_of_month + timedelta(days=32)).replace(day=1)
        days = ((next_month - first).days + 6) // 7 * 7
        people, whose, users, groups = _people()
        items = entries(db_session(), viewer, people, *view._window(first, days))
        by_day = view._by_day(items, first, days)
        return render_template_string(
            MONTH,
            weeks=[by_day[i : i + 7] for i in range(0, days, 7)],
            month=first_of_month,
            prev=(first_of_month - timedelta(days=1)).replace(day=1),
            next=next_month,
            whose=whose,
            users=users,
            groups=groups,
            args={k: v for k, v in view.request.args.items() if k in ("user", "group")},
            today=datetime.now(view.LOCAL).date(),
        )


def _without_token(page: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token"', page)


@pytest.mark.parametrize("language", ["nl", "en"])
def test_week_and_month_pages_are_what_the_templates_gave(any_db: Database, settings: Settings, language: str) -> None:
    seeded = _seed(any_db, language)
    app = _app(settings, any_db)
    colleague, team = seeded["colleague"], seeded["team"]
    client = log_in(app.test_client(), seeded["reader"])
    shown = 0
    for first in WEEKS:
        for who in (
            "",
            f"&user={colleague.id}",
            f"&group={team}",
            f"&user=0{colleague.id}",
            f"&group={team}&user={colleague.id}",
        ):
            for day in (first, first + timedelta(days=6)):
                url = f"/calendar/week?date={day.isoformat()}{who}"
                page = client.get(url)
                assert page.status_code == 200, url
                with any_db.transaction() as s:
                    viewer = s.get_one(User, seeded["reader"].id)
                    expected = _expected_week(app, viewer, url, language)
                assert _without_token(page.text) == _without_token(expected), url
                shown += page.text.count('class="appt')
    for first in WEEKS:
        for who in ("", f"&user={colleague.id}", f"&group={team}"):
            url = f"/calendar/month?date={(first + timedelta(days=3)).isoformat()}{who}"
            page = client.get(url)
            assert page.status_code == 200, url
            with any_db.transaction() as s:
                viewer = s.get_one(User, seeded["reader"].id)
                expected = _expected_month(app, viewer, url, language)
            assert _without_token(page.text) == _without_token(expected), url
    assert client.get("/calendar/month").text.count('class="day') >= 28
    # What the weeks show: the reader's own, busy blocks, a team's names.
    assert shown > 100
    week = client.get(f"/calendar/week?date={WEEKS[1].isoformat()}&user={colleague.id}").text
    assert 'class="appt busy"' in week and "Secret" not in week
    assert "&lt;script&gt;" in week and "<script>alert" not in week
    team_week = client.get(f"/calendar/week?date={WEEKS[2].isoformat()}&group={team}").text
    assert '<small class="muted">Reader &lt;script&gt;' in team_week
    # The busy word and the days in the reader's language.
    assert ("Bezet" if language == "nl" else "Busy") in week
    assert client.get("/calendar/week").text.count('<section class="day') == 7


def test_week_page_hides_what_the_reader_may_not_see(any_db: Database, settings: Settings) -> None:
    seeded = _seed(any_db)
    app = _app(settings, any_db)
    client = log_in(app.test_client(), seeded["reader"])
    page = client.get(f"/calendar/week?date={WEEKS[0].isoformat()}&user={seeded['colleague'].id}").text
    secret_ids = []
    with any_db.transaction() as s:
        secret_ids = list(s.scalars(select(Appointment.id).where(Appointment.title.like("Secret%"))))
    assert secret_ids and not any(f'/appointments/{i}"' in page for i in secret_ids)
    # The colleague (linked to the project) sees his own appointment there.
    other = log_in(app.test_client(), seeded["colleague"])
    assert "Secret 0" in other.get(f"/calendar/week?date={WEEKS[0].isoformat()}").text
    # A team or person that is not there: as a missing page.
    assert client.get("/calendar/week?group=999999").status_code == 404
    assert client.get("/calendar/week?user=999999").status_code == 404


def _api_items(client: Any, url: str, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(100):
        sep = "&" if "?" in url else "?"
        response = client.get(
            url + (f"{sep}cursor={cursor}" if cursor else ""), headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        body = response.get_json()
        items.extend(body["items"])
        if not body["next"]:
            return items
        cursor = body["next"]
    raise AssertionError("no last page")


def test_appointments_api_is_what_the_model_read_of_the_objects(any_db: Database, settings: Settings) -> None:
    from web.api.calendar import _out

    seeded = _seed(any_db)
    app = _app(settings, any_db)
    client = app.test_client()
    with any_db.transaction() as s:
        reader = s.get_one(User, seeded["reader"].id)
        token = create_token(s, reader, "test")
    colleague = seeded["colleague"]
    since = datetime(2026, 6, 1, tzinfo=UTC)
    for url, condition in (
        ("/api/v1/appointments?per_page=3", None),
        ("/api/v1/appointments?per_page=3&status=cancelled", Appointment.status == "cancelled"),
        (f"/api/v1/appointments?per_page=2&user_id={colleague.id}", "colleague"),
        ("/api/v1/appointments?per_page=5&since=2026-06-01T00:00:00Z", "since"),
    ):
        items = _api_items(client, url, token)
        with any_db.transaction() as s:
            viewer = s.get_one(User, seeded["reader"].id)
            query = appointments_query(viewer).order_by(Appointment.start_at, Appointment.id)
            found = list(s.scalars(query))
            if condition == "colleague":
                found = [a for a in found if any(p.user_id == colleague.id for p in a.attendees)]
            elif condition == "since":
                found = [a for a in found if a.series_end_at is None or a.series_end_at >= since]
            elif condition is not None:
                found = [a for a in found if a.status == "cancelled"]
            expected = [_out(a).model_dump(mode="json") for a in found]
        assert items == expected, url
        assert len(items) > 3  # more than one page
        assert not any(i["title"].startswith(("Secret", "Sunday")) for i in items)
    # Every page of the reader's list, its attendees in their order, hostile names as they are.
    listed = _api_items(client, "/api/v1/appointments?per_page=3", token)
    # Paged by number (integrations from before cursors): the same rows.
    second = client.get("/api/v1/appointments?per_page=3&page=2", headers={"Authorization": f"Bearer {token}"})
    assert second.get_json()["items"] == listed[3:6]
    assert any(a["name"] == f"Colleague {HOSTILE}" for i in listed for a in i["attendees"])
    assert any(i["exdates"] for i in listed)


def _seed_calls(db: Database, seeded: dict[str, Any], count: int) -> None:
    """``count`` calls from two phone systems: the reader's, his colleague's and nobody's; on the
    shared project, the hidden one or none; some with the hostile contact and relation, some
    unmatched (a number, no relation), some at the same moment; hostile numbers and keys."""
    reader_id, colleague_id = seeded["reader"].id, seeded["colleague"].id
    with db.transaction() as s:
        sources = [CallSource(name=f"pbx {HOSTILE}", format="generic"), CallSource(name="cloud", format="generic")]
        s.add_all(sources)
        s.flush()
        start = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
        for n in range(count):
            matched = n % 5 == 1
            s.add(
                Call(
                    source_id=sources[n % 2].id,
                    call_key=f"key-{n}-{HOSTILE}",
                    direction=("inbound", "outbound", "internal")[n % 3],
                    number=f"020 {n:04} <x>" if n % 5 else "",
                    e164=f"+3120{n:07}" if n % 5 else "",
                    # Some at the same moment: the cursor's tie-breaker is the id.
                    started_at=start + timedelta(minutes=(n // 3) * 7),
                    answered_at=start + timedelta(minutes=n * 7, seconds=5) if n % 4 else None,
                    ended_at=start + timedelta(minutes=n * 7, seconds=65),
                    duration=65,
                    billsec=(60 + n) if n % 4 else 0,
                    outcome=("answered", "missed", "busy", "")[n % 4],
                    extension=f"10{n % 3}",
                    recording_url=f"https://pbx.example/r?id={n}&x=<y>" if n % 6 == 0 else "",
                    user_id=(reader_id, colleague_id, None)[n % 3],
                    project_id=(seeded["shared"], seeded["hidden"], None, seeded["hidden"])[n % 4],
                    relation_id=seeded["relation"] if matched else None,
                    contact_id=seeded["contact"] if matched and n % 2 else None,
                )
            )


def test_calls_api_is_what_the_model_read_of_the_objects(any_db: Database, settings: Settings) -> None:
    from web.api import schemas

    seeded = _seed(any_db)
    app = _app(settings, any_db)
    client = app.test_client()
    reader_id = seeded["reader"].id
    with any_db.transaction() as s:
        reader = s.get_one(User, reader_id)
        token = create_token(s, reader, "test")
    _seed_calls(any_db, seeded, 40)
    hidden = seeded["hidden"]
    for url, filters in (
        ("/api/v1/calls?per_page=4", {}),
        ("/api/v1/calls?per_page=3&direction=inbound", {"direction": "inbound"}),
        ("/api/v1/calls?per_page=3&source=cloud", {"source": "cloud"}),
        (f"/api/v1/calls?per_page=2&user_id={reader_id}", {"user_id": reader_id}),
        ("/api/v1/calls?per_page=5&since=2026-10-25T02:00:00Z", {"since": datetime(2026, 10, 25, 2, tzinfo=UTC)}),
    ):
        items = _api_items(client, url, token)
        with any_db.transaction() as s:
            from hub.telephony.read import CallFilters, hidden_links

            viewer = s.get_one(User, reader_id)
            found = list(s.scalars(calls_query(viewer, CallFilters(**filters))))
            # The reader's own calls filed with the hidden project show without it (no id).
            masked = hidden_links(s, viewer, found)
            expected = [masked.masked(schemas.Call.model_validate(c).model_dump(mode="json")) for c in found]
        assert items == expected, url
        assert items
        assert all(item["project_id"] != hidden for item in items), url
    everything = _api_items(client, "/api/v1/calls?per_page=7", token)
    third = client.get("/api/v1/calls?per_page=7&page=3", headers={"Authorization": f"Bearer {token}"})
    assert third.get_json()["items"] == everything[14:21]
    # Hidden: a call on the hidden project that is neither the reader's own nor on his relation.
    with any_db.transaction() as s:
        all_calls = list(s.scalars(select(Call)))
    hidden_calls = {
        c.id for c in all_calls if c.project_id == hidden and c.user_id != reader_id and c.relation_id is None
    }
    assert hidden_calls and not hidden_calls & {i["id"] for i in everything}
    assert any(i["source"] == f"pbx {HOSTILE}" for i in everything)


# "My calls" as its template was before its rows were rendered in Python (web/projects.py
# project_call_rows): the page must still be what this gave.
OLD_MY_CALLS = """{% extends "base.html" %}
{% from "telephony/_list.html" import call_list %}
{% block title %}{{ _('My calls') }}{% endblock %}
{% block content %}
<div class="toolbar"><h1>{{ _('My calls') }}</h1><a href="{{ url_for('telephony.unmatched') }}">{{ _('Unmatched calls') }}</a></div>
<section class="card">
{{ call_list(page, names, {}, _('No calls yet'), _('Calls on your extension appear here by themselves once the phone system is connected.')) }}
</section>
{% endblock %}
"""

CALL_PAGES = {
    "/calls/mine": (OLD_MY_CALLS, {"user_id": "reader"}),
    "/calls/unmatched": ("telephony/unmatched.html", {"unmatched": True}),
    "/contacts/{contact}/calls": ("telephony/relation_calls.html", {"contact_id": "contact"}),
}


@pytest.mark.parametrize("language", ["nl", "en"])
def test_call_pages_are_what_the_call_objects_gave(any_db: Database, settings: Settings, language: str) -> None:
    """ "My calls", the unmatched calls and a contact's calls read plain values in one statement
    (hub.telephony.read.calls_page): the pages must be what the Call objects and their names gave,
    page by page, hidden calls left out."""
    from flask import render_template, render_template_string

    from hub.crm.relations import get_contact
    from hub.telephony.read import CallFilters, call_names, list_calls

    seeded = _seed(any_db, language)
    _seed_calls(any_db, seeded, 90)
    app = _app(settings, any_db)
    client = log_in(app.test_client(), seeded["reader"])
    values = {"reader": seeded["reader"].id, "contact": seeded["contact"]}
    shown = 0
    for path, (template, wanted) in CALL_PAGES.items():
        filters = CallFilters(**{k: values[v] if isinstance(v, str) else v for k, v in wanted.items()})
        for number in (1, 2, 3):
            url = path.format(contact=seeded["contact"]) + f"?page={number}"
            page = client.get(url)
            assert page.status_code == 200, url
            with any_db.transaction() as s, app.test_request_context(url, headers={"Accept-Language": language}):
                viewer = s.get_one(User, seeded["reader"].id)
                login_user(viewer)
                calls = list_calls(s, viewer, filters, page=number)
                extra: dict[str, Any] = {}
                if "contact_id" in wanted:
                    contact = get_contact(s, viewer, seeded["contact"])
                    extra = {"relation": contact.relation, "contact": contact}
                render = render_template_string if template.startswith("{%") else render_template
                expected = render(template, page=calls, names=call_names(s, calls.items), **extra)
            assert _without_token(page.text) == _without_token(expected), url
            shown += page.text.count("<tr class=")
        # A page far beyond any call is an empty page, never a 500 (its OFFSET overflowed PostgreSQL's INTEGER).
        beyond = client.get(path.format(contact=seeded["contact"]) + "?page=2147483647")
        assert beyond.status_code == 200 and "<tr class=" not in beyond.text, path
    assert shown > 50
    mine = client.get("/calls/mine").text
    assert "Piet &lt;script&gt;" in mine and "<script>alert" not in mine
    assert 'rel="next"' in mine


def test_view_entries_are_the_entries_as_plain_values(any_db: Database) -> None:
    """Every week's occurrences as the objects gave them: a person's, two people's, nobody's (an
    empty team), and everything the viewer may see; busy blocks where he may not see one."""
    from web.calendar import _window

    seeded = _seed(any_db)
    people: list[list[int] | None] = [
        [seeded["reader"].id],
        [seeded["colleague"].id],
        [seeded["reader"].id, seeded["colleague"].id],
        [],
        None,
    ]
    busy = 0
    with any_db.transaction() as s:
        for viewer_id in (seeded["reader"].id, seeded["boss"].id):
            viewer = s.get_one(User, viewer_id)
            for first in WEEKS:
                for staff in people:
                    window = _window(first, 7)
                    plain = view_entries(s, viewer, staff, *window)
                    objects = [
                        ViewEntry(
                            e.start_at,
                            e.end_at,
                            e.user_ids,
                            e.appointment.id if e.appointment is not None else None,
                            e.title,
                            e.all_day,
                            e.status,
                            e.recurrence_id,
                        )
                        for e in entries(s, viewer, staff, *window)
                    ]
                    assert plain == objects, (viewer_id, first, staff)
                    busy += sum(e.appointment_id is None for e in plain)
                    # Without the staff: the same, their user_ids left empty.
                    bare = view_entries(s, viewer, staff, *window, with_staff=False)
                    assert bare == [e._replace(user_ids=()) for e in plain]
    assert busy > 0
