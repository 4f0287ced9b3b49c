"""Folder-by-folder IMAP sync into Email rows, resumable and idempotent.

Per folder the cursor (UIDVALIDITY, high_uid, low_uid, HIGHESTMODSEQ) is committed in the same
transaction as the messages it covers, so a worker killed at any moment resumes where the last
commit left off: nothing is lost and, with insert-or-ignore on the content key (hub.mail.identity)
and (folder, UID), nothing is stored twice. A Message-ID never decides that two messages are one:
only a copy in the same mailbox with the same Message-ID and size is taken as known without a
download (a renumbered or moved folder); anything else is downloaded and compared by content.
The first sync runs newest first in bounded batches under a time budget; later syncs ask STATUS
first and skip unchanged folders. Network I/O happens outside transactions.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from hub.blobs import BlobStore
from hub.claims import Claim, heartbeat
from hub.crm.events import EmailsLinked, EmailsStored, StoredEmail, announce
from hub.crm.matching import ProjectClues, match_addresses, match_projects
from hub.db import Database, bulk_insert, insert_ignore, insert_ignore_returning
from hub.i18n import N_
from hub.mail import mailboxes
from hub.mail.identity import content_key
from hub.mail.imap import MailServerError, connect, folders_to_sync
from hub.mail.packs import PackWriter, packs_dir
from hub.mail.parse import ParsedMessage, message_id_from_header
from hub.mail.parse_helper import Parsed, start_parsing
from hub.mail.privacy import refresh_withheld, shareable_or_in, staff_addresses
from hub.models import (
    Attachment,
    Email,
    EmailLocation,
    EmailParticipant,
    EmailProject,
    EmailRelation,
    Mailbox,
    MailboxEmail,
    MailFolder,
    MailQuarantine,
)
from hub.models.base import utcnow
from hub.secrets import SecretUnreadable, decrypt

log = logging.getLogger(__name__)

BATCH = 200
FLAG_RESCAN_SECONDS = 600  # how often flags are re-read on servers without CONDSTORE
MAX_MESSAGE_BYTES = 50 * 1024 * 1024
BODY_FETCH_BYTES = 16 * 1024 * 1024  # full bodies are fetched in slices of at most this much
PREFETCH_BYTES = 32 * 1024 * 1024  # a batch bigger than this is fetched group by group, not ahead
Progress = Callable[[int, int], None]
# What the database says about one bad row (too long, a character it refuses, a row that vanished
# under a foreign key), as opposed to a lost connection or a lock, which must not quarantine mail.
_REFUSED = (DataError, IntegrityError, UnicodeError)


@dataclass
class SyncResult:
    messages: int = 0
    new: int = 0
    linked: int = 0
    skipped_folders: int = 0
    quarantined: int = 0
    more: bool = False
    errors: list[str] = field(default_factory=list)

    def add(self, other: SyncResult) -> None:
        self.messages += other.messages
        self.new += other.new
        self.linked += other.linked
        self.skipped_folders += other.skipped_folders
        self.quarantined += other.quarantined
        self.more = self.more or other.more


@dataclass
class _Download:
    """What the server sent for one batch: headers, which messages are new, maybe their bodies."""

    headers: dict[int, Any]
    listed: dict[int, str]
    known: dict[int, int]  # uid → e-mail id: copies this mailbox holds already (same Message-ID and size)
    to_fetch: list[int]
    sizes: dict[int, int]
    bodies: dict[int, tuple[bytes, bool]] | None = None
    parsing: Callable[[], list[Parsed]] | None = None  # the bodies' parsing, started on arrival


class _Interrupt(Exception):
    """Raised by tests (through ``fail_after_fetch``) to simulate a worker dying mid-batch."""


@dataclass
class _Settings:
    host: str
    port: int
    security: str
    username: str
    password: str
    folders: str
    since: Any


def sync_mailbox(
    db: Database,
    blobs: BlobStore,
    mailbox_id: int,
    *,
    secret_key: str,
    allowed_hosts: str,
    budget_seconds: float = 240,
    force: bool = False,
    on_progress: Progress | None = None,
    fail_after_fetch: int | None = None,
) -> SyncResult | None:
    """Sync every folder of one mailbox until done or the budget is spent (``result.more``).

    ``allowed_hosts``: the internal hosts an admin allowed (HUB_MAIL_ALLOWED_HOSTS); any other host
    must resolve to public addresses (checked again at every connect, not only when it was saved).
    Returns None when another sync holds the mailbox (or it is backing off and not forced).
    Raises :class:`MailServerError` after recording the failure on the mailbox.
    """
    if mailboxes.removal_pending(db, mailbox_id):
        # A removed mailbox's only work left: clearing its folders (and its mail, if asked) in batches.
        more = mailboxes.finish_removal(db, mailbox_id, budget_seconds=budget_seconds)
        return None if more is None else SyncResult(more=more)
    claim = mailboxes.claim(db, mailbox_id, force=force)
    if claim is None:
        return None
    with heartbeat(claim):
        return _sync_claimed(db, blobs, claim, allowed_hosts, secret_key, budget_seconds, on_progress, fail_after_fetch)


def _sync_claimed(
    db: Database,
    blobs: BlobStore,
    claim: Claim,
    allowed_hosts: str,
    secret_key: str,
    budget_seconds: float,
    on_progress: Progress | None,
    fail_after_fetch: int | None,
) -> SyncResult:
    mailbox_id = claim.object_id
    deadline = time.monotonic() + budget_seconds
    try:
        with db.transaction() as session:
            box = session.get_one(Mailbox, mailbox_id)
            config = _Settings(
                box.host,
                box.port,
                box.security.value,
                box.username,
                decrypt(secret_key, box.password_encrypted),
                box.folders,
                box.sync_since,
            )
    except SecretUnreadable:
        mailboxes.record_failure(
            claim, N_("The stored password cannot be read (HUB_SECRET_KEY changed); enter it again.")
        )
        raise MailServerError("stored password unreadable") from None
    result = SyncResult()
    progress = _MailboxProgress()
    try:
        with connect(
            config.host, config.port, config.security, config.username, config.password, allowed_hosts=allowed_hosts
        ) as client:
            condstore = b"CONDSTORE" in client.capabilities()
            for name, special_use in folders_to_sync(client, config.folders):
                folder = FolderSync(
                    db,
                    blobs,
                    client,
                    claim,
                    name,
                    special_use,
                    condstore,
                    config.since,
                    deadline,
                    on_progress,
                    fail_after_fetch,
                    progress,
                )
                result.add(folder.run())
                progress.finish_folder(folder)
                if time.monotonic() > deadline:
                    result.more = True
                    break
    except MailServerError as exc:
        mailboxes.record_failure(claim, exc.stored)
        raise
    except BaseException:
        # A bug, an interrupt, the database going away: give the claim back so the next run (the
        # task's retry, the sweep) can start at once, if the database lets us.
        try:
            claim.release()
        except Exception as exc:
            log.warning("could not release the claim on mailbox %s: %s", mailbox_id, exc)
        raise
    mailboxes.record_success(claim, backlog=1 if result.more else 0)
    return result


@dataclass
class _MailboxProgress:
    """Messages done and to do over the mailbox's folders so far (the health page's "1,800 of 3,300")."""

    done: int = 0
    total: int = 0

    def finish_folder(self, folder: FolderSync) -> None:
        self.done += folder.done
        self.total += folder.total


class ClaimLost(Exception):
    """Another run took the mailbox over (this one stalled past its claim): stop without writing more."""


class FolderSync:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        client: IMAPClient,
        claim: Claim,
        name: str,
        special_use: str,
        condstore: bool,
        since: Any,
        deadline: float,
        on_progress: Progress | None,
        fail_after_fetch: int | None,
        mailbox_progress: _MailboxProgress | None = None,
    ) -> None:
        self.db, self.blobs, self.client = db, blobs, client
        self.claim, self.mailbox_id = claim, claim.object_id
        self.name, self.special_use = name, special_use
        self.mailbox_progress = mailbox_progress or _MailboxProgress()
        self.condstore, self.since, self.deadline = condstore, since, deadline
        self.on_progress = on_progress
        self.fail_after_fetch = fail_after_fetch
        self.result = SyncResult()
        self.done = 0
        self.total = 0
        self.retrying = False
        self.batch_uids: list[int] = []
        self.staff: frozenset[str] | None = None
        # uid → (pack, offset, length) of the raw bytes of a message about to be quarantined.
        self.quarantined_raw: dict[int, tuple[str, int, int]] = {}

    # --- the folder's cursor ----------------------------------------------------------------------

    def _folder(self, session: Session) -> MailFolder:
        insert_ignore(
            session,
            MailFolder,
            [
                {
                    "mailbox_id": self.mailbox_id,
                    "name": self.name,
                    "special_use": self.special_use,
                    "high_uid": 0,
                    "backfill_done": False,
                }
            ],
            ["mailbox_id", "name"],
        )
        return session.scalars(
            select(MailFolder).where(MailFolder.mailbox_id == self.mailbox_id, MailFolder.name == self.name)
        ).one()

    def run(self) -> SyncResult:
        complete = True
        items = [b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES"] + ([b"HIGHESTMODSEQ"] if self.condstore else [])
        status = self.client.folder_status(self.name, items)
        uidvalidity, uidnext = int(status[b"UIDVALIDITY"]), int(status[b"UIDNEXT"])
        messages, modseq = int(status[b"MESSAGES"]), status.get(b"HIGHESTMODSEQ")
        with self.db.transaction() as session:
            folder = self._folder(session)
            unchanged = (
                folder.uidvalidity == uidvalidity
                and folder.uidnext == uidnext
                and folder.backfill_done
                and folder.server_messages == messages
                and (modseq is None or folder.highestmodseq == int(modseq))
                # Without CONDSTORE, STATUS cannot show flag changes: look at the flags now and then.
                and (self.condstore or _recently(folder.last_synced_at, FLAG_RESCAN_SECONDS))
            )
            retry_uids = list(
                session.scalars(
                    select(MailQuarantine.uid).where(MailQuarantine.folder_id == folder.id, MailQuarantine.retry)
                )
            )
            if unchanged and not retry_uids:
                self.result.skipped_folders = 1
                return self.result
            if folder.uidvalidity is not None and folder.uidvalidity != uidvalidity:
                # The server renumbered the folder: forget the old UIDs (the e-mails stay) and
                # find every message again; known ones are recognised by Message-ID, not refetched.
                session.execute(delete(EmailLocation).where(EmailLocation.folder_id == folder.id))
                session.execute(delete(MailQuarantine).where(MailQuarantine.folder_id == folder.id))
                folder.high_uid, folder.low_uid, folder.backfill_done, folder.highestmodseq = 0, None, False, None
            folder.uidvalidity = uidvalidity
            first_sync = folder.high_uid == 0 and folder.low_uid is None
            folder_id, high_uid, low_uid = folder.id, folder.high_uid, folder.low_uid
            backfill_done, known_modseq = folder.backfill_done, folder.highestmodseq
        self.folder_id = folder_id
        selected = self.client.select_folder(self.name, readonly=True)
        self.exists = int(selected.get(b"EXISTS", 0))
        if retry_uids and not first_sync:
            self._retry_quarantined(retry_uids)
        criteria: list[Any] = ["SINCE", self.since] if self.since else ["ALL"]
        if first_sync:
            all_uids = sorted(self.client.search(criteria), reverse=True)
            high = all_uids[0] if all_uids else max(uidnext - 1, 0)
            with self.db.transaction() as session:
                session.execute(
                    update(MailFolder).where(MailFolder.id == folder_id).values(high_uid=high, low_uid=high + 1)
                )
            high_uid, low_uid = high, high + 1
            self.total = len(all_uids)
            self._progress()
            self._backfill(all_uids)
        else:
            new_uids = [u for u in self.client.search(["UID", f"{high_uid + 1}:*"]) if u > high_uid]
            self.total = len(new_uids)
            for batch, download in self._pipeline(list(_chunks(sorted(new_uids), BATCH))):
                self._store_batch(batch, download, cursor={"high_uid": max(batch)})
                if self._out_of_time():
                    return self.result
            if not backfill_done and low_uid is not None:
                older = sorted((u for u in self.client.search(criteria) if u < low_uid), reverse=True)
                self.total += len(older)
                self._backfill(older)
            if not self.result.more:
                complete = self._flags_and_deletions(known_modseq)
        if not self.result.more:
            with self.db.transaction() as session:
                session.execute(
                    update(MailFolder)
                    .where(MailFolder.id == folder_id)
                    .values(
                        uidnext=uidnext,
                        # Unknown after an incomplete listing: the next STATUS must not skip the folder.
                        server_messages=messages if complete else None,
                        last_synced_at=utcnow(),
                        highestmodseq=int(modseq) if modseq is not None else None,
                    )
                )
        return self.result

    def _retry_quarantined(self, uids: list[int]) -> None:
        """Fetch and parse again the quarantined messages their owner asked to retry (after an upgrade).

        A message that now parses is stored and leaves the quarantine; one that still fails stays
        with the new reason. One the server no longer has stays as it was, with its raw bytes.
        """
        self.retrying = True
        try:
            for batch, download in self._pipeline(list(_chunks(sorted(uids), BATCH))):
                self._store_batch(batch, download, cursor={})
        finally:
            self.retrying = False
        with self.db.transaction() as session:
            session.execute(
                update(MailQuarantine)
                .where(MailQuarantine.folder_id == self.folder_id, MailQuarantine.uid.in_(uids))
                .values(retry=False)
            )

    def _backfill(self, uids_newest_first: list[int]) -> None:
        for batch, download in self._pipeline(list(_chunks(uids_newest_first, BATCH))):
            self._store_batch(batch, download, cursor={"low_uid": min(batch)})
            if self._out_of_time():
                return
        with self.db.transaction() as session:
            session.execute(update(MailFolder).where(MailFolder.id == self.folder_id).values(backfill_done=True))

    def _out_of_time(self) -> bool:
        if time.monotonic() > self.deadline:
            self.result.more = True
        return self.result.more

    def _progress(self) -> None:
        if self.on_progress:
            self.on_progress(self.done, self.total)

    # --- flags and deletions ---------------------------------------------------------------------

    def _flags_and_deletions(self, known_modseq: int | None) -> bool:
        """Apply flag changes and removed messages; False when the server's listing looked short."""
        with self.db.transaction() as session:
            stored = {
                uid: (location_id, flags)
                for uid, location_id, flags in session.execute(
                    select(EmailLocation.uid, EmailLocation.id, EmailLocation.flags).where(
                        EmailLocation.folder_id == self.folder_id
                    )
                )
            }
        server_uids = set(self.client.search(["ALL"]))
        if self.condstore and known_modseq:
            # CONDSTORE: only the messages whose flags changed since the last sync.
            candidates = set(self.client.search(["MODSEQ", str(known_modseq + 1)]))
        else:
            candidates = server_uids
        changed: dict[int, str] = {}
        # Lists of single UIDs, not ranges (imapclient matches answers to the UIDs asked for), so in
        # chunks that keep the command line under about 8 KB: some servers drop longer ones.
        for chunk in _chunks(sorted(candidates & server_uids & stored.keys()), 1000):
            for uid, data in self.client.fetch(chunk, ["FLAGS"]).items():
                changed[uid] = _flags(data.get(b"FLAGS", ()))
        # A listing shorter than the EXISTS count of the SELECT (a half-answered SEARCH, or messages
        # expunged in between) removes nothing this time: unlinking mail that is still there is worse
        # than noticing a deletion one sync later.
        complete = len(server_uids) >= self.exists
        with self.db.transaction() as session:
            if complete:
                gone = [location_id for uid, (location_id, _f) in stored.items() if uid not in server_uids]
                for chunk in _chunks(gone, 500):
                    session.execute(delete(EmailLocation).where(EmailLocation.id.in_(chunk)))
            for uid, flags in changed.items():
                if uid in stored and uid in server_uids and stored[uid][1] != flags:
                    session.execute(update(EmailLocation).where(EmailLocation.id == stored[uid][0]).values(flags=flags))
        return complete

    # --- one batch of messages -------------------------------------------------------------------

    def _pipeline(self, batches: list[list[int]]) -> Iterator[tuple[list[int], _Download]]:
        """Each batch with its download; the next batch downloads on a helper thread meanwhile.

        Parsing and storing one batch overlaps with the server sending the next. Only one thread
        talks to the IMAP connection at any time: the main thread does not touch it until the
        download it waits for is done, and leaving the loop early waits for the one in flight.
        """
        if not batches:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap-prefetch") as pool:
            pending = pool.submit(self._download, batches[0])
            for index, batch in enumerate(batches):
                download = pending.result()
                if index + 1 < len(batches):
                    pending = pool.submit(self._download, batches[index + 1])
                yield batch, download

    def _download(self, uids: list[int]) -> _Download:
        headers = self.client.fetch(
            uids, ["RFC822.SIZE", "FLAGS", "INTERNALDATE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
        )
        listed = {
            uid: message_id_from_header(data.get(b"BODY[HEADER.FIELDS (MESSAGE-ID)]", b""))
            for uid, data in headers.items()
        }
        server_sizes = {uid: int(data.get(b"RFC822.SIZE", 0)) for uid, data in headers.items()}
        known = self._known_copies(listed, server_sizes)
        # Copies this mailbox already holds (another folder, a renumbered folder) only get a location;
        # the rest is downloaded, and recognised by content if another mailbox has it.
        to_fetch = [uid for uid in listed if uid not in known]
        sizes = {uid: server_sizes[uid] for uid in to_fetch}
        download = _Download(headers, listed, known, to_fetch, sizes)
        if sum(min(size, MAX_MESSAGE_BYTES) for size in sizes.values()) <= PREFETCH_BYTES:
            # Small enough to hold while the previous batch is processed: fetch the bodies now.
            download.bodies, download.parsing = self._with_parsing(self._fetch_bodies(to_fetch, sizes), download)
        return download

    def _known_copies(self, listed: dict[int, str], sizes: dict[int, int]) -> dict[int, int]:
        """uid → e-mail id for messages this same mailbox already holds with that Message-ID and size.

        Within one mailbox that pair names one message (the owner's own copies moved or renumbered);
        a pair matching two e-mails is ambiguous and downloaded. Another mailbox's mail never counts:
        there a Message-ID is only a claim, and the content decides.
        """
        keys = {mid for mid in listed.values() if mid}
        if not keys:
            return {}
        with self.db.transaction() as session:
            rows = session.execute(
                select(Email.message_id, MailboxEmail.size, Email.id)
                .join(MailboxEmail, MailboxEmail.email_id == Email.id)
                .where(MailboxEmail.mailbox_id == self.mailbox_id, Email.message_id.in_(keys))
            ).tuples()
            candidates: dict[tuple[str, int], set[int]] = {}
            for message_id, size, email_id in rows:
                candidates.setdefault((message_id, size), set()).add(email_id)
        known = {}
        for uid, mid in listed.items():
            found = candidates.get((mid, sizes.get(uid, -1)), set())
            if mid and len(found) == 1:
                known[uid] = next(iter(found))
        return known

    def _fetch_bodies(self, uids: list[int], sizes: dict[int, int]) -> dict[int, tuple[bytes, bool]]:
        """uid → (raw bytes, whole message?) for one size-bounded group; over-large ones: headers only."""
        bodies: dict[int, tuple[bytes, bool]] = {}
        big = [uid for uid in uids if sizes[uid] > MAX_MESSAGE_BYTES]
        normal = [uid for uid in uids if sizes[uid] <= MAX_MESSAGE_BYTES]
        for uid, data in self.client.fetch(normal, ["BODY.PEEK[]"]).items() if normal else []:
            bodies[uid] = (data.get(b"BODY[]", b""), True)
        for uid, data in self.client.fetch(big, ["BODY.PEEK[HEADER]"]).items() if big else []:
            bodies[uid] = (data.get(b"BODY[HEADER]", b""), False)
        return bodies

    def _store_batch(self, uids: list[int], download: _Download, cursor: dict[str, int]) -> None:
        headers, listed, known = download.headers, download.listed, download.known
        # Parsing writes the batch's pack (fsynced) before the rows that point into it commit.
        parsed = self._fetch_and_parse(download)
        if self.fail_after_fetch is not None:
            self.fail_after_fetch -= 1
            if self.fail_after_fetch < 0:
                raise _Interrupt("simulated crash between fetch and store")
        flags = {uid: _flags(data.get(b"FLAGS", ())) for uid, data in headers.items()}
        _date_from_arrival(parsed, headers)
        self.batch_uids = uids
        try:
            with self.db.transaction() as session:
                stored = self._store(session, listed, known, parsed, flags, download.sizes)
                self._advance(session, cursor)
        except _REFUSED:
            stored = self._store_one_by_one(listed, known, parsed, flags, download.sizes, cursor)
        self.result.add(stored)
        self.done += len(uids)
        self._progress()

    def _advance(self, session: Session, cursor: dict[str, int]) -> None:
        """Move the folder's cursor and the mailbox's progress, in the batch's own transaction."""
        if self.claim.lost.is_set():
            raise ClaimLost(f"mailbox {self.mailbox_id} was taken over by another sync")
        if cursor:
            session.execute(update(MailFolder).where(MailFolder.id == self.folder_id).values(**cursor))
        session.execute(
            update(Mailbox)
            .where(Mailbox.id == self.mailbox_id)
            .values(
                progress_done=self.mailbox_progress.done + self.done + len(self.batch_uids),
                progress_total=self.mailbox_progress.total + self.total,
                last_progress_at=utcnow(),
            )
        )

    def _store_one_by_one(
        self,
        listed: dict[int, str],
        known: dict[int, int],
        parsed: dict[int, Parsed],
        flags: dict[int, str],
        sizes: dict[int, int],
        cursor: dict[str, int],
    ) -> SyncResult:
        """The database refused the batch: store each message alone and quarantine those it refuses.

        One message the parser let through but the database will not take must not stop the folder.
        Each message commits on its own (a crash in between is harmless: the rerun inserts only what
        is missing); the cursor moves once all of them are stored or quarantined.
        """
        total = SyncResult()
        for uid in listed:
            one = {uid: listed[uid]}
            try:
                with self.db.transaction() as session:
                    total.add(
                        self._store(session, one, known, {uid: parsed[uid]} if uid in parsed else {}, flags, sizes)
                    )
            except _REFUSED as exc:
                reason = f"the database refused it: {_first_line(exc)}"
                message = parsed.get(uid)
                if isinstance(message, ParsedMessage):  # its raw bytes are packed: keep them for the owner
                    self.quarantined_raw[uid] = (message.raw_pack, message.raw_offset, message.raw_length)
                with self.db.transaction() as session:
                    total.add(self._store(session, one, known, {uid: reason}, flags, sizes))
        with self.db.transaction() as session:
            self._advance(session, cursor)
        return total

    def _fetch_and_parse(self, download: _Download) -> dict[int, Parsed]:
        groups: Iterable[tuple[dict[int, tuple[bytes, bool]], Callable[[], list[Parsed]]]]
        if download.bodies is not None and download.parsing is not None:
            groups = [(download.bodies, download.parsing)]
        else:  # a big batch: fetch it group by group here, so memory stays bounded
            groups = (
                self._with_parsing(self._fetch_bodies(group, download.sizes), download)
                for group in _by_size(download.to_fetch, download.sizes)
            )
        parsed: dict[int, Parsed] = {}
        for bodies, parsing in groups:
            for (uid, (_raw, whole)), message in zip(bodies.items(), parsing(), strict=True):
                if isinstance(message, ParsedMessage) and not whole:
                    message.problems.append(
                        f"{download.sizes[uid]:,} bytes is above the {MAX_MESSAGE_BYTES:,} byte limit: "
                        "only the headers were stored"
                    )
                parsed[uid] = message
            self._keep_quarantined_raw({uid: bodies[uid][0] for uid in bodies if isinstance(parsed[uid], str)})
            bodies.clear()  # parsed and packed: let the raw bytes go
        return parsed

    def _keep_quarantined_raw(self, raws: dict[int, bytes]) -> None:
        """Pack the raw bytes of messages the parser could not read, so their owner can download them."""
        if not raws:
            return
        pack = PackWriter(packs_dir(self.blobs))
        try:
            slots = {uid: pack.add(raw, compress=True) for uid, raw in raws.items()}
            pack.close()
        except BaseException:
            pack.abandon()
            raise
        for uid, slot in slots.items():
            self.quarantined_raw[uid] = (pack.name, *pack.location(slot))

    def _with_parsing(
        self, bodies: dict[int, tuple[bytes, bool]], download: _Download
    ) -> tuple[dict[int, tuple[bytes, bool]], Callable[[], list[Parsed]]]:
        """The bodies, with their parsing and packing started (in the helper process, when one runs).

        A message another mailbox already stored (the same content: a colleague's copy of the same
        mail) is recognised by its content key here and neither parsed nor packed again; it only gets
        this mailbox's copy row and location.
        """
        # Only a message whose Message-ID some stored e-mail carries can be stored already: hashing
        # (in this process, which also downloads and stores) is kept to those.
        claimed = {download.listed.get(uid, "") for uid, (_raw, whole) in bodies.items() if whole} - {""}
        if not claimed:
            return bodies, start_parsing([raw for raw, _whole in bodies.values()], packs_dir(self.blobs))
        with self.db.transaction() as session:
            seen = set(session.scalars(select(Email.message_id).where(Email.message_id.in_(claimed)).distinct()))
        keys = {
            uid: content_key(raw)
            for uid, (raw, whole) in bodies.items()
            if whole and download.listed.get(uid, "") in seen
        }
        if keys:
            with self.db.transaction() as session:
                stored = dict(
                    session.execute(
                        select(Email.message_key, Email.id).where(Email.message_key.in_(set(keys.values())))
                    )
                    .tuples()
                    .all()
                )
            for uid, key in keys.items():
                if key in stored:
                    download.known[uid] = stored[key]
                    del bodies[uid]
        return bodies, start_parsing([raw for raw, _whole in bodies.values()], packs_dir(self.blobs))

    def _store(
        self,
        session: Session,
        listed: dict[int, str],
        known: dict[int, int],
        parsed: dict[int, Parsed],
        flags: dict[int, str],
        sizes: dict[int, int],
    ) -> SyncResult:
        """Rows for one batch (e-mails, the mailbox's copies, locations, quarantine); what it stored."""
        done = SyncResult()
        new_messages = {m.message_key: m for m in parsed.values() if isinstance(m, ParsedMessage)}
        existing = (
            dict(
                session.execute(select(Email.message_key, Email.id).where(Email.message_key.in_(new_messages)))
                .tuples()
                .all()
            )
            if new_messages
            else {}
        )
        fresh = {key: m for key, m in new_messages.items() if key not in existing}
        inserted = _insert_emails(session, [_email_row(m) for m in fresh.values()])
        ids = {**existing, **inserted}
        _announce_stored(session, {inserted[key]: fresh[key] for key in inserted})
        # Only what this transaction inserted gets participants and links: another mailbox's sync
        # storing the same message at the same moment has (or will have) done that once.
        done.linked = self._link_new(session, {inserted[key]: fresh[key] for key in inserted})
        locations, quarantined = [], []
        copies: dict[int, int] = {}  # e-mail id → its size in this mailbox
        for uid in listed:
            message = parsed.get(uid)
            if isinstance(message, str):
                pack, offset, length = self.quarantined_raw.pop(uid, ("", 0, 0))
                quarantined.append(
                    {
                        "folder_id": self.folder_id,
                        "uid": uid,
                        "reason": message,
                        "raw_pack": pack,
                        "raw_offset": offset,
                        "raw_length": length,
                    }
                )
                continue
            if message is None:
                email_id: int | None = known.get(uid)
            else:
                email_id = ids.get(message.message_key)
                if email_id is None:
                    # Stored by a sync that raced this one, after the look-up above.
                    email_id = session.scalar(select(Email.id).where(Email.message_key == message.message_key))
            if email_id is not None:
                locations.append(
                    {"email_id": email_id, "folder_id": self.folder_id, "uid": uid, "flags": flags.get(uid, "")}
                )
                copies.setdefault(email_id, sizes.get(uid, message.size if message else 0))
        if self.retrying:
            # Messages the owner asked to try again: their old quarantine rows go, new ones replace them.
            session.execute(
                delete(MailQuarantine).where(MailQuarantine.folder_id == self.folder_id, MailQuarantine.uid.in_(listed))
            )
        added = self._add_copies(session, copies)
        insert_ignore(session, EmailLocation, locations, ["folder_id", "uid"])
        insert_ignore(session, MailQuarantine, quarantined, ["folder_id", "uid"])
        if added:
            session.execute(
                update(Mailbox)
                .where(Mailbox.id == self.mailbox_id)
                .values(messages_stored=Mailbox.messages_stored + added)
            )
        done.messages, done.new, done.quarantined = len(listed), len(inserted), len(quarantined)
        return done

    def _staff(self, session: Session) -> frozenset[str]:
        """Staff's own addresses, read once per folder sync (they do not change while it runs)."""
        if self.staff is None:
            self.staff = staff_addresses(session)
        return self.staff

    def _add_copies(self, session: Session, copies: dict[int, int]) -> int:
        """Record that these e-mails came from this mailbox (the privacy rule's anchor); how many are new
        here. New copies get their never-share / staff-only state at once, before anyone can look."""
        rows = [{"mailbox_id": self.mailbox_id, "email_id": e, "size": size} for e, size in copies.items()]
        new = [
            email_id
            for (email_id,) in insert_ignore_returning(
                session, MailboxEmail, rows, ["mailbox_id", "email_id"], ["email_id"]
            )
        ]
        refresh_withheld(session, self.mailbox_id, new, staff=self._staff(session))
        return len(new)

    def _link_new(self, session: Session, emails: dict[int, ParsedMessage]) -> int:
        """Participants → contacts/relations → projects, for e-mails stored for the first time.

        Returns how many of them were linked to a relation.
        """
        if not emails:
            return 0
        matches = match_addresses(
            session, {key for m in emails.values() for _r, key, _n in m.participants}, staff=self._staff(session)
        )
        participants, attachments, relation_links = [], [], []
        relations_of: dict[int, set[int]] = {}
        for email_id, message in emails.items():
            for role, key, name in message.participants:
                match = matches.get(key)
                participants.append(
                    {
                        "email_id": email_id,
                        "role": role,
                        "address_key": key,
                        "name": name,
                        "contact_id": match.contact_id if match else None,
                        "relation_id": match.relation_id if match else None,
                    }
                )
                if match:
                    relations_of.setdefault(email_id, set()).add(match.relation_id)
            for attachment in message.attachments:
                attachments.append(
                    {
                        "email_id": email_id,
                        "filename": attachment.filename,
                        "content_type": attachment.content_type,
                        "size": attachment.size,
                        "sha256": attachment.sha256,
                        "pack": attachment.pack,
                        "offset": attachment.offset,
                    }
                )
        for email_id, relation_ids in relations_of.items():
            relation_links += [{"email_id": email_id, "relation_id": r} for r in relation_ids]
        # Core inserts (COPY on PostgreSQL): the ORM's bulk path costs more per row than the database.
        bulk_insert(session, EmailParticipant, participants)
        bulk_insert(session, Attachment, attachments)
        insert_ignore(session, EmailRelation, relation_links, ["email_id", "relation_id"])
        clues = {
            email_id: ProjectClues.of(
                message.subject,
                message.thread_key,
                message.in_reply_to,
                message.references,
                relations_of.get(email_id, ()),
                # A project's one-off contact (never staff's own address).
                {key for _r, key, _n in message.participants} - self._staff(session),
            )
            for email_id, message in emails.items()
        }
        project_links = [
            {"email_id": email_id, "project_id": project_id, "how": how}
            for email_id, project_id, how in match_projects(session, clues, known=shareable_or_in(self.mailbox_id))
        ]
        insert_ignore(session, EmailProject, project_links, ["email_id", "project_id"])
        announce(session, EmailsLinked.of(relation_links + project_links))
        return len(relations_of)


def _announce_stored(session: Session, emails: dict[int, ParsedMessage]) -> None:
    """Tell listeners (campaigns: bounces, complaints, replies) about new reports and answers."""
    items = tuple(
        StoredEmail(
            email_id=email_id,
            kind=m.kind,
            details=m.details,
            recipients=tuple(key for role, key, _name in m.participants if role != "from"),
            in_reply_to=tuple(filter(None, [m.in_reply_to, *m.references])),
        )
        for email_id, m in emails.items()
        if m.kind in ("bounce", "complaint") or (not m.kind and (m.in_reply_to or m.references))
    )
    if items:
        announce(session, EmailsStored(items))


def _insert_emails(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert-or-ignore e-mails; message_key → id of those this transaction really inserted.

    RETURNING tells which rows were new, where a look-up before the insert cannot: two mailboxes
    may sync the same message at the same moment.
    """
    return dict(insert_ignore_returning(session, Email, rows, ["message_key"], ["message_key", "id"]))


def _first_line(exc: BaseException) -> str:
    """The database's own words, without the statement and its parameters (the whole message)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines() or [type(cause).__name__]
    return lines[0][:300]


def _recently(moment: Any, seconds: float) -> bool:
    if moment is None:
        return False
    from datetime import UTC, timedelta

    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return bool(utcnow() - aware < timedelta(seconds=seconds))


def _email_row(m: ParsedMessage) -> dict[str, Any]:
    return {
        "message_key": m.message_key[:500],
        "message_id": m.message_id[:500],
        "in_reply_to": m.in_reply_to[:500],
        "references": " ".join(m.references),
        "thread_key": m.thread_key[:500],
        "subject": m.subject,
        "from_address": m.from_address,
        "from_name": m.from_name,
        "sent_at": m.sent_at,
        "text_body": m.text_body,
        "html_body": m.html_body,
        "size": m.size,
        "raw_sha256": m.raw_sha256,
        "raw_pack": m.raw_pack,
        "raw_offset": m.raw_offset,
        "raw_length": m.raw_length,
        "has_attachments": bool(m.attachments),
        "problems": "\n".join(m.problems),
        "kind": m.kind,
        "details": json.dumps(m.details, default=str) if m.details else "",
        "stored_at": utcnow(),
    }


def _date_from_arrival(parsed: dict[int, Parsed], headers: dict[int, Any]) -> None:
    """A message without a readable Date is dated by its arrival on the server (INTERNALDATE)."""
    for uid, message in parsed.items():
        if not isinstance(message, ParsedMessage) or message.sent_at is not None:
            continue
        arrived = headers.get(uid, {}).get(b"INTERNALDATE")
        if isinstance(arrived, datetime):
            # imapclient gives the server's time as local naive time (normalise_times): astimezone
            # reads a naive value as local, an aware one as it is.
            message.sent_at = arrived.astimezone(UTC)
            message.problems.append("dated by its arrival on the mail server")


def _flags(values: Iterable[Any]) -> str:
    return " ".join(v.decode() if isinstance(v, bytes) else str(v) for v in values)[:500]


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _by_size(uids: list[int], sizes: dict[int, int]) -> Iterable[list[int]]:
    """Groups of UIDs whose bodies together stay under BODY_FETCH_BYTES (bounded memory)."""
    group: list[int] = []
    total = 0
    for uid in uids:
        size = min(sizes.get(uid, 0), MAX_MESSAGE_BYTES)
        if group and total + size > BODY_FETCH_BYTES:
            yield group
            group, total = [], 0
        group.append(uid)
        total += size
    if group:
        yield group
