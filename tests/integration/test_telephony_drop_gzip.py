"""Rotated, compressed call records in a drop folder (logrotate keeps dozens of Master.csv.N.gz) are
read once: the folder is polled every minute, and each of them was unpacked whole at every poll to
find nothing new in it. A file whose cursor stands at the end gzip records for it, with the same
first bytes, is left packed; a new file under the same name, or one hub cannot be sure of (several
gzip members), is read as before, and nothing is imported twice."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.db import Database
from hub.models import Call
from hub.telephony import records
from hub.telephony.sources import poll_source
from tests.integration.test_telephony_drop_folder import drop_source


@pytest.fixture
def unpacked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a gzip file was unpacked (the real unpacking, counted)."""
    calls: list[int] = []
    real = records._unpacked

    def counting(stream: object) -> object:
        calls.append(1)
        return real(stream)  # type: ignore[arg-type]

    monkeypatch.setattr(records, "_unpacked", counting)
    return calls


def _records(count: int, first: int = 0) -> list[bytes]:
    """``count`` answered calls as Asterisk's Master.csv has them, each its own uniqueid."""
    return [
        (
            f'"","+3161234{n:04}","100","from-trunk","""Caller {n}"" <+3161234{n:04}>","PJSIP/trunk-1",'
            f'"PJSIP/100-1","Dial","PJSIP/100,30,tT","2025-03-04 10:{n % 60:02}:02","2025-03-04 10:{n % 60:02}:09",'
            f'"2025-03-04 10:{n % 60:02}:41",39,32,"ANSWERED","DOCUMENTATION","1741083302.{n}",""\n'
        ).encode()
        for n in range(first, first + count)
    ]


def _calls(db: Database) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Call)) or 0)


def test_a_rotated_gzip_file_is_unpacked_once_and_a_new_one_again(
    any_db: Database, tmp_path: Path, unpacked: list[int]
) -> None:
    source_id, folder = drop_source(any_db, tmp_path, "asterisk-csv")
    lines = _records(30)
    rotated = folder / "Master.csv.1.gz"
    rotated.write_bytes(gzip.compress(b"".join(lines[:10])))
    first = poll_source(any_db, source_id)
    assert first is not None and first.imported == 10 and unpacked == [1]
    for _ in range(3):
        again = poll_source(any_db, source_id)
        assert again is not None and again.rows == 0
    assert unpacked == [1] and _calls(any_db) == 10  # left packed: nothing new in it

    # The next rotation puts other records under the same name: read from its start.
    rotated.write_bytes(gzip.compress(b"".join(lines[10:])))
    second = poll_source(any_db, source_id)
    assert second is not None and second.imported == len(lines) - 10
    assert len(unpacked) == 2 and _calls(any_db) == len(lines)
    assert poll_source(any_db, source_id) is not None and len(unpacked) == 2


def test_a_gzip_file_of_several_members_is_read_again_but_imports_nothing_twice(
    any_db: Database, tmp_path: Path, unpacked: list[int]
) -> None:
    """``cat a.gz b.gz``: the size gzip records is the last member's, so hub cannot tell from it that
    the file was read to its end; it is unpacked and read from its cursor each time (nothing new)."""
    source_id, folder = drop_source(any_db, tmp_path, "asterisk-csv")
    lines = _records(12)
    (folder / "Master.csv.2.gz").write_bytes(gzip.compress(b"".join(lines[:5])) + gzip.compress(b"".join(lines[5:])))
    first = poll_source(any_db, source_id)
    assert first is not None and first.imported == len(lines)
    again = poll_source(any_db, source_id)
    assert again is not None and again.rows == 0 and again.imported == 0
    assert len(unpacked) == 2 and _calls(any_db) == len(lines)
