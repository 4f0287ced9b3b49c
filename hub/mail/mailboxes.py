"""Connecting a mailbox: settings, the encrypted password, health bookkeeping and backoff."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from hub.claims import Claim, try_claim
from hub.db import Database
from hub.errors import NotFound, ValidationError
from hub.i18n import _, shown
from hub.mail.imap import public_error
from hub.mail.privacy import invalid_never_share, refresh_withheld
from hub.models import Mailbox, MailSecurity, MailSharing, User
from hub.models.base import utcnow
from hub.net import refused_address
from hub.ops.health import Work, WorkHealth, work_state
from hub.secrets import encrypt

MAX_BACKOFF = timedelta(hours=1)
HOST_RE = re.compile(r"^[A-Za-z0-9.-]+$|^\[[0-9a-fA-F:]+\]$")


@dataclass
class MailboxInput:
    host: str
    port: int
    security: str
    username: str
    password: str | None
    owner_id: int | None = None
    name: str = ""
    folders: str = ""
    sync_since: date | None = None
    poll_interval_seconds: int = 300
    # Personal mailboxes: who else sees their mail (MailSharing), and what is never shared.
    sharing: str = MailSharing.only_me.value
    never_share: str = ""


def save_mailbox(
    session: Session,
    secret_key: str,
    data: MailboxInput,
    mailbox: Mailbox | None = None,
    *,
    allowed_hosts: str = "",
) -> Mailbox:
    """Create or change a mailbox. ``allowed_hosts`` (HUB_MAIL_ALLOWED_HOSTS): internal servers an
    admin allowed; any other host must be public, so the form is no way to probe the internal network."""
    errors: dict[str, str] = {}
    host = data.host.strip()
    if not host or not HOST_RE.match(host):
        errors["host"] = _("Enter the server name, such as imap.example.nl.")
    elif 1 <= data.port <= 65535 and (refused := refused_address(host, data.port, allowed_hosts)):
        errors["host"] = refused
    if not 1 <= data.port <= 65535:
        errors["port"] = _("The port is a number from 1 to 65535.")
    if data.security not in {s.value for s in MailSecurity}:
        errors["security"] = _("Choose none, starttls or ssl.")
    if not data.username.strip():
        errors["username"] = _("Enter the user name.")
    if mailbox is None and not data.password:
        errors["password"] = _("Enter the password.")
    if data.owner_id is not None and session.get(User, data.owner_id) is None:
        errors["owner_id"] = _("Choose an active user.")
    if data.poll_interval_seconds < 30:
        errors["poll_interval_seconds"] = _("Poll at most every 30 seconds.")
    if data.sharing not in {s.value for s in MailSharing}:
        errors["sharing"] = _("Choose who may see the mail of this mailbox.")
    if bad := invalid_never_share(data.never_share):
        errors["never_share"] = _("Not an address or domain: %(entries)s", entries=", ".join(bad[:5]))
    if errors:
        raise ValidationError(errors)
    if mailbox is None:
        mailbox = Mailbox(
            host=host, port=data.port, security=MailSecurity(data.security), username="", password_encrypted=""
        )
        session.add(mailbox)
    mailbox.name = data.name.strip() or f"{data.username.strip()}@{host}"
    mailbox.owner_id = data.owner_id
    mailbox.host = host
    mailbox.port = data.port
    mailbox.security = MailSecurity(data.security)
    mailbox.username = data.username.strip()
    if data.password:
        mailbox.password_encrypted = encrypt(secret_key, data.password)
    mailbox.folders = "\n".join(f.strip() for f in data.folders.splitlines() if f.strip())
    mailbox.sync_since = data.sync_since
    mailbox.poll_interval_seconds = data.poll_interval_seconds
    mailbox.sharing = data.sharing
    never_share = "\n".join(line.strip() for line in data.never_share.splitlines() if line.strip())
    list_changed = never_share != (mailbox.never_share or "")
    mailbox.never_share = never_share
    mailbox.next_attempt_at = None
    session.flush()
    if list_changed:
        refresh_withheld(session, mailbox.id)  # effective for the mail already stored, at once
    return mailbox


def get_mailbox(session: Session, mailbox_id: int) -> Mailbox:
    mailbox = session.get(Mailbox, mailbox_id)
    if mailbox is None:
        raise NotFound(mailbox_id)
    return mailbox


def claim(db: Database, mailbox_id: int, *, force: bool = False) -> Claim | None:
    """Take the mailbox's sync claim (one sync per mailbox at a time); None if it is not ours to take."""
    now = utcnow()
    conditions: list[ColumnElement[bool]] = [Mailbox.active.is_(True)]
    if not force:
        # A failing mailbox waits out its backoff; a healthy one syncs whenever woken (IDLE, "sync now").
        conditions.append(or_(Mailbox.failures == 0, Mailbox.next_attempt_at.is_(None), Mailbox.next_attempt_at <= now))
    return try_claim(db, Mailbox, mailbox_id, *conditions, last_attempt_at=now, progress_done=0, progress_total=0)


def record_success(claim: Claim, *, backlog: int) -> None:
    """The sync ended well: healthy again, and the next poll planned (at once if work is left)."""
    now = utcnow()
    with claim.db.transaction() as session:
        interval = session.scalar(select(Mailbox.poll_interval_seconds).where(Mailbox.id == claim.object_id)) or 300
    claim.release(
        last_success_at=now,
        last_error="",
        failing_since=None,
        failures=0,
        backlog=backlog,
        next_attempt_at=None if backlog else now + timedelta(seconds=interval),
    )


def record_failure(claim: Claim, message: str) -> timedelta:
    """Mark the mailbox failing in plain words and back off: 1, 2, 4 … minutes, at most an hour."""
    now = utcnow()
    with claim.db.transaction() as session:
        mailbox = session.get_one(Mailbox, claim.object_id)
        mailbox.failures += 1
        mailbox.failing_since = mailbox.failing_since or now
        mailbox.last_error = message
        delay = min(timedelta(minutes=2 ** min(mailbox.failures - 1, 10)), MAX_BACKOFF)
        mailbox.next_attempt_at = now + delay
    claim.release()
    return delay


def due_mailboxes(session: Session, now: datetime | None = None) -> list[int]:
    """Mailboxes whose next sync is due (the beat sweep sends them; polling is the fallback to IDLE)."""
    now = now or utcnow()
    query = select(Mailbox.id).where(
        Mailbox.active.is_(True),
        or_(Mailbox.claimed_until.is_(None), Mailbox.claimed_until < now),
        or_(Mailbox.next_attempt_at.is_(None), Mailbox.next_attempt_at <= now),
    )
    return list(session.scalars(query.limit(500)))


def health_of(mailbox: Mailbox, viewer: User, *, workers_alive: bool) -> WorkHealth:
    """The mailbox's one state in plain words (syncing with progress, ok, waiting, failing, stalled)."""
    return work_state(
        Work(
            active=mailbox.active,
            claimed_until=mailbox.claimed_until,
            last_progress_at=mailbox.last_progress_at or mailbox.last_attempt_at,
            progress_done=mailbox.progress_done,
            progress_total=mailbox.progress_total,
            failures=mailbox.failures,
            error=error_for(mailbox, viewer),
            next_attempt_at=mailbox.next_attempt_at,
            last_success_at=mailbox.last_success_at,
            created_at=mailbox.created_at,
        ),
        workers_alive=workers_alive,
    )


def error_for(mailbox: Mailbox, viewer: User) -> str:
    """The mailbox's last error as ``viewer`` may read it: admins get the detail; others never learn
    whether a port was closed, filtered or answered by another service (no port scanning by form)."""
    if viewer.is_admin:
        return shown(mailbox.last_error)
    return public_error(mailbox.last_error, mailbox.host, mailbox.port)


def mailboxes_for(session: Session, user: User) -> list[Mailbox]:
    query = select(Mailbox).order_by(Mailbox.name)
    if not user.is_admin:
        query = query.where(Mailbox.owner_id == user.id)
    return list(session.scalars(query))
