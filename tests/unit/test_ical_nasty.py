"""Events as real calendar servers and clients write them, nasty ones included: hub reads each into
fields it can store and show, or refuses it with the reason (:class:`NotAnEvent`), never with another
error, never by hanging. And a series is expanded in bounded work whatever its rule says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.calendar import ical, times
from hub.errors import ValidationError
from hub.i18n import shown

# The timeout is a guard against a hang (the old code looked for a FREQ=MINUTELY match until the
# year 9999), not a speed requirement.
pytestmark = pytest.mark.timeout(120)

START = ["DTSTART;TZID=Europe/Amsterdam:20261207T100000", "DTEND;TZID=Europe/Amsterdam:20261207T110000"]


def _event(lines: list[str], uid: str = "hub-1@example", extra: str = "") -> bytes:
    head = f"UID:{uid}\r\n" if uid else ""
    body = "".join(line + "\r\n" for line in lines)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        f"{extra}BEGIN:VEVENT\r\n{head}DTSTAMP:20260101T000000Z\r\n{body}END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


REFUSED = {
    "recurrence bomb: every second": (_event([*START, "RRULE:FREQ=SECONDLY"]), "weekly or monthly"),
    "recurrence bomb: minutely, never matching": (
        _event([*START, "RRULE:FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30"]),
        "weekly or monthly",
    ),
    "weekly, BY parts that never match": (
        _event([*START, "RRULE:FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30"]),
        "gives no dates",
    ),
    "ten million occurrences": (_event([*START, "RRULE:FREQ=WEEKLY;COUNT=10000000"]), "1 to 500"),
    "a huge interval": (_event([*START, "RRULE:FREQ=MONTHLY;INTERVAL=99999999"]), "1 to 52"),
    "a rule dateutil cannot read": (_event([*START, "RRULE:FREQ=WEEKLY;BYHOUR=99"]), "Not a repeat rule"),
    "two repeat rules": (_event([*START, "RRULE:FREQ=WEEKLY", "RRULE:FREQ=MONTHLY"]), "more than one"),
    "a series that ends before it starts": (
        _event([*START, "RRULE:FREQ=WEEKLY;UNTIL=20200101T000000Z"]),
        "ends before it starts",
    ),
    "year 1": (_event(["DTSTART:00010101T000000Z", "DTEND:00010101T010000Z"]), "outside the years"),
    "year 9999": (_event(["DTSTART:99991231T230000Z", "DTEND:99991231T235959Z"]), "outside the years"),
    "year 9999, all day": (_event(["DTSTART;VALUE=DATE:99991231"]), "outside the years"),
    "a duration of two million years": (
        _event(["DTSTART:20261207T100000Z", "DURATION:P99999999W"]),
        "outside the years",
    ),
    "no UID": (_event(START, uid=""), "no UID"),
    "no DTSTART": (_event(["SUMMARY:Visit"]), "no start"),
    "a to-do only": (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
        "no event",
    ),
    "a journal only": (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VJOURNAL\r\nUID:j\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n",
        "no event",
    ),
    "an override without its series": (
        _event(["RECURRENCE-ID:20261214T090000Z", "DTSTART:20261214T120000Z", "DTEND:20261214T130000Z"]),
        "moved occurrences only",
    ),
    "garbage": (b"hello world\r\n", "cannot be read"),
    "empty": (b"", "cannot be read"),
    "two calendars in one resource": (_event(START) * 2, "cannot be read"),
    "an unreadable EXDATE": (_event([*START, "RRULE:FREQ=WEEKLY;COUNT=5", "EXDATE:notadate"]), "cannot be read"),
    "a broken VTIMEZONE": (
        _event(
            START,
            extra="BEGIN:VTIMEZONE\r\nTZID:Europe/Amsterdam\r\nBEGIN:STANDARD\r\nDTSTART:garbage\r\n"
            "END:STANDARD\r\nEND:VTIMEZONE\r\n",
        ),
        "cannot be read",
    ),
    "more than 5 MB": (_event([*START, "DESCRIPTION:" + "x" * 5_000_001]), "larger than 5 MB"),
}


@pytest.mark.parametrize("data,reason", list(REFUSED.values()), ids=list(REFUSED))
def test_an_event_hub_cannot_keep_is_refused_with_its_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ical.NotAnEvent) as refused:
        ical.parse(data)
    assert reason in str(refused.value)
    # Kept for the sync-health page in a form shown in the reader's language.
    assert shown(refused.value.stored) == str(refused.value)


def _fields(data: bytes, default_tzid: str = "Europe/Amsterdam") -> dict[str, object]:
    return ical.parse(data, default_tzid=default_tzid).fields


def test_microsoft_zone_names_become_the_zone_hub_can_use() -> None:
    fields = _fields(
        _event(
            [
                "DTSTART;TZID=W. Europe Standard Time:20261207T100000",
                "DTEND;TZID=W. Europe Standard Time:20261207T110000",
            ]
        )
    )
    assert fields["tzid"] == "Europe/Berlin"
    assert fields["start"] == "2026-12-07T09:00:00+00:00"
    times.zone(str(fields["tzid"]))  # what rendering and the views need


def test_an_unknown_or_private_zone_is_read_in_the_appointments_zone() -> None:
    unknown = _fields(
        _event(["DTSTART;TZID=Mars/Olympus:20261207T100000", "DTEND;TZID=Mars/Olympus:20261207T110000"]),
        default_tzid="Europe/Amsterdam",
    )
    assert unknown["tzid"] == "Europe/Amsterdam" and unknown["start"] == "2026-12-07T09:00:00+00:00"
    private = _fields(
        _event(
            ["DTSTART;TZID=Custom:20261207T100000", "DTEND;TZID=Custom:20261207T110000"],
            extra="BEGIN:VTIMEZONE\r\nTZID:Custom\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
            "TZOFFSETFROM:+0300\r\nTZOFFSETTO:+0300\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n",
        )
    )
    # The instant is the zone's (10:00 at +03:00); the name is one hub knows.
    assert private["start"] == "2026-12-07T07:00:00+00:00" and private["tzid"] == "Europe/Amsterdam"


def test_ends_before_starts_and_mixed_date_kinds_become_sane_lengths() -> None:
    backwards = _fields(_event(["DTSTART:20261207T100000Z", "DTEND:20261207T090000Z"]))
    assert backwards["start"] == backwards["end"] == "2026-12-07T10:00:00+00:00"
    negative = _fields(_event(["DTSTART:20261207T100000Z", "DURATION:-PT5H"]))
    assert negative["end"] == negative["start"]
    mixed = _fields(_event(["DTSTART;VALUE=DATE:20261207", "DTEND:20261207T110000Z"]))
    assert mixed["all_day"] is True
    assert (mixed["start"], mixed["end"]) == ("2026-12-07T00:00:00+00:00", "2026-12-08T00:00:00+00:00")
    same_day = _fields(_event(["DTSTART;VALUE=DATE:20261207", "DTEND;VALUE=DATE:20261207"]))
    assert same_day["end"] == "2026-12-08T00:00:00+00:00"


def test_text_is_cut_to_what_hub_stores_and_loses_its_nul_bytes() -> None:
    remote = ical.parse(
        _event(
            [
                *START,
                "SUMMARY:" + "T" * 300,
                "LOCATION:" + "L" * 600,
                "DESCRIPTION:a\x00b" + "d" * 1_000_000,
                "ATTENDEE;PARTSTAT=" + "X" * 60 + ":mailto:odd@example.org",
                "ATTENDEE;PARTSTAT=accepted:mailto:Piet@Example.org",
                "SEQUENCE:99999999999999999999",
            ]
        )
    )
    assert len(remote.fields["title"]) == 200 and len(remote.fields["location"]) == 500
    assert len(remote.fields["description"]) == 20_000 and "\x00" not in remote.fields["description"]
    assert remote.attendees == {"piet@example.org": "ACCEPTED"}  # an answer iCalendar does not have is left out
    assert remote.sequence == 2**31 - 1


def test_controls_that_reorder_text_are_taken_out_of_what_people_read() -> None:
    """An outside event whose title reads one way and shows another ("\u202e" reverses what follows):
    gone from title, place and description, as from mail's subjects; the UID is kept as sent."""
    remote = ical.parse(
        _event(
            [
                *START,
                "SUMMARY:Betaal \u202eelpmaxe.knab\u202c nu",
                "LOCATION:\u2066Dorpsstraat 1\u2069",
                "DESCRIPTION:\u202aregel\u202b",
            ]
        )
    )
    assert remote.fields["title"] == "Betaal elpmaxe.knab nu"
    assert remote.fields["location"] == "Dorpsstraat 1"
    assert remote.fields["description"] == "regel"


def test_non_utf8_bytes_and_broken_folding_are_read() -> None:
    data = _event([*START, "SUMMARY:x"]).replace(b"SUMMARY:x", b"SUMMARY:caf\xe9\r\n\r\n continued")
    assert ical.parse(data).fields["title"].startswith("caf")


def test_ten_thousand_attendees_and_deep_nesting_are_read() -> None:
    many = [f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:a{i}@example.org" for i in range(10_000)]
    assert len(ical.parse(_event([*START, *many])).attendees) == 10_000
    depth = 5_000
    nested = _event(START).replace(b"END:VEVENT", b"BEGIN:X\r\n" * depth + b"END:X\r\n" * depth + b"END:VEVENT")
    assert ical.parse(nested).fields["start"] == "2026-12-07T09:00:00+00:00"


def test_overrides_and_exdates_of_occurrences_the_series_does_not_have_are_left_out() -> None:
    weekly = [*START, "RRULE:FREQ=WEEKLY;COUNT=5"]
    data = _event(
        [
            *weekly,
            # 10:00 Amsterdam on 14 December, written in New York's zone: the same instant.
            "EXDATE;TZID=America/New_York:20261214T040000",
            "EXDATE:20261215T090000Z",  # no occurrence then
        ]
    )
    extra = (
        b"BEGIN:VEVENT\r\nUID:hub-1@example\r\nRECURRENCE-ID:20261221T090000Z\r\n"
        b"DTSTART:20261221T130000Z\r\nDTEND:20261221T140000Z\r\nSUMMARY:Moved\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:hub-1@example\r\nRECURRENCE-ID:20261222T090000Z\r\n"
        b"DTSTART:20261222T130000Z\r\nDTEND:20261222T140000Z\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:hub-1@example\r\nRECURRENCE-ID:20261228T090000Z\r\n"
        b"DTSTART:20261228T090000Z\r\nDTEND:20261228T100000Z\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n"
    )
    fields = _fields(data.replace(b"END:VCALENDAR", extra + b"END:VCALENDAR"))
    assert fields["exdates"] == ["2026-12-14T09:00:00+00:00", "2026-12-28T09:00:00+00:00"]
    assert fields["overrides"] == [
        ["2026-12-21T09:00:00+00:00", "2026-12-21T13:00:00+00:00", "2026-12-21T14:00:00+00:00", "Moved"]
    ]


def test_a_rule_with_an_rdate_list_of_100k_is_read_in_bounded_work() -> None:
    dates = ",".join(f"2027{m:02d}{d:02d}T100000Z" for m in range(1, 13) for d in range(1, 29))
    data = _event([*START, *(f"RDATE:{dates}" for _n in range(300))])  # 100,800 dates
    assert ical.parse(data).fields["rrule"] == ""  # hub keeps no RDATEs; the event itself is read


# --- expanding series -------------------------------------------------------------------------------------

MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
NEVER = ";BYMONTH=2;BYMONTHDAY=30"


@pytest.mark.parametrize("freq", ["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY"])
def test_a_stored_rule_that_never_matches_expands_to_nothing_instead_of_hanging(freq: str) -> None:
    rule = f"FREQ={freq}{NEVER}"
    assert list(times.occurrence_starts(rule, MONDAY, "Europe/Amsterdam", False)) == []
    window = (MONDAY, MONDAY + timedelta(days=365))
    assert (
        times.occurrences(1, MONDAY, MONDAY + timedelta(hours=1), "Europe/Amsterdam", False, rule, "", [], *window)
        == []
    )
    assert times.series_end(rule + ";COUNT=3", MONDAY, MONDAY + timedelta(hours=1), "Europe/Amsterdam", False) is None


def test_a_series_longer_than_hub_expands_has_no_end_rather_than_a_wrong_one() -> None:
    end = MONDAY + timedelta(hours=1)
    assert times.series_end("FREQ=DAILY;COUNT=10000000", MONDAY, end, "Europe/Amsterdam", False) is None
    assert times.series_end("FREQ=WEEKLY;UNTIL=99991231T000000Z", MONDAY, end, "Europe/Amsterdam", False) is None
    # A leap day on a Monday: once in 28 years; 500 of them lie beyond any horizon.
    rare = "FREQ=WEEKLY;BYDAY=MO;BYMONTH=2;BYMONTHDAY=29;COUNT=500"
    assert times.series_end(rare, MONDAY, end, "Europe/Amsterdam", False) is None
    assert times.series_end("FREQ=WEEKLY;COUNT=3", MONDAY, end, "Europe/Amsterdam", False) == end + timedelta(weeks=2)


def test_a_huge_interval_or_an_unreadable_stored_rule_keeps_the_first_occurrence() -> None:
    starts = list(times.occurrence_starts("FREQ=YEARLY;INTERVAL=99999999;COUNT=3", MONDAY, "UTC", False))
    assert starts == [MONDAY]
    assert list(times.occurrence_starts("FREQ=WEEKLY;UNTIL=garbage", MONDAY, "UTC", False)) == [MONDAY]


@pytest.mark.parametrize(
    "rule,word",
    [
        ("FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30", "gives no dates"),
        ("FREQ=WEEKLY;COUNT=501", "1 to 500"),
        ("FREQ=MONTHLY;INTERVAL=0", "1 to 52"),
        ("FREQ=WEEKLY;COUNT=3;UNTIL=20270101T000000Z", "Not a repeat rule"),
        ("FREQ=WEEKLY\nRDATE:20270101T000000Z", "Not a repeat rule"),
        ("FREQ=WEEKLY;BYEASTER=0", "Not a repeat rule"),
        ("FREQ=WEEKLY;" + "BYDAY=MO;" * 100, "Not a repeat rule"),
    ],
)
def test_check_rrule_refuses_rules_hub_cannot_keep(rule: str, word: str) -> None:
    with pytest.raises(ValidationError) as refused:
        times.check_rrule(rule)
    assert word in refused.value.message


def test_check_rrule_keeps_rules_of_hubs_own_kind() -> None:
    for rule in ("FREQ=WEEKLY;INTERVAL=2;COUNT=10", "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-1", "FREQ=WEEKLY;UNTIL=20200101"):
        assert times.check_rrule(rule) == rule


def test_floating_times_are_read_in_the_appointments_zone() -> None:
    fields = _fields(_event(["DTSTART:20260705T100000", "DTEND:20260705T110000"]), default_tzid="Europe/Amsterdam")
    assert (fields["start"], fields["tzid"]) == ("2026-07-05T08:00:00+00:00", "Europe/Amsterdam")  # summer time


def test_the_first_of_several_events_counts_and_a_second_master_is_ignored() -> None:
    first = _event([*START, "SUMMARY:First"])
    twin = b"BEGIN:VEVENT\r\nUID:hub-1@example\r\nDTSTART:20270101T100000Z\r\nSUMMARY:Twin\r\nEND:VEVENT\r\n"
    other = b"BEGIN:VEVENT\r\nUID:someone-else\r\nDTSTART:20270101T100000Z\r\nSUMMARY:Other\r\nEND:VEVENT\r\n"
    remote = ical.parse(first.replace(b"END:VCALENDAR", twin + other + b"END:VCALENDAR"))
    assert (remote.uid, remote.fields["title"], remote.fields["overrides"]) == ("hub-1@example", "First", [])


def test_an_all_day_series_keeps_its_days_across_the_clock_change() -> None:
    start = datetime(2026, 10, 19, tzinfo=UTC)  # all-day: midnight UTC of the day, whatever the zone
    starts = list(times.occurrence_starts("FREQ=WEEKLY;COUNT=3", start, "Europe/Amsterdam", True))
    assert starts == [start, start + timedelta(weeks=1), start + timedelta(weeks=2)]


def _outlook_zone(offset: str) -> str:
    """Outlook's VTIMEZONE for "W. Europe Standard Time", with ``offset`` as its winter time (an
    honest one says +0100; a hostile or broken one anything)."""
    return (
        "BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n"
        f"BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:{offset}\r\n"
        "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n"
        f"BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:{offset}\r\nTZOFFSETTO:+0200\r\n"
        "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
    )


OUTLOOK_START = [
    "DTSTART;TZID=W. Europe Standard Time:20261207T100000",
    "DTEND;TZID=W. Europe Standard Time:20261207T110000",
]


def test_one_calendars_time_zone_never_moves_another_calendars_appointments() -> None:
    # icalendar keeps a VTIMEZONE whose name the zone database does not know for the whole process,
    # the first one read winning: one invitation saying "W. Europe Standard Time" is +14:00 moved
    # every Outlook appointment read after it (hub.ical_reading).
    hostile = _fields(_event(OUTLOOK_START, uid="hostile@example", extra=_outlook_zone("+1400")))
    assert hostile["start"] == "2026-12-06T20:00:00+00:00"  # its own event, on its own (wrong) clock
    # The next calendar naming that zone without defining it: the zone database's (Europe/Berlin).
    plain = _fields(_event(OUTLOOK_START, uid="plain@example"))
    assert plain["start"] == "2026-12-07T09:00:00+00:00" and plain["tzid"] == "Europe/Berlin"
    # One that defines it honestly: its own definition, not the hostile one read before it.
    _fields(_event(OUTLOOK_START, uid="hostile-2@example", extra=_outlook_zone("+1400")))
    honest = _fields(_event(OUTLOOK_START, uid="honest@example", extra=_outlook_zone("+0100")))
    assert honest["start"] == "2026-12-07T09:00:00+00:00"


def test_an_invitation_in_mail_is_read_with_its_own_time_zone_only() -> None:
    from hub.mail.parse import parse_message

    def invitation(ics: bytes) -> bytes:
        return b"From: anna@bakker.example\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n" + ics + b"\r\n"

    hostile = _event([*OUTLOOK_START, "SUMMARY:x"], uid="mail-hostile@example", extra=_outlook_zone("+1400"))
    assert parse_message(invitation(hostile)).kind == "invitation"
    plain = parse_message(invitation(_event([*OUTLOOK_START, "SUMMARY:y"], uid="mail-plain@example")))
    assert plain.kind == "invitation"
    assert plain.details["start"] == "2026-12-07T09:00:00Z"


def test_outlooks_own_zone_definition_repeats_by_its_iana_zone() -> None:
    # Outlook sends a VTIMEZONE for its Microsoft name: a private zone to icalendar, with no rules
    # hub can repeat a series by. The name's IANA zone is kept instead of the appointment default.
    pacific = (
        "BEGIN:VTIMEZONE\r\nTZID:Pacific Standard Time\r\n"
        "BEGIN:STANDARD\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:-0700\r\nTZOFFSETTO:-0800\r\n"
        "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11\r\nEND:STANDARD\r\n"
        "BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:-0800\r\nTZOFFSETTO:-0700\r\n"
        "RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
    )
    fields = _fields(
        _event(
            [
                "DTSTART;TZID=Pacific Standard Time:20261207T100000",
                "DTEND;TZID=Pacific Standard Time:20261207T110000",
                "RRULE:FREQ=WEEKLY;COUNT=3",
            ],
            uid="pacific@example",
            extra=pacific,
        )
    )
    assert fields["tzid"] == "America/Los_Angeles"
    assert fields["start"] == "2026-12-07T18:00:00+00:00"
    honest = _fields(_event(OUTLOOK_START, uid="honest-outlook@example", extra=_outlook_zone("+0100")))
    assert honest["tzid"] == "Europe/Berlin" and honest["start"] == "2026-12-07T09:00:00+00:00"
