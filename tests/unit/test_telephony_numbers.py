"""The outside number of a call to E.164: the shapes PBXs write, and what must stay unmatched."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.phones import to_e164
from hub.telephony.numbers import normalise, prefixes


@pytest.mark.parametrize(
    ("raw", "region", "strip", "expected"),
    [
        ("0612345678", "NL", (), "+31612345678"),
        ("0031201234567", "NL", (), "+31201234567"),
        ("31201234567", "NL", (), "+31201234567"),  # the country code without plus
        ("+31 (0)20 123 4567", "NL", (), "+31201234567"),
        ("020-123 45 67", "NL", (), "+31201234567"),
        ("+32 2 555 12 12", "NL", (), "+3225551212"),  # Belgian
        ("0032 2 555 12 12", "NL", (), "+3225551212"),
        ("02 555 12 12", "BE", (), "+3225551212"),
        ("0049 30 12345678", "NL", (), "+493012345678"),  # German
        ("030 12345678", "DE", (), "+493012345678"),
        ("9 0612345678", "NL", ("9",), "+31612345678"),  # a route prefix
        ("90031201234567", "NL", ("9",), "+31201234567"),
        ("0033145678901", "FR", (), "+33145678901"),
        ("sip:+31201234567@pbx.example", "NL", (), "+31201234567"),
        ("+1 415-555-2671 ext. 12", "NL", (), "+14155552671"),
    ],
)
def test_numbers_become_e164(raw: str, region: str, strip: tuple[str, ...], expected: str) -> None:
    assert normalise(raw, region, strip) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "  ",
        "anonymous",
        "Anonymous",
        "restricted",
        "unknown",
        "0000000000",
        "+266696687",
        "+86282452253",
        "100",
        "1001",
        "*1001",
        "Ext.960",
        "client:alice",
        "abc",
    ],
)
def test_extensions_and_anonymous_markers_stay_unmatched(raw: str) -> None:
    assert normalise(raw, "NL") is None


def test_route_prefixes_longest_first() -> None:
    assert prefixes("9, 0 ;90,x") == ("90", "0", "9")


_NL_NUMBERS = st.sampled_from(["20", "10", "30", "6"]).flatmap(
    lambda area: st.integers(min_value=0, max_value=10 ** (9 - len(area)) - 1).map(
        lambda n, area=area: f"+31{area}{n:0{9 - len(area)}d}"
    )
)


@settings(max_examples=300, deadline=None)
@given(_NL_NUMBERS, st.sampled_from(["e164", "national", "international", "00", "31", "(0)", "route"]))
def test_every_written_form_of_a_number_gives_the_same_e164(e164: str, form: str) -> None:
    number = phonenumbers.parse(e164)
    if not phonenumbers.is_valid_number(number):
        return
    written = {
        "e164": e164,
        "national": phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
        "international": phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        "00": "00" + e164[1:],
        "31": e164[1:],
        "(0)": f"+31 (0){e164[3:]}",
        "route": "9" + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
    }[form]
    assert normalise(written, "NL", ("9",)) == e164
    # and it is the form a contact's stored number takes, so matching compares like with like
    assert to_e164(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL), "NL") == e164


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30), st.sampled_from(["NL", "BE", "DE", "US", "FR"]))
def test_the_normaliser_never_raises_and_gives_e164_or_nothing(raw: str, region: str) -> None:
    result = normalise(raw, region, ("9",))
    assert result is None or (result.startswith("+") and result[1:].isdigit())
