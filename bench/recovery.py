"""Recovery benchmark: how long mail sync stands still after a fault, with the real processes running.

Starts its own PostgreSQL, Redis (append-only file, as docker-compose runs it) and Dovecot, and runs
`hub worker --queues mail,default`, `hub beat` and `hub mail watch` as subprocesses, as production
does. Each fault hits a first sync of its own mailbox (a generated mailbox of --messages messages,
another seed per fault, so no sync finds its mail already stored) once --fault-at messages are done:

  a) SIGKILL of the process running the sync (the pid in ``mailbox.claimed_by``);
  b) SIGKILL of every process of `hub worker` (supervisor, Celery, pool, parse helpers: a host or
     container dying), then `hub worker` started again;
  c) PostgreSQL stopped (fast shutdown), down for --outage seconds, started again on its port and data;
  d) Redis killed (SIGKILL), down for --outage seconds, started again on its port and data.

Measured: seconds from the fault's end (the server or worker started again; for (a) the kill) until
the sync moves again (``messages_stored`` or ``last_progress_at`` changes, or the sync completes), and
until the mailbox's first sync has completed. Goal: progress again within 60 s.

  e) new mail after an IMAP restart: with the watcher running, Dovecot is stopped and started again
     on the same port and mail, a message is APPENDed, and the time until its ``email`` row exists is
     taken; --samples times, --sample-gap seconds apart (so the watcher's reconnect backoff starts
     afresh each time, as for a single restart). Goal: 5 s.

Prints a table; the last line is `recovery: ratio=R target=1.0`, R = the worst recovery time of
(a) to (d) over its 60 s goal (lower is better). The new-mail goal is reported in the table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from imapclient import IMAPClient  # noqa: E402

from bench.gen_mailbox import contacts, generate, write_contacts  # noqa: E402
from bench.mail_sync import install_maildir  # noqa: E402
from tests.mail_server import ImapServer, dovecot_server  # noqa: E402
from tests.servers import PostgresServer, free_port, wait_for_port  # noqa: E402

PASSWORD = "bench-secret"
STAFF = "verkoop@hub.example.com"
GOAL_SYNC, GOAL_NEW_MAIL = 60.0, 5.0
POLL = 0.1


# --- servers that can be stopped and started again on the same port and data -------------------


class Redis:
    """redis-server with an append-only file (as docker-compose runs it), restartable in place."""

    def __init__(self, base: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            sys.exit("Redis is not installed: apt-get install redis-server")
        self.binary, self.base, self.port = binary, base, free_port()
        base.mkdir(parents=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.base)]
        command += ["--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction"]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, 30, self.proc)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


# --- hub's processes -------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, read from /proc (new sessions included)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


class Part:
    """One `hub …` process (worker, beat, mail watch) with its own log."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.args, self.env, self.log_path = name, args, env, logs / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_offset = 0

    def start(self) -> None:
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill_all(self) -> None:
        """SIGKILL to the process and everything it started, at once (a host or container dying)."""
        if self.proc is None:
            return
        for pid in descendants(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill_all()


def wait_for_log(part: Part, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with part.log_path.open("rb") as log:  # what this run of the part logged
            log.seek(part.log_offset)
            if text.encode() in log.read():
                return
        if not part.alive():
            raise RuntimeError(f"{part.name} exited: see {part.log_path}")
        time.sleep(0.2)
    raise RuntimeError(f"{part.name} did not log {text!r} within {timeout} s: see {part.log_path}")


def hub(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "hub.cli", *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"hub {' '.join(args[:2])} failed: {result.stderr[-2000:]}")
    return result.stdout


# --- what the database says ------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    progress_done: int
    progress_total: int
    messages_stored: int
    last_progress_at: datetime | None
    last_success_at: datetime | None
    claimed_by: str

    def moved_since(self, other: Row) -> bool:
        return (
            self.messages_stored != other.messages_stored
            or self.last_progress_at != other.last_progress_at
            or self.last_success_at != other.last_success_at
        )

    @property
    def completed(self) -> bool:
        return self.last_success_at is not None and not self.claimed_by


class Watch:
    """Reads the mailbox row with a fresh connection each time (the database may be restarting)."""

    def __init__(self, server_url: str) -> None:
        self.dsn = server_url.replace("+psycopg", "") + "/bench_recovery"

    def query(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        try:
            with psycopg.connect(self.dsn, connect_timeout=2) as connection:
                return connection.execute(sql, params).fetchone()
        except psycopg.OperationalError:
            return None

    def row(self, mailbox_id: int) -> Row | None:
        found = self.query(
            "SELECT progress_done, progress_total, messages_stored, last_progress_at, last_success_at, claimed_by "
            "FROM mailbox WHERE id = %s",
            (mailbox_id,),
        )
        return Row(*found) if found else None

    def until(self, mailbox_id: int, test: Callable[[Row], bool], timeout: float) -> Row | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.row(mailbox_id)
            if row is not None and test(row):
                return row
            time.sleep(POLL)
        return None

    def stored(self, subject: str) -> bool:
        return self.query("SELECT 1 FROM email WHERE subject = %s", (subject,)) is not None


# --- the benchmark -------------------------------------------------------------------------------


@dataclass
class Result:
    fault: str
    progress_again: float | None  # None: not within the timeout
    completed: float | None
    note: str = ""
    stopped_for_good: bool = False  # a part of hub ended after the fault and nothing started it again


@dataclass
class Bench:
    args: argparse.Namespace
    env: dict[str, str]
    imap: ImapServer
    postgres: PostgresServer
    redis: Redis
    watch: Watch
    parts: dict[str, Part]

    def add_mailbox(self, user: str) -> int:
        out = hub(
            self.env,
            "mailbox",
            "add",
            "--owner",
            STAFF,
            "--host",
            self.imap.host,
            "--port",
            str(self.imap.port),
            "--security",
            "none",
            "--username",
            user,
            "--password",
            PASSWORD,
            "--folders",
            "INBOX",
        )
        return int(out.strip().split()[-1])

    def fault(self, label: str, user: str, inject: Callable[[Row], str]) -> Result:
        """Start a first sync of ``user``'s mailbox, inject the fault mid-sync, time the recovery."""
        mailbox_id = self.add_mailbox(user)
        hub(self.env, "mail", "sync", "--mailbox", str(mailbox_id))  # asks the workers
        at = self.args.fault_at
        before = self.watch.until(mailbox_id, lambda r: r.progress_done >= at or r.completed, 180)
        if before is None:
            raise RuntimeError(f"{label}: the sync did not reach {at} messages within 180 s")
        if before.completed:
            raise RuntimeError(f"{label}: the sync finished before the fault; use more or larger messages")
        print(f"{label}: fault at {before.progress_done}/{before.progress_total} messages", file=sys.stderr)
        note = inject(before)
        ended = time.monotonic()
        after = self.watch.until(mailbox_id, lambda r: True, 60)
        if after is None:
            raise RuntimeError(f"{label}: the database did not answer after the fault")
        if after.moved_since(before):
            note = "; ".join(filter(None, [note, "the sync kept going during the fault"]))
        again = self.watch.until(mailbox_id, lambda r: r.moved_since(after) or r.completed, self.args.timeout)
        progress_again = time.monotonic() - ended if again is not None else None
        done = self.watch.until(mailbox_id, lambda r: r.completed, self.args.timeout)
        completed = time.monotonic() - ended if done is not None else None
        if done is not None and done.messages_stored != self.args.messages:
            note = "; ".join(filter(None, [note, f"stored {done.messages_stored} of {self.args.messages}"]))
        died = self.revive()
        if died:
            note = "; ".join(filter(None, [note, died]))
        print(f"{label}: progress again after {progress_again} s, completed after {completed} s", file=sys.stderr)
        return Result(label, progress_again, completed, note, stopped_for_good=bool(died))

    def revive(self, settle: float = 10.0) -> str:
        """Parts that ended after the fault (a part that dies for good is a failed recovery: no later
        work would ever be done), started again here so the next fault runs on a whole installation."""
        time.sleep(settle)
        dead = []
        for name, part in self.parts.items():
            if not part.alive():
                code = part.proc.returncode if part.proc else None
                dead.append(f"`hub {name}` ended (exit code {code}) and stayed down; restarted by the benchmark")
                part.start()
        if any(line.startswith("`hub worker`") for line in dead):
            wait_for_log(self.parts["worker"], " ready.", 120)
        return "; ".join(dead)

    # The faults: each returns a note for the table (or "").

    def kill_sync_process(self, before: Row) -> str:
        pid = int(before.claimed_by.split(":")[1])
        os.kill(pid, signal.SIGKILL)
        return f"killed pid {pid}"

    def kill_worker(self, _before: Row) -> str:
        worker = self.parts["worker"]
        killed = len(descendants(worker.proc.pid)) if worker.proc else 0
        worker.kill_all()
        worker.start()
        return f"killed {killed} processes, started again at once"

    def restart_postgres(self, _before: Row) -> str:
        self.postgres.stop()
        time.sleep(self.args.outage)
        self.postgres.start()
        return ""

    def restart_redis(self, _before: Row) -> str:
        self.redis.kill()
        time.sleep(self.args.outage)
        self.redis.start()
        return ""

    def new_mail_after_imap_restart(self, user: str, mailbox_id: int) -> list[float | None]:
        from tests.integration.test_mail_sync import message

        if self.watch.until(mailbox_id, lambda r: r.completed, self.args.timeout) is None:
            print("the new-mail mailbox's first sync did not complete", file=sys.stderr)
            return [None] * self.args.samples
        samples: list[float | None] = []
        for i in range(self.args.samples + 1):  # the first, without a restart, checks the watcher is on
            if i:
                time.sleep(self.args.sample_gap)
                self.imap.stop()
                time.sleep(1)
                self.imap.start()
            subject = f"recovery {i} {time.time_ns()}"
            client = IMAPClient(self.imap.host, port=self.imap.port, ssl=False, timeout=30)
            client.login(user, PASSWORD)
            started = time.monotonic()
            client.append("INBOX", message(subject=subject, msgid=f"<recovery-{i}-{time.time_ns()}@bench.example>"))
            client.logout()
            while not self.watch.stored(subject):
                if time.monotonic() - started > self.args.timeout:
                    break
                time.sleep(0.05)
            took = time.monotonic() - started
            print(f"new mail {i}: {took:.2f} s", file=sys.stderr)
            if i:
                samples.append(took if took <= self.args.timeout else None)
            elif took > self.args.timeout:
                print("new mail did not arrive even without a restart: is `hub mail watch` up?", file=sys.stderr)
                return [None] * self.args.samples
        return samples


def seconds(value: float | None, timeout: float) -> str:
    return f"{value:7.1f} s" if value is not None else f"> {timeout:.0f} s"


@contextlib.contextmanager
def running(start: Callable[[], None], stop: Callable[[], None]) -> Iterator[None]:
    start()
    try:
        yield
    finally:
        stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3_000, help="messages in each fault's mailbox")
    parser.add_argument(
        "--attachment-rate",
        type=float,
        default=0.1,
        help="share of messages with an attachment (raise it to make the sync longer)",
    )
    parser.add_argument("--fault-at", type=int, default=400, help="inject the fault once this many are synced")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds PostgreSQL and Redis stay down")
    parser.add_argument("--samples", type=int, default=5, help="IMAP restarts for the new-mail measurement")
    parser.add_argument("--sample-gap", type=float, default=31.0, help="seconds between IMAP restarts")
    parser.add_argument("--timeout", type=float, default=240.0, help="give up waiting after this long")
    parser.add_argument("--faults", default="abcde", help="which faults to run (letters a to e)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-recovery-"))
    os.chmod(workdir, 0o755)  # the postgres and dovecot users reach their dirs below it
    logs = workdir / "logs"
    logs.mkdir()
    people = contacts(1)
    write_contacts(workdir / "contacts.csv", people)
    faults = [f for f in "abcd" if f in args.faults]
    users = {f"fault_{f}": PASSWORD for f in faults} | {"newmail": PASSWORD}
    for seed, user in enumerate(users, start=2):
        n = args.messages if user != "newmail" else 20
        print(f"generating {n:,} messages for {user} …", file=sys.stderr)
        generate(workdir / "maildirs" / user, n, seed=seed, people=people, attachment_rate=args.attachment_rate)

    postgres, redis = PostgresServer(), Redis(workdir / "redis")
    results: list[Result] = []
    new_mail: list[float | None] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(running(postgres.start, postgres.remove))
        with psycopg.connect(postgres.url.replace("+psycopg", "") + "/postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE bench_recovery")
        stack.enter_context(running(redis.start, redis.stop))
        imap = stack.enter_context(dovecot_server(dict(users)))
        for user in users:
            install_maildir(imap, user, workdir / "maildirs" / user)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(
            HUB_DATABASE_URL=postgres.url + "/bench_recovery",
            HUB_BROKER_URL=redis.url,
            HUB_SECRET_KEY="bench-secret-key-0123456789",
            HUB_VAR_DIR=str(workdir / "var"),
            HUB_MAIL_ALLOWED_HOSTS="127.0.0.1,localhost",
        )
        hub(env, "db", "upgrade")
        hub(env, "user", "add", STAFF, "--password", "bench password", "--admin")
        hub(env, "import", "relations", str(workdir / "contacts.csv"))
        parts = {
            "worker": Part("worker", ["worker", "--queues", "mail,default", "--concurrency", "2"], env, logs),
            "beat": Part("beat", ["beat"], env, logs),
            "mail watch": Part("watch", ["mail", "watch"], env, logs),
        }
        bench = Bench(args, env, imap, postgres, redis, Watch(postgres.url), parts)
        # The new-mail mailbox first, so the watcher (which re-reads its mailboxes every minute) has it.
        newmail_id = bench.add_mailbox("newmail")
        for part in parts.values():
            part.start()
            stack.callback(part.stop)
        wait_for_log(parts["worker"], " ready.")
        injections = {
            "a": ("a) SIGKILL of the sync's process", bench.kill_sync_process),
            "b": ("b) SIGKILL of all of hub worker, restarted", bench.kill_worker),
            "c": (f"c) PostgreSQL down {args.outage:.0f} s", bench.restart_postgres),
            "d": (f"d) Redis killed, down {args.outage:.0f} s", bench.restart_redis),
        }
        for letter in faults:
            label, inject = injections[letter]
            results.append(bench.fault(label, f"fault_{letter}", inject))
        if "e" in args.faults:
            revived = bench.revive(settle=0)
            if revived:
                print(f"before e): {revived}", file=sys.stderr)
            hub(env, "mail", "sync", "--mailbox", str(newmail_id))
            new_mail = bench.new_mail_after_imap_restart("newmail", newmail_id)
    for bulky in ("maildirs", "pg", "redis", "var"):  # the logs stay, for a look at what happened
        shutil.rmtree(workdir / bulky, ignore_errors=True)

    print(f"{'fault':45} {'progress again':>14} {'sync complete':>14}   goal")
    for r in results:
        print(
            f"{r.fault:45} {seconds(r.progress_again, args.timeout):>14} {seconds(r.completed, args.timeout):>14}"
            f"   {GOAL_SYNC:.0f} s   {'NOT RECOVERED: ' if r.stopped_for_good else ''}{r.note}"
        )
    if new_mail:
        shown = ", ".join(seconds(s, args.timeout).strip() for s in new_mail)
        worst_new = max((s if s is not None else float("inf")) for s in new_mail)
        print(f"{'e) new mail stored after an IMAP restart':45} {seconds(worst_new, args.timeout):>14} (worst)")
        print(f"{'':45} samples: {shown}   goal {GOAL_NEW_MAIL:.0f} s")
    print(f"messages per mailbox: {args.messages:,}, fault after {args.fault_at} synced; logs in {logs}")
    # A fault after which a part of hub stayed down has not been recovered from, whatever the sync in
    # hand did: no later work would be done. It counts as never.
    worst = (
        max(
            (r.progress_again if r.progress_again is not None and not r.stopped_for_good else float("inf"))
            for r in results
        )
        if results
        else 0.0
    )
    print(f"recovery: ratio={worst / GOAL_SYNC:.2f} target=1.0")


if __name__ == "__main__":
    main()
