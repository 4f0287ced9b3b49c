"""Phone numbers to E.164, the one form matching (telephony, caller-ID) compares."""

from __future__ import annotations

import phonenumbers


def to_e164(number: str, region: str = "NL") -> str | None:
    """``+31 20 123 4567`` / ``020-1234567`` → ``+31201234567``; None if it is not a phone number."""
    text = number.strip()
    if not text:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
