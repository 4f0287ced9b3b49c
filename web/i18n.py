"""Dutch and English: the user's profile language, else the browser's, else the default."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, g, request
from flask_babel import Babel
from flask_login import current_user

from hub.i18n import shown

LANGUAGES = ("nl", "en")


def select_locale() -> str | None:
    # API calls carry their user in g (token auth); pages in Flask-Login's current_user.
    user = g.get("api_user") or (current_user if getattr(current_user, "is_authenticated", False) else None)
    if user is not None and getattr(user, "language", None):
        return str(user.language)
    return request.accept_languages.best_match(LANGUAGES)


def filesize(size: int | None) -> str:
    """A size as people read it, in their locale: "25,0 MB" (nl), "25.0 MB" (en)."""
    from flask_babel import format_decimal

    value = float(size or 0)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{format_decimal(value, '#,##0' if unit == 'B' else '#,##0.0')} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def moment(value: datetime | None) -> str:
    """A moment in the user's locale and the company's time zone: "27-11-2026 13:00" (nl)."""
    from flask_babel import format_datetime

    return format_datetime(value, "short") if value is not None else ""


def init_app(app: Flask) -> None:
    # Stored moments are UTC; people read them on Dutch clocks.
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Europe/Amsterdam")
    Babel(app, locale_selector=select_locale)
    app.add_template_filter(filesize, "filesize")
    # What workers stored (sync and import errors) in the reader's language: hub.i18n.N_.
    app.add_template_filter(shown, "shown")
    app.add_template_filter(moment, "datetime")

    @app.context_processor
    def _languages() -> dict[str, object]:
        from flask_babel import get_locale

        return {"current_language": str(get_locale() or "nl"), "languages": LANGUAGES}
