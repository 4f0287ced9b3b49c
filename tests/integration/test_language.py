"""The UI speaks Dutch and English: the user's profile decides, else the browser."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from hub.models import User

ROOT = Path(__file__).resolve().parents[2]


def test_profile_language_and_browser_language(
    client: FlaskClient, make_user: Callable[..., User], login: Callable[[FlaskClient, User], FlaskClient]
) -> None:
    assert "Inloggen bij hub" in client.get("/login", headers={"Accept-Language": "nl-NL,nl;q=0.9"}).text
    assert "Log in to hub" in client.get("/login", headers={"Accept-Language": "en-GB"}).text
    login(client, make_user(language="nl"))
    page = client.get("/projects", headers={"Accept-Language": "en-GB"}).text
    assert "Nieuw project" in page and "Mijn activiteiten" in page  # the profile beats the browser
    form = client.post("/relations/new", data={"name": ""}, headers={"Accept-Language": "en"})
    assert form.status_code == 400


def test_every_message_in_the_code_has_a_dutch_translation(tmp_path: Path) -> None:
    """Extracts the messages from the code as `make translations` does: none may lack Dutch."""
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run(
        [str(pybabel), "extract", "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext", "-o", str(pot), "."],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    with pot.open("rb") as fh:
        wanted = {m.id for m in read_po(fh) if m.id}
    # babel.cfg's patterns are relative to the project: extraction from "." must find the UI's text.
    assert len(wanted) > 300 and "Connect a mailbox" in wanted
    with (ROOT / "web/translations/nl/LC_MESSAGES/messages.po").open("rb") as fh:
        dutch = {m.id: m.string for m in read_po(fh, locale="nl") if m.id and m.string and "fuzzy" not in m.flags}
    missing = sorted(str(m) for m in wanted if m not in dutch)
    assert missing == [], "run `make translations` and translate: " + "; ".join(missing[:20])
