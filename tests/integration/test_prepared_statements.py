"""The web's statements are prepared on PostgreSQL (hub.db.make_engine ``prepared``): a page's statement
is planned once per connection instead of on every request, its LIMIT written into the text so that
the one plan knows where to stop; search is never prepared (its plan depends on the text). What a
user sees must not change with it: colleagues taking turns on the same connection each get their
own rows, page after page, long after PostgreSQL settled on one plan for everyone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from hub.accounts.users import UserInput, create_user
from hub.crm.relations import RelationInput, save_relation, set_relation_linked
from hub.db import PREPARE_AFTER, Database
from tests.conftest import PASSWORD, EnglishClient, log_in, make_settings

pytestmark = pytest.mark.integration

# PostgreSQL plans a prepared statement's first five runs with their values before it may keep one
# generic plan: past this many requests the pages run on that plan.
ROUNDS = PREPARE_AFTER + 5 + 3


@pytest.fixture(params=["prepared"])
def app(tmp_path: Path, pg_url: str, request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The app as production makes it: its own engine (prepared), not a test's; parametrized
    "unprepared", with HUB_DATABASE_PREPARED=no (behind an old PgBouncer)."""
    from web import create_app

    env = {"HUB_DATABASE_PREPARED": "no"} if request.param == "unprepared" else {}
    with Database(pg_url).transaction() as s:
        anna, bert = (
            create_user(s, UserInput(email=f"{n}@staff.example", name=n, password=PASSWORD)) for n in ("anna", "bert")
        )
        for i in range(70):
            relation = save_relation(s, RelationInput(name=f"Bakkerij {i:03d}", city="Zwolle"))
            if i % 7 == 3:  # one in seven is bert's alone
                set_relation_linked(s, relation, [bert.id], [])
    app = create_app(make_settings(tmp_path / "var", pg_url, **env), TESTING=True)
    app.test_client_class = EnglishClient
    app.config["users"] = (anna, bert)
    yield app
    app.extensions["hub.db"].dispose()


def _relation_list(client: FlaskClient, url: str | None = "/relations") -> list[str]:
    """Every relation of a list (or of search's relations), following Next page by page."""
    names: list[str] = []
    while url:
        page = client.get(url)
        assert page.status_code == 200
        # (search marks what matched: <mark>Bakkerij</mark> 001)
        names += [re.sub("<[^>]+>", "", n) for n in re.findall(r'<a href="/relations/\d+">(.*?)</a>', page.text)]
        found = re.search(r'<a[^>]*href="([^"]*cursor=[^"]*)"[^>]*rel="next"', page.text) or re.search(
            r'<a[^>]*rel="next"[^>]*href="([^"]*cursor=[^"]*)"', page.text
        )
        url = found.group(1).replace("&amp;", "&") if found else None
    return names


def _prepared(app: Flask) -> list[tuple[str, int]]:
    """The statements prepared on the app's connection (sequential requests use one), with how
    often each ran on a generic plan."""
    engine = app.extensions["hub.db"].engine
    assert engine.pool.checkedout() == 0
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT statement, generic_plans FROM pg_prepared_statements"))
        return [(str(statement), int(generic)) for statement, generic in rows]


def test_colleagues_keep_their_own_pages_once_the_list_is_prepared(app: Flask) -> None:
    anna, bert = app.config["users"]
    a, b = log_in(app.test_client(), anna), log_in(app.test_client(), bert)
    everyone = [f"Bakkerij {i:03d}" for i in range(70)]
    annas = [name for i, name in enumerate(everyone) if i % 7 != 3]
    for _ in range(ROUNDS):  # in turns, on the one connection the app's pool holds
        assert _relation_list(a) == annas
        assert _relation_list(b) == everyone
    lists = [(s, generic) for s, generic in _prepared(app) if "FROM relation" in s and "ORDER BY" in s]
    assert lists, "the relation list's statements were not prepared"
    # The page size written in, so the one plan reads 26 rows and stops; and that plan is in use.
    assert all(re.search(r"LIMIT 26\b", s) for s, _ in lists)
    assert sum(generic for _, generic in lists) > 0


def test_search_is_planned_for_each_text_and_finds_what_each_may_see(app: Flask) -> None:
    anna, bert = app.config["users"]
    a, b = log_in(app.test_client(), anna), log_in(app.test_client(), bert)
    for round_ in range(ROUNDS):
        number = f"{(round_ * 7 + 3) % 70:03d}"  # one of bert's own relations, a different one each time
        assert f"Bakkerij {number}" not in a.get(f"/search?q=bakkerij+{number}").text
        assert f"Bakkerij {number}" in b.get(f"/search?q=bakkerij+{number}").text
    everyone = [f"Bakkerij {i:03d}" for i in range(70)]
    assert sorted(_relation_list(a, "/search?q=bakkerij&kind=relations")) == [
        name for i, name in enumerate(everyone) if i % 7 != 3
    ]
    assert sorted(_relation_list(b, "/search?q=bakkerij&kind=relations")) == everyone
    prepared = [s for s, _ in _prepared(app)]
    assert prepared, "the web prepared nothing"  # (its other statements are prepared: the user's, say)
    assert not [s for s in prepared if "search_" in s]


@pytest.mark.parametrize("app", ["unprepared"], indirect=True)
def test_behind_a_pooler_that_cannot_keep_them_nothing_is_prepared(app: Flask) -> None:
    anna, _ = app.config["users"]
    a = log_in(app.test_client(), anna)
    for _ in range(ROUNDS):
        assert len(_relation_list(a)) == 60
    assert _prepared(app) == []
