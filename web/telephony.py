"""Telephony pages: Settings → Telephony (sources, extension map, prefixes, upload), "My calls", the
unmatched calls with "link to contact" and "new contact from this number". The Calls tabs of
projects and relations live with their pages and share the list macro in telephony/_list.html."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired

from hub.crm.access import relation_visible
from hub.db import after_commit
from hub.errors import NotFound, ValidationError
from hub.models import CallSource, Contact, Relation
from hub.telephony.links import link_to_contact, new_contact_from_call
from hub.telephony.read import CallFilters, calls_page, get_call
from hub.telephony.sources import (
    FORMATS,
    SourceInput,
    all_sources,
    create_upload,
    get_source,
    parse_extension_map,
    recent_imports,
    save_source,
)
from web.context import blobs, db_session, settings
from web.forms import show_errors
from web.security import admin_required, login_required, user
from web.views import page_arg, posted_id, search_arg

# The longest contact name the database holds (Contact.name).
NAME_LIMIT = 200

bp = Blueprint("telephony", __name__)


class SourceForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired()])
    format = SelectField(_l("Format"), choices=[(f, f) for f in FORMATS])
    region = StringField(_l("Country of national numbers"), default="NL")
    timezone = StringField(_l("Time zone of the phone system's clock"), default="Europe/Amsterdam")
    fields = StringField(_l("Field order (comma-separated; empty: the format's default)"))
    strip_prefixes = StringField(_l("Route prefixes to strip (comma-separated, such as 9)"))
    secret = PasswordField(_l("Webhook secret (Twilio: the auth token)"))
    drop_folder = StringField(_l("Drop folder on the server (empty: none)"))
    poll_interval_seconds = IntegerField(_l("Check the drop folder every (seconds)"), default=60)
    missed_call_activities = BooleanField(_l("A missed call from a known number becomes a call-back activity"))
    active = BooleanField(_l("Active"), default=True)
    extensions = TextAreaField(_l("Extensions (one per line: 100 = anna@example.nl)"))


class UploadForm(FlaskForm):
    file = FileField(_l("Call-record file"), validators=[FileRequired()])


def _source_view(source: CallSource | None) -> Any:
    session = db_session()
    form = SourceForm(obj=source) if source is not None and request.method == "GET" else SourceForm()
    if request.method == "GET" and source is None:
        form.missed_call_activities.data = True
        form.region.data = settings().default_phone_region
    if request.method == "GET" and source is not None:
        form.extensions.data = "\n".join(f"{e.extension} = {e.user.email}" for e in source.extensions)
    if form.validate_on_submit():
        try:
            data = SourceInput(
                name=form.name.data or "",
                format=form.format.data or "",
                region=form.region.data or "",
                timezone=form.timezone.data or "",
                fields=form.fields.data or "",
                strip_prefixes=form.strip_prefixes.data or "",
                secret=form.secret.data or None,
                drop_folder=form.drop_folder.data or "",
                poll_interval_seconds=form.poll_interval_seconds.data or 60,
                missed_call_activities=bool(form.missed_call_activities.data),
                active=bool(form.active.data),
                extensions=parse_extension_map(session, form.extensions.data or ""),
            )
            saved = save_source(session, settings().secret_key, data, source)
        except ValidationError as error:
            show_errors(form, error)
        else:
            return redirect(url_for("telephony.edit_source", source_id=saved.id))
    form.secret.data = ""  # never sent back to the browser
    status = 400 if request.method == "POST" else 200
    imports = recent_imports(session, source.id) if source is not None else []
    return render_template(
        "telephony/source_form.html", form=form, source=source, imports=imports, upload=UploadForm()
    ), status


@bp.route("/settings/telephony")
@admin_required
def sources() -> Any:
    session = db_session()
    return render_template("telephony/sources.html", sources=all_sources(session), imports=recent_imports(session))


@bp.route("/settings/telephony/3cx.xml")
@admin_required
def threecx_template() -> Any:
    """3CX's CRM template for this hub (3CX: Settings → CRM → Server side → upload), made for the
    URL the admin reached hub at: 3CX calls back to the same address."""
    from web.api.telephony import threecx_template as template

    headers = {"Content-Disposition": 'attachment; filename="hub-3cx-crm.xml"'}
    return Response(template(request.url_root), mimetype="application/xml", headers=headers)


@bp.route("/settings/telephony/new", methods=["GET", "POST"])
@admin_required
def new_source() -> Any:
    return _source_view(None)


@bp.route("/settings/telephony/<int:source_id>", methods=["GET", "POST"])
@admin_required
def edit_source(source_id: int) -> Any:
    try:
        return _source_view(get_source(db_session(), source_id))
    except NotFound:
        abort(404)


@bp.route("/settings/telephony/<int:source_id>/upload", methods=["POST"])
@admin_required
def upload(source_id: int) -> Any:
    """Keep the file and let a worker import it (after the commit, so the worker finds the row)."""
    session = db_session()
    try:
        source = get_source(session, source_id)
    except NotFound:
        abort(404)
    form = UploadForm()
    if form.validate_on_submit():
        file = form.file.data
        try:
            job = create_upload(
                session, blobs(), user(), source, file.filename or "calls", file.stream, settings().upload_max_bytes
            )
        except ValidationError:
            return redirect(url_for("telephony.edit_source", source_id=source.id))
        _import_after_commit(session, job.id)
    return redirect(url_for("telephony.edit_source", source_id=source.id))


def _import_after_commit(session: Session, import_id: int) -> None:
    def send() -> None:
        from workers.tasks import import_calls_task

        try:
            import_calls_task.delay(import_id)
        except Exception:  # broker down: beat's poll task finds the queued upload
            import logging

            logging.getLogger(__name__).warning("could not enqueue call import %s; beat will", import_id)

    after_commit(session, send)


@bp.route("/calls/mine")
@login_required
def mine() -> Any:
    # Plain values in one kept statement, names included (list_calls and call_names took up to five).
    page, names = calls_page(db_session(), user(), CallFilters(user_id=user().id), page=page_arg())
    return render_template("telephony/mine.html", page=page, names=names)


@bp.route("/calls/unmatched")
@login_required
def unmatched() -> Any:
    page, names = calls_page(db_session(), user(), CallFilters(unmatched=True), page=page_arg())
    return render_template("telephony/unmatched.html", page=page, names=names)


@bp.route("/calls/<int:call_id>/link", methods=["GET", "POST"])
@login_required
def link(call_id: int) -> Any:
    """Link an unmatched call: to an existing contact, or to a new contact made from its number."""
    session = db_session()
    try:
        call = get_call(session, user(), call_id)
    except NotFound:
        abort(404)
    if request.method == "POST":
        try:
            if request.form.get("action") == "new":
                relation = session.scalar(
                    select(Relation).where(
                        Relation.id == (posted_id(request.form.get("relation_id")) or -1), relation_visible(user())
                    )
                )
                if relation is None:
                    abort(404)
                name = request.form.get("name", "")
                if len(name.strip()) > NAME_LIMIT:  # the column holds no more: refused, not a 500
                    return _link_page(session, call, error=gettext("The name can be at most 200 characters.")), 400
                new_contact_from_call(session, call, relation, name, region=settings().default_phone_region)
            else:
                contact = session.scalar(
                    select(Contact)
                    .join(Relation)
                    .where(Contact.id == (posted_id(request.form.get("contact_id")) or -1), relation_visible(user()))
                )
                if contact is None:
                    abort(404)
                link_to_contact(session, call, contact, region=settings().default_phone_region)
        except ValueError:
            abort(404)
        except ValidationError as error:
            return _link_page(session, call, error=error.message), 400
        return redirect(url_for("telephony.unmatched"))
    return _link_page(session, call)


def _link_page(session: Session, call: Any, error: str = "") -> str:
    search = search_arg().strip()
    contacts: list[Contact] = []
    relations: list[Relation] = []
    if search:
        pattern = f"%{search.lower()}%"
        contacts = list(
            session.scalars(
                select(Contact)
                .join(Relation)
                .where(relation_visible(user()), Contact.name.ilike(pattern))
                .order_by(Contact.name)
                .limit(20)
            )
        )
        relations = list(
            session.scalars(
                select(Relation).where(relation_visible(user()), Relation.search_name.like(pattern)).limit(20)
            )
        )
    return render_template(
        "telephony/link.html", call=call, search=search, contacts=contacts, relations=relations, error=error
    )


@bp.route("/contacts/<int:contact_id>/calls")
@login_required
def contact_calls(contact_id: int) -> Any:
    from hub.crm.relations import get_contact

    session = db_session()
    try:
        contact = get_contact(session, user(), contact_id)
    except NotFound:
        abort(404)
    page, names = calls_page(session, user(), CallFilters(contact_id=contact.id), page=page_arg())
    return render_template(
        "telephony/relation_calls.html", relation=contact.relation, contact=contact, page=page, names=names
    )
