"""Relations, contacts, CRM projects and what hangs off a project (activities, documents)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Column,
    Enum,
    ForeignKey,
    Index,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.models.base import Base, Timestamps, utcnow
from hub.models.mail import Email
from hub.models.tags import Tag
from hub.models.users import User, UserGroup


class RelationKind(enum.StrEnum):
    company = "company"
    person = "person"


class RelationStatus(enum.StrEnum):
    lead = "lead"
    prospect = "prospect"
    customer = "customer"
    inactive = "inactive"


class ChoiceField(enum.StrEnum):
    """The dropdowns on a CRM project whose choices the company defines itself."""

    type = "type"
    status = "status"
    chance = "chance"
    free_choice_1 = "free_choice_1"
    free_choice_2 = "free_choice_2"
    free_choice_3 = "free_choice_3"
    free_choice_4 = "free_choice_4"
    free_choice_5 = "free_choice_5"


FREE_TEXT_FIELDS = ("free_text_1", "free_text_2", "free_text_3", "free_text_4")
FREE_CHOICE_FIELDS = tuple(f for f in ChoiceField if f.value.startswith("free_choice"))


class Relation(Timestamps, Base):
    __tablename__ = "relation"
    __table_args__ = (
        Index("ix_relation_search_name", "search_name"),
        Index("ix_relation_updated_at", "updated_at"),
        Index("ix_relation_city", "city"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RelationKind] = mapped_column(Enum(RelationKind, native_enum=False, length=20))
    name: Mapped[str] = mapped_column(String(200), index=True)
    # Lower-cased, accent-folded name: search uses it so "cafe" finds "Café".
    search_name: Mapped[str] = mapped_column(String(200))
    street: Mapped[str] = mapped_column(String(200), default="")
    postcode: Mapped[str] = mapped_column(String(20), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    country: Mapped[str] = mapped_column(String(2), default="NL")
    website: Mapped[str] = mapped_column(String(300), default="")
    coc_number: Mapped[str] = mapped_column(String(20), default="")
    vat_number: Mapped[str] = mapped_column(String(20), default="")
    status: Mapped[RelationStatus] = mapped_column(
        Enum(RelationStatus, native_enum=False, length=20), default=RelationStatus.lead, index=True
    )
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    # The company's own mail domain ("rel1.example.nl"): mail from it matches this relation when no
    # contact does. Never a free-mail domain (validated in the service).
    domain: Mapped[str] = mapped_column(String(253), default="", index=True)
    # Raised by every save (hub.crm.access.claim_version): a save based on an older one is refused.
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    owner: Mapped[User | None] = relationship()
    # Deleting a relation deletes its contacts (the database cascades the ones not loaded); without
    # this the ORM would set their relation_id to NULL and the delete would fail.
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="relation", order_by="Contact.name", cascade="save-update, merge, delete", passive_deletes=True
    )
    emails: Mapped[list[EmailAddress]] = relationship(
        primaryjoin="and_(EmailAddress.relation_id == Relation.id, EmailAddress.contact_id.is_(None))",
        viewonly=True,
        order_by="EmailAddress.id",
    )
    phones: Mapped[list[PhoneNumber]] = relationship(
        primaryjoin="and_(PhoneNumber.relation_id == Relation.id, PhoneNumber.contact_id.is_(None))",
        viewonly=True,
        order_by="PhoneNumber.id",
    )
    linked_users: Mapped[list[User]] = relationship(secondary="relation_user", order_by="User.name")
    linked_groups: Mapped[list[UserGroup]] = relationship(secondary="relation_group", order_by="UserGroup.name")
    # Read-only here: hub.crm.tags adds and removes the links.
    tags: Mapped[list[Tag]] = relationship(secondary="relation_tag", order_by="Tag.name_key", viewonly=True)


class Contact(Timestamps, Base):
    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(primary_key=True)
    relation_id: Mapped[int] = mapped_column(ForeignKey("relation.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    function: Mapped[str] = mapped_column(String(200), default="")
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    # Marketing consent (AVG/GDPR): whether, how ("web form", "import", "by phone") and when.
    marketing_consent: Mapped[bool] = mapped_column(default=False, server_default=false())
    marketing_consent_source: Mapped[str] = mapped_column(String(200), default="", server_default="")
    marketing_consent_at: Mapped[datetime | None] = mapped_column(default=None)

    relation: Mapped[Relation] = relationship(back_populates="contacts")
    emails: Mapped[list[EmailAddress]] = relationship(
        back_populates="contact", order_by="EmailAddress.id", cascade="all, delete-orphan"
    )
    phones: Mapped[list[PhoneNumber]] = relationship(
        back_populates="contact", order_by="PhoneNumber.id", cascade="all, delete-orphan"
    )
    tags: Mapped[list[Tag]] = relationship(secondary="contact_tag", order_by="Tag.name_key", viewonly=True)


class EmailAddress(Base):
    """An e-mail address of a contact (contact_id set) or of the relation itself.

    ``address_key`` is the case-folded address: the one column matching looks up.
    """

    __tablename__ = "email_address"
    __table_args__ = (
        UniqueConstraint("relation_id", "contact_id", "address_key", name="uq_email_address_owner"),
        Index("ix_email_address_key", "address_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    relation_id: Mapped[int] = mapped_column(ForeignKey("relation.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(254))
    address_key: Mapped[str] = mapped_column(String(254))

    contact: Mapped[Contact | None] = relationship(back_populates="emails")


class PhoneNumber(Base):
    """A phone number of a contact or of the relation; ``e164`` is what caller-ID matching uses."""

    __tablename__ = "phone_number"
    __table_args__ = (Index("ix_phone_number_e164", "e164"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    relation_id: Mapped[int] = mapped_column(ForeignKey("relation.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(40))
    e164: Mapped[str] = mapped_column(String(20), default="")
    label: Mapped[str] = mapped_column(String(40), default="")

    contact: Mapped[Contact | None] = relationship(back_populates="phones")


class Choice(Base):
    """One choice of a company-defined dropdown; ordered by ``sort_order`` in the dropdown."""

    __tablename__ = "choice"
    __table_args__ = (UniqueConstraint("field", "name", name="uq_choice_field_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    field: Mapped[ChoiceField] = mapped_column(Enum(ChoiceField, native_enum=False, length=20), index=True)
    name: Mapped[str] = mapped_column(String(120))
    sort_order: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)


class FieldLabel(Base):
    """The company's own label for a free field (free_text_1..4, free_choice_1..5)."""

    __tablename__ = "field_label"

    field: Mapped[str] = mapped_column(String(20), primary_key=True)
    label: Mapped[str] = mapped_column(String(120))


project_contacts = Table(
    "project_contact",
    Base.metadata,
    Column("project_id", ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("contact_id", ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, index=True),
)
project_users = Table(
    "project_user",
    Base.metadata,
    Column("project_id", ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True),
)
project_groups = Table(
    "project_group",
    Base.metadata,
    Column("project_id", ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True, index=True),
)
relation_users = Table(
    "relation_user",
    Base.metadata,
    Column("relation_id", ForeignKey("relation.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True),
)
relation_groups = Table(
    "relation_group",
    Base.metadata,
    Column("relation_id", ForeignKey("relation.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True, index=True),
)


def _choice_fk(name: str) -> Mapped[int | None]:
    return mapped_column(ForeignKey("choice.id", ondelete="RESTRICT", name=f"fk_project_{name}_choice"), index=True)


class Project(Timestamps, Base):
    """A CRM project: the heart of hub. Its tabs collect everything that happens around it."""

    __tablename__ = "project"
    __table_args__ = (
        Index("ix_project_relation_updated", "relation_id", "updated_at"),
        # The project list's default order (most recently changed first) and its other sort keys.
        Index("ix_project_updated_at", "updated_at"),
        Index("ix_project_value", "value"),
        CheckConstraint("end_date IS NULL OR start_date IS NULL OR end_date >= start_date", name="dates_in_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    relation_id: Mapped[int] = mapped_column(ForeignKey("relation.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    start_date: Mapped[date | None] = mapped_column(index=True)
    end_date: Mapped[date | None] = mapped_column(index=True)
    end_date_expected: Mapped[bool] = mapped_column(default=False)
    responsible_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    type_id: Mapped[int | None] = _choice_fk("type")
    status_id: Mapped[int | None] = _choice_fk("status")
    chance_id: Mapped[int | None] = _choice_fk("chance")
    value: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    free_text_1: Mapped[str] = mapped_column(String(500), default="")
    free_text_2: Mapped[str] = mapped_column(String(500), default="")
    free_text_3: Mapped[str] = mapped_column(String(500), default="")
    free_text_4: Mapped[str] = mapped_column(String(500), default="")
    free_choice_1_id: Mapped[int | None] = _choice_fk("free_choice_1")
    free_choice_2_id: Mapped[int | None] = _choice_fk("free_choice_2")
    free_choice_3_id: Mapped[int | None] = _choice_fk("free_choice_3")
    free_choice_4_id: Mapped[int | None] = _choice_fk("free_choice_4")
    free_choice_5_id: Mapped[int | None] = _choice_fk("free_choice_5")
    # A one-off contact typed on the project and not saved on the relation.
    one_off_contact_name: Mapped[str] = mapped_column(String(200), default="")
    one_off_contact_email: Mapped[str] = mapped_column(String(254), default="")
    one_off_contact_phone: Mapped[str] = mapped_column(String(40), default="")
    notepad: Mapped[str] = mapped_column(Text, default="")
    notepad_updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    notepad_updated_at: Mapped[datetime | None] = mapped_column(default=None)
    # Open until closed; "the relation's single open project" is what mail matching falls back to.
    closed: Mapped[bool] = mapped_column(default=False, index=True)
    # The project's fields and its notepad are edited apart, each with its own version, so saving the
    # notepad does not make an open project form stale (and the other way round).
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    notepad_version: Mapped[int] = mapped_column(default=1, server_default="1")

    relation: Mapped[Relation] = relationship()
    responsible_user: Mapped[User | None] = relationship(foreign_keys=[responsible_user_id])
    notepad_updated_by: Mapped[User | None] = relationship(foreign_keys=[notepad_updated_by_id])
    contacts: Mapped[list[Contact]] = relationship(secondary=project_contacts, order_by="Contact.name")
    linked_users: Mapped[list[User]] = relationship(secondary=project_users, order_by="User.name")
    linked_groups: Mapped[list[UserGroup]] = relationship(secondary=project_groups, order_by="UserGroup.name")
    type: Mapped[Choice | None] = relationship(foreign_keys=[type_id])
    status: Mapped[Choice | None] = relationship(foreign_keys=[status_id])
    chance: Mapped[Choice | None] = relationship(foreign_keys=[chance_id])
    free_choice_1: Mapped[Choice | None] = relationship(foreign_keys=[free_choice_1_id])
    free_choice_2: Mapped[Choice | None] = relationship(foreign_keys=[free_choice_2_id])
    free_choice_3: Mapped[Choice | None] = relationship(foreign_keys=[free_choice_3_id])
    free_choice_4: Mapped[Choice | None] = relationship(foreign_keys=[free_choice_4_id])
    free_choice_5: Mapped[Choice | None] = relationship(foreign_keys=[free_choice_5_id])


class Activity(Timestamps, Base):
    """A to-do on a project, assigned to a user."""

    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_assignee_open", "assigned_user_id", "done", "due_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    due_date: Mapped[date | None] = mapped_column()
    done: Mapped[bool] = mapped_column(default=False)
    done_at: Mapped[datetime | None] = mapped_column(default=None)
    assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    project: Mapped[Project] = relationship()
    assigned_user: Mapped[User | None] = relationship(foreign_keys=[assigned_user_id])


class Document(Base):
    """A file uploaded to a project; the bytes live in the blob store under their SHA-256."""

    __tablename__ = "document"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120), default="application/octet-stream")
    size: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    uploaded_by: Mapped[User | None] = relationship()


# --- search (hub.crm.search) ------------------------------------------------------------------------
# PostgreSQL only: pg_trgm GIN indexes on hub_fold(column), the folded text search matches with
# LIKE '%...%' (migration 0010 creates hub_fold() and these; SQLite searches by scanning).
def _search_index(name: str, column: object) -> Index:
    return Index(
        name, func.hub_fold(column), postgresql_using="gin", postgresql_ops={"hub_fold_1": "gin_trgm_ops"}
    ).ddl_if(dialect="postgresql")


SEARCH_INDEXES = [
    _search_index(name, column)
    for name, column in (
        ("ix_search_relation_name", Relation.name),
        ("ix_search_relation_city", Relation.city),
        ("ix_search_relation_coc", Relation.coc_number),
        ("ix_search_relation_vat", Relation.vat_number),
        ("ix_search_contact_name", Contact.name),
        ("ix_search_email_address", EmailAddress.address_key),
        ("ix_search_phone_e164", PhoneNumber.e164),
        ("ix_search_project_name", Project.name),
        ("ix_search_project_free_text_1", Project.free_text_1),
        ("ix_search_project_free_text_2", Project.free_text_2),
        ("ix_search_project_free_text_3", Project.free_text_3),
        ("ix_search_project_free_text_4", Project.free_text_4),
        ("ix_search_email_subject", Email.subject),
        ("ix_search_email_from_name", Email.from_name),
        ("ix_search_email_from_address", Email.from_address),
    )
]


# PostgreSQL only: the folded name in code point order (the "C" collation), so search reads the names
# that start with the text as one range, in the order it lists them (migration 0020).
def _name_order_index(name: str, column: object) -> Index:
    folded = func.hub_fold(column)
    # The collation is the index element's COLLATE clause, rendered where postgresql_ops' text goes
    # (after the expression, keyed by the expression's key): PostgreSQL keeps an index's collation
    # beside its expression, so the expression reflected is hub_fold(name), which Alembic compares
    # equal to this one. Written into the expression (.collate("C")) it compared as another index.
    return Index(name, folded, postgresql_ops={folded.key: 'COLLATE "C"'}).ddl_if(dialect="postgresql")


SEARCH_NAME_ORDER_INDEXES = [
    _name_order_index(name, column)
    for name, column in (
        ("ix_contact_fold_name_c", Contact.name),
        ("ix_project_fold_name_c", Project.name),
        ("ix_relation_fold_name_c", Relation.name),
    )
]


# --- contact notes and visit reports (hub.crm.contact_notes) ----------------------------------------


class ContactNoteKind(enum.StrEnum):
    note = "note"  # a conversation note ("gespreksnotitie")
    visit = "visit"  # a visit report ("bedrijfsbezoek")


class ContactNote(Timestamps, Base):
    """A dated note or visit report on a contact; only its author or an admin changes it."""

    __tablename__ = "contact_note"
    __table_args__ = (Index("ix_contact_note_contact_date", "contact_id", "date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10), default=ContactNoteKind.note.value)
    date: Mapped[date] = mapped_column()
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    author: Mapped[User | None] = relationship()


class Setting(Base):
    """An installation-wide switch an admin sets on the Settings page (key → value as text)."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
