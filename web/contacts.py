"""Contact pages (details, notes and visit reports, e-mails, projects, calls) and filing mail by hand
("Mail → To file": link to a relation or project found by search, new contact from the sender,
undo a link the single-open-project rule made). Thin: each view calls hub services."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy.orm import selectinload
from wtforms import DateField, HiddenField, SelectField, TextAreaField
from wtforms.validators import Optional

from hub.calendar.appointments import contact_appointments
from hub.crm.access import StaleVersion
from hub.crm.contact_notes import (
    NoteInput,
    NotYours,
    contact_notes,
    contact_projects,
    delete_note,
    get_note,
    may_change_note,
    save_note,
)
from hub.crm.projects import projects_query
from hub.crm.relations import ContactInput, get_contact, get_relation, relations_query, save_contact
from hub.errors import NotFound, ValidationError
from hub.mail.filing import contact_emails, file_email, link_reasons, sender_of, to_file, undo_link
from hub.mail.read import get_email, thread_sizes
from hub.models import Contact, ContactNote, ContactNoteKind, Email, Project, Relation
from hub.paging import MAX_ID
from web.context import db_session, settings
from web.forms import show_errors
from web.mail import EMAIL_SORTS
from web.projects import conflict_rows, form_version
from web.relations import ContactForm
from web.security import login_required, user
from web.views import cursor_page, int_arg, lines, list_args, safe_next, search_arg

bp = Blueprint("contacts", __name__)
filing = Blueprint("filing", __name__)

NOTE_KINDS = {ContactNoteKind.note.value: _l("Note"), ContactNoteKind.visit.value: _l("Visit report")}
# How many relations and projects the filing picker offers for one search.
PICKER_ROWS = 20


class NoteForm(FlaskForm):
    kind = SelectField(_l("Kind of note"), choices=list(NOTE_KINDS.items()))
    date = DateField(_l("Date"), validators=[Optional()])
    text = TextAreaField(_l("What was discussed"))
    version = HiddenField()


def _id_or_404(value: int | None) -> int:
    """An id from a URL or form: beyond the database's integer range it names nothing (404, not an
    overflow error from PostgreSQL)."""
    if value is None or not 1 <= value <= MAX_ID:
        abort(404)
    return value


def _contact_or_404(contact_id: int) -> Contact:
    _id_or_404(contact_id)
    try:
        return get_contact(db_session(), user(), contact_id)
    except NotFound:
        abort(404)


def _note_input(form: NoteForm) -> NoteInput:
    return NoteInput(kind=form.kind.data or "", date=form.date.data, text=form.text.data or "")


def _render_contact(contact: Contact, form: NoteForm, status: int = 200) -> Any:
    session = db_session()
    query = contact_emails(user(), contact, search_arg())
    page, _sort = cursor_page(query, EMAIL_SORTS, "-date", "-date")
    return render_template(
        "contacts/show.html",
        contact=contact,
        notes=contact_notes(session, contact),
        form=form,
        kinds=NOTE_KINDS,
        may_change=lambda note: may_change_note(user(), note),
        page=page,
        threads=thread_sizes(session, user(), page.items),
        projects=contact_projects(session, user(), contact),
        appointments=contact_appointments(session, user(), contact.id),
        args=list_args("q"),
    ), status


@bp.route("/contacts/<int:contact_id>")
@login_required
def show(contact_id: int) -> Any:
    contact = _contact_or_404(contact_id)
    form = NoteForm(formdata=None)
    form.date.data = date.today()
    return _render_contact(contact, form)


@bp.route("/contacts/<int:contact_id>/notes", methods=["POST"])
@login_required
def add_note(contact_id: int) -> Any:
    contact = _contact_or_404(contact_id)
    form = NoteForm()
    if form.validate_on_submit():
        try:
            save_note(db_session(), user(), contact, _note_input(form))
        except ValidationError as error:
            show_errors(form, error)
        else:
            flash(_("Note saved."), "success")
            return redirect(url_for("contacts.show", contact_id=contact.id) + "#notes")
    return _render_contact(contact, form, 400)


def _note_or_404(note_id: int) -> ContactNote:
    _id_or_404(note_id)
    try:
        return get_note(db_session(), user(), note_id)
    except NotFound:
        abort(404)


@bp.route("/contacts/notes/<int:note_id>/edit", methods=["GET", "POST"])
@login_required
def edit_note(note_id: int) -> Any:
    note = _note_or_404(note_id)
    contact = _contact_or_404(note.contact_id)
    if not may_change_note(user(), note):
        flash(_("Only the author of a note or an admin can change it."), "error")
        return redirect(url_for("contacts.show", contact_id=contact.id) + "#notes"), 303
    form = NoteForm(obj=note) if request.method == "GET" else NoteForm()
    if request.method == "GET":
        form.version.data = str(note.version)
    conflict = None
    if form.validate_on_submit():
        try:
            save_note(db_session(), user(), contact, _note_input(form), note, expected_version=form_version(form))
        except ValidationError as error:
            show_errors(form, error)
        except StaleVersion as stale:
            theirs = NoteForm(formdata=None, obj=note)
            form.version.data = str(stale.current)
            conflict = conflict_rows(form, theirs)
        else:
            return redirect(url_for("contacts.show", contact_id=contact.id) + "#notes")
    status = (409 if conflict is not None else 400) if request.method == "POST" else 200
    return render_template("contacts/note_form.html", form=form, note=note, contact=contact, conflict=conflict), status


@bp.route("/contacts/notes/<int:note_id>/delete", methods=["POST"])
@login_required
def remove_note(note_id: int) -> Any:
    note = _note_or_404(note_id)
    contact_id = note.contact_id
    try:
        delete_note(db_session(), user(), note, expected_version=int_form("version"))
    except NotYours:
        flash(_("Only the author of a note or an admin can change it."), "error")
    except StaleVersion:
        flash(_("Someone changed this note meanwhile; it was not deleted. Look at it again."), "error")
    return redirect(url_for("contacts.show", contact_id=contact_id) + "#notes")


def int_form(name: str) -> int | None:
    raw = request.form.get(name, "")
    try:
        number = int(raw) if raw else None
    except ValueError:
        return 0  # matches no stored version: refused as stale
    # Nor does one no column could hold (the database could not even compare it: a 500).
    return number if number is None or 0 <= number <= MAX_ID else 0


# --- Mail → To file -------------------------------------------------------------------------------


@filing.route("/mail/to-file")
@login_required
def to_file_list() -> Any:
    query = to_file(user(), search_arg())
    page, _sort = cursor_page(query, EMAIL_SORTS, "-date", "-date")
    return render_template("mail/to_file.html", page=page, args=list_args("q"))


def _picker(search: str) -> tuple[list[Relation], list[Project]]:
    """Relations and projects ``user`` may see whose name matches: the filing picker's rows."""
    if not search.strip():
        return [], []
    session = db_session()
    relations = list(
        session.scalars(relations_query(user(), search).order_by(Relation.search_name, Relation.id).limit(PICKER_ROWS))
    )
    projects = list(
        session.scalars(
            projects_query(user(), search=search)
            .order_by(Project.closed, Project.name, Project.id)
            .limit(PICKER_ROWS)
            .options(selectinload(Project.relation))
        )
    )
    return relations, projects


@filing.route("/mail/to-file/lookup")
@login_required
def lookup() -> Any:
    """JSON for the filing picker: relations and projects the user may see matching ``q``."""
    relations, projects = _picker(search_arg())
    rows = [{"kind": "relation", "id": r.id, "name": r.name, "detail": r.city} for r in relations]
    rows += [{"kind": "project", "id": p.id, "name": p.name, "detail": p.relation.name} for p in projects]
    return jsonify(rows)


def _email_or_404(email_id: int) -> Email:
    _id_or_404(email_id)
    try:
        return get_email(db_session(), user(), email_id)
    except NotFound:
        abort(404)


@filing.route("/mail/to-file/<int:email_id>")
@login_required
def file_page(email_id: int) -> Any:
    """The picker without JavaScript: search, then one button per relation or project found."""
    email = _email_or_404(email_id)
    search = search_arg()
    relations, projects = _picker(search)
    return render_template(
        "contacts/file_email.html",
        email=email,
        search=search,
        relations=relations,
        projects=projects,
        sender=sender_of(email),
        next=safe_next("filing.to_file_list"),
    )


def _posted_id(name: str) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        abort(404)  # not an id any picker gave out: like a missing one
    return _id_or_404(int(raw))


@filing.route("/mail/to-file/<int:email_id>/link", methods=["POST"])
@login_required
def link(email_id: int) -> Any:
    _id_or_404(email_id)
    relation_id, project_id = _posted_id("relation_id"), _posted_id("project_id")
    if relation_id is None and project_id is None:
        abort(404)
    try:
        target = file_email(db_session(), user(), email_id, relation_id=relation_id, project_id=project_id)
    except NotFound:
        abort(404)
    flash(_("E-mail linked to %(name)s.", name=target.name), "success")
    return redirect(safe_next("filing.to_file_list"))


@filing.route("/mail/to-file/<int:email_id>/contact", methods=["GET", "POST"])
@login_required
def new_contact(email_id: int) -> Any:
    """A new contact from the sender on a chosen relation; saving it links the sender's mail."""
    email = _email_or_404(email_id)
    relation_id = _id_or_404(int_arg("relation_id"))
    try:
        relation = get_relation(db_session(), user(), relation_id)
    except NotFound:
        abort(404)
    form = ContactForm()
    if request.method == "GET":
        sender = sender_of(email)
        form.name.data, form.emails.data = sender.name, sender.address
    if form.validate_on_submit():
        data = ContactInput(
            name=form.name.data or "",
            function=form.function.data or "",
            emails=lines(form.emails.data),
            phones=lines(form.phones.data),
        )
        try:
            contact = save_contact(db_session(), relation, data, region=settings().default_phone_region)
        except ValidationError as error:
            show_errors(form, error)
        else:
            flash(
                _(
                    "Contact %(name)s added; their mail now shows on %(relation)s.",
                    name=contact.name,
                    relation=relation.name,
                ),
                "success",
            )
            return redirect(safe_next("filing.to_file_list"))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "contacts/from_sender.html",
        form=form,
        email=email,
        relation=relation,
        next=safe_next("filing.to_file_list"),
    ), status


@filing.route("/emails/<int:email_id>/projects/<int:project_id>/undo", methods=["POST"])
@login_required
def undo(email_id: int, project_id: int) -> Any:
    """One click: off the project a matching rule put it on, and never back there by itself."""
    _id_or_404(email_id)
    _id_or_404(project_id)
    try:
        project = undo_link(db_session(), user(), email_id, project_id)
    except NotFound:
        abort(404)
    flash(_("The e-mail is no longer on %(name)s, and will not be put back there.", name=project.name), "success")
    return redirect(url_for("mail.show", email_id=email_id))


def email_link_reasons(email: Email) -> list[Any]:
    """For the e-mail page (web.mail): why it is on each project the reader may see."""
    return link_reasons(db_session(), user(), email)
