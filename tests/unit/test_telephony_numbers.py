"""The outside number of a call to E.164: the shapes PBXs write, and what must stay unmatched."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.phones import to_e164
from hub.telephony.numbers import NumberBook, normalise, prefixes


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


# --- the number book: phonenumbers' full parse skipped only where it gives the same answer ---------

_COUNTRIES = {"NL": "31", "BE": "32", "DE": "49"}


def _numbers_of(region: str) -> st.SearchStrategy[str]:
    """Numbers of a country as digits after its country code: valid ones (phonenumbers' own examples
    of every number type, with their last digits varied) and arbitrary digit strings."""
    code = _COUNTRIES[region]
    examples = []
    for kind in (
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.VOIP,
        phonenumbers.PhoneNumberType.PAGER,
        phonenumbers.PhoneNumberType.UAN,
    ):
        example = phonenumbers.example_number_for_type(region, kind)
        if example is not None:
            examples.append(str(example.national_number))
    varied = st.tuples(st.sampled_from(examples), st.integers(min_value=0, max_value=9999)).map(
        lambda pair: pair[0][: -len(str(pair[1]))] + str(pair[1]) if len(pair[0]) > 4 else pair[0]
    )
    digits = st.text("0123456789", min_size=1, max_size=13)
    return st.one_of(varied, digits).map(lambda national: code + national)


def _written(digits: str, region: str, form: str) -> str:
    """The number ``+<digits>`` as a PBX of ``region`` may write it."""
    code = _COUNTRIES[region]
    national = digits[len(code) :] if digits.startswith(code) else digits
    return {
        "e164": "+" + digits,
        "00": "00" + digits,
        "no plus": digits,
        "national": "0" + national,
        "national spaced": "0" + " ".join([national[:2], national[2:5], national[5:]]).strip(),
        "(0)": f"+{code} (0){national}",
        "dashes": f"+{code}-{national[:3]}-{national[3:]}",
        "route": "9" + "0" + national,
        "tel uri": f"tel:+{digits}",
        "extension": f"+{digits} ext. 12",
    }[form]


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(sorted(_COUNTRIES)).flatmap(
        lambda region: st.tuples(st.just(region), st.lists(_numbers_of(region), min_size=1, max_size=6))
    ),
    st.sampled_from(sorted(_COUNTRIES)),
    st.lists(
        st.sampled_from(
            ["e164", "00", "no plus", "national", "national spaced", "(0)", "dashes", "route", "tel uri", "extension"]
        ),
        min_size=1,
        max_size=4,
    ),
    st.data(),
)
def test_the_number_book_gives_what_phonenumbers_full_parse_gives(
    numbers: tuple[str, list[str]], read_in: str, forms: list[str], data: st.DataObject
) -> None:
    """Dutch, Belgian and German numbers (valid and not) in every written form, read in each of those
    regions, with some of them stored as contacts' numbers (valid or not, so a stored number
    phonenumbers would not accept as written is never taken on sight): the book's E.164 is the one
    of :func:`normalise`, which asks phonenumbers every time."""
    region, digits = numbers
    raws = {_written(d, region, form) for d in digits for form in forms}
    candidates = {"+" + d for d in digits} | {"+" + _COUNTRIES[read_in] + d[len(_COUNTRIES[region]) :] for d in digits}
    stored = set(data.draw(st.lists(st.sampled_from(sorted(candidates)), max_size=len(candidates))))
    book = NumberBook(read_in, ("9",))
    asked: list[set[str]] = []

    def lookup(wanted: set[str]) -> set[str]:
        asked.append(wanted)
        return wanted & stored

    found = book.resolve(raws, lookup)
    assert found == {raw: normalise(raw, read_in, ("9",)) for raw in raws}
    assert len(asked) <= 1  # one look-up of the stored numbers per batch


def test_the_number_book_takes_a_stored_number_on_sight_only_when_it_is_valid() -> None:
    book = NumberBook("NL")
    # +31 20 123 4567 is valid; +31 1 is not a number; +266696687 is Twilio's anonymous caller
    stored = {"+31201234567", "+311234567", "+266696687"}
    found = book.resolve(["020 1234567", "01234567", "+266696687", "00266696687"], lambda c: c & stored)
    assert found == {
        "020 1234567": "+31201234567",
        "01234567": normalise("01234567", "NL"),
        "+266696687": None,
        "00266696687": None,
    }


def test_the_number_book_forgets_past_its_limit() -> None:
    book = NumberBook("NL", limit=10)
    for start in range(0, 100, 20):
        raws = [f"06{n:08d}" for n in range(start, start + 20)]
        assert book.resolve(raws, lambda c: set()) == {raw: normalise(raw, "NL") for raw in raws}
    assert len(book._slow) <= 30
