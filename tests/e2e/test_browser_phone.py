"""Every main page on a 390 x 844 phone screen in a real headless Chromium: the page never scrolls
sideways (wide tables scroll inside themselves), every main-menu item can be seen and tapped, and the
icon the pages link is served, as is the /favicon.ico browsers ask for on their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Mailbox, MailSecurity, User
from tests.conftest import PASSWORD

PHONE = {"width": 390, "height": 844}
LONG = "Installatiebedrijf Van den Heuvel-Oosterhuizen Duurzame Energie en Klimaattechniek B.V."


@pytest.fixture
def world(db: Database, make_user: Callable[..., User]) -> dict[str, Any]:
    admin = make_user("Margriet van der Heijden-Oosterbeek", admin=True, language="nl")
    with db.transaction() as s:
        me = s.get_one(User, admin.id)
        status = save_choice(s, ChoiceInput(field="status", name="Offerte verstuurd, wacht op akkoord"))
        save_choice(s, ChoiceInput(field="status", name="Gewonnen"))
        kind = save_choice(s, ChoiceInput(field="type", name="Warmtepomp"))
        relation = save_relation(
            s, RelationInput(name=LONG, city="Amersfoort", emails=["info@heuvel-oosterhuizen.example"])
        )
        save_contact(s, relation, ContactInput(name="Annemarie Oosterhuizen", emails=["annemarie@heuvel.example"]))
        projects = [
            save_project(
                s,
                me,
                ProjectInput(
                    relation_id=relation.id,
                    name=f"Warmtepomp en zonnepanelen voor het hoofdkantoor, fase {i}",
                    value="1284500,00",
                    responsible_user_id=admin.id,
                    description="https://example.nl/" + "heel-lange-link-zonder-spaties-" * 8,
                    choices={"status": status.id, "type": kind.id},
                ),
            )
            for i in range(3)
        ]
        s.add(
            Mailbox(
                name="verkoop@heuvel-oosterhuizen-klimaattechniek.example",
                host="imap.heuvel-oosterhuizen-klimaattechniek.example",
                port=993,
                security=MailSecurity.ssl,
                username="verkoop@heuvel-oosterhuizen-klimaattechniek.example",
                password_encrypted="",
                last_error="",
            )
        )
        return {"admin": admin, "relation": relation.id, "project": projects[0].id}


def no_sideways_scrolling(page: Any, url: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{url} is {width} px wide on a {PHONE['width']} px phone"


def test_every_main_page_fits_a_390_px_phone(browser: Any, live_url: str, world: dict[str, Any]) -> None:
    context = browser.new_context(viewport=PHONE, locale="nl-NL", is_mobile=True, has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{live_url}/login")
    no_sideways_scrolling(page, "/login")
    page.fill("#email", world["admin"].email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_url}/projects")

    project, relation = world["project"], world["relation"]
    urls = [
        "/projects",
        "/projects/board",
        "/projects/new",
        *(
            f"/projects/{project}{tab}"
            for tab in ("", "/notepad", "/activities", "/documents", "/emails", "/calls", "/agenda", "/users")
        ),
        f"/projects/{project}/edit",
        "/relations",
        f"/relations/{relation}",
        "/relations/new",
        "/activities",
        "/mail/health",
        "/mail/mailboxes/new",
        "/settings/",
        "/settings/choices",
        "/settings/labels",
        "/settings/users",
        "/search?q=warmtepomp",
    ]
    for url in urls:
        response = page.goto(f"{live_url}{url}")
        assert response is not None and response.status == 200, url
        no_sideways_scrolling(page, url)
        # Wide tables scroll inside themselves rather than squeeze their columns letter by letter.
        for header in page.locator("main th").all():
            box = header.bounding_box()
            assert box is None or box["width"] >= 90, f"{url}: a column {box['width']} px wide"

    # The main menu: every item on screen and tappable (it wraps under the brand, nothing hidden).
    page.goto(f"{live_url}/projects")
    items = page.locator("nav.mainnav a")
    assert items.count() >= 6
    for i in range(items.count()):
        box = items.nth(i).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], items.nth(i)
        assert box["height"] >= 20  # a finger can hit it
    page.locator("nav.mainnav a", has_text="Relaties").tap()
    page.wait_for_url(f"{live_url}/relations")
    expect(page.locator("h1").first).to_have_text("Relaties")
    assert errors == []


def test_the_board_moves_cards_by_select_on_a_phone(browser: Any, live_url: str, world: dict[str, Any]) -> None:
    context = browser.new_context(viewport=PHONE, locale="nl-NL", is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{live_url}/login")
    page.fill("#email", world["admin"].email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_url}/projects")
    page.goto(f"{live_url}/projects/board")
    card = page.locator(".board-card").first
    name = card.locator(".card-name").inner_text()
    card.locator("select[name=status_id]").select_option(label="Gewonnen")
    card.locator("button").tap()
    expect(page.locator('.board-column[aria-label="Gewonnen"] .board-card', has_text=name)).to_have_count(1)
    no_sideways_scrolling(page, "/projects/board")


def test_the_favicon_is_served(browser: Any, live_url: str) -> None:
    page = browser.new_context().new_page()
    page.goto(f"{live_url}/login")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href
    icon = page.request.get(f"{live_url}{href}")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in icon.body()
    automatic = page.request.get(f"{live_url}/favicon.ico")
    assert automatic.status == 200 and automatic.body() == icon.body()
