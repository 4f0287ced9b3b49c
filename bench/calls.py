"""Calls benchmark: hub's import of Asterisk CDRs with matching against PostgreSQL's COPY of the same file.

1. Generates a Master.csv (bench/gen_cdr.py, 1,000,000 rows by default) and 100,000 contacts, and
   imports the contacts into a throwaway PostgreSQL.
2. Times `hub calls import` (parse, normalise, group, match, insert-or-ignore; one process), then
   in the same run PostgreSQL's COPY of the same file into a plain table of 18 text columns.
3. Peak memory (RSS) of the import of the small and the large file: bounded memory means a ratio near 1.
4. Caller-ID: p99 of GET /api/v1/callerid over HTTP (gunicorn) against the contacts while a second
   process asks it too, next to GET /api/v1/me, the same app's most trivial endpoint, under that load.

The last line is `calls: ratio=R target=3.0`, R = hub's import time over COPY's (lower is better).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CACHE = Path(os.environ.get("HUB_BENCH_CACHE", "") or Path(tempfile.gettempdir()) / "hub-bench-calls")
# Run as a module from the project root: run as a script, bench/ would come first on sys.path and
# bench/calendar.py would stand in for Python's own calendar module (which e-mail and CSV code use).
GENERATOR = ["-m", "bench.gen_cdr"]


def generated(rows: int, contacts: int) -> tuple[Path, Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    cdr, people = CACHE / f"master-{rows}-{contacts}.csv", CACHE / f"contacts-{contacts}.csv"
    if not cdr.exists() or not people.exists():
        print(f"generating {rows:,} CDR rows and {contacts:,} contacts …", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                *GENERATOR,
                str(cdr),
                str(rows),
                "--contacts",
                str(people),
                "--contact-count",
                str(contacts),
            ],
            check=True,
            cwd=ROOT,
        )
    return cdr, people


def hub_env(database_url: str, var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATABASE_URL=database_url, HUB_VAR_DIR=str(var_dir), HUB_SECRET_KEY="bench-secret-key-0123456789")
    return env


def run(env: dict[str, str], *args: str) -> tuple[str, float, int]:
    """Run `hub ARGS`: its output, seconds and peak RSS in MiB (of that process alone)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"hub {' '.join(args[:2])} failed ({proc.returncode}): {output[-2000:]}")
    return output, time.monotonic() - started, usage.ru_maxrss // 1024


def copy_seconds(database_url: str, cdr: Path) -> float:
    import psycopg

    columns = ", ".join(f"c{i} text" for i in range(18))
    with psycopg.connect(database_url.replace("+psycopg", "")) as connection:
        connection.execute(f"CREATE TABLE cdr_plain ({columns})")
        connection.commit()
        started = time.monotonic()
        with (
            connection.cursor() as cursor,
            cursor.copy("COPY cdr_plain FROM STDIN WITH (FORMAT csv)") as copy,
            cdr.open("rb") as stream,
        ):
            while chunk := stream.read(1 << 20):
                copy.write(chunk)
        connection.commit()
        return time.monotonic() - started


LOAD = """
import sys, time
from bench.gen_cdr import contact_number
from bench.web import HttpClient
port, token, n, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
api = HttpClient(port, token=token)
end = time.monotonic() + seconds
i = 0
while time.monotonic() < end:
    api.get("/api/v1/callerid?number=" + contact_number(1 + i % n)[1:])
    i += 1
"""


def _api_token(database_url: str) -> str:
    """A read-only token of a staff user who may see every relation (the phone system's account)."""
    from hub.accounts.users import UserInput, create_token, create_user
    from hub.db import Database

    database = Database(database_url)
    with database.transaction() as session:
        phone = create_user(session, UserInput(email="pbx@bench.example", name="PBX", password="p" * 16))
        token = create_token(session, phone, "pbx", scope="read")
    database.dispose()
    return token


def _get_ms(client: Any, path: str) -> float:
    started = time.perf_counter()
    client.get(path)  # bench.web.HttpClient: a new connection each time, asserts a 200
    return (time.perf_counter() - started) * 1000


def callerid_p99(env: dict[str, str], database_url: str, contacts: int, samples: int) -> tuple[float, float]:
    """p99 of GET /api/v1/callerid over HTTP (gunicorn, as deployed) while a second process asks it
    too, next to GET /api/v1/me: the same app's most trivial endpoint (token check, one user)."""
    from bench.gen_cdr import contact_number
    from bench.web import HttpClient, free_port, serve

    token = _api_token(database_url)
    port = free_port()
    web = serve("web:create_app()", port, env)
    api = HttpClient(port, token=token)
    load = subprocess.Popen(
        [sys.executable, "-c", LOAD, str(port), token, str(contacts), "600"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        for i in range(50):  # warm both up
            _get_ms(api, "/api/v1/me")
            _get_ms(api, "/api/v1/callerid?number=" + contact_number(1 + i)[1:])
        lookups, trivial = [], []
        for i in range(samples):
            # The national form ("0…"), as a phone on a Dutch line shows it.
            number = "0" + contact_number(1 + (i * 7919) % contacts)[3:]
            lookups.append(_get_ms(api, f"/api/v1/callerid?number={number}"))
            trivial.append(_get_ms(api, "/api/v1/me"))
    finally:
        load.terminate()
        load.wait()
        web.terminate()
        web.wait(10)
    return statistics.quantiles(lookups, n=100)[98], statistics.quantiles(trivial, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="rows of the small file (memory comparison)")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--callerid-samples", type=int, default=2000)
    args = parser.parse_args()
    from tests.servers import create_database, postgres_server

    with contextlib.ExitStack() as stack:
        server = stack.enter_context(postgres_server())
        database_url = create_database(server, "bench_calls")
        var_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hub-bench-calls-")))
        env = hub_env(database_url, var_dir)
        big, people = generated(args.rows, args.contacts)
        small, _ = generated(args.small, args.contacts)
        from hub.migrate import upgrade

        upgrade(database_url, "heads")  # what `hub db upgrade` does
        run(env, "import", "relations", str(people))
        run(env, "calls", "source", "add", "small", "--format", "asterisk-csv", "--tz", "UTC")
        run(env, "calls", "source", "add", "big", "--format", "asterisk-csv", "--tz", "UTC")
        small_out, small_s, small_rss = run(env, "calls", "import", str(small), "--source", "small")
        big_out, big_s, big_rss = run(env, "calls", "import", str(big), "--source", "big")
        _again, again_s, _ = run(env, "calls", "import", str(big), "--source", "big")
        copy_s = copy_seconds(database_url, big)
        p99, trivial_p99 = callerid_p99(env, database_url, args.contacts, args.callerid_samples)
    print(f"{'rows':>28}: {args.rows:,} (small {args.small:,}); contacts {args.contacts:,}; PostgreSQL")
    print(f"{'hub import (small)':>28}: {small_s:.1f} s   {small_out.strip().splitlines()[-1]}")
    print(f"{'hub import (large)':>28}: {big_s:.1f} s   {big_out.strip().splitlines()[-1]}")
    print(f"{'hub re-import (all known)':>28}: {again_s:.1f} s")
    print(f"{'PostgreSQL COPY (large)':>28}: {copy_s:.1f} s")
    print(
        f"{'peak RSS small / large':>28}: {small_rss} MiB / {big_rss} MiB "
        f"(ratio {big_rss / small_rss:.2f}, target ≤ 1.2)"
    )
    print(
        f"{'caller-ID p99 under load':>28}: {p99:.2f} ms (GET /api/v1/me {trivial_p99:.2f} ms, "
        f"{p99 / trivial_p99:.1f}x, target ≤ 2x)"
    )
    print(f"calls: ratio={big_s / copy_s:.1f} target=3.0")


if __name__ == "__main__":
    main()
