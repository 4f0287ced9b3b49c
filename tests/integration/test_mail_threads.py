"""A reply joins its thread's projects even when it names only the message it answers (In-Reply-To,
no References)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from hub.config import Settings
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import RelationInput, save_relation
from hub.db import Database
from hub.models import Email, EmailProject, User
from tests.mail_fixtures import MailAccount, sync_account


def mail(msgid: str, subject: str, sender: str = "someone@unknown.example", headers: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: staff@hub.example\r\nSubject: {subject}\r\nMessage-ID: <{msgid}>\r\n"
        f"Date: Mon, 2 Nov 2026 10:00:00 +0100\r\n{headers}\r\nbody\r\n"
    ).encode()


def projects_of(db: Database, msgid: str) -> list[tuple[int, str]]:
    with db.transaction() as s:
        rows = s.execute(
            select(EmailProject.project_id, EmailProject.how)
            .join(Email, Email.id == EmailProject.email_id)
            .where(Email.message_id == f"<{msgid}>")
        )
        return sorted((project_id, how) for project_id, how in rows)


def a_project(db: Database, user: User) -> tuple[int, int]:
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Bakker BV"))
        project = save_project(s, s.get_one(User, user.id), ProjectInput(relation_id=relation.id, name="Dak"))
        return relation.id, project.id


def test_a_reply_naming_only_its_parent_joins_the_thread_project(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount], make_user: Callable[..., User]
) -> None:
    _relation_id, project_id = a_project(db, make_user())
    account = mail_account()
    client = account.client()
    client.append("INBOX", mail("root@t", f"[P-{project_id}] Offerte"))
    sync_account(db, settings, account)
    client.append("INBOX", mail("mid@t", "Re: Offerte", headers="In-Reply-To: <root@t>\r\nReferences: <root@t>\r\n"))
    sync_account(db, settings, account)
    # Its client kept no References: only the message it answers, whose thread key is <root@t>.
    client.append("INBOX", mail("late@t", "Re: Re: Offerte", headers="In-Reply-To: <mid@t>\r\n"))
    sync_account(db, settings, account)
    client.logout()
    assert projects_of(db, "root@t") == [(project_id, "token")]
    assert projects_of(db, "mid@t") == [(project_id, "thread")]
    assert projects_of(db, "late@t") == [(project_id, "thread")]
