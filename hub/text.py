"""Small text helpers shared by search, matching and imports."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Lower-case and strip accents, so "Café Zoë" and "cafe zoe" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


def like_pattern(text: str) -> str:
    """A LIKE pattern that finds ``text`` anywhere, with LIKE's wildcards taken literally."""
    escaped = fold(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
