"""Attachment file names safe to show and to save.

A sender chooses the name: it may hold a path ("../../etc/passwd", "C:\\Users\\x\\a.doc"), control
characters, or a right-to-left override that makes "factuur<RLO>fdp.exe" look like "factuurexe.pdf".
What is kept is the base name only, without control and format characters, at most 255 bytes of UTF-8
with its extension, and never empty.
"""

from __future__ import annotations

import mimetypes
import unicodedata

MAX_BYTES = 255
# Extensions mimetypes does not know (or knows as something users do not recognise).
_EXTENSIONS = {
    "application/ms-tnef": ".dat",
    "application/pkcs7-mime": ".p7m",
    "application/x-pkcs7-mime": ".p7m",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/ics": ".ics",
    "text/calendar": ".ics",
    "text/rfc822-headers": ".txt",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "message/global-delivery-status": ".txt",
    "message/feedback-report": ".txt",
    "message/disposition-notification": ".txt",
    "image/jpeg": ".jpg",
    "text/plain": ".txt",
}
# Characters Windows refuses in a file name; replaced so a saved attachment keeps its name.
_RESERVED = str.maketrans({ch: "_" for ch in '<>:"|?*'})
# Unicode categories removed: controls, format characters (bidi overrides, zero-width joiners …),
# surrogates, unassigned and private-use code points, line and paragraph separators.
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Co", "Zl", "Zp"})
_MAX_EXTENSION = 16
_WHITESPACE = str.maketrans("\t\r\n", "   ")  # a folded or tabbed name keeps its word breaks


def extension_for(content_type: str) -> str:
    content_type = content_type.lower()
    return _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type, strict=False) or ".bin"


def fallback_name(content_type: str, index: int) -> str:
    """A name for a part that has none: its position in the message and an extension from its type."""
    return f"part-{index}{extension_for(content_type)}"


def _visible(name: str) -> str:
    if name.isascii() and name.isprintable():
        return name
    return "".join(ch for ch in name if unicodedata.category(ch) not in _REMOVED_CATEGORIES)


def _shorten(name: str) -> str:
    """At most MAX_BYTES of UTF-8, cut in the stem so the extension stays."""
    if len(name.encode("utf-8")) <= MAX_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    suffix = dot + extension
    if not stem or len(suffix.encode("utf-8")) > _MAX_EXTENSION:
        stem, suffix = name, ""
    room = MAX_BYTES - len(suffix.encode("utf-8"))
    return stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip() + suffix


def safe_filename(name: str | None, content_type: str, index: int) -> str:
    """The base name of ``name`` fit to show and save, or a name made from the type when nothing is left."""
    text = (name or "").encode("utf-8", "replace").decode("utf-8")  # lone surrogates out
    text = unicodedata.normalize("NFC", text)
    text = _visible(text.translate(_WHITESPACE)).replace("\\", "/").rsplit("/", 1)[-1]
    text = " ".join(text.translate(_RESERVED).split()).strip(" .")
    if not text.replace(".", ""):
        return fallback_name(content_type, index)
    return _shorten(text)
