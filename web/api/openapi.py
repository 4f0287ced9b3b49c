"""The OpenAPI 3.1 document of /api/v1, written out as a Python dict.

The paths are listed by hand (not read from the URL map) so the document is a contract someone
wrote down; tests/integration/test_openapi.py walks the URL map and fails when a route is missing
here, and when the document lists a route that does not exist.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from hub.models import FREE_TEXT_FIELDS, ChoiceField, RelationKind, RelationStatus

STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
NULL_STR: dict[str, Any] = {"type": ["string", "null"]}
NULL_INT: dict[str, Any] = {"type": ["integer", "null"]}
DATE: dict[str, Any] = {"type": ["string", "null"], "format": "date", "description": "YYYY-MM-DD"}
DATETIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
INT_LIST: dict[str, Any] = {"type": "array", "items": INT}
STR_LIST: dict[str, Any] = {"type": "array", "items": STR}
CHOICE_NAMES = [f.value for f in ChoiceField]
FREE_CHOICES = [name for name in CHOICE_NAMES if name.startswith("free_choice_")]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def items_of(name: str) -> dict[str, Any]:
    return obj({"items": {"type": "array", "items": ref(name)}}, ["items"])


def page_of(name: str) -> dict[str, Any]:
    return obj(
        {"items": {"type": "array", "items": ref(name)}, "page": INT, "per_page": INT, "has_next": BOOL},
        ["items", "page", "per_page", "has_next"],
    )


CHOICE_REF: dict[str, Any] = {
    "oneOf": [obj({"id": INT, "name": STR}, ["id", "name"]), {"type": "null"}],
    "description": "The chosen option of a company-defined dropdown",
}
CHOICE_ID: dict[str, Any] = {
    "type": ["integer", "object", "null"],
    "description": 'A choice id of this dropdown, {"id": …} as GET returns it, or null',
}

_RELATION_FIELDS: dict[str, Any] = {
    "kind": {"enum": [k.value for k in RelationKind]},
    "name": STR,
    "street": STR,
    "postcode": STR,
    "city": STR,
    "country": {"type": "string", "description": "Two-letter code, such as NL"},
    "phones": STR_LIST,
    "emails": STR_LIST,
    "website": STR,
    "coc_number": STR,
    "vat_number": STR,
    "status": {"enum": [s.value for s in RelationStatus]},
    "owner_id": NULL_INT,
    "domain": {"type": "string", "description": "The company's mail domain; mail from it is filed here"},
}

_CONTACT_FIELDS: dict[str, Any] = {"name": STR, "function": STR, "emails": STR_LIST, "phones": STR_LIST}

_PROJECT_SUMMARY: dict[str, Any] = {
    "id": INT,
    "relation_id": INT,
    "relation_name": STR,
    "name": STR,
    "start_date": DATE,
    "end_date": DATE,
    "end_date_expected": BOOL,
    "responsible_user_id": NULL_INT,
    "value": {"type": ["string", "null"], "description": 'Two decimals, such as "1250.00"'},
    "currency": {"type": "string", "description": "Three-letter code, such as EUR"},
    "closed": BOOL,
    "updated_at": DATETIME,
    "type": CHOICE_REF,
    "status": CHOICE_REF,
}

SCHEMAS: dict[str, Any] = {
    "Error": obj(
        {
            "error": obj(
                {
                    "message": STR,
                    "field": {"type": ["string", "null"], "description": "The input field at fault, if one"},
                    "fields": {
                        "type": "object",
                        "additionalProperties": STR,
                        "description": "Every field at fault and its message (bad input only)",
                    },
                },
                ["message", "field"],
            )
        },
        ["error"],
    ),
    "RelationSummary": obj(
        {
            "id": INT,
            "kind": _RELATION_FIELDS["kind"],
            "name": STR,
            "city": STR,
            "status": _RELATION_FIELDS["status"],
            "owner_id": NULL_INT,
        }
    ),
    "Relation": obj(
        {
            "id": INT,
            **_RELATION_FIELDS,
            "updated_at": DATETIME,
            "linked_user_ids": INT_LIST,
            "linked_group_ids": INT_LIST,
        }
    ),
    "RelationInput": obj(_RELATION_FIELDS, ["name"]),
    "Contact": obj({"id": INT, "relation_id": INT, **_CONTACT_FIELDS}),
    "ContactInput": obj(_CONTACT_FIELDS, ["name"]),
    "ProjectSummary": obj(_PROJECT_SUMMARY),
    "Project": obj(
        {
            **_PROJECT_SUMMARY,
            "description": STR,
            "contacts": {"type": "array", "items": obj({"id": INT, "name": STR})},
            "one_off_contact": obj({"name": STR, "email": STR, "phone": STR}),
            "notepad": STR,
            "notepad_updated_at": DATETIME,
            "notepad_updated_by_id": NULL_INT,
            "linked_user_ids": INT_LIST,
            "linked_group_ids": INT_LIST,
            **{name: STR for name in FREE_TEXT_FIELDS},
            "chance": CHOICE_REF,
            **{name: CHOICE_REF for name in FREE_CHOICES},
        }
    ),
    "ProjectInput": {
        **obj(
            {
                "relation_id": {"type": "integer", "description": "A relation you may see"},
                "name": STR,
                "description": STR,
                "contact_ids": {"type": "array", "items": INT, "description": "Contacts of the relation"},
                "one_off_contact_name": STR,
                "one_off_contact_email": STR,
                "one_off_contact_phone": STR,
                "start_date": DATE,
                "end_date": DATE,
                "end_date_expected": BOOL,
                "responsible_user_id": NULL_INT,
                "value": {"type": ["string", "number", "null"], "description": 'An amount, such as "1250.00"'},
                "currency": STR,
                "closed": BOOL,
                **{name: STR for name in FREE_TEXT_FIELDS},
                **{name: CHOICE_ID for name in CHOICE_NAMES},
            },
            ["relation_id", "name"],
        ),
        "description": "On PATCH every key is optional and only the given keys change.",
    },
    "Activity": obj(
        {
            "id": INT,
            "project_id": INT,
            "title": STR,
            "description": STR,
            "due_date": DATE,
            "done": BOOL,
            "done_at": DATETIME,
            "assigned_user_id": NULL_INT,
        }
    ),
    "ActivityInput": obj(
        {"title": STR, "description": STR, "due_date": DATE, "done": BOOL, "assigned_user_id": NULL_INT}, ["title"]
    ),
    "Document": obj(
        {
            "id": INT,
            "project_id": INT,
            "filename": STR,
            "content_type": STR,
            "size": INT,
            "sha256": STR,
            "uploaded_by_id": NULL_INT,
            "uploaded_at": DATETIME,
        }
    ),
    "Choice": obj({"id": INT, "field": {"enum": CHOICE_NAMES}, "name": STR, "sort_order": INT, "active": BOOL}),
    "ChoiceInput": obj(
        {"field": {"enum": CHOICE_NAMES}, "name": STR, "sort_order": INT, "active": BOOL}, ["field", "name"]
    ),
    "FieldLabels": {
        "type": "object",
        "additionalProperties": STR,
        "description": "Free field (free_text_1..4, free_choice_1..5) → its label",
    },
    "NotepadInput": obj({"text": STR}, ["text"]),
    "Notepad": obj({"text": STR, "updated_at": DATETIME, "updated_by_id": NULL_INT}),
    "Linked": obj({"user_ids": INT_LIST, "group_ids": INT_LIST}),
    "Email": obj(
        {
            "id": INT,
            "message_id": STR,
            "subject": STR,
            "from_address": STR,
            "from_name": STR,
            "sent_at": DATETIME,
            "thread_key": STR,
            "has_attachments": BOOL,
            "size": INT,
            "text_body": {"type": "string", "description": "Only on GET /emails/{email_id}"},
            "problems": {"description": "Only on GET /emails/{email_id}"},
            "participants": {"type": "array", "items": {"type": "object"}},
            "attachments": {"type": "array", "items": {"type": "object"}},
        }
    ),
    "Mailbox": obj(
        {
            "id": INT,
            "name": STR,
            "owner_id": NULL_INT,
            "host": STR,
            "port": INT,
            "security": {"enum": ["none", "starttls", "ssl"]},
            "username": STR,
            "folders": STR_LIST,
            "sync_since": DATE,
            "poll_interval_seconds": INT,
            "sharing": {"enum": ["only_me", "colleagues"]},
            "never_share": STR_LIST,
            "last_success_at": DATETIME,
            "last_error": NULL_STR,
            "failing": BOOL,
            "stalled": BOOL,
            "state": {"enum": ["syncing", "ok", "waiting_first", "waiting_for_worker", "failing", "stalled", "paused"]},
            "state_words": STR,
            "progress": obj({"done": INT, "total": INT}),
            "messages_stored": INT,
            "backlog": INT,
        }
    ),
    "Check": obj({"ok": BOOL, "words": STR}),
    "MailboxInput": obj(
        {
            "host": STR,
            "port": INT,
            "security": {"enum": ["none", "starttls", "ssl"]},
            "username": STR,
            "password": {"type": "string", "writeOnly": True},
            "owner_id": {"type": ["integer", "null"], "description": "Admins only; null is a shared mailbox"},
            "name": STR,
            "folders": STR_LIST,
            "sync_since": DATE,
            "poll_interval_seconds": INT,
            "sharing": {
                "enum": ["only_me", "colleagues"],
                "description": "Personal mailboxes: only the owner, or also colleagues who may see the linked "
                "relation or project (default only_me)",
            },
            "never_share": {**STR_LIST, "description": "Addresses and domains whose mail is never shared"},
        },
        ["host", "port", "security", "username", "password"],
    ),
}


# --- operations ----------------------------------------------------------------------------------


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


PAGE = query("page", {"type": "integer", "minimum": 1, "default": 1}, "Page number")
PER_PAGE = query("per_page", {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}, "Items per page")
SEARCH = query("q", STR, "Search text")


def sort_param(keys: list[str], default: str) -> dict[str, Any]:
    return query("sort", {"type": "string", "default": default}, f"One of {', '.join(keys)}; prefix - to reverse")


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def op(
    operation_id: str,
    summary: str,
    *,
    response: dict[str, Any] | None = None,
    status: int = 200,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    content: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One operation: ``response`` is the JSON schema of the success body (None: no body)."""
    success: dict[str, Any] = {"description": "OK" if response or content else "Done"}
    if content is not None:
        success["content"] = content
    elif response is not None:
        success["content"] = _json(response)
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, "responses": {str(status): success}}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json(body)}
    if params:
        operation["parameters"] = params
    return operation


DONE_FILTER = query("done", BOOL, "1 includes finished activities")

PATHS: dict[str, dict[str, dict[str, Any]]] = {
    "/openapi.json": {
        "get": {
            **op("openapi", "This document", response={"type": "object"}),
            "security": [],
        }
    },
    # relations and contacts
    "/relations": {
        "get": op(
            "list_relations",
            "Relations you may see",
            response=page_of("RelationSummary"),
            params=[
                SEARCH,
                query("status", _RELATION_FIELDS["status"], "Only relations with this status"),
                sort_param(["name", "city", "status", "updated"], "name"),
                PAGE,
                PER_PAGE,
            ],
        ),
        "post": op(
            "create_relation",
            "Create a relation (you are its owner unless owner_id says otherwise)",
            body=ref("RelationInput"),
            status=201,
            response=ref("Relation"),
        ),
    },
    "/relations/{relation_id}": {
        "get": op("get_relation", "One relation", response=ref("Relation")),
        "patch": op(
            "update_relation",
            "Change a relation; only the given keys",
            body=ref("RelationInput"),
            response=ref("Relation"),
        ),
        "delete": op("delete_relation", "Delete a relation without projects (its owner or an admin)", status=204),
    },
    "/relations/{relation_id}/linked": {
        "put": op(
            "put_relation_linked",
            "Set who sees the relation (its owner or an admin); nobody linked: all staff",
            body=ref("Linked"),
            response=ref("Linked"),
        ),
    },
    "/relations/{relation_id}/contacts": {
        "get": op("list_contacts", "The relation's contacts", response=items_of("Contact")),
        "post": op(
            "create_contact",
            "Add a contact to the relation",
            body=ref("ContactInput"),
            status=201,
            response=ref("Contact"),
        ),
    },
    "/contacts/{contact_id}": {
        "get": op("get_contact", "One contact", response=ref("Contact")),
        "patch": op(
            "update_contact", "Change a contact; only the given keys", body=ref("ContactInput"), response=ref("Contact")
        ),
        "delete": op("delete_contact", "Delete a contact", status=204),
    },
    # projects
    "/projects": {
        "get": op(
            "list_projects",
            "Projects you may see",
            response=page_of("ProjectSummary"),
            params=[
                SEARCH,
                query("relation_id", INT, "Only this relation's projects"),
                query("open", BOOL, "1: only projects not closed"),
                sort_param(["name", "start", "end", "value", "updated", "relation"], "-updated"),
                PAGE,
                PER_PAGE,
            ],
        ),
        "post": op(
            "create_project",
            "Create a project (you are responsible unless responsible_user_id says otherwise)",
            body=ref("ProjectInput"),
            status=201,
            response=ref("Project"),
        ),
    },
    "/projects/{project_id}": {
        "get": op("get_project", "One project with every field", response=ref("Project")),
        "patch": op(
            "update_project", "Change a project; only the given keys", body=ref("ProjectInput"), response=ref("Project")
        ),
        "delete": op("delete_project", "Delete a project (its responsible user or an admin)", status=204),
    },
    "/projects/{project_id}/notepad": {
        "put": op("put_notepad", "Replace the project's notepad", body=ref("NotepadInput"), response=ref("Notepad")),
    },
    "/projects/{project_id}/linked": {
        "put": op(
            "put_linked",
            "Set the users and groups who see the project; nobody linked: all staff",
            body=ref("Linked"),
            response=ref("Linked"),
        ),
    },
    # activities
    "/projects/{project_id}/activities": {
        "get": op("list_activities", "The project's activities", response=items_of("Activity")),
        "post": op(
            "create_activity",
            "Add an activity (assigned to you unless assigned_user_id says otherwise)",
            body=ref("ActivityInput"),
            status=201,
            response=ref("Activity"),
        ),
    },
    "/activities/mine": {
        "get": op(
            "my_activities",
            "Activities assigned to you, due first",
            response=items_of("Activity"),
            params=[DONE_FILTER],
        ),
    },
    "/activities/{activity_id}": {
        "get": op("get_activity", "One activity", response=ref("Activity")),
        "patch": op(
            "update_activity",
            "Change an activity; only the given keys",
            body=ref("ActivityInput"),
            response=ref("Activity"),
        ),
        "delete": op("delete_activity", "Delete an activity", status=204),
    },
    # documents
    "/projects/{project_id}/documents": {
        "get": op("list_documents", "The project's documents, newest first", response=items_of("Document")),
        "post": {
            **op("upload_document", "Upload a document", status=201, response=ref("Document")),
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": obj({"file": {"type": "string", "format": "binary"}}, ["file"]),
                    }
                },
            },
        },
    },
    "/documents/{document_id}": {
        "get": op("get_document", "A document's metadata", response=ref("Document")),
        "delete": op("delete_document", "Delete a document", status=204),
    },
    "/documents/{document_id}/content": {
        "get": op(
            "download_document",
            "A document's content, as uploaded",
            content={"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        ),
    },
    # choices and field labels
    "/choices": {
        "get": op(
            "list_choices",
            "Dropdown choices, active and inactive",
            response=items_of("Choice"),
            params=[query("field", {"enum": CHOICE_NAMES}, "Only this dropdown's choices")],
        ),
        "post": op(
            "create_choice", "Add a choice (admins)", body=ref("ChoiceInput"), status=201, response=ref("Choice")
        ),
    },
    "/choices/{choice_id}": {
        "patch": op("update_choice", "Change a choice (admins)", body=ref("ChoiceInput"), response=ref("Choice")),
        "delete": op("delete_choice", "Delete a choice no project uses (admins); else deactivate it", status=204),
    },
    "/field-labels": {
        "get": op("get_labels", "The free fields' labels", response=ref("FieldLabels")),
        "put": op("put_labels", "Rename free fields (admins)", body=ref("FieldLabels"), response=ref("FieldLabels")),
    },
    # mail
    "/emails": {
        "get": op(
            "list_emails",
            "E-mails you may see, newest first",
            response=page_of("Email"),
            params=[SEARCH, query("message_id", STR, "Find one message by its Message-ID"), PAGE, PER_PAGE],
        ),
    },
    "/emails/{email_id}": {
        "get": op("get_email", "One e-mail with its text, participants and attachments", response=ref("Email")),
    },
    "/projects/{project_id}/emails": {
        "get": op(
            "list_project_emails",
            "The project's E-mails tab",
            response=page_of("Email"),
            params=[SEARCH, PAGE, PER_PAGE],
        ),
    },
    "/mailboxes": {
        "get": op(
            "list_mailboxes",
            "Your mailboxes (every one, for admins) and their sync health",
            response=items_of("Mailbox"),
        ),
        "post": op(
            "create_mailbox",
            "Connect a mailbox (the password is stored encrypted and never returned)",
            body=ref("MailboxInput"),
            status=201,
            response=ref("Mailbox"),
        ),
    },
    "/mailboxes/{mailbox_id}": {
        "get": op("get_mailbox", "One mailbox and its sync health", response=ref("Mailbox")),
    },
    "/health": {
        "get": op(
            "health",
            "The installation (database, broker, workers, beat, queues) and your mailboxes, one state each",
            response=obj(
                {
                    "ok": BOOL,
                    "database": ref("Check"),
                    "broker": ref("Check"),
                    "workers": STR_LIST,
                    "beat": ref("Check"),
                    "queues": {"type": "object", "additionalProperties": INT},
                    "mailboxes": {"type": "array", "items": ref("Mailbox")},
                }
            ),
        ),
    },
    "/mailboxes/{mailbox_id}/sync": {
        "post": op("sync_mailbox_now", "Queue a sync of the mailbox now", status=202, response=obj({"queued": BOOL})),
    },
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json(ref("Error"))}


ERRORS: dict[str, dict[str, Any]] = {
    "400": _error("Bad input; error.field names the field, error.fields lists every one"),
    "401": _error("No or bad API token"),
    "404": _error("Not found, or not visible to you (the same answer)"),
}

_PATH_PARAM = re.compile(r"{(\w+)}")


def _complete(path: str, operation: dict[str, Any]) -> dict[str, Any]:
    """Add what every operation shares: its path parameters and the error responses."""
    operation = copy.deepcopy(operation)
    names = _PATH_PARAM.findall(path)
    if names:
        path_params = [{"name": n, "in": "path", "required": True, "schema": INT} for n in names]
        operation["parameters"] = path_params + operation.get("parameters", [])
    if operation.get("security") != []:
        for code, response in ERRORS.items():
            operation["responses"].setdefault(code, response)
    return operation


def document() -> dict[str, Any]:
    """The whole OpenAPI document, ready for JSON."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hub API",
            "version": "1",
            "description": (
                "Relations, contacts, CRM projects, activities, documents, dropdown choices and e-mail. "
                "Authenticate with `Authorization: Bearer <token>` (`hub token create EMAIL` prints one). "
                'Errors are {"error": {"message": …, "field": …}}. Whatever you may not see answers 404, '
                "exactly like something that does not exist."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": {
            path: {method: _complete(path, operation) for method, operation in methods.items()}
            for path, methods in PATHS.items()
        },
    }
