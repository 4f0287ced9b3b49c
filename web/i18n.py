"""Dutch and English: the user's profile language, else the browser's, else the default."""

from __future__ import annotations

from flask import Flask, g, request
from flask_babel import Babel
from flask_login import current_user

LANGUAGES = ("nl", "en")


def select_locale() -> str | None:
    # API calls carry their user in g (token auth); pages in Flask-Login's current_user.
    user = g.get("api_user") or (current_user if getattr(current_user, "is_authenticated", False) else None)
    if user is not None and getattr(user, "language", None):
        return str(user.language)
    return request.accept_languages.best_match(LANGUAGES)


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)

    @app.context_processor
    def _languages() -> dict[str, object]:
        from flask_babel import get_locale

        return {"current_language": str(get_locale() or "nl"), "languages": LANGUAGES}
