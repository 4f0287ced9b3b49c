"""Opaque S/MIME (application/pkcs7-mime): the signed content is read out of its CMS wrapping so the
message shows what was written; encrypted content cannot be read without the recipient's key, and
says so. The signature is not verified: hub shows mail, it does not vouch for it."""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import cms

PKCS7_TYPES = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})


@dataclass
class Unwrapped:
    content: bytes | None  # the MIME entity that was signed, when there is one to show
    problem: str = ""  # why there is none


def unwrap(data: bytes) -> Unwrapped:
    """The content of a DER (or base64-decoded) CMS ContentInfo; never raises."""
    try:
        info = cms.ContentInfo.load(data)
        kind = info["content_type"].native
        if kind == "signed_data":
            content = info["content"]["encap_content_info"]["content"].native
            if isinstance(content, bytes) and content:
                return Unwrapped(content)
            return Unwrapped(None, "S/MIME signed message without content (a detached signature)")
        if kind in ("enveloped_data", "authenticated_enveloped_data", "encrypted_data"):
            return Unwrapped(None, "S/MIME encrypted message: it can only be read with the recipient's private key")
        if kind == "compressed_data":
            return Unwrapped(None, "S/MIME compressed message: not shown")
        return Unwrapped(None, f"S/MIME content of type {kind} not shown")
    except Exception as exc:  # asn1crypto parses lazily: any bad structure shows up as some error
        return Unwrapped(None, f"S/MIME part unreadable ({type(exc).__name__})")
