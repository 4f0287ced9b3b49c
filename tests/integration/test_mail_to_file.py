"""Mail that matched nothing has a place ("Mail → To file"): only what the reader may see, linked by
search (a hidden id answers like a missing one), "new contact from sender" bringing the sender's
earlier mail; the single-open-project rule says why it linked, one click undoes it for good, an
admin switches it off (mail and calls); a project's one-off contact is matched too. Real Dovecot,
real sync, SQLite and PostgreSQL where the queries matter."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.accounts.users import UserInput, create_user
from hub.config import Settings
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.models import Call, Contact, Email, EmailProject, EmailRelation, Relation, User
from tests.conftest import PASSWORD, csrf_token
from tests.mail_fixtures import MailAccount, sync_account


def _user(database: Database, name: str, *, admin: bool = False) -> User:
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


def _mail(msgid: str, subject: str, sender: str, to: str = "verkoop@hub.example", date: str = "2 Nov 2026") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n"
        f"Date: Mon, {date} 10:00:00 +0100\r\n\r\nTekst van {subject}\r\n"
    ).encode()


def _deliver(account: MailAccount, *messages: bytes) -> None:
    client = account.client()
    for message in messages:
        client.append("INBOX", message)
    client.logout()


def _email_id(database: Database, subject: str) -> int:
    with database.transaction() as s:
        return s.scalars(select(Email.id).where(Email.subject == subject)).one()


def _projects_of(database: Database, subject: str) -> list[tuple[int, str]]:
    with database.transaction() as s:
        rows = s.execute(
            select(EmailProject.project_id, EmailProject.how)
            .join(Email, Email.id == EmailProject.email_id)
            .where(Email.subject == subject)
        )
        return sorted((p, h) for p, h in rows.tuples())


def _relations_of(database: Database, subject: str) -> list[int]:
    with database.transaction() as s:
        return sorted(
            s.scalars(
                select(EmailRelation.relation_id)
                .join(Email, Email.id == EmailRelation.email_id)
                .where(Email.subject == subject)
            )
        )


def _subjects(html: str) -> list[str]:
    return re.findall(r"<strong>([^<]*(?:Vraag|Offerte|Prive|Intern)[^<]*)</strong>", html)


def test_to_file_lists_only_my_and_shared_unmatched_mail_and_pages_through_it(
    any_db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    anna, bert = _user(any_db, "Anna"), _user(any_db, "Bert")
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bekende Klant BV"))
        save_contact(s, relation, ContactInput(name="Klaas", emails=["klaas@bekend.example"]))
    shared = mail_account(database=any_db)
    annas = mail_account(owner_id=anna.id, database=any_db)
    berts = mail_account(owner_id=bert.id, database=any_db, sharing="colleagues")
    _deliver(shared, *(_mail(f"q{n}@x", f"Vraag {n:02d}", f"klant{n}@onbekend.example") for n in range(1, 31)))
    _deliver(shared, _mail("known@x", "Offerte bekend", "klaas@bekend.example"))  # matched: not to file
    _deliver(annas, _mail("a1@x", "Vraag van Annas klant", "iemand@ergens.example", to="anna@staff.example"))
    _deliver(annas, _mail("a2@x", "Intern overleg", "bert@staff.example", to="anna@staff.example"))  # staff only
    _deliver(berts, _mail("b1@x", "Prive voor Bert", "vriend@ergens.example", to="bert@staff.example"))
    for account in (shared, annas, berts):
        sync_account(any_db, settings, account)

    as_anna = _login(app, anna)
    first = as_anna.get("/mail/to-file")
    assert first.status_code == 200
    seen = _subjects(first.text)
    assert len(seen) == 25
    next_link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert next_link is not None
    rest = _subjects(as_anna.get(next_link.group(1).replace("&amp;", "&")).text)
    everything = seen + rest
    assert sorted(everything) == sorted([f"Vraag {n:02d}" for n in range(1, 31)] + ["Vraag van Annas klant"])
    # A colleague's personal mail never shows, even from a mailbox that shares with colleagues.
    assert "Prive voor Bert" not in first.text + str(rest)
    # Bert sees his own and the shared mail, not Anna's.
    as_bert = _login(app, bert)
    berts_list = as_bert.get("/mail/to-file?q=prive").text
    assert "Prive voor Bert" in berts_list
    assert "Vraag van Annas klant" not in as_bert.get("/mail/to-file?q=annas").text


def test_linking_by_search_offers_and_accepts_only_what_the_user_may_see(
    any_db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    anna, owner = _user(any_db, "Anna"), _user(any_db, "Owner")
    with any_db.transaction() as s:
        hidden = save_relation(s, RelationInput(name="Geheime Bouw BV", owner_id=owner.id))
        hidden_project = save_project(
            s, s.get_one(User, owner.id), ProjectInput(relation_id=hidden.id, name="Geheim dak")
        )
        set_relation_linked(s, hidden, [owner.id], [])
        visible = save_relation(s, RelationInput(name="Open Bouw BV"))
        visible_project = save_project(
            s, s.get_one(User, anna.id), ProjectInput(relation_id=visible.id, name="Open dak")
        )
        ids = (hidden.id, hidden_project.id, visible.id, visible_project.id)
    hidden_id, hidden_project_id, visible_id, visible_project_id = ids
    shared = mail_account(database=any_db)
    _deliver(shared, _mail("v1@x", "Vraag over bouw", "nieuw@onbekend.example"))
    _deliver(shared, _mail("v2@x", "Vraag over dak", "ander@onbekend.example"))
    sync_account(any_db, settings, shared)
    first, second = _email_id(any_db, "Vraag over bouw"), _email_id(any_db, "Vraag over dak")

    as_anna = _login(app, anna)
    found = as_anna.get("/mail/to-file/lookup?q=bouw").get_json()
    # Projects match by their relation's name too; nothing hidden comes back.
    assert [(r["kind"], r["name"]) for r in found] == [("relation", "Open Bouw BV"), ("project", "Open dak")]
    assert [r["name"] for r in as_anna.get("/mail/to-file/lookup?q=dak").get_json()] == ["Open dak"]
    picker = as_anna.get(f"/mail/to-file/{first}?q=bouw")
    assert "Open Bouw BV" in picker.text and "Geheime" not in picker.text
    token = csrf_token(picker.text)

    missing = as_anna.post(f"/mail/to-file/{first}/link", data={"csrf_token": token, "relation_id": "999999"})
    assert missing.status_code == 404
    for field, value in (
        ("relation_id", str(hidden_id)),
        ("project_id", str(hidden_project_id)),
        ("relation_id", "99999999999999999999"),
        ("project_id", "9999999999"),
        ("relation_id", "abc"),
        ("project_id", "-1"),
    ):
        refused = as_anna.post(f"/mail/to-file/{first}/link", data={"csrf_token": token, field: value})
        assert refused.status_code == 404 and _same(refused.text, missing.text), (field, value)
    assert _relations_of(any_db, "Vraag over bouw") == []

    linked = as_anna.post(
        f"/mail/to-file/{first}/link",
        data={"csrf_token": token, "relation_id": str(visible_id), "next": "/mail/to-file"},
    )
    assert linked.status_code == 302 and linked.headers["Location"].endswith("/mail/to-file")
    assert _relations_of(any_db, "Vraag over bouw") == [visible_id]
    as_anna.post(f"/mail/to-file/{second}/link", data={"csrf_token": token, "project_id": str(visible_project_id)})
    assert _projects_of(any_db, "Vraag over dak") == [(visible_project_id, "manual")]
    assert _relations_of(any_db, "Vraag over dak") == [visible_id]
    # Filed mail leaves the list; the relation's E-mails tab has it.
    listing = as_anna.get("/mail/to-file").text
    assert "Vraag over bouw" not in listing and "Vraag over dak" not in listing
    assert "Vraag over bouw" in as_anna.get(f"/relations/{visible_id}/emails").text
    # The e-mail page offers the search picker, never a box for a project number.
    page = as_anna.get(f"/emails/{first}").text
    assert f"/mail/to-file/{first}" in page and 'name="project_id" placeholder' not in page


def test_new_contact_from_sender_links_the_senders_earlier_mail(
    app: Flask,
    db: Database,
    settings: Settings,
    mail_account: Callable[..., MailAccount],
    make_user: Callable[..., User],
) -> None:
    anna = make_user("Anna")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakker BV"))
        project = save_project(s, s.get_one(User, anna.id), ProjectInput(relation_id=relation.id, name="Dak"))
        relation_id, project_id = relation.id, project.id
    shared = mail_account()
    _deliver(
        shared,
        _mail("p1@x", "Vraag een", '"Piet Bakker" <Piet.Bakker@gmail.com>'),
        _mail("p2@x", "Vraag twee", "piet.bakker@gmail.com", date="3 Nov 2026"),
    )
    sync_account(db, settings, shared)
    first = _email_id(db, "Vraag een")
    client = _login(app, anna)
    assert "Vraag een" in client.get("/mail/to-file").text
    picker = client.get(f"/mail/to-file/{first}?q=bakker").text
    assert "piet.bakker@gmail.com" in picker.lower() and "New contact here" in picker
    form = client.get(f"/mail/to-file/{first}/contact?relation_id={relation_id}&next=/mail/to-file")
    assert form.status_code == 200
    assert 'value="Piet Bakker"' in form.text and "piet.bakker@gmail.com</textarea>" in form.text.lower()

    # A mistake comes back with the reason, and what was typed stays.
    bad = client.post(
        f"/mail/to-file/{first}/contact?relation_id={relation_id}",
        data={"csrf_token": csrf_token(form.text), "name": "Piet Bakker", "emails": "niet-een-adres"},
    )
    assert bad.status_code == 400 and "niet-een-adres is not a valid e-mail address." in bad.text
    saved = client.post(
        f"/mail/to-file/{first}/contact?relation_id={relation_id}",
        data={
            "csrf_token": csrf_token(form.text),
            "name": "Piet Bakker",
            "emails": "Piet.Bakker@gmail.com",
            "next": "/mail/to-file",
        },
    )
    assert saved.status_code == 302
    with db.transaction() as s:
        assert s.scalars(select(Contact.name).where(Contact.relation_id == relation_id)).all() == ["Piet Bakker"]
    for subject in ("Vraag een", "Vraag twee"):
        assert _relations_of(db, subject) == [relation_id]
        assert _projects_of(db, subject) == [(project_id, "single-open")]
    assert "Vraag een" not in client.get("/mail/to-file").text
    # A hidden or missing relation for the new contact answers 404.
    assert client.get(f"/mail/to-file/{first}/contact?relation_id=999999").status_code == 404
    assert client.get(f"/mail/to-file/{first}/contact?relation_id=99999999999").status_code == 404


def test_the_email_says_why_it_linked_one_click_undoes_it_and_a_resync_does_not_put_it_back(
    any_db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    anna = _user(any_db, "Anna")
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakker BV"))
        contact = save_contact(s, relation, ContactInput(name="Piet", emails=["piet@bakker.example"]))
        project = save_project(s, s.get_one(User, anna.id), ProjectInput(relation_id=relation.id, name="Dak"))
        relation_id, contact_id, project_id = relation.id, contact.id, project.id
    shared = mail_account(database=any_db)
    _deliver(shared, _mail("s1@x", "Vraag over de planning", "piet@bakker.example"))
    sync_account(any_db, settings, shared)
    assert _projects_of(any_db, "Vraag over de planning") == [(project_id, "single-open")]
    email_id = _email_id(any_db, "Vraag over de planning")

    client = _login(app, anna)
    page = client.get(f"/emails/{email_id}").text
    assert "Linked to this project because it is the relation&#39;s only open project." in page
    undo_url = f"/emails/{email_id}/projects/{project_id}/undo"
    assert undo_url in page
    assert client.post(undo_url).status_code == 400  # no CSRF token: refused
    undone = client.post(undo_url, data={"csrf_token": csrf_token(page)}, follow_redirects=True)
    assert "will not be put back there" in undone.text
    assert "only open project" not in undone.text
    assert _projects_of(any_db, "Vraag over de planning") == []
    assert _relations_of(any_db, "Vraag over de planning") == [relation_id]  # still on the relation

    # Sync again, save the contact again (which re-links its mail), copy the message again: it stays off.
    _deliver(shared, _mail("s1@x", "Vraag over de planning", "piet@bakker.example"))
    sync_account(any_db, settings, shared)
    with any_db.transaction() as s:
        save_contact(
            s,
            s.get_one(Relation, relation_id),
            ContactInput(name="Piet", emails=["piet@bakker.example", "p@bakker.example"]),
            s.get_one(Contact, contact_id),
        )
    assert _projects_of(any_db, "Vraag over de planning") == []
    # Undoing again is a 404 (nothing a rule did is left); new mail still follows the rule.
    assert client.post(undo_url, data={"csrf_token": csrf_token(page)}).status_code == 404
    _deliver(shared, _mail("s2@x", "Nieuwe vraag", "piet@bakker.example"))
    sync_account(any_db, settings, shared)
    assert _projects_of(any_db, "Nieuwe vraag") == [(project_id, "single-open")]


def test_an_admin_switches_the_single_open_project_rule_off_for_mail_and_calls(
    any_db: Database, settings: Settings, mail_account: Callable[..., MailAccount], tmp_path: Path
) -> None:
    from hub.telephony.ingest import import_path
    from hub.telephony.sources import SourceInput, save_source
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    admin, anna = _user(any_db, "Admin", admin=True), _user(any_db, "Anna")
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakker BV"))
        save_contact(s, relation, ContactInput(name="Piet", emails=["piet@bakker.example"], phones=["+31302311234"]))
        save_project(s, s.get_one(User, admin.id), ProjectInput(relation_id=relation.id, name="Dak"))
        source_id = save_source(s, settings.secret_key, SourceInput(name="pbx", format="generic-csv")).id

    # Only an admin reaches the switch.
    assert _login(app, anna).get("/settings/matching").status_code == 404
    as_admin = _login(app, admin)
    page = as_admin.get("/settings/matching")
    assert 'name="single_open" value="1" checked' in page.text
    off = as_admin.post("/settings/matching", data={"csrf_token": csrf_token(page.text), "single_open": "0"})
    assert off.status_code == 302
    assert 'name="single_open" value="1" checked' not in as_admin.get("/settings/matching").text

    shared = mail_account(database=any_db)
    _deliver(shared, _mail("o1@x", "Vraag zonder project", "piet@bakker.example"))
    sync_account(any_db, settings, shared)
    assert _projects_of(any_db, "Vraag zonder project") == []
    assert len(_relations_of(any_db, "Vraag zonder project")) == 1  # still on the relation

    calls = tmp_path / "calls.csv"
    calls.write_text(
        "call_id,direction,from,to,start,answer,end,duration,billsec,outcome,extension\n"
        "c-1,inbound,+31 30 231 1234,100,2026-11-02T10:00:00+01:00,2026-11-02T10:00:05+01:00,"
        "2026-11-02T10:02:00+01:00,120,115,answered,100\n"
    )
    result = import_path(any_db, source_id, calls)
    assert result.imported == 1, result.summary()
    with any_db.transaction() as s:
        call = s.scalars(select(Call)).one()
        assert call.relation_id is not None and call.project_id is None

    # Switched on again, new mail follows the rule again.
    page = as_admin.get("/settings/matching")
    as_admin.post("/settings/matching", data={"csrf_token": csrf_token(page.text), "single_open": ["0", "1"]})
    _deliver(shared, _mail("o2@x", "Vraag met project", "piet@bakker.example"))
    sync_account(any_db, settings, shared)
    assert [how for _p, how in _projects_of(any_db, "Vraag met project")] == ["single-open"]


def test_a_projects_one_off_contact_is_matched(
    any_db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    anna = _user(any_db, "Anna")
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Gemeente Utrecht"))
        me = s.get_one(User, anna.id)
        # Two open projects: the single-open-project rule cannot pick; the one-off contact does.
        save_project(s, me, ProjectInput(relation_id=relation.id, name="Stadhuis"))
        project = save_project(
            s,
            me,
            ProjectInput(
                relation_id=relation.id,
                name="Bibliotheek",
                one_off_contact_name="P. Jansen",
                one_off_contact_email="P.Jansen@Gmail.com",
            ),
        )
        relation_id, project_id = relation.id, project.id
    shared = mail_account(database=any_db)
    _deliver(
        shared,
        _mail("j1@x", "Vraag over de bibliotheek", "p.jansen@gmail.com"),
        _mail("j2@x", "Vraag van een ander", "iemand@gmail.com"),
    )
    sync_account(any_db, settings, shared)
    assert _projects_of(any_db, "Vraag over de bibliotheek") == [(project_id, "one-off")]
    assert _relations_of(any_db, "Vraag over de bibliotheek") == [relation_id]
    assert _projects_of(any_db, "Vraag van een ander") == []
    page = _login(app, anna).get(f"/emails/{_email_id(any_db, 'Vraag over de bibliotheek')}").text
    assert "one-off contact" in page and f"/projects/{project_id}/undo" in page


def test_the_project_page_shows_its_token_with_a_copy_button(
    app: Flask, db: Database, make_user: Callable[..., User]
) -> None:
    anna = make_user("Anna")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakker BV"))
        project_id = save_project(s, s.get_one(User, anna.id), ProjectInput(relation_id=relation.id, name="Dak")).id
    page = _login(app, anna).get(f"/projects/{project_id}").text
    assert f'<code id="project-token">[P-{project_id}]</code>' in page
    assert 'data-copy="project-token"' in page and "/static/filing.js" in page
