"""Local wall-clock times ↔ UTC instants, and the occurrences of a series.

A time typed in a calendar is a wall-clock time in a zone. Around a daylight-saving change some of
those do not exist (02:30 on the last Sunday of March in Amsterdam) and some occur twice (02:30 on
the last Sunday of October). hub refuses both with a clear message instead of guessing; a caller
that means one of the two October instants gives the time with its UTC offset, which is exact.
A series repeats in wall-clock time (10:00 every Monday stays 10:00 across the change), so it is
expanded in its zone by dateutil and only then turned into UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr

from hub.errors import ValidationError
from hub.i18n import _

DEFAULT_TZ = "Europe/Amsterdam"
# An expansion never walks further than this many occurrences (a daily series for ever).
MAX_OCCURRENCES = 5000


def zone(tzid: str) -> ZoneInfo:
    try:
        return ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(_("Not a time zone: use a name such as Europe/Amsterdam or UTC."), "timezone") from None


def to_utc(moment: datetime, tzid: str, field: str = "start") -> datetime:
    """A wall-clock time in ``tzid`` (or an aware moment, taken as it is) → UTC.

    Raises :class:`ValidationError` for a wall-clock time that does not exist or occurs twice.
    """
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    tz = zone(tzid)
    first = moment.replace(tzinfo=tz, fold=0)
    second = moment.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        # In the gap both folds map to instants whose local time is not ``moment``.
        if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != moment:
            raise ValidationError(
                _(
                    "%(time)s does not exist in %(zone)s: the clocks are put forward then. Choose another time.",
                    time=moment.strftime("%Y-%m-%d %H:%M"),
                    zone=tzid,
                ),
                field,
            )
        raise ValidationError(
            _(
                "%(time)s occurs twice in %(zone)s: the clocks are put back then. "
                "Choose another time, or give it with its UTC offset (+02:00 or +01:00).",
                time=moment.strftime("%Y-%m-%d %H:%M"),
                zone=tzid,
            ),
            field,
        )
    return first.astimezone(UTC)


def local(moment: datetime, tzid: str) -> datetime:
    """A UTC instant as wall-clock time in ``tzid`` (aware)."""
    return moment.astimezone(zone(tzid))


def day_start(day: date) -> datetime:
    """All-day appointments are kept as midnight UTC of their days (they float: no zone applies)."""
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True)
class Occurrence:
    appointment_id: int
    start_at: datetime
    end_at: datetime
    recurrence_id: datetime | None  # the series' own start of this occurrence (None: not a series)
    title: str = ""  # an override's own title ("" : the appointment's)


def _series(rule: str, start: datetime, tzid: str, all_day: bool) -> rrule:
    # dateutil walks naive wall-clock times; UNTIL in a rule is UTC, so it is made naive local too.
    dtstart = start.replace(tzinfo=None) if all_day else local(start, tzid).replace(tzinfo=None)
    text = rule
    if "UNTIL=" in rule:
        parts = []
        for part in rule.split(";"):
            if part.startswith("UNTIL="):
                value = part.removeprefix("UNTIL=").rstrip("Z")
                until = (
                    datetime.strptime(value[:15], "%Y%m%dT%H%M%S")
                    if "T" in value
                    else datetime.strptime(value, "%Y%m%d")
                )
                if "T" in value and not all_day:
                    until = until.replace(tzinfo=UTC).astimezone(zone(tzid)).replace(tzinfo=None)
                part = "UNTIL=" + until.strftime("%Y%m%dT%H%M%S")
            parts.append(part)
        text = ";".join(parts)
    result = rrulestr(text, dtstart=dtstart)
    assert isinstance(result, rrule)
    return result


def occurrence_starts(rule: str, start: datetime, tzid: str, all_day: bool) -> Iterator[datetime]:
    """The series' starts as UTC instants, in order (at most :data:`MAX_OCCURRENCES`)."""
    tz = UTC if all_day else zone(tzid)
    for n, naive in enumerate(_series(rule, start, tzid, all_day)):
        if n >= MAX_OCCURRENCES:
            return
        # A wall-clock time in a DST gap moves forward by the gap (zoneinfo's fold=0 reading).
        yield naive.replace(tzinfo=tz).astimezone(UTC)


def series_end(rule: str, start: datetime, end: datetime, tzid: str, all_day: bool) -> datetime | None:
    """The last occurrence's end; None for a series without COUNT or UNTIL."""
    if not rule:
        return end
    if "COUNT=" not in rule and "UNTIL=" not in rule:
        return None
    starts = list(occurrence_starts(rule, start, tzid, all_day))
    return (starts[-1] if starts else start) + (end - start)


def parse_exdates(text: str) -> list[datetime]:
    return [datetime.fromisoformat(line).astimezone(UTC) for line in text.splitlines() if line.strip()]


def format_exdates(moments: list[datetime]) -> str:
    return "\n".join(sorted({m.astimezone(UTC).isoformat() for m in moments}))


def build_rrule(freq: str, interval: int = 1, count: int | None = None, until: date | None = None) -> str:
    """The RRULE of a weekly or monthly series (the two kinds hub offers), validated."""
    if freq not in ("WEEKLY", "MONTHLY"):
        raise ValidationError(_("A series repeats weekly or monthly."), "repeat")
    if not 1 <= interval <= 52:
        raise ValidationError(_("Repeat every 1 to 52 weeks or months."), "interval")
    parts = [f"FREQ={freq}", f"INTERVAL={interval}"]
    if count is not None:
        if not 1 <= count <= 500:
            raise ValidationError(_("A series has 1 to 500 occurrences."), "count")
        parts.append(f"COUNT={count}")
    elif until is not None:
        parts.append("UNTIL=" + until.strftime("%Y%m%d") + "T235959Z")
    return ";".join(parts)


def check_rrule(rule: str) -> str:
    """A rule from outside (API, a calendar): only weekly or monthly series are kept."""
    rule = rule.strip().removeprefix("RRULE:")
    if not rule:
        return ""
    keys = dict(part.split("=", 1) for part in rule.split(";") if "=" in part)
    if keys.get("FREQ") not in ("WEEKLY", "MONTHLY"):
        raise ValidationError(_("A series repeats weekly or monthly."), "rrule")
    try:
        rrulestr(rule, dtstart=datetime(2026, 1, 5, 10))
    except (ValueError, TypeError):
        raise ValidationError(_("Not a repeat rule hub understands."), "rrule") from None
    return rule


def occurrences(
    appointment_id: int,
    start_at: datetime,
    end_at: datetime,
    tzid: str,
    all_day: bool,
    rule: str,
    exdates: str,
    overrides: list[tuple[datetime, datetime, datetime, str]],
    window_start: datetime,
    window_end: datetime,
) -> list[Occurrence]:
    """The occurrences that overlap [window_start, window_end): a single appointment, or a series
    minus its EXDATEs with its moved occurrences (overrides: recurrence_id, start, end, title)."""
    duration = end_at - start_at
    if not rule:
        if start_at < window_end and end_at > window_start:
            return [Occurrence(appointment_id, start_at, end_at, None)]
        return []
    dropped = set(parse_exdates(exdates))
    moved = {rid: (s, e, t) for rid, s, e, t in overrides}
    found: list[Occurrence] = []
    for start in occurrence_starts(rule, start_at, tzid, all_day):
        if start >= window_end and start - timedelta(days=60) >= window_end:
            break
        if start in dropped:
            continue
        if start in moved:
            s, e, t = moved.pop(start)
            if s < window_end and e > window_start:
                found.append(Occurrence(appointment_id, s, e, start, t))
            continue
        if start < window_end and start + duration > window_start:
            found.append(Occurrence(appointment_id, start, start + duration, start))
    found.sort(key=lambda o: o.start_at)
    return found
