"""A mailing's results: every figure of the results page and API, counted from its ledger in one pass,
on SQLite and PostgreSQL, over a ledger whose rows are in every state and whose events fall on
different days."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select, update

from hub.campaigns import sending
from hub.campaigns.mailings import Results, results, results_and_each
from hub.db import Database
from hub.models.campaigns import MailingRecipient
from tests.integration.test_campaign_sending import make_mailing, seed_contacts

DAY1 = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
DAY2 = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
DAY3 = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)


def test_results_count_every_state_and_event_by_day(any_db: Database) -> None:
    seed_contacts(any_db, 40)
    mailing_id = make_mailing(any_db)
    other = make_mailing(any_db)  # a second mailing's ledger is not counted
    sending.start_due(any_db)
    with any_db.transaction() as s:
        ids = list(
            s.scalars(select(MailingRecipient.id).where(MailingRecipient.mailing_id == mailing_id).order_by("id"))
        )
        assert len(ids) == 40

        def mark(rows: list[int], **values: object) -> None:
            s.execute(update(MailingRecipient).where(MailingRecipient.id.in_(rows)).values(**values))

        mark(ids[:30], status="sent", sent_at=DAY1)
        mark(ids[20:30], sent_at=DAY2)
        mark(ids[:3], bounced_at=DAY2)  # 3 bounced: delivered 27
        mark(ids[3:5], unsubscribed_at=DAY3)
        mark(ids[5:9], replied_at=DAY3)
        mark(ids[9:10], replied_at=DAY2, in_doubt=True)
        mark(ids[30:33], status="failed")
        mark(ids[33:35], status="skipped", in_doubt=True)
        mark(ids[35:37], status="sending")
        # (the rest pending)
        mark(
            list(s.scalars(select(MailingRecipient.id).where(MailingRecipient.mailing_id == other))),
            status="sent",
            sent_at=DAY3,
        )

    with any_db.transaction() as s:
        counted = results(s, [mailing_id], Decimal("100"))
    assert (counted.total, counted.sent, counted.failed, counted.skipped, counted.pending) == (40, 30, 3, 2, 5)
    assert (counted.bounced, counted.delivered, counted.unsubscribed, counted.replies) == (3, 27, 2, 5)
    assert counted.in_doubt == 3
    assert counted.cost_per_response == Decimal("20.00")
    assert counted.by_day == [
        {"day": "2026-03-02", "sent": 20, "bounced": 0, "unsubscribed": 0, "replies": 0},
        {"day": "2026-03-03", "sent": 10, "bounced": 3, "unsubscribed": 0, "replies": 1},
        {"day": "2026-03-05", "sent": 0, "bounced": 0, "unsubscribed": 2, "replies": 4},
    ]
    with any_db.transaction() as s:
        both, each = results_and_each(s, [mailing_id, other], Decimal("100"))
        assert (both.total, both.sent, both.replies, both.cost_per_response) == (80, 70, 5, Decimal("20.00"))
        assert each[mailing_id] == replace(counted, cost_per_response=None)
        assert (each[other].total, each[other].sent, each[other].by_day[0]["sent"]) == (40, 40, 40)
        assert results(s, []).total == 0
        # Together is both added up, day by day too; each mailing's days stay its own.
        assert (both.delivered, both.bounced, both.unsubscribed, both.in_doubt) == (67, 3, 2, 3)
        assert both.by_day == [
            {"day": "2026-03-02", "sent": 20, "bounced": 0, "unsubscribed": 0, "replies": 0},
            {"day": "2026-03-03", "sent": 10, "bounced": 3, "unsubscribed": 0, "replies": 1},
            {"day": "2026-03-05", "sent": 40, "bounced": 0, "unsubscribed": 2, "replies": 4},
        ]
        assert each[other].by_day == [{"day": "2026-03-05", "sent": 40, "bounced": 0, "unsubscribed": 0, "replies": 0}]
        assert results_and_each(s, []) == (Results(), {})
