"""The JSON API under /api/v1: token auth, the same access rules as the pages, JSON errors.

Each resource is declared once, as pydantic v2 models (web/api/schemas.py) handed to spectree's
``validate`` decorator: the same declaration validates the query string and body, shapes and checks
the response, and becomes the OpenAPI 3.1 document at /api/v1/openapi.json (docs: /api/v1/docs).

Why spectree (3.0) over the other maintained Flask integrations we compared:

- it decorates views of a plain ``flask.Blueprint`` and reads the app's URL map, so our app factory
  and ``app.register_blueprint(bp, url_prefix="/api/v1")`` stay as they are. flask-openapi3 and
  APIFlask only build the document from their own app class (``OpenAPI`` / ``APIFlask``), which
  would replace the Flask app of every page; flask-smorest needs its ``Api`` object on the app;
- pydantic v2 natively and OpenAPI 3.1.0 (pydantic's JSON Schema 2020-12 goes in unchanged).
  flask-smorest is marshmallow-only (apispec, 3.1 partly); APIFlask's pydantic support is new and
  behind its marshmallow-first API;
- it hands every extra query key to the model, so ``extra="forbid"`` makes an unknown filter a 400
  (flask-openapi3 4.3 does too; APIFlask/webargs drop unknown query keys unless told per schema);
- error shape: a ``before`` hook sees the pydantic error before any response is sent, so our
  {"error": …} body is the only one the API gives (the others offer an error callback as well).
"""

from __future__ import annotations

from flask import Blueprint
from spectree import SecurityScheme, SpecTree
from spectree.models import InType, SecureType, SecuritySchemeData

from web.api.schemas import Error

bp = Blueprint("api", __name__)

# Only views decorated here are in the document ("strict"); 400 is our error shape, not spectree's 422.
spec = SpecTree(
    "flask",
    mode="strict",
    annotations=False,
    title="hub API",
    version="1",
    validation_error_status=400,
    validation_error_model=Error,
    security_schemes=[
        SecurityScheme(name="bearerAuth", data=SecuritySchemeData(type=SecureType.HTTP, scheme="bearer")),
        # The phone systems' webhooks take no token: each request is signed by the source's secret.
        SecurityScheme(
            name="twilioSignature",
            data=SecuritySchemeData(
                type=SecureType.API_KEY,
                name="X-Twilio-Signature",
                field_in=InType.HEADER,
                description="Twilio: base64 HMAC-SHA1 of the full URL and the sorted POST parameters, "
                "keyed by the auth token (the source's secret)",
            ),
        ),
        SecurityScheme(
            name="hubSignature",
            data=SecuritySchemeData(
                type=SecureType.API_KEY,
                name="X-Hub-Signature-256",
                field_in=InType.HEADER,
                description="sha256=<hex HMAC-SHA256 of the raw body, keyed by the source's secret>",
            ),
        ),
        SecurityScheme(
            name="webhookBasicAuth",
            data=SecuritySchemeData(
                type=SecureType.HTTP,
                scheme="basic",
                description="FreeSWITCH mod_json_cdr: any user name, the source's secret as the password",
            ),
        ),
    ],
    # Components named as the models are (spectree adds a hash by default): one name per shape.
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    security={"bearerAuth": []},
)
# The document's paths are the blueprint's rules; spectree finds them through the registration.
bp.record(lambda state: setattr(spec.backend, "blueprint_state", state))

from web.api import calendar, campaigns, errors, routes, telephony  # noqa: E402, F401  (registers the routes and handlers on bp)
