"""The campaign pages as marketing uses them: a target group with its live count and a sample that
never shows a contact of a relation the user may not see, a static list from a CSV with bad rows, a
campaign and a mailing written, scheduled, paused, resumed, its ledger searched and paged, its
results with a chart."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select, update

from hub.campaigns import sending
from hub.db import Database
from hub.models import Relation, User
from hub.models.campaigns import Mailing, TargetGroup
from hub.models.crm import relation_users
from tests.conftest import csrf_token
from tests.integration.test_campaign_sending import mailing_settings, make_mailing, run_to_end, seed_contacts


def _hide_relation(db: Database, name: str, insider: User) -> None:
    with db.transaction() as s:
        relation_id = s.scalar(select(Relation.id).where(Relation.name == name))
        s.execute(relation_users.insert().values(relation_id=relation_id, user_id=insider.id))


def test_group_editor_counts_and_shows_only_visible_contacts(
    db: Database, client: FlaskClient, make_user: Callable[..., User], login: Callable[..., FlaskClient]
) -> None:
    seed_contacts(db, 12)
    seed_contacts(db, 3, prefix="x", city="Zwolle")
    insider, outsider = make_user("Insider"), make_user("Outsider")
    _hide_relation(db, "Company r0", insider)
    login(client, outsider)
    page = client.get("/campaigns/groups/new")
    assert page.status_code == 200
    token = csrf_token(page.text)
    form = {"csrf_token": token, "name": "Utrecht customers", "city": "utrecht", "consent_required": "y"}
    counted = client.post("/campaigns/groups/new", data={**form, "action": "count"})
    assert counted.status_code == 200
    # The hidden relation's contact is neither shown nor counted (12 in the group, 11 visible).
    assert "11 contacts" in counted.text
    assert "Person1 R" in counted.text and "Person0 R" not in counted.text
    assert 'value="utrecht"' in counted.text  # the input is kept
    with db.transaction() as s:
        assert s.scalar(select(TargetGroup.id)) is None  # counting saves nothing
    saved = client.post("/campaigns/groups/new", data={**form, "action": "save"})
    assert saved.status_code == 302
    group_page = client.get(saved.headers["Location"])
    assert "11 contacts" in group_page.text and "Person0 R" not in group_page.text

    bad = client.post("/campaigns/groups/new", data={**form, "exclude_ids": "12x", "action": "save"})
    assert bad.status_code == 200 and "Not a number" in bad.text


def test_static_list_from_csv_reports_bad_rows(
    db: Database, client: FlaskClient, make_user: Callable[..., User], login: Callable[..., FlaskClient]
) -> None:
    seed_contacts(db, 4)
    login(client, make_user("Marketing"))
    token = csrf_token(client.get("/campaigns/groups/new").text)
    saved = client.post(
        "/campaigns/groups/new",
        data={"csrf_token": token, "name": "Fair visitors", "static": "y", "action": "save"},
    )
    group_url = saved.headers["Location"]
    group_id = int(group_url.rstrip("/").rsplit("/", 1)[1])
    csv = (
        b"name,email\nA,r1@example.test\nB,not-an-address\nC,nobody@example.test\n"
        b"D,R2@EXAMPLE.TEST\nE,r1@example.test\n"
    )
    token = csrf_token(client.get(group_url).text)
    result = client.post(
        f"/campaigns/groups/{group_id}/import",
        data={"csrf_token": token, "file": (io.BytesIO(csv), "visitors.csv")},
        content_type="multipart/form-data",
    )
    assert result.status_code == 200
    assert "2 contacts added, 1 already on the list, 2 rows with errors." in result.text
    assert "line 3: not an e-mail address: not-an-address" in result.text
    assert "line 4: no contact has the address nobody@example.test" in result.text
    page = client.get(group_url)
    assert "2 contacts" in page.text


def test_mailing_from_draft_to_sent_with_ledger_paging_and_results(
    tmp_path: Path,
    db: Database,
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Callable[..., FlaskClient],
    smtp_server: Any,
) -> None:
    seed_contacts(db, 120)
    insider, marketer = make_user("Insider"), make_user("Marketer")
    _hide_relation(db, "Company r5", insider)
    mailing_id = make_mailing(db, scheduled=False)
    login(client, marketer)
    page = client.get(f"/campaigns/mailings/{mailing_id}")
    assert page.status_code == 200 and "draft" in page.text
    token = csrf_token(page.text)

    preview = client.get(f"/campaigns/mailings/{mailing_id}/preview")
    assert preview.status_code == 200 and "Hello Person" in preview.text
    with db.transaction() as s:
        hidden_contact = s.scalar(select(Relation.id).where(Relation.name == "Company r5"))
    assert client.get(f"/campaigns/mailings/{mailing_id}/preview?contact={hidden_contact}").status_code == 404

    assert (
        client.post(
            f"/campaigns/mailings/{mailing_id}/schedule", data={"csrf_token": token, "send_at": "tomorrow"}
        ).status_code
        == 302
    )
    assert "YYYY-MM-DD HH:MM" in client.get(f"/campaigns/mailings/{mailing_id}").text
    response = client.post(f"/campaigns/mailings/{mailing_id}/schedule", data={"csrf_token": token, "send_at": ""})
    assert response.status_code == 302
    with db.transaction() as s:
        assert s.scalar(select(Mailing.state).where(Mailing.id == mailing_id)) == "scheduled"
    client.post(f"/campaigns/mailings/{mailing_id}/pause", data={"csrf_token": token})
    client.post(f"/campaigns/mailings/{mailing_id}/resume", data={"csrf_token": token})
    settings = mailing_settings(tmp_path, db, smtp_server.url)
    results = run_to_end(db, settings, mailing_id)
    assert results[-1].state == "sent"
    assert len(smtp_server.recipients()) == 120

    ledger = client.get(f"/campaigns/mailings/{mailing_id}/ledger")
    rows = re.findall(r"@example\.test</td>", ledger.text)
    assert len(rows) == 50
    assert "r5@example.test" not in ledger.text  # a hidden relation's contact is not listed
    next_link = re.search(r'href="([^"]+)" rel="next"', ledger.text)
    assert next_link
    seen = set(re.findall(r"r(\d+)@example\.test", ledger.text))
    second = client.get(next_link.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    more = set(re.findall(r"r(\d+)@example\.test", second.text))
    assert len(more) == 50 and not seen & more
    found = client.get(f"/campaigns/mailings/{mailing_id}/ledger?q=R17%40example")
    assert "r17@example.test" in found.text and "r18@example.test" not in found.text

    with db.transaction() as s:
        campaign_id = s.scalar(select(Mailing.campaign_id).where(Mailing.id == mailing_id))
    campaign = client.get(f"/campaigns/{campaign_id}")
    assert campaign.status_code == 200
    assert "<svg" in campaign.text and "polyline" in campaign.text
    # 120 went out; the marketer's results count the 119 he may see (Company r5 is hidden from him).
    assert re.search(r"<dt>Sent</dt><dd>119</dd>", campaign.text)
    assert not re.search(r"<dd>120</dd>", campaign.text)


def test_campaign_form_keeps_input_and_explains_errors(
    db: Database, client: FlaskClient, make_user: Callable[..., User], login: Callable[..., FlaskClient]
) -> None:
    login(client, make_user("Marketer"))
    token = csrf_token(client.get("/campaigns/new").text)
    data = {
        "csrf_token": token,
        "name": "Spring fair",
        "budget_planned": "1e999999",
        "currency": "EUR",
        "material_name": "Spring folder",
        "material_quantity": "500",
        "material_used": "480",
        "material_reorder_level": "50",
    }
    bad = client.post("/campaigns/new", data=data)
    assert bad.status_code == 200 and "Planned budget is not an amount" not in bad.text
    assert "out of range" in bad.text and 'value="Spring fair"' in bad.text
    huge = client.post("/campaigns/new", data={**data, "budget_planned": "12,50", "material_quantity": "9" * 30})
    assert huge.status_code == 200
    good = client.post("/campaigns/new", data={**data, "budget_planned": "1250,00"})
    assert good.status_code == 302
    page = client.get(good.headers["Location"])
    assert "Time to reorder" in page.text and "20 left of 500" in page.text
    assert "1,250.00" in page.text or "1.250,00" in page.text


def test_nul_bytes_and_broken_input_never_500(
    db: Database, client: FlaskClient, make_user: Callable[..., User], login: Callable[..., FlaskClient]
) -> None:
    login(client, make_user("Marketer"))
    token = csrf_token(client.get("/campaigns/groups/new").text)
    response = client.post(
        "/campaigns/groups/new",
        data={"csrf_token": token, "name": "a\x00b", "city": "\x00", "free_text": "free_text_9=x", "action": "count"},
    )
    assert response.status_code == 200
    assert "Unknown free field" in response.text
    assert client.get("/campaigns/mailings/99999999999/ledger").status_code == 404
    assert client.get("/u/%00").status_code == 404
    sending.start_due(db)


def test_test_send_reaches_the_relay(
    tmp_path: Path, db: Database, make_user: Callable[..., User], login: Callable[..., FlaskClient], smtp_server: Any
) -> None:
    from web import create_app

    seed_contacts(db, 2)
    mailing_id = make_mailing(db, scheduled=False)
    app = create_app(mailing_settings(tmp_path, db, smtp_server.url), database=db, TESTING=True)
    client = login(app.test_client(), make_user("Marketer"))
    token = csrf_token(client.get(f"/campaigns/mailings/{mailing_id}").text)
    for wrong in ("nope", "jörg@hub.example"):  # (an address beyond ASCII needs SMTPUTF8: not sent with)
        bad = client.post(f"/campaigns/mailings/{mailing_id}/test", data={"csrf_token": token, "test_to": wrong})
        assert "valid address" in client.get(bad.headers["Location"]).text
    # A sender's name long and non-ASCII enough to be folded into encoded words.
    with db.transaction() as s:
        s.execute(
            update(Mailing)
            .where(Mailing.id == mailing_id)
            .values(from_name="Müller & Söhne Marketing Team Düsseldorf, Abteilung Kundenbindung")
        )
    sent = client.post(
        f"/campaigns/mailings/{mailing_id}/test", data={"csrf_token": token, "test_to": "me@hub.example"}
    )
    assert sent.status_code == 302
    assert smtp_server.recipients() == ["me@hub.example"]
    message = next(smtp_server.messages())
    assert str(message["Subject"]).startswith("[TEST] Hello Person")
    assert (
        message["From"].addresses[0].display_name == "Müller & Söhne Marketing Team Düsseldorf, Abteilung Kundenbindung"
    )
    assert message["From"].addresses[0].addr_spec == "news@hub.example"
    with db.transaction() as s:
        assert s.scalar(select(Mailing.state).where(Mailing.id == mailing_id)) == "draft"  # a test changes nothing


def test_marketing_consent_is_recorded_with_source_and_date(
    db: Database, client: FlaskClient, make_user: Callable[..., User], login: Callable[..., FlaskClient]
) -> None:
    from hub.models import Contact

    contact_id = seed_contacts(db, 1, consent=False)[0]
    insider, outsider = make_user("Insider"), make_user("Outsider")
    login(client, outsider)
    page = client.get(f"/campaigns/contacts/{contact_id}")
    assert page.status_code == 200 and "No consent to marketing mail" in page.text
    token = csrf_token(page.text)
    saved = client.post(
        f"/campaigns/contacts/{contact_id}", data={"csrf_token": token, "consent": "y", "source": "fair 2026"}
    )
    assert saved.status_code == 302
    with db.transaction() as s:
        contact = s.get_one(Contact, contact_id)
        assert contact.marketing_consent and contact.marketing_consent_source == "fair 2026"
        assert contact.marketing_consent_at is not None
    _hide_relation(db, "Company r0", insider)
    assert client.get(f"/campaigns/contacts/{contact_id}").status_code == 404
    assert client.post(f"/campaigns/contacts/{contact_id}", data={"csrf_token": token}).status_code == 404


def test_states_and_statuses_read_in_dutch(
    tmp_path: Path,
    db: Database,
    client: FlaskClient,
    make_user: Callable[..., User],
    login: Callable[..., FlaskClient],
    smtp_server: Any,
) -> None:
    """A mailing's state, the ledger's statuses (and its status filter) and a campaign's mailings
    are stored in English; a Dutch reader saw "Toestand: sent", "pending", "skipped"."""
    seed_contacts(db, 30)
    mailing_id = make_mailing(db, scheduled=True)
    results = run_to_end(db, mailing_settings(tmp_path, db, smtp_server.url), mailing_id)
    assert results[-1].state == "sent"
    login(client, make_user("Marketeer", language="nl"))
    page = client.get(f"/campaigns/mailings/{mailing_id}").text
    assert "<strong>Toestand:</strong> verzonden" in page
    ledger = client.get(f"/campaigns/mailings/{mailing_id}/ledger").text
    assert "<td>verzonden</td>" in ledger and "<td>sent</td>" not in ledger
    assert '<option value="skipped" >overgeslagen</option>' in ledger and ">pending<" not in ledger
    with db.transaction() as s:
        campaign_id = s.scalar(select(Mailing.campaign_id).where(Mailing.id == mailing_id))
    assert "<td>verzonden</td>" in client.get(f"/campaigns/{campaign_id}").text
