"""Target groups: saved selections of contacts, static lists from CSV, exclusions, live count and sample.

A group is a query, not a copy: its members are computed when a mailing starts (and for the live
count), so a contact added tomorrow who fits the rules is in next week's mailing. Suppression and
consent are applied again at send time (hub.campaigns.sending), not only here.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from sqlalchemy import ColumnElement, Select, and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from hub.campaigns.channels import SeenBy, contacted_between
from hub.crm import tags as tag_service
from hub.crm.access import relation_visible
from hub.errors import ValidationError as InputError
from hub.i18n import _
from hub.models import Contact, EmailAddress, Project, Relation, RelationStatus, Tag, User, contact_tags, relation_tags
from hub.models.base import utcnow
from hub.models.campaigns import Suppression, TargetGroup, TargetGroupExclusion, TargetGroupMember
from hub.text import csv_lines

SAMPLE_SIZE = 10
# Exclusion groups may exclude groups in turn; deeper than this is a mistake, not a design.
MAX_EXCLUSION_DEPTH = 5
CSV_ERROR_LINES = 200
_ONE_DAY = timedelta(days=1)
_FREE_TEXT = {f"free_text_{n}" for n in range(1, 5)}
# A tag by its id or by its name (any case or accents); a saved group keeps ids, so renaming a tag
# keeps the groups that use it.
TagRef = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)] | Annotated[StrictStr, Field(min_length=1, max_length=200)]
TAG_RULES = ("relation_tags", "contact_tags", "without_tags")


class GroupError(ValueError):
    """A target group that cannot be saved as asked; the message is for the user."""


class Rules(BaseModel):
    """What a rule-based group selects. Empty lists and None mean "any"."""

    model_config = ConfigDict(extra="forbid")

    relation_status: list[RelationStatus] = Field(default_factory=list)
    relation_kind: list[str] = Field(default_factory=list, max_length=2)
    owner_ids: list[int] = Field(default_factory=list, max_length=500)
    city: str = Field(default="", max_length=100)
    country: list[str] = Field(default_factory=list, max_length=300)
    has_open_project: bool | None = None
    # A project of the relation (open or closed) with one of these choices.
    project_type_ids: list[int] = Field(default_factory=list, max_length=500)
    project_status_ids: list[int] = Field(default_factory=list, max_length=500)
    project_chance_ids: list[int] = Field(default_factory=list, max_length=500)
    project_free_choice_ids: list[int] = Field(default_factory=list, max_length=500)
    # free_text_1..4 of a project of the relation contains this text.
    project_free_text: dict[str, str] = Field(default_factory=dict)
    relation_created_from: date | None = None
    relation_created_to: date | None = None
    contact_created_from: date | None = None
    contact_created_to: date | None = None
    # The relation's last contact (mail, call or appointment; hub.campaigns.channels): on or after
    # this day, or not since this day (never contacted included).
    contacted_since: date | None = None
    not_contacted_since: date | None = None
    # Tags (hub.crm.tags): the relation has any of these; the contact has any of these; and leave out
    # contacts that carry, or whose relation carries, any of ``without_tags``.
    relation_tags: list[TagRef] = Field(default_factory=list, max_length=500)
    contact_tags: list[TagRef] = Field(default_factory=list, max_length=500)
    without_tags: list[TagRef] = Field(default_factory=list, max_length=500)

    @classmethod
    def parse(cls, raw: str | dict[str, Any]) -> Rules:
        try:
            rules = cls.model_validate(json.loads(raw) if isinstance(raw, str) else raw)
        except (ValidationError, ValueError) as exc:
            raise GroupError(_("The selection is not valid: %(reason)s", reason=str(exc).splitlines()[0])) from None
        for name in rules.project_free_text:
            if name not in _FREE_TEXT:
                raise GroupError(_("Unknown free field: %(name)s", name=name[:40]))
        return rules


def clean(text: str) -> str:
    """Without NUL characters: PostgreSQL refuses them in text, and no person types one."""
    return text.replace("\x00", "").replace("\\u0000", "")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min)


def _tag_in(column: Any, refs: list[int | str]) -> ColumnElement[bool]:
    """``column`` (a tag id) is one of ``refs``: ids as they are, names by their folded key."""
    ids = [r for r in refs if isinstance(r, int)]
    keys = [tag_service.name_key(r) for r in refs if isinstance(r, str)]
    by_name = column.in_(select(Tag.id).where(Tag.name_key.in_(keys)))
    if ids and keys:
        return or_(column.in_(ids), by_name)
    return column.in_(ids) if ids else by_name


def _relation_tagged(refs: list[int | str]) -> ColumnElement[bool]:
    return exists().where(relation_tags.c.relation_id == Relation.id, _tag_in(relation_tags.c.tag_id, refs))


def _contact_tagged(refs: list[int | str]) -> ColumnElement[bool]:
    return exists().where(contact_tags.c.contact_id == Contact.id, _tag_in(contact_tags.c.tag_id, refs))


def _project_clause(rules: Rules) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if rules.project_type_ids:
        conditions.append(Project.type_id.in_(rules.project_type_ids))
    if rules.project_status_ids:
        conditions.append(Project.status_id.in_(rules.project_status_ids))
    if rules.project_chance_ids:
        conditions.append(Project.chance_id.in_(rules.project_chance_ids))
    if rules.project_free_choice_ids:
        ids = rules.project_free_choice_ids
        conditions.append(
            or_(*(getattr(Project, f"free_choice_{n}_id").in_(ids) for n in range(1, 6))),
        )
    for name, needle in rules.project_free_text.items():
        if name not in {f"free_text_{n}" for n in range(1, 5)}:
            raise GroupError(_("Unknown free field: %(name)s", name=name))
        if needle.strip():
            conditions.append(func.lower(getattr(Project, name)).contains(needle.strip().lower(), autoescape=True))
    return conditions


def rules_condition(rules: Rules, seen: SeenBy | None = None) -> ColumnElement[bool]:
    """SQL condition on ``Contact`` joined with ``Relation`` for a rule-based group (the last contact
    judged by the moments ``seen`` may see, all when None)."""
    conditions: list[ColumnElement[bool]] = []
    if rules.relation_status:
        conditions.append(Relation.status.in_(rules.relation_status))
    if rules.relation_kind:
        conditions.append(Relation.kind.in_(rules.relation_kind))
    if rules.owner_ids:
        conditions.append(Relation.owner_id.in_(rules.owner_ids))
    if rules.city.strip():
        conditions.append(func.lower(Relation.city) == rules.city.strip().lower())
    if rules.country:
        conditions.append(Relation.country.in_([c.upper() for c in rules.country]))
    if rules.has_open_project is not None:
        open_project = exists().where(Project.relation_id == Relation.id, Project.closed.is_(False))
        conditions.append(open_project if rules.has_open_project else ~open_project)
    project_conditions = _project_clause(rules)
    if project_conditions:
        conditions.append(exists().where(Project.relation_id == Relation.id, *project_conditions))
    if rules.relation_created_from:
        conditions.append(Relation.created_at >= _day_start(rules.relation_created_from))
    if rules.relation_created_to:
        conditions.append(Relation.created_at < _day_start(rules.relation_created_to) + _ONE_DAY)
    if rules.contact_created_from:
        conditions.append(Contact.created_at >= _day_start(rules.contact_created_from))
    if rules.contact_created_to:
        conditions.append(Contact.created_at < _day_start(rules.contact_created_to) + _ONE_DAY)
    # Up to now: a planned appointment is no contact yet. Evaluated when the group is counted or sent.
    now = utcnow()
    if rules.contacted_since:
        conditions.append(contacted_between(_day_start(rules.contacted_since), now, seen))
    if rules.not_contacted_since:
        conditions.append(~contacted_between(_day_start(rules.not_contacted_since), now, seen))
    if rules.relation_tags:
        conditions.append(_relation_tagged(rules.relation_tags))
    if rules.contact_tags:
        conditions.append(_contact_tagged(rules.contact_tags))
    if rules.without_tags:
        conditions.append(~or_(_relation_tagged(rules.without_tags), _contact_tagged(rules.without_tags)))
    return and_(*conditions) if conditions else and_(Contact.id.isnot(None))


def member_condition(
    session: Session, group: TargetGroup, _depth: int = 0, seen: SeenBy | None = None
) -> ColumnElement[bool]:
    """SQL condition on ``Contact`` (joined with ``Relation``): the group's members, exclusions applied.

    Consent is part of membership when the group requires it, so the live count is what will be sent.
    ``seen``: judge the last contact by the moments that user may see (for what a group shows him).
    """
    if group.static:
        condition: ColumnElement[bool] = exists().where(
            TargetGroupMember.group_id == group.id, TargetGroupMember.contact_id == Contact.id
        )
    else:
        condition = rules_condition(Rules.parse(group.rules), seen)
    if group.consent_required:
        condition = and_(condition, Contact.marketing_consent.is_(True))
    if _depth < MAX_EXCLUSION_DEPTH:
        excluded_ids = list(
            session.scalars(select(TargetGroupExclusion.excluded_id).where(TargetGroupExclusion.group_id == group.id))
        )
        for excluded in session.scalars(select(TargetGroup).where(TargetGroup.id.in_(excluded_ids))):
            if excluded.id == group.id:
                continue
            inner = member_condition(session, excluded, _depth + 1, seen)
            # Not correlated with the outer query: the excluded group is its own query over contacts.
            excluded_members = (
                select(Contact.id).join(Relation, Relation.id == Contact.relation_id).where(inner).correlate(None)
            )
            condition = and_(condition, ~Contact.id.in_(excluded_members))
    return condition


def members(session: Session, group: TargetGroup) -> Select[tuple[int]]:
    """SELECT of the member contacts' ids (streamable: never loaded as a list here)."""
    return select(Contact.id).join(Relation, Relation.id == Contact.relation_id).where(member_condition(session, group))


def first_address() -> Any:
    """Scalar subquery: a contact's first e-mail address (the one a mailing goes to)."""
    return (
        select(EmailAddress.address)
        .where(EmailAddress.contact_id == Contact.id)
        .order_by(EmailAddress.id)
        .limit(1)
        .correlate(Contact)
        .scalar_subquery()
    )


@dataclass
class Preview:
    """The live count and a sample the viewer may see."""

    count: int
    with_address: int
    suppressed: int
    sample: list[dict[str, Any]] = field(default_factory=list)


def preview(session: Session, group: TargetGroup, viewer: User | None, seen: SeenBy | None = None) -> Preview:
    """How many of the group's contacts the viewer may see, how many of those can be mailed, and a
    sample of them. A contact of a hidden relation is neither shown nor counted (hub.crm.access: a
    hidden object answers like a missing one, also in counts): a rule on a tag or a city must not tell
    staff how many hidden relations match it. ``seen`` (the viewer and the mail, call and appointment
    rules): a rule on the last contact counts only the moments he may see, for the same reason."""
    condition = and_(member_condition(session, group, seen=seen), relation_visible(viewer))
    base = select(Contact.id).join(Relation, Relation.id == Contact.relation_id).where(condition)
    count = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    addressed = base.where(exists().where(EmailAddress.contact_id == Contact.id))
    with_address = session.scalar(select(func.count()).select_from(addressed.subquery())) or 0
    suppressed_q = base.where(
        exists().where(
            EmailAddress.contact_id == Contact.id,
            exists().where(Suppression.address_key == EmailAddress.address_key),
        )
    )
    suppressed = session.scalar(select(func.count()).select_from(suppressed_q.subquery())) or 0
    rows = session.execute(
        select(Contact.id, Contact.name, Relation.id, Relation.name, Relation.city, first_address())
        .join(Relation, Relation.id == Contact.relation_id)
        .where(condition)
        .order_by(Contact.name, Contact.id)
        .limit(SAMPLE_SIZE)
    ).all()
    sample = [
        {"contact_id": r[0], "name": r[1], "relation_id": r[2], "relation": r[3], "city": r[4], "address": r[5] or ""}
        for r in rows
    ]
    return Preview(count=count, with_address=with_address, suppressed=suppressed, sample=sample)


# --- saving ----------------------------------------------------------------------------------------------


@dataclass
class GroupInput:
    name: str
    description: str = ""
    static: bool = False
    rules: dict[str, Any] = field(default_factory=dict)
    consent_required: bool = True
    exclude_ids: list[int] = field(default_factory=list)


def save_group(session: Session, data: GroupInput, user: User | None, group: TargetGroup | None = None) -> TargetGroup:
    data.name, data.description = clean(data.name), clean(data.description)
    data.rules = json.loads(clean(json.dumps(data.rules)))
    name = data.name.strip()
    if not name:
        raise GroupError(_("A target group needs a name."))
    if len(name) > 200:
        raise GroupError(_("The name is too long (at most 200 characters)."))
    rules = _with_tag_ids(session, Rules.parse(data.rules))
    if group is None:
        group = TargetGroup(created_by_id=user.id if user else None)
        session.add(group)
    group.name = name
    group.description = data.description.strip()[:10000]
    group.static = data.static
    group.rules = rules.model_dump_json(exclude_defaults=True)
    group.consent_required = data.consent_required
    session.flush()
    _set_exclusions(session, group, data.exclude_ids)
    return group


def _with_tag_ids(session: Session, rules: Rules) -> Rules:
    """The rules with every tag named by its id: an unknown tag is refused by name (a rule on a tag
    that does not exist would select nobody, or for "without", everybody, without saying why)."""
    for name in TAG_RULES:
        refs = getattr(rules, name)
        if refs:
            try:
                setattr(rules, name, tag_service.ids_of(session, refs, name))
            except InputError as exc:
                raise GroupError(exc.message) from None
    return rules


def _set_exclusions(session: Session, group: TargetGroup, exclude_ids: list[int]) -> None:
    wanted = {i for i in exclude_ids if i != group.id}
    known = set(session.scalars(select(TargetGroup.id).where(TargetGroup.id.in_(wanted)))) if wanted else set()
    if wanted - known:
        raise GroupError(_("An exclusion group does not exist."))
    session.execute(delete(TargetGroupExclusion).where(TargetGroupExclusion.group_id == group.id))
    for excluded_id in sorted(known):
        session.add(TargetGroupExclusion(group_id=group.id, excluded_id=excluded_id))
    session.flush()


def exclusion_ids(session: Session, group_id: int) -> list[int]:
    return list(
        session.scalars(
            select(TargetGroupExclusion.excluded_id)
            .where(TargetGroupExclusion.group_id == group_id)
            .order_by(TargetGroupExclusion.excluded_id)
        )
    )


# --- static lists from CSV -------------------------------------------------------------------------------


@dataclass
class ListImport:
    added: int = 0
    already: int = 0
    errors: list[str] = field(default_factory=list)
    rows: int = 0


def import_list(session: Session, group: TargetGroup, data: bytes, viewer: User | None) -> ListImport:
    """Add the contacts a CSV names (by e-mail address, column "email"; or a single column of
    addresses) to a static list. Bad rows are reported by line; good rows are added regardless.

    Only contacts ``viewer`` may see are found: the address of a contact of a hidden relation is
    reported like an address no contact has (hub.crm.access), or a CSV of guessed addresses would
    tell staff who the hidden relations' people are (and how many of them are already listed)."""
    if not group.static:
        raise GroupError(_("Only a static list takes contacts from a file."))
    if b"\x00" in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise GroupError(_("This is not a CSV file."))
    result = ListImport()
    # As spreadsheets write it: Dutch Excel's semicolons and Windows-1252 accents, UTF-16 "Unicode text".
    lines, delimiter = csv_lines(io.BytesIO(data))
    reader = csv.reader(lines, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        return result
    lowered = [h.strip().lower() for h in header]
    column = next((i for i, h in enumerate(lowered) if h in ("email", "e-mail", "e-mailadres", "address")), None)
    first_data: list[list[str]] = []
    if column is None:
        if "@" in "".join(header):  # no header line: the first row is data
            column = 0
            first_data = [header]
        else:
            raise GroupError(_('The file needs a column "email".'))
    existing = set(session.scalars(select(TargetGroupMember.contact_id).where(TargetGroupMember.group_id == group.id)))
    batch: list[tuple[int, str]] = []
    line_of_row = 1 if first_data else 2

    def flush() -> None:
        keys = {key for _line, key in batch}
        found: dict[str, int] = {}
        for key, contact_id in session.execute(
            select(EmailAddress.address_key, EmailAddress.contact_id)
            .join(Contact, Contact.id == EmailAddress.contact_id)
            .join(Relation, Relation.id == Contact.relation_id)
            .where(EmailAddress.address_key.in_(keys), relation_visible(viewer))
            .order_by(EmailAddress.id)
        ):
            found.setdefault(key, contact_id)
        for line, key in batch:
            contact_id = found.get(key)
            if contact_id is None:
                _error(result, line, _("no contact has the address %(address)s", address=key))
            elif contact_id in existing:
                result.already += 1
            else:
                existing.add(contact_id)
                session.add(TargetGroupMember(group_id=group.id, contact_id=contact_id))
                result.added += 1
        batch.clear()
        session.flush()

    for row in [*first_data, *reader]:
        line = line_of_row
        line_of_row += 1
        if not any(cell.strip() for cell in row):
            continue
        result.rows += 1
        value = row[column].strip() if column < len(row) else ""
        key = value.lower()
        if not _looks_like_address(key):
            _error(result, line, _("not an e-mail address: %(value)s", value=value[:100] or "—"))
            continue
        batch.append((line, key))
        if len(batch) >= 500:
            flush()
    if batch:
        flush()
    return result


def _error(result: ListImport, line: int, reason: str) -> None:
    if len(result.errors) < CSV_ERROR_LINES:
        result.errors.append(_("line %(line)s: %(reason)s", line=line, reason=reason))
    else:
        result.errors[-1] = _("… and more rows with errors")


def _looks_like_address(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return bool(at and local and "." in domain and " " not in value and len(value) <= 254 and "\x00" not in value)


def clear_list(session: Session, group: TargetGroup) -> None:
    session.execute(delete(TargetGroupMember).where(TargetGroupMember.group_id == group.id))


def groups(session: Session) -> list[TargetGroup]:
    return list(session.scalars(select(TargetGroup).order_by(TargetGroup.name, TargetGroup.id)))
