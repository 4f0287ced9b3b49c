"""Tags: short labels staff put on relations and contacts ("trade fair 2026", "reseller"), to find
them again and to select target groups by."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, Timestamps


class Tag(Timestamps, Base):
    """A tag. ``name`` as typed (first spelling wins); ``name_key`` the case- and accent-folded name
    (hub.text.fold), unique: "Beurs", "beurs" and "Beürs" are one tag, never three."""

    __tablename__ = "tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    name_key: Mapped[str] = mapped_column(String(60), unique=True)
    # "#rrggbb" or "" (the default look).
    colour: Mapped[str] = mapped_column(String(7), default="", server_default="")


# Deleting a relation, contact or tag removes its links (the database cascades; no orphan rows).
relation_tags = Table(
    "relation_tag",
    Base.metadata,
    Column("relation_id", ForeignKey("relation.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True),
)
contact_tags = Table(
    "contact_tag",
    Base.metadata,
    Column("contact_id", ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True),
)
