"""The search box: relations and projects matching a text, only those the user may see."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import RelationInput, save_relation, set_relation_linked
from hub.db import Database
from hub.models import User

Login = Callable[[FlaskClient, User], FlaskClient]


def test_search_finds_relations_and_projects_ignoring_case_and_accents(
    client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    user = make_user()
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Café Zoë", city="Leiden"))
        save_project(s, user, ProjectInput(relation_id=relation.id, name="Terrace heaters"))
    login(client, user)
    page = client.get("/search?q=cafe zoe").text
    assert "Café Zoë" in page and "Leiden" in page
    heaters = client.get("/search?q=TERRACE").text
    assert "Terrace heaters" in heaters and "No relations found." in heaters
    assert "No projects found." in client.get("/search?q=nothing-like-this").text


def test_search_leaves_out_what_the_user_may_not_see(
    client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    viewer, other = make_user(), make_user()
    with db.transaction() as s:
        hidden = save_relation(s, RelationInput(name="Orion Hidden", owner_id=other.id))
        set_relation_linked(s, hidden, [other.id], [])
        shown = save_relation(s, RelationInput(name="Orion Open"))
        save_project(s, viewer, ProjectInput(relation_id=shown.id, name="Orion visible plan"))
        secret = save_project(s, other, ProjectInput(relation_id=shown.id, name="Orion secret plan"))
        set_linked(s, secret, [other.id], [])
    login(client, viewer)
    page = client.get("/search?q=orion").text
    assert "Orion Open" in page and "Orion visible plan" in page
    assert "Orion Hidden" not in page and "Orion secret plan" not in page


def test_search_shows_25_of_each_with_a_link_to_all(
    client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    user = make_user()
    with db.transaction() as s:
        for n in range(26):
            save_relation(s, RelationInput(name=f"Bakker {n:02d}"))
        save_project(s, user, ProjectInput(relation_id=save_relation(s, RelationInput(name="Smid")).id, name="Bakery"))
    login(client, user)
    page = client.get("/search?q=bakker").text
    assert "Bakker 24" in page and "Bakker 25" not in page
    assert 'href="/relations?q=bakker"' in page and "Show all" in page
    few = client.get("/search?q=bakery").text
    assert "Bakery" in few and "Show all" not in few
