"""The project list's filters and the pipeline board, as a sales team uses them: filters that keep their
values through sorting and Next pages, "my open projects" in one click, a board with a column per status
in the Settings order, bounded columns, a status change that respects versions, and never a project the
user may not see; bad filter values explained, never a 500. On SQLite and on PostgreSQL."""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.accounts.users import UserInput, create_user
from hub.config import Settings
from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.projects import BOARD_COLUMN_LIMIT, ProjectInput, save_project, set_linked
from hub.crm.relations import RelationInput, save_relation, set_relation_linked
from hub.db import Database
from hub.models import Project, User
from tests.conftest import PASSWORD, EnglishClient, csrf_token

_n = itertools.count(1)


@pytest.fixture
def site(any_db: Database, settings: Settings) -> Iterator[Flask]:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    yield app


def person(db: Database, name: str, *, admin: bool = False) -> User:
    with db.transaction() as s:
        return create_user(
            s,
            UserInput(
                email=f"{name.lower()}{next(_n)}@staff.example",
                name=name,
                password=PASSWORD,
                is_admin=admin,
                language="en",
            ),
        )


def logged_in(app: Flask, user: User) -> FlaskClient:
    client = app.test_client()
    page = client.get("/login")
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 302
    return client


@dataclass
class Team:
    eva: User
    piet: User
    admin: User
    ids: dict[str, int]


@pytest.fixture
def team(any_db: Database) -> Team:
    """Eva's and Piet's projects across statuses, types and chances; some hidden from Eva."""
    eva, piet, admin = person(any_db, "Eva"), person(any_db, "Piet"), person(any_db, "Admin", admin=True)
    ids: dict[str, int] = {}
    with any_db.transaction() as s:
        # Settings order: Lead, Offer sent, Won (sort_order), whatever their names.
        for name, order in (("Won", 3), ("Lead", 1), ("Offer sent", 2)):
            ids[name] = save_choice(s, ChoiceInput(field="status", name=name, sort_order=order)).id
        dormant = save_choice(s, ChoiceInput(field="status", name="Dormant", sort_order=9))
        ids["Dormant"] = dormant.id
        ids["Unused"] = save_choice(s, ChoiceInput(field="status", name="Unused old", sort_order=8, active=False)).id
        for name in ("Installation", "Maintenance"):
            ids[name] = save_choice(s, ChoiceInput(field="type", name=name)).id
        for name in ("25%", "75%"):
            ids[name] = save_choice(s, ChoiceInput(field="chance", name=name)).id
        bakker = save_relation(s, RelationInput(name="Bakker BV"))
        visser = save_relation(s, RelationInput(name="Visser NV"))
        secret = save_relation(s, RelationInput(name="Geheim BV"))
        set_relation_linked(s, secret, [piet.id], [])
        ids.update(bakker=bakker.id, visser=visser.id, secret=secret.id)

        def project(name: str, relation: int, **fields: Any) -> Project:
            choices = {k: fields.pop(k) for k in ("status", "type", "chance") if k in fields}
            return save_project(
                s,
                admin,
                ProjectInput(relation_id=relation, name=name, choices=choices, **fields),
            )

        # 31 matching "Eva, open, Offer sent, Installation, 75%, Bakker": more than one page (25).
        for i in range(31):
            project(
                f"Match {i:02}",
                bakker.id,
                status=ids["Offer sent"],
                type=ids["Installation"],
                chance=ids["75%"],
                responsible_user_id=eva.id,
                value=f"{1000 + i}",
            )
        # Near misses, one filter each.
        project("Closed one", bakker.id, status=ids["Offer sent"], type=ids["Installation"], chance=ids["75%"],
                responsible_user_id=eva.id, closed=True)  # fmt: skip
        project("Other status", bakker.id, status=ids["Lead"], type=ids["Installation"], chance=ids["75%"],
                responsible_user_id=eva.id)  # fmt: skip
        project("Other type", bakker.id, status=ids["Offer sent"], type=ids["Maintenance"], chance=ids["75%"],
                responsible_user_id=eva.id)  # fmt: skip
        project("Other chance", bakker.id, status=ids["Offer sent"], type=ids["Installation"], chance=ids["25%"],
                responsible_user_id=eva.id)  # fmt: skip
        project("Piet's", bakker.id, status=ids["Offer sent"], type=ids["Installation"], chance=ids["75%"],
                responsible_user_id=piet.id)  # fmt: skip
        project("Other relation", visser.id, status=ids["Offer sent"], type=ids["Installation"], chance=ids["75%"],
                responsible_user_id=eva.id)  # fmt: skip
        project("No status", visser.id, responsible_user_id=eva.id)
        project("Dormant deal", visser.id, status=ids["Dormant"], responsible_user_id=piet.id)
        # Deactivated later: it stays on the project that has it, but takes no new ones.
        save_choice(s, ChoiceInput(field="status", name="Dormant", sort_order=9, active=False), dormant)
        # Hidden from Eva although every filter matches: linked to Piet only, or of a restricted relation.
        hidden = project("Hidden linked", bakker.id, status=ids["Offer sent"], type=ids["Installation"],
                         chance=ids["75%"], responsible_user_id=piet.id)  # fmt: skip
        set_linked(s, hidden, [piet.id], [])
        ids["hidden"] = hidden.id
        ids["hidden_relation"] = project("Hidden relation", secret.id, status=ids["Offer sent"],
                                         type=ids["Installation"], chance=ids["75%"]).id  # fmt: skip
        ids["match"] = s.scalar(select(Project.id).where(Project.name == "Match 00")) or 0
    return Team(eva, piet, admin, ids)


NAME_RE = re.compile(r'<a href="/projects/\d+">([^<]+)</a>')


def names_through_pages(client: FlaskClient, url: str) -> tuple[list[str], list[str]]:
    """Every project name of a list, following its Next links; and the Next links themselves."""
    names: list[str] = []
    nexts: list[str] = []
    while True:
        page = client.get(url)
        assert page.status_code == 200, page.text
        names += [html.unescape(n) for n in NAME_RE.findall(page.text)]
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        if not found:
            return names, nexts
        url = html.unescape(found.group(1))
        nexts.append(url)


def test_filters_combine_and_next_pages_keep_them(site: Flask, team: Team) -> None:
    eva = logged_in(site, team.eva)
    ids = team.ids
    url = (
        f"/projects?status={ids['Offer sent']}&type={ids['Installation']}&chance={ids['75%']}"
        f"&responsible={team.eva.id}&relation={ids['bakker']}&open=1&sort=name"
    )
    names, nexts = names_through_pages(eva, url)
    assert names == [f"Match {i:02}" for i in range(31)]  # in name order, over two pages, nothing else
    assert nexts, "31 rows take more than one page"
    kept = parse_qs(urlsplit(nexts[0]).query)
    assert kept["status"] == [str(ids["Offer sent"])] and kept["relation"] == [str(ids["bakker"])]
    assert kept["open"] == ["1"] and kept["responsible"] == [str(team.eva.id)] and kept["sort"] == ["name"]
    # The form shows what it filters on.
    page = eva.get(url).text
    assert f'<option value="{ids["Offer sent"]}" selected>' in page
    assert f'<option value="{team.eva.id}" selected>' in page
    assert 'value="Bakker BV"' in page

    # Each filter on its own lets its near miss in.
    base = f"/projects?status={ids['Offer sent']}&type={ids['Installation']}&chance={ids['75%']}&open=1"
    assert "Piet&#39;s" in eva.get(base).text or "Piet's" in names_through_pages(eva, base)[0]
    closed, _ = names_through_pages(eva, f"/projects?open=closed&responsible={team.eva.id}")
    assert closed == ["Closed one"]
    every, _ = names_through_pages(eva, f"/projects?open=all&relation={ids['visser']}")
    assert sorted(every) == ["Dormant deal", "No status", "Other relation"]
    # Projects without a status (the board's "No status" column links here).
    unset, _ = names_through_pages(eva, "/projects?status=none&open=all")
    assert unset == ["No status"]
    assert [title for title, _cards in columns(eva.get("/projects/board?status=none").text)] == ["No status"]
    # The relation typed by name (no JavaScript picker) works as well.
    typed, _ = names_through_pages(eva, "/projects?relation_name=visser+nv&open=all")
    assert sorted(typed) == sorted(every)


def test_hidden_projects_never_show_in_the_list_or_on_the_board(site: Flask, team: Team) -> None:
    eva = logged_in(site, team.eva)
    for url in ("/projects?open=all", f"/projects?status={team.ids['Offer sent']}", "/projects?q=hidden"):
        names, _ = names_through_pages(eva, url)
        assert not {"Hidden linked", "Hidden relation"} & set(names), url
    board = eva.get("/projects/board?open=all").text
    assert "Hidden" not in board and "Geheim" not in board
    # Piet sees his.
    piet = logged_in(site, team.piet)
    names, _ = names_through_pages(piet, "/projects?q=hidden")
    assert sorted(names) == ["Hidden linked", "Hidden relation"]
    # A restricted relation is as unknown as a missing one, as a filter too.
    hidden_relation = eva.get(f"/projects?relation={team.ids['secret']}")
    missing_relation = eva.get("/projects?relation=999999")
    assert hidden_relation.status_code == missing_relation.status_code == 400
    assert "There is no such relation" in hidden_relation.text
    assert "Hidden relation" not in hidden_relation.text


def test_my_open_projects_in_one_click(site: Flask, team: Team) -> None:
    eva = logged_in(site, team.eva)
    page = eva.get("/projects").text
    link = html.unescape(re.search(r'<a href="([^"]+)" class="my-open">', page).group(1))  # type: ignore[union-attr]
    names, _ = names_through_pages(eva, link)
    expected = {f"Match {i:02}" for i in range(31)} | {
        "Other status",
        "Other type",
        "Other chance",
        "Other relation",
        "No status",
    }
    assert set(names) == expected and len(names) == len(expected)


@pytest.mark.parametrize(
    "query",
    [
        "status=abc",
        "status=99999999999999999999",
        "status=-1",
        "type=%00",
        "chance=1e3",
        "responsible=0",
        "responsible=2147483648",
        "relation=%EF%BF%BD",
        "open=maybe",
        "q=%00nul",
        "q=" + "x" * 5000,
        "cursor=broken&status=abc",
    ],
)
def test_bad_filter_values_are_explained_not_an_error(site: Flask, team: Team, query: str) -> None:
    eva = logged_in(site, team.eva)
    for path in ("/projects", "/projects/board"):
        response = eva.get(f"{path}?{query}")
        assert response.status_code in {200, 400}, (path, query, response.status_code)
        if response.status_code == 400:
            assert 'role="alert"' in response.text and "this filter is left out" in response.text


def test_a_choice_of_another_dropdown_is_no_filter(site: Flask, team: Team) -> None:
    eva = logged_in(site, team.eva)
    response = eva.get(f"/projects?status={team.ids['Installation']}")
    assert response.status_code == 400 and "There is no such choice" in response.text


def columns(page: str) -> list[tuple[str, list[str]]]:
    """(column title, card names) of the board, left to right."""
    result = []
    for section in re.findall(r'<section class="board-column.*?</section>', page, re.S):
        title = re.search(r"<h2>(.*?) <span", section, re.S).group(1).strip()  # type: ignore[union-attr]
        cards = re.findall(r'<a class="card-name" href="/projects/\d+">([^<]+)</a>', section)
        result.append((html.unescape(title), [html.unescape(c) for c in cards]))
    return result


def test_board_has_a_column_per_status_in_settings_order(site: Flask, team: Team) -> None:
    eva = logged_in(site, team.eva)
    board = columns(eva.get("/projects/board").text)
    titles = [title for title, _cards in board]
    # "No status" only because a project has none; the inactive "Dormant" only because one has it;
    # the inactive "Unused old" not at all.
    assert titles == ["No status", "Lead", "Offer sent", "Won", "Dormant"]
    offer = dict(board)["Offer sent"]
    assert "Closed one" not in offer  # open projects by default
    assert len(offer) == 31 + 4  # the matches, other type/chance/relation, Piet's
    assert dict(board)["Won"] == []
    # Filters apply to the board as to the list.
    mine = columns(eva.get(f"/projects/board?responsible={team.piet.id}&open=all").text)
    assert dict(mine)["Offer sent"] == ["Piet's"] and dict(mine)["Dormant"] == ["Dormant deal"]


def test_a_board_column_is_bounded_with_a_link_to_the_rest(site: Flask, team: Team, any_db: Database) -> None:
    with any_db.transaction() as s:
        admin = s.get_one(User, team.admin.id)
        for i in range(BOARD_COLUMN_LIMIT + 5):
            save_project(s, admin, ProjectInput(relation_id=team.ids["visser"], name=f"Lead {i}",
                                                choices={"status": team.ids["Lead"]}))  # fmt: skip
    eva = logged_in(site, team.eva)
    page = eva.get("/projects/board").text
    lead = dict(columns(page))["Lead"]
    assert len(lead) == BOARD_COLUMN_LIMIT
    assert "Lead 54" in lead  # most recently changed first
    more = re.search(r'<a class="board-more" href="([^"]+)">([^<]+)</a>', page)
    assert more and "6 more in the list" in more.group(2)  # 55 + "Other status"
    names, _ = names_through_pages(eva, html.unescape(more.group(1)))
    assert len(names) == BOARD_COLUMN_LIMIT + 6


def move(client: FlaskClient, project_id: int, status: int | str, version: Any, *, js: bool = True) -> Any:
    token = csrf_token(client.get("/projects/board").text)
    headers = {"Accept": "application/json"} if js else {}
    return client.post(
        f"/projects/{project_id}/status",
        data={"csrf_token": token, "status_id": str(status), "version": str(version), "next": "/projects/board"},
        headers=headers,
    )


def test_moving_a_card_changes_the_status_and_a_stale_move_is_refused(
    site: Flask, team: Team, any_db: Database
) -> None:
    eva, piet = logged_in(site, team.eva), logged_in(site, team.piet)
    project_id = team.ids["match"]
    with any_db.transaction() as s:
        version = s.get_one(Project, project_id).version
    moved = move(eva, project_id, team.ids["Won"], version)
    assert moved.status_code == 200 and moved.json["status_id"] == team.ids["Won"]
    assert moved.json["version"] == version + 1
    # Piet's board was opened before: his move, based on the old version, is refused with both shown.
    stale = move(piet, project_id, team.ids["Lead"], version)
    assert stale.status_code == 409
    assert "changed this project meanwhile" in stale.json["error"]
    assert stale.json["status_id"] == team.ids["Won"] and stale.json["version"] == version + 1
    with any_db.transaction() as s:
        assert s.get_one(Project, project_id).status_id == team.ids["Won"]
    # Without JavaScript: the card's select and button; the board again with the message.
    plain = move(piet, project_id, team.ids["Lead"], version, js=False)
    assert plain.status_code == 303 and plain.headers["Location"].endswith("/projects/board")
    assert "changed this project meanwhile" in piet.get("/projects/board").text
    ok = move(piet, project_id, team.ids["Lead"], version + 1, js=False)
    assert ok.status_code == 302
    # Clearing the status ("No status" column) is a move too.
    cleared = move(eva, project_id, "", version + 2)
    assert cleared.status_code == 200 and cleared.json["status_id"] is None


@pytest.mark.parametrize("version", ["", "abc", "99999999999999999999", "-1"])
def test_a_move_without_a_usable_version_is_refused_never_blind(site: Flask, team: Team, version: str) -> None:
    eva = logged_in(site, team.eva)
    response = move(eva, team.ids["match"], team.ids["Won"], version)
    assert response.status_code == 409


def test_moves_that_cannot_be_made(site: Flask, team: Team, any_db: Database) -> None:
    eva = logged_in(site, team.eva)
    with any_db.transaction() as s:
        hidden_version = s.get_one(Project, team.ids["hidden"]).version
        version = s.get_one(Project, team.ids["match"]).version
    # A project Eva may not see answers exactly like a missing one.
    assert move(eva, team.ids["hidden"], team.ids["Won"], hidden_version).status_code == 404
    assert move(eva, team.ids["hidden_relation"], team.ids["Won"], 1).status_code == 404
    assert move(eva, 999_999, team.ids["Won"], 1).status_code == 404
    # Not a status, or an inactive one: refused with the reason.
    for bad in (team.ids["Installation"], team.ids["Dormant"], 999_999, "x"):
        response = move(eva, team.ids["match"], bad, version)
        assert response.status_code == 400 and response.json["error"], bad
    # Without a CSRF token: refused.
    response = eva.post(
        f"/projects/{team.ids['match']}/status", data={"status_id": team.ids["Won"], "version": version}
    )
    assert response.status_code == 400
    with any_db.transaction() as s:
        assert s.get_one(Project, team.ids["match"]).status_id == team.ids["Offer sent"]
        assert s.get_one(Project, team.ids["hidden"]).status_id == team.ids["Offer sent"]


def test_the_board_and_the_filtered_list_cost_the_same_queries_with_more_projects(
    site: Flask, team: Team, any_db: Database
) -> None:
    from tests.integration.test_query_counts import counting

    eva = logged_in(site, team.eva)
    urls = ("/projects/board?open=all", f"/projects?status={team.ids['Offer sent']}&responsible={team.eva.id}")
    before = {}
    for url in urls:
        with counting(site) as statements:
            assert eva.get(url).status_code == 200
        before[url] = len(statements)
    with any_db.transaction() as s:
        admin = s.get_one(User, team.admin.id)
        for i in range(120):
            status = team.ids["Offer sent" if i % 2 else "Won"]
            data = ProjectInput(
                relation_id=team.ids["visser"],
                name=f"More {i}",
                responsible_user_id=team.eva.id,
                choices={"status": status},
            )
            save_project(s, admin, data)
    for url in urls:
        with counting(site) as statements:
            assert eva.get(url).status_code == 200
        assert len(statements) == before[url], url
