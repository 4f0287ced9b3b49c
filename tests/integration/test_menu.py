"""The top bar's menu and a project's tabs are rendered once per language, section and kind of reader
and then given again (web/menu.py): every reader must still get his own — his language, the section
he is in marked current, Settings for admins only — whoever asked before him on the same app."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.models import User

Login = Callable[[FlaskClient, User], FlaskClient]


def _menu(page: str) -> tuple[list[str], list[str]]:
    """The menu's link texts, and the one(s) marked current."""
    nav = re.search(r'<nav class="mainnav">(.*?)</nav>', page, re.S)
    assert nav, "page has no menu"
    links = re.findall(r'<a href="[^"]+" ?(aria-current="page")?>([^<]+)</a>', nav.group(1))
    return [text for _current, text in links], [text for current, text in links if current]


def _tabs(page: str) -> tuple[list[str], list[str]]:
    nav = re.search(r'<nav class="tabs">(.*?)</nav>', page, re.S)
    assert nav, "page has no tabs"
    links = re.findall(r'<a href="([^"]+)" ?(aria-current="page")?>([^<]+)</a>', nav.group(1))
    return [href for href, _current, _text in links], [text for _href, current, text in links if current]


def test_each_reader_gets_his_own_menu_and_tabs(
    app: Flask, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    admin = make_user("Boss", admin=True, language="en")
    dutch = make_user("Henk", language="nl")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakker BV"))
        ids = [save_project(s, admin, ProjectInput(relation_id=relation.id, name=f"P{n}")).id for n in range(2)]
    boss, henk = login(app.test_client(), admin), login(app.test_client(), dutch)
    for _ in range(2):  # the second round is answered from what the first one kept
        links, current = _menu(boss.get("/projects").text)
        assert links[0] == "Projects" and links[-1] == "Settings" and current == ["Projects"]
        links, current = _menu(henk.get("/projects").text)
        assert links[0] == "Projecten" and "Settings" not in links and "Instellingen" not in links
        assert current == ["Projecten"]
        assert _menu(henk.get("/relations").text)[1] == ["Relaties"]
        assert _menu(boss.get("/settings/").text)[1] == ["Settings"]
        # Calls is current on the calls pages, but not on the phone systems' set-up (under Settings).
        assert _menu(boss.get("/calls/mine").text)[1] == ["Calls"]
        assert _menu(boss.get("/settings/telephony").text)[1] == []
        for project_id in ids:
            hrefs, current = _tabs(boss.get(f"/projects/{project_id}/notepad").text)
            assert hrefs[0] == f"/projects/{project_id}" and f"/projects/{project_id}/notepad" in hrefs
            assert current == ["Notepad"] and len(hrefs) == 8
            hrefs, current = _tabs(henk.get(f"/projects/{project_id}").text)
            assert current == ["Samenvatting"] and hrefs[-1] == f"/projects/{project_id}/users"
