"""A Date: header as an instant in UTC, read wherever a person could read it.

The standard library knows only the US zone names of RFC 822 and reads any other name (CET, CEST,
BST …) as -0000, that is UTC: mail from Europe would be an hour or two off. Here zone names are read
at their real offsets, comments ("+0100 (CET)") are ignored, and what email.utils cannot read at all
(ISO 8601, day and month spelled out, a missing comma) goes to dateutil's parser with the same zones.
"""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_tz

from dateutil import parser as dateutil_parser

_HOURS = {
    "UT": 0,
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "WET": 0,
    "WEST": 1,
    "BST": 1,
    "IST": 1,  # Irish Summer Time: what European mail carrying it means (India sends +0530)
    "CET": 1,
    "MET": 1,
    "MEZ": 1,
    "CEST": 2,
    "MEST": 2,
    "MESZ": 2,
    "CEDT": 2,
    "EET": 2,
    "EEST": 3,
    "MSK": 3,
    "SAST": 2,
    "CAT": 2,
    "EAT": 3,
    "WAT": 1,
    "AST": -4,
    "ADT": -3,
    "EST": -5,
    "EDT": -4,
    "CST": -6,
    "CDT": -5,
    "MST": -7,
    "MDT": -6,
    "PST": -8,
    "PDT": -7,
    "AKST": -9,
    "AKDT": -8,
    "HST": -10,
    "NST": -3.5,
    "NDT": -2.5,
    "BRT": -3,
    "ART": -3,
    "JST": 9,
    "KST": 9,
    "HKT": 8,
    "SGT": 8,
    "AWST": 8,
    "ACST": 9.5,
    "ACDT": 10.5,
    "AEST": 10,
    "AEDT": 11,
    "NZST": 12,
    "NZDT": 13,
}
ZONES: dict[str, int] = {name: int(hours * 3600) for name, hours in _HOURS.items()}

_COMMENT = re.compile(r"\([^()]*\)")
_ZONE_NAME = re.compile(r"(?<![A-Za-z])([A-Za-z]{1,5})\s*$")
_NUMERIC_ZONE = re.compile(r"[+-]\d{4}\s*$")
# RFC 2822 says military single-letter zones were so often wrong that they mean nothing (-0000).
_MILITARY = re.compile(r"^[A-IK-Za-ik-z]$")
_EARLIEST, _LATEST = 1970, 2200
# The shape email.utils reads correctly (fast); it misreads others (AM/PM, ISO 8601), so those go to
# dateutil. Day names are not checked: a wrong one changes nothing.
_RFC_5322 = re.compile(
    r"(?:[A-Za-z]+\.?,?\s*)?\d{1,2}[\s-]+[A-Za-z]{3,9}\.?[\s-]+\d{2,4},?\s+\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:\s+[+-]\d{4})?"
)
_UNSET = datetime(1, 1, 1)
# "GMT+0100", "UTC+01:00", "GMT+1" (JavaMail, Lotus Notes, JavaScript's Date): an offset east of UTC,
# as people read it. dateutil reads such a name POSIX-style, the sign turned round: two hours off.
_NAMED_OFFSET = re.compile(r"\b(?:GMT|UTC|UT)\s*([+-])(\d{1,2})(?::?(\d{2}))?(?![\d:])", re.IGNORECASE)


class _MonthNames(dateutil_parser.parserinfo):
    """English day and month names, and the Dutch and German ones mailers in those languages write
    (a wrong day name changes nothing, but an unknown word makes dateutil give up)."""

    WEEKDAYS = [
        ("Mon", "Monday", "Ma", "Maandag", "Mo", "Montag"),
        ("Tue", "Tuesday", "Di", "Dinsdag", "Dienstag"),
        ("Wed", "Wednesday", "Wo", "Woensdag", "Mi", "Mittwoch"),
        ("Thu", "Thursday", "Do", "Donderdag", "Donnerstag"),
        ("Fri", "Friday", "Vr", "Vrijdag", "Fr", "Freitag"),
        ("Sat", "Saturday", "Za", "Zaterdag", "Sa", "Samstag"),
        ("Sun", "Sunday", "Zo", "Zondag", "So", "Sonntag"),
    ]
    MONTHS = [
        ("Jan", "January", "Januari", "Januar", "Jän"),
        ("Feb", "February", "Februari", "Februar"),
        ("Mar", "March", "Mrt", "Maart", "Mrz", "Mär", "März"),
        ("Apr", "April"),
        ("May", "Mei", "Mai"),
        ("Jun", "June", "Juni"),
        ("Jul", "July", "Juli"),
        ("Aug", "August", "Augustus"),
        ("Sep", "Sept", "September"),
        ("Oct", "October", "Okt", "Oktober"),
        ("Nov", "November"),
        ("Dec", "December", "Dez", "Dezember"),
    ]


_PARSER_INFO = _MonthNames()


def _with_numeric_zone(text: str) -> str:
    """The zone name at the end, if it is one we know, as the numeric offset email.utils reads."""
    if _NUMERIC_ZONE.search(text):
        return text
    match = _ZONE_NAME.search(text)
    if match is None:
        return text
    name = match[1].upper()
    seconds = ZONES.get(name)
    if seconds is None:
        return text[: match.start()] + "+0000" if _MILITARY.match(name) else text
    sign = "-" if seconds < 0 else "+"
    minutes = abs(seconds) // 60
    return f"{text[: match.start()]}{sign}{minutes // 60:02d}{minutes % 60:02d}"


def _from_email_utils(text: str) -> datetime | None:
    parts = parsedate_tz(text)
    if parts is None:
        return None
    year, month, day, hour, minute, second = parts[:6]
    offset = parts[9] or 0
    if abs(offset) >= 24 * 3600:
        return None
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone(timedelta(seconds=offset)))
    except (ValueError, OverflowError):
        return None
    return moment


def _from_dateutil(text: str) -> datetime | None:
    try:
        with warnings.catch_warnings():  # an unknown zone name: read as UTC, as email.utils does
            warnings.simplefilter("ignore")
            moment = dateutil_parser.parse(text, _PARSER_INFO, tzinfos=ZONES, default=_UNSET)
    except (ValueError, OverflowError, TypeError, LookupError):
        return None
    if moment.year == _UNSET.year:  # no year in it: not a date a person could place
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_date(text: str) -> datetime | None:
    """The moment a Date: header names, in UTC; None when no person could read one from it."""
    cleaned = " ".join(_COMMENT.sub(" ", text).split())
    if not cleaned:
        return None
    cleaned = _NAMED_OFFSET.sub(lambda m: f" {m[1]}{int(m[2]):02d}{m[3] or '00'}", cleaned)
    cleaned = _with_numeric_zone(cleaned)
    moment = _from_email_utils(cleaned) if _RFC_5322.fullmatch(cleaned) else None
    moment = moment or _from_dateutil(cleaned)
    if moment is None:
        return None
    try:
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return moment if _EARLIEST <= moment.year <= _LATEST else None
