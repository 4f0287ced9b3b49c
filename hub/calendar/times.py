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

from dateutil import rrule as _rrule_module
from dateutil.relativedelta import relativedelta
from dateutil.rrule import DAILY, HOURLY, MINUTELY, MONTHLY, SECONDLY, WEEKLY, YEARLY, rrule, rrulestr

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


# dateutil looks for the next match period by period and only gives up in the year 9999: a rule
# whose BYxxx parts never match (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30), or match once in decades,
# keeps it busy for seconds, and one of minutes or seconds for hours; UNTIL does not stop that search
# (it is compared with matches only). So an expansion looks this far ahead of its start at most.
# hub's own series are weekly or monthly (check_rrule); the short spans bound older stored rules.
MAX_SPAN = {
    YEARLY: relativedelta(years=200),
    MONTHLY: relativedelta(years=100),
    WEEKLY: relativedelta(years=50),
    DAILY: relativedelta(years=10),
    HOURLY: relativedelta(years=1),
    MINUTELY: relativedelta(days=7),
    SECONDLY: relativedelta(hours=3),
}


class _PastHorizon(Exception):
    """The expansion reached its horizon without a match."""


class _BoundedInfo(_rrule_module._iterinfo):
    """dateutil's per-month bookkeeping, which its search calls at least once a month of the walk
    (whatever the FREQ): the one place to stop a walk that finds nothing. Only rules hub marks with
    ``hub_horizon`` are stopped; any other use of dateutil is unchanged."""

    def rebuild(self, year: int, month: int) -> None:
        horizon = getattr(self.rrule, "hub_horizon", None)
        if horizon is not None and (year, month) > horizon:
            raise _PastHorizon
        super().rebuild(year, month)


_rrule_module._iterinfo = _BoundedInfo


def _series_zone(tzid: str) -> str:
    """The zone a series repeats in: a name stored before zones were checked repeats in UTC (its
    instants are right; only its wall-clock rule across a clock change may be an hour off)."""
    try:
        zone(tzid)
    except ValidationError:
        return "UTC"
    return tzid


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
    try:
        horizon = dtstart + MAX_SPAN[result._freq]
    except (OverflowError, ValueError):  # near the year 9999
        horizon = datetime.max
    result.hub_horizon = (horizon.year, horizon.month)
    return result


def occurrence_starts(rule: str, start: datetime, tzid: str, all_day: bool) -> Iterator[datetime]:
    """The series' starts as UTC instants, in order (at most :data:`MAX_OCCURRENCES`, within
    :data:`MAX_SPAN`). A rule that cannot be read (stored before rules were checked) gives its first
    start only: the appointment stays visible."""
    tzid = _series_zone(tzid)
    tz = UTC if all_day else zone(tzid)
    try:
        series = _series(rule, start, tzid, all_day)
    except (ValueError, TypeError, KeyError, OverflowError):
        yield start
        return
    found = iter(series)
    for _n in range(MAX_OCCURRENCES):
        try:
            naive = next(found)
            # A wall-clock time in a DST gap moves forward by the gap (zoneinfo's fold=0 reading).
            moment = naive.replace(tzinfo=tz).astimezone(UTC)
        except (StopIteration, _PastHorizon, ValueError, OverflowError):  # or past the year 9999
            return
        yield moment


def series_end(rule: str, start: datetime, end: datetime, tzid: str, all_day: bool) -> datetime | None:
    """The last occurrence's end; None for a series without COUNT or UNTIL, or one whose end lies
    beyond what hub expands (:data:`MAX_OCCURRENCES`, :data:`MAX_SPAN`): endless rather than cut short."""
    if not rule:
        return end
    if "COUNT=" not in rule and "UNTIL=" not in rule:
        return None
    last = start
    tzid = _series_zone(tzid)
    try:
        series = _series(rule, start, tzid, all_day)
    except (ValueError, TypeError, KeyError, OverflowError):
        return end
    tz = UTC if all_day else zone(tzid)
    found = iter(series)
    for _n in range(MAX_OCCURRENCES):
        try:
            last = next(found).replace(tzinfo=tz).astimezone(UTC)
        except StopIteration:
            return last + (end - start)
        except (_PastHorizon, ValueError, OverflowError):
            return None
    return None


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


_SAMPLE = datetime(2026, 1, 5, 10, tzinfo=UTC)


def check_rrule(rule: str) -> str:
    """A rule from outside (API, a calendar): only weekly or monthly series are kept, with the bounds
    hub's own form has, and only rules that give dates (BYxxx parts can exclude every day)."""
    rule = rule.strip().removeprefix("RRULE:")
    if not rule:
        return ""
    if len(rule) > 500 or any(c.isspace() or not c.isprintable() for c in rule):
        raise ValidationError(_("Not a repeat rule hub understands."), "rrule")
    keys = dict(part.split("=", 1) for part in rule.split(";") if "=" in part)
    if keys.get("FREQ") not in ("WEEKLY", "MONTHLY"):
        raise ValidationError(_("A series repeats weekly or monthly."), "rrule")
    if "BYEASTER" in keys or ("COUNT" in keys and "UNTIL" in keys):  # dateutil's own; RFC 5545 forbids both
        raise ValidationError(_("Not a repeat rule hub understands."), "rrule")
    if not keys.get("INTERVAL", "1").isdigit() or not 1 <= int(keys.get("INTERVAL", "1")) <= 52:
        raise ValidationError(_("Repeat every 1 to 52 weeks or months."), "rrule")
    if "COUNT" in keys and (not keys["COUNT"].isdigit() or not 1 <= int(keys["COUNT"]) <= 500):
        raise ValidationError(_("A series has 1 to 500 occurrences."), "rrule")
    try:
        _series(rule, _SAMPLE, "UTC", False)
        # Whether the BYxxx parts admit any day at all (UNTIL depends on the start: left out here).
        unbounded = _series(";".join(p for p in rule.split(";") if not p.startswith("UNTIL=")), _SAMPLE, "UTC", False)
    except (ValueError, TypeError, KeyError, OverflowError):
        raise ValidationError(_("Not a repeat rule hub understands."), "rrule") from None
    try:
        next(iter(unbounded))
    except (StopIteration, _PastHorizon, ValueError, OverflowError):
        raise ValidationError(_("The repeat rule gives no dates: its parts exclude each other."), "rrule") from None
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
