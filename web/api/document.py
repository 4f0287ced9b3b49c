"""The OpenAPI 3.1 document, as spectree generates it from the declared views and models, with
what every operation shares filled in; and the page that shows it (/api/v1/docs)."""

from __future__ import annotations

import copy
from typing import Any

from hub.paging import MAX_ID
from web.api import spec

PREFIX = "/api/v1"
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
DESCRIPTION = (
    "Relations, contacts, CRM projects, activities, documents, dropdown choices, users and e-mail. "
    "Authenticate with `Authorization: Bearer <token>` (`hub token create EMAIL` prints one). "
    'Errors are {"error": {"message": …, "field": …, "fields": {…}}}; an unknown parameter or body '
    "field is an error too. Lists page by cursor: pass a page's `next` as `?cursor=` for the next one; "
    "`?total=1` adds the number of matching items. Whatever you may not see answers 404, exactly "
    "like something that does not exist. The phone systems' webhooks (`POST /telephony/{source}/events`) "
    "take no token: each request is signed with the source's secret."
)
SOURCE_NAME_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"}
# The bodies the phone systems post, read only after the signature is checked (not by a model:
# Twilio adds parameters over time, and the generic JSON may be one call or a list of calls).
WEBHOOK_BODY = {
    "application/x-www-form-urlencoded": {
        "schema": {
            "type": "object",
            "description": "Twilio status callback parameters (CallSid, CallStatus, From, To, …), "
            "or FreeSWITCH mod_json_cdr's form field cdr",
            "additionalProperties": {"type": "string"},
        }
    },
    "application/json": {
        "schema": {
            "description": "The generic JSON: one call or a list of calls; FreeSWITCH's JSON CDR",
            "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}],
            "example": {
                "call_id": "c-1",
                "direction": "inbound",
                "from": "+31201234567",
                "to": "100",
                "start": "2025-03-04T10:15:02Z",
                "answer": "2025-03-04T10:15:09Z",
                "end": "2025-03-04T10:18:41Z",
                "duration": 219,
                "billsec": 212,
                "outcome": "answered",
                "extension": "100",
                "recording_url": "",
            },
        }
    },
}


def document() -> dict[str, Any]:
    doc = copy.deepcopy(spec.spec)
    doc["info"]["description"] = DESCRIPTION
    doc["servers"] = [{"url": PREFIX}]
    doc.pop("tags", None)
    paths: dict[str, Any] = {}
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            operation.pop("tags", None)
            if not operation.get("description"):
                operation.pop("description", None)
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    parameter["schema"] = dict(ID_SCHEMA)
                    parameter.pop("description", None)
        paths[path.removeprefix(PREFIX)] = operations
    # The one response that is not JSON: a document as it was uploaded, in its own content type.
    download = paths["/documents/{document_id}/content"]["get"]["responses"]["200"]
    download["content"] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    _describe_webhook(paths["/telephony/{source}/events"]["post"])
    for operations in paths.values():
        for method, operation in operations.items():
            _describe_token_and_version(method, operation)
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
            },
        }
    }
    doc["paths"] = paths
    return doc


WRITE_METHODS = {"post", "put", "patch", "delete"}
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "The ETag you read (the object's version). When the object changed since, the "
    "answer is 412 and nothing is saved; leave it out to save regardless.",
    "schema": {"type": "string"},
}


def _describe_token_and_version(method: str, operation: dict[str, Any]) -> None:
    """What the shared checks answer, written on each operation they apply to: a read-only token's
    403 on every change, and If-Match on every change that answers 412."""
    responses = operation.get("responses", {})
    # Operations with their own security (the phone systems' signed webhooks) take no token.
    if method in WRITE_METHODS and "security" not in operation and "401" in responses:
        refused = copy.deepcopy(responses["401"])
        refused["description"] = "The API token is read-only"
        responses.setdefault("403", refused)
    if "412" in responses:
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("name") == "If-Match" for p in parameters):
            parameters.append(dict(IF_MATCH))


def _describe_webhook(operation: dict[str, Any]) -> None:
    """The webhook's path names a source by its name, and its body is what the phone system sends."""
    for parameter in operation.get("parameters", []):
        if parameter["name"] == "source":
            parameter["schema"] = dict(SOURCE_NAME_SCHEMA)
            parameter["description"] = "The source's name (Settings → Telephony)"
    operation["requestBody"] = {"required": True, "content": copy.deepcopy(WEBHOOK_BODY)}
