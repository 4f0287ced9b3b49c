"""Push appointments into a staff member's CalDAV calendar, and pull his changes back.

One account at a time, claimed (hub.claims): one run per account, taken again within a lease when a
worker dies. Network I/O happens between short transactions; each batch's results are committed
together, and every step is safe to repeat:

- create: PUT to hub's own href ``<calendar>/<uid>.ics`` with ``If-None-Match: *``. If the answer
  was lost after the server stored the event, the retry gets a 412: hub reads the event there, sees
  its own UID and adopts it (its ETag) — never a second event;
- update and delete: ``If-Match`` with the last ETag. A 412 means the owner changed the event in his
  calendar: hub reads it, merges per field (the side that changed a field last wins, the loser goes
  into the appointment's history; :mod:`hub.calendar.merge`) and writes the result with the new ETag;
- an appointment whose content hash equals what was last written costs no request at all;
- pull: RFC 6578 sync-collection from the saved sync-token (a full listing when the server forgot
  it), or ETag comparison (PROPFIND) on servers without it. A changed event is merged like a 412; a
  deleted one cancels the appointment. The new token is saved after the changes it covers. One
  event the server will not hand over (a 500 to its GET) is one event's failure, not the account's:
  its reason is kept on its push row and it is read again at the next pull.

Failures are recorded on the account in plain words with a growing backoff, and shown on the
sync-health page; what was done before the failure stays done.
"""

from __future__ import annotations

import json
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from caldav.lib import error as dav_error
from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from hub.calendar import ical
from hub.calendar.accounts import password_of
from hub.calendar.appointments import (
    after_change,
    apply_fields,
    appointment_visible,
    current_fields,
    field_times,
    record_history,
    snapshot,
)
from hub.calendar.dav import Answer, CalendarError, Dav, plain, status_error
from hub.calendar.merge import merge
from hub.claims import Claim, heartbeat, try_claim
from hub.db import Database
from hub.i18n import N_, _, english
from hub.models import Appointment, CalendarAccount, CalendarPush, User
from hub.models.base import utcnow
from hub.models.calendar import AppointmentStatus, Delivery, PushState

BATCH = 100
PARALLEL = 4  # connections per account while pushing (Microsoft allows 4 per mailbox; most servers more)
MAX_BACKOFF = timedelta(hours=1)
CONFLICT_ROUNDS = 3


@dataclass
class SyncResult:
    appointments: int = 0  # appointments written to or removed from the calendar
    requests: int = 0
    unchanged: int = 0  # due, but the calendar already held them (no request)
    conflicts: int = 0
    pulled: int = 0  # changes from the calendar applied in hub
    errors: list[str] = field(default_factory=list)

    def add(self, other: SyncResult) -> None:
        self.appointments += other.appointments
        self.requests += other.requests
        self.unchanged += other.unchanged
        self.conflicts += other.conflicts
        self.pulled += other.pulled
        self.errors += other.errors


@dataclass
class _Item:
    push_id: int
    appointment_id: int
    state: str
    href: str
    etag: str
    pushed_hash: str
    base: dict[str, Any]
    uid: str
    private: bool
    deleted: bool
    snapshot: ical.Snapshot | None
    wanted_hash: str


@dataclass
class _Account:
    id: int
    url: str
    username: str
    password: str
    calendar_url: str
    owner_id: int
    sync_token: str


# --- entry points ---------------------------------------------------------------------------------------


def sync_account(
    db: Database,
    account_id: int,
    *,
    secret_key: str,
    allowed_hosts: str,
    push: bool = True,
    pull: bool = True,
    timeout: int | None = None,
) -> SyncResult | None:
    """Push what is due and pull changes for one account; None if another run holds it."""
    claim = try_claim(
        db,
        CalendarAccount,
        account_id,
        CalendarAccount.active.is_(True),
        CalendarAccount.delivery == Delivery.caldav.value,
        last_attempt_at=utcnow(),
        progress_done=0,
        progress_total=0,
    )
    if claim is None:
        return None
    result = SyncResult()
    with heartbeat(claim):
        try:
            with db.transaction() as session:
                account = _account(session, claim.object_id, secret_key)
            options = {"timeout": timeout} if timeout else {}
            # A few connections write at once: the server's time per request, not hub's, is what a
            # push waits for, and while one request is on the server the next is being prepared.
            davs = [
                Dav(account.url, account.username, account.password, allowed_hosts=allowed_hosts, **options)
                for _n in range(PARALLEL)
            ]
            try:
                if push:
                    _push(db, claim, davs, account, result)
                if pull and not claim.lost.is_set():
                    _pull(db, davs[0], account, result)
            finally:
                for dav in davs:
                    result.requests += dav.requests
                    dav.close()
        except CalendarError as exc:
            _record_failure(claim, exc.stored)
            raise
        except Exception as exc:
            _record_failure(claim, N_("Unexpected error: %(reason)s", reason=f"{type(exc).__name__}: {exc}"[:300]))
            raise
    now = utcnow()
    values: dict[str, Any] = {"last_success_at": now, "last_error": "", "failures": 0, "next_attempt_at": None}
    if push:
        values["last_push_at"] = now
    if pull:
        values["last_pull_at"] = now
    claim.release(**values)
    return result


def push_now(db: Database, *, secret_key: str, allowed_hosts: str, account_ids: list[int] | None = None) -> SyncResult:
    """``hub calendar push --now``: every account's due pushes, in the foreground."""
    return _each(db, secret_key, allowed_hosts, account_ids, push=True, pull=False)


def pull_now(db: Database, *, secret_key: str, allowed_hosts: str, account_ids: list[int] | None = None) -> SyncResult:
    return _each(db, secret_key, allowed_hosts, account_ids, push=False, pull=True)


def _each(
    db: Database, secret_key: str, allowed_hosts: str, account_ids: list[int] | None, *, push: bool, pull: bool
) -> SyncResult:
    total = SyncResult()
    with db.transaction() as session:
        query = select(CalendarAccount.id).where(
            CalendarAccount.active.is_(True), CalendarAccount.delivery == Delivery.caldav.value
        )
        if account_ids is not None:
            query = query.where(CalendarAccount.id.in_(account_ids))
        ids = list(session.scalars(query.order_by(CalendarAccount.id)))
    for account_id in ids:
        try:
            result = sync_account(
                db, account_id, secret_key=secret_key, allowed_hosts=allowed_hosts, push=push, pull=pull
            )
        except CalendarError as exc:
            total.errors.append(f"{account_id}: {exc.words}")
            continue
        if result is not None:
            total.add(result)
    return total


def _account(session: Session, account_id: int, secret_key: str) -> _Account:
    account = session.get_one(CalendarAccount, account_id)
    if not account.calendar_url:
        raise CalendarError(N_("No calendar chosen: choose one under Settings → Calendar."), temporary=False)
    return _Account(
        account.id,
        account.url,
        account.username,
        password_of(account, secret_key),
        account.calendar_url,
        account.owner_id,
        account.sync_token,
    )


def _record_failure(claim: Claim, words: str) -> None:
    with claim.db.transaction() as session:
        account = session.get_one(CalendarAccount, claim.object_id)
        account.failures += 1
        account.last_error = words
        account.next_attempt_at = utcnow() + min(timedelta(minutes=2 ** min(account.failures - 1, 10)), MAX_BACKOFF)
    claim.release()


# --- push -----------------------------------------------------------------------------------------------


def _load(session: Session, account: _Account, after_id: int) -> list[_Item]:
    pushes = list(
        session.scalars(
            select(CalendarPush)
            .where(
                CalendarPush.account_id == account.id,
                CalendarPush.state.in_([PushState.pending.value, PushState.delete.value]),
                CalendarPush.id > after_id,
            )
            .order_by(CalendarPush.id)
            .limit(BATCH)
        )
    )
    if not pushes:
        return []
    appointments = {
        a.id: a
        for a in session.scalars(
            select(Appointment)
            .where(Appointment.id.in_([p.appointment_id for p in pushes]))
            .options(selectinload(Appointment.attendees), selectinload(Appointment.overrides))
        )
    }
    owner = session.get_one(User, account.owner_id)
    seen = set(
        session.scalars(
            select(Appointment.id).where(Appointment.id.in_(list(appointments)), appointment_visible(owner))
        )
    )
    items = []
    for push in pushes:
        appointment = appointments[push.appointment_id]
        deleted = appointment.deleted_at is not None
        private = appointment.id not in seen
        shot = None if deleted else snapshot(session, appointment)
        items.append(
            _Item(
                push.id,
                appointment.id,
                PushState.delete.value if deleted else push.state,
                push.href,
                push.etag,
                push.pushed_hash,
                json.loads(push.pushed_fields or "{}"),
                appointment.uid,
                private,
                deleted,
                shot,
                ical.content_hash(shot, private=private) if shot is not None else "",
            )
        )
    return items


def _push(db: Database, claim: Claim, davs: list[Dav], account: _Account, result: SyncResult) -> None:
    with db.transaction() as session:
        total = session.scalar(
            select(CalendarPush.id)
            .where(
                CalendarPush.account_id == account.id,
                CalendarPush.state.in_([PushState.pending.value, PushState.delete.value]),
            )
            .order_by(CalendarPush.id.desc())
            .limit(1)
        )
    if total is None:
        return
    last_id = 0
    done = 0
    while not claim.lost.is_set():
        with db.transaction() as session:
            items = _load(session, account, last_id)
        if not items:
            return
        outcomes: list[tuple[_Item, dict[str, Any]]] = []
        failure: BaseException | None = None
        try:
            try:
                pushed = _push_batch(db, claim, davs, account, items)
            except _Partial as partial:
                pushed, failure = partial.done, partial.failure
            for item, values, counted in pushed:
                outcomes.append((item, values))
                result.add(counted)
            if failure is not None:
                raise failure
        finally:
            # What was written before a failure is recorded, so a retry does not write it again.
            _save_outcomes(db, outcomes)
            done += len(outcomes)
            with db.transaction() as session:
                session.execute(
                    update(CalendarAccount)
                    .where(CalendarAccount.id == account.id)
                    .values(progress_done=done, last_progress_at=utcnow())
                )
        last_id = items[-1].push_id


def _push_batch(
    db: Database, claim: Claim, davs: list[Dav], account: _Account, items: list[_Item]
) -> list[tuple[_Item, dict[str, Any], SyncResult]]:
    """Push a batch over the connections at once; what succeeded is returned even when some failed
    (the first failure is raised after the batch, once its successes are in hand)."""
    free: queue.SimpleQueue[Dav] = queue.SimpleQueue()
    for dav in davs:
        free.put(dav)

    def one(item: _Item) -> tuple[_Item, dict[str, Any], SyncResult] | None:
        if claim.lost.is_set():
            return None
        counted = SyncResult()
        dav = free.get()
        try:
            return item, _push_one(db, dav, account, item, counted), counted
        finally:
            free.put(dav)

    done: list[tuple[_Item, dict[str, Any], SyncResult]] = []
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=len(davs), thread_name_prefix=f"calendar-{account.id}") as pool:
        for future in [pool.submit(one, item) for item in items]:
            try:
                outcome = future.result()
            except BaseException as exc:  # kept: the others' results must be recorded first
                failure = failure or exc
                continue
            if outcome is not None:
                done.append(outcome)
    if failure is not None:
        raise _Partial(done, failure)
    return done


class _Partial(Exception):
    """Some pushes of a batch failed: ``done`` holds those that succeeded, ``failure`` the first error."""

    def __init__(self, done: list[tuple[_Item, dict[str, Any], SyncResult]], failure: BaseException) -> None:
        super().__init__(str(failure))
        self.done = done
        self.failure = failure


def _save_outcomes(db: Database, outcomes: list[tuple[_Item, dict[str, Any]]]) -> None:
    if not outcomes:
        return
    with db.transaction() as session:
        for item, values in outcomes:
            if values:
                session.execute(update(CalendarPush).where(CalendarPush.id == item.push_id).values(**values))


def _href(account: _Account, uid: str) -> str:
    return account.calendar_url.rstrip("/") + "/" + quote(uid, safe="@.-_") + ".ics"


def _synced(item: _Item, href: str, etag: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "state": PushState.synced.value,
        "href": href,
        "etag": etag,
        "pushed_hash": item.wanted_hash,
        "pushed_fields": json.dumps(fields, sort_keys=True),
        "pushed_at": utcnow(),
        "last_error": "",
        "attempts": 0,
    }


def _push_one(db: Database, dav: Dav, account: _Account, item: _Item, result: SyncResult) -> dict[str, Any]:
    """Write (or remove) one appointment; returns the push row's new values."""
    if item.state == PushState.delete.value:
        return _delete_one(dav, account, item, result)
    assert item.snapshot is not None
    if item.href and item.pushed_hash == item.wanted_hash:
        result.unchanged += 1
        return {"state": PushState.synced.value}
    shown = ical.busy(item.snapshot.fields) if item.private else item.snapshot.fields
    body = ical.render(item.snapshot, private=item.private, stamp=utcnow())
    href, etag = item.href, item.etag
    if not href:
        href = _href(account, item.uid)
        answer = dav.create(href, body)
        if answer.status in (200, 201, 204):
            result.appointments += 1
            return _synced(item, href, answer.etag or _etag_of(dav, href), shown)
        if answer.status != 412 and answer.uid_conflict() is None:
            raise _write_error(dav, account, answer.status)
        if answer.uid_conflict() is not None:
            # The event is in the calendar already, at another address: it came there another way
            # (the invitation hub mailed, accepted in the calendar app; an import). Hub adopts that
            # one rather than failing at every push (the server will not hold the UID twice).
            href = dav.holder_of(account.calendar_url, item.uid, answer) or href
        # Something is there already: our own event whose answer was lost, or a re-run after a
        # crash. Adopt it if it carries our UID; then update it like any other.
        current = dav.get(href)
        if current.status == 200 and _uid_of(current.body) == item.uid:
            etag = current.etag
            remote = ical.parse(current.body, default_tzid=item.snapshot.fields["tzid"])
            if remote.fields == shown and not item.private:
                result.appointments += 1
                return _synced(item, href, etag, shown)
        else:
            raise CalendarError(
                N_("Another event already uses hub's address %(href)s in this calendar.", href=href), temporary=False
            )
    for _round in range(CONFLICT_ROUNDS):
        answer = dav.update(href, body, etag)
        if answer.status in (200, 201, 204):
            result.appointments += 1
            return _synced(item, href, answer.etag or _etag_of(dav, href), shown)
        if answer.status == 404 or (answer.status == 412 and not etag):
            # Removed in the calendar meanwhile: the owner deleted it (pull treats it the same).
            _remote_delete(db, account, item)
            result.pulled += 1
            return {"state": PushState.gone.value, "href": "", "etag": ""}
        if answer.status != 412:
            raise _write_error(dav, account, answer.status)
        # 412: changed in the calendar since hub last wrote it. Read, merge, write the result.
        current = dav.get(href)
        if current.status == 404:
            # Deleted there instead (RFC 7232: If-Match on a missing resource is a 412, as
            # Xandikos answers, not a 404): a pulled delete, not a conflict.
            _remote_delete(db, account, item)
            result.pulled += 1
            return {"state": PushState.gone.value, "href": "", "etag": ""}
        if current.status != 200:
            raise status_error(current.status, _("reading an event"))
        result.conflicts += 1
        etag = current.etag
        if item.private:
            continue  # a busy block: hub's times win, nothing else is there to merge
        try:
            merged_shot = _apply_remote(db, account, item, current.body)
        except ical.NotAnEvent as exc:
            # Nothing to merge: hub's version is written over it (the reason stays in the history).
            _note_unreadable(db, account, item.appointment_id, exc)
            continue
        if merged_shot is None:
            return {"state": PushState.gone.value, "href": "", "etag": ""}
        item.snapshot, shown = merged_shot, merged_shot.fields
        item.wanted_hash = ical.content_hash(merged_shot, private=False)
        body = ical.render(merged_shot, private=False, stamp=utcnow())
    raise CalendarError(
        N_("The event keeps changing in the calendar while hub writes it; hub tries again later."), temporary=True
    )


def _delete_one(dav: Dav, account: _Account, item: _Item, result: SyncResult) -> dict[str, Any]:
    if not item.href:
        return {"state": PushState.gone.value}
    etag = item.etag
    for _round in range(CONFLICT_ROUNDS):
        answer = dav.delete(item.href, etag)
        if answer.status in (200, 204, 404):
            result.appointments += 1
            return {"state": PushState.gone.value, "href": "", "etag": "", "pushed_hash": ""}
        if answer.status != 412:
            raise _write_error(dav, account, answer.status)
        # Changed in the calendar meanwhile; the delete in hub is the later change, so it stands
        # (but only for hub's own event: the UID is checked before deleting the new version).
        current = dav.get(item.href)
        if current.status == 404:
            return {"state": PushState.gone.value, "href": "", "etag": ""}
        if current.status != 200 or _uid_of(current.body) != item.uid:
            return {"state": PushState.gone.value, "href": "", "etag": ""}
        etag = current.etag
    raise CalendarError(
        N_("The event keeps changing in the calendar while hub removes it; hub tries again later."), temporary=True
    )


def _etag_of(dav: Dav, href: str) -> str:
    # A server may store a transformed body and then send no ETag (RFC 7231 §4.3.4): ask for it.
    answer = dav.get(href)
    return answer.etag if answer.status == 200 else ""


def _uid_of(body: bytes) -> str:
    try:
        return ical.parse(body).uid
    except ical.NotAnEvent:
        return ""


def _write_error(dav: Dav, account: _Account, status: int) -> CalendarError:
    # A PUT into a collection that is not there: the calendar was deleted on the server.
    if status in (404, 409) and _calendar_gone(dav, account):
        return CalendarError(
            N_("The calendar was not found on the server: was it deleted? Choose a calendar again."), temporary=False
        )
    if status == 403:
        # Only a 403 that names its reason gets here (see Dav._call): the calendar refuses this
        # event (a task list, say), which no new password would change.
        return CalendarError(
            _("The calendar server refused %(what)s (HTTP %(status)s).", what=_("saving an event"), status=status),
            temporary=False,
        )
    return status_error(status, _("saving an event"))


# --- applying the calendar's changes --------------------------------------------------------------------------


def _apply_remote(db: Database, account: _Account, item: _Item, body: bytes) -> ical.Snapshot | None:
    """Merge the calendar's version of the event into the appointment (the conflict rule); the
    appointment's snapshot after it, or None if the appointment is gone."""
    with db.transaction() as session:
        appointment = session.get(Appointment, item.appointment_id)
        if appointment is None or appointment.deleted_at is not None:
            return None
        session.refresh(appointment, ["attendees", "overrides"])
        remote = ical.parse(body, default_tzid=appointment.tzid)
        if remote.uid != appointment.uid:
            raise ical.NotAnEvent(_other_event(remote.uid))
        _merge_into(session, account, appointment, item.base, remote)
        return snapshot(session, appointment)


def _other_event(uid: str) -> str:
    return N_("The calendar holds another event (UID %(uid)s) at hub's address.", uid=uid[:100])


def _note_unreadable(db: Database, account: _Account, appointment_id: int, exc: ical.NotAnEvent) -> None:
    with db.transaction() as session:
        appointment = session.get(Appointment, appointment_id)
        if appointment is not None:
            _history_unreadable(session, account, appointment, exc.stored)


def _history_unreadable(session: Session, account: _Account, appointment: Appointment, reason: str) -> None:
    owner = session.get(User, account.owner_id)
    record_history(
        session,
        appointment,
        _(
            "The event in %(name)s's calendar could not be read, so hub's version stands: %(reason)s",
            name=owner.name if owner else "?",
            reason=english(reason),
        ),
        source="calendar",
    )


def _merge_into(
    session: Session, account: _Account, appointment: Appointment, base: dict[str, Any], remote: ical.Remote
) -> bool:
    ours = current_fields(appointment)
    remote_time = remote.modified or utcnow()
    merged = merge(base or ours, ours, remote.fields, field_times(appointment), remote_time)
    _apply_partstat(appointment, account, remote)
    owner = session.get(User, account.owner_id)
    name = owner.name if owner else "?"
    if merged.from_remote:
        before = ours
        apply_fields(session, appointment, merged.values)
        appointment.version += 1
        after_change(session, appointment, before, now=remote_time)
        record_history(
            session,
            appointment,
            _("Changed in %(name)s's calendar: %(fields)s", name=name, fields=", ".join(sorted(merged.from_remote))),
            {f: before[f] for f in sorted(merged.from_remote)},
            source="calendar",
        )
    if merged.lost_by_remote:
        record_history(
            session,
            appointment,
            _(
                "A change in %(name)s's calendar lost to a later change in hub: %(fields)s",
                name=name,
                fields=", ".join(sorted(merged.lost_by_remote)),
            ),
            merged.lost_by_remote,
            source="calendar",
        )
    return bool(merged.from_remote)


def _apply_partstat(appointment: Appointment, account: _Account, remote: ical.Remote) -> None:
    # The owner's own answer (accepted, declined) in his calendar is his answer in hub too.
    for attendee in appointment.attendees:
        if attendee.user_id == account.owner_id and attendee.email_key in remote.attendees:
            attendee.partstat = remote.attendees[attendee.email_key]


def _remote_delete(db: Database, account: _Account, item: _Item) -> None:
    """The owner deleted hub's event in his calendar: the appointment is cancelled (not deleted:
    the others attending still see it, as cancelled)."""
    with db.transaction() as session:
        _cancel(session, account, item.appointment_id, private=item.private)


def _cancel(session: Session, account: _Account, appointment_id: int, *, private: bool) -> None:
    appointment = session.get(Appointment, appointment_id)
    push = session.scalar(
        select(CalendarPush).where(CalendarPush.appointment_id == appointment_id, CalendarPush.account_id == account.id)
    )
    if push is not None:
        push.state, push.href, push.etag, push.pushed_hash = PushState.gone.value, "", "", ""
        push.last_error, push.attempts = "", 0
    if appointment is None or appointment.deleted_at is not None or private:
        return
    if appointment.status == AppointmentStatus.cancelled.value:
        return
    session.refresh(appointment, ["attendees", "overrides"])
    before = current_fields(appointment)
    appointment.status = AppointmentStatus.cancelled.value
    appointment.version += 1
    after_change(session, appointment, before)
    if push is not None:
        push.state = PushState.gone.value  # after_change marked it due again; it was deleted there
    owner = session.get(User, account.owner_id)
    record_history(
        session,
        appointment,
        _("Deleted in %(name)s's calendar: cancelled", name=owner.name if owner else "?"),
        {"status": before["status"]},
        source="calendar",
    )


# --- pull ------------------------------------------------------------------------------------------------


def _pull(db: Database, dav: Dav, account: _Account, result: SyncResult) -> None:
    listed = _changes(dav, account)
    if listed is None:
        _pull_by_etags(db, dav, account, result)
        return
    changed, deleted, token = listed
    with db.transaction() as session:
        pushes = {
            p.href: p
            for p in session.scalars(
                select(CalendarPush).where(CalendarPush.account_id == account.id, CalendarPush.href != "")
            )
        }
        known = {
            href: (p.id, p.appointment_id, p.etag, json.loads(p.pushed_fields or "{}")) for href, p in pushes.items()
        }
        # Events the server would not hand over at an earlier pull: the sync-token has moved past
        # their change, so they are read again whether or not the listing names them.
        unread = [href for href, p in pushes.items() if p.attempts]
    by_url = {_norm(href): value for href, value in known.items()}
    named = {_norm(url) for url in [*changed, *deleted]}
    changed.update({href: "" for href in unread if _norm(href) not in named})
    for url, etag in changed.items():
        found = by_url.get(_norm(url))
        if found is None or (etag and etag == found[2]):
            continue  # not hub's event, or hub's own last write
        push_id, appointment_id, _old, base = found
        current = dav.get(url)
        if current.status == 404:
            deleted.add(url)
            continue
        if current.status != 200:
            _not_handed_over(db, account, push_id, current.status, result)
            continue
        if _apply_pulled(db, account, push_id, appointment_id, base, current, result):
            result.pulled += 1
    for url in deleted:
        found = by_url.get(_norm(url))
        if found is None:
            continue
        with db.transaction() as session:
            appointment = session.get(Appointment, found[1])
            owner = session.get_one(User, account.owner_id)
            private = appointment is not None and not session.scalar(
                select(Appointment.id).where(Appointment.id == appointment.id, appointment_visible(owner))
            )
            _cancel(session, account, found[1], private=private)
        result.pulled += 1
    with db.transaction() as session:
        session.execute(update(CalendarAccount).where(CalendarAccount.id == account.id).values(sync_token=token))
    account.sync_token = token


def _not_handed_over(db: Database, account: _Account, push_id: int, status: int, result: SyncResult) -> None:
    """The server answered an error to reading one event: that event's failure (its reason on its
    push row and, once, in the appointment's history; the sync-health page counts it), read again at
    the next pull. The ETag is kept, so the change is not taken as seen. A refused login or a request
    to slow down concerns the whole account: the pull stops there and the account backs off."""
    if status == 401:
        raise status_error(status, _("reading an event"))
    if status == 429:
        raise plain(dav_error.RateLimitError())
    reason = N_(
        "The calendar server answered HTTP %(status)s to reading the event; hub tries again at the next pull.",
        status=status,
    )
    with db.transaction() as session:
        push = session.get(CalendarPush, push_id)
        appointment = session.get(Appointment, push.appointment_id) if push is not None else None
        if push is None or appointment is None:
            return
        result.errors.append(f"{appointment.uid}: {english(reason)}")
        if push.last_error != reason and appointment.deleted_at is None:
            _history_unreadable(session, account, appointment, reason)
        push.last_error = reason
        push.attempts += 1


def _norm(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path).rstrip("/")


def _changes(dav: Dav, account: _Account) -> tuple[dict[str, str], set[str], str] | None:
    """Changed hrefs (→ ETag), deleted hrefs and the new sync-token; None when the server has no
    sync-collection (the caller compares ETags instead)."""
    cal = dav.calendar(account.calendar_url)
    try:
        try:
            found = cal.get_objects_by_sync_token(account.sync_token or None, load_objects=False, disable_fallback=True)
        except dav_error.DAVError as exc:
            if not account.sync_token or (
                isinstance(exc, dav_error.AuthorizationError | dav_error.NotFoundError) and not _token_forgotten(exc)
            ):
                raise
            # The server forgot the token (DAV:valid-sync-token): start again from a full listing.
            found = cal.get_objects_by_sync_token(None, load_objects=False, disable_fallback=True)
    except (dav_error.AuthorizationError, dav_error.NotFoundError) as exc:
        raise plain(exc) from exc
    except dav_error.DAVError as exc:
        if _calendar_gone(dav, account):
            raise plain(dav_error.NotFoundError()) from exc
        return None  # no sync-collection here
    except Exception as exc:
        raise dav.failure(exc, _("reading the calendar's changes")) from exc
    deleted = {str(u) for u in found.deleted_urls}
    changed = {
        str(obj.url): str((obj.props or {}).get("{DAV:}getetag", ""))
        for obj in found.objects
        if str(obj.url) not in deleted
    }
    return changed, deleted, str(found.sync_token or "")


def _token_forgotten(exc: dav_error.DAVError) -> bool:
    # RFC 6578 §3.2: a token the server no longer knows fails with the DAV:valid-sync-token
    # precondition, whatever the status: Radicale answers 403 (which the caldav library raises as
    # an AuthorizationError), Xandikos 412. Either way it is no refused password.
    return "{DAV:}valid-sync-token" in (getattr(exc, "preconditions", None) or [])


def _calendar_gone(dav: Dav, account: _Account) -> bool:
    return dav.gone(account.calendar_url)


def _apply_pulled(
    db: Database,
    account: _Account,
    push_id: int,
    appointment_id: int,
    base: dict[str, Any],
    current: Answer,
    result: SyncResult,
) -> bool:
    with db.transaction() as session:
        appointment = session.get(Appointment, appointment_id)
        push = session.get(CalendarPush, push_id)
        if appointment is None or push is None or appointment.deleted_at is not None:
            return False
        session.refresh(appointment, ["attendees", "overrides"])
        try:
            remote = ical.parse(current.body, default_tzid=appointment.tzid)
            if remote.uid != appointment.uid:
                raise ical.NotAnEvent(_other_event(remote.uid))
        except ical.NotAnEvent as exc:
            # One event hub cannot read: said on the sync-health page and in the appointment's
            # history; the rest of the pull goes on. Hub's version stays, and is written over the
            # calendar's at hub's next change of the appointment (not before: nothing is lost meanwhile).
            result.errors.append(f"{appointment.uid}: {exc}")
            if push.last_error != exc.stored:
                _history_unreadable(session, account, appointment, exc.stored)
            push.last_error = exc.stored
            push.etag = current.etag  # read once, not at every pull
            push.attempts = 0
            return False
        push.last_error, push.attempts = "", 0
        owner = session.get_one(User, account.owner_id)
        if not session.scalar(
            select(Appointment.id).where(Appointment.id == appointment.id, appointment_visible(owner))
        ):
            # A busy block the owner edited: hub's version stands and is written back.
            push.etag, push.pushed_hash, push.state = current.etag, "", PushState.pending.value
            return False
        changed = _merge_into(session, account, appointment, base, remote)
        push.etag = current.etag
        push.pushed_fields = json.dumps(remote.fields, sort_keys=True)
        now_fields = current_fields(appointment)
        if now_fields == remote.fields:
            # The calendar holds exactly hub's version now: nothing to write back.
            push.state = PushState.synced.value
            push.pushed_hash = ical.content_hash(snapshot(session, appointment), private=False)
        else:
            push.state, push.pushed_hash = PushState.pending.value, ""
        return changed


def pull_with_etags(db: Database, account_id: int, *, secret_key: str, allowed_hosts: str) -> SyncResult:
    """A pull by ETag comparison, for servers without sync-collection (and to check it on one that has)."""
    result = SyncResult()
    with db.transaction() as session:
        account = _account(session, account_id, secret_key)
    with Dav(account.url, account.username, account.password, allowed_hosts=allowed_hosts) as dav:
        _pull_by_etags(db, dav, account, result)
        result.requests += dav.requests
    return result


def _pull_by_etags(db: Database, dav: Dav, account: _Account, result: SyncResult) -> None:
    listing = dav.etags(account.calendar_url)
    listed = {_norm(u): e for u, e in listing.items()}
    with db.transaction() as session:
        pushes = list(
            session.scalars(select(CalendarPush).where(CalendarPush.account_id == account.id, CalendarPush.href != ""))
        )
        known = [(p.id, p.appointment_id, p.href, p.etag, json.loads(p.pushed_fields or "{}")) for p in pushes]
    for push_id, appointment_id, href, etag, base in known:
        now = listed.get(_norm(href))
        if now is None:
            with db.transaction() as session:
                _cancel(session, account, appointment_id, private=False)
            result.pulled += 1
        elif now != etag:
            current = dav.get(href)
            if current.status not in (200, 404):
                _not_handed_over(db, account, push_id, current.status, result)  # its old ETag: read again next time
            elif current.status == 200 and _apply_pulled(db, account, push_id, appointment_id, base, current, result):
                result.pulled += 1
