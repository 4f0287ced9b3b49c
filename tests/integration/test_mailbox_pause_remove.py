"""Pausing and removing a mailbox, against a real Dovecot: a paused mailbox is neither synced (sweep,
task, "sync now") nor watched, and resuming goes on where it stopped; removing asks whether to keep its
mail. Kept mail stays visible to exactly the people who saw it before (the owner's private mail never
to others); deleted mail goes in batches, except what another mailbox also holds. SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

import hub.mail.watch as watch_module
from hub.accounts.users import UserInput, create_user
from hub.blobs import BlobStore
from hub.config import Settings
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.mail.mailboxes import due_mailboxes, finish_removal
from hub.mail.packs import packs_dir, remove_orphans
from hub.mail.privacy import email_visible
from hub.mail.read import raw_message
from hub.mail.sync import sync_mailbox
from hub.mail.watch import watch
from hub.models import Email, EmailLocation, Mailbox, MailboxEmail, MailFolder, User
from tests.conftest import PASSWORD, EnglishClient, csrf_token
from tests.integration.test_mail_sync import message
from tests.integration.test_mail_watch import Wakes, wait_until, watcher_states, watching
from tests.mail_fixtures import MailAccount, sync_account


@pytest.fixture
def site(any_db: Database, settings: Settings) -> Iterator[Flask]:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    yield app


def person(db: Database, name: str, *, admin: bool = False) -> User:
    with db.transaction() as s:
        return create_user(
            s,
            UserInput(
                email=f"{name.lower()}@staff.example", name=name, password=PASSWORD, is_admin=admin, language="en"
            ),
        )


def logged_in(app: Flask, user: User) -> FlaskClient:
    client = app.test_client()
    page = client.get("/login")
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 302
    return client


def deliver(account: MailAccount, *messages: bytes) -> None:
    client = account.client()
    for raw in messages:
        client.append("INBOX", raw)
    client.logout()


def post(client: FlaskClient, url: str, page: str, **data: str) -> Any:
    return client.post(url, data={"csrf_token": csrf_token(client.get(page).text), **data})


def subjects(db: Database, user: User) -> set[str]:
    with db.transaction() as s:
        viewer = s.get_one(User, user.id)
        return set(s.scalars(select(Email.subject).where(email_visible(viewer))))


def count(db: Database, model: Any, *where: Any) -> int:
    with db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_a_paused_mailbox_is_not_synced_and_resume_goes_on_where_it_stopped(
    site: Flask, any_db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> None:
    anna = person(any_db, "Anna")
    account = mail_account(owner_id=anna.id, database=any_db)
    deliver(account, *(message(subject=f"before {i}") for i in range(3)))
    assert sync_account(any_db, settings, account).new == 3
    browser = logged_in(site, anna)

    assert post(browser, f"/mail/mailboxes/{account.mailbox_id}/pause", "/mail/health").status_code == 302
    health = browser.get("/mail/health").text
    assert "Paused" in health and "No mail is fetched until it is resumed." in health and "Resume" in health
    deliver(account, *(message(subject=f"while paused {i}") for i in range(2)))
    # Neither the sweep, nor a task, nor "sync now" with force syncs it.
    with any_db.transaction() as s:
        assert account.mailbox_id not in due_mailboxes(s)
    blobs = BlobStore(settings.documents_dir)
    for force in (False, True):
        assert (
            sync_mailbox(
                any_db,
                blobs,
                account.mailbox_id,
                secret_key=settings.secret_key,
                allowed_hosts=settings.mail_allowed_hosts,
                force=force,
            )
            is None
        )
    assert count(any_db, MailboxEmail, MailboxEmail.mailbox_id == account.mailbox_id) == 3

    assert post(browser, f"/mail/mailboxes/{account.mailbox_id}/resume", "/mail/health").status_code == 302
    with any_db.transaction() as s:
        assert account.mailbox_id in due_mailboxes(s)  # due at once, also for the sweep
    result = sync_account(any_db, settings, account, force=False)
    assert result.new == 2  # only what came meanwhile: nothing fetched twice
    assert subjects(any_db, anna) == {f"before {i}" for i in range(3)} | {f"while paused {i}" for i in range(2)}
    assert "Paused" not in browser.get("/mail/health").text


def test_a_colleague_cannot_pause_or_remove_someone_elses_mailbox(
    site: Flask, any_db: Database, mail_account: Callable[..., MailAccount]
) -> None:
    anna, mallory = person(any_db, "Anna"), person(any_db, "Mallory")
    account = mail_account(owner_id=anna.id, database=any_db)
    browser = logged_in(site, mallory)
    for action in ("pause", "resume", "remove"):
        response = post(browser, f"/mail/mailboxes/{account.mailbox_id}/{action}", "/mail/health", mail="delete")
        assert response.status_code == 404, action
    assert browser.get(f"/mail/mailboxes/{account.mailbox_id}/remove").status_code == 404
    with any_db.transaction() as s:
        box = s.get_one(Mailbox, account.mailbox_id)
        assert box.active and box.removed_at is None


def test_the_watcher_lets_go_of_a_paused_mailbox(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Re-read the settings every second instead of every minute, and idle in short rounds.
    monkeypatch.setattr(watch_module, "RELOAD_SECONDS", 1)
    monkeypatch.setattr(watch_module, "IDLE_SECONDS", 1)
    paused, control = mail_account(), mail_account()
    wakes = Wakes()
    stop = threading.Event()
    thread = threading.Thread(
        target=watch,
        args=(db, settings.secret_key, wakes, stop),
        kwargs={"allowed_hosts": settings.mail_allowed_hosts},
        daemon=True,
    )
    thread.start()
    try:
        for box in (paused, control):
            assert wakes.wait_beyond(box.mailbox_id, 0, 15)
            assert wait_until(lambda box=box: watching(box.mailbox_id), 15)
        with db.transaction() as s:
            s.get_one(Mailbox, paused.mailbox_id).active = False
        assert wait_until(lambda: not watching(paused.mailbox_id), 20), watcher_states().get(paused.mailbox_id)
        assert "inactive" in watcher_states()[paused.mailbox_id].text
        seen_paused, seen_control = wakes.count(paused.mailbox_id), wakes.count(control.mailbox_id)
        deliver(paused, message(subject="to the paused one"))
        deliver(control, message(subject="to the control"))
        assert wakes.wait_beyond(control.mailbox_id, seen_control, 15)
        assert wakes.count(paused.mailbox_id) == seen_paused
    finally:
        stop.set()
        thread.join(watch_module.STOP_SECONDS + 2)


@pytest.fixture
def shared_and_private(
    any_db: Database, settings: Settings, mail_account: Callable[..., MailAccount]
) -> dict[str, Any]:
    """Anna's personal mailbox (shares with colleagues), a shared sales@ mailbox, and mail in both:
    a private message only Anna's holds, a message both hold, a shared-only message; all from a
    relation's contact so colleagues may see the shared ones through the relation."""
    anna, bob = person(any_db, "Anna"), person(any_db, "Bob")
    with any_db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakker BV"))
        save_contact(s, relation, ContactInput(name="Piet Bakker", emails=["piet@bakker.example"]))
    personal = mail_account(owner_id=anna.id, database=any_db, sharing="colleagues")
    shared = mail_account(database=any_db)
    sender = "Piet Bakker <piet@bakker.example>"
    deliver(personal, message(sender, "private: my health", msgid="<private@x>"))
    deliver(personal, message(sender, "in both", msgid="<both@x>"))
    deliver(shared, message(sender, "in both", msgid="<both@x>"))
    deliver(shared, message(sender, "shared only", msgid="<shared@x>"))
    sync_account(any_db, settings, personal)
    sync_account(any_db, settings, shared)
    # Many more than one removal batch in Anna's mailbox, synced later (a pack file of their own).
    deliver(personal, *(message(sender, f"bulk {i}", msgid=f"<bulk{i}@x>") for i in range(30)))
    sync_account(any_db, settings, personal)
    with any_db.transaction() as s:
        private_id = s.scalars(select(Email.id).where(Email.subject == "private: my health")).one()
        row = s.get_one(MailboxEmail, (personal.mailbox_id, private_id))
        row.private = True  # Anna's switch on that one e-mail
    return {"anna": anna, "bob": bob, "personal": personal, "shared": shared}


def test_removing_and_keeping_the_mail_changes_nobody_s_view(
    site: Flask, any_db: Database, shared_and_private: dict[str, Any]
) -> None:
    anna, bob, personal = shared_and_private["anna"], shared_and_private["bob"], shared_and_private["personal"]
    before_anna, before_bob = subjects(any_db, anna), subjects(any_db, bob)
    assert "private: my health" in before_anna and "private: my health" not in before_bob
    assert "bulk 7" in before_bob  # shared with colleagues through the relation

    browser = logged_in(site, anna)
    page = browser.get(f"/mail/mailboxes/{personal.mailbox_id}/remove")
    assert page.status_code == 200 and "Keep them" in page.text and "Delete them" in page.text
    # Not choosing is not removing.
    unchosen = post(browser, f"/mail/mailboxes/{personal.mailbox_id}/remove", "/mail/health")
    assert unchosen.status_code == 400 and "Choose whether to keep its e-mails." in unchosen.text
    done = post(browser, f"/mail/mailboxes/{personal.mailbox_id}/remove", "/mail/health", mail="keep")
    assert done.status_code == 302
    # Gone at once from the pages and the API; its password erased; never synced again.
    assert browser.get(f"/mail/mailboxes/{personal.mailbox_id}").status_code == 404
    assert personal.username not in browser.get("/mail/health").text
    with any_db.transaction() as s:
        box = s.get_one(Mailbox, personal.mailbox_id)
        assert box.password_encrypted == "" and not box.active and box.removal == "keep"
    assert finish_removal(any_db, personal.mailbox_id, batch=7) is False
    assert count(any_db, MailFolder, MailFolder.mailbox_id == personal.mailbox_id) == 0
    with any_db.transaction() as s:
        assert s.get_one(Mailbox, personal.mailbox_id).removal == "done"
        assert personal.mailbox_id not in due_mailboxes(s)
    # Everybody sees exactly what they saw before: Anna her private mail, Bob still not.
    assert subjects(any_db, anna) == before_anna
    assert subjects(any_db, bob) == before_bob


def test_removing_and_deleting_the_mail_in_batches(
    site: Flask, any_db: Database, settings: Settings, shared_and_private: dict[str, Any]
) -> None:
    anna, bob = shared_and_private["anna"], shared_and_private["bob"]
    personal, shared = shared_and_private["personal"], shared_and_private["shared"]
    emails_before = count(any_db, Email)
    browser = logged_in(site, anna)
    done = post(browser, f"/mail/mailboxes/{personal.mailbox_id}/remove", "/mail/health", mail="delete")
    assert done.status_code == 302
    with any_db.transaction() as s:
        assert personal.mailbox_id in due_mailboxes(s)  # the sweep finishes it if the task is lost
    # A run whose time is up says so (the task queues the next slice); nothing is half-done.
    assert finish_removal(any_db, personal.mailbox_id, batch=5, budget_seconds=0) is True
    # The sync task does the rest (it is what the page queued).
    result = sync_mailbox(
        any_db,
        BlobStore(settings.documents_dir),
        personal.mailbox_id,
        secret_key=settings.secret_key,
        allowed_hosts=settings.mail_allowed_hosts,
    )
    assert result is not None and not result.more
    with any_db.transaction() as s:
        assert s.get(Mailbox, personal.mailbox_id) is None
    assert count(any_db, MailboxEmail, MailboxEmail.mailbox_id == personal.mailbox_id) == 0
    # The 31 e-mails only Anna's mailbox held are gone; "in both" stays, as sales@ holds it.
    assert count(any_db, Email) == emails_before - 31
    assert subjects(any_db, anna) == subjects(any_db, bob) == {"in both", "shared only"}
    assert count(any_db, EmailLocation) == count(any_db, MailboxEmail, MailboxEmail.mailbox_id == shared.mailbox_id)
    # The orphan-pack sweep frees the pack only deleted mail pointed into; what stays is still readable
    # (the pack "in both" was first stored in stays, for it).
    blobs = BlobStore(settings.documents_dir)
    assert remove_orphans(any_db, packs_dir(blobs), older_than=0) == 1
    with any_db.transaction() as s:
        for email in s.scalars(select(Email)):
            assert f"Subject: {email.subject}".encode() in b"".join(raw_message(blobs, email))
