"""Asterisk CEL channels whose CHAN_END never comes: Asterisk killed or crashed mid-call (it writes
no CHAN_END then), a file cut before the calls in it ended, or a cel.conf that does not log
CHAN_END. Before, such a channel was held open for good: its call was never imported, and read from
a drop folder the cursor stayed at its first event, so every poll read the file again from there.
Now a channel still open a day (of the file's own event time) after it started, or past the bound on
channels held open, is imported with what is known, its end unknown; a file read to its end (an
upload) imports the channels it never ends the same way."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from hub.telephony.formats import CEL_OPEN_CHANNELS, parse_stream
from hub.telephony.records import Leg, Rejected, SourceConfig

CONFIG = SourceConfig(format="asterisk-cel", timezone="UTC", extensions=frozenset({"100"}))
START = 1_764_000_000  # 2025-11-24 16:00 UTC


def event(kind: str, at: float, uniqueid: str, linkedid: str, channel: str, number: str = "0612345678") -> bytes:
    fields = [kind, f"{at:.6f}", "Klant", number, number, "", "0201234567", "0201234567", "from-trunk", channel]
    fields += ["", "", "3", "", uniqueid, linkedid, "", "", "", ""]
    return (",".join(f'"{f}"' for f in fields) + "\n").encode()


def answered_call(at: float, uniqueid: str, *, ended: bool = True) -> bytes:
    """An inbound call answered on extension 100 after 5 s, talking 60 s (no ends if not ``ended``)."""
    b_leg = uniqueid + "b"
    rows = [
        event("CHAN_START", at, uniqueid, uniqueid, "PJSIP/trunk-1"),
        event("CHAN_START", at + 1, b_leg, uniqueid, "PJSIP/100-1"),
        event("ANSWER", at + 5, b_leg, uniqueid, "PJSIP/100-1"),
        event("ANSWER", at + 5, uniqueid, uniqueid, "PJSIP/trunk-1"),
    ]
    if ended:
        rows += [
            event("HANGUP", at + 65, uniqueid, uniqueid, "PJSIP/trunk-1"),
            event("CHAN_END", at + 65, b_leg, uniqueid, "PJSIP/100-1"),
            event("CHAN_END", at + 65, uniqueid, uniqueid, "PJSIP/trunk-1"),
        ]
    return b"".join(rows)


def read(data: bytes, final: bool) -> list[tuple[Leg | Rejected, int]]:
    return [(item.result, item.end) for item in parse_stream(io.BytesIO(data), CONFIG, final=final)]


def legs(results: list[tuple[Leg | Rejected, int]]) -> dict[str, Leg]:
    return {r.key: r for r, _ in results if isinstance(r, Leg)}


def test_a_call_cut_off_by_a_crash_is_imported_and_the_cursor_moves_past_it() -> None:
    crashed = answered_call(START, "1764000000.1", ended=False)
    # The PBX restarts; over the next two days calls come and go as usual.
    later = [answered_call(START + 600 + n * 3600, f"17640{n:05d}.9") for n in range(48)]
    data = crashed + b"".join(later)
    results = read(data, final=False)
    found = legs(results)
    assert len(found) == 2 + 2 * 48 and not [r for r, _ in results if isinstance(r, Rejected)]
    cut = found["1764000000.1"]
    assert cut.ended_at is None and cut.outcome == "answered"
    assert cut.answered_at == datetime.fromtimestamp(START + 5, UTC) and cut.direction == "inbound"
    assert found["1764000000.1b"].extension == "100"
    # The cursor (where the next poll starts) passed the crashed call once it was given up on, and
    # ends at the end of the file: nothing is read twice.
    assert results[-1][1] == len(data)
    given_up = [end for r, end in results if isinstance(r, Leg) and r.key.startswith("1764000000.1")]
    assert max(given_up) > len(crashed)


def test_a_call_still_going_a_few_hours_on_is_waited_for() -> None:
    """A long call (a conference of three hours) is not given up on: its end comes later."""
    long = answered_call(START, "1764000000.1", ended=False)
    others = b"".join(answered_call(START + 60 + n * 600, f"17640{n:05d}.9") for n in range(18))
    results = read(long + others, final=False)
    assert "1764000000.1" not in legs(results) and len(legs(results)) == 36
    assert results[-1][1] == 0  # the cursor waits at the long call's first event
    ended = long + others + event("CHAN_END", START + 4 * 3600, "1764000000.1b", "1764000000.1", "PJSIP/100-1")
    ended += event("CHAN_END", START + 4 * 3600, "1764000000.1", "1764000000.1", "PJSIP/trunk-1")
    call = legs(read(ended, final=False))["1764000000.1"]
    assert call.ended_at == datetime.fromtimestamp(START + 4 * 3600, UTC) and call.duration == 4 * 3600


def test_a_file_read_to_its_end_imports_the_calls_it_never_ends() -> None:
    """An export of a day's CEL ends while the last call still talks: that call is imported (end
    unknown), not dropped without a word."""
    data = answered_call(START, "1764000000.1") + answered_call(START + 600, "1764000600.1", ended=False)
    found = legs(read(data, final=True))
    assert set(found) == {"1764000000.1", "1764000000.1b", "1764000600.1", "1764000600.1b"}
    assert found["1764000600.1"].ended_at is None and found["1764000600.1"].outcome == "answered"
    assert found["1764000000.1"].duration == 65
    # Read as a growing file instead, the open call waits for the next read.
    assert set(legs(read(data, final=False))) == {"1764000000.1", "1764000000.1b"}


def test_without_chan_end_in_cel_conf_calls_are_imported_and_memory_stays_bounded() -> None:
    """cel.conf logging no CHAN_END: every channel stays open. Past the bound on channels held,
    the longest-open one is imported, so a growing file's calls arrive while it is read, and the
    parser never holds more than the bound however long the file is."""
    count = CEL_OPEN_CHANNELS + 2_500
    data = b"".join(
        event("CHAN_START", START + n, f"{START + n}.{n}", f"{START + n}.{n}", "PJSIP/trunk-1")
        + event("HANGUP", START + n + 20, f"{START + n}.{n}", f"{START + n}.{n}", "PJSIP/trunk-1")
        for n in range(count)
    )
    growing = read(data, final=False)
    assert len(legs(growing)) == count - CEL_OPEN_CHANNELS
    # the ones given up on are the oldest, in order, and the cursor moved past them
    assert [r.key for r, _ in growing][:3] == [f"{START + n}.{n}" for n in range(3)]
    assert growing[-1][1] > 0
    whole = legs(read(data, final=True))
    assert len(whole) == count and all(leg.ended_at is None and leg.outcome == "missed" for leg in whole.values())
