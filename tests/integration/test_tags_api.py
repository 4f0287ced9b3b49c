"""Tags in the API: GET /api/v1/tags paged by cursor with counts of what the token's user may see,
tags on relations and contacts, and the relation list filtered by tag (by id or by name)."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from hub.accounts.users import create_token
from hub.crm import tags
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.models import Contact, Relation, User
from tests.integration.test_campaign_channels import person


def _headers(db: Database, user: User) -> dict[str, str]:
    with db.transaction() as s:
        return {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id))}


def _walk(client: FlaskClient, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = client.get(url + (f"&cursor={cursor}" if cursor else ""), headers=headers)
        assert page.status_code == 200, page.json
        items += page.json["items"]
        if not page.json["next"]:
            return items
        cursor = page.json["next"]


def _world(db: Database) -> tuple[User, User, int, int]:
    """30 relations tagged "Beurs 2026" with a tagged contact each, 5 only the insider may see; tags
    Álpha, beta, Gamma, Delta unused. Returns the viewer, the insider, a visible relation and its contact."""
    viewer, insider = person(db, "Viewer"), person(db, "Insider")
    with db.transaction() as s:
        for n in range(30):
            relation = save_relation(s, RelationInput(name=f"Relation {n:02d}"))
            tags.tag_relation(s, relation, "Beurs 2026, Reseller" if n == 10 else "Beurs 2026")
            contact = save_contact(s, relation, ContactInput(name=f"Contact {n:02d}"))
            tags.tag_contact(s, contact, "Beslisser")
            if n < 5:
                set_relation_linked(s, relation, [insider.id], [])
            if n == 10:
                shown = (relation.id, contact.id)
        for name in ("Álpha", "beta", "Gamma", "Delta"):
            tags.tag_named(s, name)
        tags.rename_tag(s, tags.tag_named(s, "Reseller"), "Reseller", "#2da44e")
    return viewer, insider, *shown


def test_the_tag_list_pages_with_counts_of_what_you_may_see(db: Database, client: FlaskClient) -> None:
    viewer, insider, _relation, _contact = _world(db)
    items = _walk(client, "/api/v1/tags?per_page=2", _headers(db, viewer))
    assert [t["name"] for t in items] == ["Álpha", "Beslisser", "beta", "Beurs 2026", "Delta", "Gamma", "Reseller"]
    by_name = {t["name"]: t for t in items}
    assert (by_name["Beurs 2026"]["relations"], by_name["Beslisser"]["contacts"]) == (25, 25)
    assert by_name["Reseller"] == {**by_name["Reseller"], "relations": 1, "contacts": 0, "colour": "#2da44e"}
    insider_items = _walk(client, "/api/v1/tags?per_page=3", _headers(db, insider))
    assert {t["name"]: t["relations"] for t in insider_items}["Beurs 2026"] == 30

    headers = _headers(db, viewer)
    found = client.get("/api/v1/tags?q=BEU&total=1", headers=headers).json
    assert [t["name"] for t in found["items"]] == ["Beurs 2026"] and found["total"] == 1
    assert [t["name"] for t in client.get("/api/v1/tags?q=alp", headers=headers).json["items"]] == ["Álpha"]
    for bad in ("colour=red", "per_page=0", "per_page=1000", "cursor=nonsense", "q=" + "x" * 300):
        response = client.get(f"/api/v1/tags?{bad}", headers=headers)
        assert response.status_code == 400, bad
        assert response.json["error"]["message"]
    assert client.get("/api/v1/tags").status_code == 401


def test_tags_on_relations_and_contacts_and_the_filter(db: Database, client: FlaskClient) -> None:
    viewer, _insider, relation_id, contact_id = _world(db)
    headers = _headers(db, viewer)
    relation = client.get(f"/api/v1/relations/{relation_id}", headers=headers).json
    assert [(t["name"], t["colour"]) for t in relation["tags"]] == [("Beurs 2026", ""), ("Reseller", "#2da44e")]
    contact = client.get(f"/api/v1/contacts/{contact_id}", headers=headers).json
    assert [t["name"] for t in contact["tags"]] == ["Beslisser"]
    contacts = client.get(f"/api/v1/relations/{relation_id}/contacts", headers=headers).json["items"]
    assert [[t["name"] for t in c["tags"]] for c in contacts] == [["Beslisser"]]

    # By name (any capitals or accents) or by id; over several pages; hidden relations never listed.
    names = [r["name"] for r in _walk(client, "/api/v1/relations?tag=BEÜRS%202026&per_page=10", headers)]
    assert len(names) == 25 == len(set(names)) and "Relation 03" not in names
    reseller = relation["tags"][1]["id"]
    assert [r["id"] for r in _walk(client, f"/api/v1/relations?tag={reseller}", headers)] == [relation_id]
    assert client.get("/api/v1/relations?tag=999999", headers=headers).json["items"] == []
    assert client.get("/api/v1/relations?tag=99999999999999999999999", headers=headers).json["items"] == []
    unknown = client.get("/api/v1/relations?tag=Nope", headers=headers)
    assert unknown.status_code == 400 and unknown.json["error"]["field"] == "tag"
    assert "There is no tag Nope." in unknown.json["error"]["message"]


def test_tagging_through_the_api(db: Database, client: FlaskClient) -> None:
    viewer, insider, relation_id, contact_id = _world(db)
    headers = _headers(db, viewer)
    with db.transaction() as s:
        beslisser = tags.find_tag(s, "Beslisser")
        assert beslisser is not None
        beslisser_id = beslisser.id
        hidden_relation = s.scalar(select(Relation.id).where(Relation.name == "Relation 03"))
        hidden_contact = s.scalar(select(Contact.id).where(Contact.name == "Contact 03"))

    added = client.post(
        f"/api/v1/relations/{relation_id}/tags",
        json={"tags": [beslisser_id, "nieuw", "NIEUW", "Reseller"]},
        headers=headers,
    )
    assert added.status_code == 200, added.json
    assert [t["name"] for t in added.json["items"]] == ["Beslisser", "Beurs 2026", "nieuw", "Reseller"]
    nieuw = next(t["id"] for t in added.json["items"] if t["name"] == "nieuw")
    for bad in ({"tags": []}, {"tags": [999999]}, {"tags": [""]}, {"tags": ["a, b"]}, {"tags": "Beurs"},
                {"tags": [True]}, {"tags": ["x" * 61]}, {"tags": ["ok"], "y": 1}, {"tags": [2**40]}):  # fmt: skip
        response = client.post(f"/api/v1/relations/{relation_id}/tags", json=bad, headers=headers)
        assert response.status_code == 400, (bad, response.json)
        assert response.json["error"]["message"]
    with db.transaction() as s:
        assert tags.find_tag(s, "ok") is None  # a refused list made no tag

    removed = client.delete(f"/api/v1/relations/{relation_id}/tags/{nieuw}", headers=headers)
    assert removed.status_code == 204
    assert client.delete(f"/api/v1/relations/{relation_id}/tags/{nieuw}", headers=headers).status_code == 204
    names = [t["name"] for t in client.get(f"/api/v1/relations/{relation_id}", headers=headers).json["tags"]]
    assert names == ["Beslisser", "Beurs 2026", "Reseller"]

    on_contact = client.post(f"/api/v1/contacts/{contact_id}/tags", json={"tags": ["Reseller"]}, headers=headers)
    assert [t["name"] for t in on_contact.json["items"]] == ["Beslisser", "Reseller"]
    assert client.delete(f"/api/v1/contacts/{contact_id}/tags/{beslisser_id}", headers=headers).status_code == 204
    assert [t["name"] for t in client.get(f"/api/v1/contacts/{contact_id}", headers=headers).json["tags"]] == [
        "Reseller"
    ]

    # Hidden relations and their contacts answer like missing ones, whatever the body.
    for url in (f"/api/v1/relations/{hidden_relation}/tags", f"/api/v1/contacts/{hidden_contact}/tags"):
        assert client.post(url, json={"tags": ["x"]}, headers=headers).status_code == 404
        assert client.delete(f"{url}/{beslisser_id}", headers=headers).status_code == 404
        assert client.post(url, json={"tags": ["x"]}, headers=_headers(db, insider)).status_code == 200
