"""The OpenAPI document at /api/v1/openapi.json describes exactly the API that exists.

It is generated from the views' declarations (web/api/schemas.py), so these tests check the
generation: every route is in it, each operation is complete, the shapes are what the API returns.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

PREFIX = "/api/v1"


def _api_routes(app: Flask) -> set[tuple[str, str]]:
    """(path in OpenAPI spelling, method) for every /api/v1 rule except the document itself."""
    routes = set()
    for rule in app.url_map.iter_rules():
        # /docs is the same document as a page (the same endpoint, api.openapi).
        if not rule.rule.startswith(PREFIX + "/") or rule.endpoint == "api.openapi":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix(PREFIX))
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    return routes


def _document(client: FlaskClient) -> dict[str, Any]:
    response = client.get(PREFIX + "/openapi.json")  # no token: the document is public
    assert response.status_code == 200 and response.mimetype == "application/json"
    return dict(response.get_json())


def test_every_api_route_is_in_the_document(app: Flask, client: FlaskClient) -> None:
    document = _document(client)
    documented = {
        (path, method) for path, methods in document["paths"].items() for method in methods if path != "/openapi.json"
    }
    missing = _api_routes(app) - documented
    assert not missing, f"routes not declared (web/api/routes.py: @declare): {sorted(missing)}"
    stale = documented - _api_routes(app)
    assert not stale, f"the document describes routes that do not exist: {sorted(stale)}"


def test_each_operation_is_complete(app: Flask, client: FlaskClient) -> None:
    document = _document(client)
    endpoints = {rule.endpoint.removeprefix("api.") for rule in app.url_map.iter_rules() if rule.endpoint}
    operation_ids = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            where = f"{method.upper()} {path}"
            operation_ids.append(operation["operationId"])
            assert operation["operationId"] in endpoints, where  # named after the view that serves it
            assert operation["summary"], where
            assert any(code.startswith("2") for code in operation["responses"]), where
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), where
            if path != "/openapi.json":
                assert "401" in operation["responses"], where
            if declared:  # a URL that names an object: missing or hidden, the same 404
                assert "404" in operation["responses"], where
            if method in {"post", "put", "patch"} and not path.endswith("/sync"):
                assert "requestBody" in operation, where
    assert len(operation_ids) == len(set(operation_ids))


def test_document_is_openapi_31_with_bearer_auth_and_schemas(client: FlaskClient) -> None:
    document = _document(client)
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert document["security"] == [{"bearerAuth": []}]
    assert document["paths"]["/openapi.json"]["get"]["security"] == []
    schemas = document["components"]["schemas"]
    for name in ("Relation", "Contact", "Project", "Activity", "Document", "Choice", "Error"):
        assert schemas[name]["properties"], name
    project = schemas["Project"]["properties"]
    assert {"value", "currency", "contacts", "linked_user_ids", "linked_group_ids", "free_choice_5"} <= set(project)
    detail = schemas["Error"]["properties"]["error"]["$ref"].rsplit("/", 1)[-1]
    assert schemas[detail]["required"] == ["message", "field"]
    # Every $ref points at a schema that exists.
    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(document).replace("'", '"')))
    assert refs and refs <= set(schemas)


def test_documented_shapes_match_what_the_api_returns(client: FlaskClient, make_user: Any, db: Any) -> None:
    from hub.accounts.users import create_token
    from hub.models import User

    user = make_user(admin=True)
    with db.transaction() as s:
        headers = {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id))}
    schemas = _document(client)["components"]["schemas"]
    relation = client.post(PREFIX + "/relations", json={"name": "R"}, headers=headers).get_json()
    project = client.post(PREFIX + "/projects", json={"relation_id": relation["id"], "name": "P"}, headers=headers)
    pid = project.get_json()["id"]
    error = client.post(PREFIX + "/projects", json={"name": ""}, headers=headers).get_json()
    contact = client.post(f"{PREFIX}/relations/{relation['id']}/contacts", json={"name": "C"}, headers=headers)
    activity = client.post(f"{PREFIX}/projects/{pid}/activities", json={"title": "A"}, headers=headers)
    choice = client.post(PREFIX + "/choices", json={"field": "type", "name": "T"}, headers=headers)
    shapes = {
        "Relation": relation,
        "RelationSummary": client.get(PREFIX + "/relations", headers=headers).get_json()["items"][0],
        "Project": project.get_json(),
        "ProjectSummary": client.get(PREFIX + "/projects", headers=headers).get_json()["items"][0],
        "Contact": contact.get_json(),
        "Activity": activity.get_json(),
        "Choice": choice.get_json(),
        "Error": error,
    }
    for name, body in shapes.items():
        assert set(body) == set(schemas[name]["properties"]), name


def test_read_only_refusals_and_if_match_are_documented_as_answered(
    client: FlaskClient, make_user: Any, db: Any
) -> None:
    """Every change documents the 403 a read-only token gets, and the live API answers it; every
    change that can answer 412 documents its If-Match header, and a stale one gets that 412."""
    from hub.accounts.users import create_token
    from hub.models import User

    document = _document(client)
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            where = f"{method.upper()} {path}"
            if method in {"post", "patch", "put", "delete"} and "security" not in operation:
                assert "403" in operation["responses"], where
            if "412" in operation["responses"]:
                assert "If-Match" in {p["name"] for p in operation.get("parameters", [])}, where
    user = make_user(admin=True)
    with db.transaction() as s:
        read = {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id), scope="read")}
        write = {"Authorization": "Bearer " + create_token(s, s.get_one(User, user.id))}
    created = client.post(PREFIX + "/relations", json={"name": "Bakker BV"}, headers=write)
    assert created.status_code == 201
    url = f"{PREFIX}/relations/{created.get_json()['id']}"
    assert client.patch(url, json={"name": "X"}, headers=read).status_code == 403
    stale = client.patch(url, json={"name": "Y"}, headers={**write, "If-Match": '"999"'})
    assert stale.status_code == 412
    assert client.get(url, headers=read).get_json()["name"] == "Bakker BV"
