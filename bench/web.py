"""Web benchmark: hub's pages on a large CRM against a trivial Flask page, in the same run.

Seeds 100,000 relations, 300,000 contacts and 200,000 projects (``--scale`` shrinks that), serves hub
and a trivial Flask app with the same server (gunicorn, one sync worker each), logs in as a non-admin
staff member (so the access rule is evaluated) and times over HTTP, as a browser sees it: relation
search, the project list (sorted; page 1 and page 50, reached by following "Next" 49 times, and
the old ``?page=50`` link) and a project page. ``--in-process`` times
with Flask's test client instead (no server, no sockets). The pages are timed in turn, one request
each per round, so a busy moment on a shared machine falls on all of them alike. Prints each median
and its ratio to the trivial page, and the median CPU time the server worker spent on the request
(read from /proc; in-process: this process's) with its ratio, which other load on the machine
hardly changes; the last line is ``web: ratio=R target=3.0``, R = project page median / trivial
median. ``--database-url`` runs it on PostgreSQL (an empty database).
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.seed import seed, seed_tabs  # noqa: E402
from hub.config import load_settings  # noqa: E402
from hub.db import Database  # noqa: E402
from hub.migrate import upgrade  # noqa: E402

TARGET = 3.0


def interleaved_medians_ms(
    cases: dict[str, Callable[[], object]], runs: int, cpu_of_last: Callable[[], float] | None = None, warmup: int = 3
) -> tuple[dict[str, float], dict[str, float]]:
    """Each case's median time and median CPU time, the cases timed in turn (one request of each,
    ``runs`` times over): on a shared machine a busy moment then slows every case alike, the
    reference included; timed one case after another, a busy spell fell on whichever ran then.

    The CPU time is what serving the request cost, whatever else the machine was doing: the server
    worker's (``cpu_of_last``, ms of the last request) or, in-process, this process's."""
    for call in cases.values():
        for _ in range(warmup):
            call()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, call in cases.items():
            cpu_started = time.process_time_ns()
            started = time.perf_counter()
            call()
            samples[name].append((time.perf_counter() - started) * 1000)
            cpu[name].append(cpu_of_last() if cpu_of_last else (time.process_time_ns() - cpu_started) / 1e6)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return medians, {name: statistics.median(values) for name, values in cpu.items()}


def cpu_ns(pid: int) -> int:
    """The CPU time process ``pid`` has had, in ns (Linux's scheduler statistics)."""
    with open(f"/proc/{pid}/schedstat") as stat:
        return int(stat.read().split()[0])


def worker_pid(proc: subprocess.Popen[bytes]) -> int | None:
    """The one gunicorn worker of ``proc`` (its master); None where /proc does not tell."""
    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        cpu_ns(int(children[0]))
    except (OSError, IndexError, ValueError):
        return None
    return int(children[0])


class HttpClient:
    """One new connection per request (gunicorn's sync worker closes it), keeping hub's session cookie."""

    # The serving worker's CPU time for the last request (ns), for clients given the worker's pid.
    last_server_cpu_ns = 0

    def __init__(self, port: int, token: str = "", server_pid: int | None = None) -> None:
        self.port = port
        self.cookie = ""
        self.token = token
        self.server_pid = server_pid

    def request(self, method: str, path: str, body: str = "") -> tuple[int, bytes, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        cpu_before = cpu_ns(self.server_pid) if self.server_pid else 0
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if self.server_pid:
            HttpClient.last_server_cpu_ns = cpu_ns(self.server_pid) - cpu_before
        for cookie in response.msg.get_all("Set-Cookie") or []:
            if cookie.startswith("session="):
                self.cookie = cookie.split(";", 1)[0]
        conn.close()
        return response.status, data, dict(response.getheaders())

    def get(self, path: str) -> bytes:
        status, data, _ = self.request("GET", path)
        assert status == 200, (path, status)
        return data


def serve(app_spec: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}", app_spec],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{app_spec} did not start")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def page_url(fetch: Callable[[str], str], url: str, number: int) -> str:
    """The URL of page ``number`` of a list, as a user reaches it: following "Next" (a cursor) from
    ``url`` ``number - 1`` times (done once, before timing)."""
    for _ in range(number - 1):
        found = re.search(r'<a href="([^"]+)" rel="next">', fetch(url))
        assert found, f"{url} has no next page"
        url = html.unescape(found.group(1))
    return url


def api_page_url(fetch: Callable[[str], str], url: str, number: int) -> str:
    """The API's page ``number``: following ``next`` cursors from ``url`` (done once, before timing)."""
    for _ in range(number - 1):
        cursor = json.loads(fetch(url))["next"]
        assert cursor, f"{url} has no next page"
        url = url.split("&cursor=")[0] + "&cursor=" + urllib.parse.quote(cursor)
    return url


def _cases(
    get: Callable[[str], Callable[[], object]],
    trivial: Callable[[], object],
    fetch: Callable[[str], str],
    api_get: Callable[[str], Callable[[], object]],
    api_fetch: Callable[[str], str],
    tab_project_id: int,
) -> dict[str, Callable[[], object]]:
    project_id = int(re.findall(r'href="/projects/(\d+)"', fetch("/projects"))[0])
    tabs = f"/projects/{tab_project_id}"
    # "Page 50" is the page reached by following Next 49 times from page 1 (sorted by name): its URL
    # carries the cursor of page 49's last row, so it costs what page 1 costs. The old ?page=50
    # links still work (by OFFSET): timed too, to show what the cursor saves.
    page_50 = page_url(fetch, "/projects?sort=name", 50)
    return {
        "trivial Flask page (reference)": trivial,
        "relation search (q=bakker)": get("/relations?q=bakker"),
        "search, all kinds (q=bakker)": get("/search?q=bakker"),
        "search, contacts page 1 (q=bakker)": get("/search?q=bakker&kind=contacts"),
        "search by phone (q=020 000 12)": get("/search?q=020%20000%2012"),
        "API search (q=bakker)": api_get("/api/v1/search?q=bakker"),
        "project list, sorted by change": get("/projects?sort=-updated"),
        "project list, page 1 (by name)": get("/projects?sort=name"),
        "project list, page 50 (cursor)": get(page_50),
        "project list, ?page=50 (old link)": get("/projects?sort=name&page=50"),
        "project page": get(f"/projects/{project_id}"),
        "API project list, page 1": api_get("/api/v1/projects?sort=name"),
        "API project list, page 50 (cursor)": api_get(api_page_url(api_fetch, "/api/v1/projects?sort=name", 50)),
        "API project": api_get(f"/api/v1/projects/{project_id}"),
        "API me (token, no query of its own)": api_get("/api/v1/me"),
        # The other pages people use all day, each with more rows than a page where it lists.
        "start page": get("/"),
        "relation list": get("/relations"),
        "project tab: e-mails": get(f"{tabs}/emails"),
        "project tab: calls": get(f"{tabs}/calls"),
        "project tab: activities": get(f"{tabs}/activities"),
        "calendar week": get("/calendar/week"),
        "my calls": get("/calls/mine"),
        "API relation list": api_get("/api/v1/relations"),
        "API e-mail list": api_get("/api/v1/emails"),
        "API call list": api_get("/api/v1/calls"),
        "API appointment list": api_get("/api/v1/appointments"),
    }


def _http_cases(
    hub_server: tuple[subprocess.Popen[bytes], int],
    trivial_server: tuple[subprocess.Popen[bytes], int],
    seeded: dict[str, object],
) -> dict[str, Callable[[], object]]:
    (hub_proc, hub_port), (trivial_proc, trivial_port) = hub_server, trivial_server
    HttpClient(hub_port).get("/login")
    HttpClient(trivial_port).get("/")
    # Both workers have answered, so they exist: their CPU time per request is measured too.
    hub_worker, trivial_worker = worker_pid(hub_proc), worker_pid(trivial_proc)
    hub, trivial = HttpClient(hub_port, server_pid=hub_worker), HttpClient(trivial_port, server_pid=trivial_worker)
    page = hub.get("/login").decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert token, "no CSRF token on the login page"
    body = urllib.parse.urlencode(
        {"email": seeded["staff_email"], "password": seeded["password"], "csrf_token": token.group(1)}
    )
    status, data, _ = hub.request("POST", "/login", body)
    assert status == 302, f"benchmark login failed: {status} {data[-600:]!r}"
    api = HttpClient(hub_port, token=str(seeded["token"]), server_pid=hub_worker)
    return _cases(
        lambda url: lambda: hub.get(url),
        lambda: trivial.get("/"),
        lambda url: hub.get(url).decode(),
        lambda url: lambda: api.get(url),
        lambda url: api.get(url).decode(),
        _tab_project(seeded),
    )


def _in_process_cases(
    settings: object, database: Database, seeded: dict[str, object]
) -> dict[str, Callable[[], object]]:
    from bench.trivial_app import app as trivial_app
    from web import create_app

    app = create_app(settings, database=database)  # type: ignore[arg-type]
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    login = client.post("/login", data={"email": seeded["staff_email"], "password": seeded["password"]})
    assert login.status_code == 302, "benchmark login failed"

    def get(url: str) -> Callable[[], object]:
        def call() -> object:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            return response.data

        return call

    bearer = {"Authorization": f"Bearer {seeded['token']}"}

    def api_get(url: str) -> Callable[[], object]:
        def call() -> object:
            response = api.get(url, headers=bearer)
            assert response.status_code == 200, (url, response.status_code)
            return response.data

        return call

    api = app.test_client()
    trivial = trivial_app.test_client()
    return _cases(
        get,
        lambda: trivial.get("/").data,
        lambda url: client.get(url).get_data(as_text=True),
        api_get,
        lambda url: api.get(url, headers=bearer).get_data(as_text=True),
        _tab_project(seeded),
    )


def _tab_project(seeded: dict[str, object]) -> int:
    """The project whose tabs are timed (seed_tabs gave it more than a page of each)."""
    return int(str(seeded.get("tab_project_id") or int(str(seeded["project_id"])) + 1))


def _api_token(database: Database, email: str) -> str:
    """A read-only API token of the benchmark's staff user (the API answers as that user)."""
    from sqlalchemy import select

    from hub.accounts.users import create_token
    from hub.models import User

    with database.transaction() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        return create_token(session, user, "bench", scope="read")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temp dir")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 100k/300k/200k to seed")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--in-process", action="store_true", help="Flask test client instead of HTTP")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-web-"))
    env = {"HUB_VAR_DIR": str(workdir), "HUB_SECRET_KEY": "bench-secret-key-0123456789"}
    if args.database_url:
        env["HUB_DATABASE_URL"] = args.database_url
    settings = load_settings(env)
    upgrade(settings.database_url)
    database = Database(settings.database_url)
    sizes = (int(100_000 * args.scale), int(300_000 * args.scale), int(200_000 * args.scale))
    print(
        f"seeding {sizes[0]:,} relations, {sizes[1]:,} contacts, {sizes[2]:,} projects "
        f"({database.engine.dialect.name})",
        file=sys.stderr,
    )
    started = time.perf_counter()
    seeded = seed(database, *sizes)
    # Not the middle project: one in ten is restricted to two other colleagues, the middle one too.
    seeded["tab_project_id"] = sizes[2] // 2 + 2
    seed_tabs(database, int(seeded["tab_project_id"]), *sizes)
    seeded["token"] = _api_token(database, str(seeded["staff_email"]))
    print(f"seeded in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    procs: list[subprocess.Popen[bytes]] = []
    if args.in_process:
        cases = _in_process_cases(settings, database, seeded)
    else:
        hub_port, trivial_port = free_port(), free_port()
        procs.append(serve("web:create_app()", hub_port, env))
        procs.append(serve("bench.trivial_app:app", trivial_port, {}))
        cases = _http_cases((procs[0], hub_port), (procs[1], trivial_port), seeded)
    try:
        server_cpu = None if args.in_process else (lambda: HttpClient.last_server_cpu_ns / 1e6)
        results, cpu = interleaved_medians_ms(cases, args.runs, server_cpu)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
    reference, cpu_reference = results["trivial Flask page (reference)"], cpu["trivial Flask page (reference)"]
    # CPU: the serving worker's CPU time (in-process: this process's), which a busy machine does not
    # inflate as it does the wall time; 0 where /proc gives no per-process CPU time.
    print(f"{'page':40} {'median ms':>10} {'ratio':>8} {'CPU ms':>8} {'ratio':>8}")
    for name, ms in results.items():
        cpu_ratio = cpu[name] / cpu_reference if cpu_reference else 0.0
        print(f"{name:40} {ms:10.2f} {ms / reference:8.2f} {cpu[name]:8.2f} {cpu_ratio:8.2f}")
    ratio = results["project page"] / reference
    print(f"web: ratio={ratio:.2f} target={TARGET}")


if __name__ == "__main__":
    main()
