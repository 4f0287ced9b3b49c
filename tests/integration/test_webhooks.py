"""Outbound webhooks against a real HTTP receiver on 127.0.0.1 (allowed by the test settings'
HUB_MAIL_ALLOWED_HOSTS): signed deliveries, retries with backoff, the delivery log, the test-event
button, visibility (a hidden object is never told), the public-address rule, and a real Celery worker
on Redis carrying a change made in the web app to the receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.accounts.users import UserInput, create_token, create_user
from hub.config import Settings
from hub.crm.projects import ProjectInput, delete_project, save_project, set_linked
from hub.crm.relations import ContactInput, RelationInput, delete_contact, save_contact, save_relation
from hub.db import Database
from hub.errors import ValidationError
from hub.i18n import english
from hub.models import Project, Relation, User
from hub.models.webhooks import WebhookAttempt, WebhookDelivery
from hub.webhooks.delivery import send_due
from hub.webhooks.subscriptions import SubscriptionInput, create_subscription, send_test_event
from tests.conftest import csrf_token
from tests.worker_stack import WorkerStack, worker_on_redis

Login = Callable[[FlaskClient, User], FlaskClient]
KEY = "test-secret-key-0123456789"
ALLOWED = "127.0.0.1,localhost,::1"


@dataclass
class Received:
    headers: dict[str, str]
    body: str
    signature_ok: bool


@dataclass
class Receiver:
    """A webhook receiver as an integrator writes one: checks the signature itself, answers
    ``fail_first`` requests with 500, then 200."""

    url: str = ""
    secret: str = ""
    fail_first: int = 0
    received: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def check(self, header: str, body: str) -> bool:
        parts = dict(item.split("=", 1) for item in header.split(","))
        expected = hmac.new(self.secret.encode(), f"{parts['t']}.{body}".encode(), hashlib.sha256).hexdigest()
        return abs(time.time() - int(parts["t"])) < 300 and hmac.compare_digest(expected, parts["v1"])

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.received]

    def wait_for(self, count: int, timeout: float = 30) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, timeout), self.received


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            with state.arrived:
                answer = 500 if len(state.received) < state.fail_first else 200
                state.received.append(
                    Received(dict(self.headers), body, state.check(self.headers["X-Hub-Signature"], body))
                )
                state.arrived.notify_all()
            self.send_response(answer)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/hub?source=test"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _user(db: Database, name: str, *, admin: bool = False) -> User:
    with db.transaction() as s:
        return create_user(
            s, UserInput(email=f"{name.lower()}@staff.example", name=name, password="long enough pw", is_admin=admin)
        )


def _subscribe(db: Database, receiver: Receiver, owner: User, events: list[str]) -> int:
    with db.transaction() as s:
        subscription, secret = create_subscription(
            s,
            SubscriptionInput(url=receiver.url, events=events, owner_id=owner.id),
            by=owner,
            secret_key=KEY,
            allowed_hosts=ALLOWED,
        )
    receiver.secret = secret
    return subscription.id


def _send(db: Database, **kwargs: Any) -> int:
    return send_due(db, secret_key=KEY, allowed_hosts=ALLOWED, **kwargs)


def _attempts(db: Database, subscription_id: int) -> list[tuple[int, int | None, str]]:
    with db.transaction() as s:
        rows = s.execute(
            select(WebhookAttempt.number, WebhookAttempt.status_code, WebhookAttempt.error)
            .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(WebhookAttempt.id)
        )
        return [(number, code, english(error)) for number, code, error in rows]


def test_changes_reach_the_receiver_signed_once_each(any_db: Database, receiver: Receiver) -> None:
    db = any_db
    admin = _user(db, "Ada", admin=True)
    subscription_id = _subscribe(
        db, receiver, admin, ["relation.created", "relation.updated", "contact.created", "contact.deleted"]
    )
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Acme BV", city="Utrecht", emails=["info@acme.example"]))
        # Changed again in the same transaction: still one "created" event.
        save_relation(s, RelationInput(name="Acme B.V.", city="Utrecht"), relation)
    with db.transaction() as s:
        relation = s.get_one(Relation, relation.id)
        contact = save_contact(s, relation, ContactInput(name="Cor", emails=["cor@acme.example"]))
    with db.transaction() as s:
        save_relation(s, RelationInput(name="Acme", city="Utrecht"), s.get_one(Relation, relation.id))
    with db.transaction() as s:
        delete_contact(s, s.get_one(type(contact), contact.id))

    assert _send(db) == 4
    assert [r.signature_ok for r in receiver.received] == [True] * 4
    events = receiver.events()
    assert [e["type"] for e in events] == ["relation.created", "contact.created", "relation.updated", "contact.deleted"]
    assert events[0]["data"]["name"] == "Acme B.V." and events[0]["data"]["id"] == relation.id
    assert events[1]["data"] == {
        "id": contact.id,
        "relation_id": relation.id,
        "name": "Cor",
        "function": "",
        "emails": ["cor@acme.example"],
        "phones": [],
    }
    assert events[3]["data"]["name"] == "Cor"  # a deletion tells what was deleted
    first = receiver.received[0]
    assert first.headers["X-Hub-Event"] == "relation.created"
    assert first.headers["X-Hub-Delivery"] == events[0]["id"]
    assert first.headers["Content-Type"].startswith("application/json")
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", first.headers["X-Hub-Signature"])
    assert _send(db) == 0  # delivered ones are not sent again
    assert [(n, code, error) for n, code, error in _attempts(db, subscription_id)] == [(1, 200, "")] * 4


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(any_db: Database, receiver: Receiver) -> None:
    db = any_db
    admin = _user(db, "Ada", admin=True)
    subscription_id = _subscribe(db, receiver, admin, ["project.created"])
    receiver.fail_first = 2
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Retry BV"))
        save_project(s, admin, ProjectInput(relation_id=relation.id, name="Retry project"))
    delays = (0.4, 0.8)
    assert _send(db, delays=delays) == 1  # 500
    assert _send(db, delays=delays) == 0  # not due yet: the backoff holds it back
    with db.transaction() as s:
        delivery = s.scalars(select(WebhookDelivery)).one()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
        assert english(delivery.last_error) == "The receiver answered 500."
    time.sleep(0.45)
    assert _send(db, delays=delays) == 1  # 500 again; now it waits the second, longer delay
    time.sleep(0.45)
    assert _send(db, delays=delays) == 0
    time.sleep(0.4)
    assert _send(db, delays=delays) == 1  # 200
    assert _attempts(db, subscription_id) == [
        (1, 500, "The receiver answered 500."),
        (2, 500, "The receiver answered 500."),
        (3, 200, ""),
    ]
    with db.transaction() as s:
        delivery = s.scalars(select(WebhookDelivery)).one()
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("delivered", 3, None)
    # Every retry carries the same event (id, body) with a fresh signature.
    assert len({r.body for r in receiver.received}) == 1
    assert len({r.headers["X-Hub-Delivery"] for r in receiver.received}) == 1
    assert all(r.signature_ok for r in receiver.received)

    # A receiver that never answers 2xx: after the last retry the delivery is failed, and stays so.
    receiver.fail_first = 100
    with db.transaction() as s:
        save_project(s, admin, ProjectInput(relation_id=relation.id, name="Doomed"))
    for _ in range(4):
        _send(db, delays=(0, 0))
    with db.transaction() as s:
        doomed = s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id.desc())).first()
        assert doomed is not None and (doomed.status, doomed.attempts) == ("failed", 3)


def test_nothing_is_told_about_an_object_the_owner_may_not_see(any_db: Database, receiver: Receiver) -> None:
    db = any_db
    admin, sam, other = _user(db, "Ada", admin=True), _user(db, "Sam"), _user(db, "Olga")
    _subscribe(db, receiver, sam, ["project.created", "project.updated", "project.deleted", "relation.created"])
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Open BV"))
        hidden = save_project(s, admin, ProjectInput(relation_id=relation.id, name="Secret merger"))
        set_linked(s, hidden, [other.id], [])  # from now on only Olga (and admins) see it
        visible = save_project(s, admin, ProjectInput(relation_id=relation.id, name="Open project"))
        secret_relation = save_relation(s, RelationInput(name="Secret Relation BV", owner_id=other.id))
        from hub.crm.relations import set_relation_linked

        set_relation_linked(s, secret_relation, [other.id], [])
    with db.transaction() as s:
        save_project(
            s, admin, ProjectInput(relation_id=relation.id, name="Secret merger 2"), s.get_one(Project, hidden.id)
        )
    with db.transaction() as s:
        delete_project(s, s.get_one(Project, hidden.id))
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(WebhookDelivery)) == 2  # no row for the hidden ones
    _send(db)
    told = [(e["type"], e["data"]["name"]) for e in receiver.events()]
    assert sorted(told) == [("project.created", "Open project"), ("relation.created", "Open BV")]
    assert "Secret" not in "".join(r.body for r in receiver.received)
    assert visible.id in [e["data"]["id"] for e in receiver.events()]


def test_a_private_address_is_refused_unless_allowed(any_db: Database, receiver: Receiver) -> None:
    db = any_db
    admin = _user(db, "Ada", admin=True)
    with pytest.raises(ValidationError) as refused, db.transaction() as s:
        create_subscription(
            s,
            SubscriptionInput(url=receiver.url, events=["relation.created"]),
            by=admin,
            secret_key=KEY,
            allowed_hosts="",
        )
    assert "internal network" in refused.value.errors["url"] and "HUB_MAIL_ALLOWED_HOSTS" in refused.value.errors["url"]
    with pytest.raises(ValidationError) as metadata, db.transaction() as s:
        create_subscription(
            s,
            SubscriptionInput(url="http://169.254.169.254/latest/meta-data/", events=["relation.created"]),
            by=admin,
            secret_key=KEY,
            allowed_hosts=ALLOWED,
        )
    assert "internal network" in metadata.value.errors["url"]

    # Allowed when it was made, no longer allowed when sending: checked again at every attempt.
    subscription_id = _subscribe(db, receiver, admin, ["relation.created"])
    with db.transaction() as s:
        save_relation(s, RelationInput(name="Checked BV"))
    assert send_due(db, secret_key=KEY, allowed_hosts="") == 1
    ((number, code, error),) = _attempts(db, subscription_id)
    assert (number, code) == (1, None) and "internal network" in error
    assert receiver.received == []


def test_settings_pages_create_show_the_secret_once_test_and_log(
    app: Flask, db: Database, make_user: Callable[..., User], login: Login, receiver: Receiver, settings: Settings
) -> None:
    admin_user = make_user("Root", admin=True)
    admin = login(app.test_client(), admin_user)
    assert login(app.test_client(), make_user("Staff")).get("/settings/webhooks").status_code == 404
    assert 'href="/settings/webhooks"' in admin.get("/settings/").text

    form = admin.get("/settings/webhooks/new")
    assert "X-Hub-Signature: t=" in form.text  # the signature is documented where it is set up
    fields = {"url": receiver.url, "events": ["relation.created", "email.linked"], "owner_id": str(admin_user.id)}
    assert admin.post("/settings/webhooks/new", data={**fields, "active": "y"}).status_code == 400  # no CSRF token
    refused = admin.post(
        "/settings/webhooks/new",
        data={**fields, "url": "http://10.1.2.3/hook", "active": "y", "csrf_token": csrf_token(form.text)},
    )
    assert refused.status_code == 400 and "internal network" in refused.text
    created = admin.post(
        "/settings/webhooks/new", data={**fields, "name": "ERP", "active": "y", "csrf_token": csrf_token(form.text)}
    )
    assert created.status_code == 200, created.text
    secret = re.search(r'id="webhook-secret">(whsec_[A-Za-z0-9_-]+)<', created.text)
    assert secret, "the secret is shown once"
    receiver.secret = secret.group(1)
    with db.transaction() as s:
        delivery_subscription = s.scalar(select(func.max(WebhookDelivery.subscription_id)))
        assert delivery_subscription is None
        from hub.models.webhooks import WebhookSubscription

        subscription = s.scalars(select(WebhookSubscription)).one()
        assert receiver.secret not in subscription.secret_encrypted  # encrypted at rest
    page_url = f"/settings/webhooks/{subscription.id}"
    page = admin.get(page_url)
    assert page.status_code == 200 and receiver.secret not in page.text  # shown once only
    assert "ERP" in admin.get("/settings/webhooks").text

    # The test-event button: a signed hub.test delivery, and its attempt in the log.
    sent = admin.post(f"{page_url}/test", data={"csrf_token": csrf_token(page.text)})
    assert sent.status_code == 302
    assert _send(db) == 1
    assert [(e["type"], e["data"]["subscription_id"]) for e in receiver.events()] == [("hub.test", subscription.id)]
    assert receiver.received[0].signature_ok

    # A change made through the web app is delivered too; a failure shows in plain words.
    receiver.fail_first = 2
    with db.transaction() as s:
        token = create_token(s, s.get_one(User, admin_user.id), "t")
    api = app.test_client()
    made = api.post("/api/v1/relations", json={"name": "Web BV"}, headers={"Authorization": f"Bearer {token}"})
    assert made.status_code == 201
    assert _send(db) == 1
    log = admin.get(page_url).text
    assert "relation.created" in log and "The receiver answered 500." in log and "waiting for retry" in log
    assert "hub.test" in log and "delivered" in log
    # The reasons are stored to be shown in the reader's language.
    dutch = login(app.test_client(), make_user("Beheerder", admin=True, language="nl"))
    assert "De ontvanger antwoordde 500." in dutch.get(page_url).text


@pytest.fixture
def worker_stack(tmp_path: Path, pg_url: str, redis_url: str) -> Iterator[WorkerStack]:
    with worker_on_redis(tmp_path, pg_url, redis_url, queues="default") as started:
        yield started


def test_a_real_worker_on_redis_carries_a_web_change_to_the_receiver(
    worker_stack: WorkerStack, receiver: Receiver
) -> None:
    from web import create_app

    settings, db, log = worker_stack
    admin = _user(db, "Ada", admin=True)
    _subscribe(db, receiver, admin, ["relation.created"])
    with db.transaction() as s:
        token = create_token(s, s.get_one(User, admin.id), "t")
    app = create_app(settings, database=db, TESTING=True)
    response = app.test_client().post(
        "/api/v1/relations", json={"name": "Through Redis BV"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201
    try:
        receiver.wait_for(1, timeout=60)
    except AssertionError:
        raise AssertionError("no delivery; the worker said:\n" + log.read_text(errors="replace")[-4000:]) from None
    (event,) = receiver.events()
    assert (event["type"], event["data"]["name"]) == ("relation.created", "Through Redis BV")
    assert receiver.received[0].signature_ok
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with db.transaction() as s:
            if s.scalars(select(WebhookDelivery.status)).one() == "delivered":
                break
        time.sleep(0.2)
    else:
        raise AssertionError("the delivery was not recorded as delivered")


def test_the_test_event_service_is_a_delivery_like_any_other(db: Database, receiver: Receiver) -> None:
    admin = _user(db, "Ada", admin=True)
    subscription_id = _subscribe(db, receiver, admin, ["relation.deleted"])
    with db.transaction() as s:
        from hub.models.webhooks import WebhookSubscription

        send_test_event(s, s.get_one(WebhookSubscription, subscription_id))
    assert _send(db) == 1 and receiver.events()[0]["type"] == "hub.test"


def test_an_email_linked_to_a_project_is_told_only_when_the_owner_may_read_it(
    any_db: Database, receiver: Receiver
) -> None:
    from hub.mail.links import link_to_project
    from hub.models import Email, Mailbox, MailboxEmail, MailSecurity

    db = any_db
    admin, sam, olga = _user(db, "Ada", admin=True), _user(db, "Sam"), _user(db, "Olga")
    _subscribe(db, receiver, sam, ["email.linked"])
    with db.transaction() as s:
        relation = save_relation(s, RelationInput(name="Mail BV"))
        project = save_project(s, admin, ProjectInput(relation_id=relation.id, name="Mail project"))
        mailboxes = {}
        for name, owner in (("shared", None), ("olga", olga.id)):
            box = Mailbox(
                name=name,
                owner_id=owner,
                host="imap.example",
                port=993,
                security=MailSecurity.ssl,
                username=name,
                password_encrypted="x",
            )
            s.add(box)
            mailboxes[name] = box
        s.flush()
        emails = {}
        for name in ("shared", "olga"):
            email = Email(message_key=f"<{name}@test>", subject=f"From the {name} mailbox", raw_sha256="0" * 64)
            s.add(email)
            s.flush()
            # Olga's personal mailbox shares nothing ("only me"): Sam may not read that e-mail.
            s.add(MailboxEmail(mailbox_id=mailboxes[name].id, email_id=email.id))
            emails[name] = email
    with db.transaction() as s:
        for name in ("shared", "olga"):
            link_to_project(s, s.get_one(Email, emails[name].id), s.get_one(Project, project.id))
    _send(db)
    (event,) = receiver.events()
    assert event["type"] == "email.linked"
    assert event["data"]["subject"] == "From the shared mailbox"
    assert event["data"]["project_ids"] == [project.id] and event["data"]["relation_ids"] == [relation.id]


def test_the_delivery_log_forgets_finished_deliveries_after_thirty_days(any_db: Database, receiver: Receiver) -> None:
    """Delivered and failed deliveries older than the log keeps go, with their attempts, in batches;
    recent ones and one still waiting for a retry stay, whatever their age."""
    from datetime import timedelta

    from sqlalchemy import update

    from hub.models.base import utcnow
    from hub.webhooks.delivery import prune_log

    db = any_db
    admin = _user(db, "Ada", admin=True)
    _subscribe(db, receiver, admin, ["relation.created"])
    with db.transaction() as s:
        for n in range(25):
            save_relation(s, RelationInput(name=f"Old {n} BV"))
    receiver.fail_first = 5  # five of the 25 fail their first attempt and wait for a retry
    assert _send(db, delays=(3600,)) == 25
    with db.transaction() as s:
        ids = s.scalars(select(WebhookDelivery.id).order_by(WebhookDelivery.id)).all()
        old, waiting = ids[5:20], ids[:5]
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids[:20]))
            .values(created_at=utcnow() - timedelta(days=31))
        )
        s.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(old[:3])).values(status="failed"))
        assert s.scalar(select(func.count()).select_from(WebhookAttempt)) == 25
    assert prune_log(db, batch=4) == 15  # 15 finished and old, in four batches
    with db.transaction() as s:
        kept = s.scalars(select(WebhookDelivery.id).order_by(WebhookDelivery.id)).all()
        assert kept == waiting + ids[20:]  # the five waiting for a retry (old) and the five recent
        assert s.scalar(select(func.count()).select_from(WebhookAttempt)) == 10
        assert {d.status for d in s.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(waiting)))} == {
            "pending"
        }
    assert prune_log(db) == 0
