"""Every setting of hub, typed, read from the environment in one place.

A bad value stops start-up with a message that names the variable (DESIGN.md convention 7).
The embedded default needs nothing set: SQLite and a filesystem broker under ``var/`` and a
secret key generated once into ``var/secret_key``. Production sets ``HUB_DATABASE_URL``,
``HUB_BROKER_URL`` and ``HUB_SECRET_KEY``; a PostgreSQL database without a secret key is refused,
because a generated key on one machine would not match the key on the next.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from hub.net import parse_allowed


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the environment variable."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _size(env: Mapping[str, str], name: str, default: int) -> int:
    """Sizes accept plain bytes or a K/M/G suffix (``25M``)."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip().upper().removesuffix("B")
    factor = 1
    for suffix, mult in (("K", 1024), ("M", 1024**2), ("G", 1024**3)):
        if text.endswith(suffix):
            factor, text = mult, text[:-1]
            break
    try:
        value = int(float(text) * factor)
    except ValueError:
        raise ConfigError(f"{name} must be a size such as 25M, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """hub's settings. Build with :func:`load_settings`; tests use :meth:`with_overrides`."""

    var_dir: Path
    database_url: str
    broker_url: str
    secret_key: str = field(repr=False)
    base_url: str = "http://127.0.0.1:5000"
    web_host: str = "127.0.0.1"
    web_port: int = 5000
    documents_dir: Path = field(default=Path("var/documents"))
    upload_max_bytes: int = 25 * 1024 * 1024
    session_cookie_secure: bool = False
    # The web's statements prepared on PostgreSQL (hub.db.make_engine); off behind a pooler in
    # transaction mode that cannot keep them (PgBouncer before 1.21, or without max_prepared_statements).
    database_prepared: bool = True
    login_max_failures: int = 5
    login_window_seconds: int = 900
    default_language: str = "nl"
    default_currency: str = "EUR"
    default_phone_region: str = "NL"
    # Longer than the longest task's hard time limit, so Redis never redelivers a running
    # task (research/campaigns_and_celery.md B2).
    visibility_timeout: int = 7200
    task_time_limit: int = 3600
    sweep_interval_seconds: int = 30
    # Internal hosts hub may connect to for users (mail servers, e-mail images); see hub.net.
    mail_allowed_hosts: str = ""
    # Flower shows every task's arguments and can revoke tasks: loopback unless basic auth is set.
    flower_address: str = "127.0.0.1"
    # "user:password[,user2:password2]"; kept out of repr so it never reaches a log line.
    flower_basic_auth: str = field(default="", repr=False)
    # Outbound mail (calendar invitations, campaign mailings): the SMTP relay as a URL,
    # smtp://user:password@host:587 (STARTTLS when offered), smtps://… (TLS from the start) or
    # smtp+plain://… (never TLS: a relay on this machine); "" means no relay is configured.
    smtp_url: str = field(default="", repr=False)
    mail_from: str = ""
    # Messages per minute through the relay, shared by every worker (0: no limit).
    smtp_rate_per_minute: int = 0
    # Campaign mailings: the bounce mailbox's address, turned into a VERP return path per recipient
    # (bounces+<ledger id>.<signature>@domain); "" sends with the mailing's From as return path.
    bounce_address: str = ""
    # Optional DKIM signing of mailings (dkimpy): selector, domain and the PEM private key file.
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_key_file: str = ""
    # SMTP sessions one mailing sends over at the same time (each in its own thread).
    campaign_connections: int = 2

    @property
    def embedded(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _secret_key(env: Mapping[str, str], var_dir: Path, database_url: str) -> str:
    key = env.get("HUB_SECRET_KEY", "")
    if key:
        if len(key) < 16:
            raise ConfigError("HUB_SECRET_KEY must be at least 16 characters")
        return key
    if not database_url.startswith("sqlite"):
        raise ConfigError(
            "HUB_SECRET_KEY is required with a server database (HUB_DATABASE_URL); "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    # Embedded default: one key per installation, kept beside the database it protects.
    path = var_dir / "secret_key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _database_url(env: Mapping[str, str], var_dir: Path) -> str:
    url = env.get("HUB_DATABASE_URL", "")
    if not url:
        return f"sqlite:///{(var_dir / 'hub.db').resolve()}"
    if url.startswith(("postgres://", "postgresql://")):
        # psycopg 3 is the driver we ship; accept the URL forms people paste from their host.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if not url.startswith(("sqlite", "postgresql+psycopg://")):
        scheme = url.split(":")[0]
        raise ConfigError(f"HUB_DATABASE_URL must be a postgresql:// or sqlite:// URL, got {scheme}://…")
    return url


def _broker_url(env: Mapping[str, str]) -> str:
    url = env.get("HUB_BROKER_URL", "") or "filesystem://"
    if not url.startswith(("redis://", "rediss://", "filesystem://", "memory://")):
        # (the scheme only: the rest may hold a password)
        raise ConfigError(
            "HUB_BROKER_URL must be a redis:// URL (or filesystem:// for the embedded default), "
            f"got {url.split(':', 1)[0]}://…"
        )
    if url.startswith("rediss://") and "ssl_cert_reqs=" not in urlsplit(url).query:
        # Given a rediss:// URL alone, kombu connects without checking the server's certificate
        # (it logs a warning and uses CERT_NONE): whoever sits between hub and a managed Redis could
        # read and forge its tasks. hub asks for the check, against the system's CA certificates or
        # the URL's ?ssl_ca_certs=FILE; going without takes ?ssl_cert_reqs=none, written out.
        url += ("&" if "?" in url else "?") + "ssl_cert_reqs=required"
    return url


def _allowed_hosts(env: Mapping[str, str], name: str) -> str:
    raw = env.get(name, "")
    try:
        parse_allowed(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must list host names, IP addresses or networks (host:port allowed): {exc}") from None
    return raw


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise :class:`ConfigError` naming the bad variable."""
    env = os.environ if env is None else env
    var_dir = Path(env.get("HUB_VAR_DIR", "") or "var").resolve()
    database_url = _database_url(env, var_dir)
    language = env.get("HUB_DEFAULT_LANGUAGE", "nl")
    if language not in {"nl", "en"}:
        raise ConfigError(f"HUB_DEFAULT_LANGUAGE must be nl or en, got {language!r}")
    port = _int(env, "HUB_WEB_PORT", 5000, minimum=1)
    host = env.get("HUB_WEB_HOST", "127.0.0.1")
    time_limit = _int(env, "HUB_TASK_TIME_LIMIT", 3600, minimum=10)
    visibility = _int(env, "HUB_VISIBILITY_TIMEOUT", max(7200, time_limit * 2), minimum=60)
    if visibility <= time_limit:
        raise ConfigError("HUB_VISIBILITY_TIMEOUT must be longer than HUB_TASK_TIME_LIMIT")
    return Settings(
        var_dir=var_dir,
        database_url=database_url,
        broker_url=_broker_url(env),
        secret_key=_secret_key(env, var_dir, database_url),
        base_url=_base_url(env) or f"http://{host}:{port}",
        web_host=host,
        web_port=port,
        documents_dir=Path(env.get("HUB_DOCUMENTS_DIR", "") or var_dir / "documents").resolve(),
        upload_max_bytes=_size(env, "HUB_UPLOAD_MAX_BYTES", 25 * 1024 * 1024),
        session_cookie_secure=_bool(env, "HUB_SESSION_COOKIE_SECURE", not database_url.startswith("sqlite")),
        database_prepared=_bool(env, "HUB_DATABASE_PREPARED", True),
        login_max_failures=_int(env, "HUB_LOGIN_MAX_FAILURES", 5, minimum=1),
        login_window_seconds=_int(env, "HUB_LOGIN_WINDOW_SECONDS", 900, minimum=1),
        default_language=language,
        default_currency=(env.get("HUB_DEFAULT_CURRENCY", "") or "EUR").upper(),
        default_phone_region=(env.get("HUB_PHONE_REGION", "") or "NL").upper(),
        visibility_timeout=visibility,
        task_time_limit=time_limit,
        sweep_interval_seconds=_int(env, "HUB_SWEEP_INTERVAL", 30, minimum=1),
        mail_allowed_hosts=_allowed_hosts(env, "HUB_MAIL_ALLOWED_HOSTS"),
        flower_address=_flower_address(env),
        flower_basic_auth=_flower_basic_auth(env),
        smtp_url=_smtp_url(env),
        mail_from=env.get("HUB_MAIL_FROM", "").strip(),
        smtp_rate_per_minute=_int(env, "HUB_SMTP_RATE_PER_MINUTE", 0),
        bounce_address=_bounce_address(env),
        dkim_selector=env.get("HUB_DKIM_SELECTOR", "").strip(),
        dkim_domain=env.get("HUB_DKIM_DOMAIN", "").strip(),
        dkim_key_file=_dkim_key_file(env),
        campaign_connections=_int(env, "HUB_CAMPAIGN_CONNECTIONS", 2, minimum=1),
    )


def _base_url(env: Mapping[str, str]) -> str:
    """HUB_BASE_URL: the address people reach hub at, put in front of every link hub sends out
    (unsubscribe links and List-Unsubscribe, calendar feeds). Without a scheme, or with a query,
    a fragment or spaces, those links went out broken in every message of a mailing."""
    value = env.get("HUB_BASE_URL", "").strip()
    if not value:
        return ""
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 (raises for a port that is not a number)
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment or " " in value:
        raise ConfigError(
            f"HUB_BASE_URL must be the http(s) address people reach hub at, such as https://crm.example.com"
            f" (no query or #), got {value!r}"
        )
    return value


def _bounce_address(env: Mapping[str, str]) -> str:
    address = env.get("HUB_BOUNCE_ADDRESS", "").strip()
    if address and (address.count("@") != 1 or "+" in address or " " in address):
        raise ConfigError("HUB_BOUNCE_ADDRESS must be a plain address such as bounces@mail.example.com (no '+')")
    return address


def _dkim_key_file(env: Mapping[str, str]) -> str:
    path = env.get("HUB_DKIM_KEY_FILE", "").strip()
    if not path:
        return ""
    if not env.get("HUB_DKIM_SELECTOR", "").strip() or not env.get("HUB_DKIM_DOMAIN", "").strip():
        raise ConfigError("HUB_DKIM_KEY_FILE needs HUB_DKIM_SELECTOR and HUB_DKIM_DOMAIN")
    if not Path(path).is_file():
        raise ConfigError(f"HUB_DKIM_KEY_FILE {path!r} is not a readable file")
    return path


def _smtp_url(env: Mapping[str, str]) -> str:
    url = env.get("HUB_SMTP_URL", "").strip()
    if url and not url.startswith(("smtp://", "smtps://", "smtp+plain://")):
        raise ConfigError("HUB_SMTP_URL must be an smtp://, smtps:// or smtp+plain:// URL (user:password@host:port)")
    cafile = parse_qs(urlsplit(url).query).get("cafile", [""])[-1]
    if cafile and not Path(cafile).is_file():
        # Found out at start, not as every invitation's and mailing's "try again later".
        raise ConfigError(f"HUB_SMTP_URL's cafile {cafile!r} is not a readable file")
    return url


def is_loopback(address: str) -> bool:
    """True when ``address`` only accepts connections from this machine ("" means every interface)."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _flower_address(env: Mapping[str, str]) -> str:
    address = env.get("HUB_FLOWER_ADDRESS", "").strip() or "127.0.0.1"
    if address != "localhost":
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ConfigError(
                f"HUB_FLOWER_ADDRESS must be an IP address to listen on (127.0.0.1, 0.0.0.0, …), got {address!r}"
            ) from None
    return address


def _flower_basic_auth(env: Mapping[str, str]) -> str:
    raw = env.get("HUB_FLOWER_BASIC_AUTH", "").strip()
    if not raw:
        return ""
    for pair in raw.split(","):
        user, sep, password = pair.partition(":")
        # The message never repeats the value: it holds a password.
        if not sep or not user.strip() or not password:
            raise ConfigError('HUB_FLOWER_BASIC_AUTH must be "user:password" (comma-separated for more users)')
        if len(password) < 8:
            raise ConfigError("HUB_FLOWER_BASIC_AUTH passwords must be at least 8 characters")
    return raw
