"""Campaigns and mailings: saving them, the mailing's states, preview, test send and results.

States: draft → scheduled → sending → sent, and paused / cancelled on the way. Every change of state
is one conditional UPDATE on the state it starts from, so two clicks (or a click and beat) cannot
both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from hub.campaigns import messages
from hub.campaigns.groups import clean, first_address, member_condition
from hub.campaigns.render import TemplateProblem, Templates, check, context_for
from hub.config import Settings
from hub.crm.access import relation_visible, relation_visible_among_many
from hub.db import Database
from hub.i18n import _
from hub.models import Contact, Relation, User
from hub.models.base import utcnow
from hub.models.campaigns import Campaign, Mailing, MailingRecipient, MailingState, RecipientStatus, TargetGroup


class MailingError(ValueError):
    """A change that is not possible now; the message is for the user."""


# --- campaigns --------------------------------------------------------------------------------------------


@dataclass
class CampaignInput:
    name: str
    goal: str = ""
    starts_on: date | None = None
    ends_on: date | None = None
    budget_planned: str = ""
    costs_actual: str = ""
    currency: str = "EUR"
    material_name: str = ""
    material_quantity: int = 0
    material_used: int = 0
    material_reorder_level: int = 0


_MAX_MONEY = Decimal("999999999999.99")
_MAX_COUNT = 10**12


def _money(value: str, label: str) -> Decimal | None:
    text = value.strip().replace(" ", "")
    if not text:
        return None
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise MailingError(_("%(field)s is not an amount.", field=label)) from None
    if not amount.is_finite() or amount < 0 or amount > _MAX_MONEY:
        raise MailingError(_("%(field)s is out of range.", field=label))
    return amount.quantize(Decimal("0.01"))


def _count(value: int, label: str) -> int:
    if value < 0 or value > _MAX_COUNT:
        raise MailingError(_("%(field)s is out of range.", field=label))
    return value


def _clean_fields(data: Any) -> None:
    for name, value in vars(data).items():
        if isinstance(value, str):
            setattr(data, name, clean(value))


def save_campaign(
    session: Session, data: CampaignInput, user: User | None, campaign: Campaign | None = None
) -> Campaign:
    _clean_fields(data)
    name = data.name.strip()
    if not name or len(name) > 200:
        raise MailingError(_("A campaign needs a name (at most 200 characters)."))
    if data.starts_on and data.ends_on and data.ends_on < data.starts_on:
        raise MailingError(_("The campaign cannot end before it starts."))
    currency = (data.currency or "EUR").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise MailingError(_("The currency must be a three-letter code such as EUR."))
    if campaign is None:
        campaign = Campaign(created_by_id=user.id if user else None)
        session.add(campaign)
    campaign.name = name
    campaign.goal = data.goal.strip()[:10000]
    campaign.starts_on = data.starts_on
    campaign.ends_on = data.ends_on
    campaign.budget_planned = _money(data.budget_planned, _("Planned budget"))
    campaign.costs_actual = _money(data.costs_actual, _("Actual costs"))
    campaign.currency = currency
    campaign.material_name = data.material_name.strip()[:200]
    campaign.material_quantity = _count(data.material_quantity, _("Quantity"))
    campaign.material_used = _count(data.material_used, _("Used"))
    campaign.material_reorder_level = _count(data.material_reorder_level, _("Reorder level"))
    session.flush()
    return campaign


def material_low(campaign: Campaign) -> bool:
    """Whether the printed stock left is at or below the reorder level (and there is stock to track)."""
    if not campaign.material_quantity:
        return False
    return campaign.material_quantity - campaign.material_used <= campaign.material_reorder_level


# --- mailings ---------------------------------------------------------------------------------------------


@dataclass
class MailingInput:
    name: str
    subject: str
    from_name: str
    from_address: str
    reply_to: str = ""
    html_body: str = ""
    text_body: str = ""
    target_group_id: int | None = None


def save_mailing(
    session: Session, campaign: Campaign, data: MailingInput, user: User | None, mailing: Mailing | None = None
) -> Mailing:
    """Save a draft (only drafts and paused mailings can be edited; the ledger keeps who it went to)."""
    if mailing is not None and mailing.state not in (MailingState.draft.value, MailingState.paused.value):
        raise MailingError(_("Only a draft or a paused mailing can be changed."))
    _clean_fields(data)
    if not data.subject.strip() or len(data.subject) > 500:
        raise MailingError(_("A mailing needs a subject (at most 500 characters)."))
    if not messages.valid_address(data.from_address.strip()):
        raise MailingError(_("The sender address is not a valid e-mail address."))
    if data.reply_to.strip() and not messages.valid_address(data.reply_to.strip()):
        raise MailingError(_("The reply-to address is not a valid e-mail address."))
    if not data.html_body.strip() and not data.text_body.strip():
        raise MailingError(_("A mailing needs an HTML or a text body."))
    try:
        check(data.subject, data.html_body, data.text_body)
    except TemplateProblem as exc:
        raise MailingError(str(exc)) from None
    if data.target_group_id is not None and session.get(TargetGroup, data.target_group_id) is None:
        raise MailingError(_("The target group does not exist."))
    if mailing is None:
        mailing = Mailing(
            campaign_id=campaign.id, created_by_id=user.id if user else None, state=MailingState.draft.value
        )
        session.add(mailing)
    mailing.name = data.name.strip()[:200]
    mailing.subject = data.subject.strip()
    mailing.from_name = data.from_name.strip()[:200]
    mailing.from_address = data.from_address.strip()
    mailing.reply_to = data.reply_to.strip()
    mailing.html_body = data.html_body
    mailing.text_body = data.text_body
    if mailing.state == MailingState.draft.value:
        mailing.target_group_id = data.target_group_id
    session.flush()
    return mailing


def _transition(session: Session, mailing: Mailing, allowed: tuple[MailingState, ...], **values: Any) -> bool:
    result = session.execute(
        update(Mailing)
        .where(Mailing.id == mailing.id, Mailing.state.in_([s.value for s in allowed]))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(mailing)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def schedule(session: Session, mailing: Mailing, at: datetime | None) -> None:
    """Send at ``at`` (now when None): beat starts it when due."""
    if mailing.target_group_id is None:
        raise MailingError(_("Choose a target group first."))
    try:
        check(mailing.subject, mailing.html_body, mailing.text_body)
    except TemplateProblem as exc:
        raise MailingError(str(exc)) from None
    moment = at or utcnow()
    if not _transition(
        session, mailing, (MailingState.draft,), state=MailingState.scheduled.value, scheduled_at=moment
    ):
        raise MailingError(_("Only a draft can be scheduled."))


def unschedule(session: Session, mailing: Mailing) -> None:
    if not _transition(session, mailing, (MailingState.scheduled,), state=MailingState.draft.value, scheduled_at=None):
        raise MailingError(_("The mailing is not scheduled (any more)."))


def pause(session: Session, mailing: Mailing) -> None:
    if not _transition(
        session,
        mailing,
        (MailingState.scheduled, MailingState.sending),
        state=MailingState.paused.value,
        paused_reason="",
    ):
        raise MailingError(_("Only a scheduled or sending mailing can be paused."))


def resume(session: Session, mailing: Mailing) -> None:
    """Paused → sending (its ledger is kept: nobody gets it twice) or back to scheduled if it never started."""
    target = MailingState.sending if mailing.started_at is not None else MailingState.scheduled
    if not _transition(
        session,
        mailing,
        (MailingState.paused,),
        state=target.value,
        paused_reason="",
        next_attempt_at=None,
        failures=0,
    ):
        raise MailingError(_("Only a paused mailing can be resumed."))
    if target is MailingState.sending:
        # Deferred rows are tried at once after a resume: the pause was usually the relay's doing.
        session.execute(
            update(MailingRecipient)
            .where(
                MailingRecipient.mailing_id == mailing.id,
                MailingRecipient.status == RecipientStatus.pending.value,
                MailingRecipient.next_attempt_at.isnot(None),
            )
            .values(next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )


def cancel(session: Session, mailing: Mailing) -> None:
    if not _transition(
        session,
        mailing,
        (MailingState.draft, MailingState.scheduled, MailingState.sending, MailingState.paused),
        state=MailingState.cancelled.value,
        finished_at=utcnow(),
    ):
        raise MailingError(_("This mailing can no longer be cancelled."))


# --- preview and test send --------------------------------------------------------------------------------


@dataclass
class Rendered:
    subject: str
    html: str
    text: str
    to: str
    error: str = ""


def preview(
    session: Session, settings: Settings, mailing: Mailing, contact_id: int | None, viewer: User | None
) -> Rendered:
    """The mailing as ``contact_id`` would get it (a member of its group the viewer may see; the
    first such member when None). A contact the viewer may not see answers like a missing one."""
    owner = User.__table__.alias("owner")
    query = (
        select(Contact, Relation, owner.c.name, owner.c.email, first_address())
        .join(Relation, Relation.id == Contact.relation_id)
        .outerjoin(owner, owner.c.id == Relation.owner_id)
        .where(relation_visible(viewer))
    )
    if contact_id is not None:
        query = query.where(Contact.id == contact_id)
    elif mailing.target_group_id is not None:
        group = session.get(TargetGroup, mailing.target_group_id)
        if group is not None:
            query = query.where(member_condition(session, group))
    row = session.execute(query.order_by(Contact.name, Contact.id).limit(1)).first()
    if row is None:
        raise LookupError("no such recipient")
    contact, relation, owner_name, owner_email, address = row
    url = messages.unsubscribe_url(settings.base_url, settings.secret_key, 0)
    context = context_for(
        contact_name=contact.name,
        contact_function=contact.function,
        address=address or "",
        relation={
            "name": relation.name,
            "street": relation.street,
            "postcode": relation.postcode,
            "city": relation.city,
            "country": relation.country,
            "website": relation.website,
        },
        owner_name=owner_name or "",
        owner_email=owner_email or "",
        unsubscribe_url=url,
    )
    try:
        subject, html, text = Templates.compile(mailing.subject, mailing.html_body, mailing.text_body).render(context)
    except TemplateProblem as exc:
        return Rendered("", "", "", address or "", error=str(exc))
    html, text = messages.with_unsubscribe_footer(html, text, url)
    return Rendered(subject, html, text, address or "")


def test_message(settings: Settings, mailing: Mailing, rendered: Rendered, to: str) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    # (the header registry encodes and folds the name itself: a folded header string is refused)
    message["From"] = Address(" ".join(mailing.from_name.split()), addr_spec=mailing.from_address)
    message["To"] = to
    message["Subject"] = f"[TEST] {rendered.subject}"
    if mailing.reply_to:
        message["Reply-To"] = mailing.reply_to
    if rendered.text:
        message.set_content(rendered.text)
    if rendered.html:
        if rendered.text:
            message.add_alternative(rendered.html, subtype="html")
        else:
            message.set_content(rendered.html, subtype="html")
    return message


# --- results ----------------------------------------------------------------------------------------------


@dataclass
class Results:
    total: int = 0
    pending: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    delivered: int = 0
    bounced: int = 0
    unsubscribed: int = 0
    replies: int = 0
    in_doubt: int = 0
    cost_per_response: Decimal | None = None
    by_day: list[dict[str, Any]] = field(default_factory=list)


def results(
    session: Session, mailing_ids: list[int], costs: Decimal | None = None, *, seen_by: User | None = None
) -> Results:
    """Counts over the ledgers of ``mailing_ids``; delivered = sent and not bounced. ``seen_by``: as
    for :func:`results_and_each`."""
    return results_and_each(session, mailing_ids, costs, seen_by=seen_by)[0]


_EVENTS = (
    ("sent", MailingRecipient.sent_at),
    ("bounced", MailingRecipient.bounced_at),
    ("unsubscribed", MailingRecipient.unsubscribed_at),
    ("replies", MailingRecipient.replied_at),
)


@dataclass
class _Tally:
    """One :class:`Results` being added up from a ledger's grouped rows, with its events per day."""

    results: Results = field(default_factory=Results)
    days: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, status: str, in_doubt: bool, event_days: Sequence[Any], count: int) -> None:
        """``count`` ledger rows in ``status`` whose events (``_EVENTS``' order) fell on ``event_days``
        (None: not happened)."""
        out = self.results
        out.total += count
        if status in (RecipientStatus.pending.value, RecipientStatus.sending.value):
            out.pending += count
        elif status in (RecipientStatus.sent.value, RecipientStatus.failed.value, RecipientStatus.skipped.value):
            setattr(out, status, getattr(out, status) + count)
        out.in_doubt += count if in_doubt else 0
        for (label, _column), day in zip(_EVENTS, event_days, strict=True):
            if day is None:
                continue
            if label != "sent":  # (sent is counted by status above; only its day is counted here)
                setattr(out, label, getattr(out, label) + count)
            entry = self.days.setdefault(
                str(day), {"day": str(day), "sent": 0, "bounced": 0, "unsubscribed": 0, "replies": 0}
            )
            entry[label] += count

    def finished(self) -> Results:
        out = self.results
        out.delivered = max(out.sent - out.bounced, 0)
        out.by_day = [self.days[key] for key in sorted(self.days)]
        return out


def results_and_each(
    session: Session, mailing_ids: list[int], costs: Decimal | None = None, *, seen_by: User | None = None
) -> tuple[Results, dict[int, Results]]:
    """The results of ``mailing_ids`` together (``costs`` gives the cost per response) and of each.

    ``seen_by``: counted over the recipients of relations that user may see, as his ledger lists
    them (hub.crm.access: a hidden object is left out of counts too, or a mailing's totals would
    tell him how many of a group's contacts are on relations hidden from him); None: over every
    recipient, the mailing's own figures (for the sending side).

    One pass over the ledgers: their rows grouped by mailing, status and the days of their events
    (a few hundred groups at most), added up here. One query per figure read a ledger of 100,000
    six times (230 ms on PostgreSQL), and a campaign's page did that again for each mailing."""
    together = _Tally()
    each = {mailing_id: _Tally() for mailing_id in mailing_ids}
    if mailing_ids:
        sqlite = session.get_bind().dialect.name == "sqlite"
        days = [func.date(column) if sqlite else func.to_char(column, "YYYY-MM-DD") for _label, column in _EVENTS]
        grouped = (
            select(MailingRecipient.mailing_id, MailingRecipient.status, MailingRecipient.in_doubt, *days, func.count())
            .where(MailingRecipient.mailing_id.in_(mailing_ids))
            .group_by(MailingRecipient.mailing_id, MailingRecipient.status, MailingRecipient.in_doubt, *days)
        )
        if seen_by is not None and not (seen_by.is_active and seen_by.is_admin):  # (an admin sees every row)
            grouped = (
                grouped.join(Contact, Contact.id == MailingRecipient.contact_id)
                .join(Relation, Relation.id == Contact.relation_id)
                .where(relation_visible_among_many(seen_by))
            )
        for mailing_id, status, in_doubt, *event_days, count in session.execute(grouped):
            together.add(status, in_doubt, event_days, count)
            each[mailing_id].add(status, in_doubt, event_days, count)
    overall = together.finished()
    if costs is not None and overall.replies:
        overall.cost_per_response = (costs / overall.replies).quantize(Decimal("0.01"))
    return overall, {mailing_id: tally.finished() for mailing_id, tally in each.items()}


def mailings_of(session: Session, campaign_id: int) -> list[Mailing]:
    return list(session.scalars(select(Mailing).where(Mailing.campaign_id == campaign_id).order_by(Mailing.id)))


def ledger_query(viewer: User | None, mailing_id: int, search: str = "", status: str = "") -> Any:
    """The mailing's ledger rows the viewer may see (a row of a hidden relation is left out, as
    hub.crm.access has it), searched by address or name; keyset-paged by the caller."""
    query = (
        select(MailingRecipient)
        .join(Contact, Contact.id == MailingRecipient.contact_id)
        .join(Relation, Relation.id == Contact.relation_id)
        .where(MailingRecipient.mailing_id == mailing_id, relation_visible(viewer))
    )
    needle = search.strip().lower()[:200].replace("\x00", "")
    if needle:
        query = query.where(
            or_(
                MailingRecipient.address_key.contains(needle, autoescape=True),
                func.lower(Contact.name).contains(needle, autoescape=True),
            )
        )
    if status in {s.value for s in RecipientStatus}:
        query = query.where(MailingRecipient.status == status)
    return query


def contact_names(session: Session, contact_ids: list[int]) -> dict[int, tuple[str, int, str]]:
    """contact id → (name, relation id, relation name), for showing ledger rows."""
    if not contact_ids:
        return {}
    rows = session.execute(
        select(Contact.id, Contact.name, Relation.id, Relation.name)
        .join(Relation, Relation.id == Contact.relation_id)
        .where(Contact.id.in_(contact_ids))
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def health_of(mailing: Mailing, *, workers_alive: bool) -> Any:
    """The mailing's one state as a unit of background work (hub.ops.health): only a scheduled or
    sending mailing is work; a due one that nobody takes is "waiting for a worker" or "stalled"."""
    from hub.ops.health import Work, work_state

    active = mailing.state in (MailingState.scheduled.value, MailingState.sending.value)
    due = mailing.scheduled_at if mailing.state == MailingState.scheduled.value else mailing.next_attempt_at
    return work_state(
        Work(
            active=active,
            claimed_until=mailing.claimed_until,
            last_progress_at=mailing.last_progress_at,
            progress_done=mailing.progress_done,
            progress_total=mailing.progress_total,
            failures=mailing.failures,
            error=mailing.last_error,
            next_attempt_at=due,
            last_success_at=mailing.last_success_at,
            created_at=mailing.started_at or mailing.created_at,
        ),
        workers_alive=workers_alive,
    )


@dataclass(frozen=True)
class MailingHealth:
    """A mailing on the sync-health page: scheduled, sending or paused ones are background work."""

    id: int
    name: str
    state: str
    health: Any
    sent: int
    total: int


# A mailing paused by hub itself (the relay refused) is work waiting for a person: shown too.
HEALTH_STATES = (MailingState.scheduled.value, MailingState.sending.value, MailingState.paused.value)


def mailing_health_rows(db: Database, *, workers_alive: bool) -> list[MailingHealth]:
    """Every mailing that is work to do, newest first, in one state each (empty if the database is away)."""
    try:
        with db.transaction() as session:
            mailings = session.scalars(
                select(Mailing).where(Mailing.state.in_(HEALTH_STATES)).order_by(Mailing.id.desc()).limit(50)
            )
            return [
                MailingHealth(
                    m.id,
                    m.name or m.subject,
                    m.state,
                    health_of(m, workers_alive=workers_alive),
                    m.progress_done,
                    m.progress_total,
                )
                for m in mailings
            ]
    except Exception:  # the page says the database is away; it must still render
        return []
