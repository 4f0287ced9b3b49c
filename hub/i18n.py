"""Translation hook usable from the domain without importing Flask.

Service messages are written in English and wrapped in ``_()`` so pybabel extracts them; inside a
web request they come out in the user's language, elsewhere (CLI, workers) in English.
"""

from __future__ import annotations

import json
import re
from typing import Any


def _(message: str, **variables: Any) -> str:
    try:
        from flask import has_request_context
        from flask_babel import gettext
    except ImportError:  # pragma: no cover - the domain runs without Flask installed
        return message % variables if variables else message
    if has_request_context():
        return gettext(message, **variables)
    return message % variables if variables else message


# A message the workers store (a sync error, an import's line errors) is shown later to people who
# read other languages, so it is kept as what it is: the English text (for the CLI and logs) and,
# beside it, the message and its values, translated when shown. Control characters frame it; they
# never occur in a message and are allowed in every database's text.
_START, _MIDDLE, _END = "\x1d", "\x1e", "\x1f"
_STORED = re.compile(f"{_START}([^{_MIDDLE}]*){_MIDDLE}([^{_END}]*){_END}")


def N_(message: str, **variables: Any) -> str:
    """``message`` with ``variables`` to store now and show later in the reader's language.

    The text is pybabel-extracted (``N_`` is one of its default keywords). Read it back with
    :func:`shown`; pieces may be joined with other text ("line 12: " + N_(...)).
    """
    english = message % variables if variables else message
    packed = json.dumps([message, variables], ensure_ascii=False, default=str)
    # JSON writes control characters as \u escapes, so only the English text needs its markers taken out.
    return f"{_START}{_clean(english)}{_MIDDLE}{packed}{_END}"


def _clean(text: str) -> str:
    return text.translate({ord(_START): " ", ord(_MIDDLE): " ", ord(_END): " "})


def shown(text: str) -> str:
    """Stored text with each :func:`N_` message in the reader's language (English outside a request)."""
    if _START not in text:
        return text
    return _STORED.sub(_translated, text)


def _translated(found: re.Match[str]) -> str:
    try:
        message, variables = json.loads(found.group(2))
        return _(message, **variables) if isinstance(variables, dict) else found.group(1)
    except (ValueError, TypeError, KeyError):
        return found.group(1)


def english(text: str) -> str:
    """Stored text with each :func:`N_` message in English (what a comparison or a log wants)."""
    return _STORED.sub(lambda found: found.group(1), text) if _START in text else text
