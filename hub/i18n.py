"""Translation hook usable from the domain without importing Flask.

Service messages are written in English and wrapped in ``_()`` so pybabel extracts them; inside a
web request they come out in the user's language, elsewhere (CLI, workers) in English.
"""

from __future__ import annotations

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
