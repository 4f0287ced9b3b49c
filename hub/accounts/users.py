"""Creating and changing staff users and groups; authenticating by password or API token."""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from hub.accounts.passwords import hash_password, verify_password
from hub.errors import NotFound, ValidationError
from hub.i18n import _
from hub.models import ApiToken, LoginFailure, User, UserGroup
from hub.models.base import utcnow
from hub.models.users import TokenScope

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8


def normalise_email(email: str) -> str:
    return email.strip().lower()


@dataclass
class UserInput:
    email: str
    name: str
    password: str | None = None
    is_admin: bool = False
    is_active: bool = True
    language: str | None = None


def _validate_user(session: Session, data: UserInput, user: User | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    email = normalise_email(data.email)
    if not EMAIL_RE.match(email):
        errors["email"] = _("Enter a valid e-mail address.")
    else:
        clash = session.scalar(select(User.id).where(User.email == email))
        if clash is not None and (user is None or clash != user.id):
            errors["email"] = _("A user with this e-mail address already exists.")
    if user is None and not data.password:
        errors["password"] = _("A password is required.")
    if data.password is not None and data.password and len(data.password) < MIN_PASSWORD:
        errors["password"] = _("The password must be at least %(n)s characters.", n=MIN_PASSWORD)
    if data.language not in (None, "", "nl", "en"):
        errors["language"] = _("Choose Dutch or English.")
    return errors


def create_user(session: Session, data: UserInput) -> User:
    errors = _validate_user(session, data, None)
    if errors:
        raise ValidationError(errors)
    user = User(
        email=normalise_email(data.email),
        name=data.name.strip() or normalise_email(data.email).split("@")[0],
        password_hash=hash_password(data.password or ""),
        is_admin=data.is_admin,
        is_active=data.is_active,
        language=data.language or None,
    )
    session.add(user)
    session.flush()
    return user


def update_user(session: Session, user: User, data: UserInput, *, acting: User | None = None) -> User:
    """Change a user. An admin cannot take away their own admin rights or account: nobody would be
    left to undo it."""
    errors = _validate_user(session, data, user)
    if acting is not None and acting.id == user.id:
        if not data.is_admin and user.is_admin:
            errors["is_admin"] = _("You cannot take away your own admin rights.")
        if not data.is_active:
            errors["is_active"] = _("You cannot deactivate your own account.")
    if errors:
        raise ValidationError(errors)
    user.email = normalise_email(data.email)
    user.name = data.name.strip() or user.name
    user.is_admin = data.is_admin
    user.is_active = data.is_active
    user.language = data.language or None
    if data.password:
        user.password_hash = hash_password(data.password)
        end_sessions(session, user)
    session.flush()
    return user


def end_sessions(session: Session, user: User) -> None:
    """End every login session of ``user`` (logout, password change): the session epoch each one
    carries (``User.get_id``) is raised, so every cookie made before, a copied one too, stops
    working. A session that should go on logs in again afterwards."""
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(session_epoch=User.session_epoch + 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(user, ["session_epoch"])


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """The user's own password change: the current one must be right; every session ends."""
    if not verify_password(user.password_hash, current):
        raise ValidationError(_("The current password is wrong."), field="current_password")
    if len(new) < MIN_PASSWORD:
        message = _("The password must be at least %(n)s characters.", n=MIN_PASSWORD)
        raise ValidationError(message, field="new_password")
    user.password_hash = hash_password(new)
    end_sessions(session, user)
    session.flush()


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(user_id)
    return user


def user_by_email(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFound(email)
    return user


def active_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.is_active).order_by(User.name)))


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


@functools.lru_cache(maxsize=3)
def user_list_rows(active: bool | None = None) -> Any:
    """Staff accounts as plain rows (id, name, email, is_active), only active or only deactivated
    ones when ``active`` says so: a kept statement for ``hub.paging.keyset_page(rows=True,
    kept=True)`` (GET /users), one per ``active``, built once."""
    query = select(User.id, User.name, User.email, User.is_active)
    return query if active is None else query.where(User.is_active.is_(active))


class LoginBlocked(Exception):
    """Too many failed logins for this address or from this IP address; try again later."""


def _failures_since(session: Session, column: Any, value: str, window: timedelta) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(LoginFailure).where(column == value, LoginFailure.at >= utcnow() - window)
        )
        or 0
    )


def authenticate(
    session: Session, email: str, password: str, ip: str, *, max_failures: int = 5, window_seconds: int = 900
) -> User | None:
    """Check a login; record failures and refuse further tries once there were too many.

    Limits count per e-mail address and per IP address (an IP gets more room: offices share one).
    Raises :class:`LoginBlocked` while blocked; returns None for a wrong e-mail or password.
    """
    email = normalise_email(email)
    window = timedelta(seconds=window_seconds)
    if (
        _failures_since(session, LoginFailure.email, email, window) >= max_failures
        or _failures_since(session, LoginFailure.ip, ip, window) >= max_failures * 4
    ):
        raise LoginBlocked()
    user = session.scalar(select(User).where(User.email == email))
    # A password is hashed whether or not the account exists, so the answer takes as long for an
    # unknown address as for a known one and does not tell which addresses have accounts.
    stored = user.password_hash if user is not None else _dummy_hash()
    password_ok = verify_password(stored, password)
    if user is None or not user.is_active or not password_ok:
        session.add(LoginFailure(email=email, ip=ip))
        return None
    session.execute(delete(LoginFailure).where(LoginFailure.email == email))
    return user


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password, made like real ones: what an unknown login is checked against."""
    return hash_password(secrets.token_urlsafe(16))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


MAX_TOKEN_NAME = 120


def create_token(session: Session, user: User, name: str = "", *, scope: str = TokenScope.write.value) -> str:
    """Create an API token for ``user``; the token is returned once and stored only as a hash.

    ``scope``: "write" (every method) or "read" (GET only; other methods answer 403).
    """
    name = name.strip()
    if len(name) > MAX_TOKEN_NAME:
        raise ValidationError(_("At most %(n)s characters.", n=MAX_TOKEN_NAME), field="name")
    if scope not in {s.value for s in TokenScope}:
        raise ValidationError(_("Choose read-only or read and write."), field="scope")
    token = "hub_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_token_hash(token), name=name, prefix=token[:8], scope=scope))
    session.flush()
    return token


# Built once, the token and its user as two entities of one row: every API request asks it, and a
# statement built anew with a joined eager load cost twice what running this one does. The token's
# ``user`` is set from it as loaded.
_TOKEN_AND_USER = (
    select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.token_hash == bindparam("token_hash"))
)


def token_for(session: Session, token: str) -> ApiToken | None:
    """The live token row (its user active) for a presented token; records when it was last used."""
    # The user in the same query: every API request asks this first.
    found = session.execute(_TOKEN_AND_USER, {"token_hash": _token_hash(token)}).first()
    if found is None:
        return None
    row, user = found
    if not user.is_active:
        return None
    set_committed_value(row, "user", user)
    now = utcnow()
    # Written at most once a minute, so API reads stay reads.
    if row.last_used_at is None or now - _aware(row.last_used_at) > timedelta(minutes=1):
        row.last_used_at = now
    return row


def user_for_token(session: Session, token: str) -> User | None:
    row = token_for(session, token)
    return None if row is None else row.user


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    """The user's own tokens, newest first."""
    query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    return list(session.scalars(query))


def all_tokens(session: Session) -> list[ApiToken]:
    """Every user's tokens (admins' list), newest first, each with its user."""
    query = (
        select(ApiToken).options(selectinload(ApiToken.user)).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return list(session.scalars(query))


def revoke_token(session: Session, acting: User, token_id: int) -> None:
    """Delete a token: its owner may, and admins may revoke anyone's. Someone else's token is
    :class:`NotFound`, like a token that does not exist."""
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != acting.id and not acting.is_admin):
        raise NotFound(token_id)
    session.delete(row)
    session.flush()


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def save_group(session: Session, name: str, member_ids: list[int], group: UserGroup | None = None) -> UserGroup:
    name = name.strip()
    if not name:
        raise ValidationError(_("A group needs a name."), field="name")
    clash = session.scalar(select(UserGroup.id).where(UserGroup.name == name))
    if clash is not None and (group is None or clash != group.id):
        raise ValidationError(_("A group with this name already exists."), field="name")
    if group is None:
        group = UserGroup(name=name)
        session.add(group)
    group.name = name
    group.members = list(session.scalars(select(User).where(User.id.in_(member_ids)))) if member_ids else []
    session.flush()
    return group


def get_group(session: Session, group_id: int) -> UserGroup:
    group = session.get(UserGroup, group_id)
    if group is None:
        raise NotFound(group_id)
    return group


def all_groups(session: Session, *, with_members: bool = False) -> list[UserGroup]:
    """Every group by name; ``with_members`` loads the members in one extra query (list pages)."""
    query = select(UserGroup).order_by(UserGroup.name)
    if with_members:
        query = query.options(selectinload(UserGroup.members))
    return list(session.scalars(query))


def users_and_groups(session: Session, user_ids: list[int], group_ids: list[int]) -> tuple[list[User], list[UserGroup]]:
    """The users and groups with these ids, for linking to a project or relation; unknown ids are an error."""
    users = list(session.scalars(select(User).where(User.id.in_(user_ids)))) if user_ids else []
    groups = list(session.scalars(select(UserGroup).where(UserGroup.id.in_(group_ids)))) if group_ids else []
    if len(users) != len(set(user_ids)):
        raise ValidationError(_("Choose existing users."), field="user_ids")
    if len(groups) != len(set(group_ids)):
        raise ValidationError(_("Choose existing groups."), field="group_ids")
    return users, groups
