"""Webhook signatures as pure functions, against Twilio's documented example."""

from __future__ import annotations

import base64

from hub.telephony.webhooks import (
    generic_signature,
    twilio_signature,
    valid_basic_auth,
    valid_generic_signature,
    valid_twilio_signature,
)

# Twilio's documented example (its security docs and every official helper library's tests).
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+14158675309"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
]
SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_twilio_documented_example() -> None:
    assert twilio_signature("12345", URL, PARAMS) == SIGNATURE
    assert valid_twilio_signature("12345", URL, list(reversed(PARAMS)), SIGNATURE)


def test_twilio_repeated_parameters_and_the_port() -> None:
    repeated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234")]
    assert twilio_signature("12345", URL, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    assert valid_twilio_signature("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS, SIGNATURE)


def test_twilio_anything_changed_is_refused() -> None:
    assert not valid_twilio_signature("12346", URL, PARAMS, SIGNATURE)
    assert not valid_twilio_signature("12345", URL + "&x=1", PARAMS, SIGNATURE)
    assert not valid_twilio_signature("12345", URL, [*PARAMS[:-1], ("To", "+18005551213")], SIGNATURE)
    assert not valid_twilio_signature("12345", URL, PARAMS, "")
    assert not valid_twilio_signature("", URL, PARAMS, SIGNATURE)


def test_generic_hmac_sha256() -> None:
    body = b'{"call_id": "x"}'
    header = generic_signature("s3cret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert valid_generic_signature("s3cret", body, header)
    assert valid_generic_signature("s3cret", body, header.upper().replace("SHA256=", "sha256="))
    assert not valid_generic_signature("s3cret", body + b" ", header)
    assert not valid_generic_signature("other", body, header)
    assert not valid_generic_signature("", body, header)


def test_basic_auth_password_is_the_secret() -> None:
    good = "Basic " + base64.b64encode(b"fs:s3cret").decode()
    assert valid_basic_auth("s3cret", good)
    assert not valid_basic_auth("s3cret", "Basic " + base64.b64encode(b"fs:nope").decode())
    assert not valid_basic_auth("s3cret", "Bearer s3cret")
    assert not valid_basic_auth("s3cret", "Basic !!!")
