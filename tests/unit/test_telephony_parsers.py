"""Every format's parser on sample files written from the format descriptions (tests/telephony_samples),
the clock-change nights, a file still being written, and property tests: a parser never raises on a
row, and a row it writes back reads the same."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from hub.i18n import english
from hub.telephony import formats
from hub.telephony.formats import parse_stream
from hub.telephony.records import Clock, Leg, Rejected, SourceConfig, read_records
from hub.telephony.store import group_legs, merge

SAMPLES = Path(__file__).resolve().parents[1] / "telephony_samples"


def parse(name: str, fmt: str, tz: str = "UTC", **kwargs: object) -> tuple[list[Leg], list[Rejected]]:
    with (SAMPLES / name).open("rb") as stream:
        items = [i.result for i in parse_stream(stream, SourceConfig(format=fmt, timezone=tz, **kwargs))]  # type: ignore[arg-type]
    return [i for i in items if isinstance(i, Leg)], [i for i in items if isinstance(i, Rejected)]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_asterisk_cdr_csv_18_columns_in_local_time() -> None:
    legs, rejected = parse("asterisk_master_18.csv", "asterisk-csv", "Europe/Paris")
    assert rejected == []
    first, missed, busy = legs
    assert (first.key, first.direction, first.number, first.extension, first.outcome) == (
        "1741083302.18",
        "inbound",
        "+33612345678",
        "100",
        "answered",
    )
    assert (first.started_at, first.answered_at, first.ended_at) == (
        utc(2025, 3, 4, 9, 15, 2),
        utc(2025, 3, 4, 9, 15, 9),
        utc(2025, 3, 4, 9, 18, 41),
    )
    assert (first.duration, first.billsec) == (219, 212)
    assert (missed.outcome, missed.answered_at, missed.number) == ("missed", None, "0612345678")
    assert (busy.direction, busy.number, busy.extension, busy.outcome) == ("outbound", "0033145678901", "100", "busy")


def test_column_counts_crlf_embedded_newlines_and_bad_rows() -> None:
    legs, rejected = parse("asterisk_master_mixed_crlf.csv", "asterisk-csv", "Europe/Amsterdam")
    assert [(r.line, english(r.reason).split(":")[0]) for r in rejected] == [(5, "bad date"), (6, "wrong column count")]
    queue_a, queue_b, anonymous, internal, multiline = legs
    # 21 columns: two queue legs of one call share the linkedid
    assert queue_a.group == queue_b.group == "1741089600.30"
    assert (queue_a.extension, queue_b.extension) == ("201", "202")
    assert anonymous.key.startswith("h:") and anonymous.number == "anonymous"  # 16 columns: no uniqueid
    assert (internal.direction, internal.number) == ("internal", "")
    assert multiline.line == 7 and multiline.number == "+31 20 765 4321"
    call = group_legs(legs)["1741089600.30"]
    assert (call["outcome"], call["extension"], call["legs"]) == ("answered", "202", 2)


def test_cdr_custom_with_bom_and_latin1() -> None:
    legs, rejected = parse("asterisk_custom_bom.csv", "asterisk-custom", "Europe/Amsterdam")
    assert rejected == []
    assert [leg.key for leg in legs] == ["1741083302.18", "1741086000.5"]
    assert legs[1].outcome == "missed"


def test_cel_events_of_interleaved_calls_become_legs_of_their_own_calls() -> None:
    legs, rejected = parse("asterisk_cel.csv", "asterisk-cel")
    assert rejected == []
    calls = group_legs(legs)
    assert set(calls) == {"1741083302.18", "1741083303.30"}
    answered = calls["1741083302.18"]
    assert (answered["direction"], answered["number"], answered["outcome"], answered["extension"]) == (
        "inbound",
        "+33612345678",
        "answered",
        "100",
    )
    assert answered["answered_at"] == datetime.fromtimestamp(1741083309.40122, UTC)
    assert calls["1741083303.30"]["outcome"] == "missed"


def test_freeswitch_csv_templates_and_unescaped_quotes() -> None:
    legs, rejected = parse("freeswitch_example.csv", "freeswitch-csv")
    assert rejected == []
    assert [leg.outcome for leg in legs] == ["answered", "missed", "answered"]
    assert legs[2].number == "0612345678"  # the row with "Jean "JD" Dupont"
    legs, rejected = parse("freeswitch_default.csv", "freeswitch-csv")  # 13 fields, a space before the last
    assert rejected == [] and [leg.outcome for leg in legs] == ["answered", "busy"]


def test_freeswitch_json_a_and_b_leg_are_one_call() -> None:
    a_legs, _ = parse("freeswitch_a_leg.cdr.json", "freeswitch-json")
    b_legs, _ = parse("freeswitch_b_leg.cdr.json", "freeswitch-json")
    assert a_legs[0].number == "+33612345678"  # URL-encoded values decoded
    assert b_legs[0].group == a_legs[0].key and b_legs[0].direction is None
    calls = group_legs(a_legs + b_legs)
    assert list(calls) == [a_legs[0].key]
    assert calls[a_legs[0].key]["extension"] == "100"


def test_threecx_tcp_feed() -> None:
    legs, rejected = parse("threecx_cdr.log", "3cx")
    assert rejected == []
    queue, missed, outbound = legs
    assert (queue.key, queue.number, queue.extension, queue.outcome) == ("612504", "+353861777149", "504", "answered")
    assert (missed.outcome, missed.extension) == ("missed", "800")
    assert (outbound.direction, outbound.number, outbound.extension) == ("outbound", "0612345678", "504")


def test_twilio_callbacks_out_of_order_merge_to_the_same_call() -> None:
    legs, rejected = parse("twilio_callbacks.txt", "twilio")
    assert rejected == []
    ringing, no_answer = legs[1], legs[2]
    forward = group_legs([ringing, no_answer])[ringing.group]
    backward = group_legs([no_answer, ringing])[ringing.group]
    assert forward == backward
    assert forward["outcome"] == "missed" and forward["number"] == "622180602341"


def test_generic_csv_with_header() -> None:
    legs, rejected = parse("generic.csv", "generic-csv", "Europe/Amsterdam")
    assert [(r.line, english(r.reason)) for r in rejected] == [(4, "bad date: not a date")]
    assert legs[0].started_at == utc(2025, 3, 4, 9, 0)
    assert (legs[1].direction, legs[1].number) == ("outbound", "0031612345678")


def test_the_night_clocks_go_back_and_forward() -> None:
    legs, rejected = parse("asterisk_dst_amsterdam.csv", "asterisk-csv", "Europe/Amsterdam")
    assert rejected == []
    first, second, spring = legs[:3]
    # 02:30 and 02:10 both happen twice on 26 October: the epoch in the uniqueid decides
    assert first.started_at == utc(2025, 10, 26, 0, 30)
    assert second.started_at == utc(2025, 10, 26, 1, 10)
    # 30 March: 01:59:30 to 03:00:30 is one minute, not an hour and a minute
    assert spring.duration == 60 and spring.ended_at == utc(2025, 3, 30, 1, 0, 30)
    for leg in legs:
        assert leg.ended_at is not None and 0 <= (leg.ended_at - leg.started_at).total_seconds() < 3600


def test_without_uniqueid_the_file_order_decides_the_repeated_hour() -> None:
    rows = (
        '"","+31201234567","100","from-trunk","A","PJSIP/t-1","PJSIP/100-2","Dial","x","2025-10-26 02:50:00",'
        '"2025-10-26 02:50:10","2025-10-26 02:55:00",300,290,"ANSWERED","DOCUMENTATION"\n'
        '"","+31201234567","100","from-trunk","A","PJSIP/t-3","PJSIP/100-4","Dial","x","2025-10-26 02:05:00",'
        '"2025-10-26 02:05:10","2025-10-26 02:06:00",60,50,"ANSWERED","DOCUMENTATION"\n'
    )
    items = list(parse_stream(io.BytesIO(rows.encode()), SourceConfig("asterisk-csv", timezone="Europe/Amsterdam")))
    starts = [i.result.started_at for i in items if isinstance(i.result, Leg)]
    assert starts == [utc(2025, 10, 26, 0, 50), utc(2025, 10, 26, 1, 5)]


def test_a_file_still_being_written_is_read_up_to_its_last_complete_record() -> None:
    whole = (SAMPLES / "asterisk_master_18.csv").read_bytes()
    cut = whole.index(b"\n", whole.index(b"\n") + 1) + 40  # the third record half written
    stream = io.BytesIO(whole[:cut])
    items = list(parse_stream(stream, SourceConfig("asterisk-csv"), final=False))
    assert len(items) == 2
    resume = items[-1].end
    stream = io.BytesIO(whole)
    rest = list(parse_stream(stream, SourceConfig("asterisk-csv"), offset=resume, line=items[-1].next_line))
    assert [(i.result.line, i.result.key) for i in rest if isinstance(i.result, Leg)] == [(3, "1741086130.22")]


def test_a_truncated_last_record_is_reported_as_truncated() -> None:
    whole = (SAMPLES / "asterisk_master_18.csv").read_bytes()
    items = list(parse_stream(io.BytesIO(whole[:-120]), SourceConfig("asterisk-csv")))
    assert isinstance(items[-1].result, Rejected) and "truncated" in items[-1].result.reason


_FIELD = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(_FIELD, min_size=1, max_size=22), max_size=5),
    st.sampled_from(
        ["asterisk-csv", "asterisk-custom", "asterisk-cel", "freeswitch-csv", "3cx", "twilio", "generic-csv"]
    ),
)
def test_parsers_never_raise_on_garbage_and_every_row_is_accounted_for(rows: list[list[str]], fmt: str) -> None:
    text = "\n".join(",".join('"' + f.replace('"', '""') + '"' for f in row) for row in rows) + "\n"
    config = SourceConfig(fmt, fields=("call_id", "start") if fmt == "generic-csv" else ())
    items = list(parse_stream(io.BytesIO(text.encode()), config))
    for item in items:
        assert isinstance(item.result, (Leg, Rejected))


_DIGITS = st.text(alphabet="0123456789", min_size=9, max_size=10)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            _DIGITS,
            st.integers(min_value=1_700_000_000, max_value=1_800_000_000),
            st.integers(min_value=0, max_value=7200),
            st.integers(min_value=0, max_value=7200),
            st.sampled_from(["ANSWERED", "NO ANSWER", "BUSY", "FAILED"]),
            st.sampled_from([16, 17, 18, 21]),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_asterisk_rows_read_back_as_written(rows: list[tuple[str, int, int, int, str, int]]) -> None:
    lines = []
    for n, (src, epoch, duration, billsec, disposition, columns) in enumerate(rows):
        billsec = min(billsec, duration) if disposition == "ANSWERED" else 0
        start = datetime.fromtimestamp(epoch, UTC)
        fields = [
            '""',
            f'"0{src}"',
            '"100"',
            '"from-trunk"',
            '""',
            '"PJSIP/t-1"',
            '"PJSIP/100-2"',
            '"Dial"',
            '""',
            f'"{start:%Y-%m-%d %H:%M:%S}"',
            "",
            f'"{start:%Y-%m-%d %H:%M:%S}"',
            str(duration),
            str(billsec),
            f'"{disposition}"',
            '"DOCUMENTATION"',
            f'"{epoch}.{n}"',
            '""',
            '""',
            f'"{epoch}.{n}"',
            str(n),
        ]
        lines.append(",".join(fields[:columns]))
    items = list(parse_stream(io.BytesIO(("\r\n".join(lines) + "\r\n").encode()), SourceConfig("asterisk-csv")))
    legs = [i.result for i in items]
    assert all(isinstance(leg, Leg) for leg in legs), legs
    for leg, (_src, epoch, duration, _billsec, disposition, _c) in zip(legs, rows, strict=True):
        assert isinstance(leg, Leg)
        assert leg.started_at == datetime.fromtimestamp(epoch, UTC)
        assert leg.duration == duration
        assert (leg.outcome == "answered") == (disposition == "ANSWERED")


@settings(max_examples=200, deadline=None)
@given(st.permutations(list(range(4))), st.integers(min_value=1, max_value=3))
def test_merging_legs_does_not_depend_on_order_or_repetition(order: list[int], repeat: int) -> None:
    legs = [
        Leg(
            "a",
            "g",
            utc(2025, 1, 1, 10, 0),
            "inbound",
            "+31201234567",
            None,
            utc(2025, 1, 1, 10, 1),
            60,
            0,
            "missed",
            "201",
        ),
        Leg(
            "b",
            "g",
            utc(2025, 1, 1, 10, 0, 1),
            None,
            "",
            utc(2025, 1, 1, 10, 0, 9),
            utc(2025, 1, 1, 10, 3),
            179,
            171,
            "answered",
            "202",
        ),
        Leg("c", "g", utc(2025, 1, 1, 10, 0, 2), None, "", None, utc(2025, 1, 1, 10, 0, 20), 18, 0, "busy", "203"),
        Leg("d", "g", utc(2025, 1, 1, 10, 0), "inbound", "+31201234567", None, utc(2025, 1, 1, 10, 3), 180, 0, "", ""),
    ]
    once = group_legs(legs)["g"]
    stored = group_legs([legs[i] for i in order])["g"]
    for _ in range(repeat):  # the same legs arriving again (a retried webhook, a re-imported file)
        stored = merge(stored, group_legs([legs[i] for i in order])["g"], legs="max")
    keys = set(once) - {"legs"}
    assert {k: stored[k] for k in keys} == {k: once[k] for k in keys}
    assert (once["outcome"], once["extension"], once["duration"]) == ("answered", "202", 180)


def test_records_join_lines_only_inside_quotes() -> None:
    data = b'"a","b\nc"\n"d","e"\r\n'
    assert [(r.line, r.text) for r in read_records(io.BytesIO(data))] == [(1, '"a","b\nc"'), (3, '"d","e"')]


# --- the line reader (a chunk of lines through one CSV reader) reads what read_records reads ----------


def _both(data: bytes, config: SourceConfig, **kwargs: object) -> tuple[list[object], list[object]]:
    fast = list(parse_stream(io.BytesIO(data), config, **kwargs))  # type: ignore[arg-type]
    reference = list(parse_stream(io.BytesIO(data), config, by_line=False, **kwargs))  # type: ignore[arg-type]
    return fast, reference


def test_the_line_reader_reads_the_sample_files_as_read_records_does() -> None:
    for name, fmt, tz in [
        ("asterisk_master_18.csv", "asterisk-csv", "Europe/Paris"),
        ("asterisk_master_mixed_crlf.csv", "asterisk-csv", "Europe/Amsterdam"),
        ("asterisk_dst_amsterdam.csv", "asterisk-csv", "Europe/Amsterdam"),
        ("asterisk_custom_bom.csv", "asterisk-custom", "Europe/Paris"),
    ]:
        fast, reference = _both((SAMPLES / name).read_bytes(), SourceConfig(fmt, timezone=tz))
        assert fast == reference, name


_GOOD_ROW = (
    '"","+31201234567","100","from-trunk","""Jan"" <+31201234567>","PJSIP/trunk-1","PJSIP/100-2","Dial",'
    '"PJSIP/100,30","2025-03-04 10:15:02","2025-03-04 10:15:09","2025-03-04 10:18:41",219,212,"ANSWERED",'
    '"DOCUMENTATION","1741083302.18",""'
)
# bare (unquoted) first and last fields: a line that neither starts nor ends with a quote
_BARE = _GOOD_ROW[2:] + ',"peer","1741083302.18",3'
_ODD_LINES = [
    _GOOD_ROW,
    _GOOD_ROW.replace("1741083302.18", "1741083302.19").replace("+31201234567", "0612345678"),
    _GOOD_ROW.replace('"ANSWERED"', '"NO ANSWER"').replace('"2025-03-04 10:15:09"', ""),
    _GOOD_ROW.replace('"DOCUMENTATION",', ""),  # 17 columns
    _GOOD_ROW.replace('"DOCUMENTATION","1741083302.18",""', '"DOCUMENTATION"'),  # 16: no uniqueid
    _GOOD_ROW + ',"peer","1741083302.18","3"',  # 21 columns
    _GOOD_ROW.replace("2025-03-04 10:15:02", "yesterday"),  # bad date
    _GOOD_ROW.replace(',"DOCUMENTATION"', ""),  # 17 columns, other shape
    '"a","b"',  # wrong column count
    "",  # blank
    "   ",
    _GOOD_ROW.replace('"Dial"', '"Di\nal"'),  # an embedded newline
    _GOOD_ROW.replace('"Dial"', '"Di"al"'),  # an unescaped quote
    _GOOD_ROW.replace('"Dial"', '"Di""al'),  # a quote left open
    _GOOD_ROW.replace("Jan", "José Müller"),
    _GOOD_ROW.replace("Jan", "Jos\udce9"),  # Latin-1 é (written as a raw byte below)
    _GOOD_ROW.replace("Jan", "J\ran"),  # a lone carriage return
    _GOOD_ROW.replace(',"100",', ', "100" ,'),  # a stray space around a field
    _GOOD_ROW.replace("+31201234567", "+31 20 ab"),  # an unparsable number
    "\ufeff" + _GOOD_ROW,  # a byte order mark in the middle of a file
    _BARE,
    _BARE.replace('"Dial"', '"Di"al"'),
    _BARE.replace('"Dial"', 'Di"al'),
    _BARE.replace('"Dial"', '"Di\nal"'),
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(_ODD_LINES))), max_size=14),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.integers(min_value=0, max_value=400),
    st.booleans(),
    st.sampled_from([7, 64, 333, 1 << 20]),
    st.sampled_from(["UTC", "Europe/Amsterdam"]),
)
def test_the_line_reader_reads_odd_files_as_read_records_does(
    picks: list[int], newline: str, bom: bool, cut: int, final: bool, chunk: int, tz: str
) -> None:
    """Any mix of good and odd lines, CRLF or LF, with or without BOM, a file cut anywhere (still
    being written or truncated), read in chunks of any size: the same legs, rejected rows, line
    numbers and offsets as the record-by-record reader."""
    text = newline.join(_ODD_LINES[i] for i in picks) + newline
    data = text.encode("utf-8", "surrogateescape")
    data = (b"\xef\xbb\xbf" if bom else b"") + data
    data = data[: max(len(data) - cut, 0)]
    previous = formats.LINE_CHUNK
    formats.LINE_CHUNK = chunk
    try:
        fast, reference = _both(data, SourceConfig("asterisk-csv", timezone=tz), final=final)
    finally:
        formats.LINE_CHUNK = previous
    assert fast == reference


def test_the_line_reader_resumes_at_an_offset_as_read_records_does() -> None:
    whole = (SAMPLES / "asterisk_master_mixed_crlf.csv").read_bytes()
    first = list(parse_stream(io.BytesIO(whole), SourceConfig("asterisk-csv")))
    for item in first:
        fast, reference = _both(whole, SourceConfig("asterisk-csv"), offset=item.end, line=item.next_line)
        assert fast == reference


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2027, 12, 31)),
    st.sampled_from(["Europe/Amsterdam", "Europe/Brussels", "America/St_Johns", "Australia/Lord_Howe", "Asia/Kolkata"]),
    st.sampled_from([0, 1, 2, 3, 4, 5]),
)
@example(datetime(2025, 4, 6, 1, 45), "Australia/Lord_Howe", 0)  # 01:30-02:00 happens twice
@example(datetime(2025, 4, 6, 1, 15), "Australia/Lord_Howe", 4)
@example(datetime(2025, 10, 5, 2, 15), "Australia/Lord_Howe", 0)  # 02:00-02:30 does not exist
@example(datetime(2025, 10, 26, 2, 30), "Europe/Amsterdam", 0)
@example(datetime(2025, 3, 30, 2, 30), "Europe/Amsterdam", 3)
def test_the_clock_reads_local_times_as_the_zone_does(moment: datetime, zone: str, step: int) -> None:
    """The offsets kept per local hour give what the zone itself gives, also in the hours clocks
    change (Lord Howe changes by half an hour, at 02:00; St John's is 3½ hours behind UTC)."""
    from zoneinfo import ZoneInfo

    clock = Clock(zone)
    # Near a change the hour's first and last minutes matter: move onto them now and then.
    moment = [moment, moment.replace(minute=0, second=0), moment.replace(minute=59, second=59)][step % 3]
    if step > 2:
        clock.to_utc(moment.replace(minute=(moment.minute + 17) % 60))  # the hour is cached already
    tz = ZoneInfo(zone)
    assert clock._readings(moment) == (
        moment.replace(tzinfo=tz, fold=0).astimezone(UTC),
        moment.replace(tzinfo=tz, fold=1).astimezone(UTC),
    )


@settings(max_examples=100, deadline=None)
@given(
    st.permutations(list(range(19))),
    st.integers(min_value=0, max_value=18),
    st.lists(st.sampled_from(range(len(_ODD_LINES))), max_size=6),
)
def test_the_line_reader_reads_an_admins_field_order_as_read_records_does(
    order: list[int], twice: int, picks: list[int]
) -> None:
    """cdr_custom with the fields in any order (one of them named twice: the last one counts, as in a
    dict), rows of the sample mapping and odd lines: the same legs either way."""
    from hub.telephony.formats import ASTERISK_CUSTOM

    names = [ASTERISK_CUSTOM[i] for i in order]
    sample = (SAMPLES / "asterisk_custom_bom.csv").read_bytes()[3:].decode("latin-1").splitlines()
    rows = []
    for fields in csv.reader(sample):  # the sample's rows rewritten in the admin's order
        value = dict(zip(ASTERISK_CUSTOM, fields, strict=True))
        rows.append([value[name] for name in names])
    # One name twice: the field in its first place holds what the name there held before.
    replaced, names[twice] = names[twice], names[(twice + 1) % len(names)]
    assert replaced != names[twice]
    text = "\n".join(",".join(f'"{f}"' for f in row) for row in rows) + "\n"
    odd = "\n".join(_ODD_LINES[i] for i in picks).encode("utf-8", "surrogateescape")
    fast, reference = _both(text.encode("latin-1") + odd + b"\n", SourceConfig("asterisk-custom", fields=tuple(names)))
    assert fast == reference


def test_generic_csv_from_a_spreadsheet_with_semicolons_or_tabs() -> None:
    """Dutch Excel and Dutch providers' portals separate columns with semicolons (the comma is the
    decimal sign); "Unicode text" with tabs. Before, such a file was one column per row: every
    row was rejected for its column count."""
    sample = (SAMPLES / "generic.csv").read_text()
    comma, _ = parse("generic.csv", "generic-csv", "Europe/Amsterdam")
    for delimiter in (";", "\t"):
        rows = sample.replace(",", delimiter).splitlines()
        rows[1] = rows[1].replace("answered", '"answered"')  # a quoted field stays one field
        data = ("\r\n".join(rows) + "\r\n").encode()
        config = SourceConfig("generic-csv", timezone="Europe/Amsterdam")
        items = [i.result for i in parse_stream(io.BytesIO(data), config)]
        legs = [i for i in items if isinstance(i, Leg)]
        rejected = [i for i in items if isinstance(i, Rejected)]
        assert [(r.line, english(r.reason)) for r in rejected] == [(4, "bad date: not a date")]
        assert [(leg.key, leg.started_at, leg.number, leg.outcome) for leg in legs] == [
            (leg.key, leg.started_at, leg.number, leg.outcome) for leg in comma
        ]
        # read on from a cursor (a drop folder), the later rows keep the header's delimiter
        second = data.index(b"\r\n", data.index(b"g-1")) + 2
        later = [i.result for i in parse_stream(io.BytesIO(data), config, offset=second, line=3)]
        assert [leg.key for leg in later if isinstance(leg, Leg)] == ["g-2"]
