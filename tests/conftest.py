"""Fixtures shared by every test layer.

``settings``/``db``/``app``/``client`` give each test a fresh SQLite database under tmp_path,
migrated with Alembic exactly as production is. Users are made with ``make_user``; ``login``
logs a test client in through the real login form.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.accounts.users import UserInput, create_user
from hub.config import Settings, load_settings
from hub.db import Database
from hub.migrate import upgrade
from hub.models import User

# The mail fixtures (a real Dovecot, IMAP accounts) live in their own module.
pytest_plugins = ["tests.mail_fixtures"]

PASSWORD = "correct horse battery"
_db_counter = itertools.count(1)
_counter = itertools.count(1)


def make_settings(var_dir: Path, database_url: str | None = None, **env: str) -> Settings:
    values = {
        "HUB_VAR_DIR": str(var_dir),
        "HUB_SECRET_KEY": "test-secret-key-0123456789",
        # The test servers (Dovecot, image servers) listen on loopback, which hub refuses by default.
        "HUB_MAIL_ALLOWED_HOSTS": "127.0.0.1,localhost,::1",
        **env,
    }
    if database_url:
        values["HUB_DATABASE_URL"] = database_url
    return load_settings(values)


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment for a ``hub`` subprocess (worker, beat, CLI) that uses ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_VAR_DIR=str(settings.var_dir),
        HUB_DATABASE_URL=settings.database_url,
        HUB_BROKER_URL=settings.broker_url,
        HUB_SECRET_KEY=settings.secret_key,
        HUB_MAIL_ALLOWED_HOSTS=settings.mail_allowed_hosts,
        **extra,
    )
    return env


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "var")


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    upgrade(settings.database_url)
    database = Database(settings.database_url)
    yield database
    database.dispose()


class EnglishClient(FlaskClient):
    """Test clients browse in English unless a test says otherwise (the default locale is Dutch)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.environ_base.setdefault("HTTP_ACCEPT_LANGUAGE", "en")


@pytest.fixture
def app(settings: Settings, db: Database) -> Flask:
    from web import create_app

    app = create_app(settings, database=db, TESTING=True)
    app.test_client_class = EnglishClient
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def new_user(
    database: Database, name: str = "", *, admin: bool = False, active: bool = True, language: str | None = "en"
) -> User:
    """A user made through the service on ``database`` (either kind), with PASSWORD and an address
    of his own."""
    n = next(_counter)
    name = name or f"user{n}"
    with database.transaction() as session:
        return create_user(
            session,
            UserInput(
                email=f"{name.lower().replace(' ', '.')}{n}@staff.example",
                name=name,
                password=PASSWORD,
                is_admin=admin,
                is_active=active,
                language=language,
            ),
        )


@pytest.fixture
def make_user(db: Database) -> Callable[..., User]:
    return functools.partial(new_user, db)


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "page has no CSRF token"
    return match.group(1)


@pytest.fixture
def login() -> Callable[[FlaskClient, User], FlaskClient]:
    return log_in


def log_in(client: FlaskClient, user: User) -> FlaskClient:
    """``client`` logged in as ``user`` through the real login form (CSRF token included)."""
    page = client.get("/login")
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)}
    )
    assert response.status_code == 302, response.text
    return client


# --- real servers, started once per test run --------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server, and a template database migrated to head (fresh copies are cheap)."""
    from tests.servers import create_database, postgres_server

    with postgres_server() as server:
        upgrade(create_database(server, "hub_template"))
        yield server


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A fresh, migrated PostgreSQL database for one test."""
    from tests.servers import create_database

    return create_database(pg_server, f"hub_test_{next(_db_counter)}", template="hub_template")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.servers import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    """A migrated PostgreSQL database of its own for one test. Its statements are prepared as the
    web's are (hub.db.make_engine): the pages' tests run as production serves them."""
    database = Database(pg_url, prepared=True)
    yield database
    database.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database migrated to head: the embedded default (SQLite) and production's PostgreSQL."""
    if request.param == "sqlite":
        url = make_settings(tmp_path / "var").database_url
        upgrade(url)
        return url
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def any_db(database_url: str) -> Iterator[Database]:
    """The same test on SQLite and on PostgreSQL (test ids end in [sqlite] / [postgresql]); on
    PostgreSQL with prepared statements, as the web's (see pg_db)."""
    database = Database(database_url, prepared=True)
    yield database
    database.dispose()


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """A real SMTP server (aiosmtpd) that records what it receives; see tests/smtp_server.py."""
    from tests.smtp_server import started

    yield from started()


@pytest.fixture(scope="session")
def caldav_server() -> Iterator[Any]:
    """A real Radicale CalDAV server with htpasswd authentication; see tests/caldav_server.py."""
    from tests.caldav_server import radicale

    with radicale() as server:
        yield server


_SERVER_FIXTURES = {"smtp_server", "pg_server", "pg_url", "pg_db", "redis_url", "database_url", "any_db"}
_SERVER_FIXTURES.add("caldav_server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & _SERVER_FIXTURES or "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
