"""In a real headless Chromium: log in, create a relation and a project with choices, see it listed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from hub.crm.choices import ChoiceInput, save_choice
from hub.db import Database
from hub.models import User
from tests.conftest import PASSWORD


def test_create_relation_and_project_in_the_browser(
    browser: Any, live_url: str, db: Database, make_user: Callable[..., User]
) -> None:
    user = make_user("Eva Browser", language="en")
    with db.transaction() as s:
        save_choice(s, ChoiceInput(field="status", name="Offer sent"))
        save_choice(s, ChoiceInput(field="type", name="Maintenance"))
        save_choice(s, ChoiceInput(field="chance", name="75%"))
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{live_url}/login")
    page.fill("#email", user.email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_url}/projects")
    assert page.locator("h1").first.inner_text() == "Projects"

    page.click("text=Relations")
    page.click("text=New relation")
    page.fill("#name", "Visser Techniek")
    page.fill("#city", "Amersfoort")
    page.fill("#emails", "info@visser.example")
    page.click("main button[type=submit]")
    page.wait_for_selector("h1:has-text('Visser Techniek')")

    page.click("a.button.primary:has-text('New project')")
    page.fill("#name", "Heat pump installation")
    page.select_option("#status", label="Offer sent")
    page.select_option("#type", label="Maintenance")
    page.select_option("#chance", label="75%")
    page.fill("#value", "8.400,00")
    page.click("main button[type=submit]")
    page.wait_for_selector("h1:has-text('Heat pump installation')")
    summary = page.locator("dl.summary").inner_text()
    assert "Offer sent" in summary and "Maintenance" in summary and "75%" in summary and "8.400,00" in summary

    page.click("nav.mainnav >> text=Projects")
    row = page.locator("tr", has_text="Heat pump installation")
    assert row.count() == 1
    assert "Visser Techniek" in row.inner_text() and "Offer sent" in row.inner_text()

    # The relation picker on a fresh project form finds the relation by typing part of its name.
    page.goto(f"{live_url}/projects/new")
    page.fill("#relation_name", "Visser Techniek")
    expect(page.locator("#relation_id")).to_have_value(re.compile(r"^\d+$"))
    assert errors == []
    context.close()
