"""Celery tasks: thin. Each takes ids, calls one hub service, and is safe to run twice."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from sqlalchemy.exc import InterfaceError, OperationalError

from hub.claims import held_until
from hub.crm.import_jobs import due_import_jobs, run_import_job
from hub.models.base import utcnow
from workers import context

log = logging.getLogger(__name__)
# A sync slice stays well below the task time limit and then re-queues itself, so one big
# mailbox never holds a worker for long.
MAIL_BUDGET_SECONDS = 120
DATABASE_AWAY = (OperationalError, InterfaceError)
HELD_RETRIES = 3  # retries of a task that found its work claimed by another run


@shared_task(name="hub.crm.import_relations", acks_late=True)
def import_relations_task(job_id: int) -> None:
    """Run an uploaded relations import (claimed in the DB, so a duplicate message does nothing)."""
    job = run_import_job(context.database(), context.blobs(), job_id, region=context.settings().default_phone_region)
    if job is None:
        log.info("import job %s already taken or finished", job_id)


@shared_task(name="hub.default.sweep", acks_late=True)
def sweep() -> int:
    """Beat's tick: re-send work whose message was lost. Harmless when run twice."""
    from hub.mail.mailboxes import due_mailboxes

    with context.database().transaction() as session:
        job_ids = due_import_jobs(session)
        mailbox_ids = due_mailboxes(session)
    for job_id in job_ids:
        import_relations_task.delay(job_id)
    for mailbox_id in mailbox_ids:
        sync_mailbox_task.delay(mailbox_id)
    return len(job_ids) + len(mailbox_ids)


@shared_task(name="hub.mail.remove_orphan_packs", acks_late=True)
def remove_orphan_packs() -> int:
    """Beat's hourly tidy-up: packs a crashed sync wrote but never committed rows for."""
    from hub.mail.packs import packs_dir, remove_orphans

    removed = remove_orphans(context.database(), packs_dir(context.blobs()))
    if removed:
        log.info("removed %s pack files no e-mail points into", removed)
    return removed


@shared_task(
    bind=True,
    name="hub.mail.sync_mailbox",
    acks_late=True,
    # The database away (restarting, failing over): try again soon, backing off 1, 2, 4 … 30 s,
    # instead of leaving the mailbox to beat's sweep once its claim has lapsed.
    autoretry_for=DATABASE_AWAY,
    retry_backoff=True,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=60,
)
def sync_mailbox_task(self: Task, mailbox_id: int) -> None:
    """Sync one mailbox for a bounded time; if work is left, queue the next slice of it."""
    from hub.mail.imap import MailServerError
    from hub.mail.sync import sync_mailbox
    from hub.models import Mailbox

    settings = context.settings()
    try:
        result = sync_mailbox(
            context.database(),
            context.blobs(),
            mailbox_id,
            secret_key=settings.secret_key,
            allowed_hosts=settings.mail_allowed_hosts,
            budget_seconds=MAIL_BUDGET_SECONDS,
        )
    except MailServerError as exc:
        # Recorded on the mailbox with its backoff; the sweep retries when the backoff has passed.
        log.warning("mailbox %s: %s", mailbox_id, exc)
        return
    if result is None:
        retry_when_claim_lapses(self, Mailbox, mailbox_id)
    elif result.more:
        sync_mailbox_task.delay(mailbox_id)


def retry_when_claim_lapses(task: Task, model: Any, object_id: int) -> None:
    """The work is claimed by another run. If that run died (a killed worker whose message came
    back), its claim lapses within one lease: try again just after, rather than wait for the sweep.
    A live holder renews its claim, and a few such retries find it busy and stop."""
    until = held_until(context.database(), model, object_id)
    if until is None or task.request.retries >= HELD_RETRIES:
        return
    raise task.retry(countdown=max(1.0, (until - utcnow()).total_seconds() + 1), max_retries=None)
