"""API endpoints: thin, each declared with its models (web/api/schemas.py), calls one hub service.

A view's docstring is its summary in the OpenAPI document; its models are its parameters, body and
responses there. Nothing about an endpoint is written anywhere else.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import current_app, g, request, send_file
from pydantic import BaseModel
from spectree import Response
from sqlalchemy import func, select

from hub.accounts.users import user_list_rows
from hub.crm import activities as activity_service
from hub.crm import choices as choice_service
from hub.crm import documents as document_service
from hub.crm import projects as project_service
from hub.crm import relations as relation_service
from hub.crm import tags as tag_service
from hub.crm.access import StaleVersion, may_manage_project, may_manage_relation
from hub.crm.activities import ActivityInput
from hub.crm.projects import CHOICE_FIELDS, PROJECT_SORTS, ProjectInput
from hub.crm.relations import RELATION_SORTS, ContactInput, RelationInput
from hub.errors import NotFound
from hub.i18n import _
from hub.mail.html import attachment_headers, download_type
from hub.models import FREE_TEXT_FIELDS, Choice, ChoiceField, Contact, Project, Relation, User
from hub.paging import BadCursor, KeysetPage, Sort, keyset_page
from web.api import bp, schemas, spec
from web.api.errors import ADMIN_ONLY, LOADERS, ApiError, error_body, not_found
from web.context import blobs, database, db_session, installation, settings

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


def me() -> User:
    return cast(User, g.api_user)


def declare(
    *,
    ok: int = 200,
    out: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    form: type[BaseModel] | None = None,
    admin: bool = False,
    errors: tuple[int, ...] = (400, 401, 404),
    raw: bool = False,
    security: list[dict[str, list[str]]] | None = None,
) -> Callable[[F], F]:
    """Declare an endpoint: its models validate the request and the response and make its OpenAPI
    operation (named after the view; the docstring's first line is its summary). ``raw``: the view
    streams a file, which spectree must not read to check it. ``security``: the operation's own
    schemes (any one of them), instead of the bearer token."""

    def decorate(view: F) -> F:
        responses: dict[str, Any] = {f"HTTP_{code}": schemas.Error for code in errors}
        responses[f"HTTP_{ok}"] = out
        if admin:
            ADMIN_ONLY.add(f"api.{view.__name__}")
        validated = spec.validate(
            query=query,
            json=body,
            form=form,
            resp=Response(**responses),
            operation_id=view.__name__,
            security=security,
        )(view)
        if raw:
            # spectree reads every response body to check it, which a streamed file cannot give; the
            # route serves the view itself and keeps the declaration (found through __wrapped__).
            @functools.wraps(view)
            def streaming(*args: Any, **kwargs: Any) -> Any:
                return view(*args, **kwargs)

            streaming.__wrapped__ = validated
            return cast(F, streaming)
        return cast(F, validated)

    return decorate


# --- versions: ETag on reading one object, If-Match on changing it ---------------------------------

# Endpoints that change or delete one object: they honour If-Match and may answer 412.
VERSIONED_ERRORS = (400, 401, 404, 412)


def etag(version: int) -> None:
    """Send ``version`` as the response's ETag (set by :func:`_send_etag` on a success)."""
    g.etag = f'"{version}"'


def if_match(current: int) -> int | None:
    """The version a change is based on, from If-Match: None without the header (or with *).

    An If-Match that names another version than ``current`` is a 412: someone changed the object
    since the client read it, and applying the change would silently undo theirs.
    """
    if "If-Match" not in request.headers or request.if_match.star_tag:
        return None
    if request.if_match.contains(str(current)):
        return current
    raise ApiError(412, _("This was changed after you read it (If-Match): read it again and redo your change."))


@bp.after_request
def _send_etag(response: Any) -> Any:
    if "etag" in g and response.status_code < 300:
        response.headers["ETag"] = g.etag
    return response


@bp.errorhandler(StaleVersion)
def _stale(_error: StaleVersion) -> Any:
    # Someone saved between this request's If-Match check and its write: the same answer.
    return error_body(_("This was changed after you read it (If-Match): read it again and redo your change.")), 412


def valid_query(model: type[M]) -> M:
    return cast(M, request.context.query)  # type: ignore[attr-defined]


def sent() -> dict[str, Any]:
    """The body's keys that were sent (PATCH changes only these), as typed by the declared model."""
    model = cast(BaseModel, request.context.json)  # type: ignore[attr-defined]
    return {name: getattr(model, name) for name in model.model_fields_set}


def path_object(name: str) -> Any:
    return g.path_objects[name]


def _page(page: KeysetPage[Any], model: type[M], q: schemas.ListQuery) -> M:
    # Items are objects or a list's plain rows (named tuples): the models read both by attribute.
    return model.model_validate(
        {
            "items": page.items,
            "next": page.next_cursor,
            "total": page.total,
            "per_page": q.per_page,
            "page": q.page,
            "has_next": page.next_cursor is not None,
        }
    )


def _keyset(
    query: Any,
    sorts: dict[str, Sort],
    sort: str,
    q: schemas.ListQuery,
    *,
    rows: bool = False,
    kept: bool = False,
    params: dict[str, Any] | None = None,
) -> KeysetPage[Any]:
    key = sort.lstrip("-")
    base = sorts[key]
    chosen = Sort(base.column, base.id_column, base.value_of, descending=sort.startswith("-"))
    try:
        return keyset_page(
            db_session(),
            query,
            sort_name=sort,
            sort=chosen,
            cursor=q.cursor,
            per_page=q.per_page,
            with_total=q.total,
            offset=(q.page - 1) * q.per_page if q.page and not q.cursor else 0,
            rows=rows,
            kept=kept,
            params=params,
        )
    except BadCursor:
        raise ApiError(400, _("cursor is not a cursor this list gave out (with this sort)."), "cursor") from None


def _empty(model: type[M], q: schemas.ListQuery) -> M:
    """An empty list: what a filter on an object the user may not see gives, exactly like no match."""
    empty: dict[str, Any] = {
        "items": [],
        "next": None,
        "total": 0 if q.total else None,
        "per_page": q.per_page,
        "has_next": False,
    }
    return model.model_validate({**empty, "page": q.page})


# --- the objects URLs name: loaded (and the visibility rule applied) before the body is read -----


def _load_mailbox(mailbox_id: int) -> Any:
    from hub.mail.mailboxes import get_mailbox

    box = get_mailbox(db_session(), mailbox_id)
    if not (me().is_admin or box.owner_id == me().id):
        raise not_found()
    return box


def _load_project(project_id: int) -> Any:
    # Reading one project answers from its plain values (two queries instead of six); what may
    # change a project loads the Project itself.
    if request.endpoint == "api.get_project":
        return project_service.project_sheet(db_session(), me(), project_id)
    return project_service.get_project(db_session(), me(), project_id, full=True)


def _load_relation(relation_id: int) -> Any:
    # Reading one relation answers from its plain values (two queries, no Relation object); what
    # may change a relation loads the Relation itself.
    if request.endpoint == "api.get_relation":
        return relation_service.relation_sheet(db_session(), me(), relation_id, page=False)
    return relation_service.get_relation(db_session(), me(), relation_id)


def _load_email(email_id: int) -> Any:
    from hub.mail.read import get_email

    return get_email(db_session(), me(), email_id)


LOADERS.update(
    {
        "relation_id": _load_relation,
        "contact_id": lambda i: relation_service.get_contact(db_session(), me(), i),
        # Loaded with what its summary shows: most project endpoints answer with it, and loading
        # it twice (once to say 404, once to answer) was half the cost of GET /projects/{id}.
        "project_id": _load_project,
        "activity_id": lambda i: activity_service.get_activity(db_session(), me(), i),
        "document_id": lambda i: document_service.get_document(db_session(), me(), i),
        "choice_id": lambda i: choice_service.get_choice(db_session(), i),
        "email_id": _load_email,
        "mailbox_id": _load_mailbox,
    }
)


# --- the document --------------------------------------------------------------------------------


@bp.get("/openapi.json")
@bp.get("/docs")
def openapi() -> Any:
    """This document (/openapi.json), or it to read and try out in a browser (/docs)."""
    from web.api.document import document
    from web.apidocs import docs_page

    if request.path.endswith("/docs"):
        return docs_page()
    return current_app.json.response(document())


# --- users ---------------------------------------------------------------------------------------


@bp.get("/users")
@declare(out=schemas.UserPage, query=schemas.UserQuery)
def list_users() -> Any:
    """Staff accounts, by name: resolves responsible_user_id, owner_id, assigned_user_id"""
    q = valid_query(schemas.UserQuery)
    # Plain rows through a kept statement: no User object per row, no statement built per request.
    page = _keyset(user_list_rows(q.active), _USER_SORTS, "name", q, rows=True, kept=True)
    return _page(page, schemas.UserPage, q)


_USER_SORTS = {"name": Sort(User.name, User.id, lambda u: u.name)}


@bp.get("/me")
@declare(out=schemas.Me, errors=(401,))
def get_me() -> Any:
    """The user the token belongs to"""
    return schemas.Me.model_validate(me())


# --- relations -----------------------------------------------------------------------------------


def _relation_input(data: dict[str, Any], current: Relation | None = None) -> RelationInput:
    # A new relation is owned by whoever creates it unless the body says otherwise (as on the page).
    base = RelationInput(name="", owner_id=me().id)
    if current is not None:
        base = RelationInput(
            name=current.name,
            kind=current.kind.value,
            street=current.street,
            postcode=current.postcode,
            city=current.city,
            country=current.country,
            phones=[p.number for p in current.phones],
            emails=[e.address for e in current.emails],
            website=current.website,
            coc_number=current.coc_number,
            vat_number=current.vat_number,
            status=current.status.value,
            owner_id=current.owner_id,
            domain=current.domain,
        )
    for name, value in data.items():
        setattr(base, name, getattr(value, "value", value))
    return base


@bp.get("/relations")
@declare(out=schemas.RelationPage, query=schemas.RelationQuery)
def list_relations() -> Any:
    """Relations you may see"""
    q = valid_query(schemas.RelationQuery)
    # A summary's columns as plain rows through a kept statement, the filters' values bound: no
    # Relation object per row and no statement built per request (as GET /projects).
    query, values = relation_service.relation_api_rows(
        me(),
        search=q.q,
        status=q.status.value if q.status else "",
        owner_id=q.owner_id,
        city=q.city,
        updated_since=q.updated_since,
        tag_ids=_tag_ids(q.tag) if q.tag is not None else None,
    )
    page = _keyset(query, RELATION_SORTS, q.sort, q, rows=True, kept=True, params=values)
    return _page(page, schemas.RelationPage, q)


@bp.post("/relations")
@declare(ok=201, out=schemas.Relation, body=schemas.RelationCreate, errors=(400, 401))
def create_relation() -> Any:
    """Create a relation (you are its owner unless owner_id says otherwise)"""
    created = relation_service.save_relation(
        db_session(), _relation_input(sent()), region=settings().default_phone_region
    )
    return schemas.Relation.model_validate(created), 201


@bp.get("/relations/<int:relation_id>")
@declare(out=schemas.Relation)
def get_relation(relation_id: int) -> Any:
    """One relation; its ETag is its version (send it as If-Match when changing it)"""
    relation = path_object("relation_id")
    etag(relation.version)
    return schemas.Relation.model_validate(relation)


def _managed_relation() -> Relation:
    """The relation if the user may delete it or set who sees it: its owner or an admin (as the pages)."""
    relation = cast(Relation, path_object("relation_id"))
    if not may_manage_relation(me(), relation):
        raise not_found()
    return relation


@bp.patch("/relations/<int:relation_id>")
@declare(out=schemas.Relation, body=schemas.RelationPatch, errors=VERSIONED_ERRORS)
def update_relation(relation_id: int) -> Any:
    """Change a relation; only the given keys

    owner_id changes only by its owner or an admin. If-Match: the relation's ETag.
    """
    relation = path_object("relation_id")
    changed = relation_service.save_relation(
        db_session(),
        _relation_input(sent(), relation),
        relation,
        region=settings().default_phone_region,
        by=me(),
        expected_version=if_match(relation.version),
    )
    db_session().refresh(changed)
    etag(changed.version)
    return schemas.Relation.model_validate(changed)


@bp.delete("/relations/<int:relation_id>")
@declare(ok=204, errors=VERSIONED_ERRORS)
def delete_relation(relation_id: int) -> Any:
    """Delete a relation without projects (its owner or an admin). If-Match: its ETag"""
    relation = _managed_relation()
    relation_service.delete_relation(db_session(), relation, by=me(), expected_version=if_match(relation.version))
    return "", 204


@bp.put("/relations/<int:relation_id>/linked")
@declare(out=schemas.LinkedOut, body=schemas.Linked, errors=VERSIONED_ERRORS)
def put_relation_linked(relation_id: int) -> Any:
    """Set who sees the relation and so its projects, contacts and mail (its owner or an admin)

    Nobody linked: all staff. If-Match: the relation's ETag.
    """
    relation = _managed_relation()
    data = sent()
    relation_service.set_relation_linked(
        db_session(),
        relation,
        data.get("user_ids", []),
        data.get("group_ids", []),
        by=me(),
        expected_version=if_match(relation.version),
    )
    etag(relation.version)
    return schemas.LinkedOut.model_validate(relation)


# --- contacts ------------------------------------------------------------------------------------


def _contact_input(data: dict[str, Any], current: Contact | None = None) -> ContactInput:
    base = ContactInput(name="")
    if current is not None:
        base = ContactInput(
            name=current.name,
            function=current.function,
            emails=[e.address for e in current.emails],
            phones=[p.number for p in current.phones],
        )
    for name, value in data.items():
        setattr(base, name, value)
    return base


@bp.get("/relations/<int:relation_id>/contacts")
@declare(out=schemas.Contacts)
def list_contacts(relation_id: int) -> Any:
    """The relation's contacts"""
    contacts = relation_service.relation_contacts(db_session(), path_object("relation_id"))
    tag_service.preload_contact_tags(db_session(), contacts)
    return schemas.Contacts.model_validate({"items": contacts})


@bp.post("/relations/<int:relation_id>/contacts")
@declare(ok=201, out=schemas.Contact, body=schemas.ContactFields)
def create_contact(relation_id: int) -> Any:
    """Add a contact to the relation"""
    contact = relation_service.save_contact(
        db_session(), path_object("relation_id"), _contact_input(sent()), region=settings().default_phone_region
    )
    return schemas.Contact.model_validate(contact), 201


@bp.get("/contacts/<int:contact_id>")
@declare(out=schemas.Contact)
def get_contact(contact_id: int) -> Any:
    """One contact; its ETag is its version"""
    contact = path_object("contact_id")
    etag(contact.version)
    return schemas.Contact.model_validate(contact)


@bp.patch("/contacts/<int:contact_id>")
@declare(out=schemas.Contact, body=schemas.ContactPatch, errors=VERSIONED_ERRORS)
def update_contact(contact_id: int) -> Any:
    """Change a contact; only the given keys. If-Match: its ETag"""
    contact = path_object("contact_id")
    changed = relation_service.save_contact(
        db_session(),
        contact.relation,
        _contact_input(sent(), contact),
        contact,
        region=settings().default_phone_region,
        expected_version=if_match(contact.version),
    )
    etag(changed.version)
    return schemas.Contact.model_validate(changed)


@bp.delete("/contacts/<int:contact_id>")
@declare(ok=204, errors=VERSIONED_ERRORS)
def delete_contact(contact_id: int) -> Any:
    """Delete a contact. If-Match: its ETag"""
    contact = path_object("contact_id")
    relation_service.delete_contact(db_session(), contact, expected_version=if_match(contact.version))
    return "", 204


@bp.get("/contacts/<int:contact_id>/notes")
@declare(out=schemas.ContactNotes)
def list_contact_notes(contact_id: int) -> Any:
    """The contact's notes and visit reports, newest first"""
    from hub.crm.contact_notes import contact_notes

    return schemas.ContactNotes.model_validate({"items": contact_notes(db_session(), path_object("contact_id"))})


@bp.post("/contacts/<int:contact_id>/notes")
@declare(ok=201, out=schemas.ContactNote, body=schemas.ContactNoteFields)
def create_contact_note(contact_id: int) -> Any:
    """Add a note or visit report to the contact (you are its author)"""
    from hub.crm.contact_notes import NoteInput, save_note

    fields = sent()
    data = NoteInput(kind=fields.get("kind", "note"), date=fields.get("date"), text=fields.get("text", ""))
    note = save_note(db_session(), me(), path_object("contact_id"), data)
    return schemas.ContactNote.model_validate(note), 201


# --- projects ------------------------------------------------------------------------------------


def _current_project_input(p: Project) -> ProjectInput:
    return ProjectInput(
        relation_id=p.relation_id,
        name=p.name,
        description=p.description,
        contact_ids=[c.id for c in p.contacts],
        one_off_contact_name=p.one_off_contact_name,
        one_off_contact_email=p.one_off_contact_email,
        one_off_contact_phone=p.one_off_contact_phone,
        start_date=p.start_date,
        end_date=p.end_date,
        end_date_expected=p.end_date_expected,
        responsible_user_id=p.responsible_user_id,
        value=p.value,
        currency=p.currency,
        free_texts={n: getattr(p, n) for n in FREE_TEXT_FIELDS},
        choices={n: getattr(p, f"{n}_id") for n in CHOICE_FIELDS},
        closed=p.closed,
    )


def _choice_id(field: str, value: Any) -> int | None:
    """A dropdown choice given by id, by {"id": …} or by name (the name of no choice: a 400)."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, schemas.ChoiceRefInput):
        return value.id
    text = str(value).strip()
    if text.isascii() and text.isdigit() and len(text) < 19:
        return int(text)
    found = db_session().scalar(
        select(Choice.id).where(Choice.field == ChoiceField(field), func.lower(Choice.name) == text.lower())
    )
    if found is None:
        raise ApiError(400, _("%(name)s: there is no such choice.", name=field), field)
    return int(found)


def _apply_project(data: dict[str, Any], base: ProjectInput) -> ProjectInput:
    for name, value in data.items():
        choice = name.removesuffix("_id")
        if choice in CHOICE_FIELDS:
            base.choices[choice] = _choice_id(choice, value)
        elif name in FREE_TEXT_FIELDS:
            base.free_texts[name] = value
        else:
            setattr(base, name, value)
    return base


def _full_project(project_id: int) -> Project:
    loaded = g.path_objects.get("project_id")
    if loaded is not None and loaded.id == project_id:
        return cast(Project, loaded)
    return project_service.get_project(db_session(), me(), project_id, full=True)


@bp.get("/projects")
@declare(out=schemas.ProjectPage, query=schemas.ProjectQuery)
def list_projects() -> Any:
    """Projects you may see"""
    q = valid_query(schemas.ProjectQuery)
    query, kept = project_service.project_list_rows(
        me(),
        search=q.q,
        relation_id=q.relation_id,
        status_id=_choice_id("status", q.status) if q.status else None,
        type_id=_choice_id("type", q.type) if q.type else None,
        chance_id=_choice_id("chance", q.chance) if q.chance else None,
        responsible_user_id=q.responsible_user_id,
        open_only=q.open,
        updated_since=q.updated_since,
        skipping=bool(q.page and q.page > 1 and not q.cursor),  # read from an OFFSET (see _keyset)
        session=db_session(),
    )
    # A summary's columns as plain values in the page's one query (the relation's name from the join
    # it already has), status and type named from the choices (one small query, no join per row).
    page = _keyset(query, PROJECT_SORTS, q.sort, q, rows=True, kept=kept)
    names = choice_service.choice_names(db_session())
    page.items = [_project_summary(row, names) for row in page.items]
    return _page(page, schemas.ProjectPage, q)


def _project_summary(row: Any, names: dict[int, str]) -> dict[str, Any]:
    def choice(choice_id: int | None) -> dict[str, Any] | None:
        return {"id": choice_id, "name": names[choice_id]} if choice_id in names else None

    summary = row._asdict()
    summary.update(relation={"name": row.relation_name}, type=choice(row.type_id), status=choice(row.status_id))
    return summary


@bp.post("/projects")
@declare(ok=201, out=schemas.Project, body=schemas.ProjectCreate, errors=(400, 401))
def create_project() -> Any:
    """Create a project (you are responsible unless responsible_user_id says otherwise)"""
    base = ProjectInput(relation_id=None, name="", responsible_user_id=me().id, currency=settings().default_currency)
    created = project_service.save_project(db_session(), me(), _apply_project(sent(), base))
    return schemas.Project.model_validate(_full_project(created.id)), 201


@bp.get("/projects/<int:project_id>")
@declare(out=schemas.Project)
def get_project(project_id: int) -> Any:
    """One project with every field; its ETag is its version (the notepad has its own, notepad_version)"""
    project = path_object("project_id")
    etag(project.version)
    return schemas.Project.model_validate(project)


@bp.patch("/projects/<int:project_id>")
@declare(out=schemas.Project, body=schemas.ProjectPatch, errors=VERSIONED_ERRORS)
def update_project(project_id: int) -> Any:
    """Change a project; only the given keys

    responsible_user_id changes only by its responsible user or an admin. If-Match: the project's ETag.
    """
    project = _full_project(project_id)
    project_service.save_project(
        db_session(),
        me(),
        _apply_project(sent(), _current_project_input(project)),
        project,
        expected_version=if_match(project.version),
    )
    db_session().expire_all()
    try:
        # Asked of the database again, not taken from the request: the change may hide it now.
        changed = project_service.get_project(db_session(), me(), project_id, full=True)
    except NotFound:
        # Handed to someone else, the project may be hidden from the user now: he still gets what
        # he saved (he saw it a moment ago), not a 404 that would undo his change.
        changed = project
        db_session().refresh(changed)
    etag(changed.version)
    return schemas.Project.model_validate(changed)


@bp.delete("/projects/<int:project_id>")
@declare(ok=204, errors=VERSIONED_ERRORS)
def delete_project(project_id: int) -> Any:
    """Delete a project (its responsible user or an admin). If-Match: its ETag"""
    project = _managed_project()
    project_service.delete_project(db_session(), project, by=me(), expected_version=if_match(project.version))
    return "", 204


def _managed_project() -> Project:
    """The project if the user may delete it or set who sees it: its responsible user or an admin (as the pages)."""
    project = cast(Project, path_object("project_id"))
    if not may_manage_project(me(), project):
        raise not_found()
    return project


@bp.put("/projects/<int:project_id>/notepad")
@declare(out=schemas.Notepad, body=schemas.NotepadInput, errors=VERSIONED_ERRORS)
def put_notepad(project_id: int) -> Any:
    """Replace the project's notepad. If-Match: the notepad's version (notepad_version of the project)"""
    project = path_object("project_id")
    project_service.save_notepad(
        db_session(), me(), project, sent()["text"], expected_version=if_match(project.notepad_version)
    )
    etag(project.notepad_version)
    return schemas.Notepad.model_validate(project)


@bp.put("/projects/<int:project_id>/linked")
@declare(out=schemas.LinkedOut, body=schemas.Linked, errors=VERSIONED_ERRORS)
def put_linked(project_id: int) -> Any:
    """Set the users and groups who see the project (its responsible user or an admin)

    Nobody linked: all staff who may see its relation. If-Match: the project's ETag.
    """
    _managed_project()
    project = _full_project(project_id)
    data = sent()
    project_service.set_linked(
        db_session(),
        project,
        data.get("user_ids", []),
        data.get("group_ids", []),
        by=me(),
        expected_version=if_match(project.version),
    )
    etag(project.version)
    return schemas.LinkedOut.model_validate(project)


# --- activities ----------------------------------------------------------------------------------


def _activity_input(data: dict[str, Any], current: Any = None) -> ActivityInput:
    base = ActivityInput(title="", assigned_user_id=me().id)
    if current is not None:
        base = ActivityInput(
            title=current.title,
            description=current.description,
            due_date=current.due_date,
            assigned_user_id=current.assigned_user_id,
            done=current.done,
        )
    for name, value in data.items():
        setattr(base, name, value)
    return base


@bp.get("/projects/<int:project_id>/activities")
@declare(out=schemas.Activities)
def list_activities(project_id: int) -> Any:
    """The project's activities"""
    items = activity_service.project_activities(db_session(), path_object("project_id"))
    return schemas.Activities.model_validate({"items": items})


@bp.post("/projects/<int:project_id>/activities")
@declare(ok=201, out=schemas.Activity, body=schemas.ActivityFields)
def create_activity(project_id: int) -> Any:
    """Add an activity (assigned to you unless assigned_user_id says otherwise)"""
    created = activity_service.save_activity(db_session(), me(), path_object("project_id"), _activity_input(sent()))
    return schemas.Activity.model_validate(created), 201


@bp.get("/activities/mine")
@declare(out=schemas.Activities, query=schemas.MineQuery, errors=(400, 401))
def my_activities() -> Any:
    """Activities assigned to you, due first"""
    items = activity_service.my_activities(db_session(), me(), include_done=valid_query(schemas.MineQuery).done)
    return schemas.Activities.model_validate({"items": items})


@bp.get("/activities/<int:activity_id>")
@declare(out=schemas.Activity)
def get_activity(activity_id: int) -> Any:
    """One activity; its ETag is its version"""
    activity = path_object("activity_id")
    etag(activity.version)
    return schemas.Activity.model_validate(activity)


@bp.patch("/activities/<int:activity_id>")
@declare(out=schemas.Activity, body=schemas.ActivityPatch, errors=VERSIONED_ERRORS)
def update_activity(activity_id: int) -> Any:
    """Change an activity; only the given keys

    assigned_user_id: someone who may see the project. If-Match: the activity's ETag.
    """
    activity = path_object("activity_id")
    changed = activity_service.save_activity(
        db_session(),
        me(),
        activity.project,
        _activity_input(sent(), activity),
        activity,
        expected_version=if_match(activity.version),
    )
    etag(changed.version)
    return schemas.Activity.model_validate(changed)


@bp.delete("/activities/<int:activity_id>")
@declare(ok=204, errors=VERSIONED_ERRORS)
def delete_activity(activity_id: int) -> Any:
    """Delete an activity. If-Match: its ETag"""
    activity = path_object("activity_id")
    activity_service.delete_activity(db_session(), activity, expected_version=if_match(activity.version))
    return "", 204


# --- documents -----------------------------------------------------------------------------------


@bp.get("/projects/<int:project_id>/documents")
@declare(out=schemas.Documents)
def list_documents(project_id: int) -> Any:
    """The project's documents, newest first"""
    items = document_service.project_documents(db_session(), path_object("project_id"))
    return schemas.Documents.model_validate({"items": items})


@bp.post("/projects/<int:project_id>/documents")
@declare(ok=201, out=schemas.Document, form=schemas.Upload, errors=(400, 401, 404, 413))
def upload_document(project_id: int) -> Any:
    """Upload a document (multipart/form-data, the field "file")"""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(400, _('Send the file as multipart/form-data in the field "file".'), "file")
    document = document_service.add_document(
        db_session(),
        blobs(),
        me(),
        path_object("project_id"),
        upload.filename,
        upload.stream,
        upload.mimetype,
        settings().upload_max_bytes,
    )
    return schemas.Document.model_validate(document), 201


@bp.get("/documents/<int:document_id>")
@declare(out=schemas.Document)
def get_document(document_id: int) -> Any:
    """A document's metadata"""
    return schemas.Document.model_validate(path_object("document_id"))


@bp.get("/documents/<int:document_id>/content")
@declare(errors=(401, 404), raw=True)
def download_document(document_id: int) -> Any:
    """A document's content, as uploaded, with the content type it was uploaded with (a script's or a
    style sheet's as application/octet-stream: see hub.mail.html.download_type)"""
    document = path_object("document_id")
    response = send_file(
        blobs().open(document.sha256),
        mimetype=download_type(document.content_type),
        as_attachment=True,
        download_name=document.filename,
        max_age=0,
    )
    response.headers.update(attachment_headers(document.content_type))
    return response


@bp.delete("/documents/<int:document_id>")
@declare(ok=204)
def delete_document(document_id: int) -> Any:
    """Delete a document"""
    document_service.delete_document(db_session(), path_object("document_id"))
    return "", 204


# --- choices and labels --------------------------------------------------------------------------


@bp.get("/choices")
@declare(out=schemas.Choices, query=schemas.ChoiceQuery, errors=(400, 401))
def list_choices() -> Any:
    """Dropdown choices, active and inactive"""
    field = valid_query(schemas.ChoiceQuery).field
    grouped = choice_service.all_choices(db_session())
    items = grouped[field] if field else [c for group in grouped.values() for c in group]
    return schemas.Choices.model_validate({"items": items})


@bp.post("/choices")
@declare(ok=201, out=schemas.Choice, body=schemas.ChoiceFields, admin=True)
def create_choice() -> Any:
    """Add a choice (admins)"""
    data = sent()
    created = choice_service.save_choice(
        db_session(),
        choice_service.ChoiceInput(
            field=data["field"].value,
            name=data["name"],
            sort_order=data.get("sort_order", 0),
            active=data.get("active", True),
        ),
    )
    return schemas.Choice.model_validate(created), 201


@bp.patch("/choices/<int:choice_id>")
@declare(out=schemas.Choice, body=schemas.ChoicePatch, admin=True)
def update_choice(choice_id: int) -> Any:
    """Change a choice (admins)"""
    current = path_object("choice_id")
    data = sent()
    changed = choice_service.save_choice(
        db_session(),
        choice_service.ChoiceInput(
            field=data["field"].value if "field" in data else current.field.value,
            name=data.get("name", current.name),
            sort_order=data.get("sort_order", current.sort_order),
            active=data.get("active", current.active),
        ),
        current,
    )
    return schemas.Choice.model_validate(changed)


@bp.delete("/choices/<int:choice_id>")
@declare(ok=204, admin=True)
def delete_choice(choice_id: int) -> Any:
    """Delete a choice no project uses (admins); else deactivate it"""
    choice_service.delete_choice(db_session(), path_object("choice_id"))
    return "", 204


@bp.get("/field-labels")
@declare(out=schemas.FieldLabels, errors=(401,))
def get_labels() -> Any:
    """The free fields' labels"""
    return schemas.FieldLabels.model_validate(choice_service.field_labels(db_session()))


@bp.put("/field-labels")
@declare(out=schemas.FieldLabels, body=schemas.FieldLabelsInput, admin=True)
def put_labels() -> Any:
    """Rename free fields (admins)"""
    choice_service.save_field_labels(db_session(), sent())
    return schemas.FieldLabels.model_validate(choice_service.field_labels(db_session()))


# --- e-mails -------------------------------------------------------------------------------------


def _visible(loader: str, object_id: int | None) -> bool:
    """Whether a filter's object exists and the user may see it; filtering on a hidden one gives
    an empty list, exactly as filtering on one that does not exist."""
    if object_id is None:
        return True
    try:
        LOADERS[loader](object_id)
    except (NotFound, ApiError):
        return False
    return True


def _email_sort() -> Sort:
    from hub.models import Email

    return Sort(Email.sent_at, Email.id, lambda e: e.sent_at, descending=True)


@bp.get("/emails")
@declare(out=schemas.EmailPage, query=schemas.EmailQuery, errors=(400, 401))
def list_emails() -> Any:
    """E-mails you may see, newest first; filter by relation, project, contact, mailbox, date"""
    from hub.mail.read import email_list_rows

    q = valid_query(schemas.EmailQuery)
    targets = (("relation_id", q.relation_id), ("project_id", q.project_id), ("contact_id", q.contact_id))
    if not all(_visible(name, value) for name, value in (*targets, ("mailbox_id", q.mailbox_id))):
        return _empty(schemas.EmailPage, q)
    # A summary's columns as plain rows through a kept statement, the filters' values bound: no
    # Email object (with its bodies) per row and no statement built per request.
    filters = {
        "search": q.q,
        "message_id": q.message_id,
        **dict(targets),
        "mailbox_id": q.mailbox_id,
        "sent_since": q.sent_since,
        "sent_before": q.sent_before,
    }
    query, values = email_list_rows(me(), filters)
    page = _keyset(query, {"sent": _email_sort()}, "-sent", q, rows=True, kept=True, params=values)
    return _page(page, schemas.EmailPage, q)


@bp.get("/emails/<int:email_id>")
@declare(out=schemas.Email)
def get_email(email_id: int) -> Any:
    """One e-mail with its text, participants and attachments"""
    return schemas.Email.model_validate(path_object("email_id"))


@bp.get("/projects/<int:project_id>/emails")
@declare(out=schemas.EmailPage, query=schemas.ProjectEmailQuery)
def list_project_emails(project_id: int) -> Any:
    """The project's E-mails tab, newest first"""
    from hub.mail.privacy import email_visible
    from hub.models import Email, EmailProject
    from hub.text import like_pattern

    q = valid_query(schemas.ProjectEmailQuery)
    query = (
        select(Email)
        .join(EmailProject, EmailProject.email_id == Email.id)
        .where(EmailProject.project_id == project_id, email_visible(me()))
    )
    if q.q.strip():
        pattern = like_pattern(q.q)
        query = query.where(
            func.lower(Email.subject).like(pattern, escape="\\") | Email.from_address.like(pattern, escape="\\")
        )
    return _page(_keyset(query, {"sent": _email_sort()}, "-sent", q), schemas.EmailPage, q)


# --- mailboxes -----------------------------------------------------------------------------------


def _mailbox_out(b: Any, viewer: User, workers_alive: bool | None = None) -> schemas.Mailbox:
    """A mailbox and its sync health, as ``viewer`` may read it; never the password. A list passes
    ``workers_alive``, asked once for all its rows."""
    from hub.mail.mailboxes import error_for, health_of

    alive = installation().workers_alive if workers_alive is None else workers_alive
    health = health_of(b, viewer, workers_alive=alive)
    return schemas.Mailbox.model_validate(
        {
            "id": b.id,
            "name": b.name,
            "owner_id": b.owner_id,
            "host": b.host,
            "port": b.port,
            "security": b.security.value,
            "username": b.username,
            "folders": b.folders,
            "sync_since": b.sync_since,
            "poll_interval_seconds": b.poll_interval_seconds,
            "sharing": b.sharing,
            "never_share": b.never_share,
            "last_success_at": b.last_success_at,
            "last_error": error_for(b, viewer),
            "failing": bool(b.last_error),
            "stalled": health.state == "stalled",
            "state": health.state.value,
            "state_words": health.words,
            "progress": {"done": health.done, "total": health.total},
            "messages_stored": b.messages_stored,
            "backlog": b.backlog,
        }
    )


@bp.get("/mailboxes")
@declare(out=schemas.Mailboxes, errors=(401,))
def list_mailboxes() -> Any:
    """Your mailboxes (every one, for admins) and their sync health"""
    from hub.mail.mailboxes import mailboxes_for

    alive = installation().workers_alive
    return schemas.Mailboxes(items=[_mailbox_out(b, me(), alive) for b in mailboxes_for(db_session(), me())])


@bp.get("/health")
@declare(out=schemas.Health, errors=(401,))
def health() -> Any:
    """The installation (database, broker, workers, beat, queues) and your mailboxes, one state each"""
    from hub.campaigns.mailings import mailing_health_rows
    from hub.mail.mailboxes import mailboxes_for
    from web.api.calendar import account_items

    parts = installation()
    alive = parts.workers_alive
    return schemas.Health(
        ok=parts.ok,
        database=schemas.Check.model_validate(parts.database),
        broker=schemas.Check.model_validate(parts.broker),
        workers=list(parts.workers),
        beat=schemas.Check.model_validate(parts.beat),
        queues=dict(parts.queues),
        mailboxes=[_mailbox_out(b, me(), alive) for b in mailboxes_for(db_session(), me())],
        calendars=account_items(alive),
        mailings=[
            schemas.MailingHealth(
                id=m.id,
                name=m.name,
                state=m.state,
                health=m.health.state.value,
                health_words=m.health.words,
                sent=m.sent,
                total=m.total,
            )
            for m in mailing_health_rows(database(), workers_alive=alive)
        ],
    )


@bp.post("/mailboxes")
@declare(ok=201, out=schemas.Mailbox, body=schemas.MailboxInput, errors=(400, 401))
def create_mailbox() -> Any:
    """Connect a mailbox; staff connect their own, admins also shared ones (owner_id null) or others'"""
    from hub.mail.mailboxes import MailboxInput, save_mailbox

    data = sent()
    owner_id = data.get("owner_id") if me().is_admin and "owner_id" in data else me().id
    box = save_mailbox(
        db_session(),
        settings().secret_key,
        allowed_hosts=settings().mail_allowed_hosts,
        data=MailboxInput(
            host=data["host"],
            port=data["port"],
            security=data.get("security", "ssl"),
            username=data["username"],
            password=data["password"] or None,
            owner_id=owner_id,
            name=data.get("name", ""),
            folders="\n".join(data.get("folders", [])),
            sync_since=data.get("sync_since"),
            poll_interval_seconds=data.get("poll_interval_seconds", 300),
            sharing=data.get("sharing", "only_me"),
            never_share="\n".join(data.get("never_share", [])),
        ),
    )
    from workers.enqueue import mailbox_sync_after_commit

    mailbox_sync_after_commit(db_session(), box.id)  # the first sync starts now, not when beat next looks
    return _mailbox_out(box, me()), 201


@bp.get("/mailboxes/<int:mailbox_id>")
@declare(out=schemas.Mailbox)
def get_mailbox(mailbox_id: int) -> Any:
    """One mailbox and its sync health"""
    return _mailbox_out(path_object("mailbox_id"), me())


@bp.post("/mailboxes/<int:mailbox_id>/sync")
@declare(ok=202, out=schemas.Queued, errors=(401, 404))
def sync_mailbox_now(mailbox_id: int) -> Any:
    """Queue a sync of the mailbox now"""
    from workers.enqueue import mailbox_sync_after_commit

    mailbox_sync_after_commit(db_session(), path_object("mailbox_id").id)
    return schemas.Queued(queued=True), 202


# --- search ------------------------------------------------------------------------------------------


def _search_hit(kind: str, item: Any) -> schemas.SearchHit:
    if kind == "emails":
        return schemas.SearchHit(
            id=item.id, title=item.subject, detail=item.from_address, relation_id=None, sent_at=item.sent_at
        )
    if kind == "relations":
        return schemas.SearchHit(id=item.id, title=item.name, detail=item.city, relation_id=item.id)
    return schemas.SearchHit(id=item.id, title=item.name, detail=item.relation.name, relation_id=item.relation_id)


@bp.get("/search")
@declare(out=schemas.SearchResults, query=schemas.SearchQuery, errors=(400, 401))
def search() -> Any:
    """Search contacts, relations, projects and e-mails you may see, grouped by kind"""
    from hub.crm.search import KINDS
    from hub.crm.search import search as run_search
    from hub.mail.privacy import email_visible

    q = valid_query(schemas.SearchQuery)
    if q.cursor and not q.kind:
        raise ApiError(400, _("cursor pages on one kind: give kind too."), "cursor")
    kinds = (q.kind,) if q.kind else KINDS
    try:
        results = run_search(
            db_session(),
            me(),
            q.q,
            kinds=kinds,
            cursor=q.cursor,
            per_page=q.per_page,
            region=settings().default_phone_region,
            emails_visible=email_visible,
        )
    except BadCursor:
        raise ApiError(400, _("cursor is not a cursor this search gave out (for this kind)."), "cursor") from None
    return schemas.SearchResults(
        q=results.text,
        groups=[
            schemas.SearchGroup(
                kind=g.kind,  # type: ignore[arg-type]
                total=g.total,
                total_capped=g.capped,
                items=[_search_hit(g.kind, item) for item in g.items],
                next=g.next_cursor,
            )
            for g in results.groups
            if g.kind in kinds
        ],
    )


# --- tags --------------------------------------------------------------------------------------------


def _tag_ids(ref: str) -> list[int]:
    """A tag filter's tag, by id (a number: no such tag is an empty list, as for other ids) or by name
    (the name of no tag: a 400 naming it)."""
    from hub.paging import MAX_ID

    text = ref.strip()
    if text.isascii() and text.isdigit():
        return [int(text)] if len(text) < 19 and int(text) <= MAX_ID else []
    return tag_service.ids_of(db_session(), [text], "tag")


@bp.get("/tags")
@declare(out=schemas.TagPage, query=schemas.TagQuery, errors=(400, 401))
def list_tags() -> Any:
    """Tags by name, each with how many relations and contacts you may see carry it"""
    from hub.models import Tag
    from hub.text import like_pattern

    q = valid_query(schemas.TagQuery)
    query = tag_service.tags_query()
    if q.q.strip():
        query = query.where(Tag.name_key.like(like_pattern(q.q), escape="\\"))
    page = _keyset(query, {"name": Sort(Tag.name_key, Tag.id, lambda t: t.name_key)}, "name", q)
    counted = tag_service.counts_of(db_session(), me(), page.items)
    page.items = [
        {**schemas.TagRef.model_validate(c.tag).model_dump(), "relations": c.relations, "contacts": c.contacts}
        for c in counted
    ]
    return _page(page, schemas.TagPage, q)


def _tags_of(owner: Any) -> schemas.TagRefs:
    return schemas.TagRefs.model_validate({"items": owner.tags})


@bp.post("/relations/<int:relation_id>/tags")
@declare(out=schemas.TagRefs, body=schemas.TagsInput)
def add_relation_tags(relation_id: int) -> Any:
    """Tag the relation (tags by id or name; a new name makes a new tag); answers its tags"""
    relation = path_object("relation_id")
    chosen = tag_service.tags_for(db_session(), sent()["tags"])
    tag_service.add_relation_tags(db_session(), relation, chosen)
    return _tags_of(relation)


@bp.delete("/relations/<int:relation_id>/tags/<int:tag_id>")
@declare(ok=204)
def remove_relation_tag(relation_id: int, tag_id: int) -> Any:
    """Take a tag off the relation (a tag it does not carry: nothing to do)"""
    tag_service.untag_relation(db_session(), path_object("relation_id"), tag_id)
    return "", 204


@bp.post("/contacts/<int:contact_id>/tags")
@declare(out=schemas.TagRefs, body=schemas.TagsInput)
def add_contact_tags(contact_id: int) -> Any:
    """Tag the contact (tags by id or name; a new name makes a new tag); answers its tags"""
    contact = path_object("contact_id")
    chosen = tag_service.tags_for(db_session(), sent()["tags"])
    tag_service.add_contact_tags(db_session(), contact, chosen)
    return _tags_of(contact)


@bp.delete("/contacts/<int:contact_id>/tags/<int:tag_id>")
@declare(ok=204)
def remove_contact_tag(contact_id: int, tag_id: int) -> Any:
    """Take a tag off the contact (a tag it does not carry: nothing to do)"""
    tag_service.untag_contact(db_session(), path_object("contact_id"), tag_id)
    return "", 204
