"""API endpoints: thin, each parses JSON, calls one hub service and serializes the result."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request, send_file

from hub.crm import activities as activity_service
from hub.crm import choices as choice_service
from hub.crm import documents as document_service
from hub.crm import projects as project_service
from hub.crm import relations as relation_service
from hub.crm.activities import ActivityInput
from hub.crm.projects import CHOICE_FIELDS, ProjectInput
from hub.crm.relations import ContactInput, RelationInput
from hub.i18n import _
from hub.models import FREE_TEXT_FIELDS, ChoiceField, Contact, Project, Relation, User
from web.api import bp, serialize
from web.api.errors import ApiError, not_found
from web.api.parse import (
    body,
    boolean,
    int_list,
    optional_amount,
    optional_date,
    optional_int,
    query_flag,
    query_int,
    str_list,
    text,
)
from web.context import blobs, db_session, installation, settings


def me() -> User:
    return g.api_user


def _require_admin() -> None:
    """Admin-only writes look like a missing route to everyone else, as admin pages do."""
    if not me().is_admin:
        raise not_found()


def _paging() -> tuple[int, int]:
    return query_int("page", 1), query_int("per_page", 25, maximum=100)


# --- relations -----------------------------------------------------------------------------------

RELATION_TEXT = (
    "name",
    "kind",
    "street",
    "postcode",
    "city",
    "country",
    "website",
    "coc_number",
    "vat_number",
    "status",
    "domain",
)


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
    for name in RELATION_TEXT:
        if name in data:
            setattr(base, name, text(data, name))
    if "phones" in data:
        base.phones = str_list(data, "phones")
    if "emails" in data:
        base.emails = str_list(data, "emails")
    if "owner_id" in data:
        base.owner_id = optional_int(data, "owner_id")
    return base


@bp.get("/relations")
def list_relations() -> Any:
    page, per_page = _paging()
    result, _sort = relation_service.list_relations(
        db_session(),
        me(),
        search=request.args.get("q", ""),
        status=request.args.get("status", ""),
        sort=request.args.get("sort", "name"),
        page=page,
        per_page=per_page,
    )
    return serialize.page(result, serialize.relation_brief)


@bp.post("/relations")
def create_relation() -> Any:
    data = body()
    created = relation_service.save_relation(
        db_session(), _relation_input(data), region=settings().default_phone_region
    )
    return serialize.relation(created), 201


@bp.get("/relations/<int:relation_id>")
def get_relation(relation_id: int) -> Any:
    return serialize.relation(relation_service.get_relation(db_session(), me(), relation_id))


def _managed_relation(relation_id: int) -> Relation:
    """The relation if the user may delete it or set who sees it: its owner or an admin (as the pages)."""
    relation = relation_service.get_relation(db_session(), me(), relation_id)
    if not (me().is_admin or relation.owner_id == me().id):
        raise not_found()
    return relation


@bp.patch("/relations/<int:relation_id>")
def update_relation(relation_id: int) -> Any:
    relation = relation_service.get_relation(db_session(), me(), relation_id)
    changed = relation_service.save_relation(
        db_session(), _relation_input(body(), relation), relation, region=settings().default_phone_region
    )
    db_session().refresh(changed)
    return serialize.relation(changed)


@bp.delete("/relations/<int:relation_id>")
def delete_relation(relation_id: int) -> Any:
    relation_service.delete_relation(db_session(), _managed_relation(relation_id))
    return "", 204


@bp.put("/relations/<int:relation_id>/linked")
def put_relation_linked(relation_id: int) -> Any:
    relation = _managed_relation(relation_id)
    data = body()
    relation_service.set_relation_linked(
        db_session(), relation, int_list(data, "user_ids"), int_list(data, "group_ids")
    )
    return serialize.linked(relation)


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
    for name in ("name", "function"):
        if name in data:
            setattr(base, name, text(data, name))
    if "emails" in data:
        base.emails = str_list(data, "emails")
    if "phones" in data:
        base.phones = str_list(data, "phones")
    return base


@bp.get("/relations/<int:relation_id>/contacts")
def list_contacts(relation_id: int) -> Any:
    relation = relation_service.get_relation(db_session(), me(), relation_id)
    return {"items": [serialize.contact(c) for c in relation_service.relation_contacts(db_session(), relation)]}


@bp.post("/relations/<int:relation_id>/contacts")
def create_contact(relation_id: int) -> Any:
    relation = relation_service.get_relation(db_session(), me(), relation_id)
    contact = relation_service.save_contact(
        db_session(), relation, _contact_input(body()), region=settings().default_phone_region
    )
    return serialize.contact(contact), 201


@bp.get("/contacts/<int:contact_id>")
def get_contact(contact_id: int) -> Any:
    return serialize.contact(relation_service.get_contact(db_session(), me(), contact_id))


@bp.patch("/contacts/<int:contact_id>")
def update_contact(contact_id: int) -> Any:
    contact = relation_service.get_contact(db_session(), me(), contact_id)
    changed = relation_service.save_contact(
        db_session(), contact.relation, _contact_input(body(), contact), contact, region=settings().default_phone_region
    )
    return serialize.contact(changed)


@bp.delete("/contacts/<int:contact_id>")
def delete_contact(contact_id: int) -> Any:
    relation_service.delete_contact(db_session(), relation_service.get_contact(db_session(), me(), contact_id))
    return "", 204


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


def _apply_project(data: dict[str, Any], base: ProjectInput) -> ProjectInput:
    for name in (
        "name",
        "description",
        "one_off_contact_name",
        "one_off_contact_email",
        "one_off_contact_phone",
        "currency",
    ):
        if name in data:
            setattr(base, name, text(data, name))
    for name in ("relation_id", "responsible_user_id"):
        if name in data:
            setattr(base, name, optional_int(data, name))
    for name in ("start_date", "end_date"):
        if name in data:
            setattr(base, name, optional_date(data, name))
    for name in ("end_date_expected", "closed"):
        if name in data:
            setattr(base, name, boolean(data, name))
    if "contact_ids" in data:
        base.contact_ids = int_list(data, "contact_ids")
    if "value" in data:
        base.value = optional_amount(data, "value")
    for name in FREE_TEXT_FIELDS:
        if name in data:
            base.free_texts[name] = text(data, name)
    for name in CHOICE_FIELDS:
        # Accept a bare id, {"id": …} as returned by GET, or null.
        key = f"{name}_id" if f"{name}_id" in data else name
        if key in data:
            value = data[key]
            if isinstance(value, dict):
                value = value.get("id")
            base.choices[name] = optional_int({key: value}, key)
    return base


@bp.get("/projects")
def list_projects() -> Any:
    page, per_page = _paging()
    relation_id = query_int("relation_id", 0)
    result, _sort = project_service.list_projects(
        db_session(),
        me(),
        search=request.args.get("q", ""),
        relation_id=relation_id or None,
        open_only=query_flag("open"),
        sort=request.args.get("sort", "-updated"),
        page=page,
        per_page=per_page,
    )
    return serialize.page(result, lambda p: serialize.project(p, full=False))


@bp.post("/projects")
def create_project() -> Any:
    data = body()
    base = ProjectInput(relation_id=None, name="", responsible_user_id=me().id, currency=settings().default_currency)
    created = project_service.save_project(db_session(), me(), _apply_project(data, base))
    return serialize.project(project_service.get_project(db_session(), me(), created.id, full=True)), 201


@bp.get("/projects/<int:project_id>")
def get_project(project_id: int) -> Any:
    return serialize.project(project_service.get_project(db_session(), me(), project_id, full=True))


@bp.patch("/projects/<int:project_id>")
def update_project(project_id: int) -> Any:
    project = project_service.get_project(db_session(), me(), project_id, full=True)
    project_service.save_project(db_session(), me(), _apply_project(body(), _current_project_input(project)), project)
    db_session().expire_all()
    return serialize.project(project_service.get_project(db_session(), me(), project_id, full=True))


@bp.delete("/projects/<int:project_id>")
def delete_project(project_id: int) -> Any:
    project = project_service.get_project(db_session(), me(), project_id)
    # As on the page: only its responsible user or an admin deletes a project.
    if not (me().is_admin or project.responsible_user_id == me().id):
        raise not_found()
    project_service.delete_project(db_session(), project)
    return "", 204


@bp.put("/projects/<int:project_id>/notepad")
def put_notepad(project_id: int) -> Any:
    project = project_service.get_project(db_session(), me(), project_id)
    project_service.save_notepad(db_session(), me(), project, text(body(), "text"))
    return {
        "text": project.notepad,
        "updated_at": serialize.iso(project.notepad_updated_at),
        "updated_by_id": project.notepad_updated_by_id,
    }


@bp.put("/projects/<int:project_id>/linked")
def put_linked(project_id: int) -> Any:
    project = project_service.get_project(db_session(), me(), project_id, full=True)
    data = body()
    project_service.set_linked(db_session(), project, int_list(data, "user_ids"), int_list(data, "group_ids"))
    return serialize.linked(project)


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
    for name in ("title", "description"):
        if name in data:
            setattr(base, name, text(data, name))
    if "due_date" in data:
        base.due_date = optional_date(data, "due_date")
    if "assigned_user_id" in data:
        base.assigned_user_id = optional_int(data, "assigned_user_id")
    if "done" in data:
        base.done = boolean(data, "done")
    return base


@bp.get("/projects/<int:project_id>/activities")
def list_activities(project_id: int) -> Any:
    project = project_service.get_project(db_session(), me(), project_id)
    return {"items": [serialize.activity(a) for a in activity_service.project_activities(db_session(), project)]}


@bp.post("/projects/<int:project_id>/activities")
def create_activity(project_id: int) -> Any:
    project = project_service.get_project(db_session(), me(), project_id)
    created = activity_service.save_activity(db_session(), me(), project, _activity_input(body()))
    return serialize.activity(created), 201


@bp.get("/activities/mine")
def my_activities() -> Any:
    items = activity_service.my_activities(db_session(), me(), include_done=query_flag("done"))
    return {"items": [serialize.activity(a) for a in items]}


@bp.get("/activities/<int:activity_id>")
def get_activity(activity_id: int) -> Any:
    return serialize.activity(activity_service.get_activity(db_session(), me(), activity_id))


@bp.patch("/activities/<int:activity_id>")
def update_activity(activity_id: int) -> Any:
    activity = activity_service.get_activity(db_session(), me(), activity_id)
    changed = activity_service.save_activity(
        db_session(), me(), activity.project, _activity_input(body(), activity), activity
    )
    return serialize.activity(changed)


@bp.delete("/activities/<int:activity_id>")
def delete_activity(activity_id: int) -> Any:
    activity_service.delete_activity(db_session(), activity_service.get_activity(db_session(), me(), activity_id))
    return "", 204


# --- documents -----------------------------------------------------------------------------------


@bp.get("/projects/<int:project_id>/documents")
def list_documents(project_id: int) -> Any:
    project = project_service.get_project(db_session(), me(), project_id)
    return {"items": [serialize.document(d) for d in document_service.project_documents(db_session(), project)]}


@bp.post("/projects/<int:project_id>/documents")
def upload_document(project_id: int) -> Any:
    project = project_service.get_project(db_session(), me(), project_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(400, _('Send the file as multipart/form-data in the field "file".'), "file")
    document = document_service.add_document(
        db_session(),
        blobs(),
        me(),
        project,
        upload.filename,
        upload.stream,
        upload.mimetype,
        settings().upload_max_bytes,
    )
    return serialize.document(document), 201


@bp.get("/documents/<int:document_id>")
def get_document(document_id: int) -> Any:
    return serialize.document(document_service.get_document(db_session(), me(), document_id))


@bp.get("/documents/<int:document_id>/content")
def download_document(document_id: int) -> Any:
    document = document_service.get_document(db_session(), me(), document_id)
    return send_file(
        blobs().open(document.sha256),
        mimetype=document.content_type,
        as_attachment=True,
        download_name=document.filename,
        max_age=0,
    )


@bp.delete("/documents/<int:document_id>")
def delete_document(document_id: int) -> Any:
    document_service.delete_document(db_session(), document_service.get_document(db_session(), me(), document_id))
    return "", 204


# --- choices and labels --------------------------------------------------------------------------


@bp.get("/choices")
def list_choices() -> Any:
    field = request.args.get("field")
    grouped = choice_service.all_choices(db_session())
    if field:
        if field not in {f.value for f in ChoiceField}:
            names = ", ".join(f.value for f in ChoiceField)
            raise ApiError(400, _("field must be one of %(names)s.", names=names), "field")
        items = grouped[ChoiceField(field)]
    else:
        items = [c for group in grouped.values() for c in group]
    return {"items": [serialize.choice(c) for c in items]}


@bp.post("/choices")
def create_choice() -> Any:
    _require_admin()
    data = body()
    created = choice_service.save_choice(
        db_session(),
        choice_service.ChoiceInput(
            field=text(data, "field"),
            name=text(data, "name"),
            sort_order=optional_int(data, "sort_order") or 0,
            active=boolean(data, "active", True),
        ),
    )
    return serialize.choice(created), 201


@bp.patch("/choices/<int:choice_id>")
def update_choice(choice_id: int) -> Any:
    _require_admin()
    current = choice_service.get_choice(db_session(), choice_id)
    data = body()
    changed = choice_service.save_choice(
        db_session(),
        choice_service.ChoiceInput(
            field=text(data, "field", current.field.value),
            name=text(data, "name", current.name),
            sort_order=(optional_int(data, "sort_order") or 0) if "sort_order" in data else current.sort_order,
            active=boolean(data, "active", current.active),
        ),
        current,
    )
    return serialize.choice(changed)


@bp.delete("/choices/<int:choice_id>")
def delete_choice(choice_id: int) -> Any:
    _require_admin()
    choice_service.delete_choice(db_session(), choice_service.get_choice(db_session(), choice_id))
    return "", 204


@bp.get("/field-labels")
def get_labels() -> Any:
    return choice_service.field_labels(db_session())


@bp.put("/field-labels")
def put_labels() -> Any:
    _require_admin()
    data = body()
    choice_service.save_field_labels(db_session(), {k: text(data, k) for k in data})
    return choice_service.field_labels(db_session())


@bp.get("/openapi.json")
def openapi() -> Any:
    from web.api.openapi import document

    return jsonify(document())


# --- e-mails -------------------------------------------------------------------------------------


@bp.get("/emails")
def list_emails() -> Any:
    """E-mails you may see, newest first; ``message_id`` finds one message, ``q`` searches."""
    from hub.mail.read import visible_emails

    page, per_page = _paging()
    result = visible_emails(
        db_session(),
        me(),
        search=request.args.get("q", ""),
        message_id=request.args.get("message_id", ""),
        page=page,
        per_page=per_page,
    )
    return serialize.page(result, serialize.email)


@bp.get("/emails/<int:email_id>")
def get_email(email_id: int) -> Any:
    from hub.mail.read import get_email as load

    return serialize.email(load(db_session(), me(), email_id), full=True)


@bp.get("/projects/<int:project_id>/emails")
def list_project_emails(project_id: int) -> Any:
    from hub.mail.read import project_emails

    page, per_page = _paging()
    project = project_service.get_project(db_session(), me(), project_id)
    result = project_emails(db_session(), me(), project, search=request.args.get("q", ""), page=page, per_page=per_page)
    return serialize.page(result, serialize.email)


# --- mailboxes -----------------------------------------------------------------------------------


def _mailbox(mailbox_id: int) -> Any:
    from hub.mail.mailboxes import get_mailbox

    box = get_mailbox(db_session(), mailbox_id)
    if not (me().is_admin or box.owner_id == me().id):
        raise not_found()
    return box


@bp.get("/mailboxes")
def list_mailboxes() -> Any:
    from hub.mail.mailboxes import mailboxes_for

    return {"items": [serialize.mailbox(b, me()) for b in mailboxes_for(db_session(), me())]}


@bp.get("/health")
def health() -> Any:
    """The installation's parts and each mailbox the caller may manage, in one state each."""
    from hub.mail.mailboxes import mailboxes_for

    parts = installation()
    return {
        "ok": parts.ok,
        "database": serialize.check(parts.database),
        "broker": serialize.check(parts.broker),
        "workers": parts.workers,
        "beat": serialize.check(parts.beat),
        "queues": parts.queues,
        "mailboxes": [serialize.mailbox(b, me()) for b in mailboxes_for(db_session(), me())],
    }


@bp.post("/mailboxes")
def create_mailbox() -> Any:
    """Connect a mailbox; staff connect their own, admins also shared ones (owner_id null) or others'."""
    from hub.mail.mailboxes import MailboxInput, save_mailbox

    data = body()
    owner_id = optional_int(data, "owner_id") if me().is_admin and "owner_id" in data else me().id
    port = optional_int(data, "port")
    box = save_mailbox(
        db_session(),
        settings().secret_key,
        allowed_hosts=settings().mail_allowed_hosts,
        data=MailboxInput(
            host=text(data, "host"),
            port=port or 0,
            security=text(data, "security", "ssl"),
            username=text(data, "username"),
            password=text(data, "password") or None,
            owner_id=owner_id,
            name=text(data, "name"),
            folders="\n".join(str_list(data, "folders")),
            sync_since=optional_date(data, "sync_since"),
            poll_interval_seconds=optional_int(data, "poll_interval_seconds") or 300,
            sharing=text(data, "sharing", "only_me"),
            never_share="\n".join(str_list(data, "never_share")),
        ),
    )
    return serialize.mailbox(box, me()), 201


@bp.get("/mailboxes/<int:mailbox_id>")
def get_mailbox(mailbox_id: int) -> Any:
    return serialize.mailbox(_mailbox(mailbox_id), me())


@bp.post("/mailboxes/<int:mailbox_id>/sync")
def sync_mailbox_now(mailbox_id: int) -> Any:
    from workers.enqueue import mailbox_sync_after_commit

    box = _mailbox(mailbox_id)
    mailbox_sync_after_commit(db_session(), box.id)
    return {"queued": True}, 202
