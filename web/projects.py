"""Project pages: the list, the form, and the project page with its tabs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from decimal import Decimal
from typing import Any, cast

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import get_locale, get_timezone, gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from flask_wtf.file import FileField
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape
from sqlalchemy import select
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from hub.accounts.users import active_users, all_groups
from hub.crm.access import StaleVersion, may_manage_project
from hub.crm.activities import ActivityInput, is_overdue, project_activity_rows, save_activity, stranded_activities
from hub.crm.choices import all_choices, field_labels, labels_from
from hub.crm.documents import add_document, delete_document, get_document, human_size, project_documents
from hub.crm.project_tabs import ProjectHeader, project_header
from hub.crm.projects import (
    CHOICE_FIELDS,
    Option,
    ProjectFilters,
    ProjectInput,
    ProjectSheet,
    delete_project,
    filter_options,
    get_project,
    project_sheet,
    save_notepad,
    save_project,
    set_linked,
)
from hub.crm.relations import get_relation, relations_query
from hub.errors import NotFound, ValidationError
from hub.mail.html import attachment_headers, download_type
from hub.models import FREE_TEXT_FIELDS, ChoiceField, Contact, Project, Relation, User
from hub.paging import MAX_ID
from web.context import blobs, db_session, settings
from web.forms import optional_text, show_errors
from web.i18n import link_pattern, moment
from web.lists import day_of, day_of_key, kept_rows, row_link
from web.menu import kept
from web.security import login_required, user
from web.views import cursor_page, int_arg, list_args, page_arg, posted_id, safe_next, search_arg

bp = Blueprint("projects", __name__)


@bp.record_once
def _favicon(state: Any) -> None:
    """Browsers ask for /favicon.ico on their own, whatever a page links: answer with the icon the
    pages link (web/static/favicon.svg), not a 404. A second URL of the public static endpoint."""
    app = state.app
    app.add_url_rule(
        "/favicon.ico", endpoint="static", view_func=app.view_functions["static"], defaults={"filename": "favicon.svg"}
    )


TABS = (
    ("show", _l("Summary")),
    ("notepad", _l("Notepad")),
    ("activities", _l("Activities")),
    ("documents", _l("Documents")),
    ("emails", _l("E-mails")),
    ("calls", _l("Calls")),
    ("agenda", _l("Agenda")),
    ("users", _l("Linked users")),
)
CHOICE_LABELS = {"type": _l("Type"), "status": _l("Status"), "chance": _l("Chance")}


def _tab_links() -> tuple[tuple[str, str, str], ...]:
    """(tab, URL with ``%d`` for the project's id, label in the reader's language) for every tab.
    Built and translated once per language: eight URLs and eight lazy texts were a tenth of a tab's
    rendering (the script root and language are only the key: this request gives them)."""
    return kept(
        "project_tabs",
        (request.script_root, str(get_locale() or "")),
        lambda: tuple((key, link_pattern(f"projects.{key}", "project_id"), str(label)) for key, label in TABS),
    )


class ProjectForm(FlaskForm):
    relation_name = StringField(_l("Relation"))
    relation_id = HiddenField()
    contact_ids = SelectMultipleField(_l("Contacts"), coerce=int)
    one_off_contact_name = StringField(_l("One-off contact: name"), validators=[Length(max=200)])
    one_off_contact_email = StringField(_l("One-off contact: e-mail"), validators=[Length(max=254)])
    one_off_contact_phone = StringField(_l("One-off contact: phone"), validators=[Length(max=40)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"))
    start_date = DateField(_l("Start date"), validators=[Optional()])
    end_date = DateField(_l("End date"), validators=[Optional()])
    end_date_expected = BooleanField(_l("End date is expected"))
    responsible_user_id = SelectField(_l("Responsible"), coerce=optional_text, validate_choice=False)
    type = SelectField(_l("Type"), coerce=optional_text, validate_choice=False)
    status = SelectField(_l("Status"), coerce=optional_text, validate_choice=False)
    chance = SelectField(_l("Chance"), coerce=optional_text, validate_choice=False)
    free_choice_1 = SelectField(coerce=optional_text, validate_choice=False)
    free_choice_2 = SelectField(coerce=optional_text, validate_choice=False)
    free_choice_3 = SelectField(coerce=optional_text, validate_choice=False)
    free_choice_4 = SelectField(coerce=optional_text, validate_choice=False)
    free_choice_5 = SelectField(coerce=optional_text, validate_choice=False)
    free_text_1 = StringField(validators=[Length(max=500)])
    free_text_2 = StringField(validators=[Length(max=500)])
    free_text_3 = StringField(validators=[Length(max=500)])
    free_text_4 = StringField(validators=[Length(max=500)])
    value = StringField(_l("Value"))
    currency = StringField(_l("Currency"), default="EUR", validators=[Length(max=3)])
    closed = BooleanField(_l("Closed"))
    # The version the form was filled from: a save based on an older one is refused (no lost edits).
    version = HiddenField()


class NotepadForm(FlaskForm):
    notepad = TextAreaField(_l("Notepad"))
    version = HiddenField()


class ActivityForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"))
    due_date = DateField(_l("Due date"), validators=[Optional()])
    assigned_user_id = SelectField(_l("Assigned to"), coerce=optional_text, validate_choice=False)


class DocumentForm(FlaskForm):
    file = FileField(_l("File"))


class LinkedForm(FlaskForm):
    user_ids = SelectMultipleField(_l("Users"), coerce=int)
    group_ids = SelectMultipleField(_l("Groups"), coerce=int)


def _user_choices(current: User | None = None) -> list[tuple[str, str]]:
    """Active users, plus a deactivated one the project already has (it stays until changed)."""
    options = [(str(u.id), u.name) for u in active_users(db_session())]
    if current is not None and not current.is_active:
        options.append((str(current.id), gettext("%(name)s (deactivated)", name=current.name)))
    return [("", "—"), *options]


def _prepare_form(form: ProjectForm, project: Project | None, relation_id: int | None) -> dict[str, str]:
    """Fill the dropdowns; returns the free-field labels the company chose."""
    session = db_session()
    labels = field_labels(session)
    choices = all_choices(session)
    for name in CHOICE_FIELDS:
        select_field = getattr(form, name)
        current = getattr(project, f"{name}_id") if project else None
        # Active choices, plus the inactive one a project already has (it stays until changed).
        options = [c for c in choices[ChoiceField(name)] if c.active or c.id == current]
        select_field.choices = [("", "—")] + [(str(c.id), c.name) for c in options]
        select_field.label.text = labels.get(name) or CHOICE_LABELS.get(name, name)
    for name in FREE_TEXT_FIELDS:
        getattr(form, name).label.text = labels[name]
    form.responsible_user_id.choices = _user_choices(project.responsible_user if project else None)
    contacts: list[Contact] = []
    if relation_id is not None:
        try:
            relation = get_relation(session, user(), relation_id)
        except NotFound:
            relation = None
        if relation is not None:
            contacts = list(
                session.scalars(select(Contact).where(Contact.relation_id == relation.id).order_by(Contact.name))
            )
            if not form.relation_name.data:
                form.relation_name.data = relation.name
    form.contact_ids.choices = [(c.id, c.name) for c in contacts]
    return labels


def _fill_from_project(form: ProjectForm, project: Project) -> None:
    form.relation_id.data = str(project.relation_id)
    form.relation_name.data = project.relation.name
    form.contact_ids.data = [c.id for c in project.contacts]
    for name in (
        "one_off_contact_name",
        "one_off_contact_email",
        "one_off_contact_phone",
        "name",
        "description",
        "start_date",
        "end_date",
        "end_date_expected",
        "currency",
        "closed",
        *FREE_TEXT_FIELDS,
    ):
        getattr(form, name).data = getattr(project, name)
    form.responsible_user_id.data = str(project.responsible_user_id or "")
    form.value.data = "" if project.value is None else f"{project.value:.2f}"
    for name in CHOICE_FIELDS:
        getattr(form, name).data = str(getattr(project, f"{name}_id") or "")
    form.version.data = str(project.version)


def form_version(form: FlaskForm) -> int | None:
    """The version a form was filled from (its hidden ``version`` field); None if it has none."""
    raw = form.version.data
    try:
        version = int(raw) if raw else None
    except ValueError:
        return 0  # matches no stored version: refused as stale, never saved blindly
    # Nor does one no column could hold (the database could not even compare it: a 500).
    return version if version is None or 0 <= version <= MAX_ID else 0


def _shown(field: Any, value: Any) -> str:
    """A field's value as the form shows it (the label of a chosen option, not its id)."""
    if value is None or value == "" or value == []:
        return ""
    if isinstance(value, bool):
        return "✓"
    choices = getattr(field, "choices", None)
    if choices:
        labels = {str(key): str(label) for key, label in choices}
        if isinstance(value, list):
            return ", ".join(labels.get(str(v), str(v)) for v in value)
        return labels.get(str(value), str(value))
    return str(value)


def conflict_rows(mine: FlaskForm, theirs: FlaskForm) -> list[tuple[str, str, str]]:
    """(label, what is saved now, what you typed) for every field the two differ in: what a stale
    save shows, so the user sees both versions and decides."""
    rows = []
    for field in mine:
        if field.type in {"HiddenField", "CSRFTokenField", "FileField"}:
            continue
        other = theirs[field.name]
        saved, typed = _shown(field, other.data), _shown(field, field.data)
        if saved != typed:
            rows.append((str(field.label.text), saved, typed))
    return rows


def _int_or_none(value: str | None) -> int | None:
    # Not a choice of anything (-1): the service reports it next to the field.
    return posted_id(value)


def _project_input(form: ProjectForm) -> ProjectInput:
    return ProjectInput(
        relation_id=_int_or_none(form.relation_id.data),
        name=form.name.data or "",
        description=form.description.data or "",
        # An id beyond any row names no contact (-1), as the service then says; the database could
        # not even compare it.
        contact_ids=[i if 1 <= i <= MAX_ID else -1 for i in form.contact_ids.data or []],
        one_off_contact_name=form.one_off_contact_name.data or "",
        one_off_contact_email=form.one_off_contact_email.data or "",
        one_off_contact_phone=form.one_off_contact_phone.data or "",
        start_date=form.start_date.data,
        end_date=form.end_date.data,
        end_date_expected=bool(form.end_date_expected.data),
        responsible_user_id=_int_or_none(form.responsible_user_id.data),
        value=form.value.data or None,
        currency=form.currency.data or "EUR",
        free_texts={name: getattr(form, name).data or "" for name in FREE_TEXT_FIELDS},
        choices={name: _int_or_none(getattr(form, name).data) for name in CHOICE_FIELDS},
        closed=bool(form.closed.data),
    )


def _relation_named(name: str) -> int | None:
    """The one visible relation called exactly ``name`` (the picker typed without JavaScript)."""
    name = name.strip()
    if not name or len(name) > 200:  # no relation's name is longer (the column holds 200)
        return None
    candidates = db_session().scalars(relations_query(user(), name).order_by(Relation.id).limit(20))
    exact = [r.id for r in candidates if r.name.strip().casefold() == name.casefold()]
    return exact[0] if len(exact) == 1 else None


def _save_project_view(project: Project | None) -> Any:
    form = ProjectForm()
    if project is not None and request.method == "GET":
        _fill_from_project(form, project)
    if request.method == "POST" and not form.relation_id.data:
        # Every page works without JavaScript: a typed name that matches one relation is a pick.
        form.relation_id.data = str(_relation_named(form.relation_name.data or "") or "")
    relation_id = _int_or_none(form.relation_id.data) or int_arg("relation_id")
    if project is None and request.method == "GET":
        form.relation_id.data = str(relation_id or "")
        form.responsible_user_id.data = str(user().id)
        form.currency.data = settings().default_currency
    labels = _prepare_form(form, project, relation_id)
    if request.method == "POST":
        # Contacts depend on the relation picked in this very submission.
        form.contact_ids.choices = form.contact_ids.choices or []
        form.contact_ids.pre_validate = lambda _form: None
    conflict: list[tuple[str, str, str]] | None = None
    if form.validate_on_submit():
        try:
            saved = save_project(
                db_session(), user(), _project_input(form), project, expected_version=form_version(form)
            )
        except ValidationError as error:
            show_errors(form, error)
            if "relation_id" in error.errors:
                form.relation_name.errors = [*form.relation_name.errors, error.errors["relation_id"]]
        except StaleVersion as stale:
            assert project is not None
            conflict = _project_conflict(form, project, stale.current)
        else:
            try:
                get_project(db_session(), user(), saved.id)
            except NotFound:
                # Handed to someone else, the project may now be hidden from the user: back to the list.
                return redirect(url_for("projects.index"))
            return redirect(url_for("projects.show", project_id=saved.id))
    status = (409 if conflict is not None else 400) if request.method == "POST" else 200
    return render_template("projects/form.html", form=form, project=project, labels=labels, conflict=conflict), status


def _project_conflict(form: ProjectForm, project: Project, current: int) -> list[tuple[str, str, str]]:
    """Someone saved the project after this form was filled: both versions, side by side. The form
    keeps what the user typed and now carries the current version, so saving again is a choice."""
    theirs = ProjectForm(formdata=None)
    for name, field in theirs._fields.items():
        if hasattr(field, "choices"):
            field.choices = form[name].choices
    _fill_from_project(theirs, project)
    form.version.data = str(current)
    return conflict_rows(form, theirs)


# The list's and the board's filters (a GET form; its values travel in sort, Next and "more" links).
FILTER_ARGS = ("q", "status", "type", "chance", "responsible", "relation", "relation_name", "open")


def _filter_form(default_state: str) -> tuple[Any, dict[str, str], dict[str, Any]]:
    """The filters of this request, checked; the messages for those left out; what the form offers."""
    from hub.crm.projects import read_filters

    session = db_session()
    filters, errors = read_filters(session, user(), request.args.to_dict(), default_state=default_state)
    choices, users = filter_options(session)
    options: dict[str, Any] = {
        name: [c for c in choices[ChoiceField(name)] if c.active or c.id == getattr(filters, f"{name}_id")]
        for name in CHOICE_FIELDS[:3]
    }
    options["users"] = users
    if filters.responsible_user_id and all(u.id != filters.responsible_user_id for u in users):
        # A deactivated user's projects can still be filtered on (and the form shows it so).
        gone = session.get_one(User, filters.responsible_user_id)
        users.append(Option(gone.id, gone.name, gone.is_active))
    # The list shows a row's status and type by these names: no join, no object per row.
    options["choice_names"] = {c.id: c.name for field_choices in choices.values() for c in field_choices}
    return filters, errors, options


_FILTER_FIELDS = tuple(f.name for f in fields(ProjectFilters))
_OPTION_LISTS = ("status", "type", "chance", "users")


@bp.app_template_global("project_filter_form")
@pass_context
def project_filter_form(context: Context) -> Markup:
    """The list's and the board's filter form (projects/_filters.html), rendered once for what it
    shows and kept: it was a fifth of a list page, and is the same on every page of a list. It shows
    the filters (each value the reader gave), their error messages, the dropdowns' options, the
    reader's language, their id (the "My open projects" link) and the page's URL, and is kept under
    exactly those: a choice or user added, renamed or (de)activated is a new key on the next page
    (the options are read on every request anyway), never a stale form."""
    filters: ProjectFilters = context["filters"]
    errors: dict[str, str] = context["filter_errors"]
    options: dict[str, Any] = context["options"]
    key = (
        request.script_root,
        request.endpoint,
        context.get("current_language"),
        current_user.id,
        tuple(getattr(filters, name) for name in _FILTER_FIELDS),
        tuple(errors.items()),
        tuple(tuple(options[name]) for name in _OPTION_LISTS),
    )
    return kept(
        "project_filters",
        key,
        lambda: Markup(
            render_template(
                "projects/_filters.html", filters=filters, filter_errors=errors, options=options, labels=CHOICE_LABELS
            )
        ),
    )


def _user_names(projects: list[Any], users: list[Any]) -> dict[int, str]:
    """The names of the responsible users a page of projects shows: the filter form's active users,
    and in one query those of the page's projects whose responsible user was deactivated."""
    names = {u.id: u.name for u in users}
    missing = {p.responsible_user_id for p in projects if p.responsible_user_id and p.responsible_user_id not in names}
    if missing:
        names.update(db_session().execute(select(User.id, User.name).where(User.id.in_(missing))).tuples().all())
    return names


@bp.app_template_global("project_rows_html")
@pass_context
def project_rows_html(
    context: Context, items: list[Any], choice_names: dict[int, str], user_names: dict[int, str]
) -> Markup:
    """The project list's rows (a list_rows page's plain rows), the HTML the template's loop over
    them gave, byte for byte: as a Jinja loop the 25 rows were a fifth of a list page. Every value
    shown is escaped as the template escaped it (autoescape: markupsafe.escape)."""
    gettext, day = context["_"], day_of(context)  # the rendering's: as {{ _('closed') }} gives it
    closed = f' <span class="badge inactive">{gettext(context, "closed")}</span>'
    expected = f" ({gettext(context, 'expected')})"
    project_href, relation_href = row_link("projects.show", "project_id"), row_link("relations.show", "relation_id")
    # Names of statuses, types and users: the same few on every row, each escaped once (an id of 0
    # or none shows nothing, as the template's ``if p.status_id else ''`` did).
    choices = {key: str(escape(name)) for key, name in choice_names.items() if key}
    users = {key: str(escape(name)) for key, name in user_names.items() if key}
    kept = kept_rows("projects", (day_of_key(context), project_href, relation_href, closed, expected))
    html = []
    for p in items:
        status, kind, responsible = (
            choices.get(p.status_id, ""),
            choices.get(p.type_id, ""),
            users.get(p.responsible_user_id, ""),
        )
        key = (p, status, kind, responsible)
        row = kept.get(key)
        if row is None:
            row = kept[key] = (
                "\n    <tr>\n"
                f'      <td><a href="{project_href % p.id}">{escape(p.name)}</a>{closed if p.closed else ""}</td>\n'
                f'      <td><a href="{relation_href % p.relation_id}">{escape(p.relation_name)}</a></td>\n'
                f"      <td>{status}</td>\n"
                f"      <td>{kind}</td>\n"
                f"      <td>{responsible}</td>\n"
                f"      <td>{escape(day(p.start_date))}</td>\n"
                f"      <td>{escape(day(p.end_date))}{expected if p.end_date and p.end_date_expected else ''}</td>\n"
                f'      <td class="num">{escape(money(p.value, p.currency))}</td>\n'
                f"      <td>{escape(day(p.updated_at))}</td>\n"
                "    </tr>\n  "
            )
        html.append(row)
    return Markup("".join(html))


@bp.route("/")
@bp.route("/projects")
@login_required
def index() -> Any:
    from hub.crm.projects import PROJECT_SORTS

    filters, errors, options = _filter_form("all")
    # A row's columns as plain values, status, type and responsible user shown by name from the
    # choices and users the filter form has just loaded: no object per row and no join for them.
    # An old ?page=N link is read from an OFFSET: the rows before it are walked to be skipped.
    skipping = page_arg() > 1 and not (request.args.get("cursor") or request.args.get("before"))
    query, kept = filters.rows(user(), skipping=skipping, session=db_session())
    page, sort = cursor_page(
        query, PROJECT_SORTS, request.args.get("sort", "-updated"), "-updated", rows=True, kept=kept
    )
    return render_template(
        "projects/index.html",
        page=page,
        user_names=_user_names(page.items, options["users"]),
        choice_names=options["choice_names"],
        sort=sort,
        args=list_args(*FILTER_ARGS, "sort"),
        filters=filters,
        filter_errors=errors,
        options=options,
        labels=CHOICE_LABELS,
    ), 400 if errors else 200


@bp.route("/projects/board")
@login_required
def board() -> Any:
    """The pipeline: a column per status, a card per project; dragging a card changes its status."""
    from hub.crm.projects import BOARD_COLUMN_LIMIT, pipeline_board

    filters, errors, options = _filter_form("open")
    columns = pipeline_board(db_session(), user(), filters)
    return render_template(
        "projects/board.html",
        columns=columns,
        filters=filters,
        filter_errors=errors,
        options=options,
        labels=CHOICE_LABELS,
        args=list_args(*FILTER_ARGS),
        limit=BOARD_COLUMN_LIMIT,
        statuses=[c for c in all_choices(db_session())[ChoiceField.status] if c.active],
    ), 400 if errors else 200


@bp.route("/projects/<int:project_id>/status", methods=["POST"])
@login_required
def change_status(project_id: int) -> Any:
    """A card moved on the board (dragged, or its select and button without JavaScript). The form
    carries the version the board showed: a project changed since is refused, never overwritten."""
    from hub.crm.projects import set_project_status

    wants_json = request.accept_mimetypes.best == "application/json"
    session = db_session()
    project = get_project(session, user(), project_id)  # hidden or missing: 404, alike
    raw_version = request.form.get("version", "")
    version = int(raw_version) if raw_version.isascii() and raw_version.isdigit() and len(raw_version) < 10 else 0
    status_id = _int_or_none(request.form.get("status_id", ""))
    try:
        set_project_status(session, user(), project, status_id, expected_version=version)
    except ValidationError as error:
        message, code = error.message, 400
    except StaleVersion:
        message = gettext(
            "Someone changed this project meanwhile; its card now shows what is saved. Move it again if you still "
            "want to."
        )
        code = 409
    else:
        if wants_json:
            return {"id": project.id, "status_id": project.status_id, "version": project.version}
        return redirect(safe_next("projects.board"))
    if wants_json:
        # Nothing was changed: the project as loaded above is what is stored now.
        return {"error": message, "status_id": project.status_id, "version": project.version}, code
    flash(gettext("%(name)s: %(message)s", name=project.name, message=message), "error")
    return redirect(safe_next("projects.board")), 303


@bp.route("/projects/new", methods=["GET", "POST"])
@login_required
def new() -> Any:
    return _save_project_view(None)


@bp.route("/projects/<int:project_id>/edit", methods=["GET", "POST"])
@login_required
def edit(project_id: int) -> Any:
    return _save_project_view(get_project(db_session(), user(), project_id, full=True))


def _may_manage(project: Project | ProjectSheet | ProjectHeader) -> bool:
    """Who may delete a project or change who sees it: admins and its responsible user."""
    return may_manage_project(user(), project)


def _render_tab(tab: str, project: Project | ProjectSheet | ProjectHeader, **context: Any) -> str:
    return render_template(
        f"projects/{tab}.html",
        project=project,
        tab=tab,
        tabs=_tab_links(),
        can_manage=_may_manage(project),
        **context,
    )


@bp.route("/projects/<int:project_id>")
@login_required
def show(project_id: int) -> Any:
    # The summary shows the project, it changes nothing: its values read plainly, in two queries.
    sheet = project_sheet(db_session(), user(), project_id)
    return _render_tab("show", sheet, labels=labels_from(sheet.stored_labels))


@bp.route("/projects/<int:project_id>/notepad", methods=["GET", "POST"])
@login_required
def notepad(project_id: int) -> Any:
    session = db_session()
    project = get_project(session, user(), project_id)
    form = NotepadForm(notepad=project.notepad, version=str(project.notepad_version))
    if form.validate_on_submit():
        text = form.notepad.data or ""
        if request.form.get("keep") == "both":
            # The user chose to keep the text saved meanwhile and his own: theirs first, then his.
            text = f"{project.notepad.rstrip()}\n\n{text.lstrip()}" if project.notepad.strip() else text
        try:
            save_notepad(session, user(), project, text, expected_version=form_version(form))
        except ValidationError as error:
            show_errors(form, error)
            return _render_tab("notepad", project, form=form), 400
        except StaleVersion as stale:
            # Someone saved the notepad after this editor opened it: nothing is overwritten. Both
            # texts are shown; saving again (replace, or keep both) is based on the version now stored.
            form.version.data = str(stale.current)
            return _render_tab("notepad", project, form=form, conflict=True), 409
        return redirect(url_for("projects.notepad", project_id=project.id))
    return _render_tab("notepad", project, form=form)


# The active users by name, as plain values (hub.accounts.users.active_users' order): the choices of
# the new-activity form's "Assigned to".
_ACTIVE_USERS = select(User.id, User.name).where(User.is_active).order_by(User.name)


def _active_user_choices() -> list[tuple[str, str]]:
    """:func:`_user_choices` without a current user, read as plain values rather than User objects."""
    return [("", "—"), *((str(key), name) for key, name in db_session().connection().execute(_ACTIVE_USERS))]


@bp.app_template_global("new_activity_form")
def new_activity_form(form: ActivityForm | None) -> Markup:
    """The new-activity form (projects/_new_activity.html): ``form`` as sent back, with the user's
    input and errors; or, for a tab just opened (None), the empty form with the reader preselected.
    That one is the same on every project (empty fields, a select of every active user), and was
    half the tab through WTForms' widgets and the field macros: it is rendered once per what it
    shows (the reader's language, the choices, the reader) and kept, around the CSRF token, which
    is this request's own, as its hidden field gave it. A user added, renamed or (de)activated is a
    new key, never a stale form; nothing is validated on a GET, so no form object is needed."""
    if form is not None:
        return Markup(render_template("projects/_new_activity.html", form=form))
    csrf = bool(current_app.config.get("WTF_CSRF_ENABLED", True))
    choices, me = _active_user_choices(), str(user().id)

    def make() -> tuple[str, ...]:
        empty = ActivityForm()
        empty.assigned_user_id.choices = choices
        empty.assigned_user_id.data = me
        html = render_template("projects/_new_activity.html", form=empty)
        # The token this request's form field showed (Flask-WTF keeps one per request): the pieces around it.
        return tuple(html.split(generate_csrf())) if csrf else (html,)

    pieces = kept("new_activity_form", (str(get_locale() or ""), tuple(choices), me, csrf), make)
    return Markup(str(escape(generate_csrf())).join(pieces) if csrf else pieces[0])


@bp.route("/projects/<int:project_id>/activities", methods=["GET", "POST"])
@login_required
def activities(project_id: int) -> Any:
    session = db_session()
    # The header's few values (and the visibility check): an activity needs only the project's id.
    project = project_header(session, user(), project_id)
    form: ActivityForm | None = None  # opened: the kept empty form (new_activity_form)
    status = 200
    if request.method == "POST":
        form = ActivityForm()
        form.assigned_user_id.choices = _active_user_choices()
        if form.validate_on_submit():
            data = ActivityInput(
                title=form.title.data or "",
                description=form.description.data or "",
                due_date=form.due_date.data,
                assigned_user_id=_int_or_none(form.assigned_user_id.data),
            )
            try:
                save_activity(session, user(), project, data)
            except ValidationError as error:
                show_errors(form, error)
            else:
                return redirect(url_for("projects.activities", project_id=project.id))
        status = 400
    items = project_activity_rows(session, project.id)
    return _render_tab(
        "activities",
        project,
        form=form,
        items=items,
        stranded=stranded_activities(session, project) if _may_manage(project) else [],
    ), status


@bp.route("/projects/<int:project_id>/documents", methods=["GET", "POST"])
@login_required
def documents(project_id: int) -> Any:
    session = db_session()
    project = get_project(session, user(), project_id)
    form = DocumentForm()
    status = 200
    if form.validate_on_submit():
        upload = form.file.data
        if upload is None or not upload.filename:
            form.file.errors = [str(_l("Choose a file to upload."))]
            status = 400
        else:
            try:
                add_document(
                    session,
                    blobs(),
                    user(),
                    project,
                    upload.filename,
                    upload.stream,
                    upload.mimetype,
                    settings().upload_max_bytes,
                )
            except ValidationError as error:
                show_errors(form, error)
                status = 400
            else:
                return redirect(url_for("projects.documents", project_id=project.id))
    elif request.method == "POST":
        status = 400
    return _render_tab(
        "documents",
        project,
        form=form,
        items=project_documents(session, project),
        human_size=human_size,
        limit=human_size(settings().upload_max_bytes),
    ), status


@bp.route("/projects/<int:project_id>/documents/<int:document_id>")
@login_required
def download_document(project_id: int, document_id: int) -> Any:
    document = get_document(db_session(), user(), document_id)
    if document.project_id != project_id:
        abort(404)
    # A colleague's upload, served as an e-mail's attachment is: never as a script or style sheet
    # from hub's own address, sandboxed should a browser show it.
    response = send_file(
        blobs().open(document.sha256),
        mimetype=download_type(document.content_type),
        as_attachment=True,
        download_name=document.filename,
        max_age=0,
    )
    response.headers.update(attachment_headers(document.content_type))
    return response


@bp.route("/projects/<int:project_id>/documents/<int:document_id>/delete", methods=["POST"])
@login_required
def remove_document(project_id: int, document_id: int) -> Any:
    document = get_document(db_session(), user(), document_id)
    if document.project_id != project_id:
        abort(404)
    delete_document(db_session(), document)
    return redirect(url_for("projects.documents", project_id=project_id))


@bp.route("/projects/<int:project_id>/emails")
@login_required
def emails(project_id: int) -> Any:
    from hub.mail.read import project_tab_rows, tab_search_params, tab_thread_sizes
    from web.mail import EMAIL_SORTS

    session, me = db_session(), user()
    project = project_header(session, me, project_id)
    # The list's columns as plain values through a kept statement (hub.mail.read.project_tab_rows):
    # the same e-mails, order, pages and cursors as hub.mail.read.tab_emails.
    searched = tab_search_params(search_arg())
    query = project_tab_rows(me, searched=bool(searched))
    params = {"project_id": project.id, **searched}
    page, _sort = cursor_page(query, EMAIL_SORTS, "-date", "-date", rows=True, kept=True, params=params)
    # Each thread's size as the reader may see it (its messages on this project asked the lighter rule).
    threads = tab_thread_sizes(session, me, page.items, project_id=project.id)
    return _render_tab("emails", project, page=page, threads=threads, args=list_args("q"))


@bp.route("/projects/<int:project_id>/calls")
@login_required
def calls(project_id: int) -> Any:
    from hub.telephony.read import project_tab_calls

    session = db_session()
    project = project_header(session, user(), project_id)
    # One query of plain values, names included (what list_calls and call_names gave in up to four).
    page, names = project_tab_calls(session, user(), project.id, page=page_arg())
    return _render_tab("calls", project, page=page, names=names)


@bp.route("/projects/<int:project_id>/agenda")
@login_required
def agenda(project_id: int) -> Any:
    from web.calendar import agenda_context

    project = get_project(db_session(), user(), project_id)
    return _render_tab("agenda", project, **agenda_context(project))


@bp.route("/projects/<int:project_id>/users", methods=["GET", "POST"])
@login_required
def users(project_id: int) -> Any:
    """Who sees the project: everyone who sees it may look; its responsible user and admins change it."""
    session = db_session()
    project = get_project(session, user(), project_id)
    if request.method == "POST" and not _may_manage(project):
        abort(404)
    form = LinkedForm()
    form.user_ids.choices = [(u.id, u.name) for u in active_users(session)]
    form.group_ids.choices = [(g.id, g.name) for g in all_groups(session)]
    if request.method == "GET":
        form.user_ids.data = [u.id for u in project.linked_users]
        form.group_ids.data = [g.id for g in project.linked_groups]
    elif form.validate_on_submit():
        try:
            set_linked(session, project, form.user_ids.data or [], form.group_ids.data or [], by=user())
        except ValidationError as error:
            show_errors(form, error)
        else:
            warn_stranded(stranded_activities(session, project))
            try:
                get_project(session, user(), project.id)
            except NotFound:
                # The user linked others but not themselves: the project is now hidden from them.
                return redirect(url_for("projects.index"))
            return redirect(url_for("projects.users", project_id=project.id))
    status = 400 if request.method == "POST" else 200
    stranded = stranded_activities(session, project) if _may_manage(project) else []
    return _render_tab("users", project, form=form, stranded=stranded), status


def warn_stranded(items: list[Any]) -> None:
    """Tell whoever changed access about open activities whose assignees no longer see the project."""
    for item in items:
        flash(
            gettext(
                "%(name)s can no longer see this project, but the open activity “%(title)s” is assigned to "
                "them: assign it to someone else.",
                name=item.assigned_user.name,
                title=item.title,
            ),
            "warning",
        )


@bp.route("/projects/<int:project_id>/delete", methods=["POST"])
@login_required
def delete(project_id: int) -> Any:
    project = get_project(db_session(), user(), project_id)
    if not _may_manage(project):
        abort(404)
    delete_project(db_session(), project, by=user())
    return redirect(url_for("projects.index"))


@bp.app_errorhandler(413)
def too_large(_error: Exception) -> Any:
    size = human_size
    if request.path.startswith("/api/"):
        message = f"The upload is larger than the limit of {size(settings().upload_max_bytes)}."
        return {"error": {"message": message, "field": "file"}}, 413
    return render_template("errors/413.html", limit=size(settings().upload_max_bytes)), 413


def money(value: Decimal | None, currency: str = "EUR") -> str:
    if value is None:
        return ""
    whole = f"{value:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
    return f"€ {whole}" if currency == "EUR" else f"{currency} {whole}"


@bp.app_template_filter("money")
def _money_filter(value: Decimal | None, currency: str = "EUR") -> str:
    return money(value, currency)


# --- the E-mails, Calls and Activities tabs' rows, rendered in Python ------------------------------
# As Jinja loops (a macro per list, a url_for, a date and a few translations per row) the rows were
# half of such a tab. These give the HTML those loops gave, byte for byte (every value escaped as the
# template's autoescape escaped it, markupsafe.escape; a translation not, as the template's _() gave
# it: tests/integration/test_project_tabs_rendering.py compares them), and keep each rendered row
# under everything it shows (web.lists.kept_rows), as the project list does.


def _tab_page_key() -> tuple[str, Any]:
    """What a moment in a row depends on (web.i18n.moment): the reader's language and zone."""
    return str(get_locale() or "nl"), get_timezone()


def _translated(context: Context) -> Callable[[str], str]:
    gettext = context["_"]
    return lambda text: str(gettext(context, text))


@bp.app_template_global("project_email_rows")
@pass_context
def project_email_rows(context: Context, items: list[Any], threads: dict[str, int]) -> Markup:
    """The E-mails tab's rows (mail/_list.html's loop over a page of hub.mail.read.project_tab_rows)."""
    no_subject = _translated(context)("(no subject)")
    href = row_link("mail.show", "email_id")
    kept = kept_rows("project_emails", (*_tab_page_key(), href, no_subject))
    html = []
    for e in items:
        size = threads.get(e.thread_key, 1)
        key = (e, size)
        row = kept.get(key)
        if row is None:
            row = kept[key] = (
                "\n    <tr>\n"
                f"      <td>{escape(moment(e.sent_at)) if e.sent_at else ''}</td>\n"
                f"      <td>{escape(e.from_name or e.from_address)}</td>\n"
                f'      <td><a href="{href % e.id}">{escape(e.subject) if e.subject else no_subject}</a>'
                f"{' 📎' if e.has_attachments else ''}</td>\n"
                f"      <td>{escape(size)}</td>\n"
                "    </tr>\n  "
            )
        html.append(row)
    return Markup("".join(html))


@bp.app_template_global("project_call_rows")
@pass_context
def project_call_rows(context: Context, items: list[Any], names: dict[str, dict[int, str]]) -> Markup:
    """The Calls tab's rows (telephony/_list.html's loop without its link column, over a page of
    hub.telephony.read.project_tab_calls)."""
    _ = _translated(context)
    directions = {"inbound": _("Inbound"), "outbound": _("Outbound"), "internal": _("Internal")}
    outcomes = {
        "answered": _("Answered"),
        "missed": _("Missed"),
        "busy": _("Busy"),
        "failed": _("Failed"),
        "voicemail": _("Voicemail"),
    }
    in_progress, anonymous, recording = _("In progress"), _("anonymous"), _("Recording")
    href = row_link("relations.show", "relation_id")
    words = (tuple(directions.items()), tuple(outcomes.items()), in_progress, anonymous, recording)
    kept = kept_rows("project_calls", (*_tab_page_key(), href, words))
    contacts, relations = names["contact"], names["relation"]
    html = []
    for c in items:
        contact, relation = contacts.get(c.contact_id, ""), relations.get(c.relation_id, "")
        key = (c, contact, relation)
        row = kept.get(key)
        if row is None:
            direction = directions.get(c.direction) or escape(c.direction)
            number = escape(c.e164) if c.e164 else (escape(c.number) if c.number else anonymous)
            linked = f'<a href="{href % c.relation_id}">{escape(relation)}</a>' if c.relation_id else ""
            duration = escape(f"{c.billsec // 60:d}:{c.billsec % 60:02d}") if c.billsec else ""
            listen = (
                f' <a href="{escape(c.recording_url)}" rel="noopener noreferrer">{recording}</a>'
                # (as telephony/_list.html: a link only to a web page, whatever was stored before)
                if c.recording_url.lower().startswith(("http://", "https://"))
                else ""
            )
            row = kept[key] = (
                f'\n    <tr class="call-{escape(c.outcome)}{" overdue" if c.outcome == "missed" else ""}">\n'
                f"      <td>{escape(moment(c.started_at))}</td>\n"
                f"      <td>{direction}</td>\n"
                f"      <td>{number}</td>\n"
                f"      <td>{escape(contact)}</td>\n"
                f"      <td>{linked}</td>\n"
                f"      <td>{escape(c.user.name) if c.user else escape(c.extension)}</td>\n"
                f"      <td>{outcomes.get(c.outcome, in_progress)}</td>\n"
                f"      <td>{duration}{listen}</td>\n"
                "      \n"
                "    </tr>\n  "
            )
        html.append(row)
    return Markup("".join(html))


# Stands in for an activity's id while the page's "mark done" URL is built (web.i18n.link_pattern's).
_ACTIVITY_HOLE = 918273645


@bp.app_template_global("project_activity_rows")
@pass_context
def project_activity_rows_html(context: Context, items: list[Any], project: Any) -> Markup:
    """The Activities tab's rows (its template's loop over hub.crm.activities.project_activity_rows).
    A row holds the session's CSRF token (its "mark done" form), so what is kept is the row around
    it; whether a row is overdue (today's date) and whether it is the reader's is part of its key."""
    from jinja2.filters import do_truncate

    from web.security import csrf_token

    _ = _translated(context)
    undo, do, late, edit = _("Mark as not done"), _("Mark as done"), _("overdue"), _("Edit")
    # The "mark done" form returns to this page (?next=): its URL built once, the id filled in per row.
    toggle = str(escape(url_for("activities.toggle_done", activity_id=_ACTIVITY_HOLE, next=request.path)))
    toggle = toggle.replace("%", "%%").replace(str(_ACTIVITY_HOLE), "%d", 1)
    edit_href = row_link("activities.edit", "activity_id")
    # Each row kept as the two pieces around the token.
    page_key = (str(get_locale() or "nl"), toggle, edit_href, undo, do, late, edit)
    kept = cast(dict[Any, tuple[str, str]], kept_rows("project_activities", page_key))
    token = str(escape(csrf_token()))
    me, responsible = user().id, project.responsible_user_id
    environment = context.environment
    html = []
    for a in items:
        overdue = is_overdue(a)
        css = "done" if a.done else ("overdue" if overdue and me in (responsible, a.assigned_user_id) else "")
        key = (a, overdue, css)
        around = kept.get(key)
        if around is None:
            note = (
                f'<br><small class="muted">{escape(do_truncate(environment, a.description, 140))}</small>'
                if a.description
                else ""
            )
            box = "☑" if a.done else "☐"
            around = kept[key] = (
                f'\n    \n    <tr class="{css}">\n'
                f'      <td><form method="post" action="{toggle % a.id}">\n'
                '        <input type="hidden" name="csrf_token" value="',
                '">\n'
                f'        <button type="submit" aria-label="{undo if a.done else do}">{box}</button>\n'
                "      </form></td>\n"
                f"      <td>{escape(a.title)}{note}</td>\n"
                f"      <td>{escape(a.assigned_name or '')}</td>\n"
                f'      <td class="due">{escape(a.due_date or "")}{f" · {late}" if overdue else ""}</td>\n'
                f'      <td><a href="{edit_href % a.id}">{edit}</a></td>\n'
                "    </tr>\n  ",
            )
        html.append(around[0])
        html.append(token)
        html.append(around[1])
    return Markup("".join(html))


@bp.app_template_global("project_list_piece")
@pass_context
def project_list_piece(context: Context, template: str) -> Markup:
    """A piece of the project list that shows only what the list is (``template``: its toolbar, its
    column heads with their sort links): rendered once per what it shows, the page's URL and
    arguments (filters and sort), the reader's language, and kept. A score of translations, URLs
    and sort links, as the project filter form is: the same on every page of a list."""
    args: dict[str, Any] = context["args"]
    sort: str = context["sort"]
    key = (
        request.script_root,
        request.endpoint,
        context.get("current_language"),
        template,
        tuple(args.items()),
        sort,
    )
    return kept("project_list_pieces", key, lambda: Markup(render_template(template, args=args, sort=sort)))


@bp.app_template_global("project_tab_top")
@pass_context
def project_tab_top(context: Context) -> Markup:
    """The top of a project's tab (projects/_layout.html's content before its ``tab`` block: name,
    relation, mail token, Edit and Delete, the tabs) in Python, the HTML the layout gave byte for
    byte, for the tabs that list (E-mails, Calls, Activities): as Jinja, with its URLs and a dozen
    translations, it was a tenth of such a tab. Values escaped as the layout's autoescape did,
    translations not, as its _() gave them."""
    project, tab, can_manage = context["project"], context["tab"], context["can_manage"]
    _ = _translated(context)
    url_for_template: Any = current_app.jinja_env.globals["url_for"]  # the templates' one, as the layout's
    closed = f' <span class="badge inactive">{_("closed")}</span>' if project.closed else ""
    delete = ""
    if can_manage:
        from web.security import csrf_token

        delete_href = row_link("projects.delete", "project_id")
        delete = (
            f'\n    <form class="inline" method="post" action="{delete_href % project.id}"'
            f' data-confirm="{_("Delete this project with its activities and documents?")}">\n'
            f'      <input type="hidden" name="csrf_token" value="{escape(csrf_token())}">\n'
            f'      <button type="submit" class="danger">{_("Delete")}</button>\n'
            "    </form>\n    "
        )
    current = 'aria-current="page"'
    token_help = _("Put this in the subject of an e-mail and it lands on this project")
    tabs = "".join(
        f'\n    <a href="{escape(link % project.id)}" {current if key == tab else ""}>{escape(label)}</a>\n  '
        for key, link, label in context["tabs"]
    )
    return Markup(
        '\n<div class="toolbar">\n  <div>\n'
        f"    <h1>{escape(project.name)}{closed}</h1>\n"
        f'    <a href="{row_link("relations.show", "relation_id") % project.relation_id}">'
        f"{escape(project.relation.name)}</a>\n"
        f'    <span class="project-token" title="{token_help}">'
        f'{_("Mail token:")} <code id="project-token">[P-{project.id}]</code>\n'
        f'      <button type="button" class="link-dark" data-copy="project-token" data-done="{_("Copied")}" hidden>'
        f"{_('Copy')}</button></span>\n"
        f'    <script src="{escape(url_for_template("static", filename="filing.js"))}" defer></script>\n'
        "  </div>\n  <div>\n"
        f'    <a class="button" href="{row_link("projects.edit", "project_id") % project.id}">{_("Edit")}</a>\n    '
        f"{delete}\n  </div>\n</div>\n"
        f'<nav class="tabs">\n  {tabs}\n</nav>\n<section class="card">\n'
    )
