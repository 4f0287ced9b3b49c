"""Legs in, calls stored: grouped, normalised, matched, inserted once, merged when more legs come.

Every import path (CLI, upload, drop folder, webhook) ends here, one batch per transaction.
Idempotent: a call is unique on (source, call key) and inserted with insert-or-ignore; a leg of a
call already stored is merged into it by rules that give the same call whatever the order and
however often a leg arrives (earliest start, latest end, answered if any leg was answered, …), so
a re-imported file, a retried webhook or one that arrives out of order changes nothing twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from hub.crm.activities import ActivityInput, can_see_project, save_activity, set_done
from hub.crm.matching import (
    NumberOwners,
    number_owners,
    numbers_matched,
    one_off_matches,
    one_off_phones,
    single_open_projects,
)
from hub.db import COPY_FROM_ROWS, among, insert_ignore_returning
from hub.i18n import _
from hub.models import Activity, Call, CallExtension, CallSource, Project, User
from hub.models.base import utcnow
from hub.telephony.numbers import NumberBook, prefixes
from hub.telephony.records import Leg, SourceConfig

# How good an outcome is, for merging legs: a call is missed only if no leg was answered.
OUTCOME_RANK = {"": 0, "failed": 1, "busy": 2, "missed": 3, "voicemail": 4, "answered": 5}
DIRECTION_RANK = {None: 0, "internal": 1, "outbound": 2, "inbound": 3}
MERGED = (
    *("direction", "number", "started_at", "answered_at", "ended_at", "duration", "billsec", "outcome"),
    *("extension", "recording_url", "legs"),
)


@dataclass
class SourceContext:
    """What storing needs of a source, read once per import."""

    id: int
    name: str
    config: SourceConfig
    strip_prefixes: tuple[str, ...]
    users: dict[str, int]  # extension → user id
    missed_call_activities: bool
    # The import's numbers to E.164 (phonenumbers asked once per distinct unknown number).
    numbers: NumberBook = field(default_factory=NumberBook)
    # E.164 → the open projects with it as their one-off contact's phone (read once per import).
    one_offs: dict[str, set[tuple[int, int]]] | None = None
    # Child leg → its call's key, and the calls this import inserted, while legs name children.
    parents: dict[str, str] = field(default_factory=dict)
    inserted: dict[str, str] = field(default_factory=dict)


def load_context(session: Session, source: CallSource) -> SourceContext:
    users = {
        ext: user_id
        for ext, user_id in session.execute(
            select(CallExtension.extension, CallExtension.user_id).where(CallExtension.source_id == source.id)
        )
    }
    fields = tuple(f.strip() for f in source.fields.split(",") if f.strip())
    return SourceContext(
        id=source.id,
        name=source.name,
        config=SourceConfig(
            format=source.format,
            region=source.region,
            timezone=source.timezone,
            fields=fields,
            extensions=frozenset(users),
        ),
        strip_prefixes=prefixes(source.strip_prefixes),
        users=users,
        missed_call_activities=source.missed_call_activities,
        numbers=NumberBook(source.region, prefixes(source.strip_prefixes)),
    )


@dataclass
class Stored:
    imported: int = 0  # new calls
    known: int = 0  # calls that were there already (a leg merged, or nothing new)
    matched: int = 0  # new calls linked to a contact or relation
    ids: list[int] = field(default_factory=list)

    def add(self, other: Stored) -> None:
        self.imported += other.imported
        self.known += other.known
        self.matched += other.matched


def _row(leg: Leg) -> dict[str, Any]:
    return {
        "direction": leg.direction,
        "number": leg.number,
        "started_at": leg.started_at,
        "answered_at": leg.answered_at,
        "ended_at": leg.ended_at,
        "duration": leg.duration,
        "billsec": leg.billsec,
        "outcome": leg.outcome,
        "extension": leg.extension,
        "recording_url": leg.recording_url,
        "legs": 1,
    }


def _first(a: Any, b: Any) -> Any:
    if a is None or a == "":
        return b
    if b is None or b == "":
        return a
    return min(a, b)


def merge(a: dict[str, Any], b: dict[str, Any], *, legs: str = "sum") -> dict[str, Any]:
    """Two records of one call → one (commutative, and idempotent for ``legs="max"``)."""
    answered = [m for m in (a["answered_at"], b["answered_at"]) if m is not None]
    ended = [m for m in (a["ended_at"], b["ended_at"]) if m is not None]
    started = min(a["started_at"], b["started_at"])
    ended_at = max(ended) if ended else None
    # Who took the call: the extension of the leg answered first, else any.
    if a["answered_at"] is not None and (b["answered_at"] is None or a["answered_at"] < b["answered_at"]):
        extension = a["extension"] or b["extension"]
    elif b["answered_at"] is not None and (a["answered_at"] is None or b["answered_at"] < a["answered_at"]):
        extension = b["extension"] or a["extension"]
    else:
        extension = _first(a["extension"], b["extension"]) or ""
    span = int((ended_at - started).total_seconds()) if ended_at is not None else 0
    return {
        "direction": max(a["direction"], b["direction"], key=lambda d: DIRECTION_RANK.get(d, 0)),
        "number": _first(a["number"], b["number"]) or "",
        "started_at": started,
        "answered_at": min(answered) if answered else None,
        "ended_at": ended_at,
        "duration": max(a["duration"], b["duration"], span),
        "billsec": max(a["billsec"], b["billsec"]),
        "outcome": max(a["outcome"], b["outcome"], key=lambda o: OUTCOME_RANK.get(o, 0)),
        "extension": extension,
        "recording_url": _first(a["recording_url"], b["recording_url"]) or "",
        "legs": a["legs"] + b["legs"] if legs == "sum" else max(a["legs"], b["legs"]),
    }


def group_legs(legs: Iterable[Leg], parents: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Legs of one batch → calls by key: a leg's group, or the leg that named it as its child (in
    this batch, or in ``parents``: child → call key, of earlier batches of the import)."""
    legs = list(legs)
    parent_of = {child: leg.group for leg in legs for child in leg.children}
    known = parents or {}
    calls: dict[str, dict[str, Any]] = {}
    for leg in legs:
        key = parent_of.get(leg.group) or known.get(leg.group) or leg.group
        row = _row(leg)
        calls[key] = merge(calls[key], row) if key in calls else row
    return calls


# Children remembered per import (a FreeSWITCH CSV a-leg names its b-leg, which may lie in another
# batch): bounded, the oldest forgotten first; a- and b-leg records are written close together.
REMEMBERED = 100_000


def _remember(memory: dict[str, str], key: str, value: str) -> None:
    memory[key] = value
    if len(memory) > REMEMBERED:
        for old in list(itertools.islice(memory, REMEMBERED // 2)):
            del memory[old]


def _adopt(session: Session, context: SourceContext, legs: list[Leg], calls: dict[str, dict[str, Any]]) -> int:
    """Legs that name children (a FreeSWITCH a-leg its b-leg): the children in later batches of the
    import join the call (``context.parents``), and a child stored earlier as a call of its own (its
    record came first, without the a-leg's uuid) is merged into this call and removed. Returns how
    many of those this import had counted as imported."""
    parent_of = {child: leg.group for leg in legs for child in leg.children}
    if not parent_of:
        return 0
    here = {leg.key for leg in legs} | {leg.group for leg in legs}
    adopted: dict[str, str] = {}
    for leg in legs:
        key = parent_of.get(leg.group) or context.parents.get(leg.group) or leg.group
        for child in leg.children:
            _remember(context.parents, child, key)
            if child not in here and child != key:
                adopted[child] = key
    orphans = _existing(session, context.id, list(adopted)) if adopted else {}
    counted = 0
    for child, orphan in orphans.items():
        parent = adopted[child]
        calls[parent] = merge(calls[parent], {name: getattr(orphan, name) for name in MERGED})
        if orphan.callback_activity_id is not None and calls[parent]["outcome"] == "answered":
            _close(session, [orphan.callback_activity_id])  # the b-leg alone looked missed; it was answered
        counted += context.inserted.pop(child, None) is not None
    if orphans:
        session.execute(delete(Call).where(Call.id.in_([orphan.id for orphan in orphans.values()])))
    return counted


def store_legs(session: Session, context: SourceContext, legs: Iterable[Leg]) -> Stored:
    """Store one batch of legs as calls (in the caller's transaction)."""
    legs = list(legs)
    calls = group_legs(legs, context.parents)
    result = Stored()
    if not calls:
        return result
    merged_away = _adopt(session, context, legs, calls)
    now = utcnow()
    completed: dict[str, dict[str, Any]] = {}
    if _postgresql(session) and len(calls) >= COPY_FROM_ROWS and not _existing(session, context.id, _probe(calls)):
        # Most batches hold only calls never seen: COPY them all first, without looking up all
        # the batch's keys (only its first and last: a re-import goes the way below at once). A
        # key stored already fails the COPY on the unique key; then the batch goes the way below
        # too, which merges with what is there.
        fresh = [(key, dict(row)) for key, row in calls.items()]
        _complete(session, context, fresh)
        copied = _copy_new(session, [{"source_id": context.id, "call_key": k, "stored_at": now, **r} for k, r in fresh])
        if copied is not None:
            return _stored(session, context, len(calls), dict(fresh), copied, {}, {}, merged_away)
        completed = dict(fresh)
    existing = _existing(session, context.id, list(calls))
    changed: dict[str, dict[str, Any]] = {}
    for key, call in existing.items():
        before = {name: getattr(call, name) for name in MERGED}
        after = merge(before, calls[key], legs="max")
        if after != before:
            changed[key] = after
    new = {key: completed.get(key, row) for key, row in calls.items() if key not in existing}
    _complete(session, context, [*((k, r) for k, r in new.items() if k not in completed), *changed.items()])
    inserted = _insert(
        session, [{"source_id": context.id, "call_key": key, "stored_at": now, **row} for key, row in new.items()]
    )
    return _stored(session, context, len(calls), new, inserted, existing, changed, merged_away)


def _probe(calls: dict[str, dict[str, Any]]) -> list[str]:
    """The batch's first and last call keys: stored already when the file was imported before."""
    return [next(iter(calls)), next(reversed(calls))]


def _stored(
    session: Session,
    context: SourceContext,
    count: int,
    new: dict[str, dict[str, Any]],
    inserted: list[tuple[int, str]],
    existing: dict[str, Any],
    changed: dict[str, dict[str, Any]],
    merged_away: int,
) -> Stored:
    """The batch's changes to stored calls, its call-back activities, and what it counts."""
    result = Stored()
    inserted_keys = {key for _id, key in inserted}
    if context.config.format.startswith("freeswitch"):  # a call may yet turn out to be a b-leg
        for key in inserted_keys:
            _remember(context.inserted, key, key)
    result.imported = len(inserted) - merged_away
    result.known = count - len(inserted)
    result.matched = sum(1 for key in inserted_keys if new[key]["relation_id"] is not None)
    result.ids = [call_id for call_id, _key in inserted]
    if changed:
        session.execute(update(Call), [{"id": existing[key].id, **row} for key, row in changed.items()])
    ids = {key: call_id for call_id, key in inserted} | {key: existing[key].id for key in changed}
    touched = {key: row for key, row in [*new.items(), *changed.items()] if key in ids}
    _follow_up_activities(session, context, touched, ids, {key: existing[key] for key in changed})
    return result


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _existing(session: Session, source_id: int, keys: list[str]) -> dict[str, Any]:
    """The batch's calls already stored: their merged columns (rows, not ORM objects: nothing is
    tracked, and a batch of 5,000 costs one query)."""
    columns = (Call.id, Call.call_key, Call.callback_activity_id, *(getattr(Call, name) for name in MERGED))
    wanted = among(session, Call.call_key, keys)
    return {row.call_key: row for row in session.execute(select(*columns).where(Call.source_id == source_id, wanted))}


_INSERTED = [column.name for column in Call.__table__.columns if column.name != "callback_activity_id"]


def _insert(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Insert-or-ignore the new calls: (id, call key) of those really inserted.

    On PostgreSQL a batch is COPYed straight into the table with ids taken from its sequence (the
    keys were just looked up, so none is expected to be there); in the rare race with another
    import of the same source the COPY fails on the unique key, and the batch goes again, inside a
    savepoint, through the insert-or-ignore that skips what the other one stored.
    """
    if not rows:
        return []
    if _postgresql(session) and len(rows) >= COPY_FROM_ROWS:
        copied = _copy_new(session, rows)
        if copied is not None:
            return copied
    return [
        (call_id, key)
        for call_id, key in insert_ignore_returning(session, Call, rows, ["source_id", "call_key"], ["id", "call_key"])
    ]


def _copy_new(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, str]] | None:
    """COPY calls none of which is stored yet (PostgreSQL), ids taken from the table's sequence:
    their (id, call key); None, and nothing stored, if one of them was there after all."""
    import psycopg

    ids = session.execute(
        text("SELECT nextval(pg_get_serial_sequence('call', 'id')) FROM generate_series(1, :n)"), {"n": len(rows)}
    ).scalars()
    for row, call_id in zip(rows, ids, strict=True):
        row["id"] = call_id
    names = ", ".join(f'"{name}"' for name in _INSERTED)
    savepoint = session.begin_nested()
    try:
        connection: Any = session.connection().connection.dbapi_connection
        with connection.cursor() as cursor, cursor.copy(f'COPY "call" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([row[name] for name in _INSERTED])
    except psycopg.errors.UniqueViolation:
        savepoint.rollback()
        for row in rows:
            del row["id"]
        return None
    savepoint.commit()
    return [(row["id"], row["call_key"]) for row in rows]


def _complete(session: Session, context: SourceContext, rows: list[tuple[str, dict[str, Any]]]) -> None:
    """Numbers to E.164, the extension's user, and the contact, relation and project they match."""
    for _key, row in rows:
        if row["direction"] is None:
            row["direction"] = "inbound"  # only b-legs seen so far: they ring a phone inside
        if row["direction"] == "internal":
            row["number"] = ""
        row["number"] = row["number"][:80]
        row["extension"] = row["extension"][:40]
        row["user_id"] = context.users.get(row["extension"])
    # One query finds which candidate numbers are stored (the number book accepts those without
    # phonenumbers' full parse) and who has them; a second one those phonenumbers had to read.
    owners: NumberOwners = {}
    asked: set[str] = set()

    def stored(candidates: set[str]) -> Iterable[str]:
        asked.update(candidates)
        owners.update(number_owners(session, candidates))
        return owners.keys()

    e164 = context.numbers.resolve({row["number"] for _key, row in rows if row["number"]}, stored)
    for _key, row in rows:
        row["e164"] = e164.get(row["number"]) or "" if row["number"] else ""
    owners.update(number_owners(session, {row["e164"] for _key, row in rows if row["e164"]} - asked))
    matches = numbers_matched(owners)
    projects = single_open_projects(session, {m.relation_id for m in matches.values()})
    unknown = {row["e164"] for _key, row in rows if row["e164"] and row["e164"] not in owners}
    if unknown and context.one_offs is None:
        context.one_offs = one_off_phones(session, context.config.region)
    one_offs = one_off_matches(context.one_offs or {}, unknown)
    for _key, row in rows:
        match = matches.get(row["e164"])
        if match is not None:
            row["contact_id"] = match.contact_id
            row["relation_id"] = match.relation_id
            row["project_id"] = projects.get(match.relation_id)
        elif (one_off := one_offs.get(row["e164"])) is not None:
            # Only a project's one-off contact has the number: the call is with that relation, on
            # that project (when one open project has it, else on none: a guess files nothing).
            row["contact_id"] = None
            row["relation_id"] = one_off.relation_id
            row["project_id"] = one_off.project_id
        else:
            row["contact_id"] = row["relation_id"] = row["project_id"] = None


def _follow_up_activities(
    session: Session,
    context: SourceContext,
    rows: dict[str, dict[str, Any]],
    ids: dict[str, int],
    before: dict[str, Any],
) -> None:
    """A missed inbound call from a known number → a call-back activity for the extension's user; an
    answered call from that number (or a missed call that turned out answered) closes it."""
    answered: dict[str, datetime] = {}
    for row in rows.values():
        if row["outcome"] == "answered" and row["e164"]:
            answered[row["e164"]] = max(row["started_at"], answered.get(row["e164"], row["started_at"]))
    for key, call in before.items():
        if call.callback_activity_id is not None and rows[key]["outcome"] == "answered":
            _close(session, [call.callback_activity_id])
    if answered:
        _close_callbacks(session, answered)
    if not context.missed_call_activities:
        return
    wanted = [
        key
        for key, row in rows.items()
        if key not in before
        and row["direction"] == "inbound"
        and row["outcome"] in ("missed", "busy")
        and row["relation_id"] is not None
        and row["user_id"] is not None
    ]
    if not wanted:
        return
    homes = _callback_projects(session, {rows[key]["relation_id"] for key in wanted if rows[key]["project_id"] is None})
    numbers = {rows[key]["e164"] for key in wanted}
    later: dict[str, datetime] = {}
    for e164, started_at in session.execute(
        select(Call.e164, Call.started_at).where(among(session, Call.e164, numbers), Call.outcome == "answered")
    ):
        later[e164] = max(started_at, later.get(e164, started_at))
    for key in wanted:
        row = rows[key]
        if (seen := later.get(row["e164"])) is not None and seen > row["started_at"]:
            continue  # called back (or called again and answered) already
        project_id = row["project_id"] or homes.get(row["relation_id"])
        if project_id is None:
            continue  # the relation has no open project to keep a to-do on
        activity = _callback(session, row, project_id)
        session.execute(update(Call).where(Call.id == ids[key]).values(callback_activity_id=activity.id))


def _callback_projects(session: Session, relation_ids: set[int]) -> dict[int, int]:
    """relation → where a call-back goes when the call itself matched no project: the relation's open
    project changed most recently. Only the to-do goes there; the call stays unlinked (which of
    several projects it was about is a guess, and a call is never filed on a guess)."""
    if not relation_ids:
        return {}
    newest = (
        select(Project.relation_id, Project.id)
        .where(Project.relation_id.in_(relation_ids), Project.closed.is_(False))
        .order_by(Project.relation_id, Project.updated_at.desc(), Project.id.desc())
    )
    homes: dict[int, int] = {}
    for relation_id, project_id in session.execute(newest):
        homes.setdefault(relation_id, project_id)
    return homes


def _callback(session: Session, row: dict[str, Any], project_id: int) -> Activity:
    project = session.get_one(Project, project_id)
    assignee = _callback_assignee(session, session.get_one(User, row["user_id"]), project)
    when = row["started_at"]
    return save_activity(
        session,
        assignee or project.responsible_user or session.get_one(User, row["user_id"]),
        project,
        ActivityInput(
            title=_("Call back %(number)s", number=row["e164"]),
            description=_("Missed call at %(when)s UTC.", when=when.strftime("%Y-%m-%d %H:%M")),
            due_date=when.date(),
            assigned_user_id=assignee.id if assignee else None,
        ),
    )


def _callback_assignee(session: Session, rung: User, project: Project) -> User | None:
    """Who calls back: the staff member whose phone rang, if he may see the project; else its
    responsible user; else nobody (the activity then waits on the project for its team). A
    call-back never lands in the list of someone the project is hidden from: its title and
    project would show him what the access rule hides."""
    for candidate in (rung, project.responsible_user):
        if candidate is not None and candidate.is_active and can_see_project(session, candidate, project):
            return candidate
    return None


def _close_callbacks(session: Session, answered: dict[str, datetime]) -> None:
    rows = session.execute(
        select(Call.callback_activity_id, Call.e164, Call.started_at)
        .join(Activity, Activity.id == Call.callback_activity_id)
        .where(among(session, Call.e164, answered), Activity.done.is_(False))
    ).all()
    _close(session, [activity_id for activity_id, e164, started in rows if started < answered[e164]])


def _close(session: Session, activity_ids: list[int | None]) -> None:
    for activity in session.scalars(select(Activity).where(Activity.id.in_([a for a in activity_ids if a]))):
        set_done(activity, True)
