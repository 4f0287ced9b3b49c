"""Knowing what a message is: bounces (standard and not), complaints, auto-replies, invitations,
and which wins when a message looks like more than one."""

from __future__ import annotations

import json

from hub.mail.parse import parse_message


def _report(report_type: bytes, report_part: bytes, headers: bytes = b"") -> bytes:
    return (
        b"From: MAILER-DAEMON@mx.example\r\nTo: staff@hub.example\r\nSubject: Returned mail\r\n"
        + headers
        + b"Content-Type: multipart/report; report-type="
        + report_type
        + b"; boundary=r\r\n\r\n"
        b"--r\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--r\r\n"
        + report_part
        + b"\r\n--r\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <sent.1@hub.example>\r\n"
        b"To: piet@jansen.example\r\n--r--\r\n"
    )


STATUS = (
    b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
    b"Final-Recipient: rfc822; Piet@Jansen.example\r\nAction: failed\r\nStatus: 5.1.1 (bad mailbox)\r\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 unknown\r\n  user\r\n"
)


def test_a_delivery_status_report_is_a_hard_bounce_with_its_fields() -> None:
    parsed = parse_message(_report(b"delivery-status", STATUS, b"Auto-Submitted: auto-replied\r\n"))
    assert parsed.kind == "bounce"  # not an auto-reply, though it says Auto-Submitted
    assert parsed.details == {
        "hard": True,
        "recipient": "piet@jansen.example",
        "status": "5.1.1",
        "action": "failed",
        "diagnostic": "550 5.1.1 unknown user",
        "original_message_id": "<sent.1@hub.example>",
    }
    json.dumps(parsed.details)
    names = [(a.filename, a.content_type) for a in parsed.attachments]
    assert names == [("part-2.txt", "message/delivery-status"), ("part-3.txt", "text/rfc822-headers")]


def test_a_4xx_status_is_a_soft_bounce_and_a_delivery_receipt_no_bounce() -> None:
    soft = parse_message(
        _report(b"delivery-status", STATUS.replace(b"5.1.1 (bad", b"4.2.2 (full").replace(b"failed", b"delayed"))
    )
    assert soft.kind == "bounce" and soft.details["hard"] is False and soft.details["status"] == "4.2.2"
    receipt = parse_message(
        _report(b"delivery-status", STATUS.replace(b"failed", b"delivered").replace(b"5.1.1", b"2.0.0"))
    )
    assert receipt.kind == ""


def test_a_feedback_report_is_a_complaint_even_with_auto_submitted() -> None:
    report = (
        b"Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: FBL/2\r\n"
        b"Version: 1\r\nOriginal-Rcpt-To: <piet@jansen.example>\r\nSource-IP: 192.0.2.1\r\n"
    )
    parsed = parse_message(_report(b"feedback-report", report, b"Auto-Submitted: auto-generated\r\n"))
    assert parsed.kind == "complaint"
    assert parsed.details["feedback_type"] == "abuse" and parsed.details["user_agent"] == "FBL/2"
    assert parsed.details["recipient"] == parsed.details["original_rcpt_to"] == "piet@jansen.example"
    assert (
        parsed.details["original_message_id"] == "<sent.1@hub.example>" and parsed.details["source_ip"] == "192.0.2.1"
    )


def test_plain_text_bounces_from_the_mail_system_are_recognised() -> None:
    exchange = parse_message(
        b"From: postmaster@hub.example\r\nTo: staff@hub.example\r\nSubject: Undeliverable: Offerte\r\n\r\n"
        b"Delivery has failed to these recipients or groups:\r\n\r\n    piet@jansen.example\r\n"
        b"Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound'\r\n"
    )
    assert exchange.kind == "bounce"
    assert exchange.details["recipient"] == "piet@jansen.example" and exchange.details["status"] == "5.1.10"
    assert exchange.details["hard"] is True
    delay = parse_message(
        b"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n"
        b"Subject: Delivery Status Notification (Delay)\r\n\r\nDelivery to piet@jansen.example delayed.\r\n"
    )
    assert delay.kind == "bounce" and delay.details["hard"] is False and delay.details["action"] == "delayed"


def test_a_person_writing_about_a_failed_delivery_is_no_bounce() -> None:
    parsed = parse_message(
        b"From: Anna <anna@bakker.example>\r\nSubject: Re: Undeliverable mail?\r\n\r\nMijn mail kwam niet aan.\r\n"
    )
    assert parsed.kind == ""


def test_auto_replies_by_header_and_by_subject() -> None:
    def kind(headers: bytes) -> tuple[str, dict[str, object]]:
        parsed = parse_message(b"From: a@x.example\r\n" + headers + b"\r\nbody\r\n")
        return parsed.kind, parsed.details

    assert kind(b"Auto-Submitted: auto-replied\r\n") == (
        "auto_reply",
        {"auto_submitted": "auto-replied", "signal": "Auto-Submitted"},
    )
    assert kind(b"Auto-Submitted: auto-generated\r\n")[0] == "auto_reply"
    assert kind(b"Auto-Submitted: no\r\n") == ("", {})
    assert kind(b"X-Autoreply: yes\r\n")[0] == "auto_reply"
    assert kind(b"X-Autorespond: yes\r\n")[0] == "auto_reply"
    assert kind(b"Precedence: auto_reply\r\n")[0] == "auto_reply"
    assert kind(b"Precedence: bulk\r\n") == ("", {})
    for subject in (b"Out of Office: x", b"Automatisch antwoord: x", b"Afwezig: x", b"Automatic reply: x"):
        assert kind(b"Subject: " + subject + b"\r\n")[0] == "auto_reply", subject
    assert kind(b"Subject: Re: afwezigheid volgende week\r\n") == ("", {})


def _calendar(ics: bytes, headers: bytes = b"") -> bytes:
    return (
        b"From: anna@bakker.example\r\n" + headers + b"Content-Type: multipart/mixed; boundary=c\r\n\r\n"
        b"--c\r\nContent-Type: text/plain\r\n\r\nUitnodiging\r\n"
        b"--c\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n" + ics + b"\r\n--c--\r\n"
    )


def test_an_all_day_invitation_and_an_unreadable_calendar() -> None:
    ics = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:day-1\r\nDTSTART;VALUE=DATE:20261110\r\n"
        b"DTEND;VALUE=DATE:20261111\r\nSUMMARY:Beurs\r\nORGANIZER:MAILTO:Anna@Bakker.example\r\nEND:VEVENT\r\nEND:VCALENDAR"
    )
    parsed = parse_message(_calendar(ics, b"Auto-Submitted: auto-generated\r\n"))
    assert parsed.kind == "invitation"
    assert parsed.details == {
        "method": "REQUEST",
        "uid": "day-1",
        "sequence": 0,
        "summary": "Beurs",
        "start": "2026-11-10",
        "end": "2026-11-11",
        "organizer": "anna@bakker.example",
        "attendees": [],
    }
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [("invite.ics", "text/calendar")]
    broken = parse_message(_calendar(b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:not a date\r\n"))
    assert broken.kind == "" and any("calendar" in p for p in broken.problems)
    assert [a.filename for a in broken.attachments] == ["invite.ics"]  # kept all the same
