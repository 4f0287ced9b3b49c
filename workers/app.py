"""The one Celery app, built from hub's settings (never at import time).

Configuration follows research/campaigns_and_celery.md part B: the database is the source of
truth and a message only wakes work up, so every task is idempotent and may run late; acks_late is
on (only idempotent tasks exist), prefetch is 1 so a long task never sits on reserved messages,
and the Redis visibility timeout is longer than any task's hard time limit so a running task is
never redelivered. Each area has its own queue.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from celery import Celery
from celery.signals import worker_process_init

from hub.config import Settings

QUEUES = ("default", "crm", "mail", "telephony", "calendar", "campaigns")

# Area prefix of a task name → queue.
ROUTES = {f"hub.{area}.*": {"queue": area} for area in QUEUES if area != "default"}


def _filesystem_options(var_dir: Path) -> dict[str, object]:
    base = var_dir / "broker"
    for sub in ("queue", "processed", "control"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(base / "queue"),
        "data_folder_out": str(base / "queue"),
        "processed_folder": str(base / "processed"),
        "store_processed": False,
        "control_folder": str(base / "control"),
    }


def _redis_options(settings: Settings) -> dict[str, object]:
    return {
        "visibility_timeout": settings.visibility_timeout,
        # A Redis that vanished without closing its sockets (host down, network cut) is noticed by
        # keepalive and the timeouts instead of a read that hangs forever; a connect to a Redis that
        # is not back yet fails fast so the reconnect loop keeps going.
        "socket_keepalive": True,
        "socket_timeout": 30,
        "socket_connect_timeout": 10,
        "retry_on_timeout": True,
        # A PING on idle connections, so a proxy or NAT that drops quiet connections is noticed.
        "health_check_interval": 25,
    }


def create_celery(settings: Settings) -> Celery:
    app = Celery("hub", set_as_current=True)
    if settings.broker_url.startswith("filesystem://"):
        transport_options = _filesystem_options(settings.var_dir)
    elif settings.broker_url.startswith(("redis://", "rediss://")):
        transport_options = _redis_options(settings)
    else:
        transport_options = {"visibility_timeout": settings.visibility_timeout}
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport_options=transport_options,
        # A broker outage never ends the worker: retry at start-up and after a loss, for ever
        # (Celery's default gives up after 100 attempts, about three hours of backing off).
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # A task in hand when the connection drops runs to its end and commits. Cancelling it
        # (Celery 6's default) was tried: the child is killed, and while Redis is down the message
        # cannot be put back, so the work waits for the visibility timeout or the sweep. Its ack is
        # lost instead; the redelivery finds the work claimed or done (every task is idempotent).
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # No result backend: results live in the database rows the tasks write.
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue="default",
        task_routes=ROUTES,
        task_acks_late=True,
        # A killed worker's task goes back to the queue; claims in the DB make a rerun harmless.
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=max(settings.task_time_limit - 30, 5),
        visibility_timeout=settings.visibility_timeout,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "sweep-due-work": {
                "task": "hub.default.sweep",
                "schedule": timedelta(seconds=settings.sweep_interval_seconds),
                "options": {"expires": settings.sweep_interval_seconds},
            },
            "poll-call-drop-folders": {
                "task": "hub.telephony.poll_drop_folders",
                "schedule": timedelta(seconds=15),
                "options": {"expires": 15},
            },
            "send-due-webhooks": {
                "task": "hub.webhooks.sweep",
                "schedule": timedelta(seconds=settings.sweep_interval_seconds),
                "options": {"expires": settings.sweep_interval_seconds},
            },
            "sync-due-calendars": {
                "task": "hub.calendar.sweep",
                "schedule": timedelta(seconds=settings.sweep_interval_seconds),
                "options": {"expires": settings.sweep_interval_seconds},
            },
            "start-due-mailings": {
                "task": "hub.campaigns.tick",
                "schedule": timedelta(seconds=15),
                "options": {"expires": 15},
            },
            "prune-webhook-log": {
                "task": "hub.webhooks.prune_log",
                "schedule": timedelta(hours=1),
                "options": {"expires": 3600},
            },
            "remove-orphan-packs": {
                "task": "hub.mail.remove_orphan_packs",
                "schedule": timedelta(hours=1),
                "options": {"expires": 3600},
            },
        },
        beat_schedule_filename=str(settings.var_dir / "beat-schedule"),
        beat_scheduler="workers.beat:HubScheduler",
        timezone="UTC",
    )
    app.hub_settings = settings
    # The default for every thread: Celery's "current app" is thread-local, and tasks are sent from
    # gunicorn's request threads and the IDLE watcher's threads too.
    app.set_default()
    import workers.tasks  # noqa: F401  (registers the tasks on this app)

    return app


@worker_process_init.connect
def _fresh_connections(**_kwargs: object) -> None:
    # A forked child must not share the parent's database connections.
    from workers import context

    context.reset()
