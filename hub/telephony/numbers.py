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
_SEPARATORS = re.compile(r"[\s\-./()\[\]]")
_EXTENSION_SUFFIX = re.compile(r"(?:;ext=|\s*(?:ext\.?|x|#)\s*)\d+$", re.IGNORECASE)


def normalise(raw: str, region: str = "NL", strip_prefixes: tuple[str, ...] = ()) -> str | None:
    """``raw`` in E.164, or None for an extension, an anonymous marker or no phone number at all."""
    return _normalise(raw, (region or "NL").upper(), strip_prefixes)


# The caches below are bounded (a few MB each) so an import's memory does not grow with the file:
# a PBX's numbers repeat (the same customers call again), a generated file's mostly do not.
@lru_cache(maxsize=16_384)
def _normalise(raw: str, region: str, strip_prefixes: tuple[str, ...]) -> str | None:
    text = raw.strip().strip('"').strip()
    uri = _URI.match(text)
    if uri:
        text = uri.group(1)
    if not text or text.casefold() in ANONYMOUS_WORDS:
        return None
    text = _EXTENSION_SUFFIX.sub("", text)
    plus = text.startswith("+")
    digits = _SEPARATORS.sub("", _TRUNK_ZERO.sub("", text)).lstrip("+")
    if not digits.isdigit() or not digits.strip("0"):
        return None  # "Ext.960", "client:alice", "0000000000"
    if not plus:
        for prefix in strip_prefixes:
            if prefix and digits.startswith(prefix) and len(digits) - len(prefix) > MAX_EXTENSION_DIGITS:
                digits = digits[len(prefix) :]
                break
        if len(digits) <= MAX_EXTENSION_DIGITS:
            return None
        if digits.startswith("00"):
            plus, digits = True, digits[2:]
    # What phonenumbers is asked depends only on these candidates: "+31…", "0031…" and "31…" written
    # by different rows share one answer (a second cache, as a number's forms repeat across a file).
    return _e164((f"+{digits}",) if plus else (digits, f"+{digits}"), region)


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
