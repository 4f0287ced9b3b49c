"""The ``hub`` command. Thin: each command parses its arguments and calls one service.

Flask and Celery are imported inside the commands that need them, so ``hub db upgrade`` and the
importers work from the domain alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from hub.config import ConfigError, Settings, load_settings
from hub.db import Database
from hub.i18n import english


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


@click.group()
def main() -> None:
    """hub: CRM integration hub."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (creates the SQLite file on the embedded default)."""
    from hub.migrate import upgrade

    settings = _settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    click.echo("database is up to date")


@main.group()
def user() -> None:
    """Staff users."""


@user.command("add")
@click.argument("email")
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--name", default="", help="Display name (defaults to the part before @).")
@click.option("--admin", is_flag=True, help="May change settings, users and groups and sees everything.")
def user_add(email: str, password: str, name: str, admin: bool) -> None:
    """Add a staff user."""
    from hub.accounts.users import UserInput, create_user
    from hub.errors import ValidationError

    database = Database(_settings().database_url)
    try:
        with database.transaction() as session:
            created = create_user(session, UserInput(email=email, name=name, password=password, is_admin=admin))
            click.echo(f"added user {created.email} (id {created.id}){' as admin' if admin else ''}")
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.argument("email")
@click.option("--name", default="cli", help="What the token is for.")
@click.option("--read-only", is_flag=True, help="Only GET requests; changes answer 403 (default: read and write).")
def token_create(email: str, name: str, read_only: bool) -> None:
    """Create an API token for EMAIL and print it (it is shown only once)."""
    from hub.accounts.users import create_token, user_by_email
    from hub.errors import NotFound, ValidationError

    database = Database(_settings().database_url)
    try:
        with database.transaction() as session:
            scope = "read" if read_only else "write"
            click.echo(create_token(session, user_by_email(session, email), name, scope=scope))
    except NotFound:
        raise click.ClickException(f"no user with e-mail address {email}") from None
    except ValidationError as error:
        raise click.ClickException(error.message) from None


@main.group("import")
def import_() -> None:
    """Import data from files."""


@import_.command("relations")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_relations_cmd(file: Path) -> None:
    """Import relations and contacts from a CSV (relation,domain,contact_name,email,phone)."""
    from hub.crm.importer import import_relations

    settings = _settings()
    database = Database(settings.database_url)
    started = time.monotonic()
    with (
        file.open("rb") as stream,
        click.progressbar(length=file.stat().st_size, label="importing", file=sys.stderr, show_eta=True) as bar,
    ):
        result = import_relations(database, stream, region=settings.default_phone_region, on_bytes=bar.update)
    for line, message in result.errors:
        click.echo(f"{file.name}:{line}: {english(message)}", err=True)
    if result.error_count > len(result.errors):
        click.echo(f"… and {result.error_count - len(result.errors)} more rejected rows", err=True)
    click.echo(f"{result.summary()} in {time.monotonic() - started:.1f} s")
    if result.rows == 0 and result.error_count:
        sys.exit(1)


@main.group()
def mailbox() -> None:
    """Mailboxes whose mail syncs into hub."""


@mailbox.command("add")
@click.option("--owner", "owner_email", default=None, help="Staff e-mail address; leave out for a shared mailbox.")
@click.option("--host", required=True)
@click.option("--port", required=True, type=int)
@click.option("--security", required=True, type=click.Choice(["none", "starttls", "ssl"]))
@click.option("--username", required=True)
@click.option("--password", required=True, help="Stored encrypted; never shown again.")
@click.option("--name", default="", help="Shown in the UI (default user@host).")
@click.option("--folders", default="", help="Comma-separated; default INBOX and the Sent folder.")
@click.option(
    "--since",
    "since",
    default=None,
    type=click.DateTime(["%Y-%m-%d"]),
    help="How far back the first sync reaches (YYYY-MM-DD).",
)
@click.option(
    "--sharing",
    default="only-me",
    type=click.Choice(["only-me", "colleagues"]),
    help="Personal mailboxes: only the owner sees its mail, or also colleagues who may see the relation "
    "or project an e-mail is linked to (default only-me).",
)
@click.option("--never-share", default="", help="Comma-separated addresses and domains whose mail is never shared.")
def mailbox_add(
    owner_email: str | None,
    host: str,
    port: int,
    security: str,
    username: str,
    password: str,
    name: str,
    folders: str,
    since: object,
    sharing: str,
    never_share: str,
) -> None:
    """Connect a mailbox; prints its id."""
    from datetime import datetime as _dt

    from hub.accounts.users import user_by_email
    from hub.errors import NotFound, ValidationError
    from hub.mail.mailboxes import MailboxInput, save_mailbox

    settings = _settings()
    database = Database(settings.database_url)
    try:
        with database.transaction() as session:
            owner_id = user_by_email(session, owner_email).id if owner_email else None
            created = save_mailbox(
                session,
                settings.secret_key,
                allowed_hosts=settings.mail_allowed_hosts,
                data=MailboxInput(
                    host=host,
                    port=port,
                    security=security,
                    username=username,
                    password=password,
                    owner_id=owner_id,
                    name=name,
                    folders="\n".join(f.strip() for f in folders.split(",")),
                    sync_since=since.date() if isinstance(since, _dt) else None,
                    sharing=sharing.replace("-", "_"),
                    never_share=never_share.replace(",", "\n"),
                ),
            )
            click.echo(created.id)
    except NotFound:
        raise click.ClickException(f"no user with e-mail address {owner_email}") from None
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def mail() -> None:
    """Mail sync."""


@mail.command("sync")
@click.option("--now", is_flag=True, help="Sync here in the foreground instead of asking the workers.")
@click.option("--mailbox", "mailbox_id", type=int, default=None, help="Only this mailbox (default: all).")
def mail_sync(now: bool, mailbox_id: int | None) -> None:
    """Sync mailboxes: with --now in the foreground with a progress bar, else through the workers."""
    from sqlalchemy import select

    from hub.blobs import BlobStore
    from hub.mail.imap import MailServerError
    from hub.mail.sync import SyncResult, sync_mailbox
    from hub.models import Mailbox

    settings = _settings()
    database = Database(settings.database_url)
    with database.transaction() as session:
        query = select(Mailbox.id).where(Mailbox.active.is_(True)).order_by(Mailbox.id)
        ids = [mailbox_id] if mailbox_id else list(session.scalars(query))
    if not now:
        from workers.tasks import sync_mailbox_task

        _celery(settings)
        for box_id in ids:
            sync_mailbox_task.delay(box_id)
        click.echo(f"asked the workers to sync {len(ids)} mailbox(es)")
        return
    total = SyncResult()
    started = time.monotonic()
    failed = 0
    for box_id in ids:

        def progress(done: int, todo: int, box_id: int = box_id) -> None:
            width = 30
            filled = int(width * done / todo) if todo else width
            click.echo(f"\rmailbox {box_id} [{'#' * filled}{'-' * (width - filled)}] {done}/{todo}", nl=False, err=True)

        while True:
            try:
                result = sync_mailbox(
                    database,
                    BlobStore(settings.documents_dir),
                    box_id,
                    secret_key=settings.secret_key,
                    allowed_hosts=settings.mail_allowed_hosts,
                    force=True,
                    on_progress=progress,
                )
            except MailServerError as exc:
                click.echo(f"\nmailbox {box_id}: {english(str(exc))}", err=True)
                failed += 1
                break
            if result is None:
                click.echo(f"\nmailbox {box_id} is being synced by a worker right now; skipped", err=True)
                break
            total.add(result)
            if not result.more:
                break
        click.echo("", err=True)
    click.echo(
        f"synced {total.messages} messages ({total.new} new, {total.linked} linked, "
        f"{total.quarantined} quarantined) "
        f"in {time.monotonic() - started:.1f} s"
    )
    if failed:
        sys.exit(1)


@mail.command("watch")
def mail_watch() -> None:
    """Listen (IMAP NOTIFY or IDLE) on every synced folder of every mailbox and wake its sync when mail arrives."""
    import threading

    from hub.mail.watch import watch
    from workers.tasks import sync_mailbox_task

    settings = _settings()
    _celery(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_args: stop.set())
    signal.signal(signal.SIGINT, lambda *_args: stop.set())

    def wake(mailbox_id: int) -> None:
        sync_mailbox_task.delay(mailbox_id)

    click.echo("watching mailboxes for new mail (Ctrl-C stops)", err=True)
    watch(Database(settings.database_url), settings.secret_key, wake, stop, allowed_hosts=settings.mail_allowed_hosts)


CALL_FORMATS = (
    *("asterisk-csv", "asterisk-custom", "asterisk-cel", "freeswitch-csv", "freeswitch-json"),
    *("3cx", "twilio", "generic-csv"),
)


@main.group()
def calls() -> None:
    """Telephony: call sources (phone systems) and importing their call records."""


@calls.group("source")
def calls_source() -> None:
    """Phone systems whose call records hub reads."""


@calls_source.command("add")
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(CALL_FORMATS),
)
@click.option("--region", default=None, help="Country of national numbers (default HUB_DEFAULT_PHONE_REGION).")
@click.option("--tz", "timezone", default="Europe/Amsterdam", show_default=True, help="The PBX's clock.")
@click.option("--fields", default="", help="Field order, comma-separated (cdr_custom, CEL, 3CX, generic CSV).")
@click.option("--strip-prefix", "strip_prefix", multiple=True, help="A route prefix dialled before outside numbers.")
@click.option("--secret", default=None, help="Webhook secret (Twilio: the auth token). Stored encrypted.")
@click.option("--drop-folder", default="", help="A folder the PBX writes to; beat polls it.")
@click.option("--extension", "extensions", multiple=True, help="EXT=EMAIL: whose phone an extension is.")
def calls_source_add(
    name: str,
    fmt: str,
    region: str | None,
    timezone: str,
    fields: str,
    strip_prefix: tuple[str, ...],
    secret: str | None,
    drop_folder: str,
    extensions: tuple[str, ...],
) -> None:
    """Add a phone system; prints its id."""
    from hub.errors import ValidationError
    from hub.telephony.sources import SourceInput, parse_extension_map, save_source

    settings = _settings()
    database = Database(settings.database_url)
    try:
        with database.transaction() as session:
            source = save_source(
                session,
                settings.secret_key,
                SourceInput(
                    name=name,
                    format=fmt,
                    region=region or settings.default_phone_region,
                    timezone=timezone,
                    fields=fields,
                    strip_prefixes=",".join(strip_prefix),
                    secret=secret,
                    drop_folder=drop_folder,
                    extensions=parse_extension_map(session, "\n".join(extensions)) if extensions else None,
                ),
            )
            click.echo(source.id)
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from None


@calls.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--source", "source_name", required=True, help="The phone system the records come from.")
def calls_import(path: Path, source_name: str) -> None:
    """Import a call-record file, or every file of a folder (idempotent: known calls stay as they are)."""
    from hub.errors import NotFound
    from hub.telephony.ingest import files_of, import_path, source_by_name

    settings = _settings()
    database = Database(settings.database_url)
    try:
        with database.transaction() as session:
            source_id = source_by_name(session, source_name).id
    except NotFound:
        raise click.ClickException(f"no call source named {source_name}") from None
    size = sum(f.stat().st_size for f in files_of(path))
    with click.progressbar(length=size, label="importing", file=sys.stderr, show_eta=True) as bar:
        done = [0]

        def progress(position: int) -> None:
            bar.update(max(position - done[0], 0))
            done[0] = max(done[0], position)

        result = import_path(database, source_id, path, on_progress=progress)
    for line, reason in result.errors[:50]:
        click.echo(f"line {line}: {english(reason)}", err=True)
    if result.rejected > min(len(result.errors), 50):
        click.echo(f"… and {result.rejected - min(len(result.errors), 50)} more rejected rows", err=True)
    click.echo(result.summary())
    if result.rows and result.rejected == result.rows:
        sys.exit(1)


def ensure_first_admin(settings: Settings) -> tuple[str, str] | None:
    """Create the first admin if there are no users; return (email, password) to print once."""
    from sqlalchemy import func, select

    from hub.accounts.passwords import generate_password
    from hub.accounts.users import UserInput, create_user
    from hub.models import User

    database = Database(settings.database_url)
    with database.transaction() as session:
        if session.scalar(select(func.count()).select_from(User)):
            return None
        password = generate_password()
        create_user(session, UserInput(email="admin@hub.local", name="Admin", password=password, is_admin=True))
    database.dispose()
    return "admin@hub.local", password


@main.command()
def web() -> None:
    """Serve the web UI and API (gunicorn)."""
    settings = _settings()
    from gunicorn.app.base import BaseApplication

    from web import create_app

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{settings.web_host}:{settings.web_port}")
            self.cfg.set("workers", int(os.environ.get("HUB_WEB_WORKERS", "2")))
            self.cfg.set("threads", 4)
            self.cfg.set("accesslog", "-")
            # Requests are short: on a stop, five seconds for those in flight, then the workers go
            # (gunicorn's default of 30 s kept `hub up` and container stops waiting on idle
            # keep-alive connections).
            self.cfg.set("graceful_timeout", 5)

        def load(self) -> object:
            return create_app(settings)

    _Server().run()


def _celery(settings: Settings):
    from workers.app import create_celery

    return create_celery(settings)


# A part that keeps dying is started again after 1, 2, 4 … seconds, at most a minute apart; one
# that ran this long before it died is a fresh failure and starts again after the shortest wait.
RESTART_BACKOFF_MAX = 60.0
RESTART_STABLE_AFTER = 120.0


def _next_backoff(previous: float, ran_for: float) -> float:
    if ran_for >= RESTART_STABLE_AFTER:
        return 1.0
    return min(max(previous * 2, 1.0), RESTART_BACKOFF_MAX)


def _exit_words(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _stop_with_parent(parent_pid: int) -> None:
    """Warm-shut this process down when the supervisor that started it is gone (even SIGKILLed).

    The supervised worker runs in its own session (so a terminal's Ctrl-C reaches it once, through
    the supervisor), which also means nothing else would ever stop it.
    """
    import threading

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(2)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# After a cold shutdown was asked, what is still running this much later is killed.
COLD_SHUTDOWN_SECONDS = 2.0


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _supervise_worker(args: list[str]) -> None:
    """Run the Celery worker as a child and start it again whenever it dies on its own.

    Celery retries a lost broker for ever (workers.app), but an error inside kombu's connection-loss
    path still ends the Celery process ("Unrecoverable error") — and with exit code 0, so the code
    cannot tell a crash from a requested stop. Here any end that this process did not ask for (by
    SIGTERM/SIGINT, forwarded) costs a restart, not the worker: unacknowledged messages come back
    from Redis and every task is idempotent. To stop the worker, stop `hub worker`.
    """
    import threading

    stopping = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        # The first SIGTERM/SIGINT is Celery's warm shutdown (running tasks finish). SIGQUIT, or
        # being asked twice, is its cold shutdown: tasks stop at once and, acknowledged late, come
        # back from the broker (every task is idempotent); whatever is left a few seconds later
        # (pool children included: the worker has its own process group) is killed.
        urgent = signum == signal.SIGQUIT or stopping.is_set()
        stopping.set()
        if child is None or child.poll() is not None:
            return
        if not urgent:
            child.send_signal(signum)
            return
        child.send_signal(signal.SIGQUIT)
        threading.Timer(COLD_SHUTDOWN_SECONDS, _kill_group, (child.pid,)).start()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGQUIT, forward)
    env = {**os.environ, "HUB_WORKER_SUPERVISOR_PID": str(os.getpid())}
    backoff = 0.0
    restarts = 0
    while not stopping.is_set():
        started = time.monotonic()
        child = subprocess.Popen(args, env=env, start_new_session=True)
        code = child.wait()
        if stopping.is_set():
            # Asked to stop: the signal was forwarded; wait out the warm shutdown (tasks finish).
            while child.poll() is None:
                child.wait()
            sys.exit(child.returncode if child.returncode > 0 else 0)
        backoff = _next_backoff(backoff, time.monotonic() - started)
        restarts += 1
        click.echo(
            f"hub worker: the Celery worker stopped unexpectedly ({_exit_words(code)}); "
            f"starting it again in {backoff:.0f} s (restart {restarts})",
            err=True,
        )
        stopping.wait(backoff)


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--queues", default="default,crm,mail,telephony,calendar,campaigns", show_default=True)
@click.option("--concurrency", default=2, show_default=True)
@click.option(
    "--supervise/--no-supervise",
    default=True,
    show_default=True,
    help="Start the Celery worker again when it dies on its own (--no-supervise runs it in this process).",
)
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
def worker(queues: str, concurrency: int, supervise: bool, extra: tuple[str, ...]) -> None:
    """Run a Celery worker for the given queues; it survives losing the broker."""
    settings = _settings()
    if supervise:
        _supervise_worker(
            [
                sys.executable,
                "-m",
                "hub.cli",
                "worker",
                "--no-supervise",
                "--queues",
                queues,
                "--concurrency",
                str(concurrency),
                *extra,
            ]
        )
        return
    parent = os.environ.get("HUB_WORKER_SUPERVISOR_PID", "")
    if parent.isdigit() and int(parent) == os.getppid():
        _stop_with_parent(int(parent))
    app = _celery(settings)
    app.worker_main(["worker", "-Q", queues, "-c", str(concurrency), "--loglevel=INFO", "-E", *extra])


@main.command()
def beat() -> None:
    """Run the scheduler (exactly one per installation)."""
    app = _celery(_settings())
    app.start(["beat", "--loglevel=INFO"])


# Options that decide who can reach Flower; they come from the settings so the check below sees them.
_FLOWER_GUARDED = ("--address", "--basic-auth", "--basic_auth", "--auth", "--unix-socket", "--unix_socket")


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--port", default=5555, show_default=True)
@click.option(
    "--address",
    default=None,
    help="Address to listen on (default HUB_FLOWER_ADDRESS, else 127.0.0.1). Any address other than "
    "loopback needs HUB_FLOWER_BASIC_AUTH.",
)
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
def flower(port: int, address: str | None, extra: tuple[str, ...]) -> None:
    """Run Flower, the worker and task monitor (loopback only unless basic auth is configured)."""
    from hub.config import is_loopback

    settings = _settings()
    for word in extra:
        if word.split("=", 1)[0] in _FLOWER_GUARDED:
            raise click.ClickException(
                f"{word.split('=', 1)[0]} is not passed through to Flower: use --address or "
                "HUB_FLOWER_ADDRESS, and HUB_FLOWER_BASIC_AUTH for the login"
            )
    address = (address if address is not None else settings.flower_address).strip()
    if not is_loopback(address) and not settings.flower_basic_auth:
        raise click.ClickException(
            f"refusing to start Flower on {address or 'every interface'}: anyone who reaches it sees every "
            "task's arguments and can revoke tasks. Set HUB_FLOWER_BASIC_AUTH=user:password, or listen on "
            "127.0.0.1 (the default)"
        )
    args = ["flower", f"--port={port}", f"--address={address}"]
    if settings.flower_basic_auth:
        # In-process arguments: the password never appears in the process list or a log line.
        args += [f"--basic-auth={pair}" for pair in settings.flower_basic_auth.split(",")]
    app = _celery(settings)
    app.start([*args, *extra])


def _wait_for_port(host: str, port: int, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)


# Ctrl-C of `hub up` ends everything within this many seconds, whatever is running: first a polite
# stop (requests and tasks finish), then a quick one (gunicorn's quick shutdown, Celery's cold
# shutdown), then SIGKILL for each part's whole process group.
UP_POLITE_SECONDS = 5.0
UP_QUICK_SECONDS = 3.0


def _start_part(command: list[str]) -> subprocess.Popen[bytes]:
    """A part in its own process group: the terminal's Ctrl-C reaches it once, through `hub up`,
    and what it started (gunicorn's workers, Celery's pool) can be stopped with it as one group."""
    return subprocess.Popen(command, start_new_session=True)


def _stop_parts(children: list[subprocess.Popen[bytes]]) -> None:
    for signum, seconds in ((signal.SIGTERM, UP_POLITE_SECONDS), (signal.SIGQUIT, UP_QUICK_SECONDS)):
        running = [child for child in children if child.poll() is None]
        for child in running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                # The parent only: gunicorn's master and Celery's supervisor stop their own children
                # in order, which a signal to the whole group would cut short.
                child.send_signal(signum)
        deadline = time.monotonic() + seconds
        for child in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(max(deadline - time.monotonic(), 0.05))
    for child in children:
        _kill_group(child.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(1)


@main.command()
def up() -> None:
    """Migrate, then run web, a worker and beat together; Ctrl-C stops all of it."""
    from hub.migrate import upgrade

    settings = _settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    first = ensure_first_admin(settings)
    exe = [sys.executable, "-m", "hub.cli"]
    parts = {"web": ["web"], "worker": ["worker"], "beat": ["beat"], "mail watch": ["mail", "watch"]}
    children = {name: _start_part([*exe, *args]) for name, args in parts.items()}
    _wait_for_port(settings.web_host, settings.web_port, timeout=60)
    click.echo(f"hub is running at {settings.base_url}/  (Ctrl-C stops it)")
    if first:
        click.echo(f"first admin: {first[0]}  password: {first[1]}  (shown only this once)")

    def stop(*_args: object) -> None:
        # Stopping takes seconds at most; a second Ctrl-C would only start the same steps again.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop_parts(list(children.values()))
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    started = dict.fromkeys(children, time.monotonic())
    backoff = dict.fromkeys(children, 0.0)
    restart_at: dict[str, float] = {}
    while True:
        now = time.monotonic()
        for name, child in children.items():
            if name in restart_at:
                if now >= restart_at[name]:
                    del restart_at[name]
                    children[name] = _start_part([*exe, *parts[name]])
                    started[name] = now
                    click.echo(f"started the {name} part again", err=True)
            elif child.poll() is not None:
                # One part dying (a broker outage, a crash) must not take the others down with it.
                backoff[name] = _next_backoff(backoff[name], now - started[name])
                restart_at[name] = now + backoff[name]
                click.echo(
                    f"the {name} part stopped ({_exit_words(child.returncode)}); "
                    f"starting it again in {backoff[name]:.0f} s",
                    err=True,
                )
        time.sleep(0.5)


# --- calendar ------------------------------------------------------------------------------------


@main.group()
def calendar() -> None:
    """Staff calendars: CalDAV accounts, pushing appointments and pulling changes back."""


@calendar.group("account")
def calendar_account() -> None:
    """Calendar accounts (one per staff member)."""


@calendar_account.command("add")
@click.option("--owner", "owner_email", required=True, help="The staff member's e-mail address in hub.")
@click.option("--url", required=True, help="The CalDAV server's address (https://…).")
@click.option("--username", required=True)
@click.option("--password", required=True, help="Stored encrypted; never shown again.")
@click.option("--calendar", "calendar_name", default="", help="The calendar's name (default: the first one).")
def calendar_account_add(owner_email: str, url: str, username: str, password: str, calendar_name: str) -> None:
    """Connect a staff member's CalDAV calendar: finds his calendars and chooses one (prints the account's id)."""
    from sqlalchemy import select

    from hub.calendar.accounts import AccountInput, discover, save_account
    from hub.calendar.dav import CalendarError
    from hub.errors import ValidationError
    from hub.models import User

    settings = _settings()
    database = Database(settings.database_url)
    try:
        found = discover(url.strip(), username, password, allowed_hosts=settings.mail_allowed_hosts)
    except CalendarError as exc:
        raise click.ClickException(exc.words) from None
    try:
        with database.transaction() as session:
            owner = session.scalar(select(User).where(User.email == owner_email.strip().lower()))
            if owner is None:
                raise click.ClickException(f"no user {owner_email}")
            account = save_account(
                session,
                settings.secret_key,
                owner,
                AccountInput(url=url, username=username, password=password, calendar=calendar_name),
                found=found,
            )
            click.echo(f"calendar account {account.id}: {account.calendar_name} ({account.calendar_url})", err=True)
            click.echo(account.id)
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from None


@calendar.command("push")
@click.option("--now", is_flag=True, help="Push here in the foreground instead of asking the workers.")
def calendar_push(now: bool) -> None:
    """Push what is due into the staff calendars; with --now in the foreground."""
    _calendar_run(now, push=True)


@calendar.command("pull")
@click.option("--now", is_flag=True, help="Pull here in the foreground instead of asking the workers.")
def calendar_pull(now: bool) -> None:
    """Pull changes made in the staff calendars back into hub; with --now in the foreground."""
    _calendar_run(now, push=False)


def _calendar_run(now: bool, *, push: bool) -> None:
    """`hub calendar push/pull`: in the foreground with --now, else a message to the workers (their
    sweep pushes and pulls every due account)."""
    from hub.calendar.sync import pull_now, push_now

    settings = _settings()
    if not now:
        from workers.tasks import calendar_sweep

        _celery(settings)
        calendar_sweep.delay()
        click.echo("asked the workers to push and pull the calendars")
        return
    started = time.monotonic()
    run = push_now if push else pull_now
    database = Database(settings.database_url)
    result = run(database, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts)
    for error in result.errors:
        click.echo(f"account {error}", err=True)
    took = time.monotonic() - started
    if push:
        click.echo(f"pushed {result.appointments} appointments ({result.requests} requests) in {took:.1f} s")
    else:
        click.echo(f"pulled {result.pulled} changes ({result.requests} requests) in {took:.1f} s")
    if result.errors:
        sys.exit(1)


@main.group()
def campaign() -> None:
    """Campaign mailings."""


@campaign.command("send")
@click.argument("mailing")
@click.option("--now", is_flag=True, help="Send here in the foreground instead of asking the workers.")
def campaign_send(mailing: str, now: bool) -> None:
    """Send MAILING (its id or name): start it now if it is a draft or scheduled, then send it."""
    settings = _settings()
    if now and not settings.embedded:  # (SQLite: every session in this process, see send_mailing)
        from hub.campaigns.processes import start_ahead

        # Sending processes import hub (a second each) while this one imports and fills the ledger.
        start_ahead(settings.campaign_connections)
    from hub.campaigns.sending import find_mailing, ledger_counts, send_foreground, start_now

    database = Database(settings.database_url)
    try:
        before = ledger_counts(database, find_mailing(database, mailing))
        mailing_id = start_now(database, mailing)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    if not now:
        from workers.tasks import send_mailing_task

        _celery(settings)
        send_mailing_task.delay(mailing_id)
        click.echo(f"asked the workers to send mailing {mailing_id}")
        return
    with click.progressbar(length=1, label="sending", file=sys.stderr, show_eta=True) as bar:
        drawn = [0.0]

        def progress(done: int, total: int) -> None:
            # Called per message from every sending connection; the bar is redrawn ten times a second.
            now = time.monotonic()
            if now - drawn[0] >= 0.1 or done >= total:
                drawn[0] = now
                bar.length = max(total, 1)
                bar.update(done - bar.pos)

        result = send_foreground(database, settings, mailing_id, progress=progress, counted_before=before)
    if result.paused_reason:
        from hub.i18n import shown

        click.echo(shown(result.paused_reason), err=True)
    click.echo(
        f"sent {result.sent} messages ({result.failed} failed, {result.skipped} skipped) in {result.seconds:.1f} s"
    )
    if result.state == "paused":
        sys.exit(1)


if __name__ == "__main__":
    main()
