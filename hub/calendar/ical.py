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
from datetime import UTC, date, datetime, timedelta
from typing import Any

from icalendar import Calendar, Event, Timezone, vCalAddress, vRecur

from hub.calendar.times import day_start, parse_exdates, zone

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


def _event(snapshot: Snapshot, fields: dict[str, Any], *, private: bool, stamp: datetime) -> Event:
    all_day, tzid = fields["all_day"], fields["tzid"]
    event = Event()
    event.add("uid", snapshot.uid)
    event.add("dtstamp", stamp)
    event.add("sequence", snapshot.sequence)
    event.add("summary", fields["title"])
    event.add("dtstart", _moment(fields["start"], all_day, tzid))
    event.add("dtend", _moment(fields["end"], all_day, tzid))
    if fields["description"]:
        event.add("description", fields["description"])
    if fields["location"]:
        event.add("location", fields["location"])
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
        address.params["CN"] = person.name
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
    """The data holds no VEVENT hub can read."""


def _utc_of(value: date | datetime, tzid: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # a floating time: read in the appointment's zone
            return value.replace(tzinfo=zone(tzid)).astimezone(UTC)
        return value.astimezone(UTC)
    return day_start(value)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse(data: bytes | str, *, default_tzid: str = "Europe/Amsterdam") -> Remote:
    """The fields of the (first) event in ``data``: its master and its RECURRENCE-ID overrides."""
    try:
        cal = Calendar.from_ical(data)
    except ValueError as exc:
        raise NotAnEvent(str(exc)) from None
    events = list(cal.walk("VEVENT"))
    if not events:
        raise NotAnEvent("no VEVENT")
    uid = str(events[0].get("uid", ""))
    events = [e for e in events if str(e.get("uid", "")) == uid]
    masters = [e for e in events if e.get("recurrence-id") is None]
    master = masters[0] if masters else events[0]
    start_value = master.decoded("dtstart")
    all_day = not isinstance(start_value, datetime)
    tzid = str(master["dtstart"].params.get("TZID", "")) or (
        "UTC" if isinstance(start_value, datetime) and start_value.tzinfo is UTC else default_tzid
    )
    start = _utc_of(start_value, tzid)
    if master.get("dtend") is not None:
        end = _utc_of(master.decoded("dtend"), tzid)
    elif master.get("duration") is not None:
        end = start + master.decoded("duration")
    else:
        end = start + (timedelta(days=1) if all_day else timedelta(0))
    rrule = _text(master["rrule"].to_ical()) if master.get("rrule") is not None else ""
    exdates: list[str] = []
    raw_ex = master.get("exdate")
    for item in raw_ex if isinstance(raw_ex, list) else ([raw_ex] if raw_ex is not None else []):
        for value in item.dts:
            exdates.append(_utc_of(value.dt, tzid).isoformat())
    overrides = []
    for moved in events:
        if moved is master or moved.get("recurrence-id") is None:
            continue
        rid = _utc_of(moved.decoded("recurrence-id"), tzid)
        m_start = _utc_of(moved.decoded("dtstart"), tzid)
        m_end = _utc_of(moved.decoded("dtend"), tzid) if moved.get("dtend") is not None else m_start + (end - start)
        m_title = str(moved.get("summary", ""))
        overrides.append(
            [
                rid.isoformat(),
                m_start.isoformat(),
                m_end.isoformat(),
                "" if m_title == str(master.get("summary", "")) else m_title,
            ]
        )
    status = "planned"
    if str(master.get("status", "")).upper() == "CANCELLED":
        status = "cancelled"
    elif str(master.get("x-hub-status", "")).lower() == "done":
        status = "done"
    modified = None
    for name in ("last-modified", "dtstamp"):
        if master.get(name) is not None:
            value = master.decoded(name)
            modified = value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo else None
            if modified is not None:
                break
    attendees: dict[str, str] = {}
    raw_att = master.get("attendee")
    for person in raw_att if isinstance(raw_att, list) else ([raw_att] if raw_att is not None else []):
        address = str(person).removeprefix("mailto:").removeprefix("MAILTO:").strip().casefold()
        attendees[address] = str(person.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
    fields = {
        "title": str(master.get("summary", "")),
        "description": str(master.get("description", "")),
        "location": str(master.get("location", "")),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "all_day": all_day,
        "tzid": tzid if not all_day else default_tzid,
        "rrule": rrule,
        "exdates": sorted(set(exdates)),
        "status": status,
        "overrides": sorted(overrides),
    }
    sequence = int(master.get("sequence", 0) or 0)
    return Remote(uid, fields, sequence, modified, attendees, str(cal.get("method", "")).upper())
