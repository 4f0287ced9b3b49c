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
    "like something that does not exist."
)


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
