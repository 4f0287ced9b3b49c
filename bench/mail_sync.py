"""Mail sync benchmark: hub's IMAP sync against mbsync (isync) on the same mailbox, in the same run.

1. Generates a realistic mailbox with bench/gen_mailbox.py (20,000 messages by default)
   and imports its contacts, serves it from a throwaway Dovecot.
2. Times mbsync pulling it into a Maildir, then hub's first sync into the database with matching
   (`hub mail sync --now`, one process, SQLite by default); then both no-op resyncs.
3. New-mail latency: with `hub mail watch` and a worker running (Redis broker), APPENDs messages and
   times until each is visible through the API; reports the p95.
4. Memory: the peak RSS of a sync of 10,000 and of 50,000 messages, its parse helper process
   included (bounded memory: the ratio should stay near 1).

Prints a table and ratios; the last line is `mail_sync: ratio=R target=1.0`, R = hub first sync time
over mbsync's (lower is better).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imapclient import IMAPClient  # noqa: E402

from tests.mail_server import ImapServer, dovecot_server  # noqa: E402
from tests.servers import redis_server  # noqa: E402

# Run as a module from the project root: run as a script, bench/ would come first on sys.path and
# bench/calendar.py would stand in for Python's own calendar module (which e-mail and CSV code use).
GENERATOR = ["-m", "bench.gen_mailbox"]
CACHE = Path(os.environ.get("HUB_BENCH_CACHE", "") or Path(tempfile.gettempdir()) / "hub-bench-mail")
PASSWORD = "bench-secret"


def generated(n: int) -> tuple[Path, Path]:
    """A Maildir of n messages and its contacts CSV, made once and reused (same seed, same data)."""
    maildir, contacts = CACHE / f"maildir-{n}", CACHE / f"contacts-{n}.csv"
    if not (maildir / "cur").exists() or len(os.listdir(maildir / "cur")) != n:
        shutil.rmtree(maildir, ignore_errors=True)
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"generating {n:,} messages …", file=sys.stderr)
        subprocess.run(
            [sys.executable, *GENERATOR, str(maildir), str(n), "--contacts", str(contacts)],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=ROOT,
        )
    return maildir, contacts


def install_maildir(server: ImapServer, user: str, source: Path) -> None:
    """Give the IMAP user the generated Maildir (hard links: instant, no copy)."""
    home = server.root / "mail" / user
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-al", str(source), str(home / "Maildir")], check=True)
    if os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam("dovecot")
        subprocess.run(["chown", "-R", f"{entry.pw_uid}:{entry.pw_gid}", str(home)], check=True)
    # Let Dovecot build its index now, so neither contender pays for it.
    client = IMAPClient(server.host, port=server.port, ssl=False, timeout=600)
    client.login(user, PASSWORD)
    client.select_folder("INBOX", readonly=True)
    client.logout()


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run a command; return (seconds, its own peak RSS in KiB, stdout)."""
    return peak_rss_kib(command, env or dict(os.environ))


def peak_rss_kib(command: list[str], env: dict[str, str], *, with_helpers: bool = False) -> tuple[float, int, str]:
    """Run a command; return (seconds, peak RSS in KiB, stdout).

    With ``with_helpers`` the peak includes the command's child processes (the mail parse helper),
    read from /proc while it runs: the sum of each process's own peak.
    """
    started = time.perf_counter()
    helper_peaks: dict[int, int] = {}
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
        stop = threading.Event()
        watcher = threading.Thread(target=_watch_children, args=(proc.pid, helper_peaks, stop), daemon=True)
        if with_helpers:
            watcher.start()
        assert proc.stdout is not None
        out = proc.stdout.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        stop.set()
        if with_helpers:
            watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{command[:4]} failed with {proc.returncode}: {errors.read()[-2000:]}")
    return time.perf_counter() - started, int(usage.ru_maxrss) + sum(helper_peaks.values()), out


def _watch_children(parent: int, peaks: dict[int, int], stop: threading.Event) -> None:
    """Record the peak RSS (VmHWM, KiB) of every child of ``parent`` until ``stop``."""
    while not stop.wait(0.05):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != parent:
                    continue
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks[int(entry.name)] = max(peaks.get(int(entry.name), 0), int(line.split()[1]))
            except (OSError, ValueError, IndexError):
                continue


def mbsync_config(workdir: Path, server: ImapServer, user: str) -> Path:
    target = workdir / f"mbsync-{user}"
    (target / "INBOX").mkdir(parents=True, exist_ok=True)
    config = workdir / f"mbsyncrc-{user}"
    config.write_text(f"""IMAPAccount bench
Host {server.host}
Port {server.port}
User {user}
Pass {PASSWORD}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account bench

MaildirStore local
Path {target}/
Inbox {target}/INBOX
SubFolders Verbatim

Channel bench
Far :remote:
Near :local:
Patterns INBOX
Sync Pull
Create Near
SyncState *
""")
    return config


def hub_env(workdir: Path, name: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_VAR_DIR=str(workdir / name),
        HUB_SECRET_KEY="bench-secret-key-0123456789",
        HUB_MAIL_ALLOWED_HOSTS="127.0.0.1,localhost",
        **extra,
    )
    return env


def throwaway_postgres(stack: contextlib.ExitStack) -> str:
    """A PostgreSQL server for this run (as the tests start one) and a database in it; its URL."""
    import psycopg

    from tests.servers import postgres_server

    server = stack.enter_context(postgres_server())
    with psycopg.connect(server.replace("+psycopg", "") + "/postgres", autocommit=True) as connection:
        connection.execute("CREATE DATABASE bench_mail")
    return server + "/bench_mail"


def hub(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", *args], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"hub {' '.join(args[:2])} failed: {result.stderr[-2000:]}")
    return result.stdout


def prepare_hub(env: dict[str, str], server: ImapServer, user: str, contacts: Path) -> str:
    hub(env, "db", "upgrade")
    hub(env, "user", "add", "verkoop@hub.example.com", "--password", "bench password", "--admin")
    hub(env, "import", "relations", str(contacts))
    return hub(
        env,
        "mailbox",
        "add",
        "--owner",
        "verkoop@hub.example.com",
        "--host",
        server.host,
        "--port",
        str(server.port),
        "--security",
        "none",
        "--username",
        user,
        "--password",
        PASSWORD,
        "--folders",
        "INBOX",
    ).strip()


def in_process_noop(env: dict[str, str], mailbox_id: int) -> float:
    """A no-op resync in a long-running process, as the worker and the IDLE-woken sync run it (median of 5)."""
    from hub.blobs import BlobStore
    from hub.config import load_settings
    from hub.db import Database
    from hub.mail.sync import sync_mailbox

    settings = load_settings(env)
    database = Database(settings.database_url)
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        result = sync_mailbox(
            database,
            BlobStore(settings.documents_dir),
            mailbox_id,
            secret_key=settings.secret_key,
            allowed_hosts=settings.mail_allowed_hosts,
            force=True,
        )
        samples.append(time.perf_counter() - started)
        assert result is not None and result.new == 0
    database.dispose()
    return statistics.median(samples)


def latency(server: ImapServer, workdir: Path, samples: int) -> list[float]:
    """Seconds from APPEND until the message is visible through the API, with watcher and worker running."""
    from tests.integration.test_mail_sync import message

    with redis_server(workdir / "redis") as redis_url:
        env = hub_env(workdir, "latency", HUB_BROKER_URL=redis_url)
        server.add_user("latency", PASSWORD)
        time.sleep(1.1)  # Dovecot re-reads its passwd file when the mtime changes
        hub(env, "db", "upgrade")
        hub(env, "user", "add", "api@hub.example.com", "--password", "bench password", "--admin")
        token = hub(env, "token", "create", "api@hub.example.com").strip()
        hub(
            env,
            "mailbox",
            "add",
            "--host",
            server.host,
            "--port",
            str(server.port),
            "--security",
            "none",
            "--username",
            "latency",
            "--password",
            PASSWORD,
            "--folders",
            "INBOX",
        )
        logs = workdir / "latency-logs"
        logs.mkdir(exist_ok=True)
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "hub.cli", *args],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(logs / f"{args[0]}.log").open("wb"),
            )
            for args in (["worker", "--queues", "mail,default", "--concurrency", "2"], ["mail", "watch"])
        ]
        from hub.config import load_settings
        from web import create_app

        app = create_app(load_settings(env))
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        imap = IMAPClient(server.host, port=server.port, ssl=False, timeout=30)
        imap.login("latency", PASSWORD)
        results: list[float] = []
        try:
            time.sleep(5)  # worker and watcher up, first sync done
            for i in range(samples + 1):
                msgid = f"<latency-{i}-{time.time_ns()}@bench.example>"
                started = time.perf_counter()
                imap.append("INBOX", message(subject=f"latency {i}", msgid=msgid))
                while True:
                    found = client.get(f"/api/v1/emails?message_id={msgid}", headers=headers).get_json()
                    if found["items"]:
                        break
                    if time.perf_counter() - started > 30:
                        raise RuntimeError("new mail did not show up within 30 s")
                    time.sleep(0.01)
                if i:  # the first one warms up the worker's connections
                    results.append(time.perf_counter() - started)
                time.sleep(0.3)
        finally:
            imap.logout()
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--memory-small", type=int, default=10_000)
    parser.add_argument("--memory-large", type=int, default=50_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--latency-samples", type=int, default=20)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="hub's first sync and no-op resync into a throwaway PostgreSQL (production's database)",
    )
    args = parser.parse_args()
    if not shutil.which("mbsync"):
        sys.exit("mbsync is not installed: apt-get install isync")

    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-mail-"))
    maildir, contacts = generated(args.messages)
    users = {"bench": PASSWORD, "small": PASSWORD, "large": PASSWORD, "latency": PASSWORD}
    rows: list[tuple[str, str]] = []
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(dovecot_server(users))
        database = {"HUB_DATABASE_URL": throwaway_postgres(stack)} if args.postgres else {}
        install_maildir(server, "bench", maildir)
        config = mbsync_config(workdir, server, "bench")
        mbsync_first, _, _ = timed(["mbsync", "-q", "-c", str(config), "-a"])
        mbsync_noop, _, _ = timed(["mbsync", "-q", "-c", str(config), "-a"])
        env = hub_env(workdir, "hub", **database)
        mailbox_id = prepare_hub(env, server, "bench", contacts)
        command = [sys.executable, "-m", "hub.cli", "mail", "sync", "--now", "--mailbox", mailbox_id]
        hub_first, _, summary = peak_rss_kib(command, env)
        hub_noop_cli, _, noop_summary = peak_rss_kib(command, env)
        hub_noop = in_process_noop(env, int(mailbox_id))
        rows += [
            ("hub's database", "PostgreSQL" if args.postgres else "SQLite (the embedded default)"),
            (f"mbsync first sync ({args.messages:,} messages)", f"{mbsync_first:8.2f} s"),
            ("hub first sync, with matching", f"{hub_first:8.2f} s   {summary.strip()}"),
            ("mbsync no-op resync", f"{mbsync_noop:8.2f} s"),
            ("hub no-op resync, as a worker does it", f"{hub_noop:8.2f} s"),
            (
                "hub no-op resync, CLI process",
                f"{hub_noop_cli:8.2f} s   {noop_summary.strip()} (the rest is Python and SQLAlchemy starting)",
            ),
            ("first sync ratio (hub / mbsync)", f"{hub_first / mbsync_first:8.2f}   target 1.0"),
            ("no-op resync ratio (hub / mbsync)", f"{hub_noop / mbsync_noop:8.2f}   target 1.0"),
        ]
        if args.latency_samples:
            samples = sorted(latency(server, workdir, args.latency_samples))
            p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
            rows.append(
                (
                    "new mail visible through the API, p95",
                    f"{p95:8.3f} s   (median "
                    f"{statistics.median(samples):.3f} s, {len(samples)} samples)   target 1.0 s",
                )
            )
        if not args.skip_memory:
            peaks = {}
            for label, n in (("small", args.memory_small), ("large", args.memory_large)):
                source, csv = generated(n)
                install_maildir(server, label, source)
                env_n = hub_env(workdir, f"mem-{label}")
                box = prepare_hub(env_n, server, label, csv)
                _, peaks[label], _ = peak_rss_kib(
                    [sys.executable, "-m", "hub.cli", "mail", "sync", "--now", "--mailbox", box],
                    env_n,
                    with_helpers=True,
                )
            rows.append(
                (
                    f"peak memory, {args.memory_small:,} vs {args.memory_large:,} messages",
                    f"{peaks['small'] / 1024:.0f} MiB vs {peaks['large'] / 1024:.0f} MiB, ratio "
                    f"{peaks['large'] / peaks['small']:.2f}   target 1.2",
                )
            )
    if not os.environ.get("HUB_BENCH_KEEP"):
        shutil.rmtree(workdir, ignore_errors=True)
    for name, value in rows:
        print(f"{name:45} {value}")
    print(f"mail_sync: ratio={hub_first / mbsync_first:.2f} target=1.0")


if __name__ == "__main__":
    main()
