"""The project and relation lists run statements kept per reader and filter shape, the searched text
and the cursor bound when they run (hub.crm.relations.relation_list_rows, hub.crm.projects'
project_list_rows, hub.paging.keyset_page ``kept``). Readers taking turns on one app must each get
their own rows: a search's wildcard characters are taken literally, hidden relations never appear,
and a status filter holds, on both databases."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient

from hub.accounts.users import UserInput, create_user
from hub.config import Settings
from hub.crm.relations import RelationInput, save_relation, set_relation_linked
from hub.db import Database
from hub.models import RelationStatus
from tests.conftest import PASSWORD, EnglishClient

Login = Callable[[FlaskClient, object], FlaskClient]


def _listed(client: FlaskClient, url: str) -> list[str]:
    page = client.get(url)
    assert page.status_code == 200
    return re.findall(r'<a href="/relations/\d+">([^<]+)</a>', page.text)


def test_readers_taking_turns_get_their_own_relation_lists(any_db: Database, settings: Settings, login: Login) -> None:
    from web import create_app

    with any_db.transaction() as s:
        anna, bert = (
            create_user(s, UserInput(email=f"{n}@staff.example", name=n, password=PASSWORD)) for n in ("anna", "bert")
        )
        for name in ("50% korting BV", "500 korting BV", "a_b BV", "axb BV"):
            save_relation(s, RelationInput(name=name))
        save_relation(s, RelationInput(name="50% klant BV", status=RelationStatus.customer))
        hidden = save_relation(s, RelationInput(name="50% verborgen BV"))
        set_relation_linked(s, hidden, [bert.id], [])
    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    a, b = login(app.test_client(), anna), login(app.test_client(), bert)
    for _ in range(2):  # the second round runs the statements the first one kept
        assert _listed(a, "/relations?q=50%25") == ["50% klant BV", "50% korting BV"]
        assert _listed(b, "/relations?q=50%25") == ["50% klant BV", "50% korting BV", "50% verborgen BV"]
        assert _listed(a, "/relations?q=a_b") == ["a_b BV"]
        assert _listed(b, "/relations?q=korting") == ["50% korting BV", "500 korting BV"]
        assert _listed(a, "/relations?q=50%25&status=customer") == ["50% klant BV"]
        assert _listed(b, "/relations?q=verborgen&status=lead") == ["50% verborgen BV"]
        assert _listed(a, "/relations?q=verborgen") == []
        assert len(_listed(a, "/relations")) == 5 and len(_listed(b, "/relations")) == 6
