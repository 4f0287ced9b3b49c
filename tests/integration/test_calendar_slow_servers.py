"""A calendar server that drips its answer (a tarpit, or a colleague's own server) one byte every
fraction of a second never trips a socket timeout, and the HTTP client reads the status line and
headers a line at a time: a pull or push against it held a sync worker for hours while the heartbeat
renewed its claim ("syncing" on the health page for ever). Every CalDAV request now ends within
``dav.REQUEST_SECONDS`` (set to a few seconds here), over http and https, and the account says the
server is too slow and is retried later; against a real Radicale, pulls, pushes and a kept-alive
connection serving requests for longer than that bound in all still work. Each sync runs in a
thread the test waits for a bounded time (_within), so the old behaviour fails the test instead of
hanging the suite."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import wassima

from hub.calendar import dav
from hub.calendar.accounts import health_of
from hub.calendar.appointments import AppointmentInput, save_appointment
from hub.calendar.dav import CalendarError, Dav
from hub.calendar.sync import PARALLEL, pull_now, push_now, sync_account
from hub.config import Settings
from hub.db import Database
from hub.i18n import english
from hub.models import CalendarAccount, User
from hub.ops.health import State
from tests.caldav_server import LOOPBACK_HOSTS, RadicaleServer, connect_calendar
from tests.integration import test_slow_servers
from tests.integration.test_slow_servers import Dripper, _start, _within
from tests.servers import free_port, self_signed_certificate, wait_for_port

# The dripping servers of the other slow-server tests (plain: headers or body; TLS), as fixtures here.
dripper = test_slow_servers.dripper
tls_dripper = test_slow_servers.tls_dripper

BOUND = 2  # seconds one request may take here (dav.REQUEST_SECONDS; two minutes in hub)
TOO_SLOW = f"The calendar server is too slow: one request took longer than {BOUND} seconds; hub tries again later."


@pytest.fixture
def quick_requests(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(dav, "REQUEST_SECONDS", BOUND)
    return BOUND


@pytest.fixture
def trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Makes hub trust the TLS dripper's certificate (written to tmp_path by its fixture) the ways
    niquests takes its CAs: REQUESTS_CA_BUNDLE when set, else the system's (from wassima); every
    other check stays as it is."""

    def trust() -> None:
        pem = (tmp_path / "cert.pem").read_text()
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "cert.pem"))
        system = wassima.generate_ca_bundle
        monkeypatch.setattr(wassima, "generate_ca_bundle", lambda *a, **k: system(*a, **k) + "\n\n" + pem)

    return trust


@pytest.fixture(params=["http", "https"])
def kept_alive(
    request: pytest.FixtureRequest, caldav_server: RadicaleServer, tmp_path: Path, trusted: Callable[[], None]
) -> Iterator[str]:
    """The same Radicale (its configuration, users and storage) served by gunicorn's threaded
    workers, which keep connections alive as a production web server in front of it does (Radicale's
    own server closes each connection after one answer); over TLS with a certificate hub is made to
    trust for "https". Its URL."""
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [str(gunicorn), "--worker-class", "gthread", "--threads", "4", "--keep-alive", "60"]
    command += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    if request.param == "https":
        self_signed_certificate(tmp_path)
        trusted()
        command += ["--certfile", str(tmp_path / "cert.pem"), "--keyfile", str(tmp_path / "key.pem")]
    proc = subprocess.Popen(
        [*command, "radicale:application"],
        env={**os.environ, "RADICALE_CONFIG": str(caldav_server.base / "config")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 30, proc)
        yield f"https://localhost:{port}/" if request.param == "https" else f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(10)


def _appointments(db: Database, user: User, count: int) -> None:
    with db.transaction() as session:
        me = session.get_one(User, user.id)
        for n in range(count):
            start = datetime(2026, 12, 1 + n % 20, 9 + n % 8, 0)
            save_appointment(
                session, me, AppointmentInput(title=f"Visit {n}", start=start, end=start.replace(minute=30))
            )


def _account_on(db: Database, owner: User, url: str) -> int:
    with db.transaction() as session:
        account = CalendarAccount(
            owner_id=owner.id, url=url, username="anna", calendar_url=url + "cal/", calendar_name="Work"
        )
        session.add(account)
        session.flush()
        return account.id


def _sync(db: Database, settings: Settings, account_id: int, *, push: bool) -> object:
    result, _took = _within(
        4 * BOUND + 15,
        lambda: sync_account(
            db, account_id, secret_key=settings.secret_key, allowed_hosts=LOOPBACK_HOSTS, push=push, timeout=30
        ),
    )
    return result


def _failed_too_slow(db: Database, account_id: int, result: object) -> None:
    """The sync failed as temporary, and the account shows why and is due again later."""
    assert isinstance(result, CalendarError), result
    assert result.temporary and result.words == TOO_SLOW
    with db.transaction() as session:
        account = session.get_one(CalendarAccount, account_id)
        assert english(account.last_error) == TOO_SLOW and account.failures == 1
        assert account.claimed_until is None  # released: not "syncing" any more
        assert account.next_attempt_at is not None  # retried after the backoff, as other temporary failures
        health = health_of(account, workers_alive=True)
    assert health.state == State.failing and TOO_SLOW in health.words


def test_a_pull_from_a_dripping_calendar_server_ends_and_says_it_is_too_slow(
    quick_requests: int, dripper: Dripper, db: Database, settings: Settings, make_user: Callable[..., User]
) -> None:
    """The status line and a header for ever, or the headers and then a body byte by byte."""
    account_id = _account_on(db, make_user("Anna"), f"http://127.0.0.1:{dripper.port}/")
    result = _sync(db, settings, account_id, push=False)
    _failed_too_slow(db, account_id, result)
    assert dripper.connections == 1  # the pull ended at its first request


def test_a_push_to_a_dripping_calendar_server_ends_at_each_connections_first_request(
    quick_requests: int, db: Database, settings: Settings, make_user: Callable[..., User]
) -> None:
    """A push writes a hundred events at a time over a few connections: once the server was too
    slow, the run ends instead of waiting as long again for every event."""
    stream = _start("headers")
    server = next(stream)
    try:
        anna = make_user("Anna")
        _appointments(db, anna, 3 * PARALLEL)
        account_id = _account_on(db, anna, f"http://127.0.0.1:{server.port}/")
        result = _sync(db, settings, account_id, push=True)
        _failed_too_slow(db, account_id, result)
        assert server.connections <= PARALLEL
    finally:
        next(stream, None)


def test_a_pull_from_a_dripping_tls_calendar_server_ends_and_says_it_is_too_slow(
    quick_requests: int,
    tls_dripper: Dripper,
    trusted: Callable[[], None],
    db: Database,
    settings: Settings,
    make_user: Callable[..., User],
) -> None:
    anna = make_user("Anna")
    # Not trusted yet: refused for its certificate, as before (not waited on).
    refused = _sync(db, settings, _account_on(db, anna, f"https://localhost:{tls_dripper.port}/"), push=False)
    assert isinstance(refused, CalendarError) and "CERTIFICATE_VERIFY_FAILED" in refused.words
    trusted()
    account_id = _account_on(db, make_user("Bert"), f"https://localhost:{tls_dripper.port}/")
    result = _sync(db, settings, account_id, push=False)
    _failed_too_slow(db, account_id, result)


def test_a_kept_alive_connection_serves_requests_for_longer_than_one_requests_bound(
    quick_requests: int,
    db: Database,
    settings: Settings,
    caldav_server: RadicaleServer,
    kept_alive: str,
    make_user: Callable[..., User],
) -> None:
    """The bound is per request, renewed at each: a real Radicale (behind a web server that keeps
    connections alive) takes pushes and pulls as usual, and one connection carries request after
    request for more than the bound in all."""
    anna = make_user("Anna")
    account_id, calendar_url = connect_calendar(db, settings.secret_key, caldav_server, anna, url=kept_alive)
    calendar_url = calendar_url.replace(caldav_server.url, kept_alive)
    _appointments(db, anna, 12)
    pushed = push_now(db, secret_key=settings.secret_key, allowed_hosts=LOOPBACK_HOSTS)
    assert pushed.appointments == 12 and not pushed.errors
    assert not pull_now(db, secret_key=settings.secret_key, allowed_hosts=LOOPBACK_HOSTS).errors
    with db.transaction() as session:
        account = session.get_one(CalendarAccount, account_id)
        login, password = account.username, f"pw-{account.username}"
        assert account.failures == 0 and account.last_error == ""
    assert len(caldav_server.objects(calendar_url.replace(kept_alive, caldav_server.url), login)) == 12

    def keep_asking() -> tuple[list[int], int]:
        statuses = []
        with Dav(kept_alive, login, password, allowed_hosts=LOOPBACK_HOSTS) as client:
            href = calendar_url + "kept-alive.ics"
            body = (
                b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:kept-alive\r\n"
                b"DTSTAMP:20261128T090000Z\r\nDTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\n"
                b"SUMMARY:Kept alive\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            )
            statuses.append(client.create(href, body).status)
            for _round in range(3):
                time.sleep(BOUND * 0.6)  # idle on the open connection: 1.8 bounds in all
                statuses.append(client.get(href).status)
            assert len(client.etags(calendar_url)) == 13
            statuses.append(client.delete(href, client.get(href).etag).status)
            statuses.append(client.get(href).status)
            return statuses, client.client.session.sockets.connections

    (statuses, connections), _took = _within(60, keep_asking)
    assert statuses == [201, 200, 200, 200, 200, 404]
    assert connections == 1


def test_test_connection_against_a_dripping_server_ends_within_the_interactive_bound(
    monkeypatch: pytest.MonkeyPatch, dripper: Dripper
) -> None:
    """ "Test connection" is answered while a person waits on the page (a web worker with him): each
    of its requests ends within ``dav.INTERACTIVE_SECONDS`` (20 s in hub; set to 1 here), not the
    two minutes a background sync may wait, and the page says the server is too slow."""
    from hub.calendar import accounts

    monkeypatch.setattr(accounts, "INTERACTIVE_SECONDS", 1)
    (ok, words), _took = _within(
        BOUND + 15,
        lambda: accounts.test_connection(
            f"http://127.0.0.1:{dripper.port}/", "anna", "secret", "", allowed_hosts=LOOPBACK_HOSTS
        ),
    )
    assert not ok and words == TOO_SLOW.replace(f"{BOUND} seconds", "1 seconds")
    assert dripper.connections == 1
