"""Campaign benchmark: hub sending a personalised mailing, next to postfix's smtp-source, into the same sink.

1. Seeds N contacts (100,000 by default; ``--recipients N`` for a quick run) into a fresh database,
   each with consent, an address and a relation, and a mailing whose subject and bodies use the
   contact's and relation's fields. ``--database`` (repeatable) picks the databases measured in one
   run: ``sqlite`` (the embedded default) and ``postgresql`` (production): first a throwaway server
   as the tests run it (fsync=off, synchronous_commit=off), for comparison, then one with
   PostgreSQL's default durability (fsync and synchronous_commit on: the per-message ledger commit
   is the guarantee measured). ``--database-url URL`` measures on an existing server instead (a URL
   without a database name: the bench creates one there; the server's settings are printed).
2. Starts postfix's smtp-sink on a free loopback port.
3. Times ``hub campaign send MAILING --now`` as an admin runs it (a process of its own, with
   ``HUB_CAMPAIGN_CONNECTIONS`` = ``--connections`` SMTP sessions; on SQLite they are threads of
   that process, on PostgreSQL sending processes, one per core at most, as in a worker's run:
   ledger filled from the target group, every message made from the mailing's
   templates with the recipient's fields, signed unsubscribe link, a Message-ID and a ledger commit
   per recipient as the relay accepts it), and records the peak memory (RSS) of all its processes
   together.
4. In the same run, smtp-source sends the same number of messages of the same size to the same sink
   over the same number of sessions, each reusing its connection as hub does (-d).

The last line is `campaign: ratio=R target=2.0`, R = hub's time over smtp-source's (lower is better)
on the last database measured (PostgreSQL with its default durability in ``make bench``); the line
before it names that database and gives the other databases' ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
SUBJECT = "{{ contact.first_name }}, news for {{ relation.name }}"
TEXT = (
    "Dear {{ contact.name }},\n\n"
    "As {{ contact.function or 'a customer' }} at {{ relation.name }} in {{ relation.city }} you get our\n"
    "spring offers first. {{ owner.name }} will call you about them.\n\n"
    + "We measured, we compared, we improved: the new range is here for you.\n" * 12
    + "\nKind regards,\n{{ owner.name }}\n"
)
HTML = (
    "<html><body><p>Dear {{ contact.name }},</p>"
    "<p>As {{ contact.function or 'a customer' }} at <b>{{ relation.name }}</b> in {{ relation.city }} you get our"
    " spring offers first. {{ owner.name }} will call you about them.</p>"
    + "<p>We measured, we compared, we improved: the new range is here for you.</p>" * 12
    + '<p>Kind regards,<br>{{ owner.name }}</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)
CITIES = ["Amsterdam", "Utrecht", "Rotterdam", "Den Haag", "Groningen", "Zwolle", "Eindhoven", "Tilburg"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hub_env(database_url: str, var_dir: Path, smtp_url: str, connections: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=database_url,
        HUB_VAR_DIR=str(var_dir),
        HUB_SECRET_KEY="bench-secret-key-0123456789",
        HUB_SMTP_URL=smtp_url,
        HUB_BASE_URL="https://hub.example",
        HUB_CAMPAIGN_CONNECTIONS=str(connections),
    )
    return env


def seed_sqlite(path: Path, count: int) -> None:
    """Relations, contacts and addresses straight into SQLite (the generator, not what is measured).
    Through a connection of hub's own engine: it has the SQL functions hub's triggers use (the
    search index's ``hub_fold``), which a plain sqlite3 connection lacks."""
    from hub.db import make_engine

    engine = make_engine(f"sqlite:///{path}")
    conn: Any = engine.raw_connection()
    now = "2026-01-01 00:00:00"
    conn.execute(
        "INSERT INTO user (id, email, name, password_hash, is_admin, is_active, session_epoch, created_at, updated_at)"
        " VALUES (1, 'owner@hub.example', 'Olga Owner', 'x', 0, 1, 0, ?, ?)",
        (now, now),
    )
    conn.executemany(
        "INSERT INTO relation (id, kind, name, search_name, street, postcode, city, country, website, coc_number,"
        " vat_number, status, owner_id, domain, version, created_at, updated_at)"
        " VALUES (?, 'company', ?, ?, '', '', ?, 'NL', '', '', '', 'customer', 1, '', 1, ?, ?)",
        ((i, f"Company {i}", f"company {i}", CITIES[i % len(CITIES)], now, now) for i in range(1, count + 1)),
    )
    conn.executemany(
        "INSERT INTO contact (id, relation_id, name, function, version, marketing_consent, marketing_consent_source,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, 1, 1, 'bench', ?, ?)",
        ((i, i, f"Person{i} Example", "Director" if i % 3 else "", now, now) for i in range(1, count + 1)),
    )
    conn.executemany(
        "INSERT INTO email_address (relation_id, contact_id, address, address_key) VALUES (?, ?, ?, ?)",
        ((i, i, f"p{i}@example.test", f"p{i}@example.test") for i in range(1, count + 1)),
    )
    conn.commit()
    conn.close()
    engine.dispose()


def seed_postgresql(database_url: str, count: int) -> None:
    """The same rows as :func:`seed_sqlite`, COPYed into PostgreSQL."""
    import psycopg

    now = "2026-01-01 00:00:00"
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn, conn.cursor() as cur:
        cur.execute(
            'INSERT INTO "user" (id, email, name, password_hash, is_admin, is_active, session_epoch, created_at,'
            " updated_at) VALUES (1, 'owner@hub.example', 'Olga Owner', 'x', false, true, 0, %s, %s)",
            (now, now),
        )
        with cur.copy(
            "COPY relation (id, kind, name, search_name, street, postcode, city, country, website, coc_number,"
            " vat_number, status, owner_id, domain, version, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(1, count + 1):
                city = CITIES[i % len(CITIES)]
                row = (i, "company", f"Company {i}", f"company {i}", "", "", city, "NL", "", "", "", "customer")
                copy.write_row((*row, 1, "", 1, now, now))
        with cur.copy(
            "COPY contact (id, relation_id, name, function, version, marketing_consent, marketing_consent_source,"
            " created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(1, count + 1):
                copy.write_row((i, i, f"Person{i} Example", "Director" if i % 3 else "", 1, True, "bench", now, now))
        with cur.copy("COPY email_address (relation_id, contact_id, address, address_key) FROM STDIN") as copy:
            for i in range(1, count + 1):
                copy.write_row((i, i, f"p{i}@example.test", f"p{i}@example.test"))
        for table in ("user", "relation", "contact"):  # the ids were given: move the sequences past them
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT max(id) FROM \"{table}\"))"
            )
        cur.execute("ANALYZE")


def durability(database_url: str) -> str:
    """The server's fsync and synchronous_commit, as a session of hub's sees them."""
    if not database_url.startswith("postgresql"):
        return "journal_mode=WAL, synchronous=NORMAL"  # hub.db's pragmas
    import psycopg

    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        values = [conn.execute(f"SHOW {name}").fetchone()[0] for name in ("fsync", "synchronous_commit")]  # type: ignore[index]
    return f"fsync={values[0]}, synchronous_commit={values[1]}"


def make_mailing(database_url: str) -> tuple[int, int]:
    """The mailing (id) and the size in bytes of one of its messages."""
    from hub.campaigns import messages
    from hub.campaigns.groups import GroupInput, save_group
    from hub.campaigns.mailings import CampaignInput, MailingInput, save_campaign, save_mailing
    from hub.campaigns.render import Templates, sample_context
    from hub.db import Database
    from hub.models.base import utcnow

    database = Database(database_url)
    with database.transaction() as s:
        group = save_group(s, GroupInput(name="All customers", rules={"relation_status": ["customer"]}), None)
        campaign = save_campaign(s, CampaignInput(name="Bench"), None)
        mailing = save_mailing(
            s,
            campaign,
            MailingInput(
                name="bench",
                subject=SUBJECT,
                from_name="Hub Bench",
                from_address="news@hub.example",
                html_body=HTML,
                text_body=TEXT,
                target_group_id=group.id,
            ),
            None,
        )
        mailing_id = mailing.id
    database.dispose()
    subject, html, text = Templates.compile(SUBJECT, HTML, TEXT).render(sample_context())
    url = messages.unsubscribe_url("https://hub.example", "bench-secret-key-0123456789", 100000)
    html, text = messages.with_unsubscribe_footer(html, text, url)
    size = len(
        messages.build(
            messages.Envelope.of("Hub Bench", "news@hub.example", ""),
            to_name="Person100000 Example",
            to_address="p100000@example.test",
            subject=subject,
            html=html,
            text=text,
            message_id=messages.message_id("k", mailing_id, 100000, "hub.example"),
            list_unsubscribe=url,
            date=utcnow(),
            boundary="=_hub_100000_0123456789ab",
        )
    )
    return mailing_id, size


def _tree_rss(root: int) -> int:
    """Resident memory (bytes) of ``root`` and every process below it."""
    try:
        top = psutil.Process(root)
        tree = [top, *top.children(recursive=True)]
    except psutil.Error:  # (it ended)
        return 0
    total = 0
    for process in tree:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total


def _watch_memory(process: subprocess.Popen[str], peak: list[int]) -> None:
    while process.poll() is None:
        peak[0] = max(peak[0], _tree_rss(process.pid))
        time.sleep(0.2)


class Measured:
    """One database's run: hub and smtp-source into the same sink."""

    def __init__(self, label: str, hub_seconds: float, source_seconds: float, cpu_us: float, peak_mb: float) -> None:
        self.label = label
        self.hub_seconds = hub_seconds
        self.source_seconds = source_seconds
        self.cpu_us = cpu_us
        self.peak_mb = peak_mb

    @property
    def ratio(self) -> float:
        return self.hub_seconds / self.source_seconds


def _wait_for_sink(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)


def measure(database_url: str, label: str, work: Path, args: argparse.Namespace) -> Measured:
    """Seed ``database_url`` (empty, migrated here), time hub's send and smtp-source's, print both."""
    from hub.migrate import upgrade

    upgrade(database_url)
    started = time.monotonic()
    if database_url.startswith("sqlite"):
        seed_sqlite(Path(database_url.removeprefix("sqlite:///")), args.recipients)
    else:
        seed_postgresql(database_url, args.recipients)
    print(f"{label}: seeded {args.recipients:,} contacts in {time.monotonic() - started:.1f} s", file=sys.stderr)
    mailing_id, size = make_mailing(database_url)

    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen([SINK, *user, "-c", f"127.0.0.1:{port}", "1000"], stdout=subprocess.DEVNULL)
    try:
        _wait_for_sink(port)
        env = hub_env(database_url, work / "var", f"smtp+plain://127.0.0.1:{port}", args.connections)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        hub = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "campaign", "send", str(mailing_id), "--now"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        peak = [0]
        watcher = threading.Thread(target=_watch_memory, args=(hub, peak), daemon=True)
        watcher.start()
        stdout, stderr = hub.communicate()
        hub_seconds = time.monotonic() - started
        watcher.join()
        if hub.returncode != 0:
            sys.exit(f"hub campaign send failed ({label}):\n{stderr[-3000:]}")
        summary = stdout.strip().splitlines()[-1]
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        expected = f"sent {args.recipients} messages (0 failed, 0 skipped)"
        if not summary.startswith(expected):
            sys.exit(f"hub did not send every message ({label}): {summary!r}")

        started = time.monotonic()
        subprocess.run(
            [
                SOURCE,
                "-s",
                str(args.connections),
                "-d",
                "-m",
                str(args.recipients),
                "-l",
                str(size),
                "-f",
                "news@hub.example",
                "-t",
                "p1@example.test",
                f"127.0.0.1:{port}",
            ],
            check=True,
        )
        source_seconds = time.monotonic() - started
    finally:
        sink.terminate()
        sink.wait(10)

    result = Measured(label, hub_seconds, source_seconds, cpu / args.recipients * 1e6, peak[0] / 1024 / 1024)
    print(f"[{label}] hub:          {summary}")
    print(
        f"[{label}] hub:          {args.recipients / hub_seconds:,.0f} messages/s ({hub_seconds:.1f} s,"
        f" {size:,} bytes each, {args.connections} sessions, ledger row committed per message)"
    )
    print(f"[{label}] smtp-source:  {args.recipients / source_seconds:,.0f} messages/s ({source_seconds:.1f} s)")
    print(
        f"[{label}] hub peak memory: {result.peak_mb:.0f} MB (all its processes together); hub CPU:"
        f" {result.cpu_us:.0f} µs per message, database server not counted (load average {os.getloadavg()[0]:.1f})"
    )
    print(f"[{label}] ratio={result.ratio:.2f}", flush=True)
    return result


def disk_flush_ms(directory: Path, times: int = 200) -> float:
    """The median time this machine's disk takes to make an 8 kB write durable (fdatasync, as
    PostgreSQL's WAL flush at each commit), in ms."""
    taken = []
    path = directory / "flush-probe"
    with open(path, "wb", buffering=0) as probe:
        block = os.urandom(8192)
        for _ in range(times):
            probe.seek(0)
            probe.write(block)
            started = time.perf_counter()
            os.fdatasync(probe.fileno())
            taken.append((time.perf_counter() - started) * 1000)
    path.unlink()
    return sorted(taken)[len(taken) // 2]


def _on_postgresql(durable: bool, work: Path, args: argparse.Namespace, name: str) -> Measured:
    from tests.servers import create_database, postgres_server

    with postgres_server(durable=durable) as server:
        url = create_database(server, name)
        result = measure(url, f"postgresql {durability(url)}", work, args)
    if durable:
        # Each session's mark is durable before its next message goes (the exactly-once rule), so
        # a session sends at most one message per log flush; concurrent sessions share a flush.
        flush = disk_flush_ms(work)
        print(
            f"[{result.label}] this disk's fdatasync of 8 kB: {flush:.2f} ms (median, measured after the run):"
            f" at most {args.connections * 1000 / flush:,.0f} messages/s with {args.connections} sessions,"
            f" whatever hub does"
        )
    return result


def _on_existing(server_url: str, work: Path, args: argparse.Namespace) -> Measured:
    """A fresh database (a name of its own) on the server of ``server_url``, left there afterwards."""
    from tests.servers import create_database

    url = create_database(server_url.rstrip("/"), f"bench_campaign_{os.getpid()}_{int(time.time())}")
    return measure(url, f"postgresql {durability(url)}", work, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=2, help="SMTP sessions, for hub and smtp-source alike")
    parser.add_argument(
        "--database",
        action="append",
        choices=["sqlite", "postgresql"],
        help="measured in this order (repeatable; sqlite when not given); postgresql: default durability,"
        " then fsync=off for comparison",
    )
    parser.add_argument(
        "--database-url",
        help="an existing PostgreSQL server instead, without a database name (postgresql+psycopg://user@host:port);"
        " the bench creates a database of its own there",
    )
    args = parser.parse_args()
    for tool in (SINK, SOURCE):
        if not Path(tool).exists():
            sys.exit(f"{tool} is missing: apt-get install postfix")
    databases = args.database or (["postgresql"] if args.database_url else ["sqlite"])
    results: list[Measured] = []
    ratios: dict[str, float] = {}
    for database in databases:
        work = Path(tempfile.mkdtemp(prefix="hub-bench-campaign-"))
        try:
            if database == "sqlite":
                results.append(measure(f"sqlite:///{work / 'hub.db'}", "sqlite", work, args))
            elif args.database_url:
                results.append(_on_existing(args.database_url, work, args))
            else:
                # fsync=off first: the last one measured is production's, whose ratio ends the output.
                results.append(_on_postgresql(False, work, args, "bench_campaign_fsync_off"))
                results.append(_on_postgresql(True, work, args, "bench_campaign"))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    for result in results:
        ratios[result.label] = result.ratio
    last = results[-1]
    others = "; ".join(f"{label}: ratio={ratio:.2f}" for label, ratio in ratios.items() if label != last.label)
    print(f"campaign on {last.label}: ratio={last.ratio:.2f}" + (f" ({others})" if others else ""))
    print(f"campaign: ratio={last.ratio:.2f} target=2.0")


if __name__ == "__main__":
    main()
