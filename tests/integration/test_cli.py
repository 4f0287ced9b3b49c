"""The `hub` command as scripts outside the project call it (DESIGN.md: these spellings are a contract)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from bench.gen_mailbox import contacts, write_contacts
from hub.accounts.users import user_for_token
from hub.db import Database
from hub.models import Contact, Relation


def _hub(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_VAR_DIR"] = str(tmp_path / "var")
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_db_upgrade_user_add_token_create_and_import(tmp_path: Path) -> None:
    assert _hub(tmp_path, "db", "upgrade").returncode == 0
    added = _hub(tmp_path, "user", "add", "Sales@Example.nl", "--password", "long password", "--admin")
    assert added.returncode == 0 and "sales@example.nl" in added.stdout
    duplicate = _hub(tmp_path, "user", "add", "sales@example.nl", "--password", "long password")
    assert duplicate.returncode != 0 and "already exists" in duplicate.stderr
    token = _hub(tmp_path, "token", "create", "sales@example.nl").stdout.strip()
    assert _hub(tmp_path, "token", "create", "nobody@example.nl").returncode != 0

    csv = tmp_path / "contacts.csv"
    write_contacts(csv, contacts())  # the benchmark generator's relations CSV
    with csv.open("a") as fh:
        fh.write("Broken BV,broken.example,Bad Mail,not-mail,\n")
    first = _hub(tmp_path, "import", "relations", str(csv))
    assert first.returncode == 0
    assert "imported 2001 rows: 400 relations and 2000 contacts created, 0 unchanged, 1 rejected" in first.stdout
    assert "contacts.csv:2002: 'not-mail' is not a valid e-mail address" in first.stderr
    second = _hub(tmp_path, "import", "relations", str(csv))
    assert "0 relations and 0 contacts created, 2000 unchanged, 1 rejected" in second.stdout

    database = Database(f"sqlite:///{tmp_path / 'var' / 'hub.db'}")
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Relation)) == 400  # the bad row changed nothing
        assert s.scalar(select(func.count()).select_from(Contact)) == 2000
        found = user_for_token(s, token)
        assert found is not None and found.email == "sales@example.nl" and found.is_admin
    database.dispose()


def test_bad_configuration_names_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_VAR_DIR=str(tmp_path), HUB_DATABASE_URL="postgresql://db/hub")
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "HUB_SECRET_KEY" in result.stderr
