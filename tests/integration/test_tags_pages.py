"""Tags on the pages: staff add and remove tags on a relation's and a contact's page (CSRF forms; a
refused name keeps what was typed and says why), filter the relation list by tag over more than one
page, and admins rename, recolour and delete tags under Settings → Tags. In English and Dutch."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient

from hub.crm import tags
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.models import Relation, Tag, User
from tests.conftest import csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]


def _relation(db: Database, name: str = "Bakkerij Zoë") -> tuple[int, int]:
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name=name))
        contact = save_contact(s, relation, ContactInput(name="Anna de Vries", emails=["anna@zoe.example"]))
        return relation.id, contact.id


def _tag_names(db: Database, relation_id: int) -> list[str]:
    with db.transaction() as s:
        return [t.name for t in s.get_one(Relation, relation_id).tags]


def test_staff_tag_and_untag_a_relation(
    db: Database, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    relation_id, _contact = _relation(db)
    login(client, make_user("Staff"))
    page = client.get(f"/relations/{relation_id}")
    assert page.status_code == 200 and 'id="tags"' in page.text and "No tags yet." in page.text
    token = csrf_token(page.text)

    # Without the CSRF token: refused, nothing added.
    assert client.post(f"/relations/{relation_id}/tags", data={"tag": "Beurs"}).status_code == 400
    added = client.post(f"/relations/{relation_id}/tags", data={"tag": "Beurs 2026, Reseller", "csrf_token": token})
    assert added.status_code == 302 and added.headers["Location"].endswith(f"/relations/{relation_id}#tags")
    # An existing tag in other capitals is the same tag.
    client.post(f"/relations/{relation_id}/tags", data={"tag": "beurs 2026", "csrf_token": token})
    assert _tag_names(db, relation_id) == ["Beurs 2026", "Reseller"]
    page = client.get(f"/relations/{relation_id}")
    assert "Remove the tag Reseller" in page.text and '<option value="Beurs 2026">' in page.text

    # A refused name: the relation page again (400), the typed text kept, the reason next to it.
    too_long = "Een heel lange naam " * 4
    refused = client.post(f"/relations/{relation_id}/tags", data={"tag": too_long, "csrf_token": token})
    assert refused.status_code == 400
    assert "A tag name can be at most 60 characters." in refused.text
    assert f'value="{too_long}"' in refused.text and "Bakkerij Zoë" in refused.text
    empty = client.post(f"/relations/{relation_id}/tags", data={"tag": " , ", "csrf_token": token})
    assert empty.status_code == 400 and "Type the name of a tag" in empty.text
    # Bytes that are no UTF-8 (a broken encoding): Werkzeug keeps them percent-encoded, a harmless name.
    broken = client.post(
        f"/relations/{relation_id}/tags",
        data=f"tag=%FF%FE&csrf_token={token}",
        content_type="application/x-www-form-urlencoded",
    )
    assert broken.status_code == 302 and "%FF%FE" in _tag_names(db, relation_id)
    with db.transaction() as s:
        junk = tags.find_tag(s, "%FF%FE")
        assert junk is not None
        tags.delete_tag(s, junk)

    with db.transaction() as s:
        reseller = tags.find_tag(s, "reseller")
        assert reseller is not None
        reseller_id = reseller.id
    removed = client.post(f"/relations/{relation_id}/tags/{reseller_id}/remove", data={"csrf_token": token})
    assert removed.status_code == 302 and _tag_names(db, relation_id) == ["Beurs 2026"]
    # Removing it again, or a tag that does not exist, changes nothing and breaks nothing.
    for tag_id in (reseller_id, 999_999):
        again = client.post(f"/relations/{relation_id}/tags/{tag_id}/remove", data={"csrf_token": token})
        assert again.status_code == 302
    assert (
        client.post(f"/relations/{relation_id}/tags/99999999999/remove", data={"csrf_token": token}).status_code == 404
    )


def test_staff_tag_a_contact_and_see_it_on_the_relation(
    db: Database, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    relation_id, contact_id = _relation(db)
    login(client, make_user("Staff"))
    page = client.get(f"/contacts/{contact_id}")
    assert page.status_code == 200 and 'id="tags"' in page.text
    token = csrf_token(page.text)
    added = client.post(f"/contacts/{contact_id}/tags", data={"tag": "Beslisser", "csrf_token": token})
    assert added.status_code == 302 and added.headers["Location"].endswith(f"/contacts/{contact_id}#tags")
    page = client.get(f"/contacts/{contact_id}")
    assert "Remove the tag Beslisser" in page.text
    assert '<span class="badge tag">Beslisser</span>' in client.get(f"/relations/{relation_id}").text

    refused = client.post(f"/contacts/{contact_id}/tags", data={"tag": "a\x00,b" + "c" * 70, "csrf_token": token})
    assert refused.status_code == 400 and "at most 60 characters" in refused.text and "Anna de Vries" in refused.text
    with db.transaction() as s:
        tag_id = s.scalar(Tag.__table__.select().with_only_columns(Tag.id).where(Tag.name == "Beslisser"))
    client.post(f"/contacts/{contact_id}/tags/{tag_id}/remove", data={"csrf_token": token})
    assert "Remove the tag Beslisser" not in client.get(f"/contacts/{contact_id}").text


def test_a_hidden_relation_cannot_be_tagged(
    db: Database, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    relation_id, contact_id = _relation(db, "Geheim BV")
    insider, outsider = make_user("Insider"), make_user("Outsider")
    with db.transaction() as s:
        set_relation_linked(s, s.get_one(Relation, relation_id), [insider.id], [])
        tag_id = tags.tag_relation(s, s.get_one(Relation, relation_id), "Geheim")[0].id
    login(client, outsider)
    token = csrf_token(client.get("/profile").text)
    for url in (
        f"/relations/{relation_id}/tags",
        f"/contacts/{contact_id}/tags",
        f"/relations/{relation_id}/tags/{tag_id}/remove",
        f"/contacts/{contact_id}/tags/{tag_id}/remove",
    ):
        assert client.post(url, data={"tag": "X", "csrf_token": token}).status_code == 404, url
    assert _tag_names(db, relation_id) == ["Geheim"]


def test_the_relation_list_filters_by_tag_over_more_than_one_page(
    db: Database, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    with db.transaction() as s:
        for n in range(40):
            relation = save_relation(s, RelationInput(name=f"Relation {n:02d}"))
            if n % 4 != 3:  # 30 of the 40
                tags.tag_relation(s, relation, "Beurs")
        beurs = tags.find_tag(s, "Beurs")
        assert beurs is not None
        beurs_id = beurs.id
    login(client, make_user("Staff"))
    names: list[str] = []
    url: str | None = f"/relations?tag={beurs_id}"
    while url:
        page = client.get(url)
        assert page.status_code == 200
        assert f'<option value="{beurs_id}" selected>Beurs</option>' in page.text
        names += re.findall(r">(Relation \d\d)</a>", page.text)
        found = re.search(r'href="([^"]+)" rel="next"', page.text)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert len(names) == 30 == len(set(names)) and "Relation 03" not in names
    assert "No relations match your search." in client.get("/relations?tag=999999").text
    assert client.get("/relations?tag=99999999999999999999").status_code == 200
    assert client.get("/relations?tag=abc").status_code == 200


def test_admins_rename_recolour_and_delete_tags(
    db: Database, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    relation_id, _contact_id = _relation(db)
    with db.transaction() as s:
        beurs = tags.tag_relation(s, s.get_one(Relation, relation_id), "Beurs")[0].id
        tags.tag_named(s, "Klant")
    staff = login(client, make_user("Staff"))
    assert staff.get("/settings/tags").status_code == 404
    token = csrf_token(staff.get("/profile").text)
    assert staff.post(f"/settings/tags/{beurs}", data={"name": "X", "csrf_token": token}).status_code == 404
    assert staff.post(f"/settings/tags/{beurs}/delete", data={"csrf_token": token}).status_code == 404

    admin = login(FlaskClient(client.application, use_cookies=True), make_user("Admin", admin=True))
    admin.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = admin.get("/settings/tags")
    assert page.status_code == 200 and "Beurs" in page.text and "Klant" in page.text
    assert "/settings/tags" in admin.get("/settings/").text
    token = csrf_token(page.text)
    editing = admin.get(f"/settings/tags/{beurs}")
    assert editing.status_code == 200 and 'id="edit"' in editing.text and 'value="Beurs"' in editing.text
    assert admin.get("/settings/tags/999999").status_code == 404
    saved = admin.post(f"/settings/tags/{beurs}", data={"name": "Beurs 2026", "colour": "#2da44e", "csrf_token": token})
    assert saved.status_code == 302
    page = admin.get("/settings/tags")
    assert "Beurs 2026" in page.text and 'fill="#2da44e"' in page.text

    # Renaming to another tag's name: refused, the typed name kept in that row, the reason shown.
    refused = admin.post(f"/settings/tags/{beurs}", data={"name": "KLANT", "colour": "", "csrf_token": token})
    assert refused.status_code == 400 and "The tag Klant already exists." in refused.text
    assert 'value="KLANT"' in refused.text
    bad_colour = admin.post(f"/settings/tags/{beurs}", data={"name": "Beurs", "colour": "red", "csrf_token": token})
    assert bad_colour.status_code == 400 and "#rrggbb" in bad_colour.text
    assert _tag_names(db, relation_id) == ["Beurs 2026"]

    created = admin.post("/settings/tags/new", data={"name": "Partner", "colour": "", "csrf_token": token})
    assert created.status_code == 302 and "Partner" in admin.get("/settings/tags").text
    duplicate = admin.post("/settings/tags/new", data={"name": "pärtner", "colour": "", "csrf_token": token})
    assert duplicate.status_code == 400 and "The tag Partner already exists." in duplicate.text
    assert 'value="pärtner"' in duplicate.text

    deleted = admin.post(f"/settings/tags/{beurs}/delete", data={"csrf_token": token})
    assert deleted.status_code == 302 and _tag_names(db, relation_id) == []
    assert admin.post(f"/settings/tags/{beurs}/delete", data={"csrf_token": token}).status_code == 404
    assert admin.post("/settings/tags/99999999999/delete", data={"csrf_token": token}).status_code == 404


def test_the_tag_pages_in_dutch(
    db: Database, client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    relation_id, _contact = _relation(db)
    login(client, make_user("Beheerder", admin=True, language="nl"))
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "nl"
    page = client.get(f"/relations/{relation_id}")
    assert "Tag toevoegen" in page.text
    refused = client.post(f"/relations/{relation_id}/tags", data={"tag": "x" * 61, "csrf_token": csrf_token(page.text)})
    assert "Een tag heeft hoogstens 60 tekens." in refused.text
    assert "Tags" in client.get("/settings/tags").text and "Nieuwe tag" in client.get("/settings/tags").text
