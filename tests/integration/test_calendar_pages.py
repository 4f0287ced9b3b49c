"""Calendar pages: "New appointment" on a project's Agenda tab, the week and month views, the
appointment page; bad input explained on the form (DST gaps and overlaps, end before start, a contact
without an e-mail address); a colleague who may not see the project gets a 404 and a "Busy" block;
the private ICS feed parsed back, and revoked."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from flask.testing import FlaskClient
from icalendar import Calendar

from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Appointment, User
from tests.conftest import csrf_token

NEXT_MONDAY = date(2026, 12, 7)


def _project(db: Database, admin: User, responsible: User, *, only: list[User] | None = None) -> tuple[int, int, int]:
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakkerij Jansen"))
        with_mail = save_contact(s, relation, ContactInput(name="Piet Jansen", emails=["piet@jansen.example"]))
        without = save_contact(s, relation, ContactInput(name="Kees Zonder"))
        project = save_project(
            s, admin, ProjectInput(relation_id=relation.id, name="New oven", responsible_user_id=responsible.id)
        )
        if only is not None:
            set_linked(s, project, [u.id for u in only], [])
        return project.id, with_mail.id, without.id


def _new(client: FlaskClient, project_id: int, **fields: object) -> object:
    page = client.get(f"/appointments/new?project_id={project_id}")
    assert page.status_code == 200
    data = {
        "csrf_token": csrf_token(page.text),
        "title": "Oven demo",
        "start_date": NEXT_MONDAY.isoformat(),
        "start_time": "10:00",
        "end_time": "11:30",
        "timezone": "Europe/Amsterdam",
        "repeat": "",
        "interval": "1",
        "status": "planned",
        **fields,
    }
    return client.post(f"/appointments/new?project_id={project_id}", data=data)


def test_new_appointment_on_the_agenda_tab_shows_in_the_week_and_month(
    client: FlaskClient, db: Database, make_user: Callable[..., User], login: Callable[..., FlaskClient]
) -> None:
    admin, anna = make_user("Admin", admin=True), make_user("Anna")
    project_id, piet_id, _kees = _project(db, admin, anna)
    login(client, anna)
    tab = client.get(f"/projects/{project_id}/agenda")
    assert "No appointments yet" in tab.text and f"/appointments/new?project_id={project_id}" in tab.text

    saved = _new(client, project_id, contacts=[str(piet_id)], location="Dorpsstraat 1")
    assert saved.status_code == 302  # type: ignore[attr-defined]
    appointment_id = int(re.search(r"/appointments/(\d+)", saved.headers["Location"]).group(1))  # type: ignore[attr-defined, union-attr]
    with db.transaction() as s:
        appointment = s.get_one(Appointment, appointment_id)
        # The responsible user by default, and the contact with his address.
        assert sorted(a.email for a in appointment.attendees) == sorted([anna.email, "piet@jansen.example"])
        assert appointment.start_at.hour == 9  # 10:00 in Amsterdam in December is 09:00 UTC

    page = client.get(f"/appointments/{appointment_id}")
    assert "Oven demo" in page.text and "changed last" in page.text and "Created" in page.text
    assert "Oven demo" in client.get(f"/projects/{project_id}/agenda").text
    week = client.get(f"/calendar/week?date={NEXT_MONDAY.isoformat()}")
    assert "Oven demo" in week.text and "10:00" in week.text
    assert "Oven demo" in client.get(f"/calendar/month?date={NEXT_MONDAY.isoformat()}").text
    assert "Oven demo" not in client.get("/calendar/week?date=2026-12-14").text


def test_bad_input_is_explained_on_the_form(
    client: FlaskClient, db: Database, make_user: Callable[..., User], login: Callable[..., FlaskClient]
) -> None:
    admin, anna = make_user("Admin", admin=True), make_user("Anna")
    project_id, _piet, kees_id = _project(db, admin, anna)
    login(client, anna)
    gap = _new(client, project_id, start_date="2026-03-29", start_time="02:30", end_time="03:30")
    assert gap.status_code == 400  # type: ignore[attr-defined]
    assert "does not exist in Europe/Amsterdam" in gap.text  # type: ignore[attr-defined]
    assert 'value="Oven demo"' in gap.text  # type: ignore[attr-defined]  (the input is kept)
    twice = _new(client, project_id, start_date="2026-10-25", start_time="02:30", end_time="04:00")
    assert twice.status_code == 400 and "occurs twice" in twice.text  # type: ignore[attr-defined]
    backwards = _new(client, project_id, start_time="11:00", end_time="10:00")
    assert backwards.status_code == 400 and "The end is before the start." in backwards.text  # type: ignore[attr-defined]
    no_mail = _new(client, project_id, contacts=[str(kees_id)])
    assert no_mail.status_code == 400 and "Kees Zonder has no e-mail address" in no_mail.text  # type: ignore[attr-defined]
    with db.transaction() as s:
        assert s.query(Appointment).count() == 0


def test_a_colleague_who_may_not_see_the_project_gets_404_and_sees_busy(
    client: FlaskClient, app: object, db: Database, make_user: Callable[..., User], login: Callable[..., FlaskClient]
) -> None:
    admin, anna, bert = make_user("Admin", admin=True), make_user("Anna"), make_user("Bert")
    project_id, _piet, _kees = _project(db, admin, anna, only=[anna])
    login(client, anna)
    saved = _new(client, project_id, staff=[str(anna.id), str(bert.id)], title="Secret takeover talk")
    assert saved.status_code == 302  # type: ignore[attr-defined]
    appointment_id = int(saved.headers["Location"].rsplit("/", 1)[1])  # type: ignore[attr-defined]

    other = app.test_client()  # type: ignore[attr-defined]
    login(other, bert)
    assert other.get(f"/appointments/{appointment_id}").status_code == 404
    assert other.get(f"/appointments/{appointment_id}/edit").status_code == 404
    assert other.post(f"/appointments/{appointment_id}/delete", data={}).status_code in (400, 404)
    week = other.get(f"/calendar/week?date={NEXT_MONDAY.isoformat()}")
    assert "Secret takeover talk" not in week.text and "Busy" in week.text
    team = other.get(f"/calendar/week?date={NEXT_MONDAY.isoformat()}&user={anna.id}")
    assert "Secret takeover talk" not in team.text and "Busy" in team.text

    # The feed Bert subscribes to shows the time, not the subject.
    settings_page = other.get("/calendar/settings")
    made = other.post("/calendar/feed-url", data={"csrf_token": csrf_token(settings_page.text), "action": "new"})
    url = re.search(r'value="(http[^"]+\.ics)"', made.text).group(1)  # type: ignore[union-attr]
    feed = client.get(url.replace("http://localhost", ""))
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    (event,) = Calendar.from_ical(feed.data).walk("VEVENT")
    assert str(event["summary"]) == "Busy" and "description" not in event and "attendee" not in event
    assert str(event["class"]) == "PRIVATE"

    # Anna's own feed shows the appointment in full; revoking the address ends it.
    mine = client.get("/calendar/settings")
    made = client.post("/calendar/feed-url", data={"csrf_token": csrf_token(mine.text), "action": "new"})
    url = re.search(r'value="(http[^"]+\.ics)"', made.text).group(1)  # type: ignore[union-attr]
    (event,) = Calendar.from_ical(client.get(url.replace("http://localhost", "")).data).walk("VEVENT")
    assert str(event["summary"]) == "Secret takeover talk"
    assert event.decoded("dtstart").hour == 10 and str(event.decoded("dtstart").tzinfo) == "Europe/Amsterdam"
    mine = client.get("/calendar/settings")
    client.post("/calendar/feed-url", data={"csrf_token": csrf_token(mine.text), "action": "revoke"})
    assert client.get(url.replace("http://localhost", "")).status_code == 404


def test_plan_a_visit_from_an_activity(
    client: FlaskClient, db: Database, make_user: Callable[..., User], login: Callable[..., FlaskClient]
) -> None:
    from hub.crm.activities import ActivityInput, save_activity
    from hub.models import Project

    admin, anna, bert = make_user("Admin", admin=True), make_user("Anna"), make_user("Bert")
    project_id, _piet, _kees = _project(db, admin, anna, only=[anna])
    with db.transaction() as s:
        project = s.get_one(Project, project_id)
        activity = save_activity(
            s, s.get_one(User, anna.id), project, ActivityInput(title="Visit the bakery", due_date=NEXT_MONDAY)
        )
        activity_id = activity.id
    login(client, anna)
    assert f'href="/appointments/new?activity_id={activity_id}"' in client.get(f"/activities/{activity_id}/edit").text
    page = client.get(f"/appointments/new?activity_id={activity_id}")
    assert 'value="Visit the bakery"' in page.text and NEXT_MONDAY.isoformat() in page.text
    saved = client.post(
        f"/appointments/new?activity_id={activity_id}",
        data={
            "csrf_token": csrf_token(page.text),
            "title": "Visit the bakery",
            "start_date": NEXT_MONDAY.isoformat(),
            "start_time": "14:00",
            "end_time": "15:00",
            "timezone": "Europe/Amsterdam",
            "interval": "1",
            "status": "planned",
        },
    )
    assert saved.status_code == 302
    with db.transaction() as s:
        appointment = s.query(Appointment).one()
        assert (appointment.activity_id, appointment.project_id) == (activity_id, project_id)
    client.get("/logout")
    login(client, bert)
    assert client.get(f"/appointments/new?activity_id={activity_id}").status_code == 404
