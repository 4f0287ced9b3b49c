"""One state per unit of background work, in plain words, for every fault the health page must tell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.ops.health import STALL_AFTER, State, Work, beat_state, work_state

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def work(**changes: object) -> Work:
    base: dict[str, object] = {
        "active": True,
        "claimed_until": None,
        "last_progress_at": NOW - timedelta(minutes=3),
        "progress_done": 0,
        "progress_total": 0,
        "failures": 0,
        "error": "",
        "next_attempt_at": NOW + timedelta(minutes=4),
        "last_success_at": NOW - timedelta(minutes=1),
        "created_at": NOW - timedelta(days=3),
    }
    base.update(changes)
    return Work(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "alive", "state", "words"),
    [
        ({}, True, State.ok, "OK"),
        (
            {"claimed_until": NOW + timedelta(seconds=30), "progress_done": 1800, "progress_total": 3300},
            True,
            State.syncing,
            "Syncing: 1,800 of 3,300",
        ),
        ({"failures": 2, "error": "The server refused the user name or password."}, True, State.failing, "Failing"),
        # The worker died: no claim, the next sync long due, nobody started it.
        ({"next_attempt_at": NOW - STALL_AFTER - timedelta(minutes=1)}, True, State.stalled, "Stalled: due for"),
        # A sync holds its claim (renewed) but has not moved for longer than the stall time.
        (
            {"claimed_until": NOW + timedelta(seconds=30), "last_progress_at": NOW - STALL_AFTER * 2},
            True,
            State.stalled,
            "Stalled: no progress for 10 minutes",
        ),
        ({"next_attempt_at": NOW - timedelta(seconds=10)}, False, State.waiting_for_worker, "Waiting for a worker"),
        # Not due yet, all fine, but no worker alive: never "OK".
        ({}, False, State.waiting_for_worker, "Waiting for a worker"),
        ({"last_success_at": None, "next_attempt_at": None, "created_at": NOW}, True, State.waiting_first, "first"),
        ({"active": False}, False, State.paused, "Paused"),
    ],
)
def test_each_fault_reads_as_one_state_in_plain_words(
    changes: dict[str, object], alive: bool, state: State, words: str
) -> None:
    health = work_state(work(**changes), workers_alive=alive, now=NOW)
    assert health.state == state
    assert words in health.words
    assert health.problem == (state in (State.failing, State.stalled, State.waiting_for_worker))


def test_ok_is_never_said_without_a_live_worker() -> None:
    for changes in ({}, {"last_success_at": NOW}, {"next_attempt_at": NOW + timedelta(hours=1)}):
        assert work_state(work(**changes), workers_alive=False, now=NOW).state != State.ok


def test_beat_is_alive_only_with_a_recent_tick() -> None:
    assert beat_state(NOW - timedelta(seconds=20), now=NOW).ok
    assert not beat_state(NOW - timedelta(minutes=5), now=NOW).ok
    assert "never run" in beat_state(None, now=NOW).words
