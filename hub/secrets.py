"""Secrets at rest (mailbox, CalDAV, SMTP passwords): encrypted with a key derived from HUB_SECRET_KEY.

Fernet (AES-128-CBC + HMAC-SHA256). Changing HUB_SECRET_KEY makes stored secrets unreadable, which
:func:`decrypt` reports plainly instead of crashing.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken


class SecretUnreadable(Exception):
    """The secret was encrypted with another HUB_SECRET_KEY; enter it again."""


def _fernet(secret_key: str) -> Fernet:
    # A separate key per purpose: the session-signing key itself never encrypts data.
    derived = hashlib.sha256(b"hub secrets at rest\x00" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(secret_key: str, plaintext: str) -> str:
    return _fernet(secret_key).encrypt(plaintext.encode()).decode()


def decrypt(secret_key: str, token: str) -> str:
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("stored with another HUB_SECRET_KEY") from None
