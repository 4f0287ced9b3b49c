"""Bad settings stop start-up with a message that names the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import ConfigError, load_settings


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"HUB_VAR_DIR": str(tmp_path), **values}


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"HUB_WEB_PORT": "abc"}, "HUB_WEB_PORT"),
        ({"HUB_DATABASE_URL": "mysql://x/y"}, "HUB_DATABASE_URL"),
        ({"HUB_DATABASE_URL": "postgresql://u@h/db"}, "HUB_SECRET_KEY"),
        ({"HUB_BROKER_URL": "amqp://x"}, "HUB_BROKER_URL"),
        ({"HUB_UPLOAD_MAX_BYTES": "lots"}, "HUB_UPLOAD_MAX_BYTES"),
        ({"HUB_SESSION_COOKIE_SECURE": "maybe"}, "HUB_SESSION_COOKIE_SECURE"),
        ({"HUB_DEFAULT_LANGUAGE": "de"}, "HUB_DEFAULT_LANGUAGE"),
        ({"HUB_TASK_TIME_LIMIT": "600", "HUB_VISIBILITY_TIMEOUT": "300"}, "HUB_VISIBILITY_TIMEOUT"),
        ({"HUB_SECRET_KEY": "short"}, "HUB_SECRET_KEY"),
        ({"HUB_MAIL_ALLOWED_HOSTS": "10.0.0.0/8, imap.internal:99999"}, "HUB_MAIL_ALLOWED_HOSTS"),
        ({"HUB_MAIL_ALLOWED_HOSTS": "not a host"}, "HUB_MAIL_ALLOWED_HOSTS"),
        # Put before every unsubscribe link and feed hub sends out: broken, every message of a
        # mailing carried a broken link.
        ({"HUB_BASE_URL": "crm.example.com"}, "HUB_BASE_URL"),
        ({"HUB_BASE_URL": "ftp://crm.example.com"}, "HUB_BASE_URL"),
        ({"HUB_BASE_URL": "https://crm.example.com/?x=1"}, "HUB_BASE_URL"),
        ({"HUB_BASE_URL": "https://crm.example.com/#top"}, "HUB_BASE_URL"),
        ({"HUB_BASE_URL": "https://crm example.com"}, "HUB_BASE_URL"),
        ({"HUB_BASE_URL": "https://crm.example.com:http"}, "HUB_BASE_URL"),
        ({"HUB_BASE_URL": "https://"}, "HUB_BASE_URL"),
        # A CA file that is not there: said at start, not as every invitation's "try again later".
        ({"HUB_SMTP_URL": "smtp://u:p@relay.example:587?cafile=/nonexistent/ca.pem"}, "HUB_SMTP_URL"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, values: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(_env(tmp_path, **values))


def test_embedded_default_needs_nothing_and_keeps_its_key(tmp_path: Path) -> None:
    first = load_settings(_env(tmp_path))
    assert first.database_url.startswith("sqlite:///") and first.broker_url == "filesystem://"
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert load_settings(_env(tmp_path)).secret_key == first.secret_key  # sessions survive a restart


def test_production_values(tmp_path: Path) -> None:
    settings = load_settings(
        _env(
            tmp_path,
            HUB_DATABASE_URL="postgres://hub:pw@db/hub",
            HUB_BROKER_URL="redis://r:6379/0",
            HUB_SECRET_KEY="x" * 32,
            HUB_UPLOAD_MAX_BYTES="10M",
        )
    )
    assert settings.database_url == "postgresql+psycopg://hub:pw@db/hub"
    assert settings.upload_max_bytes == 10 * 1024 * 1024
    assert settings.session_cookie_secure is True
    assert settings.visibility_timeout > settings.task_time_limit


def test_a_bad_url_is_named_without_echoing_its_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env(tmp_path, HUB_DATABASE_URL="mysql://hub:hunter2-secret@db/hub"))
    assert "HUB_DATABASE_URL" in str(caught.value) and "hunter2" not in str(caught.value)


def test_bad_value_stops_the_command_naming_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_VAR_DIR=str(tmp_path), HUB_WEB_PORT="abc")
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "HUB_WEB_PORT" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "hub.db").exists()  # stopped before touching anything


@pytest.mark.parametrize("base", ["https://crm.example.com", "http://10.0.0.5:8080/hub/", "https://[fd00::5]:8443"])
def test_a_base_url_people_reach_hub_at_is_kept_as_given(tmp_path: Path, base: str) -> None:
    assert load_settings(_env(tmp_path, HUB_BASE_URL=base)).base_url == base
