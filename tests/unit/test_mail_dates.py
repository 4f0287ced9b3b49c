"""Date: headers read as the moment they name, in UTC, wherever a person could read one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.mail.dates import parse_date
from hub.mail.parse import parse_message

NOV_3 = datetime(2026, 11, 3, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tue, 03 Nov 2026 09:30:00 +0100", NOV_3),
        ("Tue, 03 Nov 2026 09:30:00 CET", NOV_3),
        ("Tue, 03 Nov 2026 09:30:00 MET", NOV_3),
        ("Tue, 03 Nov 2026 10:30:00 EET", NOV_3),
        ("Tue, 03 Nov 2026 08:30:00 WET", NOV_3),
        ("Tue, 03 Nov 2026 08:30:00 GMT", NOV_3),
        ("Tue, 03 Nov 2026 08:30:00 UT", NOV_3),
        ("Tue, 03 Nov 2026 08:30:00 UTC", NOV_3),
        ("Tue, 03 Nov 2026 03:30:00 EST", NOV_3),
        ("Tue, 03 Nov 2026 02:30:00 CST", NOV_3),
        ("Tue, 03 Nov 2026 01:30:00 MST", NOV_3),
        ("Tue, 03 Nov 2026 00:30:00 PST", NOV_3),
        ("Wed, 15 Jul 2026 14:00:00 CEST", datetime(2026, 7, 15, 12, tzinfo=UTC)),
        ("Wed, 15 Jul 2026 14:00:00 MEST", datetime(2026, 7, 15, 12, tzinfo=UTC)),
        ("Wed, 15 Jul 2026 14:00:00 EEST", datetime(2026, 7, 15, 11, tzinfo=UTC)),
        ("Wed, 15 Jul 2026 14:00:00 WEST", datetime(2026, 7, 15, 13, tzinfo=UTC)),
        ("Wed, 15 Jul 2026 14:00:00 BST", datetime(2026, 7, 15, 13, tzinfo=UTC)),
        ("Wed, 15 Jul 2026 08:00:00 EDT", datetime(2026, 7, 15, 12, tzinfo=UTC)),
        ("Wed, 15 Jul 2026 07:00:00 CDT", datetime(2026, 7, 15, 12, tzinfo=UTC)),
        ("Wed, 15 Jul 2026 06:00:00 MDT", datetime(2026, 7, 15, 12, tzinfo=UTC)),
        ("Wed, 15 Jul 2026 05:00:00 PDT", datetime(2026, 7, 15, 12, tzinfo=UTC)),
        ("Tue, 3 Nov 2026 09:30:00 +0100 (CET)", NOV_3),  # a comment after the offset
        ("Sun, 03 Nov 2026 09:30:00 +0100", NOV_3),  # the wrong day name changes nothing
        ("3 Nov 26 9:30 +0100", NOV_3),  # two-digit year, no seconds
        ("03-Nov-2026 09:30:00 +0100", NOV_3),
        ("Tue,3 Nov 2026 09.30.00 +0100", NOV_3),
        ("2026-11-03T09:30:00+01:00", NOV_3),
        ("Tuesday, November 3, 2026 9:30 AM CET", NOV_3),
        ("Tue, 03 Nov 2026 08:30:00 -0000", NOV_3),  # "-0000": UTC, local zone unknown
        ("Tue, 03 Nov 2026 08:30:00", NOV_3),  # no zone at all: UTC
        ("Tue, 03 Nov 2026 08:30:00 XYZ", NOV_3),  # a zone nobody knows: UTC, as email.utils reads it
        ("3 Nov 99 09:30 +0100", datetime(1999, 11, 3, 8, 30, tzinfo=UTC)),
    ],
)
def test_dates_are_read_at_their_real_offset_in_utc(text: str, expected: datetime) -> None:
    moment = parse_date(text)
    assert moment == expected
    assert moment is not None and moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["", "gisteren", "1", "Tue, 03 Nov 2026 25:30:00 +0100", "0000-00-00", "(CET)"])
def test_what_no_person_could_read_is_no_date(text: str) -> None:
    assert parse_date(text) is None


def test_a_missing_or_unreadable_date_is_none_with_a_problem() -> None:
    missing = parse_message(b"From: a@x.example\r\nSubject: s\r\n\r\nbody\r\n")
    assert missing.sent_at is None and "no Date" in missing.problems
    bad = parse_message(b"From: a@x.example\r\nDate: morgen\r\n\r\nbody\r\n")
    assert bad.sent_at is None and "unreadable Date 'morgen'" in bad.problems
    good = parse_message(b"From: a@x.example\r\nDate: Tue, 03 Nov 2026 09:30:00 CET\r\n\r\nbody\r\n")
    assert good.sent_at == NOV_3 and not [p for p in good.problems if "Date" in p]
