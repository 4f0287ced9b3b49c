"""The search pages on a 390 x 844 phone in a real headless Chromium: typed into the header's box,
results with long names and addresses never make the page scroll sideways, and "Show all" and
"Next" reach the results beyond the first page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import User
from tests.conftest import PASSWORD

PHONE = {"width": 390, "height": 844}
LONG = "Installatiebedrijf Van den Heuvel-Oosterhuizen Duurzame Energie en Klimaattechniek B.V."


def _width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def test_search_on_a_390_px_phone(browser: Any, live_url: str, db: Database, make_user: Callable[..., User]) -> None:
    user = make_user("Margriet", language="nl")
    with db.transaction() as s:
        me = s.get_one(User, user.id)
        relation = save_relation(s, RelationInput(name=LONG, city="Amersfoort", coc_number="12345678"))
        for n in range(30):
            save_contact(
                s,
                relation,
                ContactInput(
                    name=f"Annemarie Oosterhuizen-Klimaattechniek {n:02d}",
                    emails=[f"annemarie.oosterhuizen.{n}@heuvel-oosterhuizen-klimaattechniek.example"],
                    phones=[f"030 231 {n:04d}"],
                ),
            )
        save_project(s, me, ProjectInput(relation_id=relation.id, name="Oosterhuizen " + "warmtepomp " * 12))
    page = browser.new_context(viewport=PHONE, locale="nl-NL", is_mobile=True, has_touch=True).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_url}/login")
    page.fill("#email", user.email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_url}/projects")

    page.fill("header input[name=q]", "oosterhuizen")
    page.press("header input[name=q]", "Enter")
    page.wait_for_url(f"{live_url}/search?q=oosterhuizen")
    assert _width(page) <= PHONE["width"]
    assert page.locator("h1").inner_text() == "Zoekresultaten voor “oosterhuizen”"
    assert page.locator("#contacts ul.search-results li").count() == 5

    page.locator("#contacts a", has_text="Alle 30 tonen").tap()
    page.wait_for_url("**kind=contacts**")
    assert page.locator("ul.search-results li").count() == 25 and _width(page) <= PHONE["width"]
    page.locator("a[rel=next]").tap()
    page.wait_for_url("**cursor=**")
    assert page.locator("ul.search-results li").count() == 5 and _width(page) <= PHONE["width"]

    page.goto(f"{live_url}/search?q=030 231 00")  # a number, typed with spaces
    assert page.locator("#contacts ul.search-results li").count() == 5
    assert _width(page) <= PHONE["width"]
    assert errors == []
