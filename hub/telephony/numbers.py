"""The outside number of a call, as the PBX wrote it, to E.164 — or to nothing.

What other CRMs got wrong (research part A.7): a trunk's national form (``0612…``), the exit code
(``0031…``), the country code without plus (``31…``), ``+31 (0)20 …``, a route prefix dialled first
(``9 0612…``), an internal extension parsed as a foreign number (``1001`` → ``+11001``), and the
anonymous markers of PBXs and carriers. Extensions and anonymous numbers are never matched; a
number is read in the source's region, and only valid numbers (else possible ones, as contacts'
numbers are stored by :func:`hub.phones.to_e164`) come out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import lru_cache

import phonenumbers

# An internal extension or a service short code, not an outside number.
MAX_EXTENSION_DIGITS = 6
ANONYMOUS_WORDS = frozenset(
    {"anonymous", "restricted", "private", "unknown", "unavailable", "withheld", "blocked", "none", "null"}
)
# Twilio's stand-ins for a caller who hides the number (its docs: anonymous, unknown, restricted, blocked).
CARRIER_ANONYMOUS = frozenset({"+266696687", "+86282452253", "+7378742833", "+2562533"})
_URI = re.compile(r"^(?:sips?|tel):([^@;]+)", re.IGNORECASE)
_TRUNK_ZERO = re.compile(r"\(0\)")
# Also the dashes, full-width brackets and dots a word processor or a web page writes.
_SEPARATORS = re.compile(r"[\s\-./()\[\]\u2010-\u2015\u2212\uff08\uff09\uff0d\uff0e\uff0f]")
EXTENSION_SUFFIX = re.compile(r"(?:;ext=|\s*(?:ext\.?|x|#)\s*)\d+$", re.IGNORECASE)


def normalise(raw: str, region: str = "NL", strip_prefixes: tuple[str, ...] = ()) -> str | None:
    """``raw`` in E.164, or None for an extension, an anonymous marker or no phone number at all."""
    return _normalise(raw, (region or "NL").upper(), strip_prefixes)


# The caches below are bounded (a few MB each) so an import's memory does not grow with the file:
# a PBX's numbers repeat (the same customers call again), a generated file's mostly do not.
@lru_cache(maxsize=16_384)
def _normalise(raw: str, region: str, strip_prefixes: tuple[str, ...]) -> str | None:
    prepared = _prepared(raw, strip_prefixes)
    if prepared is None:
        return None
    plus, digits = prepared
    # What phonenumbers is asked depends only on these candidates: "+31…", "0031…" and "31…" written
    # by different rows share one answer (a second cache, as a number's forms repeat across a file).
    return _e164((f"+{digits}",) if plus else (digits, f"+{digits}"), region)


def without_invisible(text: str) -> str:
    """``text`` without control and invisible format characters (Unicode's Cc and Cf: NUL, zero-width
    spaces, the bidi marks and isolates Windows adds on copying a number, a BOM): no part of a
    number, and phonenumbers' own parse ignores them too. The one definition for every reader."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))


def _prepared(raw: str, strip_prefixes: tuple[str, ...]) -> tuple[bool, str] | None:
    """(plus, digits) of what a PBX wrote, before phonenumbers reads it: the URI, separators,
    ``(0)``, an extension suffix, a route prefix and the ``00`` exit code gone; None for an
    extension, an anonymous marker or no number at all."""
    text = raw.strip()
    # isdecimal, not isdigit: "²" is a digit but no digit of a phone number (phonenumbers agrees).
    if text.isdecimal():  # the common shapes, without the regular expressions below
        plus, digits = False, text
    elif text[:1] == "+" and text[1:].isdecimal():
        plus, digits = True, text[1:]
    else:
        text = without_invisible(text).strip()
        text = text.strip('"').strip()
        uri = _URI.match(text)
        if uri:
            text = uri.group(1)
        if not text or text.casefold() in ANONYMOUS_WORDS:
            return None
        text = EXTENSION_SUFFIX.sub("", text)
        plus = text.startswith("+")
        digits = _SEPARATORS.sub("", _TRUNK_ZERO.sub("", text)).lstrip("+")
        if not digits.isdecimal():
            return None  # "Ext.960", "client:alice"
    if not digits.isascii():  # full-width or Arabic-Indic digits: the same number in ASCII
        digits = "".join(str(unicodedata.decimal(ch)) for ch in digits)
    if not digits.strip("0"):
        return None  # "0000000000"
    if not plus:
        for prefix in strip_prefixes:
            if prefix and digits.startswith(prefix) and len(digits) - len(prefix) > MAX_EXTENSION_DIGITS:
                digits = digits[len(prefix) :]
                break
        if len(digits) <= MAX_EXTENSION_DIGITS:
            return None
        if digits.startswith("00"):
            plus, digits = True, digits[2:]
    return plus, digits


class NumberBook:
    """E.164 of the numbers of one import, asking phonenumbers as little as the answer allows.

    Most rows of a PBX's file carry numbers of known contacts. For the international form
    (``+31…``, ``0031…``) and the national form (``0…``) of a number, the candidate E.164 follows
    from phonenumbers' own metadata of the region (its country code and national prefix); a
    candidate that is a stored contact number and that phonenumbers calls valid is the answer its
    full parse would give (tests/unit/test_telephony_numbers.py proves the equality over Dutch,
    Belgian and German numbers in every written form). Every other number goes through
    :func:`normalise`, once per distinct candidate. The book's memory is bounded (it forgets
    everything past ``limit`` entries), so a file of any length needs the same memory.
    """

    def __init__(self, region: str = "NL", strip_prefixes: tuple[str, ...] = (), limit: int = 100_000) -> None:
        self.region = (region or "NL").upper()
        self.strip_prefixes = strip_prefixes
        self.limit = limit
        self._front = _region_front(self.region)
        self._valid: dict[str, bool] = {}  # candidate → phonenumbers calls it valid
        # "+digits" or "digits" → normalise's answer: fewer entries (a generated file's unknown
        # numbers never come back; a PBX's do, soon), so the import's memory stays that of a small file.
        self._slow: dict[str, str | None] = {}
        self._slow_limit = min(limit, 20_000)

    def candidate(self, raw: str) -> str | None:
        """The E.164 ``raw`` has if it is valid (None: no candidate without phonenumbers' parse)."""
        prepared = _prepared(raw, self.strip_prefixes)
        return None if prepared is None else self._candidate(*prepared)

    def _candidate(self, plus: bool, digits: str) -> str | None:
        if plus:
            return "+" + digits
        if self._front is not None and digits.startswith(self._front[1]):
            return f"+{self._front[0]}{digits[len(self._front[1]) :]}"
        return None

    def resolve(self, raws: Iterable[str], stored: Callable[[set[str]], Iterable[str]]) -> dict[str, str | None]:
        """raw → E.164 (None: an extension, anonymous, not a phone number). ``stored(candidates)``
        answers which candidates are stored contact numbers (one query per call)."""
        prepared: dict[str, tuple[bool, str] | None] = {}
        candidates: dict[str, str] = {}
        for raw in raws:
            prep = prepared[raw] = _prepared(raw, self.strip_prefixes)
            if prep is not None and (candidate := self._candidate(*prep)) is not None:
                candidates[raw] = candidate
        known = set(stored(set(candidates.values()))) if candidates else set()
        if len(self._valid) > self.limit:
            self._valid.clear()
        if len(self._slow) > self._slow_limit:
            self._slow.clear()
        found: dict[str, str | None] = {}
        for raw, prep in prepared.items():
            if prep is None:
                found[raw] = None
                continue
            candidate = candidates.get(raw)
            if candidate is not None and candidate in known and self._is_valid(candidate):
                found[raw] = candidate
                continue
            plus, digits = prep
            asked = f"+{digits}" if plus else digits
            if asked not in self._slow:
                self._slow[asked] = _e164((asked,) if plus else (digits, f"+{digits}"), self.region)
            found[raw] = self._slow[asked]
        return found

    def _is_valid(self, candidate: str) -> bool:
        valid = self._valid.get(candidate)
        if valid is None:
            valid = self._valid[candidate] = _plainly_valid(candidate)
        return valid


@lru_cache(maxsize=64)
def _region_front(region: str) -> tuple[int, str] | None:
    """(country code, national prefix) of a region whose national numbers are the prefix and the
    national significant number, plainly (no carrier codes, no transform rule); else None."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.country_code is None:
        return None
    if not metadata.national_prefix or not metadata.national_prefix.isdigit():
        return None
    if metadata.national_prefix_transform_rule or metadata.national_prefix_for_parsing not in (
        None,
        metadata.national_prefix,
    ):
        return None
    return metadata.country_code, metadata.national_prefix


def _plainly_valid(candidate: str) -> bool:
    """``+<cc><nsn>`` is a valid number whose country code phonenumbers reads the same way, with no
    leading zero or national prefix phonenumbers would strip, and not a carrier's anonymous stand-in."""
    digits = candidate[1:]
    if candidate in CARRIER_ANONYMOUS or not (digits.isascii() and digits.isdigit()):
        return False
    for length in (1, 2, 3):  # how phonenumbers extracts a country code: the shortest known one
        code = int(digits[:length])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return False
    national = digits[length:]
    if not national or national[0] == "0" or len(national) > 17:
        return False
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]
    main = phonenumbers.PhoneMetadata.metadata_for_region(regions[0]) if regions else None
    if main is None or _region_front(regions[0]) is None or national.startswith(main.national_prefix or "\0"):
        return False
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    return phonenumbers.is_valid_number(number)


@lru_cache(maxsize=16_384)
def _e164(candidates: tuple[str, ...], region: str) -> str | None:
    possible: str | None = None
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if e164 in CARRIER_ANONYMOUS:
            return None
        valid, can_be = _checks(
            parsed.country_code, parsed.national_number, parsed.italian_leading_zero, parsed.number_of_leading_zeros
        )
        if valid:
            return e164
        if possible is None and candidate is candidates[0] and can_be:
            possible = e164
    return possible


@lru_cache(maxsize=16_384)
def _checks(
    country_code: int | None, national_number: int | None, leading_zero: bool | None, zeros: int | None
) -> tuple[bool, bool]:
    """(valid, possible) of a parsed number: the national and the international form of one
    number ask the same question, answered once."""
    number = phonenumbers.PhoneNumber(
        country_code=country_code,
        national_number=national_number,
        italian_leading_zero=leading_zero,
        number_of_leading_zeros=zeros,
    )
    if phonenumbers.is_valid_number(number):
        return True, True
    return False, phonenumbers.is_possible_number(number)


def is_extension(raw: str) -> bool:
    """A short all-digit number (``100``, ``*1001``): a phone inside the company."""
    text = raw.strip().lstrip("*")
    return text.isdigit() and len(text) <= MAX_EXTENSION_DIGITS


def prefixes(text: str) -> tuple[str, ...]:
    """A source's ``strip_prefixes`` setting ("9, 0") → the prefixes, longest first."""
    found = {p.strip() for p in text.replace(";", ",").split(",") if p.strip().isdigit()}
    return tuple(sorted(found, key=lambda p: (-len(p), p)))
