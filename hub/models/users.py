"""Staff users, user groups, API tokens and the login-failure log used for rate limiting."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.models.base import Base, Timestamps, utcnow

group_members = Table(
    "group_member",
    Base.metadata,
    Column("group_id", ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class User(Timestamps, Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(300))
    is_admin: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    # None: follow the browser's Accept-Language.
    language: Mapped[str | None] = mapped_column(String(5), default=None)
    # Part of the id a login session stores (get_id): raising it ends every session of the user
    # (logout, password change), also a copied cookie.
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")

    groups: Mapped[list[UserGroup]] = relationship(secondary=group_members, back_populates="members")

    # Flask-Login's protocol, kept here so the web layer needs no wrapper class.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}.{self.session_epoch or 0}"


class UserGroup(Timestamps, Base):
    __tablename__ = "user_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)

    members: Mapped[list[User]] = relationship(secondary=group_members, back_populates="groups", order_by="User.name")


class TokenScope(enum.StrEnum):
    """What an API token may do: read only (GET), or read and write (every method)."""

    read = "read"
    write = "write"


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    # Only a SHA-256 of the token is stored; the token itself is shown once at creation. The token
    # carries 256 random bits, so a fast hash is enough: there is nothing to guess a password from.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    # The token's first characters, so its owner can tell which one is which without the token.
    prefix: Mapped[str] = mapped_column(String(16), default="")
    # A plain string (not an Enum column): new scopes need no migration of a CHECK constraint.
    scope: Mapped[str] = mapped_column(String(10), default=TokenScope.write.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship()


class LoginFailure(Base):
    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_email_at", "email", "at"), Index("ix_login_failure_ip_at", "ip", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
