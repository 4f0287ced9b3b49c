"""Relations pages: list and search, the relation card, create/edit, contacts, linked users."""

from __future__ import annotations

from typing import Any, cast

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape
from wtforms import HiddenField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from hub.accounts.users import active_users, all_groups
from hub.crm import tags as tag_service
from hub.crm.access import StaleVersion, may_manage_relation
from hub.crm.activities import stranded_activities
from hub.crm.projects import relation_projects
from hub.crm.relations import (
    ContactInput,
    RelationInput,
    RelationSheet,
    ShownContact,
    ShownProject,
    delete_contact,
    delete_relation,
    get_contact,
    get_relation,
    relation_list_rows,
    relation_rows,
    relation_sheet,
    relations_query,
    save_contact,
    save_relation,
    set_relation_linked,
)
from hub.errors import ValidationError
from hub.mail.read import thread_sizes
from hub.models import Contact, Relation, RelationKind, RelationStatus
from hub.paging import MAX_ID
from web.context import db_session, settings
from web.forms import optional_text, show_errors
from web.lists import day_of, day_of_key, kept_rows, row_link
from web.menu import kept as kept_once
from web.projects import conflict_rows, form_version, warn_stranded
from web.security import login_required, user
from web.views import cursor_page, lines, list_args, page_arg, search_arg

bp = Blueprint("relations", __name__)

STATUS_LABELS = {
    "lead": _l("Lead"),
    "prospect": _l("Prospect"),
    "customer": _l("Customer"),
    "inactive": _l("Inactive"),
}
KIND_LABELS = {"company": _l("Company"), "person": _l("Person")}


class RelationForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=list(KIND_LABELS.items()))
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    status = SelectField(_l("Status"), choices=list(STATUS_LABELS.items()))
    street = StringField(_l("Street and number"), validators=[Length(max=200)])
    postcode = StringField(_l("Postcode"), validators=[Length(max=20)])
    city = StringField(_l("City"), validators=[Length(max=100)])
    country = StringField(_l("Country"), default="NL", validators=[Length(max=2)])
    phones = TextAreaField(_l("Phone numbers (one per line)"))
    emails = TextAreaField(_l("E-mail addresses (one per line)"))
    website = StringField(_l("Website"), validators=[Length(max=300)])
    coc_number = StringField(_l("Chamber of Commerce number"), validators=[Length(max=20)])
    vat_number = StringField(_l("VAT number"), validators=[Length(max=20)])
    domain = StringField(_l("Mail domain"), validators=[Length(max=253)])
    owner_id = SelectField(_l("Owner"), coerce=optional_text, validate_choice=False)
    version = HiddenField()


class ContactForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    function = StringField(_l("Function"), validators=[Length(max=200)])
    emails = TextAreaField(_l("E-mail addresses (one per line)"))
    phones = TextAreaField(_l("Phone numbers (one per line)"))
    version = HiddenField()


class LinkedForm(FlaskForm):
    user_ids = SelectMultipleField(_l("Users"), coerce=int)
    group_ids = SelectMultipleField(_l("Groups"), coerce=int)


def _relation_form(relation: Relation | None) -> RelationForm:
    form = RelationForm(obj=relation) if relation and request.method == "GET" else RelationForm()
    form.owner_id.choices = [("", "—")] + [(str(u.id), u.name) for u in active_users(db_session())]
    if relation is not None and request.method == "GET":
        form.kind.data = relation.kind.value
        form.status.data = relation.status.value
        form.owner_id.data = str(relation.owner_id or "")
        form.phones.data = "\n".join(p.number for p in relation.phones)
        form.emails.data = "\n".join(e.address for e in relation.emails)
        form.version.data = str(relation.version)
    elif relation is None and request.method == "GET":
        form.owner_id.data = str(user().id)
    return form


def _relation_input(form: RelationForm) -> RelationInput:
    return RelationInput(
        name=form.name.data or "",
        kind=form.kind.data or RelationKind.company.value,
        status=form.status.data or RelationStatus.lead.value,
        street=form.street.data or "",
        postcode=form.postcode.data or "",
        city=form.city.data or "",
        country=form.country.data or "NL",
        phones=lines(form.phones.data),
        emails=lines(form.emails.data),
        website=form.website.data or "",
        coc_number=form.coc_number.data or "",
        vat_number=form.vat_number.data or "",
        domain=form.domain.data or "",
        owner_id=int(form.owner_id.data) if form.owner_id.data else None,
    )


@bp.app_template_global("relation_rows_html")
@pass_context
def relation_rows_html(context: Context, items: list[Any]) -> Markup:
    """The relation list's rows (a list_rows page's plain rows), the HTML the template's loop over
    them gave, byte for byte, each value escaped as the template escaped it: as a Jinja loop the 25
    rows were a fifth of a list page."""
    day = day_of(context)
    href = row_link("relations.show", "relation_id")
    # The statuses' badges in the reader's language: the same four on every row, made once per language.
    statuses = kept_once(
        "relation_badges",
        context.get("current_language"),
        lambda: {
            key: f'<span class="badge {escape(key)}">{escape(label)}</span>' for key, label in STATUS_LABELS.items()
        },
    )
    kept = kept_rows("relations", (day_of_key(context), href, *statuses.values()))
    html = []
    for r in items:
        row = kept.get(r)
        if row is None:
            row = kept[r] = (
                "\n    <tr>\n"
                f'      <td><a href="{href % r.id}">{escape(r.name)}</a></td>\n'
                f"      <td>{escape(r.city)}</td>\n"
                f"      <td>{statuses[r.status.value]}</td>\n"
                f"      <td>{escape(r.owner_name or '')}</td>\n"
                f"      <td>{escape(day(r.updated_at))}</td>\n"
                "    </tr>\n  "
            )
        html.append(row)
    return Markup("".join(html))


# List pages kept (relation_list_html): some 10 kB each.
KEPT_LISTS = 256


@bp.app_template_global("relation_list_html")
@pass_context
def relation_list_html(context: Context) -> Markup:
    """The relation list's content (relations/_list.html: the toolbar with its filters, the sort
    links, the rows and the pager), rendered once for what it shows and kept: as template it was a
    fifth of the page, and a list's first page is asked again and again. It shows, and is kept
    under: the filters as the reader typed them (the raw query arguments), the tags to filter on,
    the sort and the list's arguments, the page's rows (each row's every value) and cursors, the
    reader's language and zone and the script root. Anything changed is another key, never a
    stale page."""
    page = context["page"]
    args: dict[str, Any] = context["args"]
    tags = context["tags"]
    shown = (request.args.get("q", ""), request.args.get("status"), request.args.get("tag"), context["tag_id"])
    key = (
        request.script_root,
        day_of_key(context),
        shown,
        tuple(tags),
        context["sort"],
        tuple(args.items()),
        tuple(page.items),
        page.next_cursor,
        page.prev_cursor,
    )
    variables = {name: context[name] for name in ("page", "sort", "args", "status_labels", "tags", "tag_id")}
    try:
        return kept_once(
            "relation_lists", key, lambda: Markup(render_template("relations/_list.html", **variables)), KEPT_LISTS
        )
    except TypeError:  # a value that cannot be a key (none today): rendered each time
        return Markup(render_template("relations/_list.html", **variables))


# Relation pages kept (relation_sheet_html); a large one (50 projects, many contacts) is some 50 kB.
KEPT_SHEETS = 128
# Where the reader's CSRF token goes in a kept relation page: markup no escaped value can contain
# (an escaped "<" is "&lt;"), put back with the token on every request.
_TOKEN_MARK = "<hub-csrf-token>"


@bp.app_template_global("relation_sheet_html")
@pass_context
def relation_sheet_html(context: Context) -> Markup:
    """The relation page's content (relations/_sheet.html: the relation, its tags, contacts and
    projects, the links and forms on them), rendered once for what it shows and kept: as template
    it was a quarter of the page, some sixty texts and links. It shows, and is kept under: the rows
    the relation was read from (every value shown: hub.crm.relations.RelationSheet.shown, the
    projects among them those this reader may see), whether the reader may manage it, the tag
    suggestions, the reader's language and zone and the script root; the reader's CSRF token is put
    in on every request. After a refused tag (g.tag_input: what was typed and why) it is rendered
    as it is."""
    sheet: RelationSheet = context["relation"]
    suggestions = context["tag_suggestions"]()
    variables = {
        name: context[name] for name in ("relation", "contacts", "projects", "status_labels", "kind_labels", "can_link")
    }
    variables["tag_suggestions"] = lambda: suggestions
    if "tag_input" in g or not sheet.shown:
        return Markup(render_template("relations/_sheet.html", **variables))
    key = (request.script_root, day_of_key(context), sheet.shown, context["can_link"], tuple(suggestions))
    try:
        html = kept_once(
            "relation_sheets",
            key,
            lambda: render_template("relations/_sheet.html", **variables, csrf_token=lambda: Markup(_TOKEN_MARK)),
            KEPT_SHEETS,
        )
    except TypeError:  # a value that cannot be a key (none today): rendered each time
        return Markup(render_template("relations/_sheet.html", **variables))
    return Markup(html.replace(_TOKEN_MARK, str(escape(context["csrf_token"]()))))


@bp.app_template_global("relation_contact_rows_html")
@pass_context
def contact_rows_html(
    context: Context, contacts: list[ShownContact], edit_word: str, confirm: str, delete_word: str
) -> Markup:
    """The relation page's contact rows, the HTML the template's loop over them gave, byte for byte,
    each value escaped as the template escaped it: as a Jinja loop (three links, three words and a
    form each) they were the page's largest part. The words come translated from the template
    (where the catalogue's extraction finds them), as its ``_()`` gives them."""
    token = escape(context["csrf_token"]())
    show_href = row_link("contacts.show", "contact_id")
    edit_href = row_link("relations.edit_contact", "contact_id")
    remove_href = row_link("relations.remove_contact", "contact_id")
    html = []
    for c in contacts:
        tags = "".join(f' <span class="badge tag">{escape(t.name)}</span>' for t in c.tags)
        emails = "<br>".join(f'<a href="mailto:{escape(e.address)}">{escape(e.address)}</a>' for e in c.emails)
        phones = "<br>".join(str(escape(p.number)) for p in c.phones)
        html.append(
            "\n      <tr>\n"
            f'        <td><a href="{show_href % c.id}">{escape(c.name)}</a>{tags}</td><td>{escape(c.function)}</td>\n'
            f"        <td>{emails}</td>\n"
            f"        <td>{phones}</td>\n"
            f'        <td><a href="{edit_href % c.id}">{edit_word}</a>\n'
            f'          <form class="inline" method="post" action="{remove_href % c.id}" data-confirm="{confirm}">\n'
            f'            <input type="hidden" name="csrf_token" value="{token}"><button type="submit" class="danger">'
            f"{delete_word}</button>\n"
            "          </form></td>\n"
            "      </tr>\n    "
        )
    return Markup("".join(html))


@bp.app_template_global("relation_project_rows_html")
@pass_context
def project_rows_html(context: Context, items: list[ShownProject]) -> Markup:
    """The relation page's project rows (at most 50), as the template's loop gave them, byte for
    byte; kept per what a row shows (see web.lists.kept_rows): the same rows on every visit."""
    day = day_of(context)
    href = row_link("projects.show", "project_id")
    kept = kept_rows("relation_projects", (day_of_key(context), href))
    html = []
    for p in items:
        row = kept.get(p)
        if row is None:
            status = escape(p.status.name) if p.status else ""
            responsible = escape(p.responsible_user.name) if p.responsible_user else ""
            row = kept[p] = (
                f'\n      <tr><td><a href="{href % p.id}">{escape(p.name)}</a></td><td>{status}</td>\n'
                f"      <td>{responsible}</td><td>{escape(day(p.end_date))}</td></tr>\n    "
            )
        html.append(row)
    return Markup("".join(html))


@bp.route("/relations")
@login_required
def index() -> Any:
    from hub.crm.relations import RELATION_SORTS

    search, status = search_arg(), request.args.get("status", "")
    # ?tag=<id>: only relations with that tag (a tag that does not exist: an empty list).
    tag_id = request.args.get("tag", type=int)
    sort_arg = request.args.get("sort", "name")
    # A row's columns and its owner's name as plain values: no Relation or User object per row.
    if tag_id is None:
        # The statement is kept (the searched text bound when it runs): see relation_list_rows.
        query, values = relation_list_rows(user(), search, status)
        page, sort = cursor_page(query, RELATION_SORTS, sort_arg, "name", rows=True, kept=True, params=values)
    else:
        query = relations_query(user(), search, status)
        query = query.where(tag_service.relation_has_any([tag_id] if 0 < tag_id <= MAX_ID else []))
        page, sort = cursor_page(relation_rows(query), RELATION_SORTS, sort_arg, "name", rows=True)
    return render_template(
        "relations/index.html",
        page=page,
        sort=sort,
        args=list_args("q", "status", "sort", "tag"),
        status_labels=STATUS_LABELS,
        tags=tag_service.tag_options(db_session()),
        tag_id=tag_id,
    )


@bp.route("/relations/lookup")
@login_required
def lookup() -> Any:
    """JSON for the relation picker on the project form: visible relations matching ``q``."""
    query = relations_query(user(), search_arg()).order_by(Relation.search_name, Relation.id).limit(20)
    rows = db_session().scalars(query)
    return jsonify([{"id": r.id, "name": r.name, "city": r.city} for r in rows])


def _save_relation_view(relation: Relation | None) -> Any:
    form = _relation_form(relation)
    conflict = None
    if form.validate_on_submit():
        try:
            saved = save_relation(
                db_session(),
                _relation_input(form),
                relation,
                region=settings().default_phone_region,
                by=user(),
                expected_version=form_version(form),
            )
        except ValidationError as error:
            show_errors(form, error)
        except StaleVersion as stale:
            assert relation is not None
            theirs = _filled(RelationForm(formdata=None), form, relation)
            form.version.data = str(stale.current)
            conflict = conflict_rows(form, theirs)
        else:
            return redirect(url_for("relations.show", relation_id=saved.id))
    status = (409 if conflict is not None else 400) if request.method == "POST" else 200
    return render_template("relations/form.html", form=form, relation=relation, conflict=conflict), status


def _filled(theirs: Any, mine: Any, obj: Relation | Contact) -> Any:
    """``theirs`` filled from what is stored for ``obj`` (with ``mine``'s dropdown options), to show next
    to what the user typed when a save was refused as stale."""
    theirs.process(obj=obj)
    for name, field in theirs._fields.items():
        if hasattr(field, "choices"):
            field.choices = mine[name].choices
    if isinstance(obj, Relation):
        theirs.kind.data, theirs.status.data = obj.kind.value, obj.status.value
        theirs.owner_id.data = str(obj.owner_id or "")
    theirs.phones.data = "\n".join(p.number for p in obj.phones)
    theirs.emails.data = "\n".join(e.address for e in obj.emails)
    return theirs


@bp.route("/relations/new", methods=["GET", "POST"])
@login_required
def new() -> Any:
    return _save_relation_view(None)


@bp.route("/relations/<int:relation_id>/edit", methods=["GET", "POST"])
@login_required
def edit(relation_id: int) -> Any:
    return _save_relation_view(get_relation(db_session(), user(), relation_id))


@bp.route("/relations/<int:relation_id>")
@login_required
def show(relation_id: int) -> Any:
    # The page shows the relation, it changes nothing: its values read plainly, in two queries.
    sheet = relation_sheet(db_session(), user(), relation_id)
    return render_template(
        "relations/show.html",
        relation=sheet,
        contacts=sheet.contacts,
        projects=sheet.projects,
        status_labels=STATUS_LABELS,
        kind_labels=KIND_LABELS,
        can_link=_may_manage(sheet),
        # The tag box's suggestions (tags/_box.html calls tag_suggestions()) as (id, name) rows, the
        # same tags in the same order: it shows only their names, and a Tag object each cost a tenth
        # of the page.
        tag_suggestions=_tag_names,
    )


def _tag_names() -> list[Any]:
    return tag_service.tag_options(db_session())


def _may_manage(relation: Relation | RelationSheet) -> bool:
    """Who may delete a relation, give it another owner or change who sees it: its owner and admins."""
    # The rule reads only the owner's id, which the sheet has as the Relation does.
    return may_manage_relation(user(), cast(Relation, relation))


@bp.route("/relations/<int:relation_id>/delete", methods=["POST"])
@login_required
def delete(relation_id: int) -> Any:
    relation = get_relation(db_session(), user(), relation_id)
    if not _may_manage(relation):
        abort(404)
    try:
        delete_relation(db_session(), relation, by=user())
    except ValidationError as error:
        flash(error.message, "error")
        return redirect(url_for("relations.show", relation_id=relation_id))
    return redirect(url_for("relations.index"))


@bp.route("/relations/<int:relation_id>/users", methods=["GET", "POST"])
@login_required
def linked(relation_id: int) -> Any:
    session = db_session()
    relation = get_relation(session, user(), relation_id)
    if not _may_manage(relation):
        abort(404)
    form = LinkedForm()
    form.user_ids.choices = [(u.id, u.name) for u in active_users(session)]
    form.group_ids.choices = [(g.id, g.name) for g in all_groups(session)]
    if request.method == "GET":
        form.user_ids.data = [u.id for u in relation.linked_users]
        form.group_ids.data = [g.id for g in relation.linked_groups]
    elif form.validate_on_submit():
        try:
            set_relation_linked(session, relation, form.user_ids.data or [], form.group_ids.data or [], by=user())
        except ValidationError as error:
            show_errors(form, error)
        else:
            for project in relation_projects(session, relation):
                warn_stranded(stranded_activities(session, project))
            return redirect(url_for("relations.show", relation_id=relation.id))
    status = 400 if request.method == "POST" else 200
    return render_template("relations/linked.html", form=form, relation=relation), status


def _save_contact_view(relation: Relation, contact: Contact | None) -> Any:
    form = ContactForm(obj=contact) if contact and request.method == "GET" else ContactForm()
    if contact is not None and request.method == "GET":
        form.emails.data = "\n".join(e.address for e in contact.emails)
        form.phones.data = "\n".join(p.number for p in contact.phones)
        form.version.data = str(contact.version)
    conflict = None
    if form.validate_on_submit():
        data = ContactInput(
            name=form.name.data or "",
            function=form.function.data or "",
            emails=lines(form.emails.data),
            phones=lines(form.phones.data),
        )
        try:
            save_contact(
                db_session(),
                relation,
                data,
                contact,
                region=settings().default_phone_region,
                expected_version=form_version(form),
            )
        except ValidationError as error:
            show_errors(form, error)
        except StaleVersion as stale:
            assert contact is not None
            theirs = _filled(ContactForm(formdata=None), form, contact)
            form.version.data = str(stale.current)
            conflict = conflict_rows(form, theirs)
        else:
            return redirect(url_for("relations.show", relation_id=relation.id))
    status = (409 if conflict is not None else 400) if request.method == "POST" else 200
    return render_template(
        "relations/contact_form.html", form=form, relation=relation, contact=contact, conflict=conflict
    ), status


@bp.route("/relations/<int:relation_id>/contacts/new", methods=["GET", "POST"])
@login_required
def new_contact(relation_id: int) -> Any:
    return _save_contact_view(get_relation(db_session(), user(), relation_id), None)


@bp.route("/contacts/<int:contact_id>/edit", methods=["GET", "POST"])
@login_required
def edit_contact(contact_id: int) -> Any:
    contact = get_contact(db_session(), user(), contact_id)
    return _save_contact_view(contact.relation, contact)


@bp.route("/contacts/<int:contact_id>/delete", methods=["POST"])
@login_required
def remove_contact(contact_id: int) -> Any:
    contact = get_contact(db_session(), user(), contact_id)
    relation_id = contact.relation_id
    delete_contact(db_session(), contact)
    return redirect(url_for("relations.show", relation_id=relation_id))


@bp.route("/relations/<int:relation_id>/emails")
@login_required
def emails(relation_id: int) -> Any:
    session = db_session()
    relation = get_relation(session, user(), relation_id)
    from web.mail import email_tab_page

    page = email_tab_page(user(), relation=relation, search=search_arg())
    return render_template(
        "relations/emails.html",
        relation=relation,
        page=page,
        threads=thread_sizes(session, user(), page.items),
        args=list_args("q"),
    )


@bp.route("/relations/<int:relation_id>/calls")
@login_required
def calls(relation_id: int) -> Any:
    from hub.telephony.read import CallFilters, call_names, list_calls

    session = db_session()
    relation = get_relation(session, user(), relation_id)
    page = list_calls(session, user(), CallFilters(relation_id=relation.id), page=page_arg())
    return render_template(
        "telephony/relation_calls.html", relation=relation, page=page, names=call_names(session, page.items)
    )
