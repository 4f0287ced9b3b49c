"""Enqueue tasks only after the transaction that created their work has committed."""

from __future__ import annotations

from sqlalchemy.orm import Session

from hub.db import after_commit


def import_job_after_commit(session: Session, job_id: int) -> None:
    def send() -> None:
        from workers.tasks import import_relations_task

        try:
            import_relations_task.delay(job_id)
        except Exception:  # broker down: the beat sweep picks the job up later
            import logging

            logging.getLogger(__name__).warning("could not enqueue import job %s; the sweep will", job_id)

    after_commit(session, send)


def mailbox_sync_after_commit(session: Session, mailbox_id: int) -> None:
    def send() -> None:
        from workers.tasks import sync_mailbox_task

        try:
            sync_mailbox_task.delay(mailbox_id)
        except Exception:  # broker down: the beat sweep finds the mailbox due
            import logging

            logging.getLogger(__name__).warning("could not enqueue sync of mailbox %s; the sweep will", mailbox_id)

    after_commit(session, send)
