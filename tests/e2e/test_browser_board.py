"""The pipeline board in a real headless Chromium: dragging a card to another column changes the
project's status in the database; a drag based on a board that went stale (a colleague changed the
project meanwhile) is refused on the card and overwrites nothing; the card's select works as well."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.models import Project, User
from tests.conftest import PASSWORD


def log_in(browser: Any, live_url: str, user: User) -> Any:
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(f"{live_url}/login")
    page.fill("#email", user.email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_url}/projects")
    return page


def card(page: Any, name: str) -> Any:
    return page.locator(".board-card", has_text=name)


def column(page: Any, title: str) -> Any:
    return page.locator(f'.board-column[aria-label="{title}"]')


def test_drag_a_card_to_another_status_and_a_stale_drag_is_refused(
    browser: Any, live_url: str, db: Database, make_user: Callable[..., User]
) -> None:
    eva = make_user("Eva Board", language="en")
    with db.transaction() as s:
        lead = save_choice(s, ChoiceInput(field="status", name="Lead", sort_order=1))
        offer = save_choice(s, ChoiceInput(field="status", name="Offer sent", sort_order=2))
        won = save_choice(s, ChoiceInput(field="status", name="Won", sort_order=3))
        relation = save_relation(s, RelationInput(name="Visser Techniek"))
        me = s.get_one(User, eva.id)
        heat = save_project(
            s,
            me,
            ProjectInput(
                relation_id=relation.id,
                name="Heat pump",
                value="8400",
                responsible_user_id=eva.id,
                choices={"status": lead.id},
            ),
        )
        solar = save_project(
            s, me, ProjectInput(relation_id=relation.id, name="Solar roof", choices={"status": lead.id})
        )
        heat_id, solar_id = heat.id, solar.id
    page = log_in(browser, live_url, eva)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_url}/projects/board")
    expect(page.locator(".board-column h2")).to_have_count(3)
    heat_card = card(page, "Heat pump")
    expect(heat_card).to_contain_text("Visser Techniek")
    expect(heat_card).to_contain_text("8.400,00")
    expect(heat_card).to_contain_text("Eva Board")

    # Drag "Heat pump" from Lead to Offer sent.
    heat_card.drag_to(column(page, "Offer sent"), source_position={"x": 4, "y": 4})
    expect(column(page, "Offer sent").locator(".board-card", has_text="Heat pump")).to_have_count(1)
    expect(heat_card.locator("select[name=status_id]")).to_have_value(str(offer.id))
    # The answer has come: the card carries the version now stored, for its next move.
    expect(heat_card.locator("input[name=version]")).to_have_value("2")
    with db.transaction() as s:
        stored = s.get_one(Project, heat_id)
        assert stored.status_id == offer.id and stored.version == 2
    expect(column(page, "Offer sent").locator("[data-count]")).to_have_text("1")
    expect(column(page, "Lead").locator("[data-count]")).to_have_text("1")

    # A colleague moves "Solar roof" to Won meanwhile; this board still shows it under Lead.
    with db.transaction() as s:
        colleague = s.get_one(Project, solar_id)
        save_project(
            s,
            s.get_one(User, eva.id),
            ProjectInput(relation_id=colleague.relation_id, name="Solar roof", choices={"status": won.id}),
            colleague,
            expected_version=colleague.version,
        )
    solar_card = card(page, "Solar roof")
    solar_card.drag_to(column(page, "Offer sent"), source_position={"x": 4, "y": 4})
    expect(solar_card.locator(".card-error")).to_contain_text("changed this project meanwhile")
    # The card now shows what is saved: under Won, not where it was dropped.
    expect(column(page, "Won").locator(".board-card", has_text="Solar roof")).to_have_count(1)
    with db.transaction() as s:
        assert s.get_one(Project, solar_id).status_id == won.id  # nothing overwritten

    # Moving it again is based on the version now stored: allowed, with the card's select this time.
    solar_card.locator("select[name=status_id]").select_option(str(offer.id))
    solar_card.locator("button", has_text="Move").click()
    expect(column(page, "Offer sent").locator(".board-card", has_text="Solar roof")).to_have_count(1)
    expect(solar_card.locator(".card-error")).to_be_hidden()
    with db.transaction() as s:
        assert s.get_one(Project, solar_id).status_id == offer.id
    # What the board shows survives a reload.
    page.reload()
    expect(column(page, "Offer sent").locator(".board-card")).to_have_count(2)
    assert errors == []


def test_the_board_works_without_javascript(
    browser: Any, live_url: str, db: Database, make_user: Callable[..., User]
) -> None:
    eva = make_user("Eva Plain", language="en")
    with db.transaction() as s:
        lead = save_choice(s, ChoiceInput(field="status", name="Lead", sort_order=1))
        won = save_choice(s, ChoiceInput(field="status", name="Won", sort_order=2))
        relation = save_relation(s, RelationInput(name="Bakker BV"))
        project = save_project(
            s,
            s.get_one(User, eva.id),
            ProjectInput(
                relation_id=relation.id, name="Kitchen", responsible_user_id=eva.id, choices={"status": lead.id}
            ),
        )
        project_id = project.id
    context = browser.new_context(locale="en-GB", java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_url}/login")
    page.fill("#email", eva.email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_url}/projects")
    page.goto(f"{live_url}/projects/board?responsible={eva.id}")
    kitchen = card(page, "Kitchen")
    kitchen.locator("select[name=status_id]").select_option(str(won.id))
    kitchen.locator("button", has_text="Move").click()
    page.wait_for_url(f"{live_url}/projects/board?responsible={eva.id}")
    expect(column(page, "Won").locator(".board-card", has_text="Kitchen")).to_have_count(1)
    # The filter the board was opened with is kept.
    expect(page.locator("select[name=responsible]")).to_have_value(str(eva.id))
    with db.transaction() as s:
        assert s.get_one(Project, project_id).status_id == won.id
