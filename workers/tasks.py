"""Celery tasks: thin. Each takes ids, calls one hub service, and is safe to run twice."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from sqlalchemy.exc import InterfaceError, OperationalError

from hub.claims import held_until
from hub.crm.import_jobs import due_import_jobs, run_import_job
from hub.models.base import utcnow
from hub.webhooks.outbox import set_waker as set_webhook_waker
from workers import context

log = logging.getLogger(__name__)
# A sync slice stays well below the task time limit and then re-queues itself, so one big
# mailbox never holds a worker for long.
MAIL_BUDGET_SECONDS = 120
DATABASE_AWAY = (OperationalError, InterfaceError)
# The database away (restarting, failing over): try again soon, backing off 1, 2, 4 … 30 s (with
# Celery's default jitter), instead of leaving the work to beat's sweep once its claim has lapsed.
RETRY_WHILE_DATABASE_AWAY: dict[str, Any] = {
    "autoretry_for": DATABASE_AWAY,
    "retry_backoff": True,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": 60,
}
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


@shared_task(bind=True, name="hub.mail.sync_mailbox", acks_late=True, **RETRY_WHILE_DATABASE_AWAY)
def sync_mailbox_task(self: Task, mailbox_id: int, held: int = 0) -> None:
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
        retry_when_claim_lapses(self, Mailbox, mailbox_id, held)
    elif result.more:
        sync_mailbox_task.delay(mailbox_id)


def retry_when_claim_lapses(task: Task, model: Any, object_id: int, held: int) -> None:
    """The work is claimed by another run. If that run died (a killed worker whose message came
    back), its claim lapses within one lease: try again just after, rather than wait for the sweep.
    A live holder renews its claim, and a few such retries find it busy and stop. ``held`` counts
    these retries apart from the database-outage ones (a task that waited out an outage must still
    take over the claim the outage left behind); it travels in the task's keyword arguments."""
    until = held_until(context.database(), model, object_id)
    if until is None or held >= HELD_RETRIES:
        return
    raise task.retry(
        kwargs={**(task.request.kwargs or {}), "held": held + 1},
        countdown=max(1.0, (until - utcnow()).total_seconds() + 1),
        max_retries=None,
    )


# --- telephony ---------------------------------------------------------------------------------------------


@shared_task(name="hub.telephony.poll_drop_folders", acks_late=True)
def poll_drop_folders() -> int:
    """Beat's tick: send a poll for every call source whose drop folder is due (and uploads whose
    message was lost)."""
    from hub.telephony.sources import due_sources, due_uploads

    with context.database().transaction() as session:
        source_ids = due_sources(session)
        upload_ids = due_uploads(session)
    for source_id in source_ids:
        poll_call_source_task.delay(source_id)
    for import_id in upload_ids:
        import_calls_task.delay(import_id)
    return len(source_ids) + len(upload_ids)


@shared_task(bind=True, name="hub.telephony.poll_source", acks_late=True, **RETRY_WHILE_DATABASE_AWAY)
def poll_call_source_task(self: Task, source_id: int, held: int = 0) -> None:
    """Read what is new in one source's drop folder (claimed: one reader per source)."""
    from hub.models import CallSource
    from hub.telephony.sources import poll_source

    try:
        result = poll_source(context.database(), source_id)
    except OSError as exc:
        log.warning("call source %s: %s", source_id, exc)  # recorded on the source, with backoff
        return
    if result is None:
        retry_when_claim_lapses(self, CallSource, source_id, held)


@shared_task(name="hub.telephony.import_upload", acks_late=True)
def import_calls_task(import_id: int) -> None:
    """Import a call-record file uploaded in the UI (claimed: a duplicate message does nothing)."""
    from hub.telephony.sources import run_upload

    if run_upload(context.database(), context.blobs(), import_id) is None:
        log.info("call import %s already taken or finished", import_id)


# --- webhooks ----------------------------------------------------------------------------------------------


@shared_task(name="hub.webhooks.send", acks_late=True, **RETRY_WHILE_DATABASE_AWAY)
def send_webhook_task(delivery_id: int) -> None:
    """Make the next attempt of one webhook delivery (claimed: a duplicate message sends nothing).
    A failed attempt is not retried here: its next attempt is due later and beat's sweep sends it."""
    from hub.webhooks.delivery import deliver

    settings = context.settings()
    status = deliver(
        context.database(), delivery_id, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts
    )
    if status is None:
        log.info("webhook delivery %s not due, done or being sent by another worker", delivery_id)


@shared_task(name="hub.webhooks.sweep", acks_late=True)
def sweep_webhooks() -> int:
    """Beat's tick: send every webhook delivery that is due (retries, and those whose message was lost)."""
    from hub.webhooks.delivery import due_deliveries

    with context.database().transaction() as session:
        delivery_ids = due_deliveries(session)
    _send_webhooks(delivery_ids)
    return len(delivery_ids)


@shared_task(name="hub.webhooks.prune_log", acks_late=True)
def prune_webhook_log() -> int:
    """Beat's hourly tidy-up: finished webhook deliveries older than the delivery log keeps."""
    from hub.webhooks.delivery import prune_log

    removed = prune_log(context.database())
    if removed:
        log.info("removed %s finished webhook deliveries from the delivery log", removed)
    return removed


def _send_webhooks(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        send_webhook_task.delay(delivery_id)


# Deliveries written by a committed change go to a worker at once (hub.webhooks.outbox); processes
# that never build the Celery app (the CLI) leave them to the sweep.
set_webhook_waker(_send_webhooks)


# --- calendar ----------------------------------------------------------------------------------------------


@shared_task(name="hub.calendar.sweep", acks_late=True)
def calendar_sweep() -> int:
    """Beat's tick: a push-and-pull for every calendar account with work due (and out of backoff)."""
    from hub.calendar.accounts import due_accounts
    from hub.calendar.imip import due_invitations

    with context.database().transaction() as session:
        account_ids = due_accounts(session)
        invitation_ids = due_invitations(session) if context.settings().smtp_url else []
    for account_id in account_ids:
        sync_calendar_task.delay(account_id)
    for appointment_id in invitation_ids:
        send_invitations_task.delay(appointment_id)
    return len(account_ids) + len(invitation_ids)


@shared_task(bind=True, name="hub.calendar.sync_account", acks_late=True, **RETRY_WHILE_DATABASE_AWAY)
def sync_calendar_task(self: Task, account_id: int, held: int = 0) -> None:
    """Push what is due into one staff calendar and pull its changes (claimed: one run per account).
    A server error is recorded on the account with its backoff; the sweep tries again after it."""
    from hub.calendar.dav import CalendarError
    from hub.calendar.sync import sync_account
    from hub.models import CalendarAccount

    try:
        settings = context.settings()
        result = sync_account(
            context.database(), account_id, secret_key=settings.secret_key, allowed_hosts=settings.mail_allowed_hosts
        )
    except CalendarError as exc:
        log.warning("calendar account %s: %s", account_id, exc.words)
        return
    if result is None:
        retry_when_claim_lapses(self, CalendarAccount, account_id, held)


# --- campaigns ---------------------------------------------------------------------------------------------

# A mailing run stays well below the task time limit and then queues its next slice.
MAILING_BUDGET_SECONDS = 300


@shared_task(name="hub.campaigns.tick", acks_late=True)
def campaigns_tick() -> int:
    """Beat's tick: start due mailings (a conditional UPDATE: a second beat starts nothing twice) and
    send a run for every sending mailing nobody holds."""
    from hub.campaigns.sending import start_due

    mailing_ids = start_due(context.database())
    for mailing_id in mailing_ids:
        send_mailing_task.delay(mailing_id)
    return len(mailing_ids)


@shared_task(bind=True, name="hub.campaigns.send", acks_late=True, **RETRY_WHILE_DATABASE_AWAY)
def send_mailing_task(self: Task, mailing_id: int, held: int = 0) -> None:
    """Send a slice of one mailing (claimed: a duplicate message sends nothing)."""
    from hub.campaigns.sending import send_mailing
    from hub.models.campaigns import Mailing

    result = send_mailing(context.database(), context.settings(), mailing_id, budget_seconds=MAILING_BUDGET_SECONDS)
    if result is None:
        retry_when_claim_lapses(self, Mailing, mailing_id, held)
    elif result.state == "sending" and result.next_attempt_at is None:
        send_mailing_task.delay(mailing_id)  # the budget ran out with work left


@shared_task(name="hub.calendar.send_invitations", acks_late=True, **RETRY_WHILE_DATABASE_AWAY)
def send_invitations_task(appointment_id: int) -> None:
    """E-mail invitations (iMIP) of one appointment to those who have not had the latest one; a relay
    that says "later" leaves them due, and the sweep sends them again."""
    from hub.calendar.imip import send_invitations
    from hub.outbound import RelayNotConfigured

    try:
        result = send_invitations(context.database(), context.settings(), appointment_id)
    except RelayNotConfigured:
        log.warning("no mail relay configured (HUB_SMTP_URL): invitations of appointment %s wait", appointment_id)
        return
    if result.deferred:
        log.info("appointment %s: %s invitations deferred by the relay", appointment_id, result.deferred)
