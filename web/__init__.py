"""The Flask app: ``create_app(settings)`` builds it; nothing is created at import time."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from hub.blobs import BlobStore
from hub.config import Settings, load_settings
from hub.db import Database


def create_app(settings: Settings | None = None, *, database: Database | None = None, **flask_config: Any) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings.session_cookie_secure,
        # Uploads stream to disk in chunks; Flask's own cap sits a little above ours so our
        # clear message (not a bare 413) is what the user sees for a slightly-too-large file.
        MAX_CONTENT_LENGTH=settings.upload_max_bytes + 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
        BABEL_DEFAULT_LOCALE=settings.default_language,
        BABEL_TRANSLATION_DIRECTORIES="translations",
        JSON_SORT_KEYS=False,
    )
    app.config.update(flask_config)
    app.extensions["hub.settings"] = settings
    # Prepared statements: the web answers the same few statements all day (hub.db.make_engine).
    app.extensions["hub.db"] = database or Database(settings.database_url, prepared=settings.database_prepared)
    app.extensions["hub.blobs"] = BlobStore(settings.documents_dir)
    # Views enqueue work (after commit) through the same Celery app and broker as the workers.
    from workers.app import create_celery

    app.extensions["hub.celery"] = create_celery(settings)

    from web import context, i18n, lists, menu, security

    context.init_app(app)
    i18n.init_app(app)
    lists.init_app(app)
    menu.init_app(app)
    security.init_app(app)
    csrf = CSRFProtect(app)
    security.init_csrf(app)

    from web.activities import bp as activities_bp
    from web.api import bp as api_bp
    from web.apidocs import bp as apidocs_bp
    from web.auth import bp as auth_bp
    from web.calendar import bp as calendar_bp
    from web.campaigns import bp as campaigns_bp
    from web.campaigns import unsubscribe as campaigns_unsubscribe
    from web.contacts import bp as contacts_bp
    from web.contacts import filing as filing_bp
    from web.images import bp as images_bp
    from web.imports import bp as imports_bp
    from web.mail import bp as mail_bp
    from web.ops import bp as ops_bp
    from web.projects import bp as projects_bp
    from web.relations import bp as relations_bp
    from web.search import bp as search_bp
    from web.settings import bp as settings_bp
    from web.tags import bp as tags_bp
    from web.telephony import bp as telephony_bp

    for blueprint in (
        auth_bp,
        relations_bp,
        projects_bp,
        activities_bp,
        settings_bp,
        imports_bp,
        search_bp,
        mail_bp,
        images_bp,
        ops_bp,
        telephony_bp,
        calendar_bp,
        campaigns_bp,
        apidocs_bp,
        contacts_bp,
        filing_bp,
        tags_bp,
    ):
        app.register_blueprint(blueprint)
    # The API authenticates with bearer tokens, not cookies, so CSRF does not apply to it.
    csrf.exempt(api_bp)
    # RFC 8058 one-click unsubscribe: the mail provider POSTs without cookie or CSRF token; the
    # signed token in the URL is the credential.
    csrf.exempt(campaigns_unsubscribe)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    return app
