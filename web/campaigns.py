"""Campaign pages: campaigns with their results and chart, target groups (editor with live count and
sample, static lists from CSV), mailings (editor, preview, test send, schedule, pause, resume,
cancel, the ledger) and the public unsubscribe page that mail providers POST to (RFC 8058)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, IntegerField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from hub.campaigns import bounces, groups, mailings
from hub.campaigns.channels import SeenBy
from hub.campaigns.render import FIELDS
from hub.crm.access import relation_visible
from hub.models import Contact, Relation, RelationStatus, User
from hub.models.campaigns import Campaign, Mailing, MailingRecipient, MailingState, TargetGroup
from hub.outbound import Refused, RelayNotConfigured, send_one
from hub.paging import Sort
from web.context import db_session, installation, settings
from web.security import login_required, user
from web.views import cursor_page, search_arg

bp = Blueprint("campaigns", __name__)


@bp.app_template_filter("campaign_state")
def campaign_state(value: str) -> str:
    """A mailing's state, a ledger row's status or a bounce's kind in the reader's language (all
    stored in English)."""
    words = {
        "draft": _l("draft"),
        "scheduled": _l("scheduled"),
        "sending": _l("sending"),
        "sent": _l("sent"),
        "paused": _l("paused"),
        "cancelled": _l("cancelled"),
        "pending": _l("waiting"),
        "failed": _l("failed"),
        "skipped": _l("skipped"),
        # (a bounce's kind)
        "hard": _l("hard bounce"),
        "soft": _l("soft bounce"),
        "complaint": _l("complaint"),
    }
    word = words.get(str(value))
    return str(word) if word is not None else str(value)


LEDGER_SORTS = {"id": Sort(MailingRecipient.id, MailingRecipient.id, lambda r: r.id)}
MAX_INT = 10**12


def _get(model: Any, object_id: int) -> Any:
    found = db_session().get(model, object_id)
    if found is None:
        abort(404)
    return found


# --- campaigns ------------------------------------------------------------------------------------


class CampaignForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired()])
    goal = TextAreaField(_l("Goal"))
    starts_on = DateField(_l("Starts on"), validators=[Optional()])
    ends_on = DateField(_l("Ends on"), validators=[Optional()])
    budget_planned = StringField(_l("Planned budget"))
    costs_actual = StringField(_l("Actual costs"))
    currency = StringField(_l("Currency"), default="EUR")
    material_name = StringField(_l("Printed material (folder, flyer)"))
    material_quantity = IntegerField(
        _l("Quantity in stock"), default=0, validators=[Optional(), NumberRange(0, MAX_INT)]
    )
    material_used = IntegerField(_l("Used"), default=0, validators=[Optional(), NumberRange(0, MAX_INT)])
    material_reorder_level = IntegerField(_l("Reorder at"), default=0, validators=[Optional(), NumberRange(0, MAX_INT)])


@bp.get("/campaigns/")
@login_required
def index() -> Any:
    session = db_session()
    from sqlalchemy import select

    campaigns = list(session.scalars(select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc())))
    return render_template("campaigns/index.html", campaigns=campaigns, groups=groups.groups(session))


def _campaign_form_view(campaign: Campaign | None) -> Any:
    session = db_session()
    form = CampaignForm(obj=campaign) if campaign is not None and request.method == "GET" else CampaignForm()
    if request.method == "GET" and campaign is not None:
        form.budget_planned.data = "" if campaign.budget_planned is None else str(campaign.budget_planned)
        form.costs_actual.data = "" if campaign.costs_actual is None else str(campaign.costs_actual)
    if form.validate_on_submit():
        data = mailings.CampaignInput(
            name=form.name.data or "",
            goal=form.goal.data or "",
            starts_on=form.starts_on.data,
            ends_on=form.ends_on.data,
            budget_planned=form.budget_planned.data or "",
            costs_actual=form.costs_actual.data or "",
            currency=form.currency.data or "EUR",
            material_name=form.material_name.data or "",
            material_quantity=form.material_quantity.data or 0,
            material_used=form.material_used.data or 0,
            material_reorder_level=form.material_reorder_level.data or 0,
        )
        try:
            saved = mailings.save_campaign(session, data, user(), campaign)
        except mailings.MailingError as exc:
            form.form_errors.append(str(exc))
        else:
            flash(gettext("Campaign saved."), "success")
            return redirect(url_for("campaigns.campaign", campaign_id=saved.id))
    return render_template("campaigns/campaign_form.html", form=form, campaign=campaign)


@bp.route("/campaigns/new", methods=["GET", "POST"])
@login_required
def new_campaign() -> Any:
    return _campaign_form_view(None)


@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@login_required
def edit_campaign(campaign_id: int) -> Any:
    return _campaign_form_view(_get(Campaign, campaign_id))


def chart(by_day: list[dict[str, Any]], width: int = 640, height: int = 180) -> dict[str, Any]:
    """Polylines for a small server-rendered SVG chart of the results per day (no script, no CDN)."""
    series = ("sent", "bounced", "unsubscribed", "replies")
    if not by_day:
        return {"width": width, "height": height, "lines": [], "days": [], "top": 0}
    top = max(max(day[s] for s in series) for day in by_day) or 1
    step = (width - 40) / max(len(by_day) - 1, 1)
    lines = []
    for name in series:
        points = " ".join(
            f"{30 + i * step:.1f},{height - 20 - (day[name] / top) * (height - 40):.1f}" for i, day in enumerate(by_day)
        )
        lines.append({"name": name, "points": points})
    return {"width": width, "height": height, "lines": lines, "days": [d["day"] for d in by_day], "top": top}


@bp.get("/campaigns/<int:campaign_id>")
@login_required
def campaign(campaign_id: int) -> Any:
    session = db_session()
    found: Campaign = _get(Campaign, campaign_id)
    its_mailings = mailings.mailings_of(session, campaign_id)
    results, per_mailing = mailings.results_and_each(
        session, [m.id for m in its_mailings], found.costs_actual, seen_by=user()
    )
    return render_template(
        "campaigns/campaign.html",
        campaign=found,
        mailings=its_mailings,
        results=results,
        per_mailing=per_mailing,
        chart=chart(results.by_day),
        material_low=mailings.material_low(found),
    )


# --- target groups --------------------------------------------------------------------------------


_TAG_CHECKBOXES = {
    "coerce": int,
    "choices": [],
    "validate_choice": False,  # a tag deleted meanwhile is refused by the service, by its id
    "widget": ListWidget(prefix_label=False),
    "option_widget": CheckboxInput(),
}


class GroupForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired()])
    description = TextAreaField(_l("Description"))
    static = BooleanField(_l("Static list (contacts imported from a file)"))
    consent_required = BooleanField(_l("Only contacts who consented to marketing mail"), default=True)
    relation_status = SelectField(
        _l("Relation status"),
        choices=[("", _l("Any")), *[(s.value, s.value) for s in RelationStatus]],
        validators=[Optional()],
    )
    owner_id = SelectField(_l("Owner"), choices=[], validators=[Optional()])
    city = StringField(_l("City"))
    country = StringField(_l("Country (codes, comma-separated)"))
    has_open_project = SelectField(
        _l("Open project"),
        choices=[("", _l("Any")), ("yes", _l("Has an open project")), ("no", _l("No open project"))],
        validators=[Optional()],
        validate_choice=False,
    )
    project_choice_ids = StringField(_l("Project type, status, chance or free choice (choice ids, comma-separated)"))
    free_text = StringField(_l("Project free field contains (free_text_1=word)"))
    relation_created_from = DateField(_l("Relation created from"), validators=[Optional()])
    relation_created_to = DateField(_l("Relation created until"), validators=[Optional()])
    contact_created_from = DateField(_l("Contact created from"), validators=[Optional()])
    contact_created_to = DateField(_l("Contact created until"), validators=[Optional()])
    contacted_since = DateField(_l("Contacted since (mail, call or appointment)"), validators=[Optional()])
    not_contacted_since = DateField(_l("Not contacted since"), validators=[Optional()])
    # Checkboxes rather than a multiple select: a phone shows them as they are, no Ctrl-click needed.
    relation_tags = SelectMultipleField(
        _l("The relation has any of these tags"),
        **_TAG_CHECKBOXES,
    )
    contact_tags = SelectMultipleField(_l("The contact has any of these tags"), **_TAG_CHECKBOXES)
    without_tags = SelectMultipleField(
        _l("Leave out contacts with any of these tags (on the contact or its relation)"),
        **_TAG_CHECKBOXES,
    )
    exclude_ids = StringField(_l("Exclude the members of groups (ids, comma-separated)"))


def _ids(text: str | None) -> list[int]:
    values = []
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if part.isascii() and part.isdigit() and len(part) < 10:
            values.append(int(part))
        elif part:
            raise groups.GroupError(gettext("Not a number: %(value)s", value=part[:40]))
    return values


def _rules_of(form: GroupForm) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    if form.relation_status.data:
        rules["relation_status"] = [form.relation_status.data]
    if form.owner_id.data:
        rules["owner_ids"] = _ids(form.owner_id.data)
    if (form.city.data or "").strip():
        rules["city"] = form.city.data.strip()
    countries = [c.strip().upper() for c in (form.country.data or "").split(",") if c.strip()]
    if countries:
        rules["country"] = countries
    if form.has_open_project.data in ("yes", "no"):
        rules["has_open_project"] = form.has_open_project.data == "yes"
    choice_ids = _ids(form.project_choice_ids.data)
    if choice_ids:
        # One list for the editor: a choice id belongs to exactly one dropdown, so any match counts.
        rules["project_free_choice_ids"] = choice_ids
        rules["project_type_ids"] = []
    free = (form.free_text.data or "").strip()
    if free:
        name, _eq, needle = free.partition("=")
        rules["project_free_text"] = {name.strip(): needle.strip()}
    for name in (
        "relation_created_from",
        "relation_created_to",
        "contact_created_from",
        "contact_created_to",
        "contacted_since",
        "not_contacted_since",
    ):
        value = getattr(form, name).data
        if value:
            rules[name] = value.isoformat()
    for name in groups.TAG_RULES:
        chosen = getattr(form, name).data
        if chosen:
            rules[name] = list(chosen)
    return rules


def _fill_group_form(form: GroupForm, group: TargetGroup) -> None:
    rules = groups.Rules.parse(group.rules)
    form.relation_status.data = rules.relation_status[0].value if rules.relation_status else ""
    form.owner_id.data = str(rules.owner_ids[0]) if rules.owner_ids else ""
    form.city.data = rules.city
    form.country.data = ", ".join(rules.country)
    form.has_open_project.data = "" if rules.has_open_project is None else ("yes" if rules.has_open_project else "no")
    form.project_choice_ids.data = ", ".join(
        str(i)
        for i in [
            *rules.project_type_ids,
            *rules.project_status_ids,
            *rules.project_chance_ids,
            *rules.project_free_choice_ids,
        ]
    )
    form.free_text.data = ", ".join(f"{k}={v}" for k, v in rules.project_free_text.items())
    form.relation_created_from.data = rules.relation_created_from
    form.relation_created_to.data = rules.relation_created_to
    form.contact_created_from.data = rules.contact_created_from
    form.contact_created_to.data = rules.contact_created_to
    form.contacted_since.data = rules.contacted_since
    form.not_contacted_since.data = rules.not_contacted_since
    for name in groups.TAG_RULES:
        getattr(form, name).data = [ref for ref in getattr(rules, name) if isinstance(ref, int)]


def _owner_choices() -> list[tuple[str, str]]:
    from sqlalchemy import select

    users = db_session().execute(select(User.id, User.name).where(User.is_active.is_(True)).order_by(User.name))
    return [("", gettext("Any")), *[(str(i), n) for i, n in users]]


def _set_choices(form: GroupForm) -> None:
    from hub.crm.tags import all_tags

    form.owner_id.choices = _owner_choices()
    tag_choices = [(t.id, t.name) for t in all_tags(db_session())]
    for name in groups.TAG_RULES:
        getattr(form, name).choices = tag_choices


def _group_view(group: TargetGroup | None) -> Any:
    session = db_session()
    form = GroupForm()
    _set_choices(form)
    if request.method == "GET" and group is not None:
        form = GroupForm(obj=group)
        _set_choices(form)
        _fill_group_form(form, group)
        form.exclude_ids.data = ", ".join(str(i) for i in groups.exclusion_ids(session, group.id))
    preview = None
    if request.method == "POST" and form.validate():
        try:
            data = groups.GroupInput(
                name=form.name.data or "",
                description=form.description.data or "",
                static=bool(form.static.data),
                rules=_rules_of(form),
                consent_required=bool(form.consent_required.data),
                exclude_ids=_ids(form.exclude_ids.data),
            )
            saved = groups.save_group(session, data, user(), group)
        except groups.GroupError as exc:
            form.form_errors.append(str(exc))
        else:
            if request.form.get("action") == "count":
                # "Count" shows the live count of what was typed without leaving the page; nothing is kept.
                preview = groups.preview(session, saved, user(), _seen_by())
                session.rollback()
                if group is not None:
                    session.refresh(group)
            else:
                flash(gettext("Target group saved."), "success")
                return redirect(url_for("campaigns.group", target_group_id=saved.id))
    elif group is not None and request.method == "GET":
        preview = groups.preview(session, group, user(), _seen_by())
    return render_template(
        "campaigns/group_form.html",
        form=form,
        group=group,
        preview=preview,
        upload=UploadForm(),
        all_groups=groups.groups(session),
    )


def _seen_by() -> SeenBy:
    """The user and the rules of what he may see of mail, calls and appointments: a target group's
    rule on the last contact shows him only what those moments say (hub.campaigns.channels)."""
    from hub.calendar.appointments import appointment_visible
    from hub.mail.privacy import email_visible
    from hub.telephony.read import call_visible

    return SeenBy(user(), email_visible, call_visible, appointment_visible)


@bp.route("/campaigns/groups/new", methods=["GET", "POST"])
@login_required
def new_group() -> Any:
    return _group_view(None)


@bp.route("/campaigns/groups/<int:target_group_id>", methods=["GET", "POST"])
@login_required
def group(target_group_id: int) -> Any:
    return _group_view(_get(TargetGroup, target_group_id))


@bp.get("/campaigns/groups/<int:target_group_id>/count")
@login_required
def group_count(target_group_id: int) -> Any:
    """The live count and sample as JSON, for the editor's script."""
    found = _get(TargetGroup, target_group_id)
    preview = groups.preview(db_session(), found, user(), _seen_by())
    return jsonify(
        count=preview.count, with_address=preview.with_address, suppressed=preview.suppressed, sample=preview.sample
    )


class UploadForm(FlaskForm):
    file = FileField(_l('CSV file with a column "email"'), validators=[FileRequired()])


@bp.post("/campaigns/groups/<int:target_group_id>/import")
@login_required
def import_list(target_group_id: int) -> Any:
    session = db_session()
    found: TargetGroup = _get(TargetGroup, target_group_id)
    form = UploadForm()
    if not form.validate_on_submit():
        flash(gettext("Choose a CSV file."), "error")
        return redirect(url_for("campaigns.group", target_group_id=target_group_id))
    data = form.file.data.read(settings().upload_max_bytes + 1)
    if len(data) > settings().upload_max_bytes:
        flash(gettext("The file is too large."), "error")
        return redirect(url_for("campaigns.group", target_group_id=target_group_id))
    try:
        result = groups.import_list(session, found, data, user())
    except groups.GroupError as exc:
        flash(str(exc), "error")
        return redirect(url_for("campaigns.group", target_group_id=target_group_id))
    flash(
        gettext(
            "%(added)s contacts added, %(already)s already on the list, %(errors)s rows with errors.",
            added=result.added,
            already=result.already,
            errors=len(result.errors),
        ),
        "success" if not result.errors else "warning",
    )
    return render_template("campaigns/import_result.html", group=found, result=result)


# --- mailings -------------------------------------------------------------------------------------


class MailingForm(FlaskForm):
    name = StringField(_l("Name"))
    subject = StringField(_l("Subject"), validators=[DataRequired()])
    from_name = StringField(_l("Sender name"))
    from_address = StringField(_l("Sender address"), validators=[DataRequired()])
    reply_to = StringField(_l("Reply-to address"))
    target_group_id = SelectField(_l("Target group"), choices=[], validators=[Optional()])
    html_body = TextAreaField(_l("HTML body"))
    text_body = TextAreaField(_l("Text body"))


class ActionForm(FlaskForm):
    """Schedule, pause, resume, cancel, test send: a CSRF-protected button each."""

    send_at = StringField(_l("Send at (YYYY-MM-DD HH:MM, Europe/Amsterdam; empty: now)"))
    test_to = StringField(_l("Send a test to"))


def _group_choices() -> list[tuple[str, str]]:
    return [("", gettext("Choose…")), *[(str(g.id), g.name) for g in groups.groups(db_session())]]


def _mailing_view(found_campaign: Campaign, mailing: Mailing | None) -> Any:
    session = db_session()
    form = MailingForm(obj=mailing) if mailing is not None and request.method == "GET" else MailingForm()
    form.target_group_id.choices = _group_choices()
    if request.method == "GET" and mailing is not None:
        form.target_group_id.data = str(mailing.target_group_id or "")
    if request.method == "GET" and mailing is None:
        form.from_address.data = settings().mail_from
    if form.validate_on_submit():
        group_id = form.target_group_id.data
        data = mailings.MailingInput(
            name=form.name.data or "",
            subject=form.subject.data or "",
            from_name=form.from_name.data or "",
            from_address=form.from_address.data or "",
            reply_to=form.reply_to.data or "",
            html_body=form.html_body.data or "",
            text_body=form.text_body.data or "",
            target_group_id=int(group_id)
            if group_id and group_id.isascii() and group_id.isdigit() and len(group_id) < 10
            else None,
        )
        try:
            saved = mailings.save_mailing(session, found_campaign, data, user(), mailing)
        except mailings.MailingError as exc:
            form.form_errors.append(str(exc))
        else:
            flash(gettext("Mailing saved."), "success")
            return redirect(url_for("campaigns.mailing", mailing_id=saved.id))
    return render_template(
        "campaigns/mailing_form.html",
        form=form,
        campaign=found_campaign,
        mailing=mailing,
        actions=ActionForm(),
        fields=FIELDS,
        results=mailings.results(session, [mailing.id], seen_by=user()) if mailing is not None else None,
        health=_health(mailing),
        editable=mailing is None or mailing.state in (MailingState.draft.value, MailingState.paused.value),
    )


def _health(mailing: Mailing | None) -> Any:
    if mailing is None or mailing.state not in (MailingState.scheduled.value, MailingState.sending.value):
        return None
    from hub.ops.health import cached

    alive = cached("campaigns.workers", 10.0, lambda: installation().workers_alive)
    return mailings.health_of(mailing, workers_alive=alive)


@bp.route("/campaigns/<int:campaign_id>/mailings/new", methods=["GET", "POST"])
@login_required
def new_mailing(campaign_id: int) -> Any:
    return _mailing_view(_get(Campaign, campaign_id), None)


@bp.route("/campaigns/mailings/<int:mailing_id>", methods=["GET", "POST"])
@login_required
def mailing(mailing_id: int) -> Any:
    found: Mailing = _get(Mailing, mailing_id)
    return _mailing_view(found.campaign, found)


def _moment(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        local = datetime.strptime(text, "%Y-%m-%d %H:%M")
    except ValueError:
        raise mailings.MailingError(gettext("Write the moment as YYYY-MM-DD HH:MM.")) from None
    return local.replace(tzinfo=ZoneInfo("Europe/Amsterdam")).astimezone(UTC)


@bp.post("/campaigns/mailings/<int:mailing_id>/schedule")
@login_required
def schedule(mailing_id: int) -> Any:
    return _act(mailing_id, "schedule")


@bp.post("/campaigns/mailings/<int:mailing_id>/unschedule")
@login_required
def unschedule(mailing_id: int) -> Any:
    return _act(mailing_id, "unschedule")


@bp.post("/campaigns/mailings/<int:mailing_id>/pause")
@login_required
def pause(mailing_id: int) -> Any:
    return _act(mailing_id, "pause")


@bp.post("/campaigns/mailings/<int:mailing_id>/resume")
@login_required
def resume(mailing_id: int) -> Any:
    return _act(mailing_id, "resume")


@bp.post("/campaigns/mailings/<int:mailing_id>/cancel")
@login_required
def cancel(mailing_id: int) -> Any:
    return _act(mailing_id, "cancel")


def _act(mailing_id: int, action: str) -> Any:
    session = db_session()
    found: Mailing = _get(Mailing, mailing_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        if action == "schedule":
            mailings.schedule(session, found, _moment(form.send_at.data or ""))
            flash(gettext("The mailing is scheduled."), "success")
        elif action == "unschedule":
            mailings.unschedule(session, found)
        elif action == "pause":
            mailings.pause(session, found)
            flash(gettext("The mailing is paused."), "success")
        elif action == "resume":
            mailings.resume(session, found)
            flash(gettext("The mailing is sending again; nobody gets it twice."), "success")
        else:
            mailings.cancel(session, found)
            flash(gettext("The mailing is cancelled."), "success")
    except mailings.MailingError as exc:
        flash(str(exc), "error")
    return redirect(url_for("campaigns.mailing", mailing_id=mailing_id))


@bp.get("/campaigns/mailings/<int:mailing_id>/preview")
@login_required
def preview(mailing_id: int) -> Any:
    found: Mailing = _get(Mailing, mailing_id)
    contact_id = request.args.get("contact", "")
    try:
        rendered = mailings.preview(
            db_session(),
            settings(),
            found,
            int(contact_id) if contact_id.isascii() and contact_id.isdigit() and len(contact_id) < 10 else None,
            user(),
        )
    except LookupError:
        abort(404)
    return render_template("campaigns/preview.html", mailing=found, rendered=rendered, contact_id=contact_id)


@bp.post("/campaigns/mailings/<int:mailing_id>/test")
@login_required
def test_send(mailing_id: int) -> Any:
    found: Mailing = _get(Mailing, mailing_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    to = (form.test_to.data or "").strip()
    from hub.campaigns.messages import valid_address

    if not valid_address(to):
        flash(gettext("Give a valid address for the test."), "error")
        return redirect(url_for("campaigns.mailing", mailing_id=mailing_id))
    try:
        rendered = mailings.preview(db_session(), settings(), found, None, user())
    except LookupError:
        flash(gettext("The target group has no recipient you may see to make the test from."), "error")
        return redirect(url_for("campaigns.mailing", mailing_id=mailing_id))
    if rendered.error:
        flash(rendered.error, "error")
        return redirect(url_for("campaigns.mailing", mailing_id=mailing_id))
    try:
        send_one(settings(), mailings.test_message(settings(), found, rendered, to), sender=found.from_address)
    except (Refused, RelayNotConfigured, OSError) as exc:
        flash(gettext("The test could not be sent: %(reason)s", reason=str(exc)), "error")
    else:
        flash(gettext("Test sent to %(address)s.", address=to), "success")
    return redirect(url_for("campaigns.mailing", mailing_id=mailing_id))


@bp.get("/campaigns/mailings/<int:mailing_id>/ledger")
@login_required
def ledger(mailing_id: int) -> Any:
    found: Mailing = _get(Mailing, mailing_id)
    search = search_arg()
    status = request.args.get("status", "")
    query = mailings.ledger_query(user(), mailing_id, search, status)
    page, _sort = cursor_page(query, LEDGER_SORTS, "id", "id", per_page=50)
    names = mailings.contact_names(db_session(), [r.contact_id for r in page.items])
    return render_template("campaigns/ledger.html", mailing=found, page=page, names=names, q=search, status=status)


# --- unsubscribe (public: the signed token is the credential) ---------------------------------------


@bp.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Any:
    """GET shows what a click will do and changes nothing (link scanners open links); POST
    unsubscribes: the page's button, or a mail provider's RFC 8058 one-click POST, which carries no
    cookie and no CSRF token and must not be answered with a redirect. Idempotent."""
    session = db_session()
    recipient = bounces.recipient_for_token(session, settings().secret_key, token)
    if recipient is None:
        abort(404)
    if request.method == "GET":
        return render_template("campaigns/unsubscribe.html", token=token, address=recipient.address, done=False)
    bounces.unsubscribe(session, recipient)
    return render_template("campaigns/unsubscribe.html", token=token, address=recipient.address, done=True)


# --- what the contact page shows ---------------------------------------------------------------------


class ConsentForm(FlaskForm):
    consent = BooleanField(_l("Consented to marketing mail"))
    source = StringField(_l("How (web form, by phone, at the fair …)"))


@bp.route("/campaigns/contacts/<int:contact_id>", methods=["GET", "POST"])
@login_required
def contact_marketing(contact_id: int) -> Any:
    """A contact's consent, suppression and bounces (a hidden relation's contact answers 404)."""
    from sqlalchemy import select

    session = db_session()
    row = session.execute(
        select(Contact, Relation)
        .join(Relation, Relation.id == Contact.relation_id)
        .where(Contact.id == contact_id, relation_visible(user()))
    ).first()
    if row is None:
        abort(404)
    contact, relation = row
    form = ConsentForm()
    if form.validate_on_submit():
        bounces.set_consent(session, contact.id, bool(form.consent.data), form.source.data or "")
        flash(gettext("Marketing consent saved."), "success")
        return redirect(url_for("campaigns.contact_marketing", contact_id=contact.id))
    if request.method == "GET":
        form.consent.data = contact.marketing_consent
        form.source.data = contact.marketing_consent_source
    addresses = [e.address for e in contact.emails]
    suppressed = {a: bounces.is_suppressed(session, a) for a in addresses}
    return render_template(
        "campaigns/contact.html",
        contact=contact,
        relation=relation,
        suppressed=suppressed,
        bounce_events=bounces.bounces_of_contact(session, contact_id),
        form=form,
    )


# --- channel overview -----------------------------------------------------------------------------


def stacked_bars(overview: Any, width: int = 640, height: int = 220) -> dict[str, Any]:
    """Stacked bars (one per month, a segment per channel) for the server-rendered SVG of the channel
    overview; the page's table holds the same numbers for screen readers."""
    from hub.campaigns.channels import CHANNELS

    left, bottom, top_margin = 34, 22, 10
    plot = height - bottom - top_margin
    top = max((m.total for m in overview.months), default=0) or 1
    slot = (width - left - 6) / max(len(overview.months), 1)
    bars = []
    # At most about twelve month labels: at 36 months (or on a phone) every one would overlap.
    every = -(-len(overview.months) // 12)
    for i, month in enumerate(overview.months):
        x, y = left + i * slot + slot * 0.15, float(height - bottom)
        segments = []
        for channel in CHANNELS:
            h = month.counts[channel] / top * plot
            if month.counts[channel]:
                y -= h
                segments.append({"channel": channel, "y": f"{y:.1f}", "h": f"{h:.1f}", "n": month.counts[channel]})
        bars.append(
            {
                "x": f"{x:.1f}",
                "w": f"{slot * 0.7:.1f}",
                "cx": f"{left + (i + 0.5) * slot:.1f}",
                "start": month.start,
                "labelled": i % every == 0,
                "segments": segments,
            }
        )
    return {"width": width, "height": height, "bars": bars, "top": top, "base": height - bottom, "left": left}


@bp.get("/campaigns/channels")
@login_required
def channels() -> Any:
    """Contact moments per month and channel: overall, or for one relation (``?relation_id=``)."""
    from flask_babel import get_timezone

    from hub.calendar.appointments import appointment_visible
    from hub.campaigns.channels import CHANNELS, MAX_MONTHS, channel_overview
    from hub.errors import NotFound
    from hub.mail.privacy import email_visible
    from hub.telephony.read import call_visible

    raw_relation = request.args.get("relation_id")
    relation_id = None
    if raw_relation is not None:
        # Not a relation id (or one no database column holds): the same 404 as a hidden relation.
        if (
            not (raw_relation.isascii() and raw_relation.isdigit() and len(raw_relation) < 11)
            or not 0 < int(raw_relation) < 2**31
        ):
            abort(404)
        relation_id = int(raw_relation)
    months = request.args.get("months", 12, type=int)
    months = 12 if months is None or not 1 <= months <= MAX_MONTHS else months
    zone = get_timezone()
    try:
        overview = channel_overview(
            db_session(),
            user(),
            relation_id=relation_id,
            months=months,
            zone=ZoneInfo(str(zone)) if zone is not None else ZoneInfo("Europe/Amsterdam"),
            emails_visible=email_visible,
            calls_visible=call_visible,
            appointments_visible=appointment_visible,
        )
    except NotFound:
        abort(404)
    return render_template(
        "campaigns/channels.html",
        overview=overview,
        channels=CHANNELS,
        chart=stacked_bars(overview),
        months=months,
        choices=(3, 6, 12, 24, 36),
    )
