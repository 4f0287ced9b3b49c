"""What a message is, besides mail a person wrote: a bounce, a complaint, an auto-reply or a calendar
invitation, with what was read of it (JSON-serialisable values only).

The standard reports (RFC 3464 delivery status, RFC 5965 feedback reports) are read field by field;
the plain-text bounces of Postfix, qmail and Exchange, and auto-replies without RFC 3834 headers,
are recognised as best effort from their sender and subject. Bounces and complaints come first: they
also carry Auto-Submitted, and a bounce of an invitation also carries the invitation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from hub.mail.ids import message_ids
from hub.mail.text import decode_header_text

Details = dict[str, object]

# Calendar parts read as invitations, at most: an invitation is one small calendar (a few kB). A
# hostile or broken mail with a 50 MB .ics or hundreds of calendar parts would otherwise cost the
# sync worker that much memory and parsing; the rest stay attachments, as every calendar part does.
MAX_CALENDAR_PARTS = 3
MAX_CALENDAR_BYTES = 1_000_000


@dataclass
class Findings:
    """What the walk over the MIME tree met that tells the kind of message."""

    report_type: str = ""  # report-type of a multipart/report
    delivery_status: list[str] = field(default_factory=list)  # message/delivery-status texts
    feedback_report: list[str] = field(default_factory=list)  # message/feedback-report texts
    returned_headers: list[str] = field(default_factory=list)  # header blocks of returned messages
    calendars: list[str] = field(default_factory=list)  # text/calendar texts


@dataclass
class Envelope:
    """The headers of the message itself that the kind depends on (decoded, whitespace collapsed)."""

    subject: str
    from_address: str
    from_name: str
    header: Callable[[str], str]  # a header's decoded value ("" when absent)


# Kinds a machine writes (a bounce, a complaint report, an out-of-office reply): nobody's
# correspondence to file, and no contact moment with a relation.
AUTOMATIC_KINDS = ("bounce", "complaint", "auto_reply")

_FIELD_BLOCKS = re.compile(r"\r?\n[ \t]*\r?\n")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_REPLY = re.compile(r"\b([45][0-9][0-9])[ -]")
_ADDRESS = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
# Where plain-text bounces name the recipient that failed, most specific first.
_BOUNCED_RECIPIENT = [
    re.compile(rf"^\s*<({_ADDRESS})>:", re.M),  # Postfix, qmail
    re.compile(rf"(?:Final|Original)-Recipient:\s*(?:rfc822;)?\s*<?({_ADDRESS})", re.I),
    re.compile(rf"(?:delivered to|delivery to|message to|recipient address:?|recipients?:?)\s+<?({_ADDRESS})", re.I),
    re.compile(rf"^\s+<?({_ADDRESS})>?", re.M),  # Exchange: the recipient on a line of its own, indented
]
_QUOTED_MESSAGE_ID = re.compile(r"^\s*Message-ID:\s*(\S.*)$", re.I | re.M)
_DAEMON_LOCAL_PARTS = ("mailer-daemon", "mailerdaemon", "postmaster", "mail-daemon", "microsoftexchange")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered mail|returned mail|delivery status notification|mail delivery (?:failed|failure)"
    r"|delivery (?:has )?fail|failure notice|non-?delivery|could not be delivered|not delivered|delivery incomplete"
    r"|onbestelbaar|niet (?:be)?bezorgd|unzustellbar|nicht zugestellt|non remis",
    re.I,
)
_DELAY_SUBJECT = re.compile(r"\(delay\)|delayed|warning|vertraagd|verzögert", re.I)
# The subject alone says "auto-reply" only in the form responders give it: the phrase as the whole
# subject or before the original one ("Afwezig: offerte", "Out of Office - back Monday"). A person
# writes "Afwezig op vrijdag" or "Out of office party": taken for auto-replies, such mail was filed
# as nobody's correspondence.
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response|antwort)|autoreply"
    r"|automatisch(?:e)? (?:antwoord|bericht|antwort)|afwezig(?:heidsmelding)?|abwesenheit(?:snotiz)?"
    r"|r[ée]ponse automatique|absence|respuesta autom[aá]tica|risposta automatica)"
    r"\s*(?:[:\-\u2013\u2014(\[]|$)",
    re.I,
)


def _fields(text: str) -> list[dict[str, str]]:
    """The field blocks of a report (lower-cased names; folded lines unfolded)."""
    blocks = []
    for block in _FIELD_BLOCKS.split(text.strip()):
        fields: dict[str, str] = {}
        last = ""
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and last:
                fields[last] += " " + line.strip()
                continue
            name, colon, value = line.partition(":")
            if colon and name.strip():
                last = name.strip().lower()
                fields.setdefault(last, value.strip())
        if fields:
            blocks.append(fields)
    return blocks


def _typed_value(value: str) -> str:
    """ "rfc822; anna@x.example" → "anna@x.example"; "smtp; 550 …" → "550 …"."""
    kind, semicolon, rest = value.partition(";")
    return rest.strip() if semicolon and " " not in kind.strip() else value.strip()


def _address(value: str) -> str:
    found = re.search(_ADDRESS, value)
    return found[0].lower() if found else value.strip().strip("<>").lower()


def _returned_message_id(findings: Findings, text_body: str) -> str:
    for headers in findings.returned_headers:
        block = HeaderParser(policy=compat32).parsestr(headers, headersonly=True)
        ids = message_ids(decode_header_text(str(block.get("Message-ID", ""))))
        if ids:
            return ids[0]
    for match in _QUOTED_MESSAGE_ID.finditer(text_body):  # qmail quotes the message in its text
        ids = message_ids(match[1])
        if ids:
            return ids[0]
    return ""


def _returned_recipient(findings: Findings) -> str:
    for headers in findings.returned_headers:
        block = HeaderParser(policy=compat32).parsestr(headers, headersonly=True)
        to = str(block.get("To", ""))
        if to:
            return _address(decode_header_text(to))
    return ""


def _standard_bounce(findings: Findings, text_body: str) -> Details | None:
    blocks = [b for text in findings.delivery_status for b in _fields(text)]
    recipients = [b for b in blocks if "final-recipient" in b or "original-recipient" in b or "action" in b]
    if not recipients:
        return None
    actions = [b.get("action", "").lower() for b in recipients]
    if all(a in ("delivered", "relayed", "expanded") for a in actions):
        return None  # a delivery receipt, not a bounce
    chosen = next((b for b in recipients if b.get("action", "").lower() == "failed"), recipients[0])
    status_match = _STATUS.search(chosen.get("status", ""))
    status = status_match[1] if status_match else ""
    action = chosen.get("action", "").lower()
    hard = status.startswith("5") if status else action == "failed"
    recipient = chosen.get("final-recipient") or chosen.get("original-recipient") or ""
    return {
        "hard": hard,
        "recipient": _address(_typed_value(recipient)),
        "status": status,
        "action": action,
        "diagnostic": _typed_value(chosen.get("diagnostic-code", ""))[:1000],
        "original_message_id": _returned_message_id(findings, text_body),
    }


def _is_daemon(envelope: Envelope) -> bool:
    local = envelope.from_address.partition("@")[0]
    name = envelope.from_name.lower()
    return local.startswith(_DAEMON_LOCAL_PARTS) or "mail delivery" in name or "postmaster" in name


def _plain_bounce(envelope: Envelope, findings: Findings, text_body: str) -> Details | None:
    if not _BOUNCE_SUBJECT.search(envelope.subject):
        return None
    if not (_is_daemon(envelope) or envelope.header("Auto-Submitted") or findings.returned_headers):
        return None  # a person writing about a failed delivery
    recipient = ""
    for pattern in _BOUNCED_RECIPIENT:
        for match in pattern.finditer(text_body):
            address = match[1].lower()
            if address != envelope.from_address and not address.startswith(_DAEMON_LOCAL_PARTS):
                recipient = address
                break
        if recipient:
            break
    status_match = _STATUS.search(text_body)
    reply_match = _SMTP_REPLY.search(text_body)
    status = status_match[1] if status_match else ""
    if status:
        hard = status.startswith("5")
    elif reply_match:
        hard = reply_match[1].startswith("5")
    else:
        hard = not _DELAY_SUBJECT.search(envelope.subject)
    return {
        "hard": hard,
        "recipient": recipient,
        "status": status,
        "action": "failed" if hard else "delayed",
        "diagnostic": _line_of(text_body, status_match or reply_match)[:1000],
        "original_message_id": _returned_message_id(findings, text_body),
    }


def _line_of(text: str, match: re.Match[str] | None) -> str:
    if match is None:
        return ""
    line_start = text.rfind("\n", 0, match.start()) + 1
    line_end = text.find("\n", match.end())
    return text[line_start : line_end if line_end != -1 else None].strip()


def _complaint(findings: Findings, text_body: str) -> Details | None:
    blocks = [b for text in findings.feedback_report for b in _fields(text)]
    report = next((b for b in blocks if "feedback-type" in b), None)
    if report is None:
        return None
    rcpt_to = _address(report["original-rcpt-to"]) if report.get("original-rcpt-to") else ""
    details: Details = {
        "feedback_type": report["feedback-type"].strip().lower(),
        "recipient": rcpt_to or _returned_recipient(findings),
        "original_rcpt_to": rcpt_to,
        "original_message_id": _returned_message_id(findings, text_body),
        "user_agent": report.get("user-agent", ""),
    }
    for name in ("original-mail-from", "source-ip", "reported-domain", "arrival-date", "reporting-mta"):
        if report.get(name):
            details[name.replace("-", "_")] = report[name][:300]
    return details


def _auto_reply(envelope: Envelope) -> Details | None:
    auto_submitted = envelope.header("Auto-Submitted").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return {"auto_submitted": auto_submitted, "signal": "Auto-Submitted"}
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if envelope.header(name):
            return {"auto_submitted": auto_submitted, "signal": name}
    if envelope.header("Precedence").lower() == "auto_reply":
        return {"auto_submitted": auto_submitted, "signal": "Precedence"}
    if _AUTO_REPLY_SUBJECT.search(envelope.subject):
        return {"auto_submitted": auto_submitted, "signal": "subject"}
    return None


def _moment(value: object) -> str:
    """An iCalendar date or date-time as ISO 8601: date-times in UTC (floating ones taken as UTC)."""
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return ""


def _mail_address(value: object) -> str:
    text = str(value or "").strip()
    return text[7:].lower() if text.lower().startswith("mailto:") else text.lower()


def _number(value: object) -> int:
    """An integer property, 0 when missing or unreadable (one bad field must not cost the invitation)."""
    try:
        return int(value or 0)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 0


def _invitation(calendar_text: str) -> Details | None:
    from hub.ical_reading import read_calendar  # imported on first use: most mail has no calendar part

    # Some mailers put two calendars into one part (a request and its time zones, say): the first
    # with an event counts, rather than the whole part being unreadable.
    calendars = read_calendar(calendar_text, multiple=True)
    if not calendars:  # cut off before its END line, say
        raise ValueError("no complete calendar in the part")
    for calendar in calendars:
        events = calendar.walk("VEVENT") or calendar.walk("VTODO")
        if events:
            break
    else:
        return None
    event = events[0]
    attendees = event.get("attendee") or []
    if not isinstance(attendees, list):
        attendees = [attendees]

    def when(name: str) -> str:
        value = event.get(name)
        return _moment(value.dt) if value is not None and hasattr(value, "dt") else ""

    return {
        "method": str(calendar.get("method", "")).upper(),
        "uid": str(event.get("uid", "")),
        "sequence": _number(event.get("sequence")),
        "summary": str(event.get("summary", "")),
        "start": when("dtstart"),
        "end": when("dtend"),
        "organizer": _mail_address(event.get("organizer")),
        "attendees": [
            {"address": _mail_address(a), "partstat": str(getattr(a, "params", {}).get("PARTSTAT", "")).upper()}
            for a in attendees
        ],
    }


def classify(envelope: Envelope, findings: Findings, text_body: str, problems: list[str]) -> tuple[str, Details]:
    """(kind, details): "" and {} for ordinary mail."""
    bounce = _standard_bounce(findings, text_body) if findings.delivery_status else None
    if bounce is None and not findings.feedback_report and not findings.delivery_status:
        # A standard report said what happened (a delivery receipt, say): its subject does not overrule it.
        bounce = _plain_bounce(envelope, findings, text_body)
    if bounce is not None:
        return "bounce", bounce
    complaint = _complaint(findings, text_body) if findings.feedback_report else None
    if complaint is not None:
        return "complaint", complaint
    for calendar_text in findings.calendars[:MAX_CALENDAR_PARTS]:
        try:
            invitation = _invitation(calendar_text)
        except Exception as exc:  # icalendar raises many kinds of errors on bad input
            problems.append(f"calendar part unreadable ({type(exc).__name__})")
            continue
        if invitation is not None:
            return "invitation", invitation
    auto_reply = _auto_reply(envelope)
    if auto_reply is not None:
        return "auto_reply", auto_reply
    return "", {}


def message_of(msg: Message) -> str:
    """A header-only Message (as the email package parses report blocks) back as its text."""
    return "".join(f"{name}: {value}\n" for name, value in msg.items())
