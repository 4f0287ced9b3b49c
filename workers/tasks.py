"""Celery tasks: thin. Each takes ids, calls one hub service, and is safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task

from hub.crm.import_jobs import due_import_jobs, run_import_job
from workers import context

log = logging.getLogger(__name__)


@shared_task(name="hub.crm.import_relations", acks_late=True)
def import_relations_task(job_id: int) -> None:
    """Run an uploaded relations import (claimed in the DB, so a duplicate message does nothing)."""
    job = run_import_job(context.database(), context.blobs(), job_id, region=context.settings().default_phone_region)
    if job is None:
        log.info("import job %s already taken or finished", job_id)


@shared_task(name="hub.default.sweep", acks_late=True)
def sweep() -> int:
    """Beat's tick: re-send work whose message was lost. Harmless when run twice."""
    with context.database().transaction() as session:
        job_ids = due_import_jobs(session)
    for job_id in job_ids:
        import_relations_task.delay(job_id)
    return len(job_ids)
