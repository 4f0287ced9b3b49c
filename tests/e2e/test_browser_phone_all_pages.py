"""EVERY page a signed-in user or admin can open, on a 390 x 844 phone in a real headless Chromium.

The pages come from the Flask app's URL map, so a page added later is checked too (or the test fails
and says so): every GET rule that is not the JSON API, a static file, a download or a feed is opened
with ids of seeded objects, in Dutch and in English (Dutch words are longer, English labels differ),
with lists longer than a page and long names, addresses and links. On each page what a phone user
would notice: the page itself does not scroll sideways, nothing sticks out of the screen except
inside an element that scrolls itself (a wide table), the main menu can be reached, form fields fit.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from hub.campaigns.messages import unsubscribe_token
from hub.config import Settings
from hub.crm.projects import ProjectInput, save_project
from hub.crm.relations import ContactInput, RelationInput, save_contact, save_relation
from hub.db import Database
from hub.models import Call, CallSource, Choice, Email, EmailParticipant, EmailProject, ImportJob, Mailbox, User
from hub.models.campaigns import Mailing, MailingRecipient
from hub.models.tags import Tag
from hub.models.users import UserGroup
from hub.models.webhooks import WebhookSubscription
from tests.conftest import PASSWORD
from tests.integration.test_campaign_sending import mailing_settings, make_mailing, run_to_end, seed_contacts
from tests.integration.test_route_access import World, world  # noqa: F401 (the seeded objects: a fixture)

PHONE = {"width": 390, "height": 844}
LONG = "Installatiebedrijf Van den Heuvel-Oosterhuizen Duurzame Energie en Klimaattechniek B.V."
LONG_ADDRESS = "verkoop.binnendienst@heuvel-oosterhuizen-duurzame-klimaattechniek.example"
LONG_LINK = "https://example.nl/" + "heel-lange-link-zonder-spaties-" * 8

# GET rules that are no page of hub's own layout, each with why. Any other GET rule must be checked.
SKIPPED = {
    # JavaScript, style sheets and images the pages load; not pages.
    "static": "files (CSS, JavaScript, icons)",
    "apidocs.asset": "a file of the API documentation page",
    "apidocs.start": "the API documentation page's script",
    "images.image": "the image proxy for e-mails: serves images",
    # Downloads and feeds: their bytes as they are, no HTML page.
    "calendar.feed": "iCalendar feed (text/calendar)",
    "mail.attachment": "an e-mail attachment, downloaded",
    "mail.attached_message_part": "an attachment of a forwarded message, downloaded",
    "mail.raw": "the e-mail as sent (message/rfc822)",
    "mail.quarantined_raw": "a quarantined message as received",
    "projects.download_document": "a project document, downloaded",
    "telephony.threecx_template": "the 3CX XML template, downloaded",
    "ops.healthz": "the load balancer's JSON health check",
    # JSON for the pages' scripts.
    "relations.lookup": "JSON for the relation picker",
    "filing.lookup": "JSON for the filing picker",
    "campaigns.group_count": "JSON for the group editor's live count",
    # The e-mail's own HTML, shown only inside the sandboxed frame of the e-mail page (checked there:
    # the frame is as wide as the page).
    "mail.body": "the sender's HTML inside the e-mail page's frame",
    # Opens only without a session (a signed-in user is sent on), checked before logging in.
    "auth.login": "checked before logging in",
    # The site root only redirects to the projects list.
    "projects.index@/": "a redirect to /projects",
}

# Query strings some pages need (or show their fullest with): filled from the seeded ids.
QUERIES = {
    "filing.new_contact": "relation_id={insiders_relation_id}",  # a new contact for the sender, on a relation
    "search.index": "q=oosterhuizen",  # hits in contacts, relations, projects and e-mails
    "campaigns.preview": "contact={contact_id}",
}


# One pass over the page in the browser: what sticks out of the screen (outside an element that
# scrolls itself), whether the menu's links are on screen, and which form fields do not fit.
INSPECT = """(width) => {
  const scrollsItself = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const x = getComputedStyle(p).overflowX;
      if (x === 'auto' || x === 'scroll') return true;
    }
    return false;
  };
  const describe = (el) => {
    const r = el.getBoundingClientRect();
    const text = (el.innerText || el.value || '').trim().slice(0, 40);
    return `<${el.tagName.toLowerCase()}${el.className ? ' class="' + el.className + '"' : ''}> ` +
      `${Math.round(r.left)}..${Math.round(r.right)} px "${text}"`;
  };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right <= width + 1 && r.left >= -1) continue;
    if (scrollsItself(el)) continue;
    out.push(describe(el));
  }
  const menu = [...document.querySelectorAll('nav.mainnav a')].map((a) => {
    const r = a.getBoundingClientRect();
    return r.left >= 0 && r.right <= width + 1 && r.height >= 20;
  });
  const fields = [];
  for (const el of document.querySelectorAll('main input:not([type=hidden]), main select, main textarea')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || scrollsItself(el)) continue;
    if (r.left < -1 || r.right > width + 1) fields.push(describe(el));
  }
  // A wide table scrolls inside itself rather than squeeze its columns to a letter or two a line.
  const narrow = [...document.querySelectorAll('main th')]
    .filter((th) => { const r = th.getBoundingClientRect(); return r.width > 0 && r.width < 90; })
    .map(describe);
  return {
    narrow: narrow.slice(0, 8),
    scrollWidth: document.documentElement.scrollWidth,
    outside: out.slice(0, 8),
    menu: menu,
    fields: fields,
  };
}"""


def _seed(
    db: Database, app: Flask, settings: Settings, seeded: World, admin: User, tmp_path: Path, smtp_url: str
) -> dict[str, Any]:
    """More of everything than fits one phone screen, with long names, addresses and links; returns
    the ids for the URL arguments."""
    from hub.calendar.appointments import AppointmentInput, save_appointment
    from hub.crm.activities import ActivityInput, save_activity
    from hub.crm.documents import add_document

    seed_contacts(db, 60, prefix="lijst", city="Hoogezand-Sappemeer")
    mailing_id = make_mailing(db)
    # Sent through a real SMTP server: the mailing's results, chart and ledger have rows to show.
    run_to_end(db, mailing_settings(tmp_path, db, smtp_url), mailing_id)
    ids: dict[str, Any] = dict(seeded.ids, insiders_relation_id=seeded.ids["relation_id"])
    with db.transaction() as s:
        me = s.get_one(User, admin.id)
        relation = save_relation(s, RelationInput(name=LONG, city="Amersfoort", emails=[LONG_ADDRESS]))
        contact = save_contact(
            s, relation, ContactInput(name="Annemarie Oosterhuizen-Van Walraven", emails=[LONG_ADDRESS])
        )
        for i in range(55):
            save_project(
                s,
                me,
                ProjectInput(
                    relation_id=relation.id,
                    name=f"Warmtepomp en zonnepanelen voor het hoofdkantoor, fase {i}",
                    value="1284500,00",
                    responsible_user_id=admin.id,
                    description=LONG_LINK,
                ),
            )
        project = save_project(
            s, me, ProjectInput(relation_id=relation.id, name="Klimaatinstallatie " + LONG, description=LONG_LINK)
        )
        blobs = app.extensions["hub.blobs"]
        add_document(s, blobs, me, project, "offerte-" + "x" * 80 + ".pdf", io.BytesIO(b"%PDF-1.4"), None, 1000)
        source_id = seeded.ids["source_id"]
        start = datetime.now(UTC) - timedelta(days=1)
        for i in range(90):
            s.add(
                Call(
                    source_id=source_id,
                    call_key=f"phone-{i}",
                    direction="inbound" if i % 2 else "outbound",
                    number="+31 (0)20 123 45 67 toestel 1234",
                    e164="+31201234567",
                    started_at=start - timedelta(minutes=i),
                    outcome="answered",
                    extension="binnendienst-verkoop-" + str(i),
                    user_id=admin.id,
                    # Every third call matched no one: the "unmatched calls" list has a page too.
                    contact_id=contact.id if i % 3 else None,
                    relation_id=relation.id if i % 3 else None,
                    project_id=project.id if i % 3 else None,
                )
            )
        # This week's calendar and the activity lists, full and with long titles.
        monday = datetime.now().replace(hour=8, minute=0, second=0, microsecond=0)
        monday -= timedelta(days=monday.weekday())
        for i in range(21):
            when = monday + timedelta(days=i % 7, hours=i // 7)
            data = AppointmentInput(
                title=f"Opname {LONG} {i}",
                start=when,
                end=when + timedelta(minutes=45),
                location=LONG_LINK,
                project_id=project.id,
            )
            save_appointment(s, me, data)
        for i in range(55):
            title = f"Offerte nabellen bij {LONG} over {LONG_ADDRESS} ({i})"
            save_activity(s, me, project, ActivityInput(title=title, assigned_user_id=admin.id, description=LONG_LINK))
        # The insider's e-mail, as the sender wrote it: a subject and addresses without a place to break.
        email = s.get_one(Email, seeded.ids["email_id"])
        email.subject = "Offerte-" + "warmtepompinstallatieonderhoudscontract" * 3 + " " + LONG
        email.from_name, email.from_address = LONG, LONG_ADDRESS
        email.text_body = LONG_LINK + "\n" + "Met vriendelijke groet,\n" * 40
        for role in ("from", "to", "cc"):
            s.add(EmailParticipant(email_id=email.id, role=role, address_key=LONG_ADDRESS, name=LONG))
        s.add(EmailProject(email_id=email.id, project_id=project.id, how="manual"))
        # What admins type into the settings, as long as the columns allow, without spaces to break at.
        word = "klimaattechniekinstallatiebedrijf"
        s.get_one(Choice, seeded.ids["choice_id"]).name = f"Offerte verstuurd, wacht op {word}"
        s.get_one(UserGroup, seeded.ids["group_id"]).name = f"Binnendienst {word}-{word}"
        s.get_one(Tag, seeded.ids["tag_id"]).name = word + "beurs"
        s.get_one(CallSource, seeded.ids["source_id"]).name = f"Telefooncentrale {word}-{word}"
        hook = s.get_one(WebhookSubscription, seeded.ids["subscription_id"])
        hook.name, hook.url = f"Koppeling {word}", "https://hooks." + word + ".example/" + word * 4
        box = s.get_one(Mailbox, seeded.ids["mailbox_id"])
        box.name = box.username = LONG_ADDRESS
        box.host = "imap." + "heuvel-oosterhuizen-duurzame-klimaattechniek" * 2 + ".example"
        s.get_one(ImportJob, seeded.ids["job_id"]).filename = f"export-{word}-{word}-{word}.csv"
        mailing = s.get_one(Mailing, mailing_id)
        mailing.name = "Nieuwsbrief " + LONG
        mailing.campaign.name = "Voorjaarsactie " + LONG
        assert mailing.target_group is not None
        mailing.target_group.name = "Klanten in " + LONG
        recipient = s.scalars(select(MailingRecipient.id).where(MailingRecipient.mailing_id == mailing_id)).first()
        assert recipient is not None
        ids.update(
            project_id=project.id,
            relation_id=relation.id,
            contact_id=contact.id,
            mailing_id=mailing_id,
            campaign_id=mailing.campaign_id,
            target_group_id=mailing.target_group_id,
            # The unsubscribe page a recipient opens from the mailing (public, but a page all the same).
            token=unsubscribe_token(settings.secret_key, recipient),
        )
    return ids


def _pages(app: Flask, ids: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The URLs to check and the rules skipped (endpoint: why); fails on a GET rule it cannot fill."""
    urls, skipped, unknown = [], [], []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in (rule.methods or set()) or rule.rule.startswith("/api/"):
            continue
        reason = SKIPPED.get(rule.endpoint) or SKIPPED.get(f"{rule.endpoint}@{rule.rule}")
        if reason:
            skipped.append(f"{rule.rule} ({reason})")
            continue
        url = rule.rule
        for name in rule.arguments:
            if name not in ids:
                unknown.append(f"{rule.rule}: <{name}>")
                continue
            url = url.replace(f"<int:{name}>", str(ids[name])).replace(f"<{name}>", str(ids[name]))
        if rule.endpoint in QUERIES:
            url += "?" + QUERIES[rule.endpoint].format(**ids)
        urls.append(url)
    assert not unknown, f"GET pages neither checked nor on SKIPPED (seed an object or add why): {unknown}"
    # A skip for a page that is gone would one day skip a new page of the same name unseen.
    known = {r.endpoint for r in app.url_map.iter_rules()} | {
        f"{r.endpoint}@{r.rule}" for r in app.url_map.iter_rules()
    }
    assert set(SKIPPED) <= known, f"SKIPPED names pages that no longer exist: {set(SKIPPED) - known}"
    return urls, skipped


def _log_in(page: Any, live_url: str, user: User) -> None:
    page.goto(f"{live_url}/login")
    page.fill("#email", user.email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_url}/projects")


def _check(page: Any, url: str) -> list[str]:
    """What a phone user would notice is wrong on the page now shown."""
    found = page.evaluate(INSPECT, PHONE["width"])
    problems = []
    if found["scrollWidth"] > PHONE["width"] + 1:
        problems.append(f"{url}: the page is {found['scrollWidth']} px wide on a {PHONE['width']} px phone")
    if found["outside"]:
        problems.append(f"{url}: sticks out of the screen: {found['outside']}")
    if url != "/login" and (len(found["menu"]) < 6 or not all(found["menu"])):
        problems.append(f"{url}: the main menu is not all on screen: {found['menu']}")
    if found["narrow"]:
        problems.append(f"{url}: table columns squeezed narrower than 90 px: {found['narrow']}")
    if found["fields"]:
        problems.append(f"{url}: form fields wider than the screen: {found['fields']}")
    return problems


@pytest.mark.parametrize("language", ["nl", "en"])
def test_every_get_page_fits_a_390_px_phone(
    browser: Any,
    live_url: str,
    app: Flask,
    settings: Settings,
    db: Database,
    world: World,  # noqa: F811
    make_user: Callable[..., User],
    smtp_server: Any,
    tmp_path: Path,
    language: str,
) -> None:
    admin = make_user("Margriet van der Heijden-Oosterbeek", admin=True, language=language)
    ids = _seed(db, app, settings, world, admin, tmp_path, smtp_server.url)
    urls, skipped = _pages(app, ids)
    with db.transaction() as s:
        s.get_one(User, world.insider.id).language = language
    locale = "nl-NL" if language == "nl" else "en-GB"
    errors: list[str] = []

    def new_page() -> Any:
        page = browser.new_context(viewport=PHONE, locale=locale, is_mobile=True).new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    admin_page = new_page()
    admin_page.goto(f"{live_url}/login")
    problems = _check(admin_page, "/login")
    _log_in(admin_page, live_url, admin)
    # The insider's own mailbox and its mail are his alone (an admin gets 404): opened as him.
    insider_page = None
    checked = []
    for url in urls:
        page = admin_page
        response = page.goto(f"{live_url}{url}")
        if response is not None and response.status == 404:
            if insider_page is None:
                insider_page = new_page()
                _log_in(insider_page, live_url, world.insider)
            page = insider_page
            response = page.goto(f"{live_url}{url}")
        assert response is not None and response.status == 200, f"{url} answered {response and response.status}"
        assert response.headers["content-type"].startswith("text/html"), f"{url} is no page: put it on SKIPPED"
        problems += _check(page, url)
        checked.append(url)
    # Secrets shown once, after a POST (no GET page of their own): long strings without a space.
    admin_page.goto(f"{live_url}/profile/tokens")
    admin_page.fill("main input[name=name]", "boekhoudexport " + LONG)
    admin_page.click("main button.primary")
    admin_page.wait_for_selector("#new-token")
    problems += _check(admin_page, "/profile/tokens (the new token)")
    admin_page.goto(f"{live_url}/calendar/settings")
    admin_page.click("main button[name=action][value=new]")
    admin_page.wait_for_selector("main .feed-url")
    problems += _check(admin_page, "/calendar/settings (the new feed address)")
    for opened in (admin_page, insider_page):
        if opened is not None:
            opened.context.close()
    print(f"\nchecked {len(checked)} pages in {language}:", *checked, "skipped:", *skipped, sep="\n  ")
    assert not problems, "\n".join(problems)
    assert errors == []
    assert len(checked) > 80  # the walk really covered the app
