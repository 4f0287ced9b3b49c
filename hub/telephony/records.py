"""What every parser yields (a leg of a call, or a rejected row), and the pieces they share: reading a
file record by record with byte offsets, decoding, splitting fields, and the PBX's clock.

Pure and streaming: nothing here touches the database, and a file is read one record at a time, so
a 1 GB file never sits in memory. Every record carries its first line number (for the report) and
the byte offset just after it (the drop folder's cursor).
"""

from __future__ import annotations

import codecs
import csv
import re
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import BinaryIO, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.i18n import N_
from hub.telephony.numbers import ANONYMOUS_WORDS, EXTENSION_SUFFIX, without_invisible

BOM = b"\xef\xbb\xbf"
# A record spanning more physical lines than this is a broken quote, not an embedded newline.
MAX_LINES_PER_RECORD = 20
# A record longer than this is no PBX's (cdr_csv's longest fields, lastdata and userfield, are a
# few KB): rejected unread.
MAX_RECORD_BYTES = 1 << 20
# What the call table holds (hub.models.telephony.Call): a longer key or URL is no PBX's.
MAX_KEY = 200
MAX_URL = 1000
# The longest call believed: longer is a PBX's broken clock or a forged record (and the end it
# gives must stay a date; durations are 32-bit integers in the database).
MAX_CALL_SECONDS = 31 * 24 * 3600
# Moments a call can have taken place in: outside is an unset PBX clock or a forged record (and
# the year 1 or 9999 plus a time zone or a duration is no date at all).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


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

    def __post_init__(self) -> None:
        """Ids and text as the database takes them, whatever the PBX or a webhook sent: no NUL or
        other invisible characters (PostgreSQL refuses a NUL), no key longer than its column, and
        a recording only as a link that opens a recording (raises Reject for an unusable id)."""
        key, group = self.key, self.group
        if len(key) > MAX_KEY or len(group) > MAX_KEY or not (key.isprintable() and group.isprintable()):
            self.key, self.group = call_key(key), call_key(group)
        if self.children:
            self.children = tuple(filter(None, (call_key(child, required=False) for child in self.children)))
        if not self.extension.isprintable():
            self.extension = without_invisible(self.extension).strip()
        if self.recording_url:
            self.recording_url = recording_url(self.recording_url)


def call_key(raw: str, *, required: bool = True) -> str:
    """A PBX's id of a call or leg, without invisible characters; Reject if it is empty (when
    ``required``) or longer than the database holds."""
    value = without_invisible(raw).strip()
    if len(value) > MAX_KEY:
        raise Reject(N_("a call id longer than %(limit)s characters", limit=MAX_KEY))
    if not value and required:
        raise Reject(N_("no call id"))
    return value


def recording_url(raw: str) -> str:
    """The recording as an http(s) link, or a plain file name (FreePBX's recordingfile); anything
    else ("javascript:", "data:", "//host") is no recording and would run or lead elsewhere when a
    colleague clicks it: dropped, as a URL too long to store."""
    value = without_invisible(raw).strip()
    if not value or len(value) > MAX_URL or any(ch.isspace() for ch in value):
        return ""
    if value[:8].lower().startswith(("http://", "https://")):
        return value if len(value) > 8 else ""
    head = value.split("/", 1)[0]
    if ":" in head or "\\" in value or value.startswith("/"):
        return ""
    return value


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
    too_long: bool = False  # longer than MAX_RECORD_BYTES: its text is not read (it is rejected)


def read_records(stream: BinaryIO, *, offset: int = 0, line: int = 1, final: bool = True) -> Iterator[RawRecord]:
    """The file's records from ``offset`` on: physical lines joined while a quoted field is open.

    ``final=False`` (a file the PBX may still be writing): a last line without its newline is left
    for the next read, so a half-written record is never taken for a whole one.
    """
    stream.seek(offset)
    pending: list[bytes] = []
    quotes = size = 0
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
        size += len(raw)
        position += len(raw)
        line += 1
        stripped = raw.rstrip(b"\r\n")
        if size > MAX_RECORD_BYTES:
            # No PBX writes a record this long: a broken or hostile file. Not read, not decoded and
            # never split into fields (a 50 MB line of commas would be 25 million of them).
            yield RawRecord(first_line, position, "", ends or quotes % 2 == 0, too_long=True)
            pending, quotes, size, first_line = [], 0, 0, line
        elif (
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
            pending, quotes, size, first_line = [], 0, 0, line
    if pending and final:
        # The whole file read and a quoted field still open (a quote left open in one of the last
        # rows): the lines it took are reported as one truncated record, never silently dropped.
        # (Not final: the PBX may still be writing that field; they are read again next time.)
        text = decode(b"".join(pending))
        if text.strip():
            yield RawRecord(first_line, position, text.rstrip("\r\n"), False)


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Latin-1: each record on its own, so one odd row does not
    change how the rest of the file is read. NUL bytes are no part of a record (no PBX writes one;
    a file system leaves a run of them where a crash interrupted a write): left out."""
    if b"\x00" in data:
        data = data.replace(b"\x00", b"")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _utf16(head: bytes) -> str | None:
    """The UTF-16 codec a file's first bytes are written in (a BOM, or the NUL of every ASCII
    character), or None."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if len(head) >= 4 and head[0] and head[2] and not head[1] and not head[3]:
        return "utf-16-le"
    if len(head) >= 4 and head[1] and head[3] and not head[0] and not head[2]:
        return "utf-16-be"
    return None


class _Converted(tempfile.SpooledTemporaryFile[bytes]):
    """A file's content as :func:`readable` made it (in memory up to 16 MB, then on disk)."""


def readable(stream: BinaryIO, *, unpack: bool = True) -> BinaryIO:
    """``stream`` as the readers take it: UTF-8 with LF or CRLF line ends. A gzip file (logrotate's
    Master.csv.1.gz) is read unpacked, a UTF-16 file (what Windows PowerShell's ``>`` and Out-File
    write) as UTF-8, and lines ended by a CR alone (old Mac tools) as lines ended by LF; any other
    stream is itself. Offsets are then those of the converted copy; converting a file's first
    bytes always gives the same copy, so a drop folder's cursor stays true while the file grows.
    Raises ValueError for a gzip file that unpacks to far more than any call records would."""
    if isinstance(stream, _Converted):
        return stream  # converted already (a gzip file in a gzip file is not unpacked twice)
    stream.seek(0)
    head = stream.read(4096)
    if unpack and head.startswith(GZIP_MAGIC):
        return readable(_unpacked(stream), unpack=False)
    encoding = _utf16(head)
    if encoding is None and not (b"\r" in head and b"\n" not in head):
        return stream
    copy = _Converted(max_size=16 << 20)
    stream.seek(0)
    # Not final: an odd last byte of a file still being written waits for its partner.
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace") if encoding else None
    while chunk := stream.read(1 << 20):
        copy.write(decoder.decode(chunk).encode("utf-8") if decoder else chunk.replace(b"\r", b"\n"))
    copy.seek(0)
    return cast(BinaryIO, copy)


GZIP_MAGIC = b"\x1f\x8b"
# Call records pack 10 to 30 times smaller; a file that unpacks to more is a zip bomb, not records.
MAX_UNPACKED_RATIO = 200


def _unpacked(stream: BinaryIO) -> BinaryIO:
    """A gzip file's content (several members one after the other, as ``cat a.gz b.gz`` makes
    them, too), a MB at a time so a bomb never sits in memory. A file cut short or still being
    compressed gives what came before the cut."""
    copy = _Converted(max_size=16 << 20)
    stream.seek(0)
    packed = unpacked = 0
    inflate = zlib.decompressobj(wbits=31)
    try:
        while chunk := stream.read(1 << 16):
            packed += len(chunk)
            while chunk:
                data = inflate.decompress(chunk, 1 << 20)
                unpacked += len(data)
                if unpacked > MAX_UNPACKED_RATIO * packed + (1 << 20):
                    raise ValueError(f"a gzip file that unpacks to more than {MAX_UNPACKED_RATIO} times its size")
                copy.write(data)
                if inflate.eof:  # the next member, if any
                    chunk, inflate = inflate.unused_data, zlib.decompressobj(wbits=31)
                else:
                    chunk = inflate.unconsumed_tail
    except zlib.error:
        pass  # cut short (or padding after the last member): what came before is read
    copy.seek(0)
    return cast(BinaryIO, copy)


_QUOTED_SPLIT = re.compile(r'"\s*,\s*"')


def split_fields(text: str, counts: tuple[int, ...] = (), delimiter: str = ",") -> list[str]:
    """The record's fields: a real CSV parser (quoted or bare, doubled quotes, a stray space before
    a field); for an all-quoted record whose count is off, a split on '","' that survives the
    unescaped quotes FreeSWITCH writes."""
    try:
        fields = next(csv.reader([text], delimiter=delimiter, skipinitialspace=True, strict=False), [])
    except csv.Error:
        # A newline outside quotes (a broken quote joined two physical lines): read as one line.
        try:
            flat = text.replace("\r", " ").replace("\n", " ")
            fields = next(csv.reader([flat], delimiter=delimiter, skipinitialspace=True, strict=False), [])
        except csv.Error:  # a field past the csv module's limit (128 KB): the row, not the import, fails
            raise Reject(N_("a field longer than %(limit)s characters", limit=csv.field_size_limit())) from None
    if counts and len(fields) not in counts and delimiter == ",":
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
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):  # the year 318857
            raise Reject(N_("bad date: %(value)s", value=value[:40])) from None
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
    else:
        try:
            total = max(int(float(value)), 0)
        except (ValueError, OverflowError):  # "nan", "inf", "1e400"
            raise Reject(N_("bad duration: %(value)s", value=value[:20])) from None
    if not 0 <= total <= MAX_CALL_SECONDS:
        raise Reject(N_("bad duration: %(value)s", value=value[:20]))
    return total


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
