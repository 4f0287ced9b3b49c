"""Relation pages: the list, the form with its errors, the relation card, contacts, who may see a relation."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.models import Contact, Relation, User
from tests.conftest import csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]


def _post(client: FlaskClient, url: str, **fields: object) -> TestResponse:
    return client.post(url, data={"csrf_token": csrf_token(client.get(url).text), **fields})


def _post_from(client: FlaskClient, page: str, url: str, **fields: object) -> TestResponse:
    """POST to ``url`` with the CSRF token of ``page`` (for buttons that have no page of their own)."""
    return client.post(url, data={"csrf_token": csrf_token(client.get(page).text), **fields})


def _relation_count(db: Database) -> int:
    with db.transaction() as s:
        return s.scalar(select(func.count()).select_from(Relation)) or 0


def test_new_relation_shows_errors_next_to_fields_keeps_input_and_saves_nothing(
    client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    login(client, make_user())
    form = client.get("/relations/new").text
    for label in ("Kind", "Street and number", "Postcode", "Country", "Website", "VAT number", "Owner", "Mail domain"):
        assert label in form
    response = _post(
        client,
        "/relations/new",
        kind="company",
        status="lead",
        name="De Boer Bouw",
        emails="info@deboer.example\nnot-an-address",
        phones="12",
        domain="gmail.com",
    )
    assert response.status_code == 400
    assert "not-an-address is not a valid e-mail address." in response.text
    assert "12 is not a valid phone number." in response.text
    assert "gmail.com is not a company mail domain." in response.text
    assert 'value="De Boer Bouw"' in response.text and "info@deboer.example\nnot-an-address" in response.text
    assert _relation_count(db) == 0

    ok = _post(
        client,
        "/relations/new",
        kind="company",
        status="customer",
        name="De Boer Bouw",
        city="Zwolle",
        emails="info@deboer.example",
        phones="038-4211234",
        domain="deboer.example",
        coc_number="12345678",
        owner_id="",
    )
    assert ok.status_code == 302
    card = client.get(ok.headers["Location"]).text
    for text in ("De Boer Bouw", "Zwolle", "038-4211234", "info@deboer.example", "deboer.example", "12345678"):
        assert text in card


def test_edit_with_errors_changes_nothing(
    client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    with db.transaction() as s:
        relation_id = save_relation(s, RelationInput(name="Jansen", emails=["info@jansen.example"])).id
    login(client, make_user())
    url = f"/relations/{relation_id}/edit"
    assert "info@jansen.example" in client.get(url).text
    bad = _post(client, url, kind="company", status="lead", name="Jansen & Zn", emails="jansen@", domain="hotmail.com")
    assert bad.status_code == 400
    assert (
        "jansen@ is not a valid e-mail address." in bad.text and "hotmail.com is not a company mail domain." in bad.text
    )
    assert 'value="Jansen &amp; Zn"' in bad.text
    with db.transaction() as s:
        assert s.get_one(Relation, relation_id).name == "Jansen"
    ok = _post(
        client, url, kind="person", status="prospect", name="Jansen & Zn", country="be", emails="a@jansen.example"
    )
    assert ok.status_code == 302
    with db.transaction() as s:
        saved = s.get_one(Relation, relation_id)
        assert (saved.name, saved.kind.value, saved.country) == ("Jansen & Zn", "person", "BE")
        assert [e.address for e in saved.emails] == ["a@jansen.example"]


def test_list_searches_filters_and_sorts(
    client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    with db.transaction() as s:
        save_relation(s, RelationInput(name="Alfa Bouw", city="Utrecht", status="customer"))
        save_relation(s, RelationInput(name="Beta Bouw", city="Amsterdam", status="lead"))
        save_relation(s, RelationInput(name="Gamma Zorg", city="Delft", status="customer"))
    login(client, make_user())
    page = client.get("/relations?sort=-name").text
    assert page.index("Gamma Zorg") < page.index("Beta Bouw") < page.index("Alfa Bouw")
    by_city = client.get("/relations?sort=city").text
    assert by_city.index("Beta Bouw") < by_city.index("Gamma Zorg") < by_city.index("Alfa Bouw")
    customers = client.get("/relations?status=customer&q=bouw").text
    assert "Alfa Bouw" in customers and "Beta Bouw" not in customers and "Gamma Zorg" not in customers
    # Sort links keep the filters.
    assert "status=customer" in customers and "sort=city" in customers
    assert "No relations match your search." in client.get("/relations?q=nothing-like-this").text


def test_card_lists_contacts_and_only_visible_projects(
    client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    viewer, other = make_user(), make_user()
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Mulder Groep"))
        save_project(s, viewer, ProjectInput(relation_id=relation.id, name="Visible project"))
        hidden = save_project(s, other, ProjectInput(relation_id=relation.id, name="Hidden project"))
        set_linked(s, hidden, [other.id], [])
        relation_id = relation.id
    login(client, viewer)
    added = _post(
        client,
        f"/relations/{relation_id}/contacts/new",
        name="Sem Mulder",
        function="Buyer",
        emails="sem@mulder.example",
        phones="+31 6 12345678",
    )
    assert added.status_code == 302
    card = client.get(f"/relations/{relation_id}").text
    assert "Sem Mulder" in card and "Buyer" in card and "sem@mulder.example" in card and "+31 6 12345678" in card
    assert "Visible project" in card and "Hidden project" not in card
    assert f"/projects/new?relation_id={relation_id}" in card
    assert "Nobody linked: visible to all staff" in card

    with db.transaction() as s:
        contact_id = s.scalars(select(Contact.id)).one()
    bad = _post(client, f"/contacts/{contact_id}/edit", name="Sem Mulder", emails="sem@", phones="")
    assert bad.status_code == 400 and "sem@ is not a valid e-mail address." in bad.text
    assert _post(client, f"/contacts/{contact_id}/edit", name="Sem de Mulder", function="CEO").status_code == 302
    assert "Sem de Mulder" in client.get(f"/relations/{relation_id}").text
    deleted = _post_from(client, f"/relations/{relation_id}", f"/contacts/{contact_id}/delete")
    assert deleted.status_code == 302
    assert "No contacts yet." in client.get(f"/relations/{relation_id}").text


def test_hidden_relation_is_404_everywhere_for_others(
    client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    viewer, owner = make_user(), make_user()
    with db.transaction() as s:
        hidden = save_relation(s, RelationInput(name="Secret Holding", owner_id=owner.id))
        set_relation_linked(s, hidden, [owner.id], [])
        contact = save_contact(s, hidden, ContactInput(name="Sam Secret", emails=["sam@secret.example"]))
        open_id = save_relation(s, RelationInput(name="Secretarial Services")).id
        ids = {"relation": hidden.id, "contact": contact.id}
    login(client, viewer)
    for url in (
        "/relations/{relation}",
        "/relations/{relation}/edit",
        "/relations/{relation}/contacts/new",
        "/relations/{relation}/users",
        "/relations/{relation}/emails",
        "/contacts/{contact}/edit",
    ):
        assert client.get(url.format(**ids)).status_code == 404, url
    for url in ("/relations/{relation}/delete", "/contacts/{contact}/delete", "/relations/{relation}/edit"):
        assert _post_from(client, "/relations", url.format(**ids), name="x").status_code == 404, url
    assert client.get("/relations/lookup?q=secret").get_json() == [
        {"id": open_id, "name": "Secretarial Services", "city": ""}
    ]
    listing = client.get("/relations?q=secret").text
    assert "Secretarial Services" in listing and "Secret Holding" not in listing
    with db.transaction() as s:
        assert s.get_one(Contact, ids["contact"]).name == "Sam Secret"
        assert s.scalar(select(func.count()).select_from(Relation)) == 2


def test_owner_links_users_and_then_only_they_see_it(
    app: Flask, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    owner, colleague, outsider = make_user("Olga"), make_user("Cor"), make_user("Otto")
    with db.transaction() as s:
        relation_id = save_relation(s, RelationInput(name="Visser BV", owner_id=owner.id)).id
    owner_client = login(app.test_client(), owner)
    outsider_client = login(app.test_client(), outsider)
    colleague_client = login(app.test_client(), colleague)
    assert outsider_client.get(f"/relations/{relation_id}").status_code == 200
    # Only the owner and admins may change who sees a relation.
    assert colleague_client.get(f"/relations/{relation_id}/users").status_code == 404
    form = owner_client.get(f"/relations/{relation_id}/users").text
    assert "Nobody linked: visible to all staff." in form
    saved = _post(owner_client, f"/relations/{relation_id}/users", user_ids=[str(colleague.id)])
    assert saved.status_code == 302
    assert "Cor" in owner_client.get(f"/relations/{relation_id}").text
    assert colleague_client.get(f"/relations/{relation_id}").status_code == 200
    assert outsider_client.get(f"/relations/{relation_id}").status_code == 404
    assert outsider_client.get("/relations/lookup?q=visser").get_json() == []


def test_delete_is_refused_while_the_relation_has_projects(
    client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    admin = make_user("Admin", admin=True)
    with db.transaction() as s:
        busy = save_relation(s, RelationInput(name="Busy BV"))
        save_project(s, admin, ProjectInput(relation_id=busy.id, name="Running job"))
        idle_id = save_relation(s, RelationInput(name="Idle BV")).id
        busy_id = busy.id
    login(client, admin)
    refused = _post_from(client, f"/relations/{busy_id}", f"/relations/{busy_id}/delete")
    assert refused.status_code == 302
    assert (
        "This relation still has projects; delete or move them first." in client.get(refused.headers["Location"]).text
    )
    assert _post_from(client, f"/relations/{idle_id}", f"/relations/{idle_id}/delete").status_code == 302
    assert client.get(f"/relations/{idle_id}").status_code == 404
    assert client.get(f"/relations/{busy_id}").status_code == 200


@pytest.mark.parametrize("sort", ["name", "-city", "status", "-updated"])
def test_following_next_shows_every_relation_once_with_its_owner(
    client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database, sort: str
) -> None:
    """The list's rows are plain columns (the owner's name joined in): following Next to the end shows
    every relation once, each with its owner's name (none for a relation without an owner)."""
    staff, owner = make_user("Staff", admin=True), make_user("Olga Owner")
    with db.transaction() as s:
        for n in range(60):  # three pages; equal cities and statuses need the id tie-break
            save_relation(
                s,
                RelationInput(
                    name=f"R{n:02d} BV",
                    city=("Utrecht", "Delft", "")[n % 3],
                    status=("lead", "customer")[n % 2],
                    owner_id=owner.id if n % 4 else None,
                ),
            )
    login(client, staff)
    url, seen = f"/relations?sort={sort}", []
    while url:
        page = client.get(url).text
        rows = re.findall(r'<tr>\s*<td><a href="/relations/\d+">(R\d\d) BV</a></td>(.*?)</tr>', page, re.S)
        seen += [name for name, _rest in rows]
        for name, rest in rows:
            assert ("Olga Owner" in rest) == (int(name[1:]) % 4 != 0), name
        found = re.search(r'<a href="([^"]+)" rel="next">', page)
        url = html.unescape(found.group(1)) if found else ""
    assert sorted(seen) == [f"R{n:02d}" for n in range(60)]
    if sort == "name":
        assert seen == [f"R{n:02d}" for n in range(60)]
