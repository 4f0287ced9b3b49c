"""Who may see an e-mail, and why: the one visibility rule for mail, and the owner's switches.

A user sees an e-mail
- through a mailbox they may see: their own personal mailboxes, and shared mailboxes (all staff); or
- through a link to a relation or project they may see, **if a mailbox it came from shares it**: a
  shared mailbox always does; a personal mailbox only when its owner chose "colleagues who may see
  the matched relation or project" (``Mailbox.sharing``), the owner did not mark the e-mail private,
  and it is not withheld: none of its addresses is on the mailbox's never-share list, and it did not
  go among staff only.

Whoever steers matching (a contact with a correspondent's address, a relation's mail domain, a reply
quoting a Message-ID) can at most put mail on a relation; whether anyone else reads it stays the
mailbox owner's choice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select, update
from sqlalchemy.orm import Session

from hub.crm.access import asked_per_row, project_visible, relation_visible
from hub.crm.relations import FREE_MAIL_DOMAINS
from hub.i18n import _
from hub.models import (
    Email,
    EmailParticipant,
    EmailProject,
    EmailRelation,
    Mailbox,
    MailboxEmail,
    MailSharing,
    Project,
    Relation,
    User,
)


def _in_own_or_shared_mailbox(user: User) -> ColumnElement[bool]:
    return asked_per_row(
        select(MailboxEmail.mailbox_id).where(
            MailboxEmail.email_id == Email.id,
            MailboxEmail.mailbox_id == Mailbox.id,
            or_(Mailbox.owner_id == user.id, Mailbox.owner_id.is_(None)),
        )
    )


def shared_with_colleagues() -> ColumnElement[bool]:
    """SQL: some mailbox the e-mail came from lets colleagues see it through its links."""
    return asked_per_row(
        select(MailboxEmail.mailbox_id).where(
            MailboxEmail.email_id == Email.id,
            MailboxEmail.mailbox_id == Mailbox.id,
            or_(
                Mailbox.owner_id.is_(None),
                and_(
                    Mailbox.sharing == MailSharing.colleagues.value,
                    MailboxEmail.private.is_(False),
                    MailboxEmail.withheld.is_(False),
                ),
            ),
        )
    )


def email_visible(user: User | None) -> ColumnElement[bool]:
    """SQL condition: ``Email`` rows ``user`` may see (see the module's rule)."""
    if user is None or not user.is_active:
        return false()
    # Each asked per row (asked_per_row): a list shows a page of e-mails, and PostgreSQL otherwise
    # worked out the rule for every linked project and relation first.
    linked_project = asked_per_row(
        select(EmailProject.project_id).where(
            EmailProject.email_id == Email.id, EmailProject.project_id == Project.id, project_visible(user)
        )
    )
    linked_relation = asked_per_row(
        select(EmailRelation.relation_id).where(
            EmailRelation.email_id == Email.id, EmailRelation.relation_id == Relation.id, relation_visible(user)
        )
    )
    return or_(
        _in_own_or_shared_mailbox(user),
        and_(shared_with_colleagues(), or_(linked_project, linked_relation)),
    )


def shareable_or_in(mailbox_id: int) -> ColumnElement[bool]:
    """SQL: an e-mail that may steer where mail of ``mailbox_id`` goes (thread matching): one shared
    with colleagues, or one from that same mailbox. A private message elsewhere steers nothing, so a
    reply cannot reveal where someone's private mail was filed."""
    return or_(
        shared_with_colleagues(),
        exists().where(MailboxEmail.email_id == Email.id, MailboxEmail.mailbox_id == mailbox_id),
    )


# --- staff addresses -------------------------------------------------------------------------------


def staff_addresses(session: Session) -> frozenset[str]:
    """Every address that is staff's own: users' e-mail addresses and mailbox log-ins that are
    addresses. Such addresses never count as contacts, whoever adds them to a relation."""
    users = session.scalars(select(func.lower(User.email)))
    logins = session.scalars(select(func.lower(Mailbox.username)).where(Mailbox.username.like("%@%")))
    return frozenset(a.strip() for a in [*users, *logins] if a)


def staff_domains(addresses: Iterable[str]) -> frozenset[str]:
    """The company's own mail domains (free-mail domains of staff excepted): never a relation's domain."""
    domains = {a.rsplit("@", 1)[1] for a in addresses if "@" in a}
    return frozenset(domains - FREE_MAIL_DOMAINS)


# --- withheld: never-share list and staff-only mail --------------------------------------------------


@dataclass(frozen=True)
class NeverShare:
    addresses: frozenset[str]
    domains: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> NeverShare:
        """One entry per line (commas and spaces also separate): an address, or a domain (``@`` optional)."""
        addresses, domains = set(), set()
        for item in text.replace(",", "\n").split():
            entry = item.strip().casefold()
            if not entry:
                continue
            if "@" in entry.strip("@"):
                addresses.add(entry)
            else:
                domains.add(entry.strip("@").strip("."))
        return cls(frozenset(addresses), frozenset(domains))


def invalid_never_share(text: str) -> list[str]:
    """Entries that are neither an address nor a domain (shown to the owner)."""
    entries = NeverShare.parse(text)
    return sorted(
        e for e in [*entries.addresses, *entries.domains] if " " in e or "." not in e.rsplit("@", 1)[-1] or len(e) > 254
    )


def _ends_with(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _withheld_clause(never: NeverShare, staff: frozenset[str]) -> ColumnElement[bool]:
    participant = EmailParticipant
    listed: list[ColumnElement[bool]] = []
    if never.addresses:
        listed.append(participant.address_key.in_(never.addresses))
    for domain in never.domains:
        # The domain itself and its subdomains.
        listed.append(participant.address_key.like(_ends_with("@" + domain), escape="\\"))
        listed.append(participant.address_key.like(_ends_with("." + domain), escape="\\"))
    on_list = exists().where(participant.email_id == MailboxEmail.email_id, or_(*listed)) if listed else false()
    outsider = exists().where(
        participant.email_id == MailboxEmail.email_id,
        participant.address_key.notin_(staff) if staff else participant.address_key.is_not(None),
    )
    return or_(on_list, ~outsider)


def refresh_withheld(
    session: Session,
    mailbox_id: int,
    email_ids: Iterable[int] | None = None,
    *,
    staff: frozenset[str] | None = None,
) -> None:
    """Recompute ``withheld`` for the mailbox's e-mails (all, or ``email_ids``): after a sync batch
    stored them, and whenever the owner changes the never-share list. ``staff``: the staff addresses,
    if the caller has them already (a sync reads them once)."""
    mailbox = session.get_one(Mailbox, mailbox_id)
    staff = staff_addresses(session) if staff is None else staff
    clause = _withheld_clause(NeverShare.parse(mailbox.never_share), staff)
    statement = update(MailboxEmail).where(MailboxEmail.mailbox_id == mailbox_id)
    if email_ids is not None:
        ids = list(email_ids)
        if not ids:
            return
        for start in range(0, len(ids), 500):
            session.execute(
                statement.where(MailboxEmail.email_id.in_(ids[start : start + 500]))
                .values(withheld=clause)
                .execution_options(synchronize_session=False)
            )
        return
    session.execute(statement.values(withheld=clause).execution_options(synchronize_session=False))


# --- the owner's private switch and the "who can see this" explanation --------------------------------


def own_copies(session: Session, user: User, email: Email) -> list[tuple[Mailbox, MailboxEmail]]:
    """The user's personal mailboxes the e-mail came from, with their rows."""
    rows = session.execute(
        select(Mailbox, MailboxEmail)
        .join(MailboxEmail, MailboxEmail.mailbox_id == Mailbox.id)
        .where(MailboxEmail.email_id == email.id, Mailbox.owner_id == user.id)
        .order_by(Mailbox.name)
    )
    return [(box, row) for box, row in rows.tuples()]


def set_private(session: Session, user: User, email: Email, private: bool) -> bool:
    """Mark the e-mail private (or not) in the user's own mailboxes; False if none holds it."""
    copies = own_copies(session, user, email)
    for _box, row in copies:
        row.private = private
    return bool(copies)


def who_can_see(session: Session, user: User, email: Email) -> list[str]:
    """Plain words for the e-mail page: who can see this e-mail and why (for the owner of a copy)."""
    lines: list[str] = []
    copies = session.execute(
        select(Mailbox, MailboxEmail)
        .join(MailboxEmail, MailboxEmail.mailbox_id == Mailbox.id)
        .where(MailboxEmail.email_id == email.id)
        .order_by(Mailbox.owner_id.is_(None).desc(), Mailbox.name)
    ).tuples()
    shared_via_links = False
    for box, row in copies:
        if box.owner_id is None:
            lines.append(_("All staff: it is in the shared mailbox %(name)s.", name=box.name))
            shared_via_links = True
            continue
        if box.owner_id != user.id:
            continue  # another person's copy: not this reader's business
        lines.append(_("You: it is in your mailbox %(name)s.", name=box.name))
        if box.sharing != MailSharing.colleagues.value:
            lines.append(_("Your mailbox %(name)s shares nothing with colleagues.", name=box.name))
        elif row.private:
            lines.append(_("You marked this e-mail private: colleagues do not see your copy."))
        elif row.withheld:
            lines.append(_("Not shared: an address in it is on your never-share list, or it went among staff only."))
        else:
            shared_via_links = True
    if shared_via_links:
        for kind, name in _links(session, user, email):
            lines.append(_("Colleagues who may see %(kind)s %(name)s.", kind=kind, name=name))
    return lines


def _links(session: Session, user: User, email: Email) -> list[tuple[str, str]]:
    """The relations and projects it is linked to that the reader may see (a hidden one stays hidden,
    even from the mail's owner)."""
    relations = session.scalars(
        select(Relation.name)
        .join(EmailRelation, EmailRelation.relation_id == Relation.id)
        .where(EmailRelation.email_id == email.id, relation_visible(user))
    )
    projects = session.scalars(
        select(Project.name)
        .join(EmailProject, EmailProject.project_id == Project.id)
        .where(EmailProject.email_id == email.id, project_visible(user))
    )
    return [(_("relation"), n) for n in relations] + [(_("project"), n) for n in projects]
