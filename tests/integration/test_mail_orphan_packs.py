"""A sync that dies between writing a batch's pack and committing its rows leaves a pack no row
points into; the hourly tidy-up deletes it (once it is old enough) and nothing else: every stored
e-mail still downloads whole, its attachments too."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from hub.blobs import BlobStore
from hub.config import Settings
from hub.db import Database
from hub.mail.packs import ORPHAN_AFTER_SECONDS, packs_dir, remove_orphans
from hub.mail.read import attachment_bytes, raw_message
from hub.mail.sync import _Interrupt
from hub.models import Attachment, Email
from tests.mail_fixtures import MailAccount
from tests.mail_fixtures import sync_account as run


def mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "anna@bakker.example.nl", "staff@hub.example", f"order {n}"
    msg["Message-ID"] = f"<orphan{n}@test>"
    msg.set_content(f"order {n}\n")
    msg.add_attachment(f"pdf {n}".encode() * 100, maintype="application", subtype="pdf", filename=f"o{n}.pdf")
    return bytes(msg)


def test_packs_left_by_a_crashed_sync_are_removed_and_nothing_else(
    db: Database, settings: Settings, mail_account: Callable[..., MailAccount], monkeypatch: pytest.MonkeyPatch
) -> None:
    import hub.mail.sync as sync_module

    monkeypatch.setattr(sync_module, "BATCH", 4)
    account = mail_account()
    client = account.client()
    sent = {f"<orphan{n}@test>": mail(n) for n in range(10)}
    for raw in sent.values():
        client.append("INBOX", raw)
    client.logout()
    with pytest.raises(_Interrupt):
        run(db, settings, account, fail_after_fetch=1)  # one batch commits, the second's pack is orphaned
    run(db, settings, account)
    root = packs_dir(BlobStore(settings.documents_dir))
    packs = sorted(root.iterdir())
    with db.transaction() as s:
        used = set(s.scalars(select(Email.raw_pack))) | set(s.scalars(select(Attachment.pack)))
    # The dead batch's pack (and the next one's, parsed ahead in the pipeline) has no rows.
    orphans = {p.name for p in packs} - used
    assert orphans and len(used) == 3  # one batch committed before the crash, two in the rerun

    assert remove_orphans(db, root) == 0  # all of them are new: a running sync may still commit
    an_hour_ago = time.time() - ORPHAN_AFTER_SECONDS - 60
    for pack in packs:
        os.utime(pack, (an_hour_ago, an_hour_ago))
    assert remove_orphans(db, root) == len(orphans)
    assert {p.name for p in root.iterdir()} == used
    blobs = BlobStore(settings.documents_dir)
    with db.transaction() as s:
        emails = s.scalars(select(Email)).all()
        assert len(emails) == 10
        for email in emails:
            raw = b"".join(raw_message(blobs, email)).replace(b"\r\n", b"\n")
            assert raw == sent[email.message_id]
        attachments = s.scalars(select(Attachment)).all()
        assert len(attachments) == 10
        for attachment in attachments:
            assert attachment_bytes(blobs, attachment).startswith(b"pdf ")
    assert remove_orphans(db, root) == 0
