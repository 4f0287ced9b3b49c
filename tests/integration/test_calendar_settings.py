"""Connecting a calendar against a real Radicale: the settings page's "test connection" in plain
words, saving (the password encrypted at rest), and the CLI (`hub calendar account add`, `hub
calendar push --now` with its summary line, `hub calendar pull --now`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from click.testing import CliRunner
from flask.testing import FlaskClient

from hub.accounts.users import create_token
from hub.calendar.appointments import AppointmentInput, save_appointment
from hub.cli import main
from hub.config import Settings
from hub.db import Database
from hub.models import CalendarAccount, User
from tests.caldav_server import RadicaleServer
from tests.conftest import csrf_token, settings_env


def test_settings_page_tests_and_saves_the_connection(
    client: FlaskClient,
    db: Database,
    caldav_server: RadicaleServer,
    make_user: Callable[..., User],
    login: Callable[..., FlaskClient],
) -> None:
    anna = make_user("Anna")
    caldav_server.add_user("anna-page", "s3cret-pw")
    caldav_server.make_calendar("anna-page", "Private")
    caldav_server.make_calendar("anna-page", "Work")
    login(client, anna)
    page = client.get("/calendar/settings")
    assert page.status_code == 200 and "Test connection" in page.text
    form = {
        "csrf_token": csrf_token(page.text),
        "delivery": "caldav",
        "url": caldav_server.url,
        "username": "anna-page",
        "password": "wrong",
        "calendar": "Work",
        "action": "test",
    }
    wrong = client.post("/calendar/settings", data=form)
    assert wrong.status_code == 400 and "refused the user name or password" in wrong.text
    assert 'value="anna-page"' in wrong.text  # the input is kept (the password is not sent back)
    right = client.post("/calendar/settings", data={**form, "password": "s3cret-pw"})
    assert "Connected: hub writes into the calendar Work." in right.text
    missing = client.post("/calendar/settings", data={**form, "password": "s3cret-pw", "calendar": "Holidays"})
    assert "No calendar named Holidays" in missing.text and "Private" in missing.text
    saved = client.post("/calendar/settings", data={**form, "password": "s3cret-pw", "action": "save"})
    assert saved.status_code == 302
    with db.transaction() as s:
        account = s.query(CalendarAccount).one()
        assert account.owner_id == anna.id and account.calendar_name == "Work"
        assert "s3cret-pw" not in account.password_encrypted and account.password_encrypted
    assert "Waiting for" in client.get("/calendar/settings").text or "Syncing" in client.get("/calendar/settings").text
    with db.transaction() as s:
        token = create_token(s, s.get_one(User, anna.id))
    listed = client.get("/api/v1/calendar-accounts", headers={"Authorization": f"Bearer {token}"}).get_json()
    (item,) = listed["items"]
    assert item["calendar_name"] == "Work" and item["pending"] == 0 and item["state_words"]
    assert "password" not in str(item)
    health = client.get("/api/v1/health", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert [c["state_words"] for c in health["calendars"]] == [item["state_words"]]  # one state, both places
    assert "Work" in client.get("/mail/health").text  # on the sync-health page too


def test_cli_account_add_push_and_pull(
    db: Database, settings: Settings, caldav_server: RadicaleServer, make_user: Callable[..., User]
) -> None:
    anna = make_user("Anna")
    caldav_server.add_user("anna-cli", "cli-pw")
    calendar_url = caldav_server.make_calendar("anna-cli", "Work")
    runner = CliRunner()
    env = settings_env(settings)
    bad = runner.invoke(
        main,
        [
            "calendar",
            "account",
            "add",
            "--owner",
            anna.email,
            "--url",
            caldav_server.url,
            "--username",
            "anna-cli",
            "--password",
            "nope",
        ],
        env=env,
    )
    assert bad.exit_code != 0 and "refused the user name or password" in bad.output
    added = runner.invoke(
        main,
        [
            "calendar",
            "account",
            "add",
            "--owner",
            anna.email,
            "--url",
            caldav_server.url,
            "--username",
            "anna-cli",
            "--password",
            "cli-pw",
            "--calendar",
            "Work",
        ],
        env=env,
    )
    assert added.exit_code == 0, added.output
    with db.transaction() as s:
        me = s.get_one(User, anna.id)
        for n in range(12):
            save_appointment(
                s,
                me,
                AppointmentInput(
                    title=f"Visit {n}", start=datetime(2026, 12, 1 + n, 10), end=datetime(2026, 12, 1 + n, 11)
                ),
            )
    pushed = runner.invoke(main, ["calendar", "push", "--now"], env=env)
    assert pushed.exit_code == 0, pushed.output
    last = pushed.output.strip().splitlines()[-1]
    assert re.fullmatch(r"pushed 12 appointments \(\d+ requests\) in \d+\.\d s", last), last
    again = runner.invoke(main, ["calendar", "push", "--now"], env=env)
    assert re.fullmatch(r"pushed 0 appointments \(0 requests\) in \d+\.\d s", again.output.strip().splitlines()[-1])
    assert len(caldav_server.objects(calendar_url, "anna-cli")) == 12
    pulled = runner.invoke(main, ["calendar", "pull", "--now"], env=env)
    assert pulled.exit_code == 0 and pulled.output.strip().splitlines()[-1].startswith("pulled 0 changes")
