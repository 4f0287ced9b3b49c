"""A contact's own page: details, notes and visit reports (author only edits, stale saves refused),
its e-mails (only what the reader may see, more than one page), its projects and calls; hidden
like a missing one wherever its relation is hidden, in the pages and the API."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.accounts.users import create_token
from hub.config import Settings
from hub.crm.contact_notes import NoteInput, save_note
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.models import Contact, ContactNote, User
from tests.conftest import PASSWORD, csrf_token
from tests.mail_fixtures import MailAccount, sync_account

Login = Callable[[FlaskClient, User], FlaskClient]


def _user(database: Database, name: str, *, admin: bool = False) -> User:
    from hub.accounts.users import UserInput, create_user

    with database.transaction() as s:
        return create_user(
            s,
            UserInput(
                email=f"{name.lower()}@staff.example", name=name, password=PASSWORD, is_admin=admin, language="en"
            ),
        )


def _same(page: str, other: str) -> bool:
    """The same page, but for its CSRF token (signed with the second it was made)."""
    token = re.compile(r'name="csrf_token" value="[^"]*"')
    return token.sub("", page) == token.sub("", other)


def _login(app: Flask, who: User) -> FlaskClient:
    client = app.test_client()
    page = client.get("/login")
    response = client.post(
        "/login", data={"email": who.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 302
    return client


def _api(app: Flask, database: Database, who: User) -> FlaskClient:
    with database.transaction() as s:
        token = create_token(s, s.get_one(User, who.id))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer " + token
    return client


def _contact(database: Database, owner: User, *, restricted: bool = False) -> tuple[int, int, int]:
    """A relation (restricted to ``owner`` if asked) with a contact on one of its projects."""
    with database.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakkerij De Korenschoof", owner_id=owner.id))
        contact = save_contact(
            s,
            relation,
            ContactInput(
                name="Joke Visser", function="Inkoper", emails=["joke@korenschoof.example"], phones=["030 231 1234"]
            ),
        )
        project = save_project(
            s,
            s.get_one(User, owner.id),
            ProjectInput(relation_id=relation.id, name="Nieuwe oven", contact_ids=[contact.id]),
        )
        if restricted:
            set_relation_linked(s, relation, [owner.id], [])
        return relation.id, contact.id, project.id


def test_the_contact_page_shows_details_notes_projects_and_calls_and_relation_pages_link_to_it(
    app: Flask, db: Database, make_user: Callable[..., User], login: Login, client: FlaskClient
) -> None:
    anna = make_user("Anna")
    relation_id, contact_id, project_id = _contact(db, anna)
    login(client, anna)
    assert f'href="/contacts/{contact_id}"' in client.get(f"/relations/{relation_id}").text
    assert f'href="/contacts/{contact_id}"' in client.get(f"/projects/{project_id}").text

    page = client.get(f"/contacts/{contact_id}")
    assert page.status_code == 200
    for shown in ("Joke Visser", "Inkoper", "joke@korenschoof.example", "030 231 1234", "Bakkerij De Korenschoof"):
        assert shown in page.text
    assert "Nieuwe oven" in page.text and f"/projects/{project_id}" in page.text
    assert f"/contacts/{contact_id}/calls" in page.text
    assert "No notes or visit reports yet." in page.text

    token = csrf_token(page.text)
    visit = client.post(
        f"/contacts/{contact_id}/notes",
        data={
            "csrf_token": token,
            "kind": "visit",
            "date": "2026-11-20",
            "text": "Bezoek: oven bekeken, offerte volgt.",
        },
    )
    assert visit.status_code == 302
    client.post(
        f"/contacts/{contact_id}/notes",
        data={"csrf_token": token, "kind": "note", "date": "2026-11-25", "text": "Belde over levertijd."},
    )
    shown = client.get(f"/contacts/{contact_id}").text
    # Newest first, each with its kind, date and author.
    assert shown.index("Belde over levertijd.") < shown.index("Bezoek: oven bekeken")
    assert "Visit report" in shown and "Anna" in shown and "20/11/2026" in shown

    # Bad input: the form comes back with the reason and what was typed; nothing stored.
    bad = client.post(
        f"/contacts/{contact_id}/notes", data={"csrf_token": token, "kind": "visit", "date": "", "text": "Zonder datum"}
    )
    assert bad.status_code == 400 and "A note needs a date." in bad.text and "Zonder datum" in bad.text
    empty = client.post(
        f"/contacts/{contact_id}/notes",
        data={"csrf_token": token, "kind": "note", "date": "2026-11-25", "text": "\x00 "},
    )
    assert empty.status_code == 400 and "Write what was discussed." in empty.text
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ContactNote)) == 2


def test_the_page_in_dutch(
    app: Flask, db: Database, make_user: Callable[..., User], login: Login, client: FlaskClient
) -> None:
    anna = make_user("Anna", language="nl")
    _relation_id, contact_id, _project_id = _contact(db, anna)
    with db.transaction() as s:
        contact = s.get_one(Contact, contact_id)
        save_note(s, s.get_one(User, anna.id), contact, NoteInput(kind="visit", date=date(2026, 11, 27), text="x"))
    login(client, anna)
    page = client.get(f"/contacts/{contact_id}").text
    assert "Gespreksnotities en bezoekverslagen" in page and "Bezoekverslag" in page and "27-11-2026" in page


def test_only_the_author_or_an_admin_changes_a_note_and_a_stale_save_is_refused_with_both_texts(
    app: Flask, db: Database, make_user: Callable[..., User], login: Login
) -> None:
    anna, bert, admin = make_user("Anna"), make_user("Bert"), make_user("Admin", admin=True)
    _relation_id, contact_id, _project_id = _contact(db, anna)
    as_anna = login(app.test_client(), anna)
    token = csrf_token(as_anna.get(f"/contacts/{contact_id}").text)
    as_anna.post(
        f"/contacts/{contact_id}/notes",
        data={"csrf_token": token, "kind": "visit", "date": "2026-11-20", "text": "Eerste versie"},
    )
    with db.transaction() as s:
        note_id = s.scalars(select(ContactNote.id)).one()

    # A colleague who sees the contact reads the note but may not change or delete it.
    as_bert = login(app.test_client(), bert)
    page = as_bert.get(f"/contacts/{contact_id}").text
    assert "Eerste versie" in page and f"/contacts/notes/{note_id}/edit" not in page
    refused = as_bert.get(f"/contacts/notes/{note_id}/edit", follow_redirects=True)
    assert "Only the author of a note or an admin can change it." in refused.text
    as_bert.post(f"/contacts/notes/{note_id}/delete", data={"csrf_token": csrf_token(page), "version": "1"})
    with db.transaction() as s:
        assert s.get_one(ContactNote, note_id).text == "Eerste versie"

    # Anna edits in one tab; the admin saved meanwhile: her save is refused, both texts shown.
    form = as_anna.get(f"/contacts/notes/{note_id}/edit").text
    version = re.search(r'name="version"[^>]*value="(\d+)"', form) or re.search(
        r'value="(\d+)"[^>]*name="version"', form
    )
    assert version is not None and version.group(1) == "1"
    as_admin = login(app.test_client(), admin)
    admin_form = as_admin.get(f"/contacts/notes/{note_id}/edit").text
    saved = as_admin.post(
        f"/contacts/notes/{note_id}/edit",
        data={
            "csrf_token": csrf_token(admin_form),
            "kind": "visit",
            "date": "2026-11-20",
            "text": "Versie van admin",
            "version": "1",
        },
    )
    assert saved.status_code == 302
    stale = as_anna.post(
        f"/contacts/notes/{note_id}/edit",
        data={
            "csrf_token": csrf_token(form),
            "kind": "visit",
            "date": "2026-11-20",
            "text": "Versie van Anna",
            "version": "1",
        },
    )
    assert stale.status_code == 409
    assert "Someone else saved this while you were editing it." in stale.text
    assert "Versie van admin" in stale.text and "Versie van Anna" in stale.text
    with db.transaction() as s:
        assert s.get_one(ContactNote, note_id).text == "Versie van admin"
    # Deleting on the old version is refused too; on the current one it goes.
    page = as_anna.get(f"/contacts/{contact_id}").text
    as_anna.post(f"/contacts/notes/{note_id}/delete", data={"csrf_token": csrf_token(page), "version": "1"})
    with db.transaction() as s:
        assert s.get(ContactNote, note_id) is not None
    as_anna.post(f"/contacts/notes/{note_id}/delete", data={"csrf_token": csrf_token(page), "version": "2"})
    with db.transaction() as s:
        assert s.get(ContactNote, note_id) is None


def test_a_colleague_who_may_not_see_the_relation_gets_404_for_page_notes_and_api(
    any_db: Database, settings: Settings
) -> None:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    owner, outsider = _user(any_db, "Owner"), _user(any_db, "Outsider")
    _relation_id, contact_id, _project_id = _contact(any_db, owner, restricted=True)
    with any_db.transaction() as s:
        note = save_note(
            s,
            s.get_one(User, owner.id),
            s.get_one(Contact, contact_id),
            NoteInput(kind="visit", date=date(2026, 11, 2), text="Geheim bezoek"),
        )
        note_id = note.id
    as_outsider = _login(app, outsider)
    token = csrf_token(as_outsider.get("/profile").text)
    missing = as_outsider.get("/contacts/999999")
    for response in (
        as_outsider.get(f"/contacts/{contact_id}"),
        as_outsider.get("/contacts/99999999999"),
        as_outsider.get(f"/contacts/notes/{note_id}/edit"),
        as_outsider.post(
            f"/contacts/{contact_id}/notes",
            data={"csrf_token": token, "kind": "note", "date": "2026-11-02", "text": "ingebroken"},
        ),
        as_outsider.post(f"/contacts/notes/{note_id}/edit", data={"csrf_token": token, "text": "x", "version": "1"}),
        as_outsider.post(f"/contacts/notes/{note_id}/delete", data={"csrf_token": token, "version": "1"}),
    ):
        assert response.status_code == 404 and _same(response.text, missing.text)
        assert "Geheim" not in response.text and "Joke" not in response.text
    api = _api(app, any_db, outsider)
    for response in (
        api.get(f"/api/v1/contacts/{contact_id}/notes"),
        api.post(f"/api/v1/contacts/{contact_id}/notes", json={"date": "2026-11-02", "text": "ingebroken"}),
    ):
        assert response.status_code == 404
        assert response.get_json() == api.get("/api/v1/contacts/999999/notes").get_json()
    with any_db.transaction() as s:
        assert list(s.scalars(select(ContactNote.text))) == ["Geheim bezoek"]
    # The owner sees it all.
    assert "Geheim bezoek" in _login(app, owner).get(f"/contacts/{contact_id}").text


def test_the_api_lists_and_adds_notes_and_refuses_bad_input(
    app: Flask, db: Database, make_user: Callable[..., User]
) -> None:
    anna = make_user("Anna")
    _relation_id, contact_id, _project_id = _contact(db, anna)
    api = _api(app, db, anna)
    created = api.post(
        f"/api/v1/contacts/{contact_id}/notes", json={"kind": "visit", "date": "2026-11-20", "text": "Bezoek"}
    )
    assert created.status_code == 201, created.text
    body = created.get_json()
    assert body["kind"] == "visit" and body["date"] == "2026-11-20" and body["author_id"] == anna.id
    assert body["version"] == 1
    for bad in (
        {"date": "2026-02-30", "text": "x"},
        {"date": "9999-01-01", "text": "x"},
        {"date": "2026-11-20", "text": "\x00"},
        {"date": "2026-11-20", "text": "x", "kind": "party"},
        {"date": "2026-11-20", "text": "x", "author_id": 1},
        {"text": "x"},
    ):
        response = api.post(f"/api/v1/contacts/{contact_id}/notes", json=bad)
        assert response.status_code == 400, (bad, response.text)
    listed = api.get(f"/api/v1/contacts/{contact_id}/notes").get_json()["items"]
    assert [n["text"] for n in listed] == ["Bezoek"]


def _message(n: int, sender: str, to: str = "verkoop@hub.example") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: Bestelling {n:02d}\r\nMessage-ID: <order-{n}@korenschoof.example>\r\n"
        f"Date: Mon, {1 + n % 27} Nov 2026 10:{n % 60:02d}:00 +0100\r\n\r\nBestelling nummer {n}\r\n"
    ).encode()


def test_the_contacts_emails_page_through_more_than_one_page_and_hide_a_colleagues_private_mail(
    app: Flask,
    db: Database,
    settings: Settings,
    make_user: Callable[..., User],
    login: Login,
    mail_account: Callable[..., MailAccount],
) -> None:
    anna, bert = make_user("Anna"), make_user("Bert")
    _relation_id, contact_id, _project_id = _contact(db, anna)
    shared = mail_account()  # a shared mailbox: all staff see its mail on the relation
    client = shared.client()
    for n in range(1, 31):
        client.append("INBOX", _message(n, "Joke Visser <joke@korenschoof.example>"))
    client.append("INBOX", _message(40, "iemand@elders.example"))  # not the contact's
    client.logout()
    berts = mail_account(owner_id=bert.id)  # personal, shares nothing
    private = berts.client()
    private.append(
        "INBOX",
        b"From: joke@korenschoof.example\r\nTo: bert@staff.example\r\nSubject: Persoonlijk voor Bert\r\n"
        b"Message-ID: <private-1@korenschoof.example>\r\nDate: Tue, 3 Nov 2026 09:00:00 +0100\r\n\r\nprive\r\n",
    )
    private.logout()
    sync_account(db, settings, shared)
    sync_account(db, settings, berts)

    login(app_client := app.test_client(), anna)
    first = app_client.get(f"/contacts/{contact_id}")
    subjects = re.findall(r"Bestelling \d\d", first.text)
    assert len(subjects) == 25
    next_link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert next_link is not None
    second = app_client.get(next_link.group(1).replace("&amp;", "&"))
    more = re.findall(r"Bestelling \d\d", second.text)
    assert len(more) == 5 and not set(more) & set(subjects)
    assert sorted(subjects + more) == [f"Bestelling {n:02d}" for n in range(1, 31)]
    for page in (first, second):
        assert "Persoonlijk voor Bert" not in page.text and "Bestelling 40" not in page.text
    # Bert finds his own private mail on the contact's page; Anna's search finds nothing.
    as_bert = login(app.test_client(), bert)
    assert "Persoonlijk voor Bert" in as_bert.get(f"/contacts/{contact_id}?q=persoonlijk").text
    assert "Persoonlijk voor Bert" not in app_client.get(f"/contacts/{contact_id}?q=persoonlijk").text


def test_the_contact_page_lists_the_appointments_he_is_invited_to(
    app: Flask, db: Database, make_user: Callable[..., User], login: Login, client: FlaskClient
) -> None:
    from datetime import datetime

    from hub.calendar.appointments import AppointmentInput, save_appointment

    anna = make_user("Anna")
    _relation_id, contact_id, project_id = _contact(db, anna)
    with db.transaction() as s:
        me = s.get_one(User, anna.id)
        for day in (1, 2):
            save_appointment(
                s,
                me,
                AppointmentInput(
                    title=f"Ovenbezoek {day}",
                    start=datetime(2026, 12, day, 10, 0),
                    end=datetime(2026, 12, day, 11, 0),
                    project_id=project_id,
                    contact_ids=[contact_id],
                ),
            )
        save_appointment(
            s,
            me,
            AppointmentInput(title="Zonder Joke", start=datetime(2026, 12, 3, 10, 0), end=datetime(2026, 12, 3, 11, 0)),
        )
    login(client, anna)
    page = client.get(f"/contacts/{contact_id}").text
    assert page.index("Ovenbezoek 2") < page.index("Ovenbezoek 1")  # newest first
    assert "Zonder Joke" not in page
