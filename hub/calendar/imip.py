"""Invitations by e-mail (iMIP, RFC 6047): for Outlook, Gmail and every calendar without CalDAV.

Who gets them: contacts invited to an appointment, and staff who chose "invitations" instead of
CalDAV. A message is ``multipart/alternative``: a few lines of text and the ``text/calendar;
method=REQUEST`` part (the method parameter equals the body's METHOD, which Outlook requires).
An update is a REQUEST with a higher SEQUENCE, a delete a CANCEL; someone taken off the appointment
after his invitation went out gets a CANCEL naming him alone (``appointment_cancellation``, claimed
before sending like an invitation), or his own calendar keeps it. ``invited_sequence`` on the
attendee row remembers what each one has (SEQUENCE + 1; 0: nothing yet); it is raised by a
conditional UPDATE *before* sending, so two workers never both send, and put back when the relay
says "try later". Replies (METHOD:REPLY) come back through mail sync: the sync stores them as
e-mails of kind "invitation" and announces them; :func:`apply_replies` sets the attendee's answer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from sqlalchemy import Update, or_, select, union, update
from sqlalchemy.orm import Session, selectinload

from hub.calendar import ical
from hub.calendar.appointments import record_history, snapshot
from hub.config import Settings
from hub.db import Database
from hub.models import (
    Appointment,
    AppointmentAttendee,
    AppointmentCancellation,
    CalendarAccount,
    Email,
    EmailParticipant,
    Mailbox,
    MailboxEmail,
    User,
)
from hub.models.calendar import Delivery
from hub.outbound import Connection, Refused, relay_for

log = logging.getLogger(__name__)


@dataclass
class SendResult:
    sent: int = 0
    deferred: int = 0
    refused: int = 0


def _invitees(session: Session, appointment: Appointment) -> list[AppointmentAttendee]:
    """Contacts and outside addresses, and staff who chose invitations."""
    by_mail = set(
        session.scalars(select(CalendarAccount.owner_id).where(CalendarAccount.delivery == Delivery.invitations.value))
    )
    return [a for a in appointment.attendees if a.user_id is None or a.user_id in by_mail]


def _one_line(text: str) -> str:
    """A header's text on one line: a title or name typed with a line break (the API and a pasted
    text keep them) made the email package refuse the header, and the invitation was never sent,
    its task failing on every run."""
    return " ".join(ical.text_value(text).split())


def message(
    settings: Settings, shot: ical.Snapshot, method: str, attendee: AppointmentAttendee | AppointmentCancellation
) -> EmailMessage:
    """One iMIP message to one attendee."""
    fields = shot.fields
    organizer = shot.organizer
    body = ical.render(shot, method=method)
    msg = EmailMessage()
    sender = settings.mail_from or (organizer.email if organizer else "")
    msg["From"] = formataddr((_one_line(organizer.name) if organizer else "hub", sender))
    if organizer is not None and organizer.email != sender:
        # Replies go to the organizer's own mailbox, which hub syncs (the REPLY comes back that way).
        msg["Reply-To"] = formataddr((_one_line(organizer.name), organizer.email))
    msg["To"] = formataddr((_one_line(attendee.name), attendee.email))
    prefix = "Cancelled: " if method == "CANCEL" else ("Updated: " if shot.sequence else "")
    msg["Subject"] = _one_line(prefix + fields["title"])
    msg["Message-ID"] = make_msgid(domain=(sender.rpartition("@")[2] or "hub.invalid"))
    msg["Content-Class"] = "urn:content-classes:calendarmessage"
    lines = [fields["title"], f"{fields['start']} - {fields['end']} (UTC)"]
    if fields["location"]:
        lines.append(fields["location"])
    if method == "CANCEL":
        lines.insert(0, "This appointment was cancelled.")
    msg.set_content("\n".join(lines) + "\n")
    msg.add_alternative(body, maintype="text", subtype="calendar", params={"method": method, "charset": "UTF-8"})
    return msg


def due_invitations(session: Session) -> list[int]:
    """Appointments with an invitation (or cancellation) someone has not had yet."""
    query = (
        select(Appointment.id)
        .join(AppointmentAttendee, AppointmentAttendee.appointment_id == Appointment.id)
        .where(AppointmentAttendee.invited_sequence != Appointment.sequence + 1)
        .where(
            or_(
                AppointmentAttendee.user_id.is_(None),
                AppointmentAttendee.user_id.in_(
                    select(CalendarAccount.owner_id).where(CalendarAccount.delivery == Delivery.invitations.value)
                ),
            )
        )
        # A deleted appointment cancels only for those who were invited before.
        .where(or_(Appointment.deleted_at.is_(None), AppointmentAttendee.invited_sequence > 0))
    )
    owed = select(AppointmentCancellation.appointment_id).where(AppointmentCancellation.sent.is_(False))
    return list(session.scalars(union(query, owed).limit(500)))


def send_invitations(db: Database, settings: Settings, appointment_id: int) -> SendResult:
    """Send what each invitee of one appointment has not had yet (idempotent; see the module's note)."""
    result = SendResult()
    with db.transaction() as session:
        appointment = session.scalar(
            select(Appointment)
            .where(Appointment.id == appointment_id)
            .options(selectinload(Appointment.attendees), selectinload(Appointment.overrides))
        )
        if appointment is None:
            return result
        target = appointment.sequence + 1
        method = "CANCEL" if appointment.deleted_at is not None else "REQUEST"
        shot = snapshot(session, appointment)
        if method == "CANCEL":
            shot.fields = {**shot.fields, "status": "cancelled"}
        todo = [
            (a.id, a.invited_sequence, message(settings, shot, method, a))
            for a in _invitees(session, appointment)
            if a.invited_sequence != target and (method == "REQUEST" or a.invited_sequence > 0)
        ]
        cancellations = [
            (c.id, message(settings, _cancelled_for(shot, c), "CANCEL", c))
            for c in session.scalars(
                select(AppointmentCancellation).where(
                    AppointmentCancellation.appointment_id == appointment_id, AppointmentCancellation.sent.is_(False)
                )
            )
        ]
    if not todo and not cancellations:
        return result
    with Connection(relay_for(settings)) as connection:
        for cancellation_id, mail in cancellations:
            row = AppointmentCancellation.id == cancellation_id
            claim = (
                update(AppointmentCancellation).where(row, AppointmentCancellation.sent.is_(False)).values(sent=True)
            )
            back = update(AppointmentCancellation).where(row, AppointmentCancellation.sent.is_(True)).values(sent=False)
            _claimed_send(db, connection, settings, mail, result, claim, back)
        for attendee_id, before, mail in todo:
            row = AppointmentAttendee.id == attendee_id
            claim = update(AppointmentAttendee).where(row, AppointmentAttendee.invited_sequence == before)
            back = update(AppointmentAttendee).where(row, AppointmentAttendee.invited_sequence == target)
            _claimed_send(
                db,
                connection,
                settings,
                mail,
                result,
                claim.values(invited_sequence=target),
                back.values(invited_sequence=before),
            )
    return result


def _cancelled_for(shot: ical.Snapshot, removed: AppointmentCancellation) -> ical.Snapshot:
    """The CANCEL a removed attendee gets: the appointment as it is, cancelled, naming him alone."""
    return replace(
        shot, fields={**shot.fields, "status": "cancelled"}, attendees=[ical.Person(removed.email, removed.name)]
    )


def _claimed_send(
    db: Database,
    connection: Connection,
    settings: Settings,
    mail: EmailMessage,
    result: SendResult,
    claim: Update,
    put_back: Update,
) -> None:
    """Send ``mail`` if ``claim`` (a conditional UPDATE marking it sent) is this run's: another run that
    claimed it first sends it. When the relay says "try later", ``put_back`` undoes the claim so the
    next run sends it again; a permanent refusal is counted and not tried again."""
    with db.transaction() as session:
        if not session.execute(claim.execution_options(synchronize_session=False)).rowcount:  # type: ignore[attr-defined]
            return
    to = mail["To"].addresses[0].addr_spec
    try:
        refused = connection.send(mail, sender=settings.mail_from or to, recipients=[to])
    except Refused as exc:
        if exc.temporary:
            with db.transaction() as session:
                session.execute(put_back.execution_options(synchronize_session=False))
            result.deferred += 1
        else:
            log.warning("invitation to %s refused: %s", to, exc)
            result.refused += 1
        return
    if refused:
        result.refused += 1
    else:
        result.sent += 1


# --- replies ---------------------------------------------------------------------------------------------


ANSWERS = ("ACCEPTED", "DECLINED", "TENTATIVE", "NEEDS-ACTION")


def apply_replies(session: Session, email_ids: list[int]) -> int:
    """Set attendees' answers from stored METHOD:REPLY e-mails (mail sync stored their details).
    A reply to an older SEQUENCE than the attendee was last sent still counts: the answer is his.

    Mail from outside is not trusted: anyone can write any From and any iCalendar. So a REPLY
    changes one answer at most, the sender's own (RFC 5546: a REPLY is one attendee's), and only
    when it arrived in the mailbox of the organiser or of a staff member attending (where hub's
    invitations send replies); a REPLY naming the organiser, or a sender not attending, changes
    nothing, and no other METHOD (REQUEST, CANCEL, COUNTER, none) from outside changes hub's
    appointments at all: only hub organises them."""
    applied = 0
    rows = session.execute(
        select(Email.id, Email.kind, Email.details, Email.from_address).where(Email.id.in_(email_ids))
    )
    for email_id, kind, details, sender in rows:
        if kind != "invitation" or not details:
            continue
        try:
            data = json.loads(details)
        except ValueError:
            continue
        if not isinstance(data, dict) or str(data.get("method", "")).upper() != "REPLY" or not data.get("uid"):
            continue
        appointment = session.scalar(select(Appointment).where(Appointment.uid == str(data["uid"])[:255]))
        if appointment is None or appointment.deleted_at is not None:
            continue
        found = _answer_of(session, email_id, str(sender or ""), appointment, data)
        if found is None:
            continue
        attendee, answer = found
        if attendee.partstat == answer:
            continue
        before = attendee.partstat
        attendee.partstat = answer
        record_history(
            session,
            appointment,
            f"{attendee.name or attendee.email}: {answer}",
            {"partstat": before},
            source="mail",
        )
        applied += 1
    return applied


def _answer_of(
    session: Session, email_id: int, sender: str, appointment: Appointment, data: dict[str, object]
) -> tuple[AppointmentAttendee, str] | None:
    """The attendee a stored REPLY may answer for, and the answer (see :func:`apply_replies`)."""
    sender_key = sender.strip().casefold()
    organizer = session.get(User, appointment.created_by_id) if appointment.created_by_id else None
    if not sender_key or (organizer is not None and organizer.email.strip().casefold() == sender_key):
        log.info("reply %s ignored: no sender, or the organiser's own address", email_id)
        return None
    attendee = next((a for a in appointment.attendees if a.email_key == sender_key), None)
    if attendee is None or (organizer is not None and attendee.user_id == organizer.id):
        log.info("reply %s ignored: %s does not attend %s", email_id, sender_key, appointment.uid)
        return None
    listed = data.get("attendees")
    answers = [
        str(a.get("partstat", "")).upper()
        for a in (listed if isinstance(listed, list) else [])
        if isinstance(a, dict) and str(a.get("address", "")).strip().casefold() == sender_key
    ]
    if len(answers) != 1 or answers[0] not in ANSWERS:
        log.info("reply %s ignored: no single answer of its sender", email_id)
        return None
    # Where it went: a mailbox of the organiser or a staff attendee (mail sync links the copy after
    # it announced the mail, so at first the recipients tell: the organiser's or staff's address).
    entitled = {appointment.created_by_id} | {a.user_id for a in appointment.attendees if a.user_id is not None}
    readers = set(
        session.scalars(
            select(Mailbox.owner_id)
            .join(MailboxEmail, MailboxEmail.mailbox_id == Mailbox.id)
            .where(MailboxEmail.email_id == email_id, Mailbox.owner_id.is_not(None))
        )
    )
    staff = {
        u.email.strip().casefold()
        for u in session.scalars(select(User).where(User.id.in_([i for i in entitled if i is not None])))
    }
    recipients = set(
        session.scalars(
            select(EmailParticipant.address_key).where(
                EmailParticipant.email_id == email_id, EmailParticipant.role.in_(("to", "cc", "bcc"))
            )
        )
    )
    if not (readers & entitled or recipients & staff):
        log.info("reply %s ignored: it reached neither the organiser nor a staff attendee", email_id)
        return None
    return attendee, answers[0]


def replies_of_linked_mail(session: Session, event: object) -> None:
    """hub.crm.events subscriber: e-mails the mail sync just linked may be replies to invitations."""
    items = getattr(event, "items", ())
    ids = sorted({item.email_id for item in items})
    if ids:
        apply_replies(session, ids)
