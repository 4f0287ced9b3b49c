"""Settings (admins only): CRM set-up (dropdown choices, free-field labels), users and groups, every
user's API tokens, and outbound webhooks."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    URLField,
)
from wtforms.validators import DataRequired, Length, Optional

from hub.accounts.users import (
    UserInput,
    all_groups,
    all_tokens,
    all_users,
    create_user,
    get_group,
    get_user,
    revoke_token,
    save_group,
    update_user,
)
from hub.crm.choices import (
    DEFAULT_LABELS,
    ChoiceInput,
    all_choices,
    delete_choice,
    field_labels,
    get_choice,
    save_choice,
    save_field_labels,
)
from hub.errors import NotFound, ValidationError
from hub.models import FREE_CHOICE_FIELDS, FREE_TEXT_FIELDS, ChoiceField
from hub.webhooks import subscriptions as webhook_service
from hub.webhooks.catalog import event_names
from hub.webhooks.delivery import RETRY_DELAYS, TIMEOUT_SECONDS
from web.context import db_session, settings
from web.forms import show_errors
from web.security import admin_required, user

bp = Blueprint("settings", __name__, url_prefix="/settings")

FIELD_NAMES = {"type": _l("Type"), "status": _l("Status"), "chance": _l("Chance")}
# What each free field is called before the company renames it, in the user's language.
FREE_FIELD_NAMES = {
    **{f: _l("Free text %(n)s", n=i) for i, f in enumerate(FREE_TEXT_FIELDS, 1)},
    **{f.value: _l("Free choice %(n)s", n=i) for i, f in enumerate(FREE_CHOICE_FIELDS, 1)},
}


class ChoiceForm(FlaskForm):
    field = SelectField(_l("Dropdown"), choices=[(f.value, f.value) for f in ChoiceField])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    sort_order = IntegerField(_l("Sort order"), default=0, validators=[Optional()])
    active = BooleanField(_l("Active"), default=True)


class UserForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[Optional()])
    language = SelectField(_l("Language"), choices=[("", "—"), ("nl", "Nederlands"), ("en", "English")])
    is_admin = BooleanField(_l("Admin"))
    is_active = BooleanField(_l("Active"), default=True)


class GroupForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    member_ids = SelectMultipleField(_l("Members"), coerce=int)


def _dropdown_labels() -> dict[str, str]:
    """Each dropdown's name: the company's own label for a free choice once it has renamed it."""
    labels = field_labels(db_session())
    names: dict[str, str] = {}
    for f in ChoiceField:
        own = labels.get(f.value, "")
        renamed = own and own != DEFAULT_LABELS.get(f.value)
        names[f.value] = own if renamed else str(FIELD_NAMES.get(f.value) or FREE_FIELD_NAMES.get(f.value, f.value))
    return names


@bp.route("/")
@admin_required
def index() -> Any:
    return render_template("settings/index.html")


@bp.route("/choices", methods=["GET", "POST"])
@admin_required
def choices() -> Any:
    form = ChoiceForm()
    labels = _dropdown_labels()
    form.field.choices = list(labels.items())
    if form.validate_on_submit():
        data = ChoiceInput(
            field=form.field.data or "",
            name=form.name.data or "",
            sort_order=form.sort_order.data or 0,
            active=bool(form.active.data),
        )
        try:
            save_choice(db_session(), data)
        except ValidationError as error:
            show_errors(form, error)
        else:
            return redirect(url_for("settings.choices") + f"#{data.field}")
    status = 400 if request.method == "POST" else 200
    from hub.crm.choices import empty_dropdowns, suggested_choices

    suggested = {f: names for f, names in suggested_choices().items() if f in empty_dropdowns(db_session())}
    return render_template(
        "settings/choices.html", form=form, grouped=all_choices(db_session()), labels=labels, suggested=suggested
    ), status


@bp.route("/choices/suggested", methods=["POST"])
@admin_required
def add_suggested() -> Any:
    """A fresh install: the suggested type, status and chance choices, in the admin's language."""
    from flask_babel import gettext

    from hub.crm.choices import add_suggested_choices

    added = add_suggested_choices(db_session())
    flash(gettext("%(n)s choices added: rename, reorder or deactivate them as you like.", n=added))
    return redirect(url_for("settings.choices"))


@bp.route("/choices/<int:choice_id>", methods=["GET", "POST"])
@admin_required
def edit_choice(choice_id: int) -> Any:
    choice = get_choice(db_session(), choice_id)
    form = ChoiceForm(obj=choice) if request.method == "GET" else ChoiceForm()
    labels = _dropdown_labels()
    del form.field  # a choice stays in its dropdown
    if form.validate_on_submit():
        data = ChoiceInput(
            field=choice.field.value,
            name=form.name.data or "",
            sort_order=form.sort_order.data or 0,
            active=bool(form.active.data),
        )
        try:
            save_choice(db_session(), data, choice)
        except ValidationError as error:
            show_errors(form, error)
        else:
            return redirect(url_for("settings.choices") + f"#{choice.field.value}")
    status = 400 if request.method == "POST" else 200
    return render_template("settings/choice_form.html", form=form, choice=choice, labels=labels), status


@bp.route("/choices/<int:choice_id>/delete", methods=["POST"])
@admin_required
def remove_choice(choice_id: int) -> Any:
    choice = get_choice(db_session(), choice_id)
    field = choice.field.value
    try:
        delete_choice(db_session(), choice)
    except ValidationError as error:
        flash(error.message, "error")
    return redirect(url_for("settings.choices") + f"#{field}")


@bp.route("/labels", methods=["GET", "POST"])
@admin_required
def labels() -> Any:
    current = field_labels(db_session())
    errors: dict[str, str] = {}
    values = current
    if request.method == "POST":
        # CSRFProtect has already checked the token of this plain form.
        values = {name: request.form.get(name, "") for name in DEFAULT_LABELS}
        try:
            save_field_labels(db_session(), values)
        except ValidationError as error:
            errors = error.errors
        else:
            return redirect(url_for("settings.labels", saved=1))
    status = 400 if errors else 200
    return render_template(
        "settings/labels.html",
        values=values,
        errors=errors,
        names=FREE_FIELD_NAMES,
        saved=request.args.get("saved"),
    ), status


@bp.route("/users")
@admin_required
def users() -> Any:
    return render_template("settings/users.html", users=all_users(db_session()))


def _save_user_view(user_id: int | None) -> Any:
    existing = get_user(db_session(), user_id) if user_id is not None else None
    form = UserForm(obj=existing) if existing and request.method == "GET" else UserForm()
    if existing is not None and request.method == "GET":
        form.language.data = existing.language or ""
    if form.validate_on_submit():
        data = UserInput(
            email=form.email.data or "",
            name=form.name.data or "",
            password=form.password.data or None,
            is_admin=bool(form.is_admin.data),
            is_active=bool(form.is_active.data),
            language=form.language.data or None,
        )
        try:
            if existing is None:
                create_user(db_session(), data)
            else:
                update_user(db_session(), existing, data, acting=user())
        except ValidationError as error:
            show_errors(form, error)
        else:
            return redirect(url_for("settings.users"))
    status = 400 if request.method == "POST" else 200
    return render_template("settings/user_form.html", form=form, existing=existing), status


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def new_user() -> Any:
    return _save_user_view(None)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def edit_user(user_id: int) -> Any:
    return _save_user_view(user_id)


@bp.route("/groups")
@admin_required
def groups() -> Any:
    return render_template("settings/groups.html", groups=all_groups(db_session(), with_members=True))


def _save_group_view(group_id: int | None) -> Any:
    session = db_session()
    existing = get_group(session, group_id) if group_id is not None else None
    form = GroupForm()
    form.member_ids.choices = [(u.id, u.name) for u in all_users(session)]
    if existing is not None and request.method == "GET":
        form.name.data = existing.name
        form.member_ids.data = [u.id for u in existing.members]
    if form.validate_on_submit():
        try:
            save_group(session, form.name.data or "", list(form.member_ids.data or []), existing)
        except ValidationError as error:
            show_errors(form, error)
        else:
            return redirect(url_for("settings.groups"))
    status = 400 if request.method == "POST" else 200
    return render_template("settings/group_form.html", form=form, existing=existing), status


@bp.route("/groups/new", methods=["GET", "POST"])
@admin_required
def new_group() -> Any:
    return _save_group_view(None)


@bp.route("/groups/<int:group_id>", methods=["GET", "POST"])
@admin_required
def edit_group(group_id: int) -> Any:
    return _save_group_view(group_id)


# --- API tokens (every user's) ---------------------------------------------------------------------------


@bp.route("/tokens")
@admin_required
def tokens() -> Any:
    return render_template("settings/tokens.html", tokens=all_tokens(db_session()))


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@admin_required
def revoke_any_token(token_id: int) -> Any:
    try:
        revoke_token(db_session(), user(), token_id)
    except NotFound:
        abort(404)
    return redirect(url_for("settings.tokens", revoked=1))


# --- webhooks ---------------------------------------------------------------------------------------------

EVENT_LABELS = {
    "relation.created": _l("Relation created"),
    "relation.updated": _l("Relation changed"),
    "relation.deleted": _l("Relation deleted"),
    "contact.created": _l("Contact created"),
    "contact.updated": _l("Contact changed"),
    "contact.deleted": _l("Contact deleted"),
    "project.created": _l("Project created"),
    "project.updated": _l("Project changed"),
    "project.deleted": _l("Project deleted"),
    "email.linked": _l("E-mail linked to a relation or project"),
    "call.created": _l("Call stored (started in the last 24 hours)"),
    "call.updated": _l("Call linked to a contact, relation or project"),
    "appointment.created": _l("Appointment created"),
    "appointment.updated": _l("Appointment changed"),
    "appointment.deleted": _l("Appointment deleted"),
}


class WebhookForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Optional(), Length(max=120)])
    url = URLField(_l("Receiving URL"), validators=[DataRequired(), Length(max=2000)])
    events = SelectMultipleField(_l("Events"))
    owner_id = SelectField(_l("Sees what this user may see"), coerce=int)
    active = BooleanField(_l("Active"), default=True)


def _webhook_form(existing: Any = None) -> WebhookForm:
    form = WebhookForm()
    form.events.choices = [(name, str(EVENT_LABELS.get(name, name))) for name in event_names()]
    form.owner_id.choices = [(u.id, f"{u.name} <{u.email}>") for u in all_users(db_session()) if u.is_active]
    if request.method == "GET":
        if existing is not None:
            form.name.data, form.url.data, form.active.data = existing.name, existing.url, existing.active
            form.events.data, form.owner_id.data = existing.event_list, existing.owner_id
        else:
            form.owner_id.data = user().id
    return form


def _webhook_input(form: WebhookForm) -> webhook_service.SubscriptionInput:
    return webhook_service.SubscriptionInput(
        url=form.url.data or "",
        events=list(form.events.data or []),
        name=form.name.data or "",
        owner_id=form.owner_id.data,
        active=bool(form.active.data),
    )


def _signature_help() -> dict[str, Any]:
    return {"delays": RETRY_DELAYS, "timeout": TIMEOUT_SECONDS, "labels": EVENT_LABELS}


@bp.route("/webhooks")
@admin_required
def webhooks() -> Any:
    session = db_session()
    return render_template(
        "settings/webhooks.html",
        subscriptions=webhook_service.all_subscriptions(session),
        counts=webhook_service.delivery_counts(session),
        **_signature_help(),
    )


@bp.route("/webhooks/new", methods=["GET", "POST"])
@admin_required
def new_webhook() -> Any:
    form = _webhook_form()
    if form.validate_on_submit():
        s = settings()
        try:
            subscription, secret = webhook_service.create_subscription(
                db_session(),
                _webhook_input(form),
                by=user(),
                secret_key=s.secret_key,
                allowed_hosts=s.mail_allowed_hosts,
            )
        except ValidationError as error:
            show_errors(form, error)
        else:
            # The secret is on this response only: never in a redirect, a flash message or a log.
            return _webhook_page(subscription, secret=secret)
    status = 400 if request.method == "POST" else 200
    return render_template("settings/webhook_form.html", form=form, existing=None, **_signature_help()), status


def _webhook_page(subscription: Any, *, form: WebhookForm | None = None, secret: str | None = None) -> Any:
    session = db_session()
    form = form or _webhook_form(subscription)
    page = render_template(
        "settings/webhook.html",
        subscription=subscription,
        form=form,
        log=webhook_service.delivery_log(session, subscription),
        secret=secret,
        sent=request.args.get("sent"),
        **_signature_help(),
    )
    return page, 400 if form.errors else 200, {"Cache-Control": "no-store"}


@bp.route("/webhooks/<int:subscription_id>", methods=["GET", "POST"])
@admin_required
def webhook(subscription_id: int) -> Any:
    subscription = webhook_service.get_subscription(db_session(), subscription_id)
    form = _webhook_form(subscription)
    if form.validate_on_submit():
        try:
            webhook_service.update_subscription(
                db_session(), subscription, _webhook_input(form), allowed_hosts=settings().mail_allowed_hosts
            )
        except ValidationError as error:
            show_errors(form, error)
        else:
            return redirect(url_for("settings.webhook", subscription_id=subscription.id))
    return _webhook_page(subscription, form=form)


@bp.route("/webhooks/<int:subscription_id>/test", methods=["POST"])
@admin_required
def test_webhook(subscription_id: int) -> Any:
    subscription = webhook_service.get_subscription(db_session(), subscription_id)
    webhook_service.send_test_event(db_session(), subscription)
    return redirect(url_for("settings.webhook", subscription_id=subscription.id, sent=1))


@bp.route("/webhooks/<int:subscription_id>/secret", methods=["POST"])
@admin_required
def new_webhook_secret(subscription_id: int) -> Any:
    subscription = webhook_service.get_subscription(db_session(), subscription_id)
    secret = webhook_service.new_secret(db_session(), subscription, secret_key=settings().secret_key)
    return _webhook_page(subscription, secret=secret)


@bp.route("/webhooks/<int:subscription_id>/delete", methods=["POST"])
@admin_required
def delete_webhook(subscription_id: int) -> Any:
    subscription = webhook_service.get_subscription(db_session(), subscription_id)
    webhook_service.delete_subscription(db_session(), subscription)
    return redirect(url_for("settings.webhooks"))


@bp.route("/matching", methods=["GET", "POST"])
@admin_required
def matching() -> Any:
    """How mail and calls find their project: the single-open-project rule, on or off."""
    from hub.crm.matching import set_single_open_rule, single_open_rule_on

    if request.method == "POST":
        # CSRFProtect has already checked the token of this plain form.
        set_single_open_rule(db_session(), "1" in request.form.getlist("single_open"))
        return redirect(url_for("settings.matching", saved=1))
    return render_template(
        "settings/matching.html", single_open=single_open_rule_on(db_session()), saved=request.args.get("saved")
    )
