"""Telephony in the API: the calls list and one call, caller ID (hub's own answer and the lookup of
3CX's CRM integration), and the webhooks the phone systems post their calls to.

Calls follow the one visibility rule (hub.telephony.read.call_visible): a hidden call is a 404 and
absent from every list. Caller ID answers for the token's user, so a number of a relation the user
may not see is "unknown", exactly like a number nobody has.

The webhooks take no API token: the phone system signs each request with the source's secret
(hub.telephony.webhooks verifies it before reading anything). How the URL Twilio signed is rebuilt:
hub trusts no proxy headers (there is no proxy setting and no ProxyFix: X-Forwarded-Proto/-Host
could be sent by anyone), so the signature is checked against the URL as hub received it
(``request.url``) and against the same path under ``HUB_BASE_URL``, the public URL an admin sets
when hub runs behind a proxy and gives to Twilio.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from flask import request, url_for
from sqlalchemy import select

from hub.errors import NotFound
from hub.i18n import _
from hub.models import Call, EmailAddress
from hub.paging import Sort
from hub.telephony.read import CallerId, CallFilters, call_list_rows, callerid_lookup, get_call, hidden_links
from hub.telephony.records import recording_url
from hub.telephony.sources import NAME_RE
from hub.telephony.webhooks import GENERIC_HEADER, TWILIO_HEADER, BodyError, SignatureError, ingest_webhook
from web.api import bp, schemas
from web.api.errors import LOADERS, PUBLIC_ENDPOINTS, bad_text, error_body, not_found
from web.api.routes import _empty, _keyset, _page, _visible, declare, me, path_object, valid_query
from web.context import database, db_session, settings

# Authenticated by the source's signature, not by a token (web.api.errors skips the token check).
PUBLIC_ENDPOINTS.add("api.telephony_events")
WEBHOOK_SECURITY: list[dict[str, list[str]]] = [{"twilioSignature": []}, {"hubSignature": []}, {"webhookBasicAuth": []}]
# A 401 invites HTTP basic auth: curl in FreeSWITCH's mod_json_cdr (auth-scheme "any") first asks
# without credentials and sends them only when challenged.
CHALLENGE = {"WWW-Authenticate": 'Basic realm="hub webhooks"'}
CALL_SORT = Sort(Call.started_at, Call.id, lambda c: c.started_at, descending=True)
LINKS = ("relation_id", "contact_id", "project_id")

LOADERS["call_id"] = lambda i: get_call(db_session(), me(), i)


# --- calls ---------------------------------------------------------------------------------------


@bp.get("/calls")
@declare(out=schemas.CallPage, query=schemas.CallQuery, errors=(400, 401))
def list_calls() -> Any:
    """Calls you may see, newest first; filter by source, relation, contact, project, user, direction, outcome, date"""
    q = valid_query(schemas.CallQuery)
    targets = (("relation_id", q.relation_id), ("project_id", q.project_id), ("contact_id", q.contact_id))
    if not all(_visible(name, value) for name, value in targets):
        return _empty(schemas.CallPage, q)
    filters = CallFilters(
        source=q.source,
        relation_id=q.relation_id,
        contact_id=q.contact_id,
        project_id=q.project_id,
        user_id=q.user_id,
        direction=q.direction,
        outcome=q.outcome,
        since=q.since,
    )
    # keyset_page orders by CALL_SORT itself (the same order as calls_query's). Plain columns in a
    # kept statement, validated as dicts: Call objects and building the statement were most of it.
    query, kept = call_list_rows(me(), filters)
    page = _keyset(query, {"started": CALL_SORT}, "-started", q, rows=True, kept=kept)
    hidden = hidden_links(db_session(), me(), page.items)
    page.items = [hidden.masked(_listed_call(row)) for row in page.items]
    return _page(page, schemas.CallPage, q)


def _listed_call(row: Any) -> dict[str, Any]:
    """A list row as schemas.Call reads it (its source's name at source.name)."""
    values = row._asdict()
    values["source"] = {"name": values.pop("source_name")}
    values["recording_url"] = recording_url(values["recording_url"])  # see get_one_call
    return values


@bp.get("/calls/<int:call_id>")
@declare(out=schemas.Call)
def get_one_call(call_id: int) -> Any:
    """One call: numbers, times (UTC), outcome, who took it, its recording and what it is linked to"""
    call = path_object("call_id")
    shown = schemas.Call.model_validate(call)
    hidden = hidden_links(db_session(), me(), [call])
    # A javascript: or data: link stored before imports refused them is no recording.
    update = {"recording_url": recording_url(shown.recording_url)}
    return shown.model_copy(update=hidden.masked({**update, **{name: getattr(shown, name) for name in LINKS}}))


# --- caller ID -----------------------------------------------------------------------------------


def _number(raw: str) -> str:
    """The number as the caller meant it: an unencoded "+" in a query string arrives as a space."""
    text = raw.strip()
    return "+" + text if raw.startswith(" ") and text[:1].isdigit() else text


def _lookup(raw: str) -> tuple[str | None, CallerId | None]:
    from hub.telephony.numbers import normalise

    number = _number(raw)
    region = settings().default_phone_region
    return normalise(number, region), callerid_lookup(db_session(), number, region, user=me())


def _relation_url(found: CallerId) -> str:
    return url_for("relations.show", relation_id=found.relation_id, _external=True)


@bp.get("/callerid")
@declare(out=schemas.CallerId, query=schemas.CallerIdQuery, errors=(400, 401))
def callerid() -> Any:
    """Who is calling: the contact and relation a number belongs to, and the page to open

    Answers for the token's user: a number of a relation you may not see is unknown (found: false).
    """
    e164, found = _lookup(valid_query(schemas.CallerIdQuery).number)
    if found is None:
        return schemas.CallerId(found=False, number=e164, name="", contact=None, relation=None, url=None)
    contact = None if found.contact_id is None else schemas.NamedRef(id=found.contact_id, name=found.contact_name)
    name = f"{found.contact_name} ({found.relation_name})" if found.contact_name else found.relation_name
    return schemas.CallerId(
        found=True,
        number=found.number,
        name=name,
        contact=contact,
        relation=schemas.NamedRef(id=found.relation_id, name=found.relation_name),
        url=_relation_url(found),
    )


def _email_of(found: CallerId) -> str:
    owner = (
        EmailAddress.contact_id == found.contact_id
        if found.contact_id is not None
        else (EmailAddress.relation_id == found.relation_id) & EmailAddress.contact_id.is_(None)
    )
    return db_session().scalar(select(EmailAddress.address).where(owner).order_by(EmailAddress.id).limit(1)) or ""


@bp.get("/callerid/3cx")
@declare(out=schemas.ThreeCxContacts, query=schemas.ThreeCxQuery, errors=(400, 401))
def callerid_3cx() -> Any:
    """Caller ID for 3CX's CRM integration (the template under Settings → Telephony); a read-only token

    3CX sends the token as Authorization: Bearer, set in the template's API token field.
    """
    _e164, found = _lookup(valid_query(schemas.ThreeCxQuery).number)
    if found is None:
        return schemas.ThreeCxContacts(contacts=[])
    if found.contact_id is not None:
        first, _sep, last = found.contact_name.strip().partition(" ")
        key = f"contact-{found.contact_id}"
    else:  # a number of the relation itself: 3CX shows the company as the name
        first, last, key = "", found.relation_name, f"relation-{found.relation_id}"
    contact = schemas.ThreeCxContact(
        id=key,
        firstName=first,
        lastName=last,
        companyName=found.relation_name,
        email=_email_of(found),
        phoneBusiness=found.number,
        url=_relation_url(found),
    )
    return schemas.ThreeCxContacts(contacts=[contact])


def threecx_template(base_url: str) -> str:
    """3CX's server-side CRM template (Admin → Settings → CRM → Server side → upload) for the hub
    at ``base_url``: a phone number matching scenario on /api/v1/callerid/3cx with the API token
    as a bearer header. Numbers go with 00 instead of + (an unencoded + in a URL is a space)."""
    url = base_url.rstrip("/") + "/api/v1/callerid/3cx?number=[Number]"
    outputs = (
        ("ContactID", "[ContactID]"),
        ("FirstName", "[FirstName]"),
        ("LastName", "[LastName]"),
        ("CompanyName", "[CompanyName]"),
        ("Email", "[Email]"),
        ("PhoneBusiness", "[PhoneBusiness]"),
        ("ContactUrl", "[ContactUrl]"),
        ("EntityId", "[ContactID]"),
        ("EntityType", "Contacts"),
    )
    variables = (
        ("ContactID", "id"),
        ("FirstName", "firstName"),
        ("LastName", "lastName"),
        ("CompanyName", "companyName"),
        ("Email", "email"),
        ("PhoneBusiness", "phoneBusiness"),
        ("ContactUrl", "url"),
    )
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        # No "--" may stand in an XML comment (3CX refuses the file), and an IDN host has one (xn--).
        f"<!-- hub caller ID for 3CX: {escape(base_url).replace('--', '%2D%2D')} -->",
        '<Crm Country="NL" Name="hub" Version="1" SupportsEmojis="true">',
        '  <Number Prefix="Zeros" MaxLength="" />',
        '  <Connection MaxConcurrentRequests="4" />',
        "  <Parameters>",
        '    <Parameter Name="ApiToken" Type="Password" Parent="General Configuration" Editor="String"'
        ' Title="hub API token (read-only):" Default="" />',
        "  </Parameters>",
        '  <Authentication Type="No" />',
        "  <Scenarios>",
        '    <Scenario Id="" Type="REST">',
        f'      <Request SkipIf="" Url={quoteattr(url)} MessagePasses="0" RequestEncoding="UrlEncoded"'
        ' RequestType="Get" ResponseType="Json">',
        "        <Headers>",
        '          <Value Key="Authorization" Passes="0" Type="String">Bearer [ApiToken]</Value>',
        "        </Headers>",
        "      </Request>",
        "      <Rules>",
        '        <Rule Type="Any">contacts.id</Rule>',
        "      </Rules>",
        "      <Variables>",
        *(f'        <Variable Name="{name}" Path="contacts.{path}"><Filter /></Variable>' for name, path in variables),
        "      </Variables>",
        '      <Outputs AllowEmpty="false">',
        *(f'        <Output Type="{kind}" Passes="0" Value="{value}" />' for kind, value in outputs),
        "      </Outputs>",
        "    </Scenario>",
        "  </Scenarios>",
        "</Crm>",
    ]
    return "\n".join(lines) + "\n"


# --- webhooks ------------------------------------------------------------------------------------


def _signed_urls() -> list[str]:
    """The URLs the sender may have signed: as hub received it, and under HUB_BASE_URL (hub's
    public root URL; a proxy's X-Forwarded-* headers are not trusted)."""
    path = request.path + (f"?{request.query_string.decode('latin-1')}" if request.query_string else "")
    return [request.url, settings().base_url.rstrip("/") + path]


def _has_credentials() -> bool:
    return any(name in request.headers for name in (TWILIO_HEADER, GENERIC_HEADER, "Authorization"))


# The URL argument is the source's *name* (DESIGN: /telephony/<source>/events).
# A request with no credentials at all is a 401 before the source is looked up, with a basic-auth
# challenge (curl in mod_json_cdr may wait for one); with any credentials, an unknown or paused
# source is a 404 and a wrong signature a 401 (ingest_webhook's contract).
@bp.post("/telephony/<source>/events")
@declare(out=schemas.WebhookResult, errors=(400, 401, 404), security=WEBHOOK_SECURITY)
def telephony_events(source: str) -> Any:
    """A phone system's webhook (Twilio status callbacks, the generic JSON, FreeSWITCH mod_json_cdr)

    ``source`` is the source's name as set under Settings → Telephony. No API token: the request is
    signed with the source's secret (see the security schemes). A request without a signature or
    with a wrong one is a 401 and stores nothing; a signed body that is not JSON a 400 (nothing
    stored); a retried or out-of-order request changes nothing twice.
    """
    if not _has_credentials():
        return error_body(_("This webhook must be signed with the phone system's secret.")), 401, CHALLENGE
    if bad_text(source) or not NAME_RE.match(source):
        raise not_found()
    try:
        result = ingest_webhook(
            database(),
            source,
            request.get_data(cache=False),
            _signed_urls(),
            dict(request.headers),
            secret_key=settings().secret_key,
        )
    except NotFound:
        raise not_found() from None
    except SignatureError:
        return error_body(_("The signature does not match this phone system's secret.")), 401, CHALLENGE
    except BodyError:
        return error_body(_("The body is not JSON as the phone system's format sends it; nothing was stored.")), 400
    return schemas.WebhookResult(
        legs=result.legs, imported=result.imported, known=result.known, rejected=result.rejected
    )
