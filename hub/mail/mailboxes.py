"""Connecting a mailbox: settings, the encrypted password, health bookkeeping and backoff."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from hub.claims import Claim, try_claim
from hub.db import Database
from hub.errors import NotFound, ValidationError
from hub.i18n import _, shown
from hub.mail.imap import public_error
from hub.mail.privacy import invalid_never_share, refresh_withheld
from hub.models import (
    Email,
    EmailLocation,
    Mailbox,
    MailboxEmail,
    MailFolder,
    MailQuarantine,
    MailSecurity,
    MailSharing,
    User,
)
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
    elif (mailbox.host.lower(), mailbox.port, mailbox.username) != (host.lower(), data.port, data.username.strip()):
        _forget_uids(session, mailbox.id)
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


# No server gives a folder this UIDVALIDITY (RFC 3501: a non-zero number): the sync sees a renumbered folder.
_UNKNOWN_UIDVALIDITY = 0


def _forget_uids(session: Session, mailbox_id: int) -> None:
    """Another server or account (a migration): its UIDs mean nothing here, even under the same
    UIDVALIDITY, which is only unique on one server (and migration tools may copy it). The next sync
    treats every folder as renumbered: it drops the old UIDs and finds every message again, those it
    holds by Message-ID and size without a download; the e-mails and their links stay."""
    session.execute(
        update(MailFolder).where(MailFolder.mailbox_id == mailbox_id).values(uidvalidity=_UNKNOWN_UIDVALIDITY)
    )


def get_mailbox(session: Session, mailbox_id: int) -> Mailbox:
    """The mailbox; a removed one is :class:`NotFound` (only its row is left, for the mail it kept)."""
    mailbox = session.get(Mailbox, mailbox_id)
    if mailbox is None or mailbox.removed_at is not None:
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
        or_(
            and_(
                Mailbox.active.is_(True),
                or_(Mailbox.next_attempt_at.is_(None), Mailbox.next_attempt_at <= now),
            ),
            # A removal still clearing folders and mail: the sync task does that work (see finish_removal).
            Mailbox.removal.in_(REMOVING),
        ),
        or_(Mailbox.claimed_until.is_(None), Mailbox.claimed_until < now),
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
    query = select(Mailbox).where(Mailbox.removed_at.is_(None)).order_by(Mailbox.name)
    if not user.is_admin:
        query = query.where(Mailbox.owner_id == user.id)
    return list(session.scalars(query))


# --- pause, resume, remove ---------------------------------------------------------------------------------

# ``Mailbox.removal`` while a removal still has work to do.
REMOVING = ("keep", "delete")
# Rows deleted per transaction when a removal clears a mailbox: short transactions, whatever its size.
REMOVAL_BATCH = 500


def pause_mailbox(session: Session, mailbox: Mailbox) -> None:
    """Stop syncing: the sweep, a claim and the watcher all skip an inactive mailbox (a sync running now
    finishes its slice). Its folders keep their cursors, so resuming goes on where it stopped."""
    mailbox.active = False
    session.flush()


def resume_mailbox(session: Session, mailbox: Mailbox) -> None:
    """Sync again, from where it stopped; due at once (the caller queues the sync after commit)."""
    mailbox.active = True
    mailbox.next_attempt_at = None
    session.flush()


def remove_mailbox(session: Session, mailbox: Mailbox, *, keep_mail: bool) -> None:
    """Remove a mailbox: at once gone from every list, never synced or watched again, its password erased.

    ``keep_mail``: its e-mails stay, seen under the same rules as before. That is why the row itself stays
    (marked removed): it says whose personal mail it is and what its owner shared of it, so the owner's
    private mail never becomes visible to others, nor a shared mailbox's mail invisible to all.
    Otherwise its e-mails that no other mailbox holds are deleted; mail another mailbox also holds stays,
    seen under that mailbox's rules. Either way the folders, cursors and quarantine go. That work is done
    in short batches by :func:`finish_removal` (the sync task, queued by the caller after commit).
    """
    mailbox.removed_at = utcnow()
    mailbox.removal = "keep" if keep_mail else "delete"
    mailbox.active = False
    mailbox.password_encrypted = ""
    mailbox.last_error = ""
    mailbox.failures = 0
    mailbox.next_attempt_at = None
    session.flush()


def removal_pending(db: Database, mailbox_id: int) -> bool:
    with db.transaction() as session:
        return session.scalar(select(Mailbox.removal).where(Mailbox.id == mailbox_id)) in REMOVING


def finish_removal(
    db: Database, mailbox_id: int, *, budget_seconds: float = 240, batch: int = REMOVAL_BATCH
) -> bool | None:
    """Clear a removed mailbox in batches of ``batch`` rows, each its own transaction, under the
    mailbox's claim (never beside a sync of it that was still running). Stops when ``budget_seconds``
    are spent: returns True if work is left (queue it again), False when done, None when another run
    holds the claim. A run killed half-way leaves consistent batches; the next one goes on."""
    from hub.claims import heartbeat

    claim = try_claim(db, Mailbox, mailbox_id, Mailbox.removal.in_(REMOVING))
    if claim is None:
        return None
    deadline = time.monotonic() + budget_seconds
    with heartbeat(claim):
        while time.monotonic() < deadline and not claim.lost.is_set():
            with db.transaction() as session:
                removal = session.scalar(select(Mailbox.removal).where(Mailbox.id == mailbox_id))
                if removal not in REMOVING:
                    return False
                if _clear_batch(session, mailbox_id, delete_mail=removal == "delete", batch=batch):
                    continue
                # Nothing left but the row.
                if removal == "delete":
                    session.execute(delete(Mailbox).where(Mailbox.id == mailbox_id))
                    return False
            claim.release(removal="done")
            return False
    claim.release()
    return True


def _clear_batch(session: Session, mailbox_id: int, *, delete_mail: bool, batch: int) -> bool:
    """One batch of a removal; False when there was nothing left to clear."""
    folders = select(MailFolder.id).where(MailFolder.mailbox_id == mailbox_id).scalar_subquery()
    locations = list(session.scalars(select(EmailLocation.id).where(EmailLocation.folder_id.in_(folders)).limit(batch)))
    if locations:
        session.execute(delete(EmailLocation).where(EmailLocation.id.in_(locations)))
        return True
    quarantined = list(
        session.scalars(select(MailQuarantine.id).where(MailQuarantine.folder_id.in_(folders)).limit(batch))
    )
    if quarantined:
        session.execute(delete(MailQuarantine).where(MailQuarantine.id.in_(quarantined)))
        return True
    if session.execute(delete(MailFolder).where(MailFolder.mailbox_id == mailbox_id)).rowcount:  # type: ignore[attr-defined]
        return True
    if not delete_mail:
        return False
    email_ids = list(
        session.scalars(select(MailboxEmail.email_id).where(MailboxEmail.mailbox_id == mailbox_id).limit(batch))
    )
    if not email_ids:
        return False
    session.execute(
        delete(MailboxEmail).where(MailboxEmail.mailbox_id == mailbox_id, MailboxEmail.email_id.in_(email_ids))
    )
    # Mail another mailbox also holds stays; the rest goes with its participants, links and
    # attachments (foreign keys cascade). Its pack bytes are freed by the orphan-pack sweep.
    held_elsewhere = exists().where(MailboxEmail.email_id == Email.id)
    session.execute(delete(Email).where(Email.id.in_(email_ids), ~held_elsewhere))
    return True
