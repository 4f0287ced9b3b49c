"""The conflict rule, per field: the side that changed it last wins; the losing value is kept.

A three-way merge in vdirsyncer's spirit, but per field instead of per item: the common ancestor is
what hub last wrote into the calendar. A field only one side changed takes that side's value (no
conflict at all); a field both changed to different values goes to the side that changed it last:
hub's change time of that field against the calendar event's LAST-MODIFIED. The loser goes into the
appointment's history, so nothing is lost silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.calendar.ical import FIELDS


@dataclass
class Merged:
    values: dict[str, Any]
    from_remote: set[str] = field(default_factory=set)  # fields the calendar's value now holds
    lost_by_hub: dict[str, Any] = field(default_factory=dict)  # hub's values the calendar beat
    lost_by_remote: dict[str, Any] = field(default_factory=dict)  # calendar values hub beat


def merge(
    base: dict[str, Any],
    ours: dict[str, Any],
    theirs: dict[str, Any],
    ours_changed: dict[str, datetime],
    theirs_changed: datetime,
    fields: tuple[str, ...] = FIELDS,
) -> Merged:
    result = Merged(dict(ours))
    for name in fields:
        b, o, t = base.get(name), ours.get(name), theirs.get(name)
        if t in (b, o):
            continue  # the calendar did not change it, or changed it to what hub has
        if o == b:
            result.values[name] = t
            result.from_remote.add(name)
            continue
        hub_time = ours_changed.get(name)
        if hub_time is None or theirs_changed > hub_time:
            result.values[name] = t
            result.from_remote.add(name)
            result.lost_by_hub[name] = o
        else:
            result.lost_by_remote[name] = t
    return result
