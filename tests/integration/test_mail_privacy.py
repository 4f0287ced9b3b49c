"""Private mail stays private: the attacks a colleague (or an outsider) can make, through the real
Dovecot sync, pages and API, on SQLite and PostgreSQL; and the sharing rules a mailbox owner sets.

(The import attack is in test_import_privacy.py, the port-scanner attack in test_mail_hosts.py.)
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.accounts.users import create_token
from hub.config import Settings
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Email, EmailProject, EmailRelation, Mailbox, User
from tests.mail_fixtures import MailAccount, sync_account

Login = Callable[[FlaskClient, User], FlaskClient]


def mail(
    msgid: str,
    subject: str,
    body: str,
    *,
    sender: str = "dokter@praktijk.example",
    to: str = "anna@staff.example",
    headers: str = "",
    received: str = "",
) -> bytes:
    trace = f"Received: from mx.{received} by imap.example; Mon, 2 Nov 2026 10:00:05 +0100\r\n" if received else ""
    return (
        f"{trace}From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n"
        f"Date: Mon, 2 Nov 2026 10:00:00 +0100\r\n{headers}\r\n{body}\r\n"
    ).encode()


def deliver(account: MailAccount, *messages: bytes, folder: str = "INBOX") -> None:
    client = account.client()
    for message in messages:
        client.append(folder, message)
    client.logout()


def api(app: Flask, database: Database, user: User) -> Callable[[str], tuple[int, dict]]:  # type: ignore[type-arg]
    with database.transaction() as s:
        headers = {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id))}

    def get(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
        response = app.test_client().get(url, headers=headers)
        return response.status_code, response.get_json() or {}

    return get


def email_id(database: Database, subject: str) -> int:
    with database.transaction() as s:
        return s.scalars(select(Email.id).where(Email.subject == subject)).one()


@pytest.fixture
def staff(make_user: Callable[..., User]) -> tuple[User, User]:
    return make_user("Anna"), make_user("Mallory")


@pytest.fixture
def make_user_in() -> Callable[..., User]:
    """A staff user in the given database (the ``any_db`` tests run on SQLite and PostgreSQL)."""
    from hub.accounts.users import UserInput, create_user
    from tests.conftest import PASSWORD

    def make(database: Database, name: str) -> User:
        with database.transaction() as s:
            return create_user(
                s, UserInput(email=f"{name.lower()}@staff.example", name=name, password=PASSWORD, language="en")
            )

    return make


@pytest.fixture
def app_for(settings: Settings) -> Callable[[Database], Flask]:
    from web import create_app

    return lambda database: create_app(settings, database=database, TESTING=True)


# --- attack 1: a message claiming someone's Message-ID -----------------------------------------------


def test_a_message_claiming_a_private_message_id_is_another_email(
    any_db: Database,
    settings: Settings,
    app_for: Callable[[Database], Flask],
    mail_account: Callable[..., MailAccount],
    make_user_in: Callable[..., User],
) -> None:
    anna, mallory = make_user_in(any_db, "Anna"), make_user_in(any_db, "Mallory")
    annas = mail_account(owner_id=anna.id, database=any_db)
    mallorys = mail_account(owner_id=mallory.id, database=any_db)
    shared = mail_account(database=any_db)
    deliver(annas, mail("uitslag-1@praktijk.example", "Uw uitslag", "Uw bloedwaarden zijn afwijkend."))
    sync_account(any_db, settings, annas)
    # Mallory copies only the Message-ID into his own mailbox, and an outsider mails it to the shared one.
    deliver(mallorys, mail("uitslag-1@praktijk.example", "Mallory's lokaas", "Niets", sender="m@evil.example"))
    deliver(shared, mail("uitslag-1@praktijk.example", "Outsider's lokaas", "Niets", sender="x@evil.example"))
    sync_account(any_db, settings, mallorys)
    sync_account(any_db, settings, shared)

    private = email_id(any_db, "Uw uitslag")
    # Each message is an e-mail of its own, stored in full: nothing silently vanished.
    assert {email_id(any_db, "Mallory's lokaas"), email_id(any_db, "Outsider's lokaas")}.isdisjoint({private})
    app = app_for(any_db)
    as_mallory = api(app, any_db, mallory)
    assert as_mallory(f"/api/v1/emails/{private}")[0] == 404
    found = as_mallory("/api/v1/emails?message_id=<uitslag-1@praktijk.example>")[1]["items"]
    assert sorted(e["subject"] for e in found) == ["Mallory's lokaas", "Outsider's lokaas"]
    assert "Uw bloedwaarden" not in str(found)
    # Anna still has her own message, whole.
    assert api(app, any_db, anna)(f"/api/v1/emails/{private}")[0] == 200


def test_the_same_message_delivered_to_two_mailboxes_is_one_email(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount], staff: tuple[User, User]
) -> None:
    anna, mallory = staff
    first, second = mail_account(owner_id=anna.id), mail_account(owner_id=mallory.id)
    original = mail("team-1@klant.example", "Offerte voor jullie beiden", "Zie bijlage.", to="a@s.example, m@s.example")
    deliver(first, b"Received: by mx1; Mon, 2 Nov 2026 10:00:01 +0100\r\n" + original)
    deliver(second, b"Received: by mx2; other trace\r\nDelivered-To: m@s.example\r\n" + original)
    sync_account(db, settings, first)
    packs = sorted((settings.documents_dir / "packs").iterdir())
    sync_account(db, settings, second)
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Email)) == 1
        # Each mailbox counts it as its own.
        assert list(s.scalars(select(Mailbox.messages_stored).order_by(Mailbox.id))) == [1, 1]
    # The second copy was recognised by its content before parsing: nothing parsed or packed again.
    assert sorted((settings.documents_dir / "packs").iterdir()) == packs


# --- attack 2 and 3: steering someone's mail onto your own relation ------------------------------------


def test_a_contact_or_domain_on_a_colleagues_relation_reveals_nothing_of_private_mail(
    any_db: Database,
    settings: Settings,
    app_for: Callable[[Database], Flask],
    mail_account: Callable[..., MailAccount],
    make_user_in: Callable[..., User],
) -> None:
    anna, mallory = make_user_in(any_db, "Anna"), make_user_in(any_db, "Mallory")
    annas = mail_account(owner_id=anna.id, database=any_db)  # the default: only me
    deliver(
        annas,
        mail("past-1@praktijk.example", "Vorige afspraak", "Eerdere uitslag"),
        mail("own-1@x.example", "Aan mezelf", "Notitie", sender=anna.email, to=anna.email),
    )
    sync_account(any_db, settings, annas)
    with any_db.transaction() as s:
        # Mallory's own relation: the correspondent's address, Anna's own address, and a domain.
        relation = save_relation(
            s, RelationInput(name="Mallory's vangnet", owner_id=mallory.id, domain="kliniek.example")
        )
        save_contact(s, relation, ContactInput(name="Dokter", emails=["dokter@praktijk.example"]))
        save_contact(s, relation, ContactInput(name="Anna?", emails=[anna.email]))
        relation_id = relation.id
    deliver(
        annas,
        mail("future-1@praktijk.example", "Nieuwe uitslag", "Nieuwe waarden"),
        mail("future-2@kliniek.example", "Kliniek", "Opname", sender="balie@kliniek.example"),
    )
    sync_account(any_db, settings, annas)
    as_mallory = api(app_for(any_db), any_db, mallory)
    assert as_mallory("/api/v1/emails")[1]["items"] == []
    for subject in ("Vorige afspraak", "Nieuwe uitslag", "Kliniek", "Aan mezelf"):
        assert as_mallory(f"/api/v1/emails/{email_id(any_db, subject)}")[0] == 404
    with any_db.transaction() as s:
        # Staff's own address never counts as a contact: Anna's note to herself is on no relation.
        own = email_id(any_db, "Aan mezelf")
        assert s.scalars(select(EmailRelation).where(EmailRelation.email_id == own)).all() == []
    assert relation_id  # the relation itself exists and is Mallory's


def test_shared_mail_reaches_colleagues_through_links_unless_private_or_never_shared(
    app: Flask,
    db: Database,
    settings: Settings,
    mail_account: Callable[..., MailAccount],
    staff: tuple[User, User],
    login: Login,
) -> None:
    anna, colleague = staff
    annas = mail_account(owner_id=anna.id, sharing="colleagues", never_share="bank.example\nvriend@home.example")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Klant BV", domain="klant.example"))
        project = save_project(s, s.get_one(User, anna.id), ProjectInput(relation_id=relation.id, name="Dak"))
        project_id = project.id
    deliver(
        annas,
        mail("k-1@klant.example", "Offerte dak", "Graag", sender="inkoop@klant.example"),
        mail("k-2@klant.example", "Persoonlijk", "Onder ons", sender="inkoop@klant.example"),
        mail("k-3@klant.example", "Via de bank", "Rekening", sender="inkoop@klant.example", to="x@bank.example"),
        mail("k-4@klant.example", "Via vriend", "Feest", sender="inkoop@klant.example", to="vriend@home.example"),
        mail("s-1@staff.example", "Onder collega's", "Lunch", sender=colleague.email, to=anna.email),
    )
    sync_account(db, settings, annas)
    mine = login(app.test_client(), anna)
    personal = email_id(db, "Persoonlijk")
    page = mine.get(f"/emails/{personal}")
    assert "Who can see this e-mail" in page.text and "Dak" in page.text
    from tests.conftest import csrf_token

    assert (
        mine.post(f"/emails/{personal}/private", data={"csrf_token": csrf_token(page.text), "private": "1"}).status_code
        == 302
    )
    assert "You marked this e-mail private" in mine.get(f"/emails/{personal}").text

    theirs = login(app.test_client(), colleague)
    tab = theirs.get(f"/projects/{project_id}/emails").text
    assert "Offerte dak" in tab
    for hidden in ("Persoonlijk", "Via de bank", "Via vriend", "Onder collega"):
        assert hidden not in tab
    assert theirs.get(f"/emails/{email_id(db, 'Offerte dak')}").status_code == 200
    for subject in ("Persoonlijk", "Via de bank", "Via vriend"):
        assert theirs.get(f"/emails/{email_id(db, subject)}").status_code == 404
    # Switching the mailbox to "only me" hides everything at once.
    with db.transaction() as s:
        from hub.models import Mailbox

        s.get_one(Mailbox, annas.mailbox_id).sharing = "only_me"
    assert "Offerte dak" not in theirs.get(f"/projects/{project_id}/emails").text
    assert theirs.get(f"/emails/{email_id(db, 'Offerte dak')}").status_code == 404
    with db.transaction() as s:
        # Mail among staff only was never put on a relation by matching.
        staff_only = email_id(db, "Onder collega's")
        assert s.scalars(select(EmailProject).where(EmailProject.email_id == staff_only)).all() == []


# --- attack 4: threads that reveal private messages --------------------------------------------------


def test_threads_count_and_steer_only_what_the_viewer_may_see(
    app: Flask,
    db: Database,
    settings: Settings,
    mail_account: Callable[..., MailAccount],
    staff: tuple[User, User],
    login: Login,
) -> None:
    anna, mallory = staff
    annas = mail_account(owner_id=anna.id)  # only me
    shared = mail_account()
    mallorys = mail_account(owner_id=mallory.id)
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Klant BV", domain="klant.example"))
        project = save_project(s, s.get_one(User, anna.id), ProjectInput(relation_id=relation.id, name="Geheim"))
        project_id = project.id
    deliver(annas, mail("p-1@klant.example", "Privé vraag", "Vertrouwelijk", sender="ceo@klant.example"))
    sync_account(db, settings, annas)
    # Mallory crafts a "reply" naming the private Message-ID, hoping to land on its project.
    deliver(
        mallorys,
        mail(
            "m-1@evil.example",
            "Re: gok",
            "?",
            sender="m@evil.example",
            headers="References: <elders-1@evil.example>\r\nIn-Reply-To: <p-1@klant.example>\r\n",
        ),
    )
    sync_account(db, settings, mallorys)
    with db.transaction() as s:
        crafted = email_id(db, "Re: gok")
        # The private message steers nothing (what a visible message in its thread does is visible).
        assert s.scalars(select(EmailProject).where(EmailProject.email_id == crafted)).all() == []
    # A visible reply in the shared mailbox quotes the private message.
    deliver(
        shared,
        mail(
            "r-1@klant.example",
            "Re: Privé vraag",
            "Antwoord",
            sender="ceo@klant.example",
            headers="In-Reply-To: <p-1@klant.example>\r\nReferences: <p-1@klant.example>\r\n",
        ),
    )
    sync_account(db, settings, shared)
    theirs = login(app.test_client(), mallory)
    reply = email_id(db, "Re: Privé vraag")
    page = theirs.get(f"/emails/{reply}").text
    assert ">Privé vraag</a>" not in page and "Vertrouwelijk" not in page  # no thread entry for the hidden one
    tab = theirs.get(f"/projects/{project_id}/emails").text
    assert "Re: Privé vraag" in tab and ">Privé vraag</a>" not in tab
    with db.transaction() as s:
        from hub.mail.read import thread_sizes

        emails = list(s.scalars(select(Email).where(Email.id == reply)))
        # The thread count covers only what the viewer may see: Anna 2, Mallory 1.
        assert list(thread_sizes(s, s.get_one(User, mallory.id), emails).values()) == [1]
        assert list(thread_sizes(s, s.get_one(User, anna.id), emails).values()) == [2]
