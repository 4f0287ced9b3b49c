"""Mail sync and the IDLE watcher against a real Dovecot set up to behave like the servers hub's users run
(tests/imap_variants.py): Exchange without the modern extensions, Courier/Cyrus's ``INBOX.`` namespace,
Gmail's labels and [Gmail] folders, awkward folder names, no IDLE, and folders renumbered (new UIDVALIDITY).

Folders hold more messages than one of hub's fetch batches (hub.mail.sync.BATCH) where batching matters.
"""

from __future__ import annotations

import io
import itertools
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select, update

import hub.mail.watch as watch_module
from hub.blobs import BlobStore
from hub.config import Settings
from hub.crm.importer import import_relations
from hub.crm.projects import ProjectInput, save_project
from hub.db import Database
from hub.mail.mailboxes import MailboxInput, save_mailbox
from hub.mail.read import tab_emails
from hub.mail.sync import BATCH, SyncResult, sync_mailbox
from hub.mail.watch import watch, watcher_states
from hub.models import (
    Email,
    EmailLocation,
    EmailProject,
    EmailRelation,
    Mailbox,
    MailboxEmail,
    MailFolder,
    Project,
    Relation,
    User,
)
from hub.models.base import utcnow
from tests.imap_variants import COURIER, COURIER_OLD, CYRUS, EXCHANGE, GMAIL, NO_IDLE, imap_variant
from tests.mail_server import ImapServer

MANY = BATCH + 40  # more than one fetch batch
CONTACTS = (
    b"relation,domain,contact_name,email,phone\nBakker BV,bakker.example.nl,Anna Bakker,anna@bakker.example.nl,\n"
)


def message(n: int, *, sender: str = "Anna Bakker <anna@bakker.example.nl>", to: str = "staff@hub.example") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = f"Offerte dakrenovatie {n}"
    msg["Date"] = format_datetime(datetime(2026, 10, 1, tzinfo=UTC) + timedelta(minutes=n))
    msg["Message-ID"] = f"<m{n}@bakker.example.nl>"
    msg.set_content(f"Beste,\n\nBericht {n}.\n")
    return bytes(msg)


@dataclass
class Account:
    server: ImapServer
    username: str
    mailbox_id: int

    def client(self) -> IMAPClient:
        client = IMAPClient(self.server.host, port=self.server.port, ssl=False, timeout=10)
        client.login(self.username, "imap-secret")
        return client


VARIANTS = {
    "exchange": EXCHANGE,
    "courier": COURIER,
    "courier_old": COURIER_OLD,
    "cyrus": CYRUS,
    "gmail": GMAIL,
    "no_idle": NO_IDLE,
    "dovecot": "",
}


class _Servers(dict[str, ImapServer]):
    """A server per variant, started when a test first asks for it, stopped with the module."""

    def __init__(self, stack: ExitStack) -> None:
        super().__init__()
        self.stack = stack

    def __missing__(self, variant: str) -> ImapServer:
        server = self[variant] = self.stack.enter_context(imap_variant(VARIANTS[variant]))
        return server


@pytest.fixture(scope="module")
def servers() -> Iterator[_Servers]:
    with ExitStack() as stack:
        yield _Servers(stack)


_users = itertools.count(1)


@pytest.fixture
def accounts(servers: _Servers, db: Database, settings: Settings) -> Callable[..., Account]:
    """``accounts(variant, folders="")``: a fresh account on that variant's server, with its hub mailbox."""

    def make(variant: str, folders: str = "") -> Account:
        server = servers[variant]
        username = f"user{next(_users)}"
        assert username in server.users, "out of test accounts: raise imap_variants.ACCOUNTS"
        with db.transaction() as s:
            box = save_mailbox(
                s,
                settings.secret_key,
                MailboxInput(
                    host=server.host,
                    port=server.port,
                    security="none",
                    username=username,
                    password="imap-secret",
                    folders=folders,
                    sharing="colleagues",
                ),
                allowed_hosts=settings.mail_allowed_hosts,
            )
            return Account(server, username, box.id)

    return make


def sync(db: Database, settings: Settings, account: Account) -> SyncResult:
    """The real sync of the account's mailbox; it must end well (no error recorded)."""
    result = sync_mailbox(
        db,
        BlobStore(settings.documents_dir),
        account.mailbox_id,
        secret_key=settings.secret_key,
        allowed_hosts=settings.mail_allowed_hosts,
        force=True,
    )
    assert result is not None
    with db.transaction() as s:
        assert s.get_one(Mailbox, account.mailbox_id).last_error == ""
    return result


def count(db: Database, model: type, *where: object) -> int:
    with db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


def folder_names(db: Database, account: Account) -> set[str]:
    with db.transaction() as s:
        return set(s.scalars(select(MailFolder.name).where(MailFolder.mailbox_id == account.mailbox_id)))


def locations(db: Database, account: Account, folder: str) -> int:
    return count(
        db,
        EmailLocation,
        EmailLocation.folder_id.in_(
            select(MailFolder.id).where(MailFolder.mailbox_id == account.mailbox_id, MailFolder.name == folder)
        ),
    )


def age_flag_rescan(db: Database, account: Account) -> None:
    """Let the time pass after which hub re-reads flags on a server without CONDSTORE."""
    with db.transaction() as s:
        s.execute(
            update(MailFolder)
            .where(MailFolder.mailbox_id == account.mailbox_id)
            .values(last_synced_at=utcnow() - timedelta(hours=1))
        )


@dataclass
class Crm:
    relation_id: int
    project_id: int
    user_id: int

    def project_tab(self, db: Database) -> list[int]:
        """The ids of the e-mails the project's E-mails tab lists (every page), as its user sees it."""
        with db.transaction() as s:
            user, project = s.get_one(User, self.user_id), s.get_one(Project, self.project_id)
            return [email.id for email in s.scalars(tab_emails(user, project=project))]


@pytest.fixture
def crm(db: Database, make_user: Callable[..., User]) -> Crm:
    """Bakker BV, Anna Bakker's relation, with one open project: her mail links to both."""
    import_relations(db, io.BytesIO(CONTACTS))
    user_id = make_user(admin=True).id
    with db.transaction() as s:
        bakker = s.scalars(select(Relation).where(Relation.name == "Bakker BV")).one()
        project = save_project(s, s.get_one(User, user_id), ProjectInput(relation_id=bakker.id, name="Dak"))
        return Crm(bakker.id, project.id, user_id)


def fill(client: IMAPClient, folder: str, numbers: range | list[int], **headers: str) -> None:
    for n in numbers:
        client.append(folder, message(n, **headers))


# --- 1. Exchange / Office 365: no CONDSTORE, QRESYNC, ESEARCH, ENABLE, UIDPLUS, MOVE, SPECIAL-USE, LITERAL+

MODERN = (b"CONDSTORE", b"QRESYNC", b"ESEARCH", b"ENABLE", b"UIDPLUS", b"MOVE", b"SPECIAL-USE", b"LITERAL+", b"NOTIFY")


def test_exchange_first_sync_new_mail_flags_and_mail_moved_away(
    db: Database, settings: Settings, accounts: Callable[..., Account], crm: Crm
) -> None:
    account = accounts("exchange")
    client = account.client()
    assert not set(MODERN) & set(client.capabilities())
    fill(client, "INBOX", range(MANY))
    fill(client, "Sent Items", range(1000, 1003), sender="staff@hub.example", to="anna@bakker.example.nl")

    first = sync(db, settings, account)
    # Sent mail is found by its well-known name: Exchange marks no folder \Sent.
    assert folder_names(db, account) == {"INBOX", "Sent Items"}
    assert (first.messages, first.new) == (MANY + 3, MANY + 3)
    assert len(crm.project_tab(db)) == MANY + 3

    fill(client, "INBOX", range(MANY, MANY + 5))
    assert sync(db, settings, account).new == 5

    client.select_folder("INBOX")
    uids = client.search(["ALL"])
    client.add_flags(uids[:3], [b"\\Flagged"])
    age_flag_rescan(db, account)  # without CONDSTORE, STATUS cannot tell flags changed
    sync(db, settings, account)
    with db.transaction() as s:
        flagged = s.scalar(select(func.count()).where(EmailLocation.flags.contains("\\Flagged")))
    assert flagged == 3

    # No MOVE: Outlook copies, marks deleted and expunges.
    client.copy(uids[:10], "Deleted Items")
    client.delete_messages(uids[:10])
    client.expunge()
    client.logout()
    sync(db, settings, account)
    assert locations(db, account, "INBOX") == MANY + 5 - 10
    assert count(db, Email) == MANY + 8  # kept, nothing doubled
    assert sorted(crm.project_tab(db)) == sorted(set(crm.project_tab(db)))
    again = sync(db, settings, account)
    assert (again.new, again.skipped_folders) == (0, 2)


# --- 2. Courier / Cyrus: the INBOX. namespace, "." as separator, no SPECIAL-USE


@pytest.mark.parametrize("variant", ["courier", "courier_old"])
def test_courier_namespace_finds_sent_mail_and_configured_folders(
    db: Database, settings: Settings, accounts: Callable[..., Account], variant: str
) -> None:
    account = accounts(variant)
    client = account.client()
    assert client.has_capability("NAMESPACE") == (variant == "courier")
    for folder in ("INBOX.Sent", "INBOX.Archief.2025", "INBOX.Trash"):
        client.create_folder(folder)
    fill(client, "INBOX", range(5))
    fill(client, "INBOX.Sent", range(100, 103), sender="staff@hub.example", to="anna@bakker.example.nl")
    fill(client, "INBOX.Archief.2025", range(200, 200 + MANY))

    assert sync(db, settings, account).new == 8
    assert folder_names(db, account) == {"INBOX", "INBOX.Sent"}

    # Folders as a user types them (as his mail program shows them), or as the server names them;
    # "INBOX.Archief" only holds folders (\Noselect) and is left out rather than failing the sync.
    with db.transaction() as s:
        s.get_one(Mailbox, account.mailbox_id).folders = "INBOX\nSent\nArchief/2025\nINBOX.Archief\nINBOX.Sent"
    assert sync(db, settings, account).new == MANY
    assert folder_names(db, account) == {"INBOX", "INBOX.Sent", "INBOX.Archief.2025"}
    assert locations(db, account, "INBOX.Archief.2025") == MANY
    client.logout()


def test_cyrus_lower_case_special_use_and_condstore_under_the_inbox_namespace(
    db: Database, settings: Settings, accounts: Callable[..., Account]
) -> None:
    account = accounts("cyrus")
    client = account.client()
    assert [b"\\sent" in flags for flags, _d, name in client.list_folders() if name == "INBOX.Verstuurd"] == [True]
    fill(client, "INBOX", range(20))
    fill(client, "INBOX.Verstuurd", range(100, 103), sender="staff@hub.example", to="anna@bakker.example.nl")
    assert sync(db, settings, account).new == 23
    with db.transaction() as s:
        uses = dict(s.execute(select(MailFolder.name, MailFolder.special_use)).tuples().all())
    assert uses == {"INBOX": "", "INBOX.Verstuurd": "\\Sent"}

    client.select_folder("INBOX.Verstuurd")
    client.add_flags(client.search(["ALL"])[:1], [b"\\Answered"])
    sync(db, settings, account)  # CONDSTORE: the changed flag is seen at once
    with db.transaction() as s:
        assert s.scalar(select(func.count()).where(EmailLocation.flags.contains("\\Answered"))) == 1
    client.logout()


# --- 3. Gmail: labels are folders, every message is also in [Gmail]/All Mail


def test_gmail_message_in_inbox_all_mail_and_label_is_stored_once(
    db: Database, settings: Settings, accounts: Callable[..., Account], crm: Crm
) -> None:
    account = accounts("gmail")
    client = account.client()
    client.create_folder("Klanten/Bakker")
    # As Gmail shows them: INBOX mail, mail under the label "Klanten/Bakker", sent mail, archived
    # mail (only in All Mail); every one of them is in All Mail too.
    inbox, labelled, archived = range(MANY), range(0, MANY, 3), range(1000, 1010)
    sent = range(2000, 2004)
    fill(client, "INBOX", inbox)
    fill(client, "Klanten/Bakker", labelled)
    fill(client, "[Gmail]/Sent Mail", sent, sender="staff@hub.example", to="anna@bakker.example.nl")
    fill(client, "[Gmail]/All Mail", [*inbox, *archived])
    fill(client, "[Gmail]/All Mail", sent, sender="staff@hub.example", to="anna@bakker.example.nl")

    sync(db, settings, account)
    assert folder_names(db, account) == {"INBOX", "[Gmail]/Sent Mail"}
    assert count(db, Email) == MANY + 4

    with db.transaction() as s:
        s.get_one(Mailbox, account.mailbox_id).folders = "INBOX\n[Gmail]/All Mail\nKlanten/Bakker\n[Gmail]"
    result = sync(db, settings, account)
    assert result.new == len(archived)  # the rest was known: same Message-ID and size in this mailbox
    unique = MANY + len(archived) + 4
    assert count(db, Email) == unique
    assert count(db, MailboxEmail, MailboxEmail.mailbox_id == account.mailbox_id) == unique
    assert locations(db, account, "[Gmail]/All Mail") == unique
    assert locations(db, account, "Klanten/Bakker") == len(labelled)
    tab = crm.project_tab(db)
    assert len(tab) == len(set(tab)) == unique
    client.logout()


# --- 4. Folder names: modified UTF-7, spaces, quotes, backslash, % and *, \Noselect parents, 300 folders

ODD_NAMES = ("Verzonden items", "Offertes €", "Één", 'Zeg "hoi"', "back\\slash", "100%", "ster*", "Klanten/Bakker & Zn")


def test_awkward_folder_names_among_300_folders(
    db: Database, settings: Settings, accounts: Callable[..., Account], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch_module, "POLL_SECONDS", 1)  # the folders beyond the IDLE connections
    account = accounts("dovecot")
    client = account.client()
    for n in range(300 - len(ODD_NAMES)):
        client.create_folder(f"Mappen/Map {n:03}")
    for number, name in enumerate(ODD_NAMES):
        client.create_folder(name)
        fill(client, name, range(10 * number, 10 * number + 2))
    fill(client, "Sent", range(500, 502), sender="staff@hub.example", to="anna@bakker.example.nl")
    assert len(client.list_folders()) > 300

    # "Mappen" and "Klanten" only hold folders (\Noselect): listed, not synced, no error.
    with db.transaction() as s:
        s.get_one(Mailbox, account.mailbox_id).folders = "\n".join(["INBOX", "Mappen", "Klanten", *ODD_NAMES])
    result = sync(db, settings, account)
    assert result.new == 2 * len(ODD_NAMES)
    # Stored (and shown) as the user reads them, not as the server encodes them ("Offertes &IKw-").
    assert folder_names(db, account) == {"INBOX", *ODD_NAMES}
    assert all(locations(db, account, name) == 2 for name in ODD_NAMES)
    again = sync(db, settings, account)
    assert (again.new, again.skipped_folders) == (0, len(ODD_NAMES) + 1)

    # New mail in any of them wakes the sync. A second mailbox watches only ASCII names, with NOTIFY;
    # non-ASCII ones are watched by IDLE and STATUS (Dovecot's NOTIFY misses them: hub.mail.watch).
    ascii_only = accounts("dovecot", folders="INBOX\n" + "\n".join(name for name in ODD_NAMES if name.isascii()))
    other = ascii_only.client()
    for name in ODD_NAMES:
        if name.isascii():
            other.create_folder(name)
    with watching(db, settings) as watcher:
        watcher.started(account, "watching")
        watcher.started(ascii_only, "watching")
        assert watcher.state(ascii_only).endswith("(NOTIFY)"), watcher.state(ascii_only)
        assert "(IDLE, 3 connections), polling Één, Zeg" in watcher.state(account), watcher.state(account)
        for n, name in enumerate(('Zeg "hoi"', "back\\slash", "100%", "ster*")):
            assert watcher.wakes_on_new_mail(other, name, message(900 + n)), watcher.state(ascii_only)
        for n, name in enumerate(("Offertes €", "Één", 'Zeg "hoi"')):
            assert watcher.wakes_on_new_mail(client, name, message(950 + n)), watcher.state(account)
    other.logout()

    # Without a folder list: INBOX and the folder marked \Sent, not "Verzonden items" beside it.
    with db.transaction() as s:
        s.get_one(Mailbox, account.mailbox_id).folders = ""
    assert sync(db, settings, account).new == 2
    assert {"INBOX", "Sent"} <= folder_names(db, account)
    client.logout()


# --- 5. No IDLE: the watcher polls, and says so


class Watching:
    """hub's real watcher (hub.mail.watch.watch) over the test's database; records its wakes."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.wakes: list[int] = []
        self.woken = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=watch,
            args=(db, settings.secret_key, self._on_change, self.stop),
            kwargs={"allowed_hosts": settings.mail_allowed_hosts},
            daemon=True,
        )

    def _on_change(self, mailbox_id: int) -> None:
        with self.woken:
            self.wakes.append(mailbox_id)
            self.woken.notify_all()

    @staticmethod
    def state(account: Account) -> str:
        found = watcher_states().get(account.mailbox_id)
        return found.text if found else ""

    def started(self, account: Account, state: str) -> None:
        """Wait for the catch-up wake and for the watcher's state to start with ``state``."""
        with self.woken:
            ready = self.woken.wait_for(lambda: bool(self.wakes) and self.state(account).startswith(state), 15)
        assert ready, self.state(account)

    def wakes_on_new_mail(self, client: IMAPClient, folder: str, raw: bytes) -> bool:
        with self.woken:
            seen = len(self.wakes)
        client.append(folder, raw)
        with self.woken:
            return self.woken.wait_for(lambda: len(self.wakes) > seen, 15)


@contextmanager
def watching(db: Database, settings: Settings) -> Iterator[Watching]:
    watcher = Watching(db, settings)
    watcher.thread.start()
    try:
        yield watcher
    finally:
        watcher.stop.set()
        watcher.thread.join(watch_module.STOP_SECONDS + 2 * watch_module.CHECK_SECONDS)


def test_without_idle_the_watcher_polls_and_says_so(
    db: Database,
    settings: Settings,
    accounts: Callable[..., Account],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watch_module, "POLL_SECONDS", 1)
    account = accounts("no_idle")
    client = account.client()
    assert b"IDLE" not in client.capabilities()
    with watching(db, settings) as watcher:
        watcher.started(account, "polling")
        assert watcher.state(account) == "polling INBOX, Sent every 1 s (the server does not offer IDLE)"
        for n, folder in enumerate(("INBOX", "Sent")):
            assert watcher.wakes_on_new_mail(client, folder, message(n)), watcher.state(account)
        assert watcher.state(account).startswith("polling")  # still: no "connection dropped", no reconnecting
        sync(db, settings, account)
    with db.transaction() as s:
        box = s.get_one(Mailbox, account.mailbox_id)
        assert (box.failures, box.last_error, box.failing_since) == (0, "", None)
    client.logout()


# --- 6. A folder renumbered (new UIDVALIDITY), as after a server migration


def test_recreated_folder_resyncs_without_duplicates_and_keeps_links(
    db: Database, settings: Settings, accounts: Callable[..., Account], crm: Crm
) -> None:
    account = accounts("exchange", folders="INBOX\nProjecten")
    client = account.client()
    client.create_folder("Projecten")
    without_id = [message(n).replace(f"Message-ID: <m{n}@bakker.example.nl>\n".encode(), b"") for n in range(5)]
    fill(client, "Projecten", range(5, MANY))
    assert not any(b"Message-ID" in raw for raw in without_id)
    for raw in without_id:
        client.append("Projecten", raw)
    sync(db, settings, account)
    before = client.folder_status("Projecten", [b"UIDVALIDITY"])[b"UIDVALIDITY"]
    with db.transaction() as s:
        relation_links = set(s.execute(select(EmailRelation.email_id, EmailRelation.relation_id)).tuples())
        project_links = set(s.execute(select(EmailProject.email_id, EmailProject.project_id)).tuples())
    assert len(project_links) == MANY

    # The migration tool recreates the folder and copies the mail in another order, plus one new message.
    client.delete_folder("Projecten")
    client.create_folder("Projecten")
    for raw in reversed(without_id):
        client.append("Projecten", raw)
    fill(client, "Projecten", [MANY, *range(MANY - 1, 4, -1)])
    assert client.folder_status("Projecten", [b"UIDVALIDITY"])[b"UIDVALIDITY"] != before
    client.logout()

    assert sync(db, settings, account).new == 1
    assert count(db, Email) == MANY + 1
    assert locations(db, account, "Projecten") == MANY + 1
    with db.transaction() as s:
        assert relation_links <= set(s.execute(select(EmailRelation.email_id, EmailRelation.relation_id)).tuples())
        assert project_links <= set(s.execute(select(EmailProject.email_id, EmailProject.project_id)).tuples())
    tab = crm.project_tab(db)
    assert len(tab) == len(set(tab)) == MANY + 1


def test_mailbox_moved_to_another_server_with_the_same_uidvalidity(
    db: Database, settings: Settings, accounts: Callable[..., Account], servers: _Servers, crm: Crm
) -> None:
    """A migration to another server that copies UIDVALIDITY but not the UIDs (as migration tools may):
    the UIDs of the old server must not be taken for the new one's."""
    old = accounts("dovecot")
    client = old.client()
    fill(client, "INBOX", range(MANY))
    sync(db, settings, old)
    uidvalidity = client.folder_status("INBOX", [b"UIDVALIDITY"])[b"UIDVALIDITY"]
    client.logout()
    with db.transaction() as s:  # a new password on the same server keeps every position
        box = s.get_one(Mailbox, old.mailbox_id)
        same = MailboxInput(box.host, box.port, "none", box.username, "imap-secret", sharing=box.sharing)
        save_mailbox(s, settings.secret_key, same, box, allowed_hosts=settings.mail_allowed_hosts)
    assert sync(db, settings, old).skipped_folders == 2

    new_server = servers["exchange"]
    client = IMAPClient(new_server.host, port=new_server.port, ssl=False, timeout=10)
    client.login(old.username, "imap-secret")
    fill(client, "INBOX", [MANY, *range(MANY - 1, -1, -1)])  # one new message, then the old ones in reverse
    doveadm(new_server, "mailbox", "update", "-u", old.username, "--uid-validity", str(uidvalidity), "INBOX")
    assert client.folder_status("INBOX", [b"UIDVALIDITY"])[b"UIDVALIDITY"] == uidvalidity
    with db.transaction() as s:
        box = s.get_one(Mailbox, old.mailbox_id)
        save_mailbox(
            s,
            settings.secret_key,
            MailboxInput(
                host=new_server.host,
                port=new_server.port,
                security="none",
                username=old.username,
                password=None,
                sharing=box.sharing,
            ),
            box,
            allowed_hosts=settings.mail_allowed_hosts,
        )
    moved = Account(new_server, old.username, old.mailbox_id)

    assert sync(db, settings, moved).new == 1
    assert count(db, Email) == MANY + 1
    client.select_folder("INBOX", readonly=True)
    on_server = {
        uid: data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].split(b"<")[1].split(b">")[0].decode()
        for uid, data in client.fetch(client.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]).items()
    }
    client.logout()
    with db.transaction() as s:
        stored = dict(s.execute(select(EmailLocation.uid, Email.message_id).join(Email)).tuples().all())
    assert {uid: mid.strip("<>") for uid, mid in stored.items()} == on_server  # every UID the new server's
    tab = crm.project_tab(db)
    assert len(tab) == len(set(tab)) == MANY + 1


def doveadm(server: ImapServer, *args: str) -> None:
    subprocess.run(["doveadm", "-c", str(server.root / "dovecot.conf"), *args], check=True, capture_output=True)
