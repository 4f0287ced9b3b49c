"""The OpenAPI 3.1 document of /api/v1.

Paths are taken from the app's URL map, so every route is listed; each endpoint's summary, body and
response schema come from the table below. A test fails when a route has no entry here.
"""

from __future__ import annotations

import re
from typing import Any

from flask import current_app

STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
DATE = {"type": ["string", "null"], "format": "date"}
NULL_INT = {"type": ["integer", "null"]}
REF = {"type": ["object", "null"], "properties": {"id": INT, "name": STR}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list_of(name: str) -> dict[str, Any]:
    return {"type": "object", "properties": {"items": {"type": "array", "items": _ref(name)}}}


def _page_of(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": _ref(name)}, "page": INT, "per_page": INT, "has_next": BOOL},
    }


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {"message": STR, "field": {"type": ["string", "null"]}, "fields": {"type": "object"}},
            }
        },
    },
    "Relation": {
        "type": "object",
        "properties": {
            "id": INT,
            "kind": {"enum": ["company", "person"]},
            "name": STR,
            "street": STR,
            "postcode": STR,
            "city": STR,
            "country": STR,
            "phones": {"type": "array", "items": STR},
            "emails": {"type": "array", "items": STR},
            "website": STR,
            "coc_number": STR,
            "vat_number": STR,
            "status": {"enum": ["lead", "prospect", "customer", "inactive"]},
            "owner_id": NULL_INT,
            "domain": STR,
        },
    },
    "RelationInput": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "kind": STR,
            "name": STR,
            "street": STR,
            "postcode": STR,
            "city": STR,
            "country": STR,
            "phones": {"type": "array", "items": STR},
            "emails": {"type": "array", "items": STR},
            "website": STR,
            "coc_number": STR,
            "vat_number": STR,
            "status": STR,
            "owner_id": NULL_INT,
            "domain": STR,
        },
    },
    "Contact": {
        "type": "object",
        "properties": {
            "id": INT,
            "relation_id": INT,
            "name": STR,
            "function": STR,
            "emails": {"type": "array", "items": STR},
            "phones": {"type": "array", "items": STR},
        },
    },
    "ContactInput": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": STR,
            "function": STR,
            "emails": {"type": "array", "items": STR},
            "phones": {"type": "array", "items": STR},
        },
    },
    "Project": {
        "type": "object",
        "properties": {
            "id": INT,
            "relation_id": INT,
            "relation_name": STR,
            "name": STR,
            "description": STR,
            "contacts": {"type": "array", "items": REF},
            "one_off_contact": {"type": "object"},
            "start_date": DATE,
            "end_date": DATE,
            "end_date_expected": BOOL,
            "responsible_user_id": NULL_INT,
            "type": REF,
            "status": REF,
            "chance": REF,
            "value": {"type": ["string", "null"]},
            "currency": STR,
            **{f"free_text_{i}": STR for i in range(1, 5)},
            **{f"free_choice_{i}": REF for i in range(1, 6)},
            "notepad": STR,
            "closed": BOOL,
            "linked_user_ids": {"type": "array", "items": INT},
            "linked_group_ids": {"type": "array", "items": INT},
        },
    },
    "ProjectInput": {
        "type": "object",
        "required": ["relation_id", "name"],
        "properties": {
            "relation_id": INT,
            "name": STR,
            "description": STR,
            "contact_ids": {"type": "array", "items": INT},
            "one_off_contact_name": STR,
            "one_off_contact_email": STR,
            "one_off_contact_phone": STR,
            "start_date": DATE,
            "end_date": DATE,
            "end_date_expected": BOOL,
            "responsible_user_id": NULL_INT,
            "type": NULL_INT,
            "status": NULL_INT,
            "chance": NULL_INT,
            "value": {"type": ["string", "number", "null"]},
            "currency": STR,
            **{f"free_text_{i}": STR for i in range(1, 5)},
            **{f"free_choice_{i}": NULL_INT for i in range(1, 6)},
            "closed": BOOL,
        },
    },
    "Activity": {
        "type": "object",
        "properties": {
            "id": INT,
            "project_id": INT,
            "title": STR,
            "description": STR,
            "due_date": DATE,
            "done": BOOL,
            "assigned_user_id": NULL_INT,
        },
    },
    "ActivityInput": {
        "type": "object",
        "properties": {"title": STR, "description": STR, "due_date": DATE, "done": BOOL, "assigned_user_id": NULL_INT},
    },
    "Document": {
        "type": "object",
        "properties": {
            "id": INT,
            "project_id": INT,
            "filename": STR,
            "content_type": STR,
            "size": INT,
            "sha256": STR,
            "uploaded_by_id": NULL_INT,
            "uploaded_at": STR,
        },
    },
    "Email": {
        "type": "object",
        "properties": {
            "id": INT,
            "message_id": STR,
            "subject": STR,
            "from_address": STR,
            "from_name": STR,
            "sent_at": {"type": ["string", "null"]},
            "thread_key": STR,
            "has_attachments": BOOL,
            "size": INT,
            "text_body": STR,
            "participants": {"type": "array"},
            "attachments": {"type": "array"},
        },
    },
    "Mailbox": {
        "type": "object",
        "properties": {
            "id": INT,
            "name": STR,
            "owner_id": NULL_INT,
            "host": STR,
            "port": INT,
            "security": STR,
            "username": STR,
            "folders": {"type": "array", "items": STR},
            "last_success_at": {"type": ["string", "null"]},
            "last_error": STR,
            "failing": BOOL,
            "stalled": BOOL,
            "messages_stored": INT,
            "backlog": INT,
        },
    },
    "MailboxInput": {
        "type": "object",
        "required": ["host", "port", "security", "username", "password"],
        "properties": {
            "host": STR,
            "port": INT,
            "security": {"enum": ["none", "starttls", "ssl"]},
            "username": STR,
            "password": STR,
            "owner_id": NULL_INT,
            "name": STR,
            "folders": {"type": "array", "items": STR},
            "sync_since": DATE,
            "poll_interval_seconds": INT,
        },
    },
    "Choice": {
        "type": "object",
        "properties": {"id": INT, "field": STR, "name": STR, "sort_order": INT, "active": BOOL},
    },
    "ChoiceInput": {"type": "object", "properties": {"field": STR, "name": STR, "sort_order": INT, "active": BOOL}},
    "FieldLabels": {"type": "object", "additionalProperties": STR},
    "Notepad": {"type": "object", "properties": {"text": STR}},
    "Linked": {
        "type": "object",
        "properties": {"user_ids": {"type": "array", "items": INT}, "group_ids": {"type": "array", "items": INT}},
    },
}

# endpoint → (summary, request body schema or None, success status, response schema or None)
OPERATIONS: dict[str, tuple[str, Any, int, Any]] = {
    "list_relations": ("Relations you may see (q, status, sort, page, per_page)", None, 200, _page_of("Relation")),
    "create_relation": ("Create a relation", _ref("RelationInput"), 201, _ref("Relation")),
    "get_relation": ("One relation", None, 200, _ref("Relation")),
    "update_relation": ("Change a relation (only the given keys)", _ref("RelationInput"), 200, _ref("Relation")),
    "delete_relation": ("Delete a relation without projects", None, 204, None),
    "list_contacts": ("The relation's contacts", None, 200, _list_of("Contact")),
    "create_contact": ("Add a contact to the relation", _ref("ContactInput"), 201, _ref("Contact")),
    "get_contact": ("One contact", None, 200, _ref("Contact")),
    "update_contact": ("Change a contact", _ref("ContactInput"), 200, _ref("Contact")),
    "delete_contact": ("Delete a contact", None, 204, None),
    "list_projects": (
        "Projects you may see (q, relation_id, open, sort, page, per_page)",
        None,
        200,
        _page_of("Project"),
    ),
    "create_project": ("Create a project", _ref("ProjectInput"), 201, _ref("Project")),
    "get_project": ("One project", None, 200, _ref("Project")),
    "update_project": ("Change a project (only the given keys)", _ref("ProjectInput"), 200, _ref("Project")),
    "delete_project": ("Delete a project (admin or responsible user)", None, 204, None),
    "put_notepad": ("Replace the project's notepad", _ref("Notepad"), 200, _ref("Notepad")),
    "put_linked": ("Set the users and groups linked to the project", _ref("Linked"), 200, _ref("Linked")),
    "list_activities": ("The project's activities", None, 200, _list_of("Activity")),
    "create_activity": ("Add an activity to the project", _ref("ActivityInput"), 201, _ref("Activity")),
    "my_activities": ("Activities assigned to you (done=1 includes finished ones)", None, 200, _list_of("Activity")),
    "get_activity": ("One activity", None, 200, _ref("Activity")),
    "update_activity": ("Change an activity", _ref("ActivityInput"), 200, _ref("Activity")),
    "delete_activity": ("Delete an activity", None, 204, None),
    "list_documents": ("The project's documents", None, 200, _list_of("Document")),
    "upload_document": ("Upload a document (multipart/form-data, field file)", "multipart", 201, _ref("Document")),
    "get_document": ("A document's metadata", None, 200, _ref("Document")),
    "download_document": ("A document's content", None, 200, "binary"),
    "delete_document": ("Delete a document", None, 204, None),
    "list_choices": ("Dropdown choices (field=type|status|chance|free_choice_1..5)", None, 200, _list_of("Choice")),
    "create_choice": ("Add a choice (admins)", _ref("ChoiceInput"), 201, _ref("Choice")),
    "update_choice": ("Change a choice (admins)", _ref("ChoiceInput"), 200, _ref("Choice")),
    "delete_choice": ("Delete a choice no project uses (admins)", None, 204, None),
    "list_emails": ("E-mails you may see (q, message_id, page, per_page)", None, 200, _page_of("Email")),
    "get_email": ("One e-mail with participants and attachments", None, 200, _ref("Email")),
    "list_project_emails": ("The project's E-mails tab (q, page, per_page)", None, 200, _page_of("Email")),
    "list_mailboxes": ("Your mailboxes (all, for admins) with their sync health", None, 200, _list_of("Mailbox")),
    "create_mailbox": (
        "Connect a mailbox (the password is stored encrypted)",
        _ref("MailboxInput"),
        201,
        _ref("Mailbox"),
    ),
    "get_mailbox": ("One mailbox and its sync health", None, 200, _ref("Mailbox")),
    "sync_mailbox_now": ("Queue a sync of the mailbox now", None, 202, {"type": "object"}),
    "get_labels": ("The free fields' labels", None, 200, _ref("FieldLabels")),
    "put_labels": ("Rename free fields (admins)", _ref("FieldLabels"), 200, _ref("FieldLabels")),
}

ERRORS = {
    "400": {"description": "Bad input; the field is named", "content": {"application/json": {"schema": _ref("Error")}}},
    "401": {"description": "No or bad API token", "content": {"application/json": {"schema": _ref("Error")}}},
    "404": {
        "description": "Not found, or not visible to you",
        "content": {"application/json": {"schema": _ref("Error")}},
    },
}


def _operation(endpoint: str, path_params: list[str]) -> dict[str, Any]:
    summary, request_body, status, response = OPERATIONS[endpoint]
    op: dict[str, Any] = {"operationId": endpoint, "summary": summary, "responses": dict(ERRORS)}
    if path_params:
        op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": INT} for p in path_params]
    if request_body == "multipart":
        op["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
                }
            },
        }
    elif request_body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": request_body}}}
    if response is None:
        op["responses"][str(status)] = {"description": "Done"}
    elif response == "binary":
        op["responses"][str(status)] = {
            "description": "The file",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    else:
        op["responses"][str(status)] = {"description": "OK", "content": {"application/json": {"schema": response}}}
    return op


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in current_app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api.openapi":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        endpoint = rule.endpoint.removeprefix("api.")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(endpoint, sorted(rule.arguments))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hub API",
            "version": "1",
            "description": "CRM relations, contacts, projects, activities, "
            'documents and choices. Errors are {"error": {"message", "field"}}; objects you may not see '
            "are 404.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}, "schemas": SCHEMAS},
        "paths": dict(sorted(paths.items())),
    }
