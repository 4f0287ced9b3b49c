"""Beat's scheduler, with a sign of life: the health page tells a stopped beat from a quiet one."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from celery.beat import PersistentScheduler

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 15


class HubScheduler(PersistentScheduler):
    """Celery's own file-backed scheduler that also records "beat is alive" in the database."""

    _last_heartbeat = 0.0

    def setup_schedule(self) -> None:
        # The schedule file lives under HUB_VAR_DIR, which a fresh machine does not have yet.
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval: float = super().tick(*args, **kwargs)
        now = time.monotonic()
        if now - self._last_heartbeat >= HEARTBEAT_SECONDS:
            self._last_heartbeat = now
            self._record()
        # Wake at least as often as the heartbeat, however far the next scheduled task is.
        return min(interval, HEARTBEAT_SECONDS)

    def _record(self) -> None:
        from hub.ops.health import record_heartbeat
        from workers import context

        try:
            record_heartbeat(context.database(), "beat")
        except Exception as exc:  # the database away: beat keeps scheduling; the page will say so
            log.warning("could not record beat's heartbeat: %s", exc)
