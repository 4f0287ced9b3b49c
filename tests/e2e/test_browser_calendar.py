"""In a real headless Chromium: make an appointment on a project's Agenda tab and see it in the week
view, on a desktop and on a 390 px phone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.models import User
from tests.conftest import PASSWORD


def test_new_appointment_on_a_project_shows_in_the_week_view(
    browser: Any, live_url: str, db: Database, make_user: Callable[..., User]
) -> None:
    eva = make_user("Eva Agenda", language="en")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Visser Techniek"))
        project = save_project(s, s.get_one(User, eva.id), ProjectInput(relation_id=relation.id, name="Heat pump"))
        project_id = project.id
    day = date.today() + timedelta(days=2)
    context = browser.new_context(locale="en-GB", viewport={"width": 390, "height": 844})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{live_url}/login")
    page.fill("#email", eva.email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_url}/projects")

    page.goto(f"{live_url}/projects/{project_id}/agenda")
    page.click("a.button.primary:has-text('New appointment')")
    page.fill("#title", "Site visit with the installer")
    page.fill("#start_date", day.isoformat())
    page.fill("#start_time", "09:30")
    page.fill("#end_time", "10:45")
    page.fill("#location", "Dorpsstraat 1, Amersfoort")
    page.click("main button[type=submit].primary")
    page.wait_for_selector("h1:has-text('Site visit with the installer')")
    assert "Dorpsstraat 1, Amersfoort" in page.locator("dl.facts").inner_text()
    # Nothing on the page is wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.click("nav.mainnav >> text=Calendar")
    page.goto(f"{live_url}/calendar/week?date={day.isoformat()}")
    entry = page.locator(".week a.appt", has_text="Site visit with the installer")
    assert entry.count() == 1
    assert "9:30" in entry.inner_text() or "09:30" in entry.inner_text()
    entry.click()
    page.wait_for_selector("h1:has-text('Site visit with the installer')")
    page.click(f"a[href='/projects/{project_id}/agenda']")
    assert page.locator("table.agenda tr", has_text="Site visit with the installer").count() == 1
    assert errors == []
