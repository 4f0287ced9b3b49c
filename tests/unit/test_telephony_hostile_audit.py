"""Call records as a broken PBX, a crash or an attacker writes them: every bad row is a rejected row
with its reason (never an exception that stops the import), and what comes out fits the database."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.i18n import english
from hub.telephony.formats import generic_leg, parse_stream, twilio_leg
from hub.telephony.records import (
    MAX_CALL_SECONDS,
    MAX_KEY,
    MAX_RECORD_BYTES,
    Leg,
    Reject,
    Rejected,
    SourceConfig,
    recording_url,
)

GOOD_UID = "1741083302.18"


def master_row(uid: str = GOOD_UID, *, start: str = "2025-03-04 10:15:02", duration: str = "219") -> str:
    """An 18-column cdr_csv row (answered, 0612345678 calling extension 100)."""
    return (
        f'"","0612345678","100","from-trunk","""Müller"" <0612345678>","PJSIP/trunk-1","PJSIP/100-2","Dial","",'
        f'"{start}","2025-03-04 10:15:09","2025-03-04 10:18:41",{duration},212,"ANSWERED","DOCUMENTATION","{uid}",""\n'
    )


def items(fmt: str, data: bytes, **config: object) -> list[Leg | Rejected]:
    source = SourceConfig(format=fmt, timezone="Europe/Amsterdam", **config)  # type: ignore[arg-type]
    found = [item.result for item in parse_stream(io.BytesIO(data), source)]
    # The reference reader (record by record) reads every hostile file the same way.
    slow = [item.result for item in parse_stream(io.BytesIO(data), source, by_line=False)]
    assert [type(r) for r in slow] == [type(r) for r in found]
    return found


def reasons(results: list[Leg | Rejected]) -> list[str]:
    return [english(r.reason) for r in results if isinstance(r, Rejected)]


def legs(results: list[Leg | Rejected]) -> list[Leg]:
    return [r for r in results if isinstance(r, Leg)]


def test_absurd_durations_reject_their_row_and_the_rest_is_read() -> None:
    rows = [master_row(f"1741083302.{n}", duration=d) for n, d in enumerate(["inf", "1e400", "9" * 20, "-5", "nan"])]
    rows.append(master_row("1741083302.9", duration=str(MAX_CALL_SECONDS + 1)))
    rows.append(master_row("1741083302.99"))
    results = items("asterisk-csv", "".join(rows).encode())
    assert len(results) == 7
    assert [leg.key for leg in legs(results)] == ["1741083302.3", "1741083302.99"]  # -5: the times decide
    assert all(reason.startswith("bad duration") for reason in reasons(results)), reasons(results)
    threecx = (
        "Call 612504,00000C21DE5C2470_6531,99999999999:00:00,2023/09/19 13:33:54,2023/09/19 13:33:54,"
        "2023/09/19 13:39:31,TerminatedBySrc,+353861777149,Ext.960,10021,960,960,,Ext.504,504,,,,,Chain: x;\n"
    )
    assert reasons(items("3cx", threecx.encode())) == ["bad duration: 99999999999:00:00"]
    config = SourceConfig(format="generic-csv")
    for duration in (float("inf"), 10**30, 10**12):
        try:
            generic_leg(
                {"call_id": "c1", "from": "+31612345678", "start": "2025-03-04T10:00:00Z", "duration": duration}, config
            )
        except Reject as exc:
            assert english(str(exc)).startswith("bad duration")
        else:
            raise AssertionError(duration)


def test_moments_no_calendar_holds_reject_their_row() -> None:
    rows = [
        master_row("1741083302.1", start="0001-01-01 00:00:00"),  # before UTC's year 1 in Amsterdam
        master_row("1741083302.2", start="9999999999999"),  # epoch seconds of the year 318857
        master_row("1741083302.3", start="1900-01-01 00:00:00"),  # a PBX whose clock was never set
        master_row("1741083302.4"),
    ]
    results = items("asterisk-csv", "".join(rows).encode())
    assert [leg.key for leg in legs(results)] == ["1741083302.4"]
    assert all(reason.startswith("bad date") for reason in reasons(results)), reasons(results)
    cel = (
        '"CHAN_START","99999999999999.5","J","+33612345678","+33612345678","","0187654321","0187654321",'
        '"from-trunk","PJSIP/trunk-1","","","3","","17.18","17.18","","","",""\n'
    )
    assert reasons(items("asterisk-cel", cel.encode())) == ["bad date: 99999999999999.5"]
    config = SourceConfig(format="generic-csv")
    for start in (10**13, "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"):
        try:
            generic_leg({"call_id": "c1", "from": "+31612345678", "start": start}, config)
        except Reject as exc:
            assert english(str(exc)).startswith("bad date"), exc
        else:
            raise AssertionError(start)
    twilio = {"CallSid": "CA1", "From": "+31612345678", "To": "+3120", "Direction": "inbound"}
    try:
        twilio_leg({**twilio, "CallStatus": "completed", "CallDuration": "5", "Timestamp": "99999999999999"}, config)
    except Reject as exc:
        assert english(str(exc)).startswith("bad date")
    else:
        raise AssertionError("a Timestamp of the year 3170843")


def test_a_nul_run_left_by_a_crash_costs_no_row() -> None:
    """After a power cut a file system may leave a block of NUL bytes where the PBX was writing:
    they are no part of any record (no PBX writes them), so the record after them is read."""
    data = master_row("1741083302.1").encode() + b"\x00" * 4096 + master_row("1741083302.2").encode()
    results = items("asterisk-csv", data)
    assert [leg.key for leg in legs(results)] == ["1741083302.1", "1741083302.2"], results
    nul_inside = master_row("17410833\x0002.3").replace("PJSIP/100-2", "PJSIP/1\x0000-2").encode()
    (leg,) = legs(items("asterisk-csv", nul_inside))
    assert (leg.key, leg.extension) == ("1741083302.3", "100")


def test_keys_and_recordings_fit_the_database_and_a_page() -> None:
    config = SourceConfig(format="generic-csv")
    base = {"from": "+31612345678", "to": "100", "start": "2025-03-04T10:15:02Z"}
    too_long = "x" * (MAX_KEY + 1)
    for row in ({"call_id": too_long}, {"call_id": "c1", "parent_id": too_long}, {"call_id": "\x00\u200b"}):
        try:
            generic_leg({**base, **row}, config)
        except Reject as exc:
            assert "call id" in english(str(exc)), exc
        else:
            raise AssertionError(row)
    leg = generic_leg(
        {**base, "call_id": "c\x001", "extension": "1\x0000", "recording_url": "javascript:alert(1)"}, config
    )
    assert (leg.key, leg.extension, leg.recording_url) == ("c1", "100", "")
    assert recording_url("https://pbx.example.nl/rec/1.wav") == "https://pbx.example.nl/rec/1.wav"
    assert recording_url("out-100-0612345678-20250304-101502.wav") == "out-100-0612345678-20250304-101502.wav"
    for bad in (
        "JavaScript:alert(1)",
        " data:text/html,<script>",
        "vbscript:x",
        "//evil.example/x",
        "https://" + "a" * 1000,
    ):
        assert recording_url(bad) == "", bad
    sid = {"CallSid": "CA\x001", "From": "+31612345678", "To": "+31201234567", "Direction": "inbound"}
    assert twilio_leg({**sid, "CallStatus": "ringing"}, SourceConfig(format="twilio")).key == "CA1"


def test_json_nested_beyond_any_cdr_is_a_rejected_record() -> None:
    for data in (b"[" * 100_000 + b"]" * 100_000, b'{"variables":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_001):
        results = [item.result for item in parse_stream(io.BytesIO(data), SourceConfig(format="freeswitch-json"))]
        assert len(results) == 1 and isinstance(results[0], Rejected), results


def test_utf16_and_cr_only_files_read_like_utf8_ones() -> None:
    """Windows PowerShell writes UTF-16 (``>``, Out-File); old Mac tools end lines with CR alone."""
    text = "\ufeff" + master_row("1741083302.1") + master_row("1741083302.2")
    expected = legs(items("asterisk-csv", text.encode("utf-8")))
    assert [leg.key for leg in expected] == ["1741083302.1", "1741083302.2"]
    for data in (text.encode("utf-16-le"), text.encode("utf-16-be"), text[1:].replace("\n", "\r").encode()):
        found = legs([item.result for item in parse_stream(io.BytesIO(data), SourceConfig("asterisk-csv"))])
        assert [(leg.key, leg.number) for leg in found] == [(leg.key, leg.number) for leg in expected]


_HOSTILE_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.text(alphabet="0123456789:.-e+", max_size=30),
)


@settings(max_examples=300, deadline=None)
@given(_HOSTILE_NUMBER, _HOSTILE_NUMBER, _HOSTILE_NUMBER)
def test_no_duration_or_moment_makes_a_parser_raise(duration: str, billsec: str, start: str) -> None:
    row = master_row(duration=duration).replace(",212,", f",{billsec},").replace('"2025-03-04 10:15:02"', f'"{start}"')
    data = (row + master_row("1741083302.99")).encode()
    results = items("asterisk-csv", data)
    assert len(results) == 2 and isinstance(results[1], Leg)
    for leg in legs(results):
        assert 0 <= leg.duration <= MAX_CALL_SECONDS and 0 <= leg.billsec <= MAX_CALL_SECONDS
        assert datetime(1970, 1, 1, tzinfo=UTC) <= leg.started_at
    body = json.dumps({"call_id": "c", "start": start, "duration": duration, "billsec": billsec})
    with contextlib.suppress(Reject):
        generic_leg(json.loads(body), SourceConfig(format="generic-csv"))


def test_twilio_client_and_sip_domain_calls_are_calls_not_unparsable_numbers() -> None:
    """A staff member's browser phone (``client:alice``) or SIP phone (``sip:alice@…``) calling out
    through a TwiML app is a leg Twilio calls "inbound"; "alice" is no caller's number."""
    config = SourceConfig(format="twilio", extensions=frozenset({"alice"}))
    done = {"CallStatus": "completed", "CallDuration": "30", "Timestamp": "Sat, 07 May 2022 14:30:14 +0000"}
    cases = {
        ("client:alice", "+31201234567", "inbound"): ("outbound", "+31201234567", "alice"),
        ("sip:alice@acme.sip.twilio.com", "sip:+31201234567@acme.sip.twilio.com", "inbound"): (
            "outbound",
            "+31201234567",
            "alice",
        ),
        ("+31201234567", "client:bob", "inbound"): ("inbound", "+31201234567", "bob"),
        ("client:alice", "client:bob", "inbound"): ("internal", "", "alice"),
        ("+3185000000", "client:bob", "outbound-api"): ("internal", "", "bob"),
        ("+3185000000", "+31201234567", "outbound-api"): ("outbound", "+31201234567", ""),
    }
    for (src, dst, direction), expected in cases.items():
        leg = twilio_leg({"CallSid": "CA1", "From": src, "To": dst, "Direction": direction, **done}, config)
        assert (leg.direction, leg.number, leg.extension) == expected, (src, dst)


def test_a_line_no_pbx_writes_is_rejected_unread_and_the_rows_around_it_are_read() -> None:
    """A 3 MB line (of commas: three million fields if it were split, or one open quote) is one
    rejected row, in every format; the rows before and after it are read."""
    limit = f"a record longer than {MAX_RECORD_BYTES} bytes"
    for monster in (b"x," * 1_500_000 + b"\n", b'"' + b"y" * 3_000_000 + b"\n", b" " * 3_000_000 + b"\n"):
        data = (master_row("1741083302.1") + "{}" + master_row("1741083302.2")).encode().replace(b"{}", monster)
        results = items("asterisk-csv", data)
        assert [leg.key for leg in legs(results)] == ["1741083302.1", "1741083302.2"]
        assert reasons(results) == [limit]
        for fmt in ("asterisk-cel", "3cx", "freeswitch-csv", "generic-csv"):
            found = [item.result for item in parse_stream(io.BytesIO(data), SourceConfig(fmt))]
            assert limit in reasons(found), fmt


def test_gzip_files_as_logrotate_leaves_them_are_read_unpacked() -> None:
    import gzip

    rows = [master_row(f"1741083302.{n}") for n in range(1, 6)]
    plain = "".join(rows).encode()
    expected = [leg.key for leg in legs(items("asterisk-csv", plain))]
    packed = gzip.compress(plain)
    both = gzip.compress("".join(rows[:2]).encode()) + gzip.compress("".join(rows[2:]).encode())  # cat a.gz b.gz
    utf16 = gzip.compress(("\ufeff" + "".join(rows)).encode("utf-16-le"))
    for data in (packed, both, utf16):
        assert [leg.key for leg in legs(items("asterisk-csv", data))] == expected
    cut = [item.result for item in parse_stream(io.BytesIO(packed[: len(packed) // 2]), SourceConfig("asterisk-csv"))]
    assert all(isinstance(r, Rejected) or r.key in expected for r in cut)  # what came before the cut
    bomb = gzip.compress(b"\n" * 50_000_000)
    try:
        list(parse_stream(io.BytesIO(bomb), SourceConfig("asterisk-csv")))
    except ValueError as exc:
        assert "unpacks to more than" in str(exc)
    else:
        raise AssertionError("a 50 MB file of newlines packed into 50 KB was unpacked")
