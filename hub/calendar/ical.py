"""Appointments as iCalendar (RFC 5545), built and read with the icalendar library.

What a calendar shows of an appointment is a small set of *fields* (title, times, series, status…).
They are compared field by field when a change comes back (the three-way merge in
:mod:`hub.calendar.merge`) and hashed, so an appointment whose fields did not change is never sent
again. A calendar of someone who may not see the appointment's project gets the *busy* view: the
times only, titled "Busy", without description, place or attendees.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from icalendar import Calendar, Event, Timezone, vCalAddress, vRecur
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from hub.calendar.times import check_rrule, day_start, occurrence_starts, parse_exdates, zone
from hub.errors import ValidationError
from hub.i18n import N_, english
from hub.ical_reading import read_calendar

PRODID = "-//hub//hub calendar//EN"
BUSY_TITLE = "Busy"
# The fields a calendar holds, in the order they are compared and hashed.
FIELDS = (
    "title",
    "description",
    "location",
    "start",
    "end",
    "all_day",
    "tzid",
    "rrule",
    "exdates",
    "status",
    "overrides",
)


@dataclass(frozen=True)
class Person:
    email: str
    name: str = ""
    partstat: str = "NEEDS-ACTION"


@dataclass
class Snapshot:
    """An appointment as the calendars see it, read out of the database (rendering needs no session)."""

    uid: str
    sequence: int
    fields: dict[str, Any]
    organizer: Person | None = None
    attendees: list[Person] = field(default_factory=list)


def fields_of(
    *,
    title: str,
    description: str,
    location: str,
    start_at: datetime,
    end_at: datetime,
    all_day: bool,
    tzid: str,
    rrule: str,
    exdates: str,
    status: str,
    overrides: list[tuple[datetime, datetime, datetime, str]],
) -> dict[str, Any]:
    """The canonical field values (JSON-able, so they can be stored as a merge's common ancestor)."""
    return {
        "title": title,
        "description": description,
        "location": location,
        "start": start_at.astimezone(UTC).isoformat(),
        "end": end_at.astimezone(UTC).isoformat(),
        "all_day": bool(all_day),
        "tzid": tzid,
        "rrule": rrule,
        "exdates": sorted(m.isoformat() for m in parse_exdates(exdates)),
        "status": status,
        "overrides": sorted(
            [r.astimezone(UTC).isoformat(), s.astimezone(UTC).isoformat(), e.astimezone(UTC).isoformat(), t]
            for r, s, e, t in overrides
        ),
    }


def busy(fields: dict[str, Any]) -> dict[str, Any]:
    """The busy view of ``fields``: when, and nothing about what."""
    return {
        **fields,
        "title": BUSY_TITLE,
        "description": "",
        "location": "",
        "overrides": [[r, s, e, ""] for r, s, e, _t in fields["overrides"]],
    }


def content_hash(snapshot: Snapshot, *, private: bool) -> str:
    """SHA-256 of what a calendar would show: the fields and, unless private, the attendees."""
    people = [] if private else [[p.email, p.name, p.partstat] for p in snapshot.attendees]
    payload = json.dumps([snapshot.fields, people, private], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _moment(value: str, all_day: bool, tzid: str) -> date | datetime:
    moment = datetime.fromisoformat(value)
    if all_day:
        return moment.date()
    return moment.astimezone(zone(tzid))


# RFC 5545 3.3.11: TEXT holds no control character but a tab (line breaks are written escaped, "\\n",
# by icalendar). A colleague's title with an escape or form feed in it went into every attendee's
# calendar and feed as it was, a line calendar programs that hold to the standard refuse.
_TEXT_CONTROLS = dict.fromkeys([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def text_value(value: str) -> str:
    """``value`` as an iCalendar TEXT (or parameter) value may hold it: without control characters."""
    return value.translate(_TEXT_CONTROLS)


def _event(snapshot: Snapshot, fields: dict[str, Any], *, private: bool, stamp: datetime) -> Event:
    all_day, tzid = fields["all_day"], fields["tzid"]
    event = Event()
    event.add("uid", snapshot.uid)
    event.add("dtstamp", stamp)
    event.add("sequence", snapshot.sequence)
    event.add("summary", text_value(fields["title"]))
    event.add("dtstart", _moment(fields["start"], all_day, tzid))
    event.add("dtend", _moment(fields["end"], all_day, tzid))
    if fields["description"]:
        event.add("description", text_value(fields["description"]))
    if fields["location"]:
        event.add("location", text_value(fields["location"]))
    event.add("status", "CANCELLED" if fields["status"] == "cancelled" else "CONFIRMED")
    if fields["status"] == "done":
        event.add("x-hub-status", "done")
    if private:
        event.add("class", "PRIVATE")
    if fields["rrule"]:
        event.add("rrule", vRecur.from_ical(fields["rrule"]))
        if fields["exdates"]:
            event.add("exdate", [_moment(m, all_day, tzid) for m in fields["exdates"]])
    if not private:
        if snapshot.organizer is not None:
            event.add("organizer", _address(snapshot.organizer, organizer=True))
        for person in snapshot.attendees:
            event.add("attendee", _address(person))
    # Outlook reads its own copy of SEQUENCE (Nylas does the same).
    event.add("x-microsoft-cdo-appt-sequence", str(snapshot.sequence))
    return event


def _address(person: Person, *, organizer: bool = False) -> vCalAddress:
    address = vCalAddress(f"mailto:{person.email}")
    if person.name:
        address.params["CN"] = text_value(person.name)
    if not organizer:
        address.params["ROLE"] = "REQ-PARTICIPANT"
        address.params["PARTSTAT"] = person.partstat
        address.params["RSVP"] = "TRUE"
    return address


def render(
    snapshot: Snapshot, *, private: bool = False, method: str | None = None, stamp: datetime | None = None
) -> bytes:
    """One VCALENDAR with the appointment (its series and moved occurrences), and its time zone."""
    stamp = stamp or datetime(2000, 1, 1, tzinfo=UTC)
    fields = busy(snapshot.fields) if private else snapshot.fields
    if not _known_zone(fields["tzid"]):  # stored before zones were checked: the same instants, in UTC
        fields = {**fields, "tzid": "UTC"}
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    if method:
        cal.add("method", method)
    cal.add_component(_event(snapshot, fields, private=private, stamp=stamp))
    all_day, tzid = fields["all_day"], fields["tzid"]
    for rid, start, end, title in fields["overrides"]:
        moved = _event(
            snapshot,
            {**fields, "title": title or fields["title"], "rrule": "", "start": start, "end": end},
            private=private,
            stamp=stamp,
        )
        moved.add("recurrence-id", _moment(rid, all_day, tzid))
        cal.add_component(moved)
    if not all_day and tzid != "UTC":
        cal.add_component(Calendar.from_ical(_vtimezone(tzid, datetime.fromisoformat(fields["start"]).year)))
    return bytes(cal.to_ical())


def _known_zone(tzid: str) -> bool:
    try:
        zone(tzid)
    except ValidationError:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _vtimezone(tzid: str, year: int) -> bytes:
    """The zone's rules from the year before the start for three years (what a calendar needs to
    place the event; the whole history since 1970 would make every event kilobytes longer). Made
    once per zone and year: building it is the slowest part of rendering."""
    return bytes(Timezone.from_tzid(tzid, first_date=date(year - 1, 1, 1), last_date=date(year + 3, 1, 1)).to_ical())


# --- reading what a calendar holds -------------------------------------------------------------------


@dataclass
class Remote:
    uid: str
    fields: dict[str, Any]
    sequence: int
    modified: datetime | None  # LAST-MODIFIED (or DTSTAMP) of the master event
    attendees: dict[str, str]  # case-folded address → PARTSTAT
    method: str = ""


class NotAnEvent(ValueError):
    """The data holds no VEVENT hub can read. Made with an :func:`~hub.i18n.N_` message saying why:
    ``stored`` keeps it for the sync-health page (shown in the reader's language), ``str()`` is English."""

    def __init__(self, stored: str) -> None:
        super().__init__(english(stored))
        self.stored = stored


# What hub reads of a calendar's event, at most: the limits of hub's own form and columns. Longer
# text is cut (an e-mail pasted into the description); a body this large is not read at all.
MAX_BYTES = 5_000_000
TEXT_LIMITS = {"title": 200, "description": 20_000, "location": 500}
# Dates outside these years are typing errors or tests of the server (year 1, year 9999); sums
# with them (a day more, a zone's rules) overflow Python's datetime.
FIRST_YEAR, LAST_YEAR = 1900, 2999
PARTSTATS = frozenset(("NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE"))
_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\n\t")
# And in what people read (title, description, place): the controls that reorder the text after them
# (U+202A to U+202E, U+2066 to U+2069), as mail's subjects lose them (hub.mail.parse): an outside
# event's "\u202eelpmaxe.knab" shows as "bank.example" on a colleague's week.
_SHOWN_CONTROL = {**_CONTROL, **dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])}


def _clean(value: object, limit: int, controls: dict[int, None] = _CONTROL) -> str:
    """Text as hub can store it: no NUL or other control characters (PostgreSQL refuses NUL), cut to
    ``limit`` characters."""
    return str(value or "").translate(controls).strip()[:limit]


def _in_range(moment: datetime) -> datetime:
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise NotAnEvent(
            N_(
                "The event's dates lie outside the years %(first)s to %(last)s.",
                first=FIRST_YEAR,
                last=LAST_YEAR,
            )
        )
    return moment


def _utc_of(value: date | datetime, tzid: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # a floating time (or one in a zone nobody defined): the appointment's zone
            return _in_range(value.replace(tzinfo=zone(tzid)).astimezone(UTC))
        return _in_range(value.astimezone(UTC))
    if not isinstance(value, date):
        raise NotAnEvent(N_("The event has a date hub cannot read."))
    return _in_range(day_start(value))


def _zone_name(value: date | datetime, default_tzid: str, named: str = "") -> str:
    """The IANA name of the start's zone. icalendar resolves Microsoft's names ("W. Europe Standard
    Time") and known VTIMEZONEs to a zoneinfo zone; a zone it could not resolve (a made-up TZID, a
    private VTIMEZONE) leaves the instants right, but no rules to repeat by: the appointment's zone.
    ``named``: the start's TZID. Outlook sends its own VTIMEZONE for a Microsoft name, which icalendar
    reads as a private zone: the name's IANA zone repeats the series by that zone's rules (a
    "Pacific Standard Time" series on Amsterdam's clock moved an hour for the weeks the two
    countries' summer times differ)."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        return default_tzid
    if value.tzinfo is UTC or value.tzinfo == UTC:
        return "UTC"
    key = getattr(value.tzinfo, "key", None) or WINDOWS_TO_OLSON.get(named.strip())
    if isinstance(key, str):
        try:
            zone(key)
        except ValidationError:
            return default_tzid
        return key
    return "UTC" if str(value.tzinfo) in ("UTC", "tzutc()") else default_tzid


def _end(component: Any, start: datetime, all_day: bool, tzid: str) -> datetime | None:
    """DTEND or DTSTART + DURATION as UTC; None without either. A DTEND that is a date-time while the
    start is a date (or the reverse) is read as the day (or midnight in the zone) it falls on."""
    if component.get("dtend") is not None:
        value = component.decoded("dtend")
        if all_day and isinstance(value, datetime):
            moment = _utc_of(value, tzid)
            local_end = moment.astimezone(zone(tzid)) if value.tzinfo is not None else value
            day = local_end.date() + (timedelta(days=1) if local_end.time() != time(0) else timedelta(0))
            return _utc_of(day, tzid)
        if not all_day and not isinstance(value, datetime) and isinstance(value, date):
            return _utc_of(datetime.combine(value, time(0)), tzid)
        return _utc_of(value, tzid)
    if component.get("duration") is not None:
        length = component.decoded("duration")
        if not isinstance(length, timedelta):
            raise NotAnEvent(N_("The event has a duration hub cannot read."))
        try:
            return _in_range(start + length)
        except OverflowError:
            raise NotAnEvent(
                N_("The event's dates lie outside the years %(first)s to %(last)s.", first=FIRST_YEAR, last=LAST_YEAR)
            ) from None
    return None


def _number(value: object) -> int:
    try:
        return max(0, min(int(str(value or 0)), 2**31 - 1))
    except (TypeError, ValueError, OverflowError):
        return 0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else ([value] if value is not None else [])


def parse(data: bytes | str, *, default_tzid: str = "Europe/Amsterdam") -> Remote:
    """The fields of the (first) event in ``data``: its master and its RECURRENCE-ID overrides.

    Anything a calendar server may hold is answered with these fields or :class:`NotAnEvent` saying
    why (never another error): hub reads events written by every client there is."""
    if len(data) > MAX_BYTES:
        raise NotAnEvent(N_("The event is larger than %(size)s MB; hub does not read it.", size=MAX_BYTES // 1_000_000))
    try:
        cal = read_calendar(data)  # (with no other calendar's time zones: hub.ical_reading)
        return _read(cal, default_tzid)
    except NotAnEvent:
        raise
    except ValidationError as exc:  # a repeat rule or zone hub refuses, in the same words as its form
        raise NotAnEvent(N_(exc.message)) from None
    except Exception as exc:  # icalendar and dateutil raise many kinds of errors on bad input
        raise NotAnEvent(
            N_("The event cannot be read: %(reason)s", reason=f"{type(exc).__name__}: {exc}"[:200])
        ) from None


def _read(cal: Any, default_tzid: str) -> Remote:
    events = list(cal.walk("VEVENT"))
    if not events:
        raise NotAnEvent(N_("The calendar object holds no event (VEVENT)."))
    uid = _clean(events[0].get("uid", ""), 255)
    if not uid:
        raise NotAnEvent(N_("The event has no UID."))
    events = [e for e in events if _clean(e.get("uid", ""), 255) == uid]
    masters = [e for e in events if e.get("recurrence-id") is None]
    if not masters:
        raise NotAnEvent(N_("The event holds moved occurrences only, not the series they belong to."))
    master = masters[0]  # a second master with the same UID is a client's error: the first counts
    if master.get("dtstart") is None:
        raise NotAnEvent(N_("The event has no start (DTSTART)."))
    start_value = master.decoded("dtstart")
    all_day = not isinstance(start_value, datetime)
    tzid = _zone_name(start_value, default_tzid, str(master["dtstart"].params.get("TZID", "")))
    start = _utc_of(start_value, tzid)
    end = _end(master, start, all_day, tzid)
    if end is None:
        end = start + (timedelta(days=1) if all_day else timedelta(0))
    # An end before the start (or an all-day event of no days) is read as the shortest there is.
    if all_day and end <= start:
        end = start + timedelta(days=1)
    elif end < start:
        end = start
    rules = _list(master.get("rrule"))
    if len(rules) > 1:
        raise NotAnEvent(N_("The event has more than one repeat rule (RRULE)."))
    rrule = check_rrule(_text(rules[0].to_ical())) if rules else ""
    # What hub keeps of EXDATEs and moved occurrences are those of occurrences the rule gives.
    starts = set(occurrence_starts(rrule, start, tzid, all_day)) if rrule else set()
    if rrule and not starts:
        raise NotAnEvent(N_("The series has no occurrences: its repeat rule ends before it starts."))
    exdates: set[str] = set()
    for item in _list(master.get("exdate")):
        for value in item.dts:
            moment = _utc_of(value.dt, tzid)
            if moment in starts:
                exdates.add(moment.isoformat())
    overrides: dict[str, list[str]] = {}
    for moved in events:
        if moved is master or moved.get("recurrence-id") is None:
            continue
        rid = _utc_of(moved.decoded("recurrence-id"), tzid)
        if rid not in starts or rid.isoformat() in overrides:
            continue  # an occurrence the series does not have: nothing to move
        if str(moved.get("status", "")).upper() == "CANCELLED":
            exdates.add(rid.isoformat())  # how some clients leave one occurrence out
            continue
        m_start = _utc_of(moved.decoded("dtstart"), tzid) if moved.get("dtstart") is not None else rid
        m_end = _end(moved, m_start, all_day, tzid) or m_start + (end - start)
        m_title = _clean(moved.get("summary", ""), TEXT_LIMITS["title"], _SHOWN_CONTROL)
        overrides[rid.isoformat()] = [
            rid.isoformat(),
            m_start.isoformat(),
            max(m_end, m_start).isoformat(),
            "" if m_title == _clean(master.get("summary", ""), TEXT_LIMITS["title"], _SHOWN_CONTROL) else m_title,
        ]
    status = "planned"
    if str(master.get("status", "")).upper() == "CANCELLED":
        status = "cancelled"
    elif str(master.get("x-hub-status", "")).lower() == "done":
        status = "done"
    attendees: dict[str, str] = {}
    for person in _list(master.get("attendee")):
        address = str(person).strip().removeprefix("mailto:").removeprefix("MAILTO:").strip().casefold()
        partstat = str(getattr(person, "params", {}).get("PARTSTAT", "NEEDS-ACTION")).upper()
        if address and partstat in PARTSTATS:
            attendees[address] = partstat
    fields = {
        "title": _clean(master.get("summary", ""), TEXT_LIMITS["title"], _SHOWN_CONTROL),
        "description": _clean(master.get("description", ""), TEXT_LIMITS["description"], _SHOWN_CONTROL),
        "location": _clean(master.get("location", ""), TEXT_LIMITS["location"], _SHOWN_CONTROL),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "all_day": all_day,
        "tzid": tzid if not all_day else default_tzid,
        "rrule": rrule,
        "exdates": sorted(exdates),
        "status": status,
        "overrides": sorted(overrides.values()),
    }
    method = _clean(cal.get("method", ""), 20).upper()
    return Remote(uid, fields, _number(master.get("sequence")), _modified(master), attendees, method)


def _modified(master: Any) -> datetime | None:
    """LAST-MODIFIED (or DTSTAMP) of the event; None when missing or unreadable (then "now" counts)."""
    for name in ("last-modified", "dtstamp"):
        try:
            value = master.decoded(name) if master.get(name) is not None else None
        except Exception:  # a broken stamp costs the stamp, not the event
            value = None
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(UTC)
    return None
