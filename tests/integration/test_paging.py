"""Every list in the web app and the API with more rows than one page.

A paged list is walked the way a user walks it: open page 1, follow the "Next" link from the HTML
until there is none, and on each page follow "Previous" back. Every row must show exactly once, and
the links must keep the list's path arguments (a relation's or project's id) and its filters. Lists
without a pager must show every row. On SQLite and PostgreSQL (ordering and LIMIT/OFFSET differ).
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.accounts.users import create_token, save_group
from hub.config import Settings
from hub.crm.activities import ActivityInput, save_activity
from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.documents import add_document
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.models import (
    Email,
    EmailProject,
    EmailRelation,
    ImportJob,
    Mailbox,
    MailboxEmail,
    MailSecurity,
    Project,
    Relation,
    User,
)
from hub.paging import KeysetPage
from tests.conftest import make_settings

Login = Callable[[FlaskClient, User], FlaskClient]

PER_PAGE = 25  # what every paged list shows (hub.crm.relations, hub.crm.projects, hub.mail.read)
ROWS = 2 * PER_PAGE + 10  # three pages: 25, 25, 10


def _link(page: str, rel: str) -> str | None:
    match = re.search(rf'<a href="([^"]+)" rel="{rel}">', page)
    return html.unescape(match.group(1)) if match else None


def _ids(page: str, pattern: str) -> list[int]:
    return [int(i) for i in re.findall(pattern, page)]


def _get(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return response.text


@dataclass
class Walk:
    pages: list[list[int]]
    urls: list[str]

    @property
    def ids(self) -> list[int]:
        return [i for page in self.pages for i in page]


def walk(client: FlaskClient, url: str, row: str) -> Walk:
    """Follow "Next" from ``url`` to the last page; check each "Previous" shows the page before."""
    page = _get(client, url)
    pages, urls = [_ids(page, row)], [url]
    assert _link(page, "prev") is None
    while (next_url := _link(page, "next")) is not None:
        assert len(pages) < 50, "the pager never ends"
        page = _get(client, next_url)
        pages.append(_ids(page, row))
        urls.append(next_url)
        previous = _link(page, "prev")
        assert previous is not None, f"{next_url} has no Previous link"
        assert _ids(_get(client, previous), row) == pages[-2]
    return Walk(pages, urls)


def assert_complete(result: Walk, expected: list[int], *, in_order: bool = True) -> None:
    """Every expected row once, on pages of PER_PAGE but the last."""
    assert len(result.ids) == len(set(result.ids)), "a row shows on two pages"
    assert sorted(result.ids) == sorted(expected), "rows are missing or extra"
    if in_order:
        assert result.ids == expected
    assert [len(p) for p in result.pages] == [
        min(PER_PAGE, len(expected) - n) for n in range(0, len(expected), PER_PAGE)
    ]


# --- data ------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The app (and ``db``) on each database: test ids end in [sqlite] / [postgresql]."""
    if request.param == "sqlite":
        return make_settings(tmp_path / "var")
    return make_settings(tmp_path / "var", str(request.getfixturevalue("pg_url")))


@pytest.fixture
def staff(make_user: Callable[..., User]) -> User:
    return make_user("Staff")


@pytest.fixture
def browser(app: Flask, staff: User, login: Login) -> FlaskClient:
    return login(app.test_client(), staff)


def _relations(db: Database, n: int, prefix: str = "Relatie") -> list[int]:
    with db.transaction() as s:
        return [save_relation(s, RelationInput(name=f"{prefix} {i:03}", city=f"Stad {i % 7}")).id for i in range(n)]


def _projects(db: Database, owner: User, relation_id: int, n: int, prefix: str = "Project") -> list[int]:
    with db.transaction() as s:
        me = s.get_one(User, owner.id)
        return [
            save_project(s, me, ProjectInput(relation_id=relation_id, name=f"{prefix} {i:03}")).id for i in range(n)
        ]


def _emails(db: Database, n: int, *, relation_id: int, project_id: int | None = None) -> list[int]:
    """``n`` e-mails from a shared mailbox (visible to all staff) on the relation (and project),
    newest first as the tab lists them."""
    start = datetime(2026, 3, 1, 9, 0)  # stored as naive UTC
    with db.transaction() as s:
        box = Mailbox(
            name=f"Shared {relation_id}",
            owner_id=None,
            host="imap.example.nl",
            port=993,
            security=MailSecurity.ssl,
            username=f"info{relation_id}",
            password_encrypted="",
        )
        s.add(box)
        s.flush()
        ids = []
        for i in range(n):
            email = Email(
                message_key=f"c:{relation_id}-{i}",
                message_id=f"<{relation_id}.{i}@klant.example>",
                subject=f"Offerte {i:03}",
                from_address="klant@klant.example",
                sent_at=start + timedelta(hours=i),
                raw_sha256="0" * 64,
            )
            s.add(email)
            s.flush()
            s.add(MailboxEmail(mailbox_id=box.id, email_id=email.id, size=1000))
            s.add(EmailRelation(email_id=email.id, relation_id=relation_id))
            if project_id is not None:
                s.add(EmailProject(email_id=email.id, project_id=project_id, how="manual"))
            ids.append(email.id)
    return list(reversed(ids))


# --- the macros ------------------------------------------------------------------------------------


def test_pager_and_sort_links_keep_path_and_query_arguments(app: Flask) -> None:
    template = (
        '{% from "macros/forms.html" import pager, sort_link %}'
        "{{ pager(page, args) }}{{ sort_link('Date', 'date', 'date', args) }}"
    )

    @dataclass
    class FakePage:  # a list still paged by number (calls, quarantine)
        page: int = 2
        has_prev: bool = True
        has_next: bool = True

    with app.test_request_context("/relations/7/emails?q=offerte&page=2"):
        out = html.unescape(render_template_string(template, page=FakePage(), args={"q": "offerte"}))
    assert '"/relations/7/emails?q=offerte&page=1" rel="prev"' in out
    assert '"/relations/7/emails?q=offerte&page=3" rel="next"' in out
    # A sort link starts the list over at page 1, without a cursor (a cursor belongs to one sort).
    assert 'href="/relations/7/emails?q=offerte&sort=-date&page=1"' in out

    # A list paged by cursor: Next after its last row, Previous before its first.
    with app.test_request_context("/relations/7/emails?q=offerte&cursor=abc"):
        page: KeysetPage[int] = KeysetPage(items=[], next_cursor="n3xt", prev_cursor="pr3v")
        out = html.unescape(render_template_string(template, page=page, args={"q": "offerte"}))
    assert '"/relations/7/emails?q=offerte&before=pr3v" rel="prev"' in out
    assert '"/relations/7/emails?q=offerte&cursor=n3xt" rel="next"' in out
    with app.test_request_context("/relations/7/emails"):
        out = render_template_string(template, page=KeysetPage(items=[], next_cursor=None), args={})
    assert 'rel="prev"' not in out and 'rel="next"' not in out


# --- paged pages -----------------------------------------------------------------------------------


def test_relations_list_pages_with_filters_and_sort(
    db: Database, browser: FlaskClient, staff: User, make_user: Callable[..., User]
) -> None:
    ids = _relations(db, ROWS)
    other = make_user("Other")
    with db.transaction() as s:
        hidden = save_relation(s, RelationInput(name="Relatie verborgen", owner_id=other.id))
        set_relation_linked(s, hidden, [other.id], [])
    others = _relations(db, 5, prefix="Ander")  # not matched by the search below

    assert_complete(walk(browser, "/relations", r'href="/relations/(\d+)"'), others + ids)

    searched = walk(browser, "/relations?q=relatie&sort=-name", r'href="/relations/(\d+)"')
    assert_complete(searched, list(reversed(ids)))
    assert all("q=relatie" in url and "sort=-name" in url for url in searched.urls[1:])

    page = _get(browser, "/relations?q=relatie&status=lead")
    city = re.search(r'<a href="([^"]+)" class="sort">City', page)
    assert city is not None
    assert_complete(walk(browser, html.unescape(city.group(1)), r'href="/relations/(\d+)"'), ids, in_order=False)
    assert "status=lead" in html.unescape(city.group(1)) and "q=relatie" in html.unescape(city.group(1))


def test_projects_list_pages_with_filters_and_sort(db: Database, browser: FlaskClient, staff: User) -> None:
    (relation_id,) = _relations(db, 1, prefix="Bouwbedrijf")
    ids = _projects(db, staff, relation_id, ROWS)
    by_name = walk(browser, "/projects?sort=name&open=1", r'href="/projects/(\d+)"')
    assert_complete(by_name, ids)
    assert all("open=1" in url and "sort=name" in url for url in by_name.urls[1:])
    # The default order (last changed first) pages without repeating rows changed in the same instant.
    assert_complete(walk(browser, "/", r'href="/projects/(\d+)"'), ids, in_order=False)
    assert_complete(walk(browser, "/projects?q=project+0", r'href="/projects/(\d+)"'), ids[:ROWS], in_order=False)
    # Sorting by a column with NULLs and ties (no start date, half with a value) still pages by
    # cursor without losing or repeating a row, in both directions, NULLs last.
    with db.transaction() as s:
        for n, project_id in enumerate(ids[::2]):
            s.get_one(Project, project_id).value = Decimal(n % 3)
    row = r'href="/projects/(\d+)"'
    for sort in ("start", "-start", "value", "-value"):
        result = walk(browser, f"/projects?sort={sort}", row)
        assert_complete(result, ids, in_order=False)
        assert all(f"sort={sort}" in url for url in result.urls[1:])
    assert set(_ids(_get(browser, "/projects?sort=value"), row)[:17]) <= set(ids[::2])  # the values first
    # An old ?page=N link still opens that page (its Next is a cursor again); a broken cursor page 1.
    assert _ids(_get(browser, "/projects?sort=name&page=2"), row) == ids[PER_PAGE : 2 * PER_PAGE]
    assert _ids(_get(browser, "/projects?sort=name&cursor=nonsense"), row) == ids[:PER_PAGE]


@pytest.mark.parametrize("tab", ["relation", "project"])
def test_emails_tab_pages_keep_the_relation_or_project(
    db: Database, browser: FlaskClient, staff: User, tab: str
) -> None:
    (relation_id,) = _relations(db, 1, prefix="Klant")
    (project_id,) = _projects(db, staff, relation_id, 1)
    ids = _emails(db, ROWS, relation_id=relation_id, project_id=project_id)
    url = f"/relations/{relation_id}/emails" if tab == "relation" else f"/projects/{project_id}/emails"

    result = walk(browser, url, r'href="/emails/(\d+)"')
    assert_complete(result, ids)
    assert all(u.startswith(url + "?") for u in result.urls[1:])

    searched = walk(browser, url + "?q=offerte", r'href="/emails/(\d+)"')
    assert_complete(searched, ids)
    assert all("q=offerte" in u for u in searched.urls[1:])


def test_search_shows_a_few_of_each_kind_and_show_all_pages_through_the_rest(
    db: Database, browser: FlaskClient, staff: User
) -> None:
    relation_ids = _relations(db, ROWS, prefix="Zoekbaar")
    project_ids = _projects(db, staff, relation_ids[0], ROWS, prefix="Zoekproject")
    page = _get(browser, "/search?q=zoek")
    assert len(_ids(page, r'href="/relations/(\d+)"')) == len(_ids(page, r'href="/projects/(\d+)"')) == 5
    show_all = [html.unescape(u) for u in re.findall(r'<a href="([^"]+)">Show all \d+</a>', page)]
    assert show_all == ["/search?q=zoek&kind=relations", "/search?q=zoek&kind=projects"]
    for url, pattern, expected in (
        (show_all[0], r'href="/relations/(\d+)"', relation_ids),
        (show_all[1], r'href="/projects/(\d+)"', project_ids),
    ):
        pages = [_ids(_get(browser, url), pattern)]
        while (next_url := _link(_get(browser, url), "next")) is not None:
            assert len(pages) < 50, "the pager never ends"
            url = next_url
            pages.append(_ids(_get(browser, url), pattern))
        found = [i for p in pages for i in p]
        assert sorted(found) == sorted(expected) and len(found) == len(set(found))
        assert [len(p) for p in pages] == [PER_PAGE, PER_PAGE, ROWS - 2 * PER_PAGE]


def test_relation_card_lists_projects_and_links_to_all_of_them(db: Database, browser: FlaskClient, staff: User) -> None:
    (relation_id,) = _relations(db, 1, prefix="Groothandel")
    project_ids = _projects(db, staff, relation_id, 60, prefix="Levering")
    with db.transaction() as s:
        relation = s.get_one(Relation, relation_id)
        contacts = [save_contact(s, relation, ContactInput(name=f"Contact {i:02}")).id for i in range(40)]
    card = _get(browser, f"/relations/{relation_id}")
    assert sorted(_ids(card, r'href="/contacts/(\d+)/edit"')) == contacts  # contacts: all of them
    assert len(_ids(card, r'href="/projects/(\d+)"')) == 50  # the card shows the 50 most recent
    more = re.search(r'<a href="([^"]+)">Show all projects</a>', card)
    assert more is not None
    assert_complete(walk(browser, html.unescape(more.group(1)), r'href="/projects/(\d+)"'), project_ids, in_order=False)


# --- lists without a pager show every row -----------------------------------------------------------


def test_activity_lists_show_every_activity(db: Database, browser: FlaskClient, staff: User) -> None:
    (relation_id,) = _relations(db, 1)
    (project_id,) = _projects(db, staff, relation_id, 1)
    with db.transaction() as s:
        me, project = s.get_one(User, staff.id), s.get_one(Project, project_id)
        ids = [
            save_activity(
                s,
                me,
                project,
                ActivityInput(
                    title=f"Bellen {i}",
                    due_date=date(2026, 4, 1) + timedelta(days=i),
                    assigned_user_id=me.id,
                    done=i % 4 == 0,
                ),
            ).id
            for i in range(ROWS)
        ]
    row = r'href="/activities/(\d+)/edit"'
    assert sorted(_ids(_get(browser, f"/projects/{project_id}/activities"), row)) == ids
    assert sorted(_ids(_get(browser, "/activities?done=1"), row)) == ids
    open_ids = [a for i, a in enumerate(ids) if i % 4]
    assert sorted(_ids(_get(browser, "/activities"), row)) == open_ids


def test_documents_tab_shows_every_document(app: Flask, db: Database, browser: FlaskClient, staff: User) -> None:
    (relation_id,) = _relations(db, 1)
    (project_id,) = _projects(db, staff, relation_id, 1)
    with db.transaction() as s:
        me, project = s.get_one(User, staff.id), s.get_one(Project, project_id)
        ids = [
            add_document(
                s,
                app.extensions["hub.blobs"],
                me,
                project,
                f"offerte-{i}.txt",
                io.BytesIO(b"x" * (i + 1)),
                None,
                10_000,
            ).id
            for i in range(ROWS)
        ]
    page = _get(browser, f"/projects/{project_id}/documents")
    assert sorted(set(_ids(page, rf'href="/projects/{project_id}/documents/(\d+)"'))) == ids


def test_recent_imports_show_the_last_twenty(db: Database, browser: FlaskClient, staff: User) -> None:
    with db.transaction() as s:
        s.add_all(ImportJob(filename=f"r{i}.csv", sha256="0" * 64, created_by_id=staff.id) for i in range(30))
        s.flush()
        ids = list(s.scalars(select(ImportJob.id).order_by(ImportJob.id)))
    # "Recent imports" is meant as the last few; an older job stays reachable by its own URL.
    assert _ids(_get(browser, "/import"), r'href="/import/(\d+)"') == list(reversed(ids))[:20]
    assert browser.get(f"/import/{ids[0]}").status_code == 200


def test_settings_and_mailbox_lists_show_every_row(
    app: Flask, db: Database, make_user: Callable[..., User], login: Login
) -> None:
    admin = make_user("Beheerder", admin=True)
    users = [make_user(f"Medewerker {i:02}").id for i in range(ROWS)] + [admin.id]
    with db.transaction() as s:
        groups = [save_group(s, f"Team {i:02}", users[i : i + 3]).id for i in range(ROWS)]
        choices = [
            save_choice(s, ChoiceInput(field="status", name=f"Fase {i:02}", sort_order=i)).id for i in range(ROWS)
        ]
        boxes = []
        for i in range(ROWS):
            box = Mailbox(
                name=f"Postbus {i:02}",
                host="imap.example.nl",
                port=993,
                security=MailSecurity.ssl,
                username=f"postbus{i}",
                password_encrypted="",
            )
            s.add(box)
            s.flush()
            boxes.append(box.id)
    client = login(app.test_client(), admin)
    assert sorted(set(_ids(_get(client, "/settings/users"), r'href="/settings/users/(\d+)"'))) == sorted(users)
    assert sorted(set(_ids(_get(client, "/settings/groups"), r'href="/settings/groups/(\d+)"'))) == groups
    shown = set(_ids(_get(client, "/settings/choices"), r'href="/settings/choices/(\d+)"'))
    assert set(choices) <= shown
    assert sorted(set(_ids(_get(client, "/mail/health"), r'href="/mail/mailboxes/(\d+)"'))) == boxes


# --- the JSON API ----------------------------------------------------------------------------------


@pytest.fixture
def api(app: Flask, db: Database, staff: User) -> Iterator[Callable[[str], dict[str, object]]]:
    with db.transaction() as s:
        token = create_token(s, s.get_one(User, staff.id))
    client = app.test_client()

    def get(url: str) -> dict[str, object]:
        response = client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
        data = response.get_json()
        assert isinstance(data, dict)
        return data

    yield get


def api_walk(get: Callable[[str], dict[str, object]], url: str, per_page: int | None = None) -> list[list[int]]:
    """Page through an API list with ``page`` (and ``per_page``) until ``has_next`` is false."""
    pages: list[list[int]] = []
    sep = "&" if "?" in url else "?"
    while True:
        number = len(pages) + 1
        data = get(f"{url}{sep}page={number}" + (f"&per_page={per_page}" if per_page else ""))
        assert data["page"] == number and data["per_page"] == (per_page or PER_PAGE)
        items = data["items"]
        assert isinstance(items, list)
        pages.append([item["id"] for item in items])
        if not data["has_next"]:
            return pages
        assert len(pages) < 50


@pytest.mark.parametrize("per_page", [None, 10, 100])
def test_api_lists_page(
    db: Database, staff: User, api: Callable[[str], dict[str, object]], per_page: int | None
) -> None:
    relation_ids = _relations(db, ROWS, prefix="Api")
    project_ids = _projects(db, staff, relation_ids[0], ROWS)
    email_ids = _emails(db, ROWS, relation_id=relation_ids[0], project_id=project_ids[0])
    size = per_page or PER_PAGE
    expected_sizes = [min(size, ROWS - start) for start in range(0, ROWS, size)]
    for url, expected, ordered in (
        ("/api/v1/relations", relation_ids, True),
        ("/api/v1/relations?q=api&sort=-name", list(reversed(relation_ids)), True),
        ("/api/v1/projects?sort=name", project_ids, True),
        ("/api/v1/projects", project_ids, False),
        ("/api/v1/emails", email_ids, True),
        (f"/api/v1/projects/{project_ids[0]}/emails", email_ids, True),
    ):
        pages = api_walk(api, url, per_page)
        flat = [i for p in pages for i in p]
        assert len(flat) == len(set(flat)), url
        assert (flat if ordered else sorted(flat)) == (expected if ordered else sorted(expected)), url
        assert [len(p) for p in pages] == expected_sizes, url


def test_api_lists_without_paging_return_every_row(
    app: Flask, db: Database, staff: User, api: Callable[[str], dict[str, object]]
) -> None:
    (relation_id,) = _relations(db, 1)
    (project_id,) = _projects(db, staff, relation_id, 1)
    with db.transaction() as s:
        me, project, relation = (
            s.get_one(User, staff.id),
            s.get_one(Project, project_id),
            s.get_one(Relation, relation_id),
        )
        contacts = [save_contact(s, relation, ContactInput(name=f"Contact {i:02}")).id for i in range(ROWS)]
        activities = [
            save_activity(s, me, project, ActivityInput(title=f"Taak {i}", assigned_user_id=me.id)).id
            for i in range(ROWS)
        ]
        documents = [
            add_document(s, app.extensions["hub.blobs"], me, project, f"d{i}.txt", io.BytesIO(b"d%d" % i), None, 100).id
            for i in range(ROWS)
        ]
        s.add_all(
            Mailbox(
                name=f"Mijn postbus {i}",
                owner_id=me.id,
                host="imap.example.nl",
                port=993,
                security=MailSecurity.ssl,
                username=f"mij{i}",
                password_encrypted="",
            )
            for i in range(ROWS)
        )

    def ids(url: str) -> list[int]:
        items = api(url)["items"]
        assert isinstance(items, list)
        return sorted(item["id"] for item in items)

    assert ids(f"/api/v1/relations/{relation_id}/contacts") == contacts
    assert ids(f"/api/v1/projects/{project_id}/activities") == activities
    assert ids("/api/v1/activities/mine") == activities
    assert ids(f"/api/v1/projects/{project_id}/documents") == documents
    assert len(ids("/api/v1/mailboxes")) == ROWS
