"""Webhooks of cloud PBXs: verified first, then stored like any other leg.

``POST /api/v1/telephony/<source>/events`` (declared in web/api) calls :func:`ingest_webhook` with
the raw body. A request is verified before anything is read from it, and a bad signature stores
nothing:

- Twilio status callbacks (form POST): ``X-Twilio-Signature`` is base64(HMAC-SHA1(auth token, the
  full URL followed by every POST parameter, sorted by name, name then value)), exactly as Twilio
  documents it; the source's secret is the account's auth token.
- FreeSWITCH mod_json_cdr (form field ``cdr`` or raw JSON): HTTP basic auth (``cred`` in
  json_cdr.conf.xml) whose password is the source's secret, or the generic HMAC header.
- Everything else: the generic JSON (see :func:`hub.telephony.formats.generic_leg`), one call or a
  list, with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed by the secret>``.

Retries and events out of order change nothing twice: legs merge into their call by rules that do
not depend on order (hub.telephony.store).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from sqlalchemy import select

from hub.db import Database
from hub.errors import NotFound
from hub.i18n import english
from hub.models import CallSource
from hub.telephony.formats import freeswitch_json_leg, generic_leg, twilio_leg
from hub.telephony.records import Clock, Leg, Reject
from hub.telephony.sources import source_secret
from hub.telephony.store import load_context, store_legs

GENERIC_HEADER = "X-Hub-Signature-256"
TWILIO_HEADER = "X-Twilio-Signature"


class SignatureError(Exception):
    """The request is not signed by the source's secret (the API answers 401 and stores nothing)."""


class BodyError(Exception):
    """A signed body that is not JSON at all (or nested deeper than any call record, or broken
    base64): the API answers 400 and stores nothing. A JSON call that cannot be read is no
    BodyError: it is rejected on its own, and the other calls of the body are stored."""


@dataclass(frozen=True)
class WebhookResult:
    legs: int
    imported: int
    known: int
    rejected: list[str]


# --- signatures (pure) --------------------------------------------------------------------------------------


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature for a form POST to ``url`` with ``params`` (a parameter repeated
    with the same value counts once, as Twilio's own libraries do)."""
    payload = url + "".join(f"{name}{value}" for name, value in sorted(set(params)))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    """The URL as given, and with the default port added or removed (a proxy in front of hub may
    change it; Twilio's own libraries try both)."""
    parts = urlsplit(url)
    variants = [url]
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if parts.port is not None and parts.port == default:
        variants.append(urlunsplit(parts._replace(netloc=host)))
    elif parts.port is None and default:
        variants.append(urlunsplit(parts._replace(netloc=f"{host}:{default}")))
    return variants


def valid_twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str) -> bool:
    if not auth_token or not signature:
        return False
    pairs = list(params)
    return any(
        hmac.compare_digest(twilio_signature(auth_token, variant, pairs).encode(), signature.strip().encode())
        for variant in _url_variants(url)
    )


def generic_signature(secret: str, body: bytes) -> str:
    """The value of X-Hub-Signature-256 for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def valid_generic_signature(secret: str, body: bytes, header: str) -> bool:
    if not secret or not header:
        return False
    return hmac.compare_digest(generic_signature(secret, body).encode(), header.strip().lower().encode())


def valid_basic_auth(secret: str, header: str) -> bool:
    if not secret or not header.lower().startswith("basic "):
        return False
    try:
        _user, _sep, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(password.encode(), secret.encode())


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), "")


# --- ingest ---------------------------------------------------------------------------------------------------


def ingest_webhook(
    db: Database,
    source_name: str,
    body: bytes,
    url: str | Sequence[str],
    headers: Mapping[str, str],
    *,
    secret_key: str,
) -> WebhookResult:
    """Verify and store one webhook request for the source named ``source_name``.

    ``url``: the URL the sender signed (Twilio), or the URLs it may have been (as hub received it,
    as configured behind a proxy): a signature over any of them is accepted.
    Raises NotFound for an unknown or paused source, SignatureError for a request not signed
    with the source's secret (a source without a secret accepts nothing) and BodyError for a
    signed body that is not JSON (nothing stored)."""
    urls = [url] if isinstance(url, str) else list(url)
    with db.transaction() as session:
        source = session.scalar(select(CallSource).where(CallSource.name == source_name, CallSource.active.is_(True)))
        if source is None:
            raise NotFound(source_name)
        secret = source_secret(source, secret_key)
        context = load_context(session, source)
        legs, rejected = _verified_legs(source.format, secret, body, urls, headers, context)
        stored = store_legs(session, context, legs)
        from hub.webhooks.outbox import record_calls

        record_calls(session, "created", stored.ids)  # webhooks' call.created, with the call
        from hub.models.base import utcnow

        source.last_import_at = utcnow()
        source.calls_imported += stored.imported
        source.rows_rejected += len(rejected)
    return WebhookResult(len(legs), stored.imported, stored.known, rejected)


def _verified_legs(
    fmt: str, secret: str, body: bytes, urls: list[str], headers: Mapping[str, str], context: object
) -> tuple[list[Leg], list[str]]:
    from hub.telephony.store import SourceContext

    assert isinstance(context, SourceContext)
    config = context.config
    content_type = _header(headers, "Content-Type").split(";")[0].strip().lower()
    if fmt == "twilio":
        params = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        signature = _header(headers, TWILIO_HEADER)
        if not any(valid_twilio_signature(secret, url, params, signature) for url in urls):
            raise SignatureError(source_name_hint(urls[0]))
        try:
            return [twilio_leg(dict(params), config)], []
        except Reject as exc:
            return [], [str(exc)]
    signed = valid_generic_signature(secret, body, _header(headers, GENERIC_HEADER))
    if fmt == "freeswitch-json":
        if not (signed or valid_basic_auth(secret, _header(headers, "Authorization"))):
            raise SignatureError(source_name_hint(urls[0]))
        text = body.decode("utf-8", errors="replace")
        if content_type.startswith("application/x-www-form"):
            fields = dict(parse_qsl(text, keep_blank_values=True))
            text = fields.get("cdr", "")
            if content_type.endswith("base64-encoded"):
                try:
                    text = base64.b64decode(text).decode("utf-8", errors="replace")
                except ValueError:  # binascii.Error
                    raise BodyError("not base64") from None
        documents = _json_documents(text)
        return _convert(documents, lambda d: freeswitch_json_leg(d, config, Clock(config.timezone)))
    if not signed:
        raise SignatureError(source_name_hint(urls[0]))
    documents = _json_documents(body)
    return _convert(documents, lambda d: generic_leg(d, config))


def source_name_hint(url: str) -> str:
    return urlsplit(url).path


def _json_documents(body: bytes | str) -> list[object]:
    """The JSON documents of a body: one, or a list of them. Bytes are read as JSON says (UTF-8,
    or UTF-16/32 as a Windows script may post them), else as Latin-1; raises BodyError for a
    body that is no JSON, or nested deeper than the parser goes (a call record is two deep)."""
    try:
        try:
            parsed = json.loads(body)
        except UnicodeDecodeError:
            assert isinstance(body, bytes)
            parsed = json.loads(body.decode("latin-1"))
    except (ValueError, RecursionError):
        raise BodyError("not JSON") from None
    return parsed if isinstance(parsed, list) else [parsed]


def _convert(documents: list[object], convert: object) -> tuple[list[Leg], list[str]]:
    from collections.abc import Callable

    assert callable(convert)
    legs: list[Leg] = []
    rejected: list[str] = []
    func: Callable[[Mapping[str, object]], Leg] = convert
    for number, document in enumerate(documents, 1):
        if not isinstance(document, dict):
            rejected.append(f"{number}: not a JSON object")
            continue
        try:
            legs.append(func(document))
        except Reject as exc:
            rejected.append(f"{number}: {english(str(exc))}")
        except RecursionError:  # a value nested deeper than str() goes: no call's field
            rejected.append(f"{number}: nested too deeply")
    return legs, rejected
