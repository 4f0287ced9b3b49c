"""The channel overview: contact moments per month and channel (e-mails in and out, calls in and out,
mailings, appointments), overall and per relation, counting only what the user may see; on SQLite
and PostgreSQL, with a constant number of queries however much there is to count."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from hub.accounts.users import UserInput, create_user
from hub.calendar.appointments import appointment_visible
from hub.campaigns.channels import Overview, channel_overview
from hub.config import Settings
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation, set_relation_linked
from hub.db import Database
from hub.errors import NotFound
from hub.mail.privacy import email_visible
from hub.models import Appointment, Call, CallSource, Email, EmailRelation, Mailbox, MailboxEmail, User
from hub.models.campaigns import Campaign, Mailing, MailingRecipient
from hub.telephony.read import call_visible
from tests.conftest import PASSWORD, EnglishClient, csrf_token

AMS = ZoneInfo("Europe/Amsterdam")
TODAY = date(2026, 11, 15)
_n = itertools.count(1)


def person(db: Database, name: str, *, language: str = "en") -> User:
    with db.transaction() as s:
        return create_user(
            s,
            UserInput(email=f"{name.lower()}{next(_n)}@staff.example", name=name, password=PASSWORD, language=language),
        )


def local(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=AMS)


class World:
    """Two relations, Open BV (all staff) and Secret BV (the insider only), with contact moments on
    every channel in August to December 2026, and moments that must never count."""

    def __init__(self, db: Database, *, fill: bool = True) -> None:
        self.db = db
        self.viewer, self.colleague, self.insider = (person(db, n) for n in ("Viewer", "Colleague", "Insider"))
        with db.transaction() as s:
            self.open = save_relation(s, RelationInput(name="Open BV")).id
            secret = save_relation(s, RelationInput(name="Secret BV"))
            set_relation_linked(s, secret, [self.insider.id], [])
            self.secret = secret.id
            open_relation = s.get_one(type(secret), self.open)
            self.contacts = [
                save_contact(s, open_relation, ContactInput(name=f"Klant {i}", emails=[f"klant{i}@open.example"])).id
                for i in range(2)
            ]
            self.secret_contact = save_contact(s, secret, ContactInput(name="Geheim", emails=["x@secret.example"])).id
            self.project = save_project(
                s, s.get_one(User, self.viewer.id), ProjectInput(relation_id=self.open, name="Open project")
            ).id
            self.shared = self._mailbox(s, None, "sales@hub.example")
            self.personal = self._mailbox(s, self.colleague.id, "colleague@hub.example", sharing="colleagues")
            self.source = CallSource(name=f"pbx {next(_n)}", format="generic-csv")
            s.add(self.source)
            s.flush()
            self.campaign = Campaign(name="Autumn")
            s.add(self.campaign)
            s.flush()
            if fill:
                self.fill(s)

    def _mailbox(self, s: Session, owner_id: int | None, login: str, sharing: str = "only_me") -> int:
        box = Mailbox(
            name=login,
            owner_id=owner_id,
            host="imap.example",
            port=993,
            security="ssl",
            username=login,
            password_encrypted="x",
            sharing=sharing,
        )
        s.add(box)
        s.flush()
        return box.id

    def mail(
        self, s: Session, at: datetime, sender: str, relation: int, *, box: int | None = None, **flags: Any
    ) -> None:
        kind = flags.pop("kind", "")
        email = Email(
            message_key=f"c:{next(_n)}", from_address=sender, sent_at=at, raw_sha256="0" * 64, kind=kind, subject="Hi"
        )
        s.add(email)
        s.flush()
        s.add(MailboxEmail(mailbox_id=box or self.shared, email_id=email.id, **flags))
        s.add(EmailRelation(email_id=email.id, relation_id=relation))

    def call(self, s: Session, at: datetime, direction: str, relation: int | None, project: int | None = None) -> None:
        s.add(
            Call(
                source_id=self.source.id,
                call_key=f"k{next(_n)}",
                direction=direction,
                started_at=at,
                relation_id=relation,
                project_id=project,
            )
        )

    def appointment(
        self, s: Session, at: datetime, relation: int | None, project: int | None = None, **values: Any
    ) -> None:
        s.add(
            Appointment(
                uid=f"a{next(_n)}@hub",
                title="Visit",
                start_at=at,
                end_at=at + timedelta(hours=1),
                relation_id=relation,
                project_id=project,
                **values,
            )
        )

    def mailing_sent(self, s: Session, at: datetime, contacts: list[int], status: str = "sent") -> None:
        mailing = Mailing(campaign_id=self.campaign.id, name=f"m{next(_n)}", state="sent")
        s.add(mailing)
        s.flush()
        for contact in contacts:
            s.add(
                MailingRecipient(
                    mailing_id=mailing.id, contact_id=contact, address=f"a{contact}", status=status, sent_at=at
                )
            )

    def fill(self, s: Session, copies: int = 1) -> None:
        klant, staff = "klant0@open.example", self.viewer.email.lower()
        for _ in range(copies):
            # September: two received, one sent from the shared mailbox's own address.
            self.mail(s, local(2026, 9, 3), klant, self.open)
            self.mail(s, local(2026, 9, 20), klant, self.open)
            self.mail(s, local(2026, 9, 21), "sales@hub.example", self.open)
            # 30 September 22:30 UTC is 1 October on the company's clock: October.
            self.mail(s, datetime(2026, 9, 30, 22, 30, tzinfo=UTC), klant, self.open)
            # October: the colleague's shared personal mail counts; his private e-mail only for him.
            self.mail(s, local(2026, 10, 8), klant, self.open, box=self.personal)
            self.mail(s, local(2026, 10, 9), klant, self.open, box=self.personal, private=True)
            # Secret BV's mail sits in the shared mailbox (the viewer can open it), but he may not see
            # the relation: no contact with a relation of his.
            self.mail(s, local(2026, 10, 10), "x@secret.example", self.secret)
            # November: sent by the viewer himself; a bounce is no contact moment.
            self.mail(s, local(2026, 11, 2), staff, self.open)
            self.mail(s, local(2026, 11, 3), "mailer-daemon@open.example", self.open, kind="bounce")
            # Outside the three months: August and next month.
            self.mail(s, local(2026, 8, 31, 23, 30), klant, self.open)
            self.mail(s, local(2026, 12, 1, 0, 30), klant, self.open)

            self.call(s, local(2026, 9, 4), "inbound", self.open)
            self.call(s, local(2026, 10, 4), "outbound", self.open)
            self.call(s, local(2026, 10, 5), "outbound", None, self.project)  # via the relation's project
            self.call(s, local(2026, 11, 4), "internal", self.open)
            self.call(s, local(2026, 10, 6), "inbound", self.secret)
            self.call(s, local(2026, 10, 7), "inbound", None)  # an unknown caller: no relation

            self.mailing_sent(s, local(2026, 11, 5), [self.contacts[0], self.secret_contact])
            self.mailing_sent(s, local(2026, 11, 6), [self.contacts[1]], status="failed")

            self.appointment(s, local(2026, 10, 12), self.open)
            self.appointment(s, local(2026, 11, 12), None, self.project)
            self.appointment(s, local(2026, 11, 13), self.open, deleted_at=datetime.now(UTC))
            self.appointment(s, local(2026, 11, 14), self.open, status="cancelled")
            self.appointment(s, local(2026, 9, 12), self.secret)
            self.appointment(s, local(2026, 9, 13), None)  # internal: on no relation


def overview(db: Database, user: User, relation_id: int | None = None, months: int = 3) -> Overview:
    with db.transaction() as s:
        return channel_overview(
            s,
            s.get_one(User, user.id),
            relation_id=relation_id,
            months=months,
            today=TODAY,
            emails_visible=email_visible,
            calls_visible=call_visible,
            appointments_visible=appointment_visible,
        )


def table(result: Overview) -> dict[str, dict[str, int]]:
    """month (2026-09) → the channels with a count."""
    return {m.start.strftime("%Y-%m"): {c: n for c, n in m.counts.items() if n} for m in result.months}


VIEWER_SEES = {
    "2026-09": {"mail_in": 2, "mail_out": 1, "calls_in": 1},
    "2026-10": {"mail_in": 2, "calls_out": 2, "appointments": 1},
    "2026-11": {"mail_out": 1, "mailings": 1, "appointments": 1},
}


def test_counts_per_month_and_channel_only_what_the_user_may_see(any_db: Database) -> None:
    world = World(any_db)
    assert table(overview(any_db, world.viewer)) == VIEWER_SEES
    assert table(overview(any_db, world.viewer, world.open)) == VIEWER_SEES

    # The colleague also sees his own private e-mail.
    colleague = table(overview(any_db, world.colleague))
    assert colleague["2026-10"]["mail_in"] == 3
    # The insider sees Secret BV's moments too, overall and on the relation itself.
    assert table(overview(any_db, world.insider, world.secret)) == {
        "2026-09": {"appointments": 1},
        "2026-10": {"mail_in": 1, "calls_in": 1},
        "2026-11": {"mailings": 1},
    }
    insider = overview(any_db, world.insider)
    assert insider.totals == {
        "mail_in": 2 + 2 + 1,
        "mail_out": 2,
        "calls_in": 2,
        "calls_out": 2,
        "mailings": 2,
        "appointments": 3,
    }
    # A hidden relation answers like a missing one.
    for relation_id in (world.secret, 10**6):
        with pytest.raises(NotFound):
            overview(any_db, world.viewer, relation_id)

    # Twelve months back from November 2026: December 2025 … November 2026, oldest first.
    year = overview(any_db, world.viewer, months=12)
    assert [m.start for m in year.months][::11] == [date(2025, 12, 1), date(2026, 11, 1)]
    assert table(year)["2026-08"] == {"mail_in": 1}
    assert year.total == sum(sum(c.values()) for c in VIEWER_SEES.values()) + 1


def _statements(db: Database, run: Callable[[], Any]) -> int:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        run()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return len(statements)


def test_the_number_of_queries_does_not_grow_with_the_data(any_db: Database) -> None:
    world = World(any_db)
    for relation_id in (None, world.open):
        few = _statements(any_db, lambda r=relation_id: overview(any_db, world.viewer, r, months=12))
        with any_db.transaction() as s:
            world.campaign = s.get_one(Campaign, world.campaign.id)
            world.source = s.get_one(CallSource, world.source.id)
            world.fill(s, copies=5)
        many = _statements(any_db, lambda r=relation_id: overview(any_db, world.viewer, r, months=12))
        assert few == many
    assert table(overview(any_db, world.viewer))["2026-09"] == {"mail_in": 22, "mail_out": 11, "calls_in": 11}


# --- the page ---------------------------------------------------------------------------------------


@pytest.fixture
def site(any_db: Database, settings: Settings) -> Iterator[Flask]:
    from web import create_app

    app = create_app(settings, database=any_db, TESTING=True)
    app.test_client_class = EnglishClient
    yield app


def _login(app: Flask, user: User) -> Any:
    client = app.test_client()
    page = client.get("/login")
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 302
    return client


def _cells(page: str, row: str) -> list[str]:
    found = re.search(rf"<tr><th scope=\"row\">{re.escape(row)}</th>(.*?)</tr>", page)
    assert found, row
    return re.findall(r"<td class=\"num\">(\d+)</td>", found.group(1))


def test_the_page_shows_a_chart_and_the_numbers_overall_and_per_relation(any_db: Database, site: Flask) -> None:
    world = World(any_db, fill=False)  # the page counts up to the real today: only this month's moments
    now = datetime.now(AMS)
    this_month = local(now.year, now.month, 1, 9)
    with any_db.transaction() as s:
        world.mail(s, this_month, "klant0@open.example", world.open)
        world.mail(s, this_month, "sales@hub.example", world.open)
        world.call(s, this_month, "outbound", world.open)
        world.appointment(s, this_month, world.open)
        world.mail(s, this_month, "x@secret.example", world.secret)
    client = _login(site, world.viewer)
    month_name = this_month.strftime("%B %Y")

    page = client.get("/campaigns/channels")
    assert page.status_code == 200
    assert "<svg" in page.text and 'class="series-mail_in"' in page.text
    # mail in, mail out, calls in, calls out, mailings, appointments, total
    assert _cells(page.text, month_name) == ["1", "1", "0", "1", "0", "1", "4"]
    assert "Secret BV" not in page.text

    relation_page = client.get(f"/relations/{world.open}")
    assert f"/campaigns/channels?relation_id={world.open}" in relation_page.text
    page = client.get(f"/campaigns/channels?relation_id={world.open}&months=24")
    assert page.status_code == 200 and "Contact by channel: Open BV" in page.text
    assert _cells(page.text, month_name)[-1] == "4"
    assert page.text.count('<tr><th scope="row">') == 24 + 1  # the months and the total

    # Hidden, missing and nonsense relations all answer 404; a nonsense period shows the default.
    for bad in (str(world.secret), "999999", "abc", "-1", "99999999999999999999", "1%00"):
        assert client.get(f"/campaigns/channels?relation_id={bad}").status_code == 404, bad
    for months in ("abc", "0", "99999999999999999999", "-3"):
        page = client.get(f"/campaigns/channels?months={months}")
        assert page.status_code == 200 and page.text.count('<tr><th scope="row">') == 12 + 1

    # The insider sees Secret BV's page.
    insider = _login(site, world.insider)
    assert insider.get(f"/campaigns/channels?relation_id={world.secret}").status_code == 200


def test_the_page_in_dutch(any_db: Database, site: Flask) -> None:
    world = World(any_db, fill=False)
    dutch = person(any_db, "Nederlander", language="nl")
    client = _login(site, dutch)
    page = client.get(f"/campaigns/channels?relation_id={world.open}&months=3").text
    assert "Contact per kanaal: Open BV" in page and "E-mails ontvangen" in page
    months_nl = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
                 "oktober", "november", "december")  # fmt: skip
    assert months_nl[datetime.now(AMS).month - 1] in page


def test_target_groups_select_relations_by_their_last_contact(any_db: Database) -> None:
    """ "Contacted since" and "not contacted since" read the same contact moments as the overview: mail
    (not bounces), calls in or out, appointments not cancelled, on the relation or its projects;
    never contacted counts as not contacted."""
    from hub.campaigns.groups import GroupInput, preview, save_group

    world = World(any_db, fill=False)
    now = datetime.now(UTC)
    with any_db.transaction() as s:
        names = ("Mail BV", "Call BV", "Visit BV", "Old BV", "Never BV", "Bounce BV", "Cancelled BV")
        ids = {}
        for name in names:
            relation = save_relation(s, RelationInput(name=name))
            save_contact(
                s, relation, ContactInput(name=f"Contact {name}", emails=[f"x@{name.split()[0].lower()}.example"])
            )
            ids[name] = relation.id
        project = save_project(
            s, s.get_one(User, world.viewer.id), ProjectInput(relation_id=ids["Visit BV"], name="Oven")
        ).id
        world.mail(s, now - timedelta(days=7), "klant@mail.example", ids["Mail BV"])
        world.call(s, now - timedelta(days=20), "outbound", ids["Call BV"])
        world.appointment(s, now - timedelta(days=40), None, project)  # on the relation's project
        world.call(s, now - timedelta(days=400), "inbound", ids["Old BV"])
        world.mail(s, now - timedelta(days=3), "mailer-daemon@x.example", ids["Bounce BV"], kind="bounce")
        world.appointment(s, now - timedelta(days=5), ids["Cancelled BV"], status="cancelled")
        world.call(s, now - timedelta(days=1), "internal", ids["Never BV"])  # an internal call is no contact

    def members(**rules: Any) -> set[str]:
        with any_db.transaction() as s:
            group = save_group(s, GroupInput(name="g", rules=rules, consent_required=False), None)
            sample = preview(s, group, s.get_one(User, world.insider.id)).sample
        return {row["relation"] for row in sample} & set(names)

    since = (now - timedelta(days=90)).date().isoformat()
    assert members(contacted_since=since) == {"Mail BV", "Call BV", "Visit BV"}
    assert members(not_contacted_since=since) == {"Old BV", "Never BV", "Bounce BV", "Cancelled BV"}
    long_ago = (now - timedelta(days=500)).date().isoformat()
    assert members(contacted_since=long_ago) == {"Mail BV", "Call BV", "Visit BV", "Old BV"}


# --- the API ----------------------------------------------------------------------------------------


def test_the_api_gives_the_same_numbers_as_the_page(any_db: Database, site: Flask) -> None:
    from hub.accounts.users import create_token

    world = World(any_db, fill=False)
    now = datetime.now(AMS)
    this_month = local(now.year, now.month, 1, 9)
    with any_db.transaction() as s:
        world.mail(s, this_month, "klant0@open.example", world.open)
        world.mail(s, this_month, "sales@hub.example", world.open)
        world.call(s, this_month, "outbound", world.open)
        world.appointment(s, this_month, world.open)
        world.mail(s, this_month, "x@secret.example", world.secret)
        world.call(s, this_month, "inbound", world.secret)
        tokens = {u.name: create_token(s, s.get_one(User, u.id)) for u in (world.viewer, world.insider)}
    client = site.test_client()

    def get(url: str, who: str = "Viewer") -> Any:
        return client.get(url, headers={"Authorization": f"Bearer {tokens[who]}"})

    expected = {"mail_in": 1, "mail_out": 1, "calls_in": 0, "calls_out": 1, "mailings": 0, "appointments": 1}
    for url in ("/api/v1/channels", f"/api/v1/channels?relation_id={world.open}&months=12"):
        body = get(url).json
        assert len(body["months"]) == 12 and body["time_zone"] == "Europe/Amsterdam"
        last = body["months"][-1]
        assert last["start"] == this_month.date().isoformat() and last["counts"] == expected and last["total"] == 4
        assert body["totals"] == expected and body["total"] == 4
    body = get(f"/api/v1/channels?relation_id={world.open}&months=36").json
    assert body["relation_id"] == world.open and len(body["months"]) == 36
    assert body["months"][0]["start"] < body["months"][-1]["start"]  # oldest first
    # The insider also sees Secret BV: overall and on its own.
    assert get("/api/v1/channels?months=1", "Insider").json["totals"]["mail_in"] == 2
    assert get(f"/api/v1/channels?relation_id={world.secret}", "Insider").json["total"] == 2

    # A hidden relation answers exactly like a missing one; bad parameters are a 400 naming them.
    hidden, missing = get(f"/api/v1/channels?relation_id={world.secret}"), get("/api/v1/channels?relation_id=999999")
    assert hidden.status_code == missing.status_code == 404 and hidden.json == missing.json
    for bad, field in (
        ("months=0", "months"),
        ("months=37", "months"),
        ("months=abc", "months"),
        ("relation_id=0", "relation_id"),
        ("relation_id=99999999999999999999", "relation_id"),
        ("relation_id=1%00", "relation_id"),
        ("since=2026-01-01", "since"),
    ):
        response = get(f"/api/v1/channels?{bad}")
        assert response.status_code == 400, bad
        assert field in str(response.json["error"]), response.json
    assert client.get("/api/v1/channels").status_code == 401
