"""Bulk inserts as the mail sync uses them, on SQLite and PostgreSQL (where many rows go by COPY):
conflicting rows are skipped, RETURNING names only the rows really inserted, Python-side column
defaults are filled in, and the rows are part of the transaction (a rollback takes them away)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub.db import COPY_FROM_ROWS, Database, bulk_insert, insert_ignore, insert_ignore_returning
from hub.models import Email, EmailLocation, EmailParticipant, Mailbox, MailFolder
from hub.models.mail import MailSecurity

N = COPY_FROM_ROWS * 2  # enough for the COPY path


def email_row(n: int) -> dict[str, object]:
    return {
        "message_key": f"<bulk{n}@test>",
        "message_id": f"<bulk{n}@test>",
        "in_reply_to": "",
        "references": "",
        "thread_key": f"<bulk{n}@test>",
        "subject": f"Offerte {n} \u2013 café",
        "from_address": "anna@bakker.example",
        "from_name": "Anna",
        "text_body": "tab\there, backslash \\ and newline\n",
        "html_body": "",
        "size": n,
        "raw_sha256": "0" * 64,
    }


def test_bulk_inserts_skip_conflicts_return_what_was_new_and_fill_defaults(any_db: Database) -> None:
    with any_db.transaction() as s:
        box = Mailbox(name="b", host="h", port=143, security=MailSecurity.none, username="u", password_encrypted="x")
        s.add(box)
        s.flush()
        folder = MailFolder(mailbox_id=box.id, name="INBOX")
        s.add(folder)
        s.flush()
        folder_id = folder.id
        first = insert_ignore_returning(
            s, Email, [email_row(n) for n in range(N)], ["message_key"], ["message_key", "id"]
        )
    assert len(first) == N
    ids = dict(first)  # type: ignore[arg-type]
    with any_db.transaction() as s:
        # Half of them again: only the new half is inserted and returned.
        again = insert_ignore_returning(
            s, Email, [email_row(n) for n in range(N // 2, N + N // 2)], ["message_key"], ["message_key"]
        )
        assert sorted(key for (key,) in again) == sorted(f"<bulk{n}@test>" for n in range(N, N + N // 2))
        # No "flags" given: its Python-side default ("") is filled in.
        locations = [{"email_id": ids[f"<bulk{n}@test>"], "folder_id": folder_id, "uid": n} for n in range(N)]
        insert_ignore(s, EmailLocation, locations, ["folder_id", "uid"])
        insert_ignore(s, EmailLocation, locations, ["folder_id", "uid"])  # twice in one transaction
        bulk_insert(
            s,
            EmailParticipant,
            [
                {
                    "email_id": ids[f"<bulk{n}@test>"],
                    "role": "from",
                    "address_key": "anna@bakker.example",
                    "name": "Anna",
                }
                for n in range(N)
            ],
        )
    with any_db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Email)) == N + N // 2
        assert s.scalar(select(func.count()).select_from(EmailLocation)) == N
        assert set(s.scalars(select(EmailLocation.flags))) == {""}
        assert s.scalar(select(func.count()).select_from(EmailParticipant)) == N
        stored = s.scalars(select(Email).where(Email.message_key == "<bulk3@test>")).one()
        assert (stored.subject, stored.text_body) == ("Offerte 3 \u2013 café", "tab\there, backslash \\ and newline\n")

    with pytest.raises(RuntimeError), any_db.transaction() as s:
        bulk_insert(
            s,
            EmailParticipant,
            [{"email_id": ids["<bulk0@test>"], "role": "to", "address_key": f"x{n}@y", "name": ""} for n in range(N)],
        )
        raise RuntimeError("the unit of work fails after the insert")
    with any_db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(EmailParticipant)) == N  # rolled back with it
