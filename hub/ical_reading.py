"""Reading iCalendar text from outside (CalDAV servers, invitations in mail), each text on its own.

The icalendar library keeps every VTIMEZONE it parses whose TZID the zone database does not know
(Outlook's "W. Europe Standard Time", a made-up name) in one cache for the whole process: the first
definition read is kept for good and used for every later calendar that names that TZID, before the
zone database and before that calendar's own definition. So one calendar with its own rules for
"W. Europe Standard Time" (a mistake, or a hostile invitation's +14:00) moved every later Outlook
appointment the process read, whoever's it was. hub empties that cache before it parses a text: a
calendar's times come from its own VTIMEZONEs and the zone database, never from another calendar.
"""

from __future__ import annotations

import threading
from typing import Any

from icalendar import Calendar
from icalendar.timezone import tzp

# The cache is the process's: a thread parsing while another empties it would read with another
# text's zones again, so parses take turns (a text parses in milliseconds).
_one_at_a_time = threading.Lock()


def read_calendar(data: bytes | str, *, multiple: bool = False) -> Any:
    """``Calendar.from_ical(data, multiple=multiple)`` with no other calendar's time zones."""
    with _one_at_a_time:
        # (Choosing the provider again is icalendar's one public way to empty the cache; zoneinfo
        # is the provider hub uses, icalendar's default.)
        tzp.use_zoneinfo()
        # (two calls: icalendar types each form of the call on its own)
        return Calendar.from_ical(data, multiple=True) if multiple else Calendar.from_ical(data)
