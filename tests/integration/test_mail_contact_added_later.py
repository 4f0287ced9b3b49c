"""A contact added later brings the mail that already arrived from its address onto its relation and
onto the relation's single open project, as if the contact had existed when the mail came."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from hub.config import Settings
from hub.crm.relations import ContactInput, save_contact
from hub.db import Database
from hub.models import EmailRelation, Relation, User
from tests.integration.test_mail_threads import a_project, mail, projects_of
from tests.mail_fixtures import MailAccount, sync_account


def test_a_contact_added_later_brings_earlier_mail_onto_the_relation_and_its_project(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount], make_user: Callable[..., User]
) -> None:
    relation_id, project_id = a_project(db, make_user())
    account = mail_account()
    client = account.client()
    # A free-mail address: nothing links it until it is a contact's address.
    client.append("INBOX", mail("first@t", "Vraag", sender="Piet <Piet.Bakker@gmail.com>"))
    client.logout()
    sync_account(db, settings, account)
    assert projects_of(db, "first@t") == []
    with db.transaction() as s:
        relation = s.get_one(Relation, relation_id)
        save_contact(s, relation, ContactInput(name="Piet Bakker", emails=["piet.bakker@gmail.com"]))
    with db.transaction() as s:
        assert s.scalar(select(EmailRelation.relation_id)) == relation_id
    assert projects_of(db, "first@t") == [(project_id, "single-open")]
