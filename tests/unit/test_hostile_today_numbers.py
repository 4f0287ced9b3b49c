# ruff: noqa: RUF001 - the digits and marks of other scripts are what these tests are about
"""Hostile numbers and lines for the calls import's new number shortcut and line reader: what a
PBX, a copy from a web page or a Windows phone field writes (other digits, invisible marks, other
dashes, a NUL), compared with what phonenumbers' full parse says; and odd Asterisk CSV lines (NUL
bytes, other line separators, a megabyte line, Latin-1, a BOM mid-file) read in chunks of any size
as the record-by-record reader reads them."""

from __future__ import annotations

import io

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.telephony import formats
from hub.telephony.formats import SourceConfig, parse_stream
from hub.telephony.numbers import NumberBook, normalise


def _full_parse(raw: str, region: str = "NL") -> str | None:
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(parsed, 0) if phonenumbers.is_valid_number(parsed) else None


WRITTEN = [
    "+31 (0)20-1234567 ext. 12",
    "tel:+31201234567",
    "tel:+31-20-123-4567;ext=12",
    "020 123 4567 x12",
    "0201234567#12",
    "０２０１２３４５６７",  # full-width digits
    "+３１ ２０ １２３ ４５６７",
    "００３１２０１２３４５６７",
    "٠٢٠١٢٣٤٥٦٧",  # Arabic-Indic digits
    "۰۲۰۱۲۳۴۵۶۷",  # Eastern Arabic-Indic (Persian) digits
    "𝟎𝟐𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕",  # mathematical digits
    "+31\u00a020\u00a01234567",  # no-break spaces
    "+31\u200b201234567",  # a zero-width space (copied from a web page)
    "020\u20111234567",  # a non-breaking hyphen (a word processor)
    "020\u20131234567",  # an en dash
    "\u202d+31 20 1234567\u202c",  # bidi marks: Windows' phone fields add them on copy
    "\u200e+31201234567",  # a left-to-right mark
    "\u2066+31 20 1234567\u2069",  # bidi isolates (what a right-to-left page wraps a number in)
    "\u2068020 123 4567\u2069",
    "\u061c+31201234567",  # the Arabic letter mark
    "+31201234567\x00",  # a NUL after the number (a C string's padding)
    "\ufeff0201234567",  # a byte order mark glued to the field
    "+31 20 123 45 67",
    "06-12345678",
    "+44 (0) 20 7946 0958",
]


@pytest.mark.parametrize("raw", WRITTEN)
def test_written_forms_read_as_phonenumbers_reads_them(raw: str) -> None:
    expected = _full_parse(raw)
    assert expected is not None, raw  # every form above is a valid number to phonenumbers
    assert normalise(raw) == expected
    # The shortcut, whether or not the candidate is a stored contact number.
    for stored in (lambda c: c, lambda c: ()):
        assert NumberBook().resolve([raw], stored)[raw] == expected


@pytest.mark.parametrize(
    ("raw", "strip", "expected"),
    [
        ("９ ０６１２３４５６７８", ("9",), "+31612345678"),  # a route prefix in full-width digits
        ("٩٠٦١٢٣٤٥٦٧٨", ("9",), "+31612345678"),
        ("９００３１２０１２３４５６７", ("9",), "+31201234567"),
    ],
)
def test_a_route_prefix_in_other_digits_is_stripped_too(raw: str, strip: tuple[str, ...], expected: str) -> None:
    assert normalise(raw, "NL", strip) == expected
    assert NumberBook("NL", strip).resolve([raw], lambda c: c)[raw] == expected


@pytest.mark.parametrize(
    "raw",
    [
        "１００１",
        "١٠٠١",
        "²⁰¹²³⁴⁵⁶⁷⁸",
        "\u200b",
        "\x00",
        "anonymous\x00",
        "+",
        "tel:",
        "0" * 40 + "201234567",
        "9" * 400,
    ],
)
def test_extensions_and_nonsense_in_other_scripts_stay_unmatched(raw: str) -> None:
    assert normalise(raw) is None
    assert NumberBook().resolve([raw], lambda c: c)[raw] is None


# --- the line reader -------------------------------------------------------------------------------

_ROW = (
    '"","+31201234567","100","from-trunk","""Jan"" <+31201234567>","PJSIP/trunk-1","PJSIP/100-2","Dial",'
    '"PJSIP/100,30","2025-03-04 10:15:02","2025-03-04 10:15:09","2025-03-04 10:18:41",219,212,"ANSWERED",'
    '"DOCUMENTATION","1741083302.18",""'
)
_HOSTILE_LINES = [
    _ROW,
    _ROW.replace("Jan", "J\x00an"),  # a NUL byte in a quoted field
    _ROW.replace('"100"', "1\x0000"),  # a NUL in a bare field
    _ROW.replace("Jan", "J\x0ban\x0c"),  # vertical tab, form feed
    _ROW.replace("Jan", "J\x1can\x1d\x1e"),  # file/group/record separators (str.splitlines splits them)
    _ROW.replace("Jan", "J\u0085an"),  # NEL
    _ROW.replace("Jan", "J\u2028an\u2029"),  # line and paragraph separators
    _ROW.replace("Jan", "Jos\udce9"),  # a Latin-1 é mid-file
    "\ufeff" + _ROW,  # a BOM mid-file
    _ROW.replace("Jan", "J" * 200_000),  # a long line (longer than most chunks)
    _ROW.replace('"Dial"', '"Di\r\nal"'),  # CRLF inside quotes
    _ROW.replace('"Dial"', '"Di\ral"'),
    _ROW + "\r",  # a stray CR before the line's end
    '"unterminated',
    "\x00",
    _ROW.replace("+31201234567", "０２０１２３４５６７"),
]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(_HOSTILE_LINES))), min_size=1, max_size=10),
    st.sampled_from(["\n", "\r\n"]),
    st.integers(min_value=0, max_value=300),
    st.booleans(),
    st.sampled_from([5, 97, 4096, 1 << 20]),
)
def test_hostile_lines_read_as_the_record_reader_reads_them(
    picks: list[int], newline: str, cut: int, final: bool, chunk: int
) -> None:
    """Any mix, cut anywhere (a file still growing), in chunks of any size: the same legs, rejected
    rows, line numbers and offsets as the record-by-record reader; every line accounted for."""
    data = (newline.join(_HOSTILE_LINES[i] for i in picks) + newline).encode("utf-8", "surrogateescape")
    data = data[: max(len(data) - cut, 0)]
    config = SourceConfig("asterisk-csv", timezone="Europe/Amsterdam")
    previous = formats.LINE_CHUNK
    formats.LINE_CHUNK = chunk
    try:
        fast = list(parse_stream(io.BytesIO(data), config, final=final))
    finally:
        formats.LINE_CHUNK = previous
    reference = list(parse_stream(io.BytesIO(data), config, final=final, by_line=False))
    assert fast == reference
    if final and data:  # the whole file read: every byte consumed once, in order
        assert [i.end for i in fast] == sorted({i.end for i in fast})
        assert fast[-1].end == len(data)


def test_a_quote_left_open_near_the_end_loses_no_row() -> None:
    """A whole (uploaded) file whose third-last row leaves a quote open: the rows it swallowed are
    reported with the line and reason, never silently dropped; a growing file waits for more."""
    broken = _ROW.replace('"Dial"', '"Di""al') + ",3"  # ends with a bare field: not whole on its own
    data = "\n".join([_ROW, _ROW, broken, _ROW, _ROW]).encode() + b"\n"
    config = SourceConfig("asterisk-csv", timezone="Europe/Amsterdam")
    for by_line in (True, False):
        items = list(parse_stream(io.BytesIO(data), config, by_line=by_line))
        assert [type(i.result).__name__ for i in items] == ["Leg", "Leg", "Rejected"]
        rejected = items[-1].result
        assert rejected.line == 3 and "truncated" in rejected.reason  # type: ignore[union-attr]
        assert items[-1].end == len(data) and items[-1].next_line == 6
        growing = list(parse_stream(io.BytesIO(data), config, by_line=by_line, final=False))
        assert len(growing) == 2 and growing[-1].next_line == 3  # read again once the PBX writes on


def test_a_field_past_the_csv_limit_is_a_rejected_row_not_a_crash() -> None:
    huge = _ROW.replace("Jan", "J" * 200_000)
    data = "\n".join([_ROW, huge, _ROW]).encode() + b"\n"
    config = SourceConfig("asterisk-csv", timezone="Europe/Amsterdam")
    for fmt in ("asterisk-csv", "asterisk-cel", "freeswitch-csv", "3cx", "generic-csv"):
        items = list(parse_stream(io.BytesIO(data), SourceConfig(fmt, timezone="Europe/Amsterdam")))
        assert items[-1].end == len(data), fmt
        assert any(getattr(i.result, "line", 0) == 2 for i in items), fmt
    items = list(parse_stream(io.BytesIO(data), config))
    assert [type(i.result).__name__ for i in items] == ["Leg", "Rejected", "Leg"]
    assert items[1].result.line == 2 and "longer than" in items[1].result.reason  # type: ignore[union-attr]


def test_a_pbx_number_with_an_extension_or_invisible_marks_is_a_number() -> None:
    from hub.telephony.records import Reject, check_number

    assert check_number("+31 (0)20-1234567 ext. 12") == "+31 (0)20-1234567 ext. 12"
    assert check_number("020\u20111234567") == "020\u20111234567"
    assert check_number("\u202d+31 20 1234567\u202c") == "+31 20 1234567"
    assert check_number("+31201234567\x00") == "+31201234567"  # PostgreSQL refuses a NUL in text
    # Every invisible mark the number reader ignores, the row check ignores too: one definition (a row
    # with a bidi isolate was refused as "unparsable" while its number read fine).
    for raw in WRITTEN:
        assert normalise(check_number(raw)) == normalise(raw), raw
    for nonsense in ("+31 20 ab", "x12", "Jan\x00"):
        with pytest.raises(Reject) as refused:
            check_number(nonsense)
        assert "\x00" not in str(refused.value)
