"""CSV files as people's spreadsheets write them, in both imports (relations and contacts; a static
list of a target group), on SQLite and PostgreSQL.

Dutch Excel saves "CSV" with semicolons (the comma is its decimal sign) in Windows-1252, and
"Unicode text" as UTF-16 with tabs. Before, a semicolon file was one column that named nothing (the
import refused it, or read each whole line as an address), and the accents of a Windows-1252 file
became replacement characters: "Café Zoë" was stored as "Caf� Zo�" without a word."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from hub.crm.importer import import_relations
from hub.db import Database
from hub.models import Contact, Relation, User
from hub.models.campaigns import TargetGroup, TargetGroupMember
from hub.text import csv_lines
from tests.conftest import csrf_token
from tests.integration.test_campaign_sending import seed_contacts

ROWS = [
    ("Café Zoë", "cafe-zoe.nl", "Anaïs Çelik", "anais@cafe-zoe.nl", "+31 20 123 4567"),
    ("Bakkerij 't Hoekje; vers", "hoekje.nl", "Jan, de bakker", "jan@hoekje.nl", "020-7654321"),
    ("Müller & Söhne", "mueller.de", "Jürgen Müller", "juergen@mueller.de", ""),
]
HEADER = ("relation", "domain", "contact_name", "email", "phone")


def spreadsheet(delimiter: str, rows: list[tuple[str, ...]]) -> str:
    def cell(value: str) -> str:
        return f'"{value}"' if delimiter in value or '"' in value else value

    return "".join(delimiter.join(cell(v) for v in row) + "\r\n" for row in [HEADER, *rows])


# What Excel writes: "CSV (gescheiden door lijstscheidingsteken)", "CSV UTF-8", "Unicode-tekst".
FILES = {
    "dutch excel csv (semicolons, windows-1252)": spreadsheet(";", ROWS).encode("cp1252"),
    "csv utf-8 with a byte-order mark": b"\xef\xbb\xbf" + spreadsheet(",", ROWS).encode(),
    "unicode text (utf-16, tabs)": "\ufeff".encode("utf-16-le") + spreadsheet("\t", ROWS).encode("utf-16-le"),
}


@pytest.mark.parametrize("name", list(FILES))
def test_relations_import_reads_what_spreadsheets_write(any_db: Database, name: str) -> None:
    result = import_relations(any_db, io.BytesIO(FILES[name]))
    assert (result.error_count, result.rows, result.relations_created, result.contacts_created) == (0, 3, 3, 3)
    with any_db.transaction() as s:
        assert sorted(s.scalars(select(Relation.name))) == sorted(row[0] for row in ROWS)
        assert sorted(s.scalars(select(Contact.name))) == sorted(row[2] for row in ROWS)


def test_windows_1252_lines_among_utf8_ones_keep_their_accents(any_db: Database) -> None:
    """A file pasted together from two sources: UTF-8 lines and one Windows-1252 line."""
    data = spreadsheet(",", ROWS[:2]).encode() + ",".join(ROWS[2]).encode("cp1252") + b"\r\n"
    result = import_relations(any_db, io.BytesIO(data))
    assert result.error_count == 0 and result.contacts_created == 3
    with any_db.transaction() as s:
        assert set(s.scalars(select(Relation.name))) == {row[0] for row in ROWS}


def test_bad_rows_of_a_semicolon_file_are_reported_by_line_and_the_rest_imported(any_db: Database) -> None:
    rows = [ROWS[0], ("", "x.nl", "Niemand", "n@x.nl", ""), ROWS[1], (*ROWS[2][:3], "juergen@", "")]
    result = import_relations(any_db, io.BytesIO(spreadsheet(";", rows).encode("cp1252")))
    assert [line for line, _ in result.errors] == [3, 5]
    assert result.contacts_created == 2


def test_the_delimiter_is_the_header_lines_own() -> None:
    def delimiter(data: bytes) -> str:
        return csv_lines(io.BytesIO(data))[1]

    assert delimiter(b"relation;contact_name\n") == ";"
    assert delimiter(b'"Naam, volledig";email;stad\n') == ";"  # a comma inside quotes counts for nothing
    assert delimiter(b"a\tb\tc\n") == "\t"
    assert delimiter(b"email\n") == ","  # one column: nothing to separate
    assert delimiter(b"") == "," and list(csv_lines(io.BytesIO(b""))[0]) == []


def test_static_list_from_dutch_excel(
    db: Database, client: FlaskClient, make_user: Callable[..., User], login: Callable[..., FlaskClient]
) -> None:
    seed_contacts(db, 30)
    login(client, make_user("Marketing"))
    token = csrf_token(client.get("/campaigns/groups/new").text)
    saved = client.post(
        "/campaigns/groups/new", data={"csrf_token": token, "name": "Beurs", "static": "y", "action": "save"}
    )
    group_url = saved.headers["Location"]
    group_id = int(group_url.rstrip("/").rsplit("/", 1)[1])
    lines = ["Naam;E-mail;Plaats"] + [f"Bezoeker {n} (café);r{n}@example.test;Zaandam" for n in range(0, 30, 2)]
    lines += ["Zoë;geen adres;Ede", "Jürgen;nobody@example.test;Köln"]
    token = csrf_token(client.get(group_url).text)
    result = client.post(
        f"/campaigns/groups/{group_id}/import",
        data={"csrf_token": token, "file": (io.BytesIO("\r\n".join(lines).encode("cp1252")), "beurs.csv")},
        content_type="multipart/form-data",
    )
    assert result.status_code == 200
    assert "15 contacts added, 0 already on the list, 2 rows with errors." in result.text
    assert "line 17: not an e-mail address: geen adres" in result.text
    with db.transaction() as s:
        assert s.scalar(select(TargetGroup.static).where(TargetGroup.id == group_id)) is True
        assert len(s.scalars(select(TargetGroupMember).where(TargetGroupMember.group_id == group_id)).all()) == 15


def test_a_dutch_header_names_the_columns(any_db: Database) -> None:
    """A sheet headed in the users' words ("Bedrijf", "Contactpersoon", "E-mailadres", a status
    "Klant") imports without renaming its columns first."""
    data = (
        "Bedrijf;Website;Contactpersoon;E-mailadres;Telefoonnummer;Functie;Plaats;Status;Opmerking\r\n"
        "Café Zoë;cafe-zoe.nl;Anaïs Çelik;anais@cafe-zoe.nl;020 123 4567;Eigenaar;Zaandam;Klant;vaste klant\r\n"
        "Hoekje BV;hoekje.nl;Jan Bakker;jan@hoekje.nl;;;Ede;onbekend;\r\n"
    ).encode("cp1252")
    result = import_relations(any_db, io.BytesIO(data))
    assert (result.rows, result.relations_created, result.contacts_created) == (2, 1, 1)
    assert [(line, "onbekend" in message) for line, message in result.errors] == [(3, True)]
    with any_db.transaction() as s:
        relation = s.scalars(select(Relation).where(Relation.name == "Café Zoë")).one()
        assert (relation.domain, relation.city, relation.status.value) == ("cafe-zoe.nl", "Zaandam", "customer")
        contact = s.scalars(select(Contact)).one()
        assert (contact.name, contact.function) == ("Anaïs Çelik", "Eigenaar")
