"""What every parser yields (a leg of a call, or a rejected row), and the pieces they share: reading a
file record by record with byte offsets, decoding, splitting fields, and the PBX's clock.

Pure and streaming: nothing here touches the database, and a file is read one record at a time, so
a 1 GB file never sits in memory. Every record carries its first line number (for the report) and
the byte offset just after it (the drop folder's cursor).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.i18n import N_
from hub.telephony.numbers import ANONYMOUS_WORDS, EXTENSION_SUFFIX, without_invisible

BOM = b"\xef\xbb\xbf"
# A record spanning more physical lines than this is a broken quote, not an embedded newline.
MAX_LINES_PER_RECORD = 20


@dataclass
class Leg:
    """One record of a call as a PBX wrote it: a CDR row, a leg, a webhook event."""

    key: str  # this leg's own id
    group: str  # the call it belongs to (linkedid, a-leg uuid, history id, parent CallSid)
    started_at: datetime
    direction: str | None  # inbound, outbound, internal; None: this leg cannot tell (a b-leg)
    number: str = ""  # the outside number as received ("" for b-legs and internal calls)
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration: int = 0
    billsec: int = 0
    outcome: str = ""  # answered, missed, busy, failed, voicemail; "" still ringing (webhooks)
    extension: str = ""
    recording_url: str = ""
    children: tuple[str, ...] = ()  # other legs' ids known to belong to this call
    line: int = 0


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


class Reject(Exception):
    """A row that cannot be read; its reason is shown in the import report."""

    def __init__(self, reason: str) -> None:
        # A reason quotes what the row held; a NUL in it would make PostgreSQL refuse the whole report.
        super().__init__(reason.replace("\x00", "\u2400"))


@dataclass(frozen=True)
class RawRecord:
    line: int
    end: int  # byte offset just after the record
    text: str
    complete: bool  # ended with a newline (or the file ended and it was read as final)


def read_records(stream: BinaryIO, *, offset: int = 0, line: int = 1, final: bool = True) -> Iterator[RawRecord]:
    """The file's records from ``offset`` on: physical lines joined while a quoted field is open.

    ``final=False`` (a file the PBX may still be writing): a last line without its newline is left
    for the next read, so a half-written record is never taken for a whole one.
    """
    stream.seek(offset)
    pending: list[bytes] = []
    quotes = 0
    first_line = line
    position = offset
    for raw in stream:
        if position == 0 and raw.startswith(BOM):
            position += len(BOM)
            raw = raw[len(BOM) :]
        ends = raw.endswith(b"\n")
        if not ends and not final:
            return
        pending.append(raw)
        quotes += raw.count(b'"')
        position += len(raw)
        line += 1
        stripped = raw.rstrip(b"\r\n")
        if (
            quotes % 2 == 0
            or not ends
            or len(pending) >= MAX_LINES_PER_RECORD
            # An unescaped quote inside a field (FreeSWITCH writes them as they are): a line that
            # opens and closes with a quote is whole.
            or (len(pending) == 1 and stripped.startswith(b'"') and stripped.endswith(b'"'))
        ):
            text = decode(b"".join(pending))
            if text.strip():
                yield RawRecord(first_line, position, text.rstrip("\r\n"), ends or quotes % 2 == 0)
            pending, quotes, first_line = [], 0, line
    if pending and final:
        # The whole file read and a quoted field still open (a quote left open in one of the last
        # rows): the lines it took are reported as one truncated record, never silently dropped.
        # (Not final: the PBX may still be writing that field; they are read again next time.)
        text = decode(b"".join(pending))
        if text.strip():
            yield RawRecord(first_line, position, text.rstrip("\r\n"), False)


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Latin-1: each record on its own, so one odd row does not
    change how the rest of the file is read."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_QUOTED_SPLIT = re.compile(r'"\s*,\s*"')


def split_fields(text: str, counts: tuple[int, ...] = ()) -> list[str]:
    """The record's fields: a real CSV parser (quoted or bare, doubled quotes, a stray space before
    a field); for an all-quoted record whose count is off, a split on '","' that survives the
    unescaped quotes FreeSWITCH writes."""
    try:
        fields = next(csv.reader([text], skipinitialspace=True, strict=False), [])
    except csv.Error:
        # A newline outside quotes (a broken quote joined two physical lines): read as one line.
        try:
            flat = text.replace("\r", " ").replace("\n", " ")
            fields = next(csv.reader([flat], skipinitialspace=True, strict=False), [])
        except csv.Error:  # a field past the csv module's limit (128 KB): the row, not the import, fails
            raise Reject(N_("a field longer than %(limit)s characters", limit=csv.field_size_limit())) from None
    if counts and len(fields) not in counts:
        stripped = text.strip()
        if stripped.startswith('"') and stripped.endswith('"'):
            tolerant = _QUOTED_SPLIT.split(stripped[1:-1])
            if len(tolerant) in counts:
                return tolerant
    return [f.strip() for f in fields]


class Clock:
    """The PBX's local time to UTC, across the nights the clocks change.

    The night clocks go back, 02:xx happens twice: an exact moment (an epoch in the uniqueid) decides
    when there is one, else the file's order (a record is not written long before the one before
    it). The night they go forward, 02:xx does not exist: it is read with the offset before the
    change, and durations come from the PBX's own seconds, never from two wall-clock times.
    """

    def __init__(self, timezone: str = "UTC") -> None:
        try:
            self.zone: ZoneInfo | None = ZoneInfo(timezone) if timezone and timezone != "UTC" else None
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {timezone!r}") from None
        self.last: datetime | None = None
        # Local hour → the zone's UTC offsets in it (the earlier and the later reading of a repeated
        # hour): the zone's rules are asked once per hour of a file, not three times per row.
        self._hours: dict[datetime, tuple[timedelta, timedelta] | None] = {}

    def to_utc(self, moment: datetime, *, near: float | None = None) -> datetime:
        if moment.tzinfo is not None:
            result = moment.astimezone(UTC)
        elif self.zone is None:
            result = moment.replace(tzinfo=UTC)
        else:
            first, second = self._readings(moment)
            if first == second:
                result = first
            elif near is not None:
                result = min((first, second), key=lambda m: abs(m.timestamp() - near))
            elif self.last is not None and first < self.last - timedelta(minutes=10):
                result = second  # the file already passed the first 02:xx
            else:
                result = first
        if self.last is None or result > self.last:
            self.last = result
        return result

    def _readings(self, moment: datetime) -> tuple[datetime, datetime]:
        """The two UTC readings of a local time (fold 0 and 1; equal unless the hour is repeated
        or skipped), as ``moment.replace(tzinfo=zone, fold=…).astimezone(UTC)`` gives them."""
        assert self.zone is not None
        hour = moment.replace(minute=0, second=0, microsecond=0)
        if hour not in self._hours:
            if len(self._hours) > 100_000:
                self._hours.clear()
            self._hours[hour] = self._offsets(hour)
        offsets = self._hours[hour]
        if offsets is None:  # the zone changes its offset within this hour: ask it for each time
            return (
                moment.replace(tzinfo=self.zone, fold=0).astimezone(UTC),
                moment.replace(tzinfo=self.zone, fold=1).astimezone(UTC),
            )
        plain = moment.replace(tzinfo=UTC)
        return plain - offsets[0], plain - offsets[1]

    def _offsets(self, hour: datetime) -> tuple[timedelta, timedelta] | None:
        """The zone's offsets (fold 0, fold 1) for the whole local hour, or None if they change in it."""
        found = []
        for fold in (0, 1):
            start = hour.replace(tzinfo=self.zone, fold=fold).utcoffset()
            end = (
                (hour + timedelta(minutes=59, seconds=59, microseconds=999_999))
                .replace(tzinfo=self.zone, fold=fold)
                .utcoffset()
            )
            if start is None or start != end:
                return None
            found.append(start)
        return found[0], found[1]


def parse_moment(text: str) -> datetime:
    """``2025-03-04 10:15:02``, ``2023/09/19 13:33:54``, ISO 8601 with a zone, or epoch seconds."""
    value = text.strip()
    if len(value) == 19 and value[10] == " " and value[4] == "-" and "/" not in value and "Z" not in value:
        try:  # Asterisk's own shape, read without the conversions below (they would change nothing)
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    if not value:
        raise Reject(N_("bad date: empty"))
    if value.replace(".", "", 1).isdigit() and len(value) >= 9:
        seconds = float(value)
        if seconds > 1e14:  # microseconds (FreeSWITCH *_uepoch)
            seconds /= 1e6
        return datetime.fromtimestamp(seconds, UTC)
    try:
        return datetime.fromisoformat(value.replace("/", "-").replace("Z", "+00:00"))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        raise Reject(N_("bad date: %(value)s", value=value[:40]))
    return parsed


def parse_seconds(text: str) -> int:
    """``219``, ``"219"``, ``00:05:36`` → seconds."""
    value = text.strip()
    if not value:
        return 0
    if ":" in value:
        try:
            parts = [int(p) for p in value.split(":")]
        except ValueError:
            raise Reject(N_("bad duration: %(value)s", value=value[:20])) from None
        total = 0
        for part in parts:
            total = total * 60 + part
        return total
    try:
        return max(int(float(value)), 0)
    except ValueError:
        raise Reject(N_("bad duration: %(value)s", value=value[:20])) from None


_NUMBER_CHARS = re.compile(r"^[+*#\d\s\-./()\u2010-\u2015\u2212]*$")
_NUMBER_WORDS = re.compile(r"^(?:ext\.|client:|sips?:|tel:)", re.IGNORECASE)


def check_number(raw: str) -> str:
    """The number as received, if it is one a PBX writes (digits, an extension, an anonymous word, a
    SIP URI); anything else is an unparsable number and rejects the row."""
    return _check_number(raw)


@lru_cache(maxsize=16_384)  # an unparsable number raises, and is not cached
def _check_number(raw: str) -> str:
    # Invisible marks are no part of a number (see without_invisible), and PostgreSQL refuses a NUL.
    value = without_invisible(raw).strip()
    if not value or _NUMBER_WORDS.match(value) or value.casefold() in ANONYMOUS_WORDS:
        return value
    # "+31 20 1234567 ext. 12": an extension after the number (hub.telephony.numbers drops it).
    if _NUMBER_CHARS.match(value):
        return value
    number = EXTENSION_SUFFIX.sub("", value)
    if _NUMBER_CHARS.match(number) and any(ch.isdigit() for ch in number):
        return value
    raise Reject(N_("unparsable number: %(value)s", value=value[:40]))


@dataclass
class SourceConfig:
    """What a parser needs to know of its source."""

    format: str
    region: str = "NL"
    timezone: str = "UTC"
    fields: tuple[str, ...] = ()
    extensions: frozenset[str] = field(default_factory=frozenset)
