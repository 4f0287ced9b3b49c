"""English is written as in Europe: day before month and a 24-hour clock (web.i18n.babel_locale).
hub's English readers work for Dutch companies, where Babel's American English ("2/3/26",
"1:05 PM") reads the 3rd of February as the 2nd of March."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask

from hub.calendar.appointments import AppointmentInput, save_appointment
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from tests.conftest import log_in, new_user


def test_an_english_reader_sees_day_month_year_and_a_24_hour_clock(app: Flask, db: Database) -> None:
    english, dutch = new_user(db, "Emma", admin=True), new_user(db, "Daan", admin=True, language="nl")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakkerij Zoet"))
        project = save_project(
            s, english, ProjectInput(name="Ovens", relation_id=relation.id, start_date=date(2026, 2, 3))
        )
        save_appointment(
            s,
            english,
            AppointmentInput(
                title="Oven demo",
                start=datetime(2026, 2, 3, 13, 5),
                end=datetime(2026, 2, 3, 14, 35),
                staff_ids=[english.id, dutch.id],
            ),
        )
        project_id = project.id
    reader = log_in(app.test_client(), english)
    page = reader.get(f"/projects/{project_id}").text
    assert "03/02/2026" in page and "2/3/26" not in page
    week = reader.get("/calendar/week?date=2026-02-03").text
    assert "Oven demo" in week
    assert "13:05" in week and "14:35" in week and "PM" not in week
    listed = reader.get("/projects").text
    assert "Ovens" in listed and "2/3/26" not in listed

    lezer = log_in(app.test_client(), dutch)
    page = lezer.get(f"/projects/{project_id}").text
    assert "03-02-2026" in page
    assert "13:05" in lezer.get("/calendar/week?date=2026-02-03").text
