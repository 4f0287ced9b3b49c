"""Hostile checks of what landed with tags, the channel API, the per-user visibility cache and the
template url_for cache: a member of staff probing relations he may not see (forms, API, guessed and
huge ids, counts and filters that could leak), a read-only token changing tags, and nasty input
(names that fold to longer keys, names of combining marks only, NUL, lone surrogates, RTL overrides,
HTML, CSS in colours, deeply nested JSON). On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from hub.accounts.users import TokenScope, create_token
from hub.config import Settings
from hub.crm import tags
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.models import Relation, Tag, User
from tests.conftest import EnglishClient, csrf_token, log_in, new_user


@pytest.fixture
def site(any_db: Database, settings: Settings) -> Iterator[Flask]:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    yield app


def _bearer(db: Database, user: User, scope: str = TokenScope.write.value) -> dict[str, str]:
    with db.transaction() as s:
        return {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id), scope=scope)}


class World:
    """Open BV (all staff) and Secret BV (the insider only), each with a contact; Secret BV and its
    contact carry the tag "Geheim", which no visible object carries."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.viewer, self.insider = new_user(db, "Viewer"), new_user(db, "Insider")
        with db.transaction() as s:
            open_ = save_relation(s, RelationInput(name="Open BV"))
            secret = save_relation(s, RelationInput(name="Secret BV"))
            set_relation_linked(s, secret, [self.insider.id], [])
            self.open, self.secret = open_.id, secret.id
            self.open_contact = save_contact(s, open_, ContactInput(name="Olga Open")).id
            secret_contact = save_contact(s, secret, ContactInput(name="Sam Secret"))
            self.secret_contact = secret_contact.id
            self.geheim = tags.tag_relation(s, secret, "Geheim")[0].id
            tags.tag_contact(s, secret_contact, "Geheim")

    def links(self) -> tuple[int, int]:
        with self.db.transaction() as s:
            secret = s.get_one(Relation, self.secret)
            contact = next(c for c in secret.contacts if c.id == self.secret_contact)
            return len(secret.tags), len(contact.tags)


# --- a member of staff probing what he may not see ---------------------------------------------------


def test_hidden_relations_leak_nothing_through_tags_by_form_or_api(any_db: Database, site: Flask) -> None:
    world = World(any_db)
    client = log_in(site.test_client(), world.viewer)
    token = csrf_token(client.get("/profile").text)
    huge = (2**63, 2**70, 10**30)
    # Forms: the hidden relation and contact, guessed ids that exist nowhere, ids past 64 bits.
    posts = [
        f"/relations/{world.secret}/tags",
        f"/contacts/{world.secret_contact}/tags",
        f"/relations/{world.secret}/tags/{world.geheim}/remove",
        f"/contacts/{world.secret_contact}/tags/{world.geheim}/remove",
        *(f"/relations/{i}/tags" for i in huge),
        *(f"/contacts/{i}/tags" for i in huge),
        *(f"/relations/{world.open}/tags/{i}/remove" for i in huge),
        *(f"/contacts/{world.open_contact}/tags/{i}/remove" for i in huge),
    ]
    for url in posts:
        assert client.post(url, data={"tag": "Gelekt", "csrf_token": token}).status_code == 404, url
    # The same without a CSRF token: refused before anything else is looked at.
    assert client.post(f"/relations/{world.open}/tags", data={"tag": "Zonder"}).status_code == 400

    headers = _bearer(any_db, world.viewer)
    api = [
        ("post", f"/api/v1/relations/{world.secret}/tags"),
        ("post", f"/api/v1/contacts/{world.secret_contact}/tags"),
        ("delete", f"/api/v1/relations/{world.secret}/tags/{world.geheim}"),
        ("delete", f"/api/v1/contacts/{world.secret_contact}/tags/{world.geheim}"),
        *(("post", f"/api/v1/relations/{i}/tags") for i in huge),
        *(("delete", f"/api/v1/relations/{world.open}/tags/{i}") for i in huge),
        *(("delete", f"/api/v1/contacts/{world.open_contact}/tags/{i}") for i in huge),
    ]
    for method, url in api:
        response = getattr(client, method)(url, json={"tags": [world.geheim, "Gelekt"]}, headers=headers)
        # A tag id past any id on an object he sees: nothing to remove (204) or no such object (404).
        assert response.status_code in ((404, 204) if "/tags/" in url and str(world.geheim) not in url else (404,))
        assert response.status_code != 500, (url, response.text)
    assert world.links() == (1, 1)
    with any_db.transaction() as s:
        assert tags.find_tag(s, "Gelekt") is None

    # Counts, filters, the channel overview: the hidden relation is not there.
    listed = client.get("/api/v1/tags?per_page=100", headers=headers).json["items"]
    assert [(t["name"], t["relations"], t["contacts"]) for t in listed] == [("Geheim", 0, 0)]
    for ref in (str(world.geheim), "Geheim", "GEHEIM"):
        found = client.get(f"/api/v1/relations?tag={ref}", headers=headers)
        assert found.status_code == 200 and found.json["items"] == [], ref
        page = client.get(f"/relations?tag={ref}")
        assert page.status_code == 200 and "Secret BV" not in page.text, ref
    assert "Secret BV" not in client.get("/settings/tags").text  # an admin page: not for staff
    assert client.get("/settings/tags").status_code in (302, 403, 404)
    assert client.get(f"/api/v1/channels?relation_id={world.secret}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/channels?relation_id={world.open}", headers=headers).status_code == 200
    for bad in ("2" * 30, "-1", "0", "x", "1e3"):
        response = client.get(f"/api/v1/channels?relation_id={bad}", headers=headers)
        assert response.status_code in (400, 404), (bad, response.text)

    # The insider sees his own: the same calls answer.
    insider = _bearer(any_db, world.insider)
    listed = client.get("/api/v1/tags", headers=insider).json["items"]
    assert [(t["name"], t["relations"], t["contacts"]) for t in listed] == [("Geheim", 1, 1)]
    assert client.get(f"/api/v1/channels?relation_id={world.secret}", headers=insider).status_code == 200


def test_a_read_only_token_cannot_change_tags(any_db: Database, site: Flask) -> None:
    world = World(any_db)
    client = site.test_client()
    reader = _bearer(any_db, world.insider, TokenScope.read.value)
    for method, url in (
        ("post", f"/api/v1/relations/{world.open}/tags"),
        ("post", f"/api/v1/contacts/{world.open_contact}/tags"),
        ("delete", f"/api/v1/relations/{world.secret}/tags/{world.geheim}"),
        ("delete", f"/api/v1/contacts/{world.secret_contact}/tags/{world.geheim}"),
    ):
        response = getattr(client, method)(url, json={"tags": ["Lezer"]}, headers=reader)
        assert response.status_code == 403, (url, response.status_code)
    assert world.links() == (1, 1)
    with any_db.transaction() as s:
        assert tags.find_tag(s, "Lezer") is None
    assert client.get("/api/v1/tags", headers=reader).status_code == 200


# --- nasty input -------------------------------------------------------------------------------------


# Names of at most 60 characters whose folded key is longer (ß → ss, the ligature ﷺ → 18 letters):
# the key column holds 60, so these must be refused with a reason, never a database error.
LONG_KEYS = ("Straße" * 10, "ß" * 31, "\ufdfa" * 4)
# Nothing but combining marks: a name that reads as nothing and whose key is empty.
NO_KEY = ("\u0301", "\u0301\u0308\u0327")


def test_names_whose_key_does_not_fit_or_is_empty_are_refused(any_db: Database, site: Flask) -> None:
    world = World(any_db)
    client = log_in(site.test_client(), world.viewer)
    token = csrf_token(client.get(f"/relations/{world.open}").text)
    headers = _bearer(any_db, world.viewer)
    for name in LONG_KEYS + NO_KEY:
        form = client.post(f"/relations/{world.open}/tags", data={"tag": name, "csrf_token": token})
        assert form.status_code == 400, (name, form.status_code)
        assert 'role="alert"' in form.text
        api = client.post(f"/api/v1/relations/{world.open}/tags", json={"tags": [name]}, headers=headers)
        assert api.status_code == 400, (name, api.status_code)
        assert api.json["error"]["message"]
        listed = client.get("/api/v1/relations", query_string={"tag": name}, headers=headers)
        assert listed.status_code == 400, (name, listed.status_code)
    with any_db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Tag)) == 1  # only Geheim
    # A good name still works after all that.
    good = client.post(f"/api/v1/relations/{world.open}/tags", json={"tags": ["Straße"]}, headers=headers)
    assert good.status_code == 200 and [t["name"] for t in good.json["items"]] == ["Straße"]


def test_control_characters_surrogates_huge_and_nested_input(any_db: Database, site: Flask) -> None:
    world = World(any_db)
    client = log_in(site.test_client(), world.viewer)
    token = csrf_token(client.get(f"/relations/{world.open}").text)
    headers = {**_bearer(any_db, world.viewer), "Content-Type": "application/json"}
    url = f"/api/v1/relations/{world.open}/tags"
    # A NUL, an RTL override, a lone surrogate (valid JSON, no valid UTF-8): the API refuses the NUL
    # and the surrogate by name and cleans the override away; the form (below) cleans them all.
    for text in ("Nul\\u0000tag", "\\u202eKlant", "Half\\ud800weg"):
        response = client.post(url, data='{"tags": ["' + text + '"]}', headers=headers)
        if response.status_code == 400:
            assert "not allowed" in response.json["error"]["message"], text
        else:  # accepted: stored without the control character
            assert response.status_code == 200, text
            assert "Klant" in [t["name"] for t in response.json["items"]], text
    for text in ("Nul%00tag", "%E2%80%AEKlant", "Half%ED%A0%80weg"):  # the last: a surrogate in UTF-8 bytes
        form = client.post(
            f"/relations/{world.open}/tags",
            data=f"tag={text}&csrf_token={token}",
            content_type="application/x-www-form-urlencoded",
        )
        assert form.status_code in (302, 400), (text, form.status_code)
    with any_db.transaction() as s:
        names = set(s.scalars(select(Tag.name)))
    # Bytes that are no UTF-8 in a form: Werkzeug keeps them percent-encoded, a harmless name.
    assert names == {"Geheim", "Nul tag", "Klant", "Half%ED%A0%80weg"}
    # 10 MB of name, in the API and in the form: refused with a reason.
    big = "x" * 10_000_000
    assert client.post(url, json={"tags": [big]}, headers=headers).status_code in (400, 413)
    form = client.post(f"/relations/{world.open}/tags", data={"tag": big, "csrf_token": token})
    assert form.status_code in (400, 413) and form.status_code != 500
    assert client.get("/api/v1/tags", query_string={"q": big}, headers=headers).status_code in (400, 413, 414)
    # Deeply nested JSON: a 400, never a RecursionError.
    nested = '{"tags": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client.post(url, data=nested, headers=headers)
    assert response.status_code == 400, response.status_code
    # Names that fold to the same key, in one request: one tag.
    one = client.post(url, json={"tags": ["Café", "CAFÉ", "cafe\u0301", "Cafe"]}, headers=headers)
    assert one.status_code == 200 and [t["name"] for t in one.json["items"] if "af" in t["name"]] == ["Café"]


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_html_in_tag_names_is_escaped_everywhere(any_db: Database, site: Flask) -> None:
    world = World(any_db)
    admin = new_user(any_db, "Admin", admin=True)
    with any_db.transaction() as s:
        tags.tag_relation(s, s.get_one(Relation, world.open), HOSTILE)
        tag_id = tags.find_tag(s, HOSTILE).id  # type: ignore[union-attr]
    client = log_in(site.test_client(), admin)
    pages = [
        f"/relations/{world.open}",
        f"/contacts/{world.open_contact}",
        "/relations",
        f"/relations?tag={tag_id}",
        "/settings/tags",
        f"/settings/tags/{tag_id}",
        "/campaigns/groups/new",
    ]
    for url in pages:
        page = client.get(url)
        assert page.status_code in (200, 404), (url, page.status_code)
        assert "<script>alert" not in page.text and "<img src=x" not in page.text, url
    shown = client.get(f"/relations/{world.open}").text
    assert "&lt;script&gt;" in shown and "Remove the tag &lt;script&gt;" in shown

    # A colour that would break out of the SVG attribute or inject CSS: refused, nothing stored.
    token = csrf_token(client.get("/settings/tags").text)
    for colour in ('#000000" onload="alert(1)', "red;background:url(x)", "#1f6feb\n", "#1F6FEB ", "javascript:1"):
        response = client.post(
            f"/settings/tags/{tag_id}", data={"name": "Veilig", "colour": colour, "csrf_token": token}
        )
        assert response.status_code in (302, 400), colour
    with any_db.transaction() as s:
        colour = s.get_one(Tag, tag_id).colour
    assert colour in ("", "#1f6feb")


# --- the per-user visibility cache ---------------------------------------------------------------


def test_losing_access_counts_from_the_very_next_request(any_db: Database, site: Flask) -> None:
    """The rule is built once per user id; membership, admin and active must still be read anew."""
    from hub.models.users import UserGroup, group_members

    world = World(any_db)
    member, admin = new_user(any_db, "Member"), new_user(any_db, "Boss", admin=True)
    with any_db.transaction() as s:
        group = UserGroup(name="Sales")
        s.add(group)
        s.flush()
        s.execute(group_members.insert().values(group_id=group.id, user_id=member.id))
        set_relation_linked(s, s.get_one(Relation, world.secret), [world.insider.id], [group.id])
        group_id = group.id
    member_client, admin_client = log_in(site.test_client(), member), log_in(site.test_client(), admin)
    viewer_client = log_in(site.test_client(), world.viewer)
    member_api, admin_api = _bearer(any_db, member), _bearer(any_db, admin)
    secret = f"/relations/{world.secret}"
    # Interleaved: each user's answer is his own, whatever was asked before.
    for _ in range(2):
        assert member_client.get(secret).status_code == 200
        assert viewer_client.get(secret).status_code == 404
        assert admin_client.get(secret).status_code == 200
        assert site.test_client().get("/api" + "/v1" + secret, headers=member_api).status_code == 200

    with any_db.transaction() as s:
        s.execute(group_members.delete().where(group_members.c.group_id == group_id))
    assert member_client.get(secret).status_code == 404
    assert site.test_client().get("/api/v1" + secret, headers=member_api).status_code == 404
    listed = site.test_client().get("/api/v1/tags", headers=member_api).json["items"]
    assert [(t["relations"], t["contacts"]) for t in listed] == [(0, 0)]

    with any_db.transaction() as s:
        s.get_one(User, admin.id).is_admin = False
    assert admin_client.get(secret).status_code == 404
    assert admin_client.get("/settings/tags").status_code in (302, 403, 404)
    assert site.test_client().get("/api/v1" + secret, headers=admin_api).status_code == 404

    with any_db.transaction() as s:
        s.get_one(User, world.insider.id).is_active = False
    insider_api = _bearer(any_db, world.insider)
    assert site.test_client().get("/api/v1" + secret, headers=insider_api).status_code in (401, 403, 404)


# --- the template url_for cache ------------------------------------------------------------------


def _template_url(app: Flask, path: str, script_root: str, endpoint: str, **values: Any) -> str:
    with app.test_request_context(path, base_url=f"http://hub.example{script_root}"):
        return str(app.jinja_env.globals["url_for"](endpoint, **values))


def test_template_urls_follow_the_script_root_and_the_order_given(site: Flask) -> None:
    plain = _template_url(site, "/", "", "relations.index", tag=3, q="a b")
    mounted = _template_url(site, "/", "/crm", "relations.index", tag=3, q="a b")
    assert plain == "/relations?tag=3&q=a+b" and mounted == "/crm/relations?tag=3&q=a+b"
    assert _template_url(site, "/", "", "relations.index", q="a b", tag=3) == "/relations?q=a+b&tag=3"
    assert _template_url(site, "/", "", "relations.show", relation_id=5) == "/relations/5"
    assert _template_url(site, "/", "/x", "relations.show", relation_id=5) == "/x/relations/5"


def test_template_urls_for_equal_but_different_values(site: Flask) -> None:
    assert _template_url(site, "/", "", "relations.index", page=1) == "/relations?page=1"
    assert _template_url(site, "/", "", "relations.index", page=True) == "/relations?page=True"
    assert _template_url(site, "/", "", "relations.index", page=1.0) == "/relations?page=1.0"


# --- target groups by tag --------------------------------------------------------------------------


def test_a_target_group_by_tag_tells_staff_nothing_about_hidden_relations(any_db: Database, site: Flask) -> None:
    from hub.campaigns.groups import GroupInput, preview, save_group

    world = World(any_db)
    with any_db.transaction() as s:
        group = save_group(
            s, GroupInput(name="Probe", rules={"relation_tags": ["Geheim"]}, consent_required=False), world.viewer
        )
        group_id = group.id
    client = log_in(site.test_client(), world.viewer)
    answer = client.get(f"/campaigns/groups/{group_id}/count")
    assert answer.status_code == 200 and answer.json["sample"] == []  # the sample: held
    page = client.get(f"/campaigns/groups/{group_id}")
    assert "Sam Secret" not in page.text and "Secret BV" not in page.text
    with any_db.transaction() as s:
        from hub.models.campaigns import TargetGroup

        insider_view = preview(s, s.get_one(TargetGroup, group_id), world.insider)
    assert insider_view.count == 1
    assert answer.json["count"] == 0  # what the viewer may see carries no "Geheim"


def test_the_tag_filter_with_nasty_references(any_db: Database, site: Flask) -> None:
    world = World(any_db)
    client = log_in(site.test_client(), world.viewer)
    headers = _bearer(any_db, world.viewer)
    for ref in ("9" * 30, str(2**63), "-1", "0", "1e9", "\x00", "Nul\x00", "x" * 100_000, "%", "_", "' OR 1=1"):
        page = client.get("/relations", query_string={"tag": ref})
        assert page.status_code in (200, 400), (ref[:20], page.status_code)
        assert "Secret BV" not in page.text
        api = client.get("/api/v1/relations", query_string={"tag": ref}, headers=headers)
        assert api.status_code in (200, 400), (ref[:20], api.status_code)
        if api.status_code == 200:
            assert api.json["items"] == [], ref[:20]
        else:
            assert api.json["error"]["message"]
        found = client.get("/api/v1/tags", query_string={"q": ref[:200]}, headers=headers)
        assert found.status_code in (200, 400), (ref[:20], found.status_code)
    # Bytes that are no UTF-8 (a surrogate, Latin-1) in the query string.
    for raw in ("%ED%A0%80", "%E9t%E9", "%FF%FE"):
        assert client.get(f"/relations?tag={raw}").status_code in (200, 400), raw
        assert client.get(f"/api/v1/relations?tag={raw}", headers=headers).status_code in (200, 400), raw


def test_two_people_typing_names_of_one_key_at_once_get_one_tag(pg_db: Database) -> None:
    """PostgreSQL: the second insert waits on the first's unique key, then reads its tag."""
    import threading

    from sqlalchemy import text

    with pg_db.transaction() as s:
        relation_id = save_relation(s, RelationInput(name="Race BV")).id
    results: dict[str, Any] = {}
    first = pg_db.transaction()
    s1 = first.__enter__()
    mine = tags.tag_named(s1, "Beurs 2026")
    s1.flush()

    def second() -> None:
        try:
            with pg_db.transaction() as s2:
                results["tags"] = [t.id for t in tags.tag_relation(s2, s2.get_one(Relation, relation_id), "BEÜRS 2026")]
        except Exception as exc:  # reported below, not swallowed
            results["error"] = exc

    thread = threading.Thread(target=second)
    thread.start()
    # Wait until the second insert waits on the first's lock (bounded: a few thousand polls).
    for _ in range(5000):
        with pg_db.transaction() as watch:
            waiting = watch.scalar(
                text(
                    "select count(*) from pg_stat_activity"
                    " where wait_event_type = 'Lock' and datname = current_database()"
                )
            )
        if waiting or not thread.is_alive():
            break
    first.__exit__(None, None, None)
    thread.join()
    assert "error" not in results, results
    assert results["tags"] == [mine.id]
    with pg_db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Tag)) == 1


def test_settings_tag_forms_want_an_admin_and_a_csrf_token(any_db: Database, site: Flask) -> None:
    world = World(any_db)
    admin = new_user(any_db, "Admin", admin=True)
    staff = log_in(site.test_client(), world.viewer)
    token = csrf_token(staff.get("/profile").text)
    for url, data in (
        ("/settings/tags/new", {"name": "Van staf"}),
        (f"/settings/tags/{world.geheim}", {"name": "Hernoemd"}),
        (f"/settings/tags/{world.geheim}/delete", {}),
        (f"/settings/tags/{2**70}/delete", {}),
    ):
        response = staff.post(url, data={**data, "csrf_token": token})
        assert response.status_code in (302, 403, 404), url
        if response.status_code == 302:
            assert "/settings/tags" not in response.headers["Location"], url
    boss = log_in(site.test_client(), admin)
    for url, data in (
        ("/settings/tags/new", {"name": "Zonder token"}),
        (f"/settings/tags/{world.geheim}", {"name": "Zonder token"}),
        (f"/settings/tags/{world.geheim}/delete", {}),
    ):
        assert boss.post(url, data=data).status_code == 400, url
    assert boss.get(f"/settings/tags/{2**70}").status_code == 404
    with any_db.transaction() as s:
        assert [t.name for t in s.scalars(select(Tag))] == ["Geheim"]


def test_the_channel_page_with_a_relation_id_of_thousands_of_digits(any_db: Database, site: Flask) -> None:
    world = World(any_db)
    client = log_in(site.test_client(), world.viewer)
    assert client.get(f"/campaigns/channels?relation_id={world.secret}").status_code == 404
    assert client.get("/campaigns/channels?relation_id=" + "9" * 5000).status_code == 404


@pytest.mark.parametrize(
    "fields",
    [
        {"relation_tags": ["x"]},
        {"relation_tags": ["9" * 40]},
        {"contact_tags": ["-1"]},
        {"without_tags": ["²"]},
        {"relation_tags": ["99999"]},  # no such tag
    ],
)
def test_the_target_group_form_with_nasty_tag_fields(any_db: Database, site: Flask, fields: dict[str, Any]) -> None:
    World(any_db)
    client = log_in(site.test_client(), new_user(any_db, "Marketeer"))
    token = csrf_token(client.get("/campaigns/groups/new").text)
    response = client.post(
        "/campaigns/groups/new", data={"name": "Probe", "consent_required": "y", "csrf_token": token, **fields}
    )
    assert response.status_code in (200, 400), response.status_code
    assert 'value="Probe"' in response.text  # the form again, what was typed kept
    from hub.models.campaigns import TargetGroup

    with any_db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(TargetGroup)) == 0


def test_the_target_group_form_with_a_superscript_choice_id(any_db: Database, site: Flask) -> None:
    client = log_in(site.test_client(), new_user(any_db, "Marketeer"))
    token = csrf_token(client.get("/campaigns/groups/new").text)
    response = client.post(
        "/campaigns/groups/new", data={"name": "Probe", "project_choice_ids": "²", "csrf_token": token}
    )
    assert response.status_code in (200, 400)


# --- the calls import with hostile rows (PostgreSQL: batches COPYed) ----------------------------------


def _cdr(n: int, *, clid: str = '"Jan" <+31201234567>', src: str = "+31201234567", userfield: str = "") -> str:
    unique = f"1741083302.{n}"
    return (
        f'"","{src}","100","from-trunk","{clid.replace(chr(34), chr(34) * 2)}","PJSIP/trunk-{n}","PJSIP/100-{n}",'
        f'"Dial","PJSIP/100,30","2025-03-04 10:{n % 60:02d}:02","2025-03-04 10:{n % 60:02d}:09",'
        f'"2025-03-04 10:{n % 60:02d}:41",39,32,"ANSWERED","DOCUMENTATION","{unique}","{userfield}"'
    )


def test_the_calls_import_takes_hostile_rows_without_loss_or_doubles(any_db: Database, tmp_path: Any) -> None:
    """NUL bytes, Latin-1, a BOM mid-file, full-width and invisible characters in numbers, a field past
    the CSV limit, and a quote left open on the last row: every good row a call, once; every bad one a
    rejected row with its line; a second import adds nothing."""
    from hub.i18n import english
    from hub.models import Call
    from hub.telephony.ingest import import_path
    from hub.telephony.sources import SourceInput, save_source

    with any_db.transaction() as s:
        source_id = save_source(
            s, "test-secret-key-0123456789", SourceInput(name="PBX", format="asterisk-csv", timezone="Europe/Amsterdam")
        ).id
    good = [
        _cdr(1),
        _cdr(2, clid="J\x00an <+31201234567>"),  # a NUL in the caller's name
        _cdr(3, src="+31201234567\x00"),  # a NUL after the number
        _cdr(4, userfield="\x00"),
        _cdr(5, src="\uff10\uff12\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17"),  # full-width digits
        _cdr(6, src="\u202d+31 20 1234567\u202c"),  # bidi marks
        "\ufeff" + _cdr(7),  # a BOM mid-file
        _cdr(8, clid="José <+31201234567>"),  # Latin-1 (encoded below)
        _cdr(9, src="+31 (0)20-1234567 ext. 12"),
    ]
    bad = [
        _cdr(10, userfield="x" * 200_000),  # past the csv module's field limit
        # A bad date quoting a NUL (a NUL alone is dropped since the telephony audit: the 13th month is bad).
        _cdr(12).replace("2025-03-04 10:12:02", "2025-13-04\x00 10:12"),
    ]
    last = _cdr(11).replace('"Dial"', '"Di""al') + ",3"  # a quote left open on the last row
    data = "\n".join(good[:7]).encode() + b"\n" + good[7].encode("latin-1") + b"\n"
    data += good[8].encode() + b"\n" + "\n".join(bad).encode() + b"\n" + last.encode() + b"\n"
    path = tmp_path / "Master.csv"
    path.write_bytes(data)
    first = import_path(any_db, source_id, path)
    assert (first.imported, first.rejected) == (9, 3), first
    assert [line for line, _reason in first.errors] == [10, 11, 12]
    reasons = [english(reason) for _line, reason in first.errors]
    # (The last row, its quote left open, splits into more fields than Asterisk writes.)
    assert "longer than" in reasons[0] and "bad date" in reasons[1] and "column count" in reasons[2], reasons
    with any_db.transaction() as s:
        rows = list(s.scalars(select(Call).where(Call.source_id == source_id)))
        assert len(rows) == 9
        assert {c.e164 for c in rows} == {"+31201234567"}
        assert all("\x00" not in c.number + c.call_key + c.extension for c in rows)
    again = import_path(any_db, source_id, path)
    assert again.imported == 0 and again.rejected == 3
    with any_db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Call).where(Call.source_id == source_id)) == 9


def test_a_growing_file_cut_inside_a_quoted_newline_imports_each_call_once(any_db: Database, tmp_path: Any) -> None:
    """The PBX is writing a row whose quoted field holds a newline when the import reads the file: the
    half row waits; once written, it and the rows after it come in once, on the right lines."""
    from hub.models import Call, CallFile
    from hub.telephony.ingest import import_stream
    from hub.telephony.sources import SourceInput, save_source

    with any_db.transaction() as s:
        source_id = save_source(
            s, "test-secret-key-0123456789", SourceInput(name="PBX", format="asterisk-csv", timezone="Europe/Amsterdam")
        ).id
    split = _cdr(4).replace('"Dial"', '"Di\nal"')
    whole = ("\n".join([_cdr(1), _cdr(2), _cdr(3), split, _cdr(5)]) + "\n").encode()
    path = tmp_path / "Master.csv"
    for cut in (whole.index(b"Di\n") + 3, whole.index(b"Di\n") + 2, len(whole) - 7):
        with any_db.transaction() as s:
            s.execute(Call.__table__.delete())
            s.execute(CallFile.__table__.delete())
        path.write_bytes(whole[:cut])
        results = []
        with path.open("rb") as stream:
            results.append(import_stream(any_db, source_id, stream, cursor_path=str(path), final=False))
        path.write_bytes(whole)
        with path.open("rb") as stream:
            results.append(import_stream(any_db, source_id, stream, cursor_path=str(path), final=False))
        assert sum(r.imported for r in results) == 5, (cut, results)
        assert sum(r.rejected for r in results) == 0, (cut, results)
        with any_db.transaction() as s:
            assert s.scalar(select(func.count()).select_from(Call).where(Call.source_id == source_id)) == 5


def test_settings_lists_every_tag_also_past_the_suggestions(any_db: Database, site: Flask) -> None:
    """Staff make a tag by typing a name; past the 500 the add box suggests, the admin must still
    see (and so can rename or delete) every one."""
    with any_db.transaction() as s:
        for n in range(tags.MAX_SUGGESTIONS + 5):
            tags.tag_named(s, f"Tag {n:04d}")
    client = log_in(site.test_client(), new_user(any_db, "Admin", admin=True))
    page = client.get("/settings/tags")
    assert page.status_code == 200
    assert f"Tag {tags.MAX_SUGGESTIONS + 4:04d}" in page.text and "Tag 0000" in page.text
