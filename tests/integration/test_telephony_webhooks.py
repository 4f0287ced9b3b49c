"""Webhooks at the service level (the /api/v1 route will call ingest_webhook with the raw body):
Twilio's signed form callbacks, the generic signed JSON, FreeSWITCH's JSON POST; a bad signature
stores nothing, and retries or callbacks out of order change nothing twice."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from hub.db import Database
from hub.errors import NotFound
from hub.models import Call
from hub.telephony.sources import SourceInput, save_source
from hub.telephony.webhooks import SignatureError, generic_signature, ingest_webhook, twilio_signature

SECRET_KEY = "test-secret-key-0123456789"
URL = "https://hub.example.nl/api/v1/telephony/{name}/events"
CALL = "CA0000000000000000000000000000beef"


def source(db: Database, name: str, fmt: str, secret: str = "s3cret") -> None:
    with db.transaction() as session:
        save_source(session, SECRET_KEY, SourceInput(name=name, format=fmt, timezone="UTC", secret=secret))


def twilio_post(db: Database, params: list[tuple[str, str]], token: str = "s3cret") -> object:
    url = URL.format(name="cloud")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(token, url, params),
    }
    return ingest_webhook(db, "cloud", urlencode(params).encode(), url, headers, secret_key=SECRET_KEY)


def stored(db: Database) -> list[tuple[str, str, str, int]]:
    with db.transaction() as session:
        rows = session.execute(select(Call.call_key, Call.outcome, Call.e164, Call.duration).order_by(Call.id))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def event(status: str, seq: int, stamp: str, **extra: str) -> list[tuple[str, str]]:
    return [
        ("AccountSid", "AC1"),
        ("CallSid", CALL),
        ("From", "+31201234567"),
        ("To", "+31851234567"),
        ("Direction", "inbound"),
        ("CallStatus", status),
        ("SequenceNumber", str(seq)),
        ("Timestamp", stamp),
        *extra.items(),
    ]


def test_twilio_callbacks_out_of_order_and_retried(any_db: Database) -> None:
    source(any_db, "cloud", "twilio")
    completed = event("completed", 3, "Sun, 09 Feb 2020 09:32:03 +0000", CallDuration="90")
    ringing = event("ringing", 1, "Sun, 09 Feb 2020 09:30:03 +0000")
    answered = event("in-progress", 2, "Sun, 09 Feb 2020 09:30:33 +0000")
    twilio_post(any_db, completed)
    twilio_post(any_db, ringing)
    twilio_post(any_db, answered)
    once = stored(any_db)
    twilio_post(any_db, completed)  # Twilio retries
    twilio_post(any_db, ringing)
    assert stored(any_db) == once == [(CALL, "answered", "+31201234567", 120)]


def test_a_bad_signature_stores_nothing(any_db: Database) -> None:
    source(any_db, "cloud", "twilio")
    with pytest.raises(SignatureError):
        twilio_post(any_db, event("completed", 3, "Sun, 09 Feb 2020 09:32:03 +0000"), token="wrong")
    with pytest.raises(SignatureError):
        ingest_webhook(any_db, "cloud", b"CallSid=x", URL.format(name="cloud"), {}, secret_key=SECRET_KEY)
    assert stored(any_db) == []
    with pytest.raises(NotFound):
        ingest_webhook(any_db, "nope", b"", URL.format(name="nope"), {}, secret_key=SECRET_KEY)


def test_generic_json_signed_with_hmac_sha256(any_db: Database) -> None:
    source(any_db, "cloudpbx", "generic-csv")
    body = json.dumps(
        [
            {
                "call_id": "c-1",
                "direction": "inbound",
                "from": "0031 20 123 4567",
                "to": "100",
                "start": "2025-03-04T10:00:00Z",
                "answer": None,
                "end": "2025-03-04T10:00:30Z",
                "outcome": "missed",
            },
            {"call_id": "c-2", "start": "yesterday"},
        ]
    ).encode()
    url = URL.format(name="cloudpbx")
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": generic_signature("s3cret", body)}
    result = ingest_webhook(any_db, "cloudpbx", body, url, headers, secret_key=SECRET_KEY)
    assert (result.imported, result.rejected) == (1, ["2: bad date: yesterday"])  # type: ignore[attr-defined]
    assert stored(any_db) == [("c-1", "missed", "+31201234567", 30)]
    with pytest.raises(SignatureError):
        ingest_webhook(any_db, "cloudpbx", body + b" ", url, headers, secret_key=SECRET_KEY)


def test_freeswitch_json_form_post_with_basic_auth(any_db: Database) -> None:
    from pathlib import Path

    source(any_db, "fs", "freeswitch-json")
    samples = Path(__file__).resolve().parents[1] / "telephony_samples"
    for name in ("freeswitch_b_leg.cdr.json", "freeswitch_a_leg.cdr.json"):
        body = urlencode({"cdr": (samples / name).read_text()}).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic " + base64.b64encode(b"freeswitch:s3cret").decode(),
        }
        ingest_webhook(any_db, "fs", body, URL.format(name="fs"), headers, secret_key=SECRET_KEY)
    assert [row[:3] for row in stored(any_db)] == [("5b0e9a1c-0000-4000-8000-00000000000a", "answered", "+33612345678")]
