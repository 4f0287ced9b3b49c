"""One parser per call-record format: a stream in, legs (or rejected rows with their line) out.

Formats (research part A): Asterisk cdr_csv (16, 17, 18 or 21 columns, told apart per row),
cdr_custom (the admin's field order), CEL events (grouped by linkedid), FreeSWITCH mod_cdr_csv
(the ``default`` and ``example`` templates), mod_json_cdr (one document per leg, URL-encoded values),
3CX's CDR output (the admin's field order), Twilio status callbacks and a generic CSV by column
mapping. Pure: no database; the caller groups legs into calls and stores them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import operator
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate
from typing import BinaryIO, NamedTuple
from urllib.parse import parse_qsl, unquote

from hub.i18n import N_
from hub.telephony.numbers import is_extension
from hub.telephony.records import (
    BOM,
    EARLIEST,
    LATEST,
    MAX_CALL_SECONDS,
    MAX_RECORD_BYTES,
    Clock,
    Leg,
    RawRecord,
    Reject,
    Rejected,
    SourceConfig,
    check_number,
    parse_moment,
    parse_seconds,
    read_records,
    readable,
    split_fields,
)
from hub.text import csv_delimiter

ASTERISK_CSV = [
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
    "peeraccount",
    "linkedid",
    "sequence",
]
ASTERISK_CSV_COUNTS = (16, 17, 18, 21)
# cdr_custom.conf.sample's mapping.
ASTERISK_CUSTOM = [
    "clid",
    "src",
    "dst",
    "dcontext",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "accountcode",
    "uniqueid",
    "userfield",
    "sequence",
]
# cel_custom.conf.sample's legacy mapping.
ASTERISK_CEL = [
    "eventtype",
    "eventtime",
    "cid_name",
    "cid_num",
    "cid_ani",
    "cid_rdnis",
    "cid_dnid",
    "exten",
    "context",
    "channame",
    "appname",
    "appdata",
    "amaflags",
    "accountcode",
    "uniqueid",
    "linkedid",
    "peer",
    "userfield",
    "userdeftype",
    "eventextra",
]
FREESWITCH_CSV = [
    "caller_id_name",
    "caller_id_number",
    "destination_number",
    "context",
    "start_stamp",
    "answer_stamp",
    "end_stamp",
    "duration",
    "billsec",
    "hangup_cause",
    "uuid",
    "bleg_uuid",
    "accountcode",
    "read_codec",
    "write_codec",
]
FREESWITCH_CSV_COUNTS = (13, 15)
THREECX = [
    "historyid",
    "callid",
    "duration",
    "time-start",
    "time-answered",
    "time-end",
    "reason-terminated",
    "from-no",
    "to-no",
    "from-dn",
    "to-dn",
    "dial-no",
    "reason-changed",
    "final-number",
    "final-dn",
    "bill-code",
    "bill-rate",
    "bill-cost",
    "bill-name",
    "chain",
    "from-type",
    "to-type",
    "final-type",
    "from-dispname",
    "to-dispname",
    "final-dispname",
    "missed-queue-calls",
]
GENERIC = ("call_id", "parent_id", "direction", "from", "to", "start", "answer", "end", "duration", "billsec")

DEFAULT_FIELDS = {
    "asterisk-custom": ASTERISK_CUSTOM,
    "asterisk-cel": ASTERISK_CEL,
    "3cx": THREECX,
}

ASTERISK_OUTCOMES = {
    "ANSWERED": "answered",
    "NO ANSWER": "missed",
    "NOANSWER": "missed",
    "CANCEL": "missed",
    "BUSY": "busy",
    "FAILED": "failed",
    "CONGESTION": "failed",
}
# Q.850 names FreeSWITCH writes as hangup_cause for calls that were never answered.
FREESWITCH_BUSY = {"USER_BUSY"}
FREESWITCH_MISSED = {"NO_ANSWER", "ORIGINATOR_CANCEL", "NO_USER_RESPONSE", "ALLOTTED_TIMEOUT", "CALL_REJECTED"}
TWILIO_OUTCOMES = {
    "completed": "answered",
    "in-progress": "answered",
    "busy": "busy",
    "failed": "failed",
    "no-answer": "missed",
    "canceled": "missed",
}


class Item(NamedTuple):
    """A parsed record, and where a reader resumes after it (byte offset, line number)."""

    result: Leg | Rejected
    end: int
    next_line: int
    # The line after the record that gave it, where that is past where a reader resumes (a CEL
    # file's cursor waits at the first event of a channel still open); 0: ``next_line``.
    read_to: int = 0


# --- shared pieces ------------------------------------------------------------------------------------


def channel_extension(channel: str) -> str:
    """``PJSIP/100-00000013`` → ``100``; ``SIP/trunk-0001`` → ``trunk``; ``Local/100@from-internal-…`` → ``100``."""
    if "/" not in channel:
        return ""
    name = channel.split("/", 1)[1]
    name = name.split("@", 1)[0]
    return name.rsplit("-", 1)[0] if "-" in name else name


def internal(number: str, config: SourceConfig) -> bool:
    value = number.strip()
    return bool(value) and (value in config.extensions or is_extension(value))


def classify(src: str, dst: str, config: SourceConfig, *, answered_by: str = "") -> tuple[str, str, str]:
    """(direction, outside number, extension) from the caller, the callee and who answered."""
    src, dst = check_number(src), check_number(dst)
    src_inside, dst_inside = internal(src, config), internal(dst, config)
    inside_by = answered_by if internal(answered_by, config) else ""
    if src_inside and (dst_inside or not dst):
        return "internal", "", inside_by or src
    if src_inside:
        return "outbound", dst, src
    return "inbound", src, inside_by or (dst if dst_inside else "")


def finish(leg: Leg) -> Leg:
    """Times that agree with the durations: the end follows from the start and the PBX's own seconds
    (no negative or hour-long phantom durations the night the clocks change)."""
    if leg.duration and (leg.ended_at is None or leg.ended_at != leg.started_at + timedelta(seconds=leg.duration)):
        leg.ended_at = leg.started_at + timedelta(seconds=leg.duration)
    elif leg.ended_at is not None:
        if leg.ended_at < leg.started_at:
            leg.ended_at = leg.started_at
        leg.duration = int((leg.ended_at - leg.started_at).total_seconds())
    if leg.answered_at is not None and leg.ended_at is not None:
        if leg.billsec:
            leg.answered_at = leg.ended_at - timedelta(seconds=leg.billsec)
        elif not leg.started_at <= leg.answered_at <= leg.ended_at:
            leg.answered_at = min(max(leg.answered_at, leg.started_at), leg.ended_at)
        leg.billsec = int((leg.ended_at - leg.answered_at).total_seconds())
    if leg.outcome == "answered" and leg.answered_at is None:
        leg.answered_at = (leg.ended_at or leg.started_at) - timedelta(seconds=leg.billsec)
    if leg.duration > MAX_CALL_SECONDS:  # a start and an end years apart: a clock, not a call
        raise Reject(N_("bad duration: %(value)s", value=leg.duration))
    return leg


def _hash_key(text: str) -> str:
    """A row with no id of its own (16-column cdr_csv): its content is its key, so it imports once."""
    return "h:" + hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _moment(text: str, clock: Clock, near: float | None = None) -> datetime | None:
    """The moment ``text`` names, in UTC; Reject for one no call took place at (see EARLIEST)."""
    if not text.strip():
        return None
    try:
        moment = clock.to_utc(parse_moment(text), near=near)
    except (OverflowError, ValueError):  # the year 1 moved by a time zone: before any date
        moment = None
    if moment is None or not EARLIEST <= moment < LATEST:
        raise Reject(N_("bad date: %(value)s", value=text.strip()[:40]))
    return moment


def _epoch_of(uniqueid: str) -> float | None:
    """Asterisk's uniqueid is ``<epoch>.<sequence>``: the channel's creation moment, exactly."""
    head = uniqueid.split(".", 1)[0]
    return float(head) if head.isdigit() and len(head) >= 9 else None


# --- Asterisk CDR (cdr_csv and cdr_custom) --------------------------------------------------------------


# The fields an Asterisk CDR leg is made of, in the order :func:`_asterisk` takes them.
ASTERISK_LEG_FIELDS = (
    *("uniqueid", "start", "dstchannel", "channel", "src", "dst", "disposition", "lastapp", "linkedid"),
    *("answer", "end", "duration", "billsec", "recordingfile"),
)


def asterisk_leg(row: Mapping[str, str], text: str, config: SourceConfig, clock: Clock) -> Leg:
    return _asterisk(*(row.get(name, "") for name in ASTERISK_LEG_FIELDS), text=text, config=config, clock=clock)


def _asterisk(
    uniqueid: str,
    start: str,
    dstchannel: str,
    channel: str,
    src: str,
    dst: str,
    disposition: str,
    lastapp: str,
    linkedid: str,
    answer: str,
    end: str,
    duration: str,
    billsec: str,
    recordingfile: str,
    *,
    text: str,
    config: SourceConfig,
    clock: Clock,
) -> Leg:
    uniqueid = uniqueid.strip()
    started = _moment(start, clock, near=_epoch_of(uniqueid))
    if started is None:
        raise Reject(N_("bad date: no start"))
    answered_by = channel_extension(dstchannel)
    if not src.strip():
        caller_ext = channel_extension(channel)
        if internal(caller_ext, config):
            src = caller_ext
    direction, number, extension = classify(src, dst, config, answered_by=answered_by)
    disposition = disposition.strip().upper()
    if disposition not in ASTERISK_OUTCOMES:
        raise Reject(N_("unknown disposition: %(value)s", value=disposition[:20]))
    outcome = ASTERISK_OUTCOMES[disposition]
    if lastapp.strip().lower() == "voicemail":
        outcome = "voicemail"
    key = uniqueid or _hash_key(text)
    return finish(
        Leg(
            key=key,
            group=linkedid.strip() or key,
            started_at=started,
            answered_at=_moment(answer, clock),
            ended_at=_moment(end, clock),
            duration=parse_seconds(duration),
            billsec=parse_seconds(billsec),
            direction=direction,
            number=number,
            outcome=outcome,
            extension=extension,
            recording_url=recordingfile.strip(),
        )
    )


def _asterisk_positions(names: tuple[str, ...] | list[str]) -> Callable[[list[str]], list[str]]:
    """A row's fields by position → the (stripped) fields :func:`_asterisk` takes, as
    :func:`split_fields` and ``row.get`` give them; a field the format lacks is empty."""
    last = {name: i for i, name in enumerate(names)}  # a name given twice: its last place (as a dict)
    where = [last.get(name, -1) for name in ASTERISK_LEG_FIELDS]
    if all(i >= 0 for i in where[:-1]) and where[-1] < 0:  # cdr_csv: no recordingfile
        getter = operator.itemgetter(*where[:-1])

        def pick(fields: list[str]) -> list[str]:
            return [f.strip() for f in getter(fields)] + [""]

        return pick

    def pick_any(fields: list[str]) -> list[str]:
        return [fields[i].strip() if i >= 0 else "" for i in where]

    return pick_any


def _asterisk_csv(record: RawRecord, config: SourceConfig, clock: Clock) -> Leg:
    fields = split_fields(record.text, ASTERISK_CSV_COUNTS)
    if len(fields) not in ASTERISK_CSV_COUNTS:
        raise Reject(N_("wrong column count: %(count)s (expected 16, 17, 18 or 21)", count=len(fields)))
    names = ASTERISK_CSV[:16] + (
        ["uniqueid", "userfield"][: len(fields) - 16] if len(fields) < 21 else ASTERISK_CSV[16:]
    )
    return asterisk_leg(dict(zip(names, fields, strict=True)), record.text, config, clock)


def _by_fields(names: tuple[str, ...] | list[str]) -> Callable[[RawRecord], dict[str, str]]:
    count = len(names)

    def row(record: RawRecord) -> dict[str, str]:
        fields = split_fields(record.text, (count,))
        if len(fields) != count:
            raise Reject(N_("wrong column count: %(count)s (expected %(expected)s)", count=len(fields), expected=count))
        return dict(zip(names, fields, strict=True))

    return row


# --- FreeSWITCH -------------------------------------------------------------------------------------------


def freeswitch_leg(row: Mapping[str, str], config: SourceConfig, clock: Clock) -> Leg:
    uuid = row.get("uuid", "").strip()
    if not uuid:
        raise Reject(N_("no uuid"))
    epoch = row.get("start_epoch", "").strip()
    started = _moment(epoch or row.get("start_stamp", ""), clock)
    if started is None:
        raise Reject(N_("bad date: no start"))
    cause = row.get("hangup_cause", "").strip().upper()
    answer = row.get("answer_epoch", "").strip()
    answered_at = _moment(row.get("answer_stamp", "") if answer in ("", "0") else answer, clock)
    billsec = parse_seconds(row.get("billsec", ""))
    if answered_at is not None or billsec:
        outcome = "answered"
    elif cause in FREESWITCH_BUSY:
        outcome = "busy"
    elif cause in FREESWITCH_MISSED or not cause:
        outcome = "missed"
    else:
        outcome = "failed"
    b_leg = row.get("leg", "") == "b"
    answered_by = row.get("answered_by", "")
    direction, number, extension = classify(
        row.get("caller_id_number", ""), row.get("destination_number", ""), config, answered_by=answered_by
    )
    parent = row.get("originating_leg_uuid", "").strip() if b_leg else ""
    end = row.get("end_epoch", "").strip()
    return finish(
        Leg(
            key=uuid,
            group=parent or uuid,
            children=tuple(filter(None, [row.get("bleg_uuid", "").strip(), row.get("bridge_uuid", "").strip()])),
            started_at=started,
            answered_at=answered_at,
            ended_at=_moment(end if end not in ("", "0") else row.get("end_stamp", ""), clock),
            duration=parse_seconds(row.get("duration", "")),
            billsec=billsec,
            direction=None if b_leg else direction,
            number="" if b_leg else number,
            outcome=outcome,
            extension=extension if not b_leg or internal(extension, config) else "",
            recording_url=row.get("record_path", "").strip(),
        )
    )


def _freeswitch_csv(record: RawRecord, config: SourceConfig, clock: Clock) -> Leg:
    names = config.fields or ()
    if names:
        row = _by_fields(names)(record)
    else:
        fields = split_fields(record.text, FREESWITCH_CSV_COUNTS)
        if len(fields) not in FREESWITCH_CSV_COUNTS:
            raise Reject(N_("wrong column count: %(count)s (expected 13 or 15)", count=len(fields)))
        row = dict(zip(FREESWITCH_CSV[: len(fields)], fields, strict=True))
    return freeswitch_leg(row, config, clock)


def freeswitch_json_leg(document: Mapping[str, object], config: SourceConfig, clock: Clock) -> Leg:
    """A mod_json_cdr document (values URL-encoded by default: ``%2B3361…``)."""
    raw_vars = document.get("variables")
    if not isinstance(raw_vars, dict):
        raise Reject(N_("no variables in the JSON CDR"))
    variables = {str(k): unquote(str(v)) for k, v in raw_vars.items()}
    channel = document.get("channel_data")
    direction = unquote(str(channel.get("direction", ""))) if isinstance(channel, dict) else ""
    if not variables.get("caller_id_number"):
        flows = document.get("callflow")
        flow = flows[0] if isinstance(flows, list) and flows else flows
        profile = flow.get("caller_profile") if isinstance(flow, dict) else None
        if isinstance(profile, dict):
            variables["caller_id_number"] = unquote(str(profile.get("caller_id_number", "")))
            variables.setdefault("destination_number", unquote(str(profile.get("destination_number", ""))))
    is_b_leg = direction == "outbound" and bool(variables.get("originating_leg_uuid"))
    if is_b_leg:
        variables["leg"] = "b"
        variables["answered_by"] = variables.get("destination_number", "")
    return freeswitch_leg(variables, config, clock)


# --- 3CX ------------------------------------------------------------------------------------------------


def _dn(value: str) -> str:
    """``Ext.960`` → ``960``."""
    value = value.strip()
    return value[4:] if value.lower().startswith("ext.") else value


def threecx_leg(row: Mapping[str, str], config: SourceConfig, clock: Clock) -> Leg:
    key = row.get("historyid", "").strip()
    if key.lower().startswith("call "):
        key = key[5:].strip()
    if not key:
        raise Reject(N_("no history id"))
    started = _moment(row.get("time-start", ""), clock)
    if started is None:
        raise Reject(N_("bad date: no start"))
    answered_at = _moment(row.get("time-answered", ""), clock)
    from_no, to_no = row.get("from-no", ""), row.get("to-no", "") or row.get("dial-no", "")
    from_type, to_type = row.get("from-type", "").lower(), row.get("to-type", "").lower()
    final = _dn(row.get("final-dn", "") or row.get("final-number", ""))
    if from_type == "line" or (not from_type and not internal(_dn(from_no), config) and not from_no.startswith("Ext.")):
        direction, number = "inbound", from_no
        extension = final or _dn(row.get("to-dn", "") or to_no)
    elif to_type == "line" or not (internal(_dn(to_no), config) or to_no.startswith("Ext.")):
        direction, number = "outbound", row.get("dial-no", "") or to_no
        extension = _dn(row.get("from-dn", "") or from_no)
    else:
        direction, number, extension = "internal", "", _dn(from_no)
    reason = row.get("reason-terminated", "").lower()
    if answered_at is not None:
        outcome = "answered"
    elif "busy" in reason:
        outcome = "busy"
    elif "fail" in reason:
        outcome = "failed"
    else:
        outcome = "missed"
    if "vmail" in final.lower() or "voicemail" in row.get("final-type", "").lower():
        outcome = "voicemail"
    ended_at = _moment(row.get("time-end", ""), clock)
    duration = parse_seconds(row.get("duration", ""))
    return finish(
        Leg(
            key=key,
            group=key,
            started_at=started,
            answered_at=answered_at,
            ended_at=ended_at,
            # 3CX's duration is the talk time, from the answer.
            billsec=duration if answered_at is not None else 0,
            direction=direction,
            number=check_number(number),
            outcome=outcome,
            extension=extension if internal(extension, config) else "",
        )
    )


# --- Twilio and the generic webhook ------------------------------------------------------------------


def _twilio_party(value: str) -> str:
    """``client:alice`` → ``alice``; ``sip:100@pbx`` → ``100``."""
    value = value.strip()
    if value.lower().startswith("client:"):
        return value[7:]
    if value.lower().startswith(("sip:", "sips:")):
        return value.split(":", 1)[1].split("@", 1)[0]
    return value


def _app_party(value: str) -> bool:
    """``client:alice`` or ``sip:alice@acme.sip.twilio.com``: a phone inside (a Twilio Client app,
    a SIP domain's user), not a phone number."""
    text = value.strip().lower()
    if text.startswith("client:"):
        return True
    if text.startswith(("sip:", "sips:")):
        user = text.split(":", 1)[1].split("@", 1)[0].lstrip("+")
        return not user.isdigit()
    return False


def twilio_leg(params: Mapping[str, str], config: SourceConfig) -> Leg:
    """One status callback (form parameters, as Twilio documents them)."""
    sid = params.get("CallSid", "").strip()
    if not sid:
        raise Reject(N_("no CallSid"))
    clock = Clock("UTC")
    stamp = params.get("Timestamp", "").strip()
    moment = _moment(stamp, clock) if stamp else None
    if moment is None:
        from hub.models.base import utcnow

        moment = utcnow().replace(microsecond=0)
    status = params.get("CallStatus", "").strip().lower()
    duration = parse_seconds(params.get("CallDuration", "") or params.get("Duration", ""))
    outcome = TWILIO_OUTCOMES.get(status, "")
    if status == "completed" and not duration and params.get("AnsweredBy", "") == "":
        outcome = "answered"
    terminal = status in ("completed", "busy", "failed", "no-answer", "canceled")
    started = moment - timedelta(seconds=duration) if terminal else moment
    twilio_direction = params.get("Direction", "").strip().lower()
    parent = params.get("ParentCallSid", "").strip()
    raw_src, raw_dst = params.get("From", ""), params.get("To", "")
    src, dst = _twilio_party(raw_src), _twilio_party(raw_dst)
    src_app, dst_app = _app_party(raw_src), _app_party(raw_dst)
    if twilio_direction == "inbound" and not src_app:
        direction, number, extension = "inbound", src, dst if dst_app else ""
    elif twilio_direction == "inbound" or (dst_app and twilio_direction != "outbound-dial"):
        # A staff member's Twilio Client or SIP phone calling out through hub's TwiML app (Twilio
        # calls that leg "inbound"), or a call to one of them: "alice" is no caller's number.
        direction, number, extension = ("internal", "", src if src_app else dst) if dst_app else ("outbound", dst, src)
    elif twilio_direction == "outbound-dial" and parent:
        direction, number, extension = None, "", dst if internal(dst, config) or dst_app else ""
    else:
        direction, number, extension = "outbound", dst, src if internal(src, config) or src_app else ""
    leg = Leg(
        key=sid,
        group=parent or sid,
        started_at=started,
        answered_at=moment if status == "in-progress" else None,
        ended_at=moment if terminal else None,
        duration=duration if terminal else 0,
        billsec=duration if outcome == "answered" and terminal else 0,
        direction=direction,
        number=check_number(number) if number else "",
        outcome=outcome,
        extension=extension,
        recording_url=params.get("RecordingUrl", "").strip(),
    )
    return finish(leg) if terminal else leg


def generic_leg(row: Mapping[str, object], config: SourceConfig, clock: Clock | None = None) -> Leg:
    """The generic format (CSV by column mapping, or the documented webhook JSON)::

    {"call_id": "…", "parent_id": "…", "direction": "inbound|outbound|internal", "from": "+31…",
     "to": "100", "start": "2025-03-04T10:15:02Z", "answer": "…" | null, "end": "…",
     "duration": 219, "billsec": 212, "outcome": "answered|missed|busy|failed|voicemail",
     "extension": "100", "recording_url": "https://…"}
    """
    clock = clock or Clock(config.timezone)

    def text(name: str) -> str:
        value = row.get(name)
        return "" if value is None else str(value).strip()

    key = text("call_id")
    if not key:
        raise Reject(N_("no call_id"))
    started = _moment(text("start"), clock)
    if started is None:
        raise Reject(N_("bad date: no start"))
    answered_at = _moment(text("answer"), clock)
    src, dst = text("from"), text("to")
    direction, number, extension = classify(src, dst, config, answered_by=text("extension"))
    given = text("direction").lower()
    if given in ("inbound", "outbound", "internal") and given != direction:
        direction = given
        number = "" if given == "internal" else check_number(src if given == "inbound" else dst)
    outcome = text("outcome").lower() or ("answered" if answered_at is not None else "missed")
    if outcome not in ("answered", "missed", "busy", "failed", "voicemail"):
        raise Reject(N_("unknown outcome: %(value)s", value=outcome[:20]))
    return finish(
        Leg(
            key=key,
            group=text("parent_id") or key,
            started_at=started,
            answered_at=answered_at,
            ended_at=_moment(text("end"), clock),
            duration=parse_seconds(text("duration")),
            billsec=parse_seconds(text("billsec")),
            direction=direction,
            number=number,
            outcome=outcome,
            extension=text("extension") or extension,
            recording_url=text("recording_url"),
        )
    )


# --- Asterisk CEL: events → one leg per channel ----------------------------------------------------------

# A channel whose CHAN_END has not come this long (in the file's own event time) after it started is
# given up on: Asterisk crashed or was killed mid-call (no CHAN_END is ever written then), or cel.conf
# does not log CHAN_END. Held open, it kept the drop folder's cursor at its first event for good (every
# poll read the file again from there) and its call was never imported. It is imported with what is
# known (start, answer, who), its end unknown. No real call lasts a day.
CEL_GIVE_UP = timedelta(hours=24)
# At most this many channels are held waiting for their end (memory stays bounded whatever the file
# holds); past it the longest-open one is given up on as above.
CEL_OPEN_CHANNELS = 10_000


@dataclass
class _Channel:
    uniqueid: str
    linkedid: str
    first_offset: int  # where its first event starts: the cursor never passes an open channel
    line: int
    started_at: datetime
    cid_num: str
    exten: str
    channel: str
    answered_at: datetime | None = None
    dialstatus: str = ""


def _cel_items(
    records: Iterator[RawRecord], names: tuple[str, ...] | list[str], config: SourceConfig, start: int, final: bool
) -> Iterator[Item]:
    clock = Clock(config.timezone)
    read_row = _by_fields(names)
    open_channels: dict[str, _Channel] = {}
    latest: datetime | None = None  # the latest event time read
    record_start, last = start, None
    for record in records:
        this_start, record_start, last = record_start, record.end, record
        try:
            _whole(record)
            row = read_row(record)
            event = row.get("eventtype", "").strip().upper()
            moment = _moment(row.get("eventtime", ""), clock)
            uniqueid = row.get("uniqueid", "").strip()
            if moment is None or not uniqueid:
                raise Reject(N_("bad date: no event time") if moment is None else N_("no uniqueid"))
        except Reject as exc:
            yield _cel_item(Rejected(record.line, str(exc)), open_channels, record)
            continue
        latest = moment if latest is None or moment > latest else latest
        channel = open_channels.get(uniqueid)
        if event == "CHAN_START" or channel is None:
            if event in ("CHAN_END", "LINKEDID_END"):
                continue  # the end of a channel whose start was read before the cursor: already done
            channel = _Channel(
                uniqueid,
                row.get("linkedid", "").strip() or uniqueid,
                this_start,
                record.line,
                moment,
                row.get("cid_num", ""),
                row.get("exten", ""),
                row.get("channame", ""),
            )
            open_channels.pop(uniqueid, None)  # (a CHAN_START again: kept in the order of first events)
            open_channels[uniqueid] = channel
        if event == "ANSWER" and channel.answered_at is None:
            channel.answered_at = moment
        elif event == "HANGUP":
            try:
                extra = json.loads(row.get("eventextra", "") or "{}")
            except ValueError:
                extra = {}
            if isinstance(extra, dict):
                channel.dialstatus = str(extra.get("dialstatus", ""))
        elif event == "CHAN_END":
            del open_channels[uniqueid]
            yield _cel_item(_cel_result(channel, moment, config), open_channels, record)
        while open_channels:
            oldest = next(iter(open_channels.values()))  # (a dict keeps the order channels started in)
            if latest - oldest.started_at <= CEL_GIVE_UP and len(open_channels) <= CEL_OPEN_CHANNELS:
                break
            del open_channels[oldest.uniqueid]
            yield _cel_item(_cel_result(oldest, None, config), open_channels, record)
    if final and last is not None:
        # A file read to its end (an upload, a CLI import): channels it never ends are imported with
        # their end unknown rather than dropped without a word.
        for channel in list(open_channels.values()):
            del open_channels[channel.uniqueid]
            yield _cel_item(_cel_result(channel, None, config), open_channels, last)


def _cel_result(channel: _Channel, ended: datetime | None, config: SourceConfig) -> Leg | Rejected:
    try:
        return _cel_leg(channel, ended, config)
    except Reject as exc:
        return Rejected(channel.line, str(exc))


def _cel_item(result: Leg | Rejected, open_channels: Mapping[str, _Channel], record: RawRecord) -> Item:
    """``result`` of ``record``; a reader resumes at the first event of the first channel still
    open (it is read whole when it ends), else after the record."""
    if not open_channels:
        return Item(result, record.end, record.line + 1)
    # Channels are added as the file reaches them, so the first one held is the one read first.
    first = next(iter(open_channels.values()))
    return Item(result, first.first_offset, first.line, record.line + 1)


def _cel_leg(channel: _Channel, ended: datetime | None, config: SourceConfig) -> Leg:
    a_leg = channel.uniqueid == channel.linkedid
    own = channel_extension(channel.channel)
    answered = channel.answered_at is not None
    if a_leg:
        direction, number, extension = classify(channel.cid_num, channel.exten, config)
        if direction == "inbound":
            extension = ""  # the a-leg rings; a b-leg says who answered
    else:
        direction, number, extension = None, "", own if internal(own, config) else ""
    status = channel.dialstatus.upper()
    outcome = "answered" if answered else ("busy" if status == "BUSY" else "missed")
    return finish(
        Leg(
            key=channel.uniqueid,
            group=channel.linkedid,
            started_at=channel.started_at,
            answered_at=channel.answered_at,
            ended_at=ended,
            direction=direction,
            number=number,
            outcome=outcome,
            extension=extension,
            line=channel.line,
        )
    )


# --- the entry point ----------------------------------------------------------------------------------------


def parse_stream(
    stream: BinaryIO,
    config: SourceConfig,
    *,
    offset: int = 0,
    line: int = 1,
    final: bool = True,
    by_line: bool = True,
) -> Iterator[Item]:
    """Every record of ``stream`` from ``offset`` on, as a leg or a rejected row (never raises for a
    bad row: good rows are imported whatever the bad ones do). ``by_line=False``: the CSV formats
    record by record only (the reference the faster line reader is tested against)."""
    fmt = config.format
    stream = readable(stream)
    if fmt == "freeswitch-json":
        yield from _json_items(stream, config, offset)
        return
    records = read_records(stream, offset=offset, line=line, final=final)
    names = config.fields or tuple(DEFAULT_FIELDS.get(fmt, ()))
    if fmt == "asterisk-cel":
        yield from _cel_items(records, names, config, offset, final)
        return
    clock = Clock(config.timezone)
    convert: Callable[[RawRecord], Leg]
    if fmt == "asterisk-csv":

        def convert(record: RawRecord) -> Leg:
            return _asterisk_csv(record, config, clock)

        picks = {count: _asterisk_positions(names) for count, names in _ASTERISK_CSV_NAMES.items()}

        def fast(fields: list[str], text: str) -> Leg | None:
            pick = picks.get(len(fields))
            if pick is None:
                return None
            return _asterisk(*pick(fields), text=text, config=config, clock=clock)

        if by_line:
            yield from _line_items(stream, offset, line, final, fast, convert)
            return

    elif fmt == "asterisk-custom":
        row_of = _by_fields(names)
        custom_names = tuple(names)

        def convert(record: RawRecord) -> Leg:
            return asterisk_leg(row_of(record), record.text, config, clock)

        pick_custom = _asterisk_positions(custom_names)

        def fast(fields: list[str], text: str) -> Leg | None:
            if len(fields) != len(custom_names):
                return None
            return _asterisk(*pick_custom(fields), text=text, config=config, clock=clock)

        if by_line:
            yield from _line_items(stream, offset, line, final, fast, convert)
            return

    elif fmt == "freeswitch-csv":

        def convert(record: RawRecord) -> Leg:
            return _freeswitch_csv(record, config, clock)

    elif fmt == "3cx":
        row_of = _by_fields(names)

        def convert(record: RawRecord) -> Leg:
            text = record.text
            if text.lower().startswith("call ") and not config.fields:
                text = text[5:]
            fields = split_fields(text)
            # The TCP feed and the file may end a row early: missing trailing fields are empty.
            if len(fields) > len(names) or len(fields) < 7:
                raise Reject(
                    N_("wrong column count: %(count)s (expected %(expected)s)", count=len(fields), expected=len(names))
                )
            return threecx_leg(dict(zip(names, fields + [""] * (len(names) - len(fields)), strict=True)), config, clock)

        del row_of
    elif fmt == "twilio":

        def convert(record: RawRecord) -> Leg:
            return twilio_leg(dict(parse_qsl(record.text.strip(), keep_blank_values=True)), config)

    elif fmt == "generic-csv":
        header: list[str] = list(config.fields)
        # Commas, or a spreadsheet's semicolons (Dutch Excel, and the exports of Dutch providers'
        # portals) or tabs: what the file's first line holds most.
        delimiter: list[str] = []
        if offset > 0:
            # Read on from a cursor (a file growing in a drop folder): the column names are the
            # file's first line, before the cursor. Without them every later row was rejected.
            first = next(read_records(stream, offset=0, line=1, final=True), None)
            if first is not None:
                delimiter.append(csv_delimiter(first.text))
                if not header:
                    header.extend(f.strip().lower() for f in split_fields(first.text, (), delimiter[0]))

        def convert(record: RawRecord) -> Leg:
            if not delimiter:
                delimiter.append(csv_delimiter(record.text))
            if not header:
                header.extend(f.strip().lower() for f in split_fields(record.text, (), delimiter[0]))
                raise _Header
            fields = split_fields(record.text, (len(header),), delimiter[0])
            if len(fields) != len(header):
                raise Reject(
                    N_("wrong column count: %(count)s (expected %(expected)s)", count=len(fields), expected=len(header))
                )
            return generic_leg(dict(zip(header, fields, strict=True)), config, clock)

    else:
        raise ValueError(f"unknown format {fmt!r}")
    yield from _record_items(records, convert)


def _whole(record: RawRecord) -> None:
    """Reject a record read_records did not read (longer than MAX_RECORD_BYTES)."""
    if record.too_long:
        raise Reject(N_("a record longer than %(limit)s bytes", limit=MAX_RECORD_BYTES))


def _record_items(records: Iterator[RawRecord], convert: Callable[[RawRecord], Leg]) -> Iterator[Item]:
    for record in records:
        result: Leg | Rejected
        try:
            _whole(record)
            result = convert(record)
            result.line = record.line
        except _Header:
            continue
        except Reject as exc:
            reason = str(exc) if record.complete else f"truncated record ({exc})"
            result = Rejected(record.line, reason)
        yield Item(result, record.end, record.line + record.text.count("\n") + 1)


# Bytes read at a time by the line-at-a-time reader (a few MB of memory, whatever the file's size).
LINE_CHUNK = 1 << 20
_ASTERISK_CSV_NAMES = {
    count: tuple(ASTERISK_CSV[:16] + (["uniqueid", "userfield"][: count - 16] if count < 21 else ASTERISK_CSV[16:]))
    for count in ASTERISK_CSV_COUNTS
}


def _line_items(
    stream: BinaryIO,
    offset: int,
    line: int,
    final: bool,
    fast: Callable[[list[str], str], Leg | None],
    convert: Callable[[RawRecord], Leg],
) -> Iterator[Item]:
    """What :func:`read_records` + ``convert`` yield, read a chunk at a time: the lines of a chunk go
    through one CSV reader (``fast``: the record's fields and text → its leg, or None when it takes
    another shape), and from the first line that is not a plain record on its own (an odd quote,
    an embedded newline, a broken encoding, a blank line, another column count) the rest of the
    chunk goes through :func:`read_records` itself, record by record. Same items, same lines and
    offsets (tests/unit/test_telephony_parsers.py compares the two on odd files)."""
    stream.seek(offset)
    base, buffer = offset, b""
    while True:
        data = stream.read(LINE_CHUNK)
        buffer += data
        if base == 0 and buffer:
            if len(buffer) < len(BOM) and data and BOM.startswith(buffer):
                continue
            if buffer.startswith(BOM):
                buffer, base = buffer[len(BOM) :], len(BOM)
        if not data:  # the end: what is left (a last line without its newline) as read_records reads it
            if buffer:
                yield from _slow_chunk(buffer, 0, base, line, final, convert)
            return
        cut = buffer.rfind(b"\n") + 1
        if not cut:
            continue  # a line longer than a chunk: read on
        whole, buffer = buffer[:cut], buffer[cut:]
        consumed, line = yield from _fast_chunk(whole, base, line, fast, convert)
        buffer, base = whole[consumed:] + buffer, base + consumed


def _fast_chunk(
    whole: bytes,
    base: int,
    line: int,
    fast: Callable[[list[str], str], Leg | None],
    convert: Callable[[RawRecord], Leg],
) -> Generator[Item, None, tuple[int, int]]:
    """Whole lines (``whole`` ends with a newline) → items; returns the bytes consumed (a record
    still open at the end is left for the next chunk) and the next line number."""
    try:
        if b"\x00" in whole:  # NUL bytes (a crash's leftovers): read_records' decode leaves them out
            raise UnicodeDecodeError("utf-8", whole, 0, 1, "NUL")
        text = whole.decode("utf-8")
    except UnicodeDecodeError:  # read_records decodes record by record (Latin-1 where UTF-8 fails)
        return (yield from _slow_chunk(whole, 0, base, line, False, convert))
    lines = text.split("\n")
    lines.pop()  # after the last newline
    ends = list(accumulate(len(piece) + 1 for piece in (lines if whole.isascii() else whole.split(b"\n")[:-1])))
    fit = lines
    if lines and max(map(len, lines)) >= MAX_RECORD_BYTES // 4:  # (a character is up to 4 bytes)
        # From a line that may be too long on, read_records reads (and rejects it unsplit).
        fit = lines[: next(i for i, piece in enumerate(lines) if len(piece) >= MAX_RECORD_BYTES // 4)]
    reader = csv.reader(fit, skipinitialspace=True, strict=False)
    index = 0
    try:
        for fields in reader:
            current = lines[index]
            if reader.line_num != index + 1 or current.count('"') % 2:
                break
            result: Leg | Rejected | None
            try:
                result = fast(fields, current.rstrip("\r"))
                if result is None:
                    break
                result.line = line + index
            except Reject as exc:
                result = Rejected(line + index, str(exc))
            index += 1
            yield Item(result, base + ends[index - 1], line + index)
    except csv.Error:
        pass
    if index == len(lines):
        return len(whole), line + index
    start = ends[index - 1] if index else 0
    return (yield from _slow_chunk(whole, start, base, line + index, False, convert))


def _slow_chunk(
    data: bytes, start: int, base: int, line: int, final: bool, convert: Callable[[RawRecord], Leg]
) -> Generator[Item, None, tuple[int, int]]:
    """``data[start:]`` through :func:`read_records` (``base``: the file offset of ``data``); returns
    the bytes of ``data`` consumed and the next line number, as :func:`_fast_chunk`."""
    # One byte before the data: read_records strips a BOM only at the very start of a file.
    stream = io.BytesIO(b"\n" + data)
    consumed, next_line = start, line
    for item in _record_items(read_records(stream, offset=start + 1, line=line, final=final), convert):
        consumed, next_line = item.end - 1, item.next_line
        yield Item(item.result, base + consumed, next_line)
    return consumed, next_line


class _Header(Exception):
    """The generic CSV's header row (no mapping configured): names, not a call."""


def _json_items(stream: BinaryIO, config: SourceConfig, offset: int) -> Iterator[Item]:
    """A mod_json_cdr file: one JSON document (a leg), or several, one per line."""
    stream.seek(offset)
    data = stream.read()
    text = data.decode("utf-8-sig", errors="replace").strip()
    end = offset + len(data)
    if text.startswith("cdr="):  # a saved HTTP form POST
        text = dict(parse_qsl(text, keep_blank_values=True)).get("cdr", "")
    documents: list[tuple[int, str]]
    try:
        documents = [(1, text)] if not text else [(1, json.dumps(json.loads(text)))]
    except (ValueError, RecursionError):  # RecursionError: nested deeper than any CDR
        documents = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    clock = Clock(config.timezone)
    for number, document in documents:
        result: Leg | Rejected
        try:
            parsed = json.loads(document)
            if not isinstance(parsed, dict):
                raise Reject(N_("not a JSON CDR document"))
            result = freeswitch_json_leg(parsed, config, clock)
            result.line = number
        except (ValueError, RecursionError):
            result = Rejected(number, N_("truncated record (not complete JSON)"))
        except Reject as exc:
            result = Rejected(number, str(exc))
        yield Item(result, end, number + 1)
