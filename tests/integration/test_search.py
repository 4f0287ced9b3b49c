"""The search box and GET /api/v1/search: every kind found the way people type it, only what the user
may see (never counted either), ranked and paged past the first page, and no input that breaks it;
on SQLite and on PostgreSQL."""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.accounts.users import UserInput, create_token, create_user
from hub.config import Settings
from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.crm.search import search
from hub.db import Database
from hub.mail.privacy import email_visible
from hub.models import Email, EmailRelation, Mailbox, MailboxEmail, MailSecurity, MailSharing, Relation, User
from tests.conftest import PASSWORD, EnglishClient, csrf_token

Login = Callable[[FlaskClient, User], FlaskClient]
_n = itertools.count(1)


@pytest.fixture
def site(any_db: Database, settings: Settings) -> Iterator[Flask]:
    """The app on SQLite and on PostgreSQL."""
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    yield app


def person(db: Database, name: str, *, admin: bool = False, language: str = "en") -> User:
    with db.transaction() as s:
        return create_user(
            s,
            UserInput(
                email=f"{name.lower()}{next(_n)}@staff.example",
                name=name,
                password=PASSWORD,
                is_admin=admin,
                language=language,
            ),
        )


def token(db: Database, user: User) -> dict[str, str]:
    with db.transaction() as s:
        return {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id))}


def mailbox(s: Any, owner: User | None, *, sharing: str = MailSharing.only_me.value) -> Mailbox:
    box = Mailbox(
        name=f"box {next(_n)}",
        owner_id=owner.id if owner else None,
        host="imap.example",
        port=993,
        security=MailSecurity.ssl,
        username=f"box{next(_n)}@example.nl",
        password_encrypted="x",
        sharing=sharing,
    )
    s.add(box)
    s.flush()
    return box


def email(
    s: Any,
    box: Mailbox,
    subject: str,
    *,
    sender: str = "karin@klant.example",
    name: str = "Karin de Vries",
    relation_id: int | None = None,
    private: bool = False,
    minutes: int = 0,
) -> Email:
    n = next(_n)
    mail = Email(
        message_key=f"c:{n}",
        message_id=f"<{n}@klant.example>",
        subject=subject,
        from_address=sender,
        from_name=name,
        sent_at=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=minutes),
        raw_sha256="0" * 64,
    )
    s.add(mail)
    s.flush()
    s.add(MailboxEmail(mailbox_id=box.id, email_id=mail.id, private=private))
    if relation_id is not None:
        s.add(EmailRelation(email_id=mail.id, relation_id=relation_id))
    s.flush()
    return mail


def found(db: Database, user: User, text: str, kind: str) -> list[str]:
    """Every name (subject) of ``kind`` the user finds, in order, following the cursors to the end."""
    names: list[str] = []
    cursor = None
    with db.transaction() as s:
        viewer = s.get_one(User, user.id)
        while True:
            group = search(
                s, viewer, text, kinds=(kind,), cursor=cursor, per_page=25, emails_visible=email_visible
            ).group(kind)
            assert group is not None
            names += [getattr(item, "subject", None) or item.name for item in group.items]
            if group.next_cursor is None:
                assert len(names) == group.total
                return names
            cursor = group.next_cursor


def totals(db: Database, user: User, text: str) -> dict[str, int]:
    with db.transaction() as s:
        return {g.kind: g.total for g in search(s, s.get_one(User, user.id), text, emails_visible=email_visible).groups}


# --- what is found -----------------------------------------------------------------------------------


def test_contacts_by_name_address_and_phone_typed_any_way(any_db: Database) -> None:
    user = person(any_db, "Viewer")
    with any_db.transaction() as s:
        zoe = save_relation(s, RelationInput(name="Bakkerij Zoë", phones=["020-7654321"]))
        save_contact(
            s, zoe, ContactInput(name="José Bakker", emails=["Jose@Bakkerij-Zoe.example"], phones=["030 231 4567"])
        )
        save_contact(s, zoe, ContactInput(name="Mobiel Mens", phones=["+31 6 1234 5678"]))
        save_contact(s, zoe, ContactInput(name="Ander Nummer", phones=["010 999 8888"]))
    for typed in ["030 231", "030-2314567", "(030) 231 45 67", "+31 30 231", "+31302314567", "0031 (0)30-231 4567"]:
        assert found(any_db, user, typed, "contacts") == ["José Bakker"], typed
    assert found(any_db, user, "2314", "contacts") == ["José Bakker"]  # digits anywhere in the number
    assert found(any_db, user, "06-1234", "contacts") == ["Mobiel Mens"]
    assert found(any_db, user, "+31 6 12345678", "contacts") == ["Mobiel Mens"]
    assert found(any_db, user, "JOSE", "contacts") == ["José Bakker"]  # accents and case ignored
    assert found(any_db, user, "jose@bakkerij-zoe", "contacts") == ["José Bakker"]
    assert found(any_db, user, "020 765", "relations") == ["Bakkerij Zoë"]  # the relation's own number
    assert found(any_db, user, "020 765", "contacts") == []
    assert found(any_db, user, "12", "contacts") == []  # too few digits to be a number, no name has it


def test_relations_by_name_kvk_vat_and_city(any_db: Database) -> None:
    user = person(any_db, "Viewer")
    with any_db.transaction() as s:
        save_relation(
            s,
            RelationInput(name="Café Zoë", city="'s-Hertogenbosch", coc_number="12345678", vat_number="NL812345678B01"),
        )
        save_relation(s, RelationInput(name="Schoenmaker", city="Wijk bij Duurstede", coc_number="87654321"))
        save_relation(s, RelationInput(name="100% Groen"))
        save_relation(s, RelationInput(name="A_B Techniek"))
    assert found(any_db, user, "cafe zoe", "relations") == ["Café Zoë"]
    assert found(any_db, user, "FÉ ZO", "relations") == ["Café Zoë"]  # a substring, accents either way
    assert found(any_db, user, "1234 5678", "relations") == ["Café Zoë"]  # KvK typed in groups
    assert found(any_db, user, "87654321", "relations") == ["Schoenmaker"]
    assert found(any_db, user, "nl812345678b01", "relations") == ["Café Zoë"]
    assert found(any_db, user, "NL 8123.45.678", "relations") == ["Café Zoë"]
    assert found(any_db, user, "hertogenbosch", "relations") == ["Café Zoë"]
    assert found(any_db, user, "bij duur", "relations") == ["Schoenmaker"]
    # LIKE's wildcards are taken literally.
    assert found(any_db, user, "%", "relations") == ["100% Groen"]
    assert found(any_db, user, "_", "relations") == ["A_B Techniek"]


def test_projects_by_name_number_and_free_fields(any_db: Database) -> None:
    user = person(any_db, "Viewer")
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Klant"))
        subsidy = save_choice(s, ChoiceInput(field="free_choice_2", name="Subsidie ISDE")).id
        other = save_choice(s, ChoiceInput(field="free_choice_2", name="Geen subsidie")).id
        pump = save_project(
            s,
            user,
            ProjectInput(
                relation_id=relation.id,
                name="Verwarming",
                free_texts={"free_text_3": "Warmtepomp Daikin Altherma"},
                choices={"free_choice_2": subsidy},
            ),
        )
        save_project(s, user, ProjectInput(relation_id=relation.id, name="Dak", choices={"free_choice_2": other}))
        pump_id = pump.id
    assert found(any_db, user, "daikin", "projects") == ["Verwarming"]
    assert found(any_db, user, "isde", "projects") == ["Verwarming"]
    assert found(any_db, user, "subsidie", "projects") == ["Dak", "Verwarming"]
    for typed in [str(pump_id), f"P-{pump_id}", f"[P-{pump_id}]", f"p{pump_id}"]:
        assert found(any_db, user, typed, "projects")[0] == "Verwarming", typed


def test_emails_by_subject_and_sender_only_those_the_user_may_see(any_db: Database) -> None:
    viewer, colleague = person(any_db, "Viewer"), person(any_db, "Colleague")
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Klant BV")).id
        shared = mailbox(s, None)
        for n in range(30):
            email(s, shared, f"Offerte warmtepomp {n:02d}", minutes=n)
        own = mailbox(s, colleague)  # shares nothing with colleagues
        email(s, own, "Offerte warmtepomp geheim", relation_id=relation)
        sharing = mailbox(s, colleague, sharing=MailSharing.colleagues.value)
        email(s, sharing, "Offerte warmtepomp gedeeld", relation_id=relation, minutes=100)
        email(s, sharing, "Offerte warmtepomp privé", relation_id=relation, private=True)
        email(s, shared, "Vraag", sender="jan.de.boer@klant.example", name="Jan de Boer")
    subjects = found(any_db, viewer, "offerte WARMTEPOMP", "emails")
    assert len(subjects) == 31 and subjects[0] == "Offerte warmtepomp gedeeld"  # newest first
    assert subjects[1:] == [f"Offerte warmtepomp {n:02d}" for n in reversed(range(30))]
    assert totals(any_db, viewer, "warmtepomp")["emails"] == 31
    assert totals(any_db, colleague, "warmtepomp")["emails"] == 33
    assert found(any_db, viewer, "geheim", "emails") == [] and found(any_db, viewer, "privé", "emails") == []
    assert found(any_db, viewer, "de boer", "emails") == ["Vraag"]
    assert found(any_db, viewer, "jan.de.boer@", "emails") == ["Vraag"]


# --- visibility, ranking, paging ------------------------------------------------------------------------


def test_a_renamed_relation_is_found_by_its_new_name_only(any_db: Database) -> None:
    # The name is matched through its stored folded copy on SQLite: renaming must keep it in step.
    user = person(any_db, "Viewer")
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakkerij Oud"))
        save_relation(s, RelationInput(name="Bakkerij Oudewater"))
    with any_db.transaction() as s:
        save_relation(s, RelationInput(name="Bäckerei Nëu"), s.get_one(Relation, relation.id))
    assert found(any_db, user, "bakkerij oud", "relations") == ["Bakkerij Oudewater"]
    assert found(any_db, user, "backerei neu", "relations") == ["Bäckerei Nëu"]
    # Searches of the same kind share their statements; each still gets its own text's rows and rank.
    assert found(any_db, user, "bakkerij oudewater", "relations") == ["Bakkerij Oudewater"]
    assert found(any_db, user, "e", "relations") == ["Bäckerei Nëu", "Bakkerij Oudewater"]


def test_what_a_colleague_restricted_is_never_found_nor_counted(any_db: Database) -> None:
    viewer, colleague, admin = person(any_db, "Viewer"), person(any_db, "Colleague"), person(any_db, "Boss", admin=True)
    with any_db.transaction() as s:
        hidden = save_relation(
            s, RelationInput(name="Orion Hidden", owner_id=colleague.id, city="Orionstad", coc_number="55554444")
        )
        set_relation_linked(s, hidden, [colleague.id], [])
        save_contact(s, hidden, ContactInput(name="Orion Contact", phones=["030 555 4444"]))
        save_project(s, colleague, ProjectInput(relation_id=hidden.id, name="Orion on hidden relation"))
        shown = save_relation(s, RelationInput(name="Orion Open"))
        save_contact(s, shown, ContactInput(name="Orion Visible Contact"))
        save_project(s, viewer, ProjectInput(relation_id=shown.id, name="Orion visible plan"))
        secret = save_project(
            s,
            colleague,
            ProjectInput(
                relation_id=shown.id,
                name="Orion secret plan",
                responsible_user_id=colleague.id,
                free_texts={"free_text_1": "orion"},
            ),
        )
        set_linked(s, secret, [colleague.id], [])
    assert totals(any_db, viewer, "orion") == {"contacts": 1, "relations": 1, "projects": 1, "emails": 0}
    assert found(any_db, viewer, "orion", "relations") == ["Orion Open"]
    assert found(any_db, viewer, "orion", "contacts") == ["Orion Visible Contact"]
    assert found(any_db, viewer, "orion", "projects") == ["Orion visible plan"]
    for typed in ["55554444", "orionstad", "030 555 4444", "secret"]:
        assert sum(totals(any_db, viewer, typed).values()) == 0, typed
    assert totals(any_db, colleague, "orion") == {"contacts": 2, "relations": 2, "projects": 3, "emails": 0}
    assert totals(any_db, admin, "orion") == {"contacts": 2, "relations": 2, "projects": 3, "emails": 0}


def test_exact_matches_come_first_and_every_result_is_reachable(any_db: Database, site: Flask) -> None:
    viewer, colleague = person(any_db, "Viewer"), person(any_db, "Colleague")
    with any_db.transaction() as s:
        save_relation(s, RelationInput(name="De Warme Bakker"))
        for n in reversed(range(60)):
            save_relation(s, RelationInput(name=f"Bakker {n:02d}"))
        save_relation(s, RelationInput(name="Bakker"))
        hidden = save_relation(s, RelationInput(name="Bakker Geheim", owner_id=colleague.id))
        set_relation_linked(s, hidden, [colleague.id], [])
    expected = ["Bakker", *(f"Bakker {n:02d}" for n in range(60)), "De Warme Bakker"]
    assert found(any_db, viewer, "bakker", "relations") == expected
    # The API: the same order, page by page with the cursor.
    client, headers, names, url = site.test_client(), token(any_db, viewer), [], "/api/v1/search?q=bakker"
    first = client.get(url, headers=headers).get_json()
    assert [g["kind"] for g in first["groups"]] == ["contacts", "relations", "projects", "emails"]
    relations = first["groups"][1]
    assert relations["total"] == 62 and len(relations["items"]) == 10 and relations["items"][0]["title"] == "Bakker"
    cursor = None
    while True:
        page = client.get(
            f"{url}&kind=relations&per_page=25" + (f"&cursor={cursor}" if cursor else ""), headers=headers
        )
        assert page.status_code == 200, page.text
        (group,) = page.get_json()["groups"]
        names += [item["title"] for item in group["items"]]
        cursor = group["next"]
        if cursor is None:
            break
    assert names == expected
    # The page: 25 a page, "Next" until the last.
    browser = _login(site, viewer)
    page_url, seen = "/search?q=bakker&kind=relations", []
    while page_url:
        text = browser.get(page_url).text
        seen += re.findall(r'<a href="/relations/\d+">(.*?)</a>', text)
        following = re.search(r'<a href="([^"]+)" rel="next">', text)
        page_url = html.unescape(following.group(1)) if following else ""
    assert [re.sub(r"</?mark>", "", name) for name in seen] == expected


def _login(app: Flask, user: User) -> FlaskClient:
    from tests.conftest import csrf_token

    client = app.test_client()
    page = client.get("/login")
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 302
    return client


# --- pages and bad input ---------------------------------------------------------------------------------


def test_the_page_groups_by_kind_with_counts_and_marks_the_match(
    client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database
) -> None:
    user = make_user()
    with db.transaction() as s:
        relation = save_relation(
            s, RelationInput(name="Café Zoë", city="Leiden", coc_number="12345678", phones=["071 234 5678"])
        )
        save_contact(s, relation, ContactInput(name="Zoë de Wit", emails=["zoe@cafe.example"]))
        for n in range(7):
            save_project(s, user, ProjectInput(relation_id=relation.id, name=f"Terras Zoë {n}"))
    login(client, user)
    page = client.get("/search?q=zoe").text
    assert "Caf<mark>é Zo</mark>ë" not in page and "Café <mark>Zoë</mark>" in page
    assert re.search(r"Projects <span class=\"count\">7</span>", page)
    assert 'href="/search?q=zoe&amp;kind=projects"' in page and "Show all 7" in page
    assert "No e-mails found." in page
    plain = re.sub(r"</?mark>", "", page)
    assert "Terras Zoë 4" in plain and "Terras Zoë 5" not in plain  # five of each on the overview
    kind_page = re.sub(r"</?mark>", "", client.get("/search?q=zoe&kind=projects").text)
    assert "Terras Zoë 6" in kind_page and 'rel="next"' not in kind_page
    assert 'placeholder="Search contacts, relations, projects, e-mail"' in page
    by_number = client.get("/search?q=2345").text
    assert "KvK 1<mark>2345</mark>678 · 071 234 5678" in by_number  # the relation's KvK and its number


def test_the_page_speaks_dutch(client: FlaskClient, make_user: Callable[..., User], login: Login, db: Database) -> None:
    user = make_user(language="nl")
    with db.transaction() as s:
        save_relation(s, RelationInput(name="Bakkerij Jansen"))
    login(client, user)
    page = client.get("/search?q=jansen", headers={"Accept-Language": "nl"}).text
    assert "Zoekresultaten voor" in page and "Relaties" in page and "Geen e-mails gevonden." in page


BAD = [
    "%00",
    "a%00b",
    "%ED%A0%80",
    "%ED%B0%80x",
    "x" * 10_000,
    "*",
    "%22",
    "%22unterminated",
    "NEAR(a%20b)",
    "(",
    ")",
    "%25",
    "_",
    "a%27%20OR%201%3D1%20--",
    "%5C",
    "AND%20OR%20NOT",
    "col:val",
    "%2B",
    "0",
    "%C3%A9" * 300,
]


def test_bad_input_never_fails(any_db: Database, site: Flask) -> None:
    viewer = person(any_db, "Viewer")
    with any_db.transaction() as s:
        save_relation(s, RelationInput(name='Quote "Zoë" (NEAR) * 100% _x_'))
    browser, api, headers = _login(site, viewer), site.test_client(), token(any_db, viewer)
    for q in BAD:
        page = browser.get(f"/search?q={q}")
        assert page.status_code == 200, q
        for kind in ("", "&kind=contacts", "&kind=emails"):
            response = api.get(f"/api/v1/search?q={q}{kind}", headers=headers)
            assert response.status_code in (200, 400), (q, response.status_code)
            if response.status_code == 400:
                assert response.get_json()["error"]["message"], q
    assert browser.get("/search?q=x&kind=contacts&cursor=bm9wZQ").status_code == 200
    assert browser.get("/search?q=x&kind=nonsense").status_code == 200
    for query in ["q=x&kind=contacts&cursor=bm9wZQ", "q=x&cursor=abc", "q=x&kind=nonsense", "q=x&per_page=1000"]:
        assert api.get(f"/api/v1/search?{query}", headers=headers).status_code == 400, query
    # The page searched the first 200 characters of a long text and says so.
    assert "Only the first 200 characters were searched." in browser.get("/search?q=" + "y" * 10_000).text
    for typed in ['"Zoë"', "(NEAR)", "* 100%", "_x_"]:
        assert found(any_db, viewer, typed, "relations") == ['Quote "Zoë" (NEAR) * 100% _x_'], typed


def test_typed_markup_is_shown_as_text_in_every_language(
    client: FlaskClient, make_user: Callable[..., User], login: Login
) -> None:
    """The typed text goes into a translated sentence ("Search results for “…”"): it is escaped there,
    and a % in it is kept, in English and in Dutch."""
    for language, heading in (("en", "Search results for"), ("nl", "Zoekresultaten voor")):
        login(client, make_user(language=language))
        page = client.get("/search", query_string={"q": '<b onclick="x()">100%</b>'}).text
        assert f"{heading} “&lt;b onclick=&#34;x()&#34;&gt;100%&lt;/b&gt;”" in page
        assert "<b onclick" not in page
        client.post("/logout", data={"csrf_token": csrf_token(page)})
