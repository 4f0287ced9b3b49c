"""Campaign benchmark: hub sending a personalised mailing, next to postfix's smtp-source, into the same sink.

1. Seeds N contacts (100,000 by default; ``--recipients N`` for a quick run) into a fresh database
   (the embedded default, SQLite; ``--database-url`` for PostgreSQL), each with consent, an address
   and a relation, and a mailing whose subject and bodies use the contact's and relation's fields.
2. Starts postfix's smtp-sink on a free loopback port.
3. Times ``hub campaign send MAILING --now`` as an admin runs it (a process of its own, with
   ``HUB_CAMPAIGN_CONNECTIONS`` = ``--connections`` SMTP sessions; on this SQLite database they are
   threads of that process, with PostgreSQL they would be sending processes, one per core, as in a
   worker's run: ledger filled from the target group, every message made from the mailing's
   templates with the recipient's fields, signed unsubscribe link, a Message-ID and a ledger commit
   per recipient as the relay accepts it), and records the peak memory (RSS) of all its processes
   together.
4. In the same run, smtp-source sends the same number of messages of the same size to the same sink
   over the same number of sessions, each reusing its connection as hub does (-d).

The last line is `campaign: ratio=R target=2.0`, R = hub's time over smtp-source's (lower is better).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

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
    """Relations, contacts and addresses straight into SQLite (the generator, not what is measured)."""
    conn = sqlite3.connect(path)
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
    """Resident memory (bytes) of ``root`` and every process below it, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    tree, grown = {root}, True
    while grown:
        below = {pid for pid, parent in parents.items() if parent in tree} - tree
        grown = bool(below)
        tree |= below
    return sum(rss.get(pid, 0) for pid in tree)


def _watch_memory(process: subprocess.Popen[str], peak: list[int]) -> None:
    while process.poll() is None:
        peak[0] = max(peak[0], _tree_rss(process.pid))
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=2, help="SMTP sessions, for hub and smtp-source alike")
    args = parser.parse_args()
    for tool in (SINK, SOURCE):
        if not Path(tool).exists():
            sys.exit(f"{tool} is missing: apt-get install postfix")
    work = Path(tempfile.mkdtemp(prefix="hub-bench-campaign-"))
    sink: subprocess.Popen[bytes] | None = None
    try:
        database_url = f"sqlite:///{work / 'hub.db'}"
        from hub.migrate import upgrade

        upgrade(database_url)
        started = time.monotonic()
        seed_sqlite(work / "hub.db", args.recipients)
        print(f"seeded {args.recipients:,} contacts in {time.monotonic() - started:.1f} s", file=sys.stderr)
        mailing_id, size = make_mailing(database_url)

        port = free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        sink = subprocess.Popen([SINK, *user, "-c", f"127.0.0.1:{port}", "1000"], stdout=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)

        env = hub_env(database_url, work / "var", f"smtp+plain://127.0.0.1:{port}", args.connections)
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
            sys.exit(f"hub campaign send failed:\n{stderr[-3000:]}")
        summary = stdout.strip().splitlines()[-1]
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mb = max(peak[0], usage.ru_maxrss * 1024) / 1024 / 1024
        cpu_us = (usage.ru_utime + usage.ru_stime) / args.recipients * 1e6
        expected = f"sent {args.recipients} messages (0 failed, 0 skipped)"
        if not summary.startswith(expected):
            sys.exit(f"hub did not send every message: {summary!r}")

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
        if sink is not None:
            sink.terminate()
            sink.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    ratio = hub_seconds / source_seconds
    print(f"hub:          {summary}")
    print(
        f"hub:          {args.recipients / hub_seconds:,.0f} messages/s ({hub_seconds:.1f} s, {size:,} bytes each,"
        f" {args.connections} sessions, ledger row committed per message)"
    )
    print(f"smtp-source:  {args.recipients / source_seconds:,.0f} messages/s ({source_seconds:.1f} s)")
    load = os.getloadavg()[0]
    print(
        f"hub peak memory: {peak_mb:.0f} MB (all its processes together); hub CPU: {cpu_us:.0f} µs per message"
        f" (load average {load:.1f})"
    )
    print(f"campaign: ratio={ratio:.2f} target=2.0")


if __name__ == "__main__":
    main()
