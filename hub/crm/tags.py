"""Tags on relations and contacts: create (by typing a name), rename, recolour, delete, tag and
untag, list with counts, and the SQL conditions lists and target groups select by.

A tag is found by its folded name (hub.text.fold): "Beurs 2026", "beurs 2026" and "BEÜRS 2026" are
one tag, so nobody ends up with three spellings of the same label. The first spelling typed is the
one shown; an admin can rename it. Names hold no commas: a comma separates names where several are
typed at once.

Tags themselves are not secret (every member of staff sees the list, like the dropdown choices);
what they are on is. Counts go through the one visibility rule (hub.crm.access.relation_visible): a
user never learns how many relations or contacts he may not see carry a tag.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, delete, exists, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from hub.crm.access import relation_visible
from hub.errors import NotFound, ValidationError
from hub.i18n import _
from hub.models import Contact, Relation, Tag, User, contact_tags, relation_tags
from hub.text import fold

MAX_NAME = 60
# Tags shown to pick from (the page's suggestions): a company with more has a naming problem.
MAX_SUGGESTIONS = 500
COLOURS = ("", "#1f6feb", "#2da44e", "#bf8700", "#cf222e", "#8250df", "#57606a", "#e16f24", "#0e8a7d")
_COLOUR_RE = re.compile(r"^#[0-9a-f]{6}$")
_SPACES = re.compile(r"\s+")


# --- names ----------------------------------------------------------------------------------------


def clean_name(raw: str) -> str:
    """A tag name as it will be stored: Unicode-normalised (NFC: one code point per accented letter),
    control and format characters (NUL, zero-width spaces) and U+FFFD (what a broken encoding was
    decoded to) removed, runs of spaces made one."""
    text = unicodedata.normalize("NFC", raw)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" and ch != "\ufffd" else " " for ch in text)
    return _SPACES.sub(" ", text).strip()


def name_key(name: str) -> str:
    """What makes two names one tag: case and accents folded (NFKD, so "ﬁ" is "fi"), spaces collapsed."""
    return _SPACES.sub(" ", fold(clean_name(name)))


def _checked_name(raw: str, field: str = "name") -> str:
    name = clean_name(raw)
    key = name_key(name)
    # A name of combining marks alone reads as nothing and has no key: no name.
    if not name or not key:
        raise ValidationError(_("A tag needs a name."), field)
    # The key is stored in as many characters as the name, but folding can lengthen it ("ß" is "ss",
    # a ligature many letters): such a name is too long for its key, whatever its own length.
    if len(name) > MAX_NAME or len(key) > MAX_NAME:
        raise ValidationError(_("A tag name can be at most %(max)s characters.", max=MAX_NAME), field)
    if "," in name:
        raise ValidationError(_("A tag name cannot contain a comma."), field)
    return name


def _checked_colour(raw: str) -> str:
    colour = raw.strip().lower()
    if colour and not _COLOUR_RE.match(colour):
        raise ValidationError(_("A colour is written as #rrggbb, such as #2da44e."), "colour")
    return colour


def split_names(text: str) -> list[str]:
    """The names typed in one box, comma-separated; each once (by its key), in the order typed."""
    names: list[str] = []
    keys: set[str] = set()
    for part in text.split(","):
        name = clean_name(part)
        if name and name_key(name) not in keys:
            keys.add(name_key(name))
            names.append(name)
    return names


# --- tags -----------------------------------------------------------------------------------------


def get_tag(session: Session, tag_id: int) -> Tag:
    tag = session.get(Tag, tag_id)
    if tag is None:
        raise NotFound(tag_id)
    return tag


def find_tag(session: Session, name: str) -> Tag | None:
    return session.scalar(select(Tag).where(Tag.name_key == name_key(name)))


def all_tags(session: Session) -> list[Tag]:
    return list(session.scalars(select(Tag).order_by(Tag.name_key, Tag.id).limit(MAX_SUGGESTIONS)))


# Built once: the relation list offers the tags on every page.
_TAG_OPTIONS = select(Tag.id, Tag.name).order_by(Tag.name_key, Tag.id).limit(MAX_SUGGESTIONS)


def tag_options(session: Session) -> list[Any]:
    """:func:`all_tags` as (id, name) rows, for a filter's dropdown: no Tag object per tag."""
    return list(session.connection().execute(_TAG_OPTIONS).all())


def tags_query() -> Select[tuple[Tag]]:
    """Every tag, for a paged list (the API)."""
    return select(Tag)


def tag_named(session: Session, raw: str, field: str = "name") -> Tag:
    """The tag with this name (by its folded key), created when there is none yet.

    Two people typing the same new name at once get the same tag: the unique key refuses the second
    insert, which then reads the first one's row (in a savepoint, so the caller's work stays)."""
    name = _checked_name(raw, field)
    found = find_tag(session, name)
    if found is not None:
        return found
    try:
        with session.begin_nested():
            tag = Tag(name=name, name_key=name_key(name), colour="")
            session.add(tag)
    except IntegrityError:
        found = find_tag(session, name)
        if found is None:
            raise
        return found
    return tag


def create_tag(session: Session, raw: str, colour: str = "") -> Tag:
    """A new tag; a name that is already a tag (in any case or accents) is refused with its spelling."""
    name = _checked_name(raw)
    existing = find_tag(session, name)
    if existing is not None:
        raise ValidationError(_("The tag %(name)s already exists.", name=existing.name), "name")
    tag = tag_named(session, name)
    tag.colour = _checked_colour(colour)
    session.flush()
    return tag


def rename_tag(session: Session, tag: Tag, raw: str, colour: str | None = None) -> Tag:
    """Another spelling or name for ``tag`` (and colour, when given). A name another tag has is
    refused: renaming would silently merge two tags."""
    name = _checked_name(raw)
    other = session.scalar(select(Tag).where(Tag.name_key == name_key(name), Tag.id != tag.id))
    if other is not None:
        raise ValidationError(_("The tag %(name)s already exists.", name=other.name), "name")
    tag.name = name
    tag.name_key = name_key(name)
    if colour is not None:
        tag.colour = _checked_colour(colour)
    session.flush()
    return tag


def delete_tag(session: Session, tag: Tag) -> None:
    """Delete a tag; the database removes its links to relations and contacts."""
    session.execute(delete(Tag).where(Tag.id == tag.id))
    session.expunge(tag)


# --- tagging --------------------------------------------------------------------------------------


def _link(session: Session, table: Table, owner: str, owner_id: int, tag: Tag) -> bool:
    """Insert-or-ignore the link; whether it is new."""
    column = table.c[f"{owner}_id"]
    if session.scalar(select(func.count()).select_from(table).where(column == owner_id, table.c.tag_id == tag.id)):
        return False
    try:
        with session.begin_nested():
            session.execute(insert(table).values({f"{owner}_id": owner_id, "tag_id": tag.id}))
    except IntegrityError:  # the same link, added by someone else at the same moment
        return False
    return True


def _unlink(session: Session, table: Table, owner: str, owner_id: int, tag_id: int) -> bool:
    column = table.c[f"{owner}_id"]
    result = session.execute(delete(table).where(column == owner_id, table.c.tag_id == tag_id))
    return bool(getattr(result, "rowcount", 0))


def tags_for(session: Session, refs: Sequence[int | str], field: str = "tags") -> list[Tag]:
    """The tags ``refs`` name: an id must be a tag's, a name is found by its key or becomes a new tag.
    Every reference is checked before any tag is made: a refused list leaves no half of it behind."""
    names = [_checked_name(r, field) for r in refs if isinstance(r, str)]
    ids = [r for r in refs if isinstance(r, int)]
    found = {t.id: t for t in session.scalars(select(Tag).where(Tag.id.in_(ids)))} if ids else {}
    for missing in ids:
        if missing not in found:
            raise ValidationError(_("There is no tag %(tag)s.", tag=missing), field)
    made = iter([tag_named(session, name, field) for name in names])
    result: list[Tag] = []
    for ref in refs:
        tag = found[ref] if isinstance(ref, int) else next(made)
        if tag not in result:
            result.append(tag)
    return result


def _tag_names(session: Session, text: str) -> list[Tag]:
    names = split_names(text)
    if not names:
        raise ValidationError(_("Type the name of a tag (new or existing)."), "tag")
    return tags_for(session, names, "tag")


def tag_relation(session: Session, relation: Relation, text: str) -> list[Tag]:
    """Put the tags named in ``text`` (comma-separated; new names become new tags) on the relation.
    The caller has checked that the user may see it (hub.crm.relations.get_relation)."""
    return add_relation_tags(session, relation, _tag_names(session, text))


def add_relation_tags(session: Session, relation: Relation, tags: Sequence[Tag]) -> list[Tag]:
    for tag in tags:
        _link(session, relation_tags, "relation", relation.id, tag)
    session.expire(relation, ["tags"])
    return list(tags)


def untag_relation(session: Session, relation: Relation, tag_id: int) -> bool:
    removed = _unlink(session, relation_tags, "relation", relation.id, tag_id)
    session.expire(relation, ["tags"])
    return removed


def tag_contact(session: Session, contact: Contact, text: str) -> list[Tag]:
    """As :func:`tag_relation`, for a contact (hub.crm.relations.get_contact checked it)."""
    return add_contact_tags(session, contact, _tag_names(session, text))


def add_contact_tags(session: Session, contact: Contact, tags: Sequence[Tag]) -> list[Tag]:
    for tag in tags:
        _link(session, contact_tags, "contact", contact.id, tag)
    session.expire(contact, ["tags"])
    return list(tags)


def untag_contact(session: Session, contact: Contact, tag_id: int) -> bool:
    removed = _unlink(session, contact_tags, "contact", contact.id, tag_id)
    session.expire(contact, ["tags"])
    return removed


def preload_contact_tags(session: Session, contacts: Sequence[Contact]) -> None:
    """Load the tags of many contacts in one query (a list must not ask once per row)."""
    if not contacts:
        return
    by_id: dict[int, list[Tag]] = {c.id: [] for c in contacts}
    rows = session.execute(
        select(contact_tags.c.contact_id, Tag)
        .join(Tag, Tag.id == contact_tags.c.tag_id)
        .where(contact_tags.c.contact_id.in_(list(by_id)))
        .order_by(Tag.name_key, Tag.id)
    ).tuples()
    for contact_id, tag in rows:
        by_id[contact_id].append(tag)
    for contact in contacts:
        set_committed_value(contact, "tags", by_id[contact.id])


# --- counts ---------------------------------------------------------------------------------------


@dataclass
class TagCount:
    tag: Tag
    relations: int
    contacts: int


def _counts(session: Session, user: User | None, tag_ids: Iterable[int] | None) -> dict[int, tuple[int, int]]:
    """tag id → (relations, contacts) that ``user`` may see; None: for every tag."""
    relation_q = (
        select(relation_tags.c.tag_id, func.count())
        .join(Relation, Relation.id == relation_tags.c.relation_id)
        .where(relation_visible(user))
    )
    contact_q = (
        select(contact_tags.c.tag_id, func.count())
        .join(Contact, Contact.id == contact_tags.c.contact_id)
        .join(Relation, Relation.id == Contact.relation_id)
        .where(relation_visible(user))
    )
    if tag_ids is not None:
        ids = list(tag_ids)
        if not ids:
            return {}
        relation_q = relation_q.where(relation_tags.c.tag_id.in_(ids))
        contact_q = contact_q.where(contact_tags.c.tag_id.in_(ids))
    counts: dict[int, tuple[int, int]] = {}
    for tag_id, n in session.execute(relation_q.group_by(relation_tags.c.tag_id)).tuples():
        counts[tag_id] = (int(n), 0)
    for tag_id, n in session.execute(contact_q.group_by(contact_tags.c.tag_id)).tuples():
        counts[tag_id] = (counts.get(tag_id, (0, 0))[0], int(n))
    return counts


def tags_with_counts(session: Session, user: User | None) -> list[TagCount]:
    """Every tag (by name) with how many relations and contacts ``user`` may see carry it."""
    counts = _counts(session, user, None)
    # Every one, not the first MAX_SUGGESTIONS: Settings → Tags is where too many are cleaned up.
    every = session.scalars(select(Tag).order_by(Tag.name_key, Tag.id))
    return [TagCount(t, *counts.get(t.id, (0, 0))) for t in every]


def counts_of(session: Session, user: User | None, tags: Sequence[Tag]) -> list[TagCount]:
    """As :func:`tags_with_counts`, for the given tags only (one page of a list): two queries."""
    counts = _counts(session, user, [t.id for t in tags])
    return [TagCount(t, *counts.get(t.id, (0, 0))) for t in tags]


# --- selecting by tag -----------------------------------------------------------------------------


def ids_of(session: Session, refs: Sequence[int | str], field: str = "tags") -> list[int]:
    """Tag ids for references by id or by name (as an API or a form gives them); an unknown one is
    refused with its reference, never silently dropped (a filter on nothing would select everything)."""
    ids = sorted({r for r in refs if isinstance(r, int)})
    keys = {name_key(r): r for r in refs if isinstance(r, str)}
    found_ids = set(session.scalars(select(Tag.id).where(Tag.id.in_(ids)))) if ids else set()
    for missing in ids:
        if missing not in found_ids:
            raise ValidationError(_("There is no tag %(tag)s.", tag=missing), field)
    rows = session.execute(select(Tag.name_key, Tag.id).where(Tag.name_key.in_(list(keys)))).tuples()
    by_key = {key: tag_id for key, tag_id in rows}
    for key, written in keys.items():
        if key not in by_key:
            raise ValidationError(_("There is no tag %(tag)s.", tag=written[:MAX_NAME]), field)
    return sorted(found_ids | set(by_key.values()))


def relation_has_any(tag_ids: Sequence[int]) -> ColumnElement[bool]:
    """SQL condition on ``Relation``: it carries at least one of the tags."""
    return exists().where(relation_tags.c.relation_id == Relation.id, relation_tags.c.tag_id.in_(list(tag_ids)))


def contact_has_any(tag_ids: Sequence[int]) -> ColumnElement[bool]:
    """SQL condition on ``Contact``: it carries at least one of the tags."""
    return exists().where(contact_tags.c.contact_id == Contact.id, contact_tags.c.tag_id.in_(list(tag_ids)))


def contact_or_relation_has_any(tag_ids: Sequence[int]) -> ColumnElement[bool]:
    """SQL condition on ``Contact`` joined with ``Relation``: the contact or its relation carries one."""
    return or_(contact_has_any(tag_ids), relation_has_any(tag_ids))
