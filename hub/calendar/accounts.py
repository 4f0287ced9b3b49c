"""Calendar accounts: a staff member's CalDAV server and chosen calendar (or invitations by e-mail),
the "test connection" answer in plain words, and one health state per account."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from hub.calendar.appointments import schedule_account
from hub.calendar.dav import INTERACTIVE_SECONDS, CalendarError, Dav, Found, same_resource
from hub.db import Database
from hub.errors import NotFound, ValidationError
from hub.i18n import N_, _, shown
from hub.models import CalendarAccount, CalendarPush, User
from hub.models.base import utcnow
from hub.models.calendar import Delivery, PushState
from hub.ops.health import Work, WorkHealth, work_state
from hub.secrets import SecretUnreadable, decrypt, encrypt

DELIVERIES = tuple(d.value for d in Delivery)


@dataclass
class AccountInput:
    delivery: str = Delivery.caldav.value
    url: str = ""
    username: str = ""
    password: str | None = None  # None: keep the stored one
    calendar: str = ""  # a calendar's name or URL; "" : the first (default) one


def discover(url: str, username: str, password: str, *, allowed_hosts: str) -> list[Found]:
    """The user's calendars on the server; :class:`CalendarError` in plain words if that fails. A
    person waits for it: each request ends within :data:`~hub.calendar.dav.INTERACTIVE_SECONDS`."""
    with Dav(url, username, password, allowed_hosts=allowed_hosts, bound=INTERACTIVE_SECONDS) as dav:
        return dav.calendars()


def choose(found: list[Found], wanted: str, typed_url: str = "") -> Found:
    """The calendar named (or addressed by) ``wanted``; without one, the calendar whose own address
    was typed as the server's (pasted from a calendar app), else the first the server lists."""
    if not found:
        raise CalendarError(N_("The server has no calendar for this user: make one there first."), temporary=False)
    if not wanted:
        # The server lists calendars in no promised order (Xandikos: as its directory lists them),
        # so "the first" could be another calendar than the one whose address was pasted.
        return next((item for item in found if typed_url and same_resource(item.url, typed_url)), found[0])
    for item in found:
        if wanted in (item.name, item.url) or item.url.rstrip("/").endswith("/" + wanted.strip("/")):
            return item
    names = ", ".join(f.name for f in found)
    raise CalendarError(
        N_("No calendar named %(name)s; the server has: %(names)s", name=wanted, names=names), temporary=False
    )


def test_connection(
    url: str, username: str, password: str, calendar: str = "", *, allowed_hosts: str
) -> tuple[bool, str]:
    """Log in, find the calendars, and say in plain words what works."""
    try:
        chosen = choose(discover(url, username, password, allowed_hosts=allowed_hosts), calendar, url)
    except CalendarError as exc:
        return False, exc.words
    return True, _("Connected: hub writes into the calendar %(name)s.", name=chosen.name)


def _check_url(url: str) -> str:
    url = url.strip()
    if not url.startswith(("http://", "https://")) or len(url) > 1000 or any(c in url for c in "\x00 \n\r\t"):
        raise ValidationError(_("The CalDAV address starts with https:// (or http://)."), "url")
    return url


def save_account(
    session: Session, secret_key: str, owner: User, data: AccountInput, *, found: list[Found] | None = None
) -> CalendarAccount:
    """Create or change ``owner``'s account. For CalDAV, ``found`` is the discovery's result (done
    by the caller before the transaction: network I/O stays outside it)."""
    if data.delivery not in DELIVERIES:
        raise ValidationError(_("Choose one of: %(choices)s", choices=", ".join(DELIVERIES)), "delivery")
    account = session.scalar(select(CalendarAccount).where(CalendarAccount.owner_id == owner.id))
    if account is None:
        account = CalendarAccount(owner_id=owner.id)
        session.add(account)
    account.delivery = data.delivery
    if data.delivery == Delivery.caldav.value:
        url = _check_url(data.url)
        if not data.username.strip() or "\x00" in data.username:
            raise ValidationError(_("Enter the user name of the calendar server."), "username")
        if found is None:
            raise ValidationError(_("Test the connection first."), "url")
        try:
            chosen = choose(found, data.calendar.strip(), url)
        except CalendarError as exc:
            raise ValidationError(exc.words, "calendar") from None
        moved = account.calendar_url != chosen.url
        account.url, account.username = url, data.username.strip()[:254]
        if data.password:
            account.password_encrypted = encrypt(secret_key, data.password)
        account.calendar_url, account.calendar_name = chosen.url, chosen.name[:200]
        account.active = True
        account.failures, account.last_error, account.next_attempt_at = 0, "", None
        session.flush()
        if moved:
            # Another calendar: hub's events are written there afresh (the old ones stay where they are).
            account.sync_token = ""
            for push in session.scalars(select(CalendarPush).where(CalendarPush.account_id == account.id)):
                push.href, push.etag, push.pushed_hash, push.pushed_fields = "", "", "", "{}"
        schedule_account(session, account)
    session.flush()
    return account


def password_of(account: CalendarAccount, secret_key: str) -> str:
    try:
        return decrypt(secret_key, account.password_encrypted) if account.password_encrypted else ""
    except SecretUnreadable:
        raise CalendarError(
            N_("The stored password can no longer be read (HUB_SECRET_KEY changed): enter it again."), temporary=False
        ) from None


def account_of(session: Session, user: User) -> CalendarAccount | None:
    return session.scalar(select(CalendarAccount).where(CalendarAccount.owner_id == user.id))


def get_account(session: Session, account_id: int) -> CalendarAccount:
    account = session.get(CalendarAccount, account_id)
    if account is None:
        raise NotFound(account_id)
    return account


def accounts_for(session: Session, viewer: User) -> list[CalendarAccount]:
    """Your own account; every account for admins."""
    query = select(CalendarAccount).order_by(CalendarAccount.id)
    if not viewer.is_admin:
        query = query.where(CalendarAccount.owner_id == viewer.id)
    return list(session.scalars(query))


def pending_counts(session: Session, account_ids: list[int]) -> dict[int, int]:
    if not account_ids:
        return {}
    rows = session.execute(
        select(CalendarPush.account_id, func.count())
        .where(
            CalendarPush.account_id.in_(account_ids),
            CalendarPush.state.in_([PushState.pending.value, PushState.delete.value]),
        )
        .group_by(CalendarPush.account_id)
    )
    return {account_id: int(n) for account_id, n in rows}


def item_errors(session: Session, account_ids: list[int]) -> dict[int, tuple[int, str]]:
    """Per account: how many of its events the last pulls could not read, and the latest reason
    (stored, see :func:`hub.i18n.N_`). The account itself syncs; these are the events it skipped."""
    if not account_ids:
        return {}
    rows = session.execute(
        select(CalendarPush.account_id, func.count(), func.max(CalendarPush.id))
        .where(CalendarPush.account_id.in_(account_ids), CalendarPush.last_error != "")
        .group_by(CalendarPush.account_id)
    ).all()
    reasons: dict[int, str] = {
        push_id: error
        for push_id, error in session.execute(
            select(CalendarPush.id, CalendarPush.last_error).where(CalendarPush.id.in_([r[2] for r in rows]))
        )
    }
    return {account_id: (int(n), reasons.get(last, "")) for account_id, n, last in rows}


def with_item_errors(health: WorkHealth, errors: tuple[int, str] | None) -> WorkHealth:
    """The account's state in words, followed by what the sync-health page must say about events
    it could not read (the rest of the calendar syncs, so the state itself is not "failing")."""
    if not errors:
        return health
    count, reason = errors
    return replace(
        health,
        words=health.words
        + " — "
        + _(
            "%(count)s event(s) in the calendar could not be read; the last: %(reason)s",
            count=count,
            reason=shown(reason),
        ),
    )


def health_of(account: CalendarAccount, *, workers_alive: bool) -> WorkHealth:
    """The account's one state (an invitations-only account has nothing to sync: it is paused)."""
    return work_state(
        Work(
            active=account.active and account.delivery == Delivery.caldav.value,
            claimed_until=account.claimed_until,
            last_progress_at=account.last_progress_at or account.last_attempt_at,
            progress_done=account.progress_done,
            progress_total=account.progress_total,
            failures=account.failures,
            error=account.last_error,
            next_attempt_at=account.next_attempt_at,
            last_success_at=account.last_success_at,
            created_at=account.created_at,
        ),
        workers_alive=workers_alive,
    )


def due_accounts(session: Session, now: datetime | None = None) -> list[int]:
    """Accounts with pushes waiting, or whose pull is due (every ``poll_interval_seconds``), that
    nobody holds and whose backoff has passed."""
    now = now or utcnow()
    waiting = set(
        session.scalars(
            select(CalendarPush.account_id)
            .where(CalendarPush.state.in_([PushState.pending.value, PushState.delete.value]))
            .distinct()
        )
    )
    query = select(CalendarAccount.id, CalendarAccount.last_pull_at, CalendarAccount.poll_interval_seconds).where(
        CalendarAccount.active.is_(True),
        CalendarAccount.delivery == Delivery.caldav.value,
        CalendarAccount.calendar_url != "",
        or_(CalendarAccount.next_attempt_at.is_(None), CalendarAccount.next_attempt_at <= now),
        or_(CalendarAccount.claimed_until.is_(None), CalendarAccount.claimed_until < now),
    )
    return [
        account_id
        for account_id, pulled, interval in session.execute(query.order_by(CalendarAccount.id))
        if account_id in waiting or pulled is None or pulled + timedelta(seconds=interval) <= now
    ][:500]


@dataclass(frozen=True)
class AccountHealth:
    """One calendar account on the sync-health page: its state, last push and pull, what waits."""

    id: int
    owner_id: int
    owner: str
    calendar: str
    health: WorkHealth
    last_push_at: datetime | None
    last_pull_at: datetime | None
    error: str
    pending: int


def account_health_rows(db: Database, *, workers_alive: bool) -> list[AccountHealth]:
    """Every calendar account's state (empty when the database cannot be read: the page says so)."""
    try:
        with db.transaction() as session:
            accounts = list(
                session.scalars(
                    select(CalendarAccount)
                    .where(CalendarAccount.delivery == Delivery.caldav.value)
                    .order_by(CalendarAccount.id)
                )
            )
            counts = pending_counts(session, [a.id for a in accounts])
            skipped = item_errors(session, [a.id for a in accounts])
            owners = {
                u.id: u.name for u in session.scalars(select(User).where(User.id.in_([a.owner_id for a in accounts])))
            }
            return [
                AccountHealth(
                    a.id,
                    a.owner_id,
                    owners.get(a.owner_id, ""),
                    a.calendar_name,
                    with_item_errors(health_of(a, workers_alive=workers_alive), skipped.get(a.id)),
                    a.last_push_at,
                    a.last_pull_at,
                    a.last_error,
                    counts.get(a.id, 0),
                )
                for a in accounts
            ]
    except Exception:  # the database check on the same page reports the outage
        return []
