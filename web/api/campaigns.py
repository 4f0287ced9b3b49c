"""Campaigns in the API: target groups (with their live count), campaigns (with results) and
mailings (state changes and the per-recipient ledger).

Marketing features are for staff: every token's user may read and write them. The ledger lists a
recipient only when the user may see the contact's relation (hub.crm.access), like every other list.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar, cast

from flask import request
from pydantic import AfterValidator, BaseModel, Field, StrictBool, StrictStr
from sqlalchemy import select

from hub.campaigns import groups, mailings
from hub.campaigns.channels import MAX_MONTHS, SeenBy
from hub.i18n import shown
from hub.models.campaigns import Campaign, Mailing, MailingRecipient, TargetGroup
from hub.paging import MAX_ID, Sort
from web.api import bp, schemas
from web.api.errors import LOADERS, ApiError, not_found
from web.api.routes import _keyset, _page, declare, me, path_object, valid_query
from web.context import db_session

M = TypeVar("M", bound=BaseModel)


def _load(model: Any) -> Any:
    def load(object_id: int) -> Any:
        found = db_session().get(model, object_id)
        if found is None:
            raise not_found()
        return found

    return load


LOADERS["target_group_id"] = _load(TargetGroup)
LOADERS["campaign_id"] = _load(Campaign)
LOADERS["mailing_id"] = _load(Mailing)

# Reasons workers stored (hub.i18n.N_), in the reader's language.
Shown = Annotated[str, AfterValidator(shown)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=200)]
Text = Annotated[StrictStr, Field(max_length=100_000)]
MailingStateName = Literal["draft", "scheduled", "sending", "sent", "paused", "cancelled"]
RecipientStatusName = Literal["pending", "sending", "sent", "failed", "skipped"]


# --- shapes ----------------------------------------------------------------------------------------


class GroupInput(schemas.Input):
    """A target group: rules over relations, contacts and projects, or a static list (static: true)."""

    name: Name
    description: Text = ""
    static: StrictBool = False
    consent_required: StrictBool = Field(default=True, description="Only contacts who consented to marketing mail")
    rules: dict[str, Any] = Field(
        default_factory=dict,
        description="relation_status, relation_kind, owner_ids, city, country, has_open_project, project_type_ids,"
        " project_status_ids, project_chance_ids, project_free_choice_ids, project_free_text,"
        " relation_created_from/to, contact_created_from/to, contacted_since, not_contacted_since (the relation's"
        " last mail, call or appointment), relation_tags (the relation has any of these tags), contact_tags (the"
        " contact has any of these), without_tags (neither the contact nor its relation has any of these); tags by"
        ' id or by name, such as [3, "Trade fair 2026"] (saved as ids)',
    )
    exclude_ids: schemas.IdList = Field(default=[], description="Groups whose members are left out")


class SampleContact(schemas.Output):
    contact_id: int
    name: str
    relation_id: int
    relation: str
    city: str
    address: str


class GroupOut(schemas.Output):
    id: int
    name: str
    description: str
    static: bool
    consent_required: bool
    rules: dict[str, Any]
    created_at: schemas.Moment


class GroupDetail(GroupOut):
    count: int = Field(description="Contacts in the group now (consent applied when required)")
    with_address: int = Field(description="Of those, with an e-mail address")
    suppressed: int = Field(description="Of those, on the suppression list (skipped when sending)")
    sample: list[SampleContact] = Field(description="A few members you may see")
    exclude_ids: list[int]


class GroupPage(schemas.Paged):
    items: list[GroupOut]


class CampaignInput(schemas.Input):
    name: Name
    goal: Text = ""
    starts_on: schemas.InputDate = None
    ends_on: schemas.InputDate = None
    budget_planned: schemas.Amount = None
    costs_actual: schemas.Amount = None
    currency: Annotated[StrictStr, Field(min_length=3, max_length=3)] = "EUR"
    material_name: Annotated[StrictStr, Field(max_length=200)] = ""
    material_quantity: Annotated[int, Field(ge=0, le=10**12)] = 0
    material_used: Annotated[int, Field(ge=0, le=10**12)] = 0
    material_reorder_level: Annotated[int, Field(ge=0, le=10**12)] = 0


class Results(schemas.Output):
    total: int
    pending: int
    sent: int
    delivered: int
    failed: int
    skipped: int
    bounced: int
    unsubscribed: int
    replies: int
    in_doubt: int = Field(description="Sent again after a worker stopped mid-send: may have arrived twice")
    cost_per_response: schemas.Money = None


class CampaignOut(schemas.Output):
    id: int
    name: str
    goal: str
    starts_on: date | None
    ends_on: date | None
    budget_planned: schemas.Money
    costs_actual: schemas.Money
    currency: str
    material_name: str
    material_quantity: int
    material_used: int
    material_reorder_level: int
    created_at: schemas.Moment


class CampaignDetail(CampaignOut):
    results: Results
    mailing_ids: list[int]


class CampaignPage(schemas.Paged):
    items: list[CampaignOut]


class MailingInput(schemas.Input):
    campaign_id: schemas.Id
    name: Annotated[StrictStr, Field(max_length=200)] = ""
    subject: Annotated[StrictStr, Field(min_length=1, max_length=500)]
    from_name: Annotated[StrictStr, Field(max_length=200)] = ""
    from_address: Annotated[StrictStr, Field(min_length=3, max_length=254)]
    reply_to: Annotated[StrictStr, Field(max_length=254)] = ""
    html_body: Text = ""
    text_body: Text = ""
    target_group_id: schemas.OptionalId = None


class MailingOut(schemas.Output):
    id: int
    campaign_id: int
    target_group_id: int | None
    name: str
    subject: str
    from_name: str
    from_address: str
    reply_to: str
    state: MailingStateName
    scheduled_at: schemas.Moment
    started_at: schemas.Moment
    finished_at: schemas.Moment
    paused_reason: Shown


class MailingDetail(MailingOut):
    html_body: str
    text_body: str
    results: Results


class MailingPage(schemas.Paged):
    items: list[MailingOut]


class MailingQuery(schemas.ListQuery):
    campaign_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only this campaign's mailings")


class MailingAction(schemas.Input):
    action: Literal["schedule", "unschedule", "pause", "resume", "cancel"]
    send_at: datetime | None = Field(default=None, description="For schedule: when (ISO 8601); null: now")


class Recipient(schemas.Output):
    id: int
    contact_id: int
    address: str
    status: RecipientStatusName
    attempts: int
    error: Shown
    in_doubt: bool
    message_id: str
    sent_at: schemas.Moment
    bounced_at: schemas.Moment
    unsubscribed_at: schemas.Moment
    replied_at: schemas.Moment


class RecipientPage(schemas.Paged):
    items: list[Recipient]


class ChannelQuery(schemas.Input):
    relation_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="Only this relation's contact moments; without: every relation you may see",
    )
    months: int = Field(default=12, ge=1, le=MAX_MONTHS, description="How many calendar months, up to this one")


class ChannelCounts(BaseModel):
    mail_in: int = Field(description="E-mails received (not bounces or auto-replies)")
    mail_out: int = Field(description="E-mails sent by staff")
    calls_in: int
    calls_out: int
    mailings: int = Field(description="Mailing messages sent to the relation's contacts")
    appointments: int = Field(description="Appointments not cancelled (a recurring one once, in its first month)")


class ChannelMonth(BaseModel):
    start: date = Field(description="The month's first day")
    counts: ChannelCounts
    total: int


class ChannelOverview(BaseModel):
    """Contact moments per calendar month and channel, only what you may see (as on the page)."""

    relation_id: int | None
    time_zone: str = Field(description="The clock the months are counted on")
    months: list[ChannelMonth] = Field(description="Oldest first, this month last")
    totals: ChannelCounts
    total: int


class RecipientQuery(schemas.ListQuery):
    q: str = Field(default="", max_length=200, description="Part of the address or the contact's name")
    status: RecipientStatusName | None = None


def _body(model: type[M]) -> M:
    return cast(M, request.context.json)  # type: ignore[attr-defined]


def _sort(column: Any) -> dict[str, Sort]:
    return {"id": Sort(column, column, lambda row: row.id)}


def _results(ids: list[int], costs: Decimal | None = None) -> Results:
    found = mailings.results(db_session(), ids, costs, seen_by=me())
    return Results.model_validate(found)


def _group_out(group: TargetGroup) -> dict[str, Any]:
    rules = groups.Rules.parse(group.rules).model_dump(mode="json", exclude_defaults=True)
    return {
        **{c: getattr(group, c) for c in GroupOut.model_fields if c != "rules"},
        "rules": rules,
    }


# --- target groups ---------------------------------------------------------------------------------


@bp.get("/target-groups")
@declare(out=GroupPage, query=schemas.ListQuery, errors=(400, 401))
def list_target_groups() -> Any:
    """Target groups, oldest first"""
    q = valid_query(schemas.ListQuery)
    page = _keyset(select(TargetGroup), _sort(TargetGroup.id), "id", q)
    page.items = [_group_out(g) for g in page.items]
    return _page(page, GroupPage, q)


def _seen_by() -> SeenBy:
    """The user and the rules of what he may see of mail, calls and appointments: a target group's
    rule on the last contact shows him only what those moments say (hub.campaigns.channels)."""
    from hub.calendar.appointments import appointment_visible
    from hub.mail.privacy import email_visible
    from hub.telephony.read import call_visible

    return SeenBy(me(), email_visible, call_visible, appointment_visible)


def _group_detail(group: TargetGroup) -> GroupDetail:
    preview = groups.preview(db_session(), group, me(), _seen_by())
    return GroupDetail.model_validate(
        {
            **_group_out(group),
            "count": preview.count,
            "with_address": preview.with_address,
            "suppressed": preview.suppressed,
            "sample": preview.sample,
            "exclude_ids": groups.exclusion_ids(db_session(), group.id),
        }
    )


def _save_group(data: GroupInput, group: TargetGroup | None) -> TargetGroup:
    try:
        return groups.save_group(
            db_session(),
            groups.GroupInput(
                name=data.name,
                description=data.description,
                static=data.static,
                rules=data.rules,
                consent_required=data.consent_required,
                exclude_ids=list(data.exclude_ids),
            ),
            me(),
            group,
        )
    except groups.GroupError as exc:
        raise ApiError(400, str(exc)) from None


@bp.post("/target-groups")
@declare(ok=201, out=GroupDetail, body=GroupInput, errors=(400, 401))
def create_target_group() -> Any:
    """A new target group, with its live count and a sample"""
    json = _body(GroupInput)
    return _group_detail(_save_group(json, None)), 201


@bp.get("/target-groups/<int:target_group_id>")
@declare(out=GroupDetail)
def get_target_group(target_group_id: int) -> Any:
    """One target group with its live count and a sample of members you may see"""
    return _group_detail(path_object("target_group_id"))


@bp.put("/target-groups/<int:target_group_id>")
@declare(out=GroupDetail, body=GroupInput)
def update_target_group(target_group_id: int) -> Any:
    """Change a target group (mailings already sending keep the recipients they started with)"""
    json = _body(GroupInput)
    return _group_detail(_save_group(json, path_object("target_group_id")))


# --- campaigns -------------------------------------------------------------------------------------


@bp.get("/campaigns")
@declare(out=CampaignPage, query=schemas.ListQuery, errors=(400, 401))
def list_campaigns() -> Any:
    """Campaigns, oldest first"""
    q = valid_query(schemas.ListQuery)
    return _page(_keyset(select(Campaign), _sort(Campaign.id), "id", q), CampaignPage, q)


def _campaign_detail(campaign: Campaign) -> CampaignDetail:
    ids = [m.id for m in mailings.mailings_of(db_session(), campaign.id)]
    base = CampaignOut.model_validate(campaign).model_dump()
    return CampaignDetail.model_validate({**base, "results": _results(ids, campaign.costs_actual), "mailing_ids": ids})


def _campaign_input(data: CampaignInput) -> mailings.CampaignInput:
    return mailings.CampaignInput(
        name=data.name,
        goal=data.goal,
        starts_on=data.starts_on,
        ends_on=data.ends_on,
        budget_planned="" if data.budget_planned is None else str(data.budget_planned),
        costs_actual="" if data.costs_actual is None else str(data.costs_actual),
        currency=data.currency,
        material_name=data.material_name,
        material_quantity=data.material_quantity,
        material_used=data.material_used,
        material_reorder_level=data.material_reorder_level,
    )


@bp.post("/campaigns")
@declare(ok=201, out=CampaignDetail, body=CampaignInput, errors=(400, 401))
def create_campaign() -> Any:
    """A new campaign"""
    json = _body(CampaignInput)
    try:
        campaign = mailings.save_campaign(db_session(), _campaign_input(json), me())
    except mailings.MailingError as exc:
        raise ApiError(400, str(exc)) from None
    return _campaign_detail(campaign), 201


@bp.get("/campaigns/<int:campaign_id>")
@declare(out=CampaignDetail)
def get_campaign(campaign_id: int) -> Any:
    """One campaign with its results (sent, delivered, bounced, unsubscribed, replies, cost per response)"""
    return _campaign_detail(path_object("campaign_id"))


@bp.put("/campaigns/<int:campaign_id>")
@declare(out=CampaignDetail, body=CampaignInput)
def update_campaign(campaign_id: int) -> Any:
    """Change a campaign"""
    json = _body(CampaignInput)
    try:
        campaign = mailings.save_campaign(db_session(), _campaign_input(json), me(), path_object("campaign_id"))
    except mailings.MailingError as exc:
        raise ApiError(400, str(exc)) from None
    return _campaign_detail(campaign)


# --- mailings --------------------------------------------------------------------------------------


@bp.get("/mailings")
@declare(out=MailingPage, query=MailingQuery, errors=(400, 401))
def list_mailings() -> Any:
    """Mailings, oldest first; filter by campaign"""
    q = valid_query(MailingQuery)
    query = select(Mailing)
    if q.campaign_id is not None:
        query = query.where(Mailing.campaign_id == q.campaign_id)
    return _page(_keyset(query, _sort(Mailing.id), "id", q), MailingPage, q)


def _mailing_detail(mailing: Mailing) -> MailingDetail:
    base = MailingOut.model_validate(mailing).model_dump()
    return MailingDetail.model_validate(
        {**base, "html_body": mailing.html_body, "text_body": mailing.text_body, "results": _results([mailing.id])}
    )


def _mailing_input(data: MailingInput) -> mailings.MailingInput:
    return mailings.MailingInput(
        name=data.name,
        subject=data.subject,
        from_name=data.from_name,
        from_address=data.from_address,
        reply_to=data.reply_to,
        html_body=data.html_body,
        text_body=data.text_body,
        target_group_id=data.target_group_id,
    )


@bp.post("/mailings")
@declare(ok=201, out=MailingDetail, body=MailingInput, errors=(400, 401))
def create_mailing() -> Any:
    """A new mailing (a draft) in a campaign; the templates are checked in the sandbox"""
    json = _body(MailingInput)
    campaign = db_session().get(Campaign, json.campaign_id)
    if campaign is None:
        raise ApiError(400, "campaign_id: no such campaign", "campaign_id")
    try:
        mailing = mailings.save_mailing(db_session(), campaign, _mailing_input(json), me())
    except mailings.MailingError as exc:
        raise ApiError(400, str(exc)) from None
    return _mailing_detail(mailing), 201


@bp.get("/mailings/<int:mailing_id>")
@declare(out=MailingDetail)
def get_mailing(mailing_id: int) -> Any:
    """One mailing with its state and results"""
    return _mailing_detail(path_object("mailing_id"))


@bp.put("/mailings/<int:mailing_id>")
@declare(out=MailingDetail, body=MailingInput)
def update_mailing(mailing_id: int) -> Any:
    """Change a draft or paused mailing"""
    json = _body(MailingInput)
    mailing: Mailing = path_object("mailing_id")
    if json.campaign_id != mailing.campaign_id:
        raise ApiError(400, "campaign_id: a mailing stays in its campaign", "campaign_id")
    try:
        mailings.save_mailing(db_session(), mailing.campaign, _mailing_input(json), me(), mailing)
    except mailings.MailingError as exc:
        raise ApiError(400, str(exc)) from None
    return _mailing_detail(mailing)


@bp.post("/mailings/<int:mailing_id>/state")
@declare(out=MailingDetail, body=MailingAction)
def change_mailing_state(mailing_id: int) -> Any:
    """Schedule (send_at, or now), unschedule, pause, resume or cancel a mailing

    Resuming never sends anyone the mailing twice: the ledger keeps who has it.
    """
    json = _body(MailingAction)
    mailing: Mailing = path_object("mailing_id")
    session = db_session()
    try:
        if json.action == "schedule":
            mailings.schedule(session, mailing, json.send_at)
        elif json.action == "unschedule":
            mailings.unschedule(session, mailing)
        elif json.action == "pause":
            mailings.pause(session, mailing)
        elif json.action == "resume":
            mailings.resume(session, mailing)
        else:
            mailings.cancel(session, mailing)
    except mailings.MailingError as exc:
        raise ApiError(400, str(exc)) from None
    return _mailing_detail(mailing)


@bp.get("/mailings/<int:mailing_id>/recipients")
@declare(out=RecipientPage, query=RecipientQuery)
def list_mailing_recipients(mailing_id: int) -> Any:
    """The mailing's ledger: one row per recipient and what happened, searchable by address or name

    A recipient of a relation you may not see is not listed.
    """
    q = valid_query(RecipientQuery)
    query = mailings.ledger_query(me(), mailing_id, q.q, q.status or "")
    return _page(_keyset(query, _sort(MailingRecipient.id), "id", q), RecipientPage, q)


# --- the channel overview --------------------------------------------------------------------------


@bp.get("/channels")
@declare(out=ChannelOverview, query=ChannelQuery, errors=(400, 401, 404))
def channel_overview() -> Any:
    """Contact moments per month and channel (mail in/out, calls in/out, mailings, appointments)

    Overall (the relations you may see) or with relation_id for one relation (404 when you may not
    see it, as for a missing one). Months are calendar months on your clock.
    """
    from zoneinfo import ZoneInfo

    from flask_babel import get_timezone

    from hub.calendar.appointments import appointment_visible
    from hub.campaigns.channels import COMPANY_ZONE
    from hub.campaigns.channels import channel_overview as overview_of
    from hub.mail.privacy import email_visible
    from hub.telephony.read import call_visible

    q = valid_query(ChannelQuery)
    zone = get_timezone()
    clock = ZoneInfo(str(zone)) if zone is not None else COMPANY_ZONE
    overview = overview_of(
        db_session(),
        me(),
        relation_id=q.relation_id,
        months=q.months,
        zone=clock,
        emails_visible=email_visible,
        calls_visible=call_visible,
        appointments_visible=appointment_visible,
    )
    return ChannelOverview(
        relation_id=q.relation_id,
        time_zone=str(clock),
        months=[
            ChannelMonth(start=m.start, counts=ChannelCounts.model_validate(m.counts), total=m.total)
            for m in overview.months
        ],
        totals=ChannelCounts.model_validate(overview.totals),
        total=overview.total,
    )
