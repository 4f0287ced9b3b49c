"""Every route checks access: walks the app's URL map, so a new route cannot skip the rule.

An outsider (staff, not admin, not linked) gets 404 — never 403, never the data — for every route
that names a hidden project, relation or anything inside them, and for every admin page. Logged-out
visitors are sent to the login page (pages) or get 401 (API). A route whose URL argument this test
does not know makes the test fail: add the argument here with an object the outsider may not see.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.accounts.users import create_token, save_group
from hub.crm.activities import ActivityInput, save_activity
from hub.crm.choices import ChoiceInput, save_choice
from hub.crm.documents import add_document
from hub.crm.import_jobs import create_import_job
from hub.crm.projects import ProjectInput, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Relation, User
from hub.models.crm import relation_users
from tests.conftest import csrf_token

# Routes anyone may open without logging in.
# The phone systems' webhook authenticates by the PBX's signature, not a session or token.
PUBLIC = {
    "static",
    "auth.login",
    "api.openapi",
    "ops.healthz",
    "apidocs.asset",
    "apidocs.start",
    "api.telephony_events",
    # The private calendar feed: calendar apps cannot log in; the URL's secret is the key.
    "calendar.feed",
    # One-click unsubscribe (RFC 8058): mail providers post without a session; the signed token is the key.
    "campaigns.unsubscribe",
}
# Admin-only routes without a URL argument (besides every settings.* page): 404 for staff.
ADMIN_ONLY = {"api.create_choice", "api.put_labels"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SECRET_NAMES = ("Hidden Relation Zq", "Hidden Project Zq")


@dataclass
class World:
    admin: User
    insider: User
    outsider: User
    ids: dict[str, int]


@pytest.fixture
def world(db: Database, make_user: Callable[..., User], app: Flask) -> World:
    admin = make_user("Admin", admin=True)
    insider = make_user("Insider")
    outsider = make_user("Outsider")
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name=SECRET_NAMES[0]))
        s.execute(relation_users.insert().values(relation_id=relation.id, user_id=insider.id))
        contact = save_contact(s, relation, ContactInput(name="Hidden Contact", emails=["h@hidden.example"]))
        project = save_project(s, admin, ProjectInput(relation_id=relation.id, name=SECRET_NAMES[1]))
        set_linked(s, project, [insider.id], [])
        activity = save_activity(s, insider, project, ActivityInput(title="Hidden to-do", assigned_user_id=insider.id))
        blobs = app.extensions["hub.blobs"]
        document = add_document(s, blobs, insider, project, "secret.txt", io.BytesIO(b"secret"), None, 1000)
        job = create_import_job(s, blobs, insider, "c.csv", io.BytesIO(b"relation,contact_name\nA,B\n"), 1000)
        choice = save_choice(s, ChoiceInput(field="status", name="Open"))
        group = save_group(s, "Hidden group", [insider.id])
        mailbox, email_id, attachment_id, quarantine_id = _hidden_mail(s, blobs, insider.id, project.id)
        ids = {
            "project_id": project.id,
            "relation_id": relation.id,
            "contact_id": contact.id,
            "activity_id": activity.id,
            "document_id": document.id,
            "job_id": job.id,
            "choice_id": choice.id,
            "group_id": group.id,
            "user_id": insider.id,
            "email_id": email_id,
            "attachment_id": attachment_id,
            "mailbox_id": mailbox,
            "quarantine_id": quarantine_id,
            "index": 0,
            "note_id": _hidden_note(s, contact.id, insider.id),
            **_hidden_integrations(s, admin, insider, relation.id, contact.id, project.id),
            "appointment_id": _hidden_appointment(s, insider, project.id),
            # Campaigns, mailings and target groups are marketing's, open to all staff: only a missing
            # one can answer an outsider 404 (what they reveal of contacts is checked in their tests).
            "campaign_id": 999_999,
            "mailing_id": 999_999,
            "target_group_id": 999_999,
            # Tags are not secret (every member of staff sees the list); this one is on the hidden
            # relation and contact, and its settings pages are for admins.
            "tag_id": _hidden_tag(s, relation, contact),
        }
    return World(admin, insider, outsider, ids)


def _hidden_mail(s: Any, blobs: Any, owner_id: int, project_id: int) -> tuple[int, int, int, int]:
    """An e-mail in the insider's personal mailbox, linked to the hidden project, with an attachment
    (a forwarded message); and a quarantined message of that mailbox."""
    from hub.mail.mailboxes import MailboxInput, save_mailbox
    from hub.mail.packs import PackWriter, packs_dir
    from hub.models import Attachment, Email, EmailLocation, EmailProject, MailboxEmail, MailFolder, MailQuarantine

    box = save_mailbox(
        s,
        "test-secret-key-0123456789",
        MailboxInput(
            host="imap.example", port=993, security="ssl", username="insider", password="pw", owner_id=owner_id
        ),
    )
    folder = MailFolder(mailbox_id=box.id, name="INBOX")
    pack = PackWriter(packs_dir(blobs))
    raw_slot = pack.add(b"Subject: Hidden Project Zq offer\r\n\r\nsecret", compress=True)
    attachment_slot = pack.add(b"Subject: forwarded secret\r\n\r\nattached secret", compress=False)
    pack.close()
    (raw_offset, raw_length), (attachment_offset, attachment_size) = (
        pack.location(raw_slot),
        pack.location(attachment_slot),
    )
    email = Email(
        message_key="<hidden@test>",
        subject="Hidden Project Zq offer",
        raw_sha256="0" * 64,
        raw_pack=pack.name,
        raw_offset=raw_offset,
        raw_length=raw_length,
        text_body="secret",
    )
    s.add_all([folder, email])
    s.flush()
    attachment = Attachment(
        email_id=email.id,
        filename="a.eml",
        content_type="message/rfc822",
        size=attachment_size,
        sha256="1" * 64,
        pack=pack.name,
        offset=attachment_offset,
    )
    s.add_all(
        [
            attachment,
            EmailLocation(email_id=email.id, folder_id=folder.id, uid=1),
            MailboxEmail(mailbox_id=box.id, email_id=email.id),
            EmailProject(email_id=email.id, project_id=project_id, how="manual"),
        ]
    )
    quarantined = MailQuarantine(
        folder_id=folder.id,
        uid=2,
        reason="unreadable",
        raw_pack=pack.name,
        raw_offset=raw_offset,
        raw_length=raw_length,
    )
    s.add(quarantined)
    s.flush()
    return box.id, email.id, attachment.id, quarantined.id


def _hidden_note(s: Any, contact_id: int, author_id: int) -> int:
    """A visit report on the hidden contact."""
    from datetime import date

    from hub.models import ContactNote

    note = ContactNote(contact_id=contact_id, author_id=author_id, date=date(2026, 11, 2), text="Hidden visit")
    s.add(note)
    s.flush()
    return note.id


def _hidden_tag(s: Any, relation: Any, contact: Any) -> int:
    """A tag on the hidden relation and its contact."""
    from hub.crm.tags import tag_contact, tag_relation

    tag_contact(s, contact, "Trade fair")
    return tag_relation(s, relation, "Trade fair")[0].id


def _hidden_appointment(s: Any, insider: User, project_id: int) -> int:
    """An appointment on the hidden project."""
    from datetime import datetime

    from hub.calendar.appointments import AppointmentInput, save_appointment

    data = AppointmentInput(
        title="Hidden visit", start=datetime(2026, 12, 1, 10), end=datetime(2026, 12, 1, 11), project_id=project_id
    )
    return save_appointment(s, s.get_one(User, insider.id), data).id


def _hidden_integrations(
    s: Any, admin: User, insider: User, relation_id: int, contact_id: int, project_id: int
) -> dict[str, int]:
    """The insider's API token, a webhook subscription (admins only), a phone system (admins only)
    and a call with the hidden contact on the hidden project."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from hub.accounts.users import create_token
    from hub.models import ApiToken, Call
    from hub.telephony.sources import SourceInput, save_source
    from hub.webhooks.subscriptions import SubscriptionInput, create_subscription

    create_token(s, s.get_one(User, insider.id), "insider's")
    token_id = s.scalars(select(ApiToken.id).where(ApiToken.user_id == insider.id)).first()
    subscription, _secret = create_subscription(
        s,
        SubscriptionInput(url="https://hooks.example.com/x", events=["project.created"]),
        by=s.get_one(User, admin.id),
        secret_key="test-secret-key-0123456789",
        allowed_hosts="",
    )
    source = save_source(s, "test-secret-key-0123456789", SourceInput(name="pbx", format="asterisk-csv"))
    call = Call(
        source_id=source.id,
        call_key="hidden-1",
        direction="inbound",
        number="0201234567",
        e164="+31201234567",
        started_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        outcome="answered",
        contact_id=contact_id,
        relation_id=relation_id,
        project_id=project_id,
    )
    s.add(call)
    s.flush()
    assert token_id is not None
    return {"token_id": token_id, "subscription_id": subscription.id, "source_id": source.id, "call_id": call.id}


def _routes(app: Flask) -> list[tuple[str, str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, rule.rule, method))
    return routes


def _url(rule: str, arguments: list[str], ids: dict[str, int]) -> str:
    url = rule
    for name in arguments:
        assert name in ids, f"route {rule} has argument <{name}> this test does not know: add it to World"
        url = url.replace(f"<int:{name}>", str(ids[name])).replace(f"<{name}>", str(ids[name]))
    return url


def _api_headers(db: Database, user: User) -> dict[str, str]:
    with db.transaction() as s:
        return {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id))}


def test_outsider_gets_404_on_every_route_with_a_hidden_object(
    app: Flask, client: FlaskClient, db: Database, world: World, login: Callable[[FlaskClient, User], FlaskClient]
) -> None:
    login(client, world.outsider)
    token = csrf_token(client.get("/profile").text)
    headers = _api_headers(db, world.outsider)
    checked = 0
    for endpoint, rule, method in _routes(app):
        if endpoint == "auth.logout":
            continue  # would end the outsider's session mid-walk; logging out concerns no object
        arguments = sorted(r.arguments for r in app.url_map.iter_rules() if r.rule == rule)[0]
        url = _url(rule, sorted(arguments), world.ids)
        is_api = rule.startswith("/api/")
        kwargs: dict[str, object] = {"headers": headers} if is_api else {}
        if method in WRITE_METHODS:
            if is_api:
                kwargs["json"] = {}
            else:
                kwargs["data"] = {"csrf_token": token}
        response = client.open(url, method=method, **kwargs)  # type: ignore[arg-type]
        admin_only = (
            endpoint.startswith("settings.")
            or rule.startswith("/settings/")
            or (endpoint in ADMIN_ONLY and method in WRITE_METHODS)
        )
        if arguments or admin_only:
            assert response.status_code == 404, f"{method} {url} ({endpoint}) gave {response.status_code}, not 404"
        else:
            assert response.status_code in {200, 302, 400, 405}, f"{method} {url} gave {response.status_code}"
        body = response.get_data(as_text=True)
        for secret in SECRET_NAMES:
            assert secret not in body, f"{method} {url} shows {secret!r} to a user who may not see it"
        checked += 1
    assert checked > 40  # the walk really covered the app


def test_logged_out_visitors_are_sent_to_login(app: Flask, client: FlaskClient, world: World) -> None:
    for _endpoint, rule, method in _routes(app):
        arguments = next(r for r in app.url_map.iter_rules() if r.rule == rule).arguments
        url = _url(rule, sorted(arguments), world.ids)
        response = client.open(url, method=method)
        if rule.startswith("/api/"):
            assert response.status_code == 401, f"{method} {url} gave {response.status_code}"
        elif method == "GET":
            assert response.status_code == 302 and "/login" in response.headers["Location"], f"GET {url}"
        else:
            # A POST without a session has no CSRF token either: refused before anything runs.
            assert response.status_code in {302, 400}, f"{method} {url} gave {response.status_code}"


def test_insider_and_admin_see_the_hidden_project(
    app: Flask, db: Database, world: World, login: Callable[[FlaskClient, User], FlaskClient]
) -> None:
    for user in (world.insider, world.admin):
        client = login(app.test_client(), user)
        response = client.get(f"/projects/{world.ids['project_id']}")
        assert response.status_code == 200 and SECRET_NAMES[1] in response.text
        api = app.test_client().get(f"/api/v1/projects/{world.ids['project_id']}", headers=_api_headers(db, user))
        assert api.status_code == 200 and api.get_json()["name"] == SECRET_NAMES[1]


def test_relation_rule_applies_to_relation_pages(
    app: Flask, client: FlaskClient, world: World, login: Callable[[FlaskClient, User], FlaskClient], db: Database
) -> None:
    login(client, world.outsider)
    assert client.get(f"/relations/{world.ids['relation_id']}").status_code == 404
    with db.transaction() as s:
        assert s.get_one(Relation, world.ids["relation_id"]).name == SECRET_NAMES[0]
