"""The drop folder: a file that grows while it is read is read up to its last complete record, the
cursor is saved with the calls, a rotated file starts over, and a missing folder is a plain-words
failure on the source's health."""

from __future__ import annotations

import contextlib
from pathlib import Path

from sqlalchemy import func, select

from hub.db import Database
from hub.models import Call, CallFile, CallSource
from hub.telephony.sources import SourceInput, due_sources, health_of, poll_source, save_source

SAMPLES = Path(__file__).resolve().parents[1] / "telephony_samples"


def drop_source(db: Database, tmp_path: Path, fmt: str, name: str = "pbx") -> tuple[int, Path]:
    """A source of ``fmt`` whose drop folder is a new folder in ``tmp_path`` (times in UTC)."""
    folder = tmp_path / "drop"
    folder.mkdir()
    with db.transaction() as session:
        source = save_source(session, "k", SourceInput(name=name, format=fmt, drop_folder=str(folder), timezone="UTC"))
        return source.id, folder


def test_a_growing_file_is_read_to_its_last_complete_record(any_db: Database, tmp_path: Path) -> None:
    source_id, folder = drop_source(any_db, tmp_path, "asterisk-csv")
    with any_db.transaction() as session:
        assert due_sources(session) == [source_id]
    lines = (SAMPLES / "asterisk_master_18.csv").read_bytes().splitlines(keepends=True)
    master = folder / "Master.csv"
    master.write_bytes(lines[0] + lines[1][:50])  # the PBX is in the middle of writing row 2
    first = poll_source(any_db, source_id)
    assert first is not None and (first.rows, first.imported) == (1, 1)
    with any_db.transaction() as session:
        cursor = session.scalars(select(CallFile)).one()
        assert (cursor.offset, cursor.line) == (len(lines[0]), 2)
        source = session.get_one(CallSource, source_id)
        assert health_of(source, workers_alive=True).state == "ok"
        assert due_sources(session) == []  # polled: next one after the interval
    with master.open("ab") as stream:
        stream.write(lines[1][50:] + lines[2])
    second = poll_source(any_db, source_id)
    assert second is not None and (second.rows, second.imported, second.rejected) == (2, 2, 0)
    assert poll_source(any_db, source_id) is not None  # nothing new: nothing read
    with any_db.transaction() as session:
        assert session.scalar(select(CallFile.line)) == 4
        assert len(session.scalars(select(Call)).all()) == 3
    # rotated: a new, shorter Master.csv starts from its beginning
    master.write_bytes(lines[2])
    third = poll_source(any_db, source_id)
    assert third is not None and (third.rows, third.imported, third.known) == (1, 0, 1)


def test_a_missing_folder_is_a_failure_in_plain_words(any_db: Database, tmp_path: Path) -> None:
    with any_db.transaction() as session:
        source_id = save_source(
            session, "k", SourceInput(name="pbx", format="asterisk-csv", drop_folder=str(tmp_path / "gone"))
        ).id
    with contextlib.suppress(FileNotFoundError):
        poll_source(any_db, source_id)
    with any_db.transaction() as session:
        source = session.get_one(CallSource, source_id)
        health = health_of(source, workers_alive=True)
    assert health.state == "failing" and "does not exist" in health.words
    assert source.claimed_until is None and source.next_attempt_at is not None


def test_a_growing_generic_csv_keeps_its_column_names_past_the_cursor(any_db: Database, tmp_path: Path) -> None:
    """A generic CSV names its columns in its first line. Read on from the cursor, the rows after
    it lost those names and every one was rejected ("no call_id"): now each is a call, once."""
    source_id, folder = drop_source(any_db, tmp_path, "generic-csv", "sheet")
    header, *rows = (SAMPLES / "generic.csv").read_bytes().splitlines(keepends=True)
    good = rows[:2]
    more = [row.replace(b"g-1,", b"g-4,").replace(b"g-2,", b"g-5,") for row in good]
    sheet = folder / "calls.csv"
    sheet.write_bytes(header + good[0])
    first = poll_source(any_db, source_id)
    assert first is not None and (first.rows, first.imported, first.rejected) == (1, 1, 0)
    with sheet.open("ab") as stream:
        stream.write(good[1] + more[0] + more[1])
    second = poll_source(any_db, source_id)
    assert second is not None and (second.rows, second.imported, second.rejected) == (3, 3, 0), second.errors
    again = poll_source(any_db, source_id)
    assert again is not None and again.rows == 0
    with any_db.transaction() as session:
        assert sorted(session.scalars(select(Call.call_key))) == ["g-1", "g-2", "g-4", "g-5"]


def test_a_cel_call_cut_off_by_a_crash_no_longer_holds_the_cursor(any_db: Database, tmp_path: Path) -> None:
    """Asterisk killed mid-call writes no CHAN_END. That channel held the drop folder's cursor at
    its first event for good: the call was never imported and every poll (each minute) read the
    file again from there. Now, a day of later calls on, it is imported with its end unknown and
    the next poll reads only what was added."""
    from tests.unit.test_telephony_cel_ends import START, answered_call

    source_id, folder = drop_source(any_db, tmp_path, "asterisk-cel", "asterisk")
    cel = folder / "Master.csv"
    crashed = answered_call(START, "1764000000.1", ended=False)
    cel.write_bytes(crashed + b"".join(answered_call(START + 600 + n * 3600, f"17640{n:05d}.9") for n in range(30)))
    first = poll_source(any_db, source_id)
    assert first is not None and (first.rows, first.imported, first.rejected) == (62, 31, 0)
    with any_db.transaction() as session:
        cut = session.scalars(select(Call).where(Call.call_key == "1764000000.1")).one()
        assert cut.ended_at is None and cut.outcome == "answered"
    with cel.open("ab") as stream:
        stream.write(answered_call(START + 31 * 3600, "1764111600.5"))
    second = poll_source(any_db, source_id)
    assert second is not None and (second.rows, second.imported, second.known) == (2, 1, 0)
    with any_db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Call)) == 32


def test_a_cel_call_in_progress_does_not_import_the_calls_after_it_again_at_every_poll(
    any_db: Database, tmp_path: Path
) -> None:
    """A CEL file's cursor waits at the first event of a call still going (to read it whole when it
    ends). The calls and bad rows after it were imported again at every poll (each minute, all day
    while anyone is on the phone), each poll writing a report of them. Now a poll imports only what
    is new; the waiting call is imported once, when it ends."""
    from hub.models import CallImport
    from tests.unit.test_telephony_cel_ends import START, answered_call, event

    source_id, folder = drop_source(any_db, tmp_path, "asterisk-cel", "asterisk")
    cel = folder / "Master.csv"
    talking = answered_call(START, "1764000000.1", ended=False)  # a long call, still going
    others = b"".join(answered_call(START + 60 + n * 60, f"17640{n:05d}.9") for n in range(20))
    bad = b'"ANSWER","not a time","x"\n'
    cel.write_bytes(talking + others + bad)
    first = poll_source(any_db, source_id)
    assert first is not None and (first.rows, first.imported, first.rejected) == (41, 20, 1)
    for _ in range(3):  # polls while the call goes on, nothing written meanwhile
        again = poll_source(any_db, source_id)
        assert again is not None and (again.rows, again.imported, again.known, again.rejected) == (0, 0, 0, 0)
    with cel.open("ab") as stream:
        stream.write(answered_call(START + 2000, "1764002000.1"))
    more = poll_source(any_db, source_id)
    assert more is not None and (more.rows, more.imported, more.known, more.rejected) == (2, 1, 0, 0)
    with cel.open("ab") as stream:
        stream.write(event("CHAN_END", START + 3000, "1764000000.1b", "1764000000.1", "PJSIP/100-1"))
        stream.write(event("CHAN_END", START + 3000, "1764000000.1", "1764000000.1", "PJSIP/trunk-1"))
    ended = poll_source(any_db, source_id)
    assert ended is not None and (ended.rows, ended.imported, ended.known, ended.rejected) == (2, 1, 0, 0)
    with any_db.transaction() as session:
        call = session.scalars(select(Call).where(Call.call_key == "1764000000.1")).one()
        assert call.duration == 3000 and call.outcome == "answered"
        assert session.scalar(select(func.count()).select_from(Call)) == 22
        reports = session.scalars(select(CallImport).order_by(CallImport.id)).all()
        assert [(r.rows, r.rejected) for r in reports] == [(41, 1), (2, 0), (2, 0)]
        assert session.scalar(select(CallSource.rows_rejected).where(CallSource.id == source_id)) == 1
        assert session.scalars(select(CallFile.offset)).one() == cel.stat().st_size


def test_a_cel_call_cut_by_log_rotation_is_imported_from_the_rotated_file(any_db: Database, tmp_path: Path) -> None:
    """logrotate at midnight moves Master.csv to Master.csv.1 while a call is going: its CHAN_END goes
    to the new file. Read as a growing file, the rotated one held its cursor at that call for good
    (the call was lost; the file read again from there at every poll). A file untouched for a day is
    complete: the call is imported with its end unknown, and the file is not read again."""
    import os
    import time

    from tests.unit.test_telephony_cel_ends import START, answered_call, event

    source_id, folder = drop_source(any_db, tmp_path, "asterisk-cel", "asterisk")
    rotated = folder / "Master.csv.1"
    rotated.write_bytes(answered_call(START, "1764000000.5") + answered_call(START + 60, "1764000060.1", ended=False))
    day_ago = time.time() - 26 * 3600
    os.utime(rotated, (day_ago, day_ago))
    (folder / "Master.csv").write_bytes(
        event("CHAN_END", START + 400, "1764000060.1b", "1764000060.1", "PJSIP/100-1")
        + event("CHAN_END", START + 400, "1764000060.1", "1764000060.1", "PJSIP/trunk-1")
        + answered_call(START + 500, "1764000500.1")
    )
    first = poll_source(any_db, source_id)
    assert first is not None and (first.imported, first.rejected) == (3, 0)
    with any_db.transaction() as session:
        cut = session.scalars(select(Call).where(Call.call_key == "1764000060.1")).one()
        assert cut.ended_at is None and cut.outcome == "answered"
        cursors = dict(session.execute(select(CallFile.path, CallFile.offset)).tuples().all())
    assert cursors[str(rotated)] == rotated.stat().st_size
    again = poll_source(any_db, source_id)
    assert again is not None and again.rows == 0
