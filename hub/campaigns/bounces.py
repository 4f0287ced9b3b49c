"""What comes back from a mailing: unsubscribes, bounces, complaints and replies.

Policy (listmonk's defaults, research/campaigns_and_celery.md §A3/§A7.9): a hard bounce or a
complaint suppresses the address at once; soft bounces suppress it after
:data:`SOFT_BOUNCES_TO_SUPPRESS` of them. Suppression is by address and applies at send time, so an
unsubscribe is effective for the very next message, also of a mailing already sending.

Bounces and replies arrive through hub's own mail sync: it announces the e-mails it stored
(hub.crm.events.EmailsStored) and :func:`on_emails_stored` reads the bounce, complaint and reply
ones; the ledger row is found by the VERP return address, else by the returned Message-ID.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.campaigns import messages
from hub.crm.events import EmailsStored, StoredEmail
from hub.models import EmailAddress
from hub.models.base import utcnow
from hub.models.campaigns import BounceEvent, MailingRecipient, Suppression, SuppressionReason

log = logging.getLogger(__name__)
SOFT_BOUNCES_TO_SUPPRESS = 3


def _insert(session: Session, model: Any) -> Any:
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(model)


def suppress(
    session: Session,
    address: str,
    reason: SuppressionReason,
    *,
    detail: str = "",
    contact_id: int | None = None,
    mailing_id: int | None = None,
) -> bool:
    """Put an address on the suppression list (once; the first reason stays). True if it was new."""
    key = address.strip().lower()
    if not key:
        return False
    if contact_id is None:
        contact_id = session.scalar(
            select(EmailAddress.contact_id)
            .where(EmailAddress.address_key == key, EmailAddress.contact_id.isnot(None))
            .order_by(EmailAddress.id)
            .limit(1)
        )
    result = session.execute(
        _insert(session, Suppression)
        .values(
            address_key=key,
            reason=reason.value,
            detail=detail[:2000],
            contact_id=contact_id,
            mailing_id=mailing_id,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["address_key"])
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def unsuppress(session: Session, address: str) -> None:
    session.query(Suppression).filter(Suppression.address_key == address.strip().lower()).delete()


def is_suppressed(session: Session, address: str) -> str:
    return session.scalar(select(Suppression.reason).where(Suppression.address_key == address.strip().lower())) or ""


# --- unsubscribe -------------------------------------------------------------------------------------------


def recipient_for_token(session: Session, secret: str, token: str) -> MailingRecipient | None:
    recipient_id = messages.recipient_of_token(secret, token)
    return session.get(MailingRecipient, recipient_id) if recipient_id is not None else None


def unsubscribe(session: Session, recipient: MailingRecipient) -> bool:
    """Unsubscribe the ledger row's address from all marketing mail. Idempotent: True the first time."""
    if recipient.unsubscribed_at is None:
        recipient.unsubscribed_at = utcnow()
    return suppress(
        session,
        recipient.address,
        SuppressionReason.unsubscribed,
        detail="one-click unsubscribe",
        contact_id=recipient.contact_id,
        mailing_id=recipient.mailing_id,
    )


# --- bounces -----------------------------------------------------------------------------------------------


def record_bounce(
    session: Session,
    *,
    address: str,
    kind: str,
    status: str = "",
    diagnostic: str = "",
    recipient_id: int | None = None,
    email_id: int | None = None,
) -> BounceEvent | None:
    """Record one bounce or complaint (once per e-mail and address) and apply the policy."""
    recipient = session.get(MailingRecipient, recipient_id) if recipient_id is not None else None
    key = (address or (recipient.address if recipient else "")).strip().lower()
    if not key:
        return None
    if email_id is not None and session.scalar(
        select(BounceEvent.id).where(BounceEvent.email_id == email_id, BounceEvent.address_key == key)
    ):
        return None  # the same bounce synced again (another folder, a re-sync)
    contact_id = recipient.contact_id if recipient else None
    if contact_id is None:
        contact_id = session.scalar(
            select(EmailAddress.contact_id)
            .where(EmailAddress.address_key == key, EmailAddress.contact_id.isnot(None))
            .order_by(EmailAddress.id)
            .limit(1)
        )
    event = BounceEvent(
        address_key=key,
        kind=kind,
        status=status[:20],
        diagnostic=diagnostic[:2000],
        contact_id=contact_id,
        mailing_id=recipient.mailing_id if recipient else None,
        recipient_id=recipient.id if recipient else None,
        email_id=email_id,
    )
    session.add(event)
    if recipient is not None and kind in ("hard", "soft") and recipient.bounced_at is None:
        recipient.bounced_at = utcnow()
    session.flush()
    mailing_id = recipient.mailing_id if recipient else None
    if kind == "hard":
        suppress(
            session,
            key,
            SuppressionReason.hard_bounce,
            detail=diagnostic or status,
            contact_id=contact_id,
            mailing_id=mailing_id,
        )
    elif kind == "complaint":
        suppress(
            session, key, SuppressionReason.complaint, detail=diagnostic, contact_id=contact_id, mailing_id=mailing_id
        )
    elif kind == "soft":
        soft = session.scalar(select(func.count()).where(BounceEvent.address_key == key, BounceEvent.kind == "soft"))
        if (soft or 0) >= SOFT_BOUNCES_TO_SUPPRESS:
            suppress(
                session,
                key,
                SuppressionReason.soft_bounces,
                detail=f"{soft} soft bounces; last: {diagnostic or status}",
                contact_id=contact_id,
                mailing_id=mailing_id,
            )
    return event


def bounces_of_contact(session: Session, contact_id: int) -> list[BounceEvent]:
    return list(
        session.scalars(
            select(BounceEvent).where(BounceEvent.contact_id == contact_id).order_by(BounceEvent.id.desc()).limit(50)
        )
    )


def verp_recipient(session: Session, address: str) -> int | None:
    """The ledger row a VERP address names, if its signature matches that row's Message-ID."""
    parts = messages.verp_parts(address)
    if parts is None:
        return None
    row_id, signature = parts
    message_id = session.scalar(select(MailingRecipient.message_id).where(MailingRecipient.id == row_id))
    if not message_id or not hmac.compare_digest(signature, messages.verp_signature(message_id)):
        return None
    return row_id


def _by_message_id(session: Session, values: list[str]) -> int | None:
    # Only Message-IDs hub made for a mailing are looked up: "<row.mailing.mac.hub@domain>" names
    # its ledger row, which must have been sent with exactly that Message-ID (the ledger has no
    # index on it: marking a row sent then leaves every index alone, see migration 0016).
    wanted: dict[int, str] = {}
    for value in [v.strip() for v in values if v and ".hub@" in v]:
        value = value if value.startswith("<") else f"<{value}>"
        row, dot, _rest = value[1:].partition(".")
        if dot and row.isascii() and row.isdigit() and len(row) < 19:
            wanted.setdefault(int(row), value)
        if len(wanted) == 20:
            break
    if not wanted:
        return None
    return session.scalar(
        select(MailingRecipient.id)
        .where(
            MailingRecipient.id.in_(list(wanted)),
            MailingRecipient.message_id.in_(list(wanted.values())),
        )
        .order_by(MailingRecipient.id)
        .limit(1)
    )


def _recipient_of_mail(session: Session, recipients: list[str], message_ids: list[str]) -> int | None:
    for address in recipients:
        found = verp_recipient(session, address)
        if found is not None:
            return found
    return _by_message_id(session, message_ids)


def handle_email(session: Session, email: StoredEmail) -> str:
    """Read one stored e-mail for what it says about a mailing: "bounce", "complaint", "reply" or ""."""
    details = email.details
    returned = [str(details.get("original_message_id", ""))]
    if email.kind == "bounce":
        recipient_id = _recipient_of_mail(session, list(email.recipients), returned)
        failed = str(details.get("recipient", "")).lower()
        if recipient_id is None and not (
            failed
            and session.scalar(select(MailingRecipient.id).where(MailingRecipient.address_key == failed).limit(1))
        ):
            return ""  # a bounce of someone's own mail, not of a mailing
        if str(details.get("action", "")).lower() == "delayed":
            return ""  # a delay warning is not a bounce
        record_bounce(
            session,
            address=failed,
            kind="hard" if details.get("hard") else "soft",
            status=str(details.get("status", "")),
            diagnostic=str(details.get("diagnostic", "")),
            recipient_id=recipient_id,
            email_id=email.email_id,
        )
        return "bounce"
    if email.kind == "complaint":
        recipient_id = _recipient_of_mail(session, list(email.recipients), returned)
        if recipient_id is None and not details.get("recipient"):
            return ""
        record_bounce(
            session,
            address=str(details.get("recipient", "")),
            kind="complaint",
            status=str(details.get("feedback_type", ""))[:20],
            diagnostic=json.dumps({k: v for k, v in details.items() if isinstance(v, str)})[:2000],
            recipient_id=recipient_id,
            email_id=email.email_id,
        )
        return "complaint"
    if email.kind == "":  # a person's reply; auto-replies have their own kind and do not count
        recipient_id = _by_message_id(session, list(email.in_reply_to))
        if recipient_id is None:
            return ""
        session.execute(
            update(MailingRecipient)
            .where(MailingRecipient.id == recipient_id, MailingRecipient.replied_at.is_(None))
            .values(replied_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return "reply"
    return ""


def on_emails_stored(session: Session, event: EmailsStored) -> None:
    """hub.crm.events subscriber: mail sync stored new e-mails (in its transaction)."""
    for email in event.items:
        try:
            with session.begin_nested():
                handle_email(session, email)
        except Exception:  # one unreadable report must not cost the sync its batch
            log.exception("could not read e-mail %s for campaign results", email.email_id)


def set_consent(session: Session, contact_id: int, consent: bool, source: str) -> None:
    """Record a contact's marketing consent (AVG/GDPR): whether, how and when it was given or withdrawn."""
    from hub.models import Contact

    contact = session.get(Contact, contact_id)
    if contact is None:
        raise LookupError(contact_id)
    contact.marketing_consent = consent
    contact.marketing_consent_source = source.replace("\x00", "").strip()[:200]
    contact.marketing_consent_at = utcnow()
