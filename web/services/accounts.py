"""Orgs, users and API keys."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime

from web.errors import Conflict, InvalidInput, NotFound
from web.models import ApiKey, Org, Plan, Role, User
from web.security import hash_password, new_api_key, verify_password
from web.services import sessions

log = logging.getLogger("talkturo.accounts")
USER_ROLES = (Role.ADMIN, Role.AGENT)
KEY_ROLES = (Role.ADMIN, Role.AGENT, Role.INGEST)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1000


def parse_plan(raw: str) -> Plan:
    """A plan name, or InvalidInput listing the valid ones."""
    try:
        return Plan(raw.strip().lower())
    except ValueError:
        names = ", ".join(p.value for p in Plan)
        raise InvalidInput(f"Unknown plan {raw!r}: use one of {names}.") from None


def parse_role(raw: str, allowed: tuple[Role, ...] = USER_ROLES) -> Role:
    """A role name among ``allowed`` (a user's by default), or InvalidInput."""
    try:
        role = Role(raw.strip().lower())
    except ValueError:
        role = None
    if role not in allowed:
        names = " or ".join(r.value for r in allowed)
        raise InvalidInput(f"Unknown role {raw[:40]!r}: use {names}.")
    assert role is not None
    return role


def parse_key_role(raw: str) -> Role:
    """An API key's role name (admin, agent or ingest), or InvalidInput."""
    return parse_role(raw, KEY_ROLES)


async def create_org(name: str, plan: Plan) -> Org:
    """A new org."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("An org needs a name of 1 to 200 characters.")
    return await Org.create(name=name, plan=plan)


async def get_org(org_id: str | uuid.UUID) -> Org:
    """The org, or NotFound."""
    try:
        oid = org_id if isinstance(org_id, uuid.UUID) else uuid.UUID(org_id)
    except ValueError:
        raise NotFound(f"No org with id {org_id!r}.") from None
    org = await Org.get_or_none(id=oid)
    if org is None:
        raise NotFound(f"No org with id {org_id!r}.")
    return org


async def create_user(org: Org, email: str, password: str, role: Role) -> User:
    """A new dashboard user; emails are unique across the platform."""
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidInput(f"{email!r} is not an email address.")
    _check_password(password)
    if role not in USER_ROLES:
        raise InvalidInput("A user is an admin or an agent.")
    if await User.exists(email=email):
        raise Conflict(f"A user with email {email} already exists.")
    return await User.create(org=org, email=email, password_hash=hash_password(password), role=role)


async def authenticate(email: str, password: str) -> User | None:
    """The user with these credentials, or None."""
    user = await User.get_or_none(email=email.strip().lower())
    if not verify_password(user.password_hash if user else None, password):
        return None
    assert user is not None
    user.last_login_at = datetime.now(UTC)
    try:
        await user.save(update_fields=["last_login_at"])
    except Exception as exc:  # only a note: signing in must not depend on it
        log.warning("last sign-in of %s not recorded: %s", user.id, exc)
    return user


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"A password needs at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"A password has at most {MAX_PASSWORD} characters.")


async def change_password(
    user_id: uuid.UUID, current: str, new: str, *, keep_session: str | None
) -> int:
    """Set a new password after checking the current one; every other session of the user
    ends (``keep_session`` stays). Returns how many sessions ended."""
    user = await User.get_or_none(id=user_id)
    if user is None or not verify_password(user.password_hash, current):
        raise InvalidInput("The current password is not right.")
    _check_password(new)
    if new == current:
        raise InvalidInput("The new password is the same as the current one.")
    user.password_hash = hash_password(new)
    await user.save(update_fields=["password_hash"])
    return await sessions.end_all(user.id, keep=keep_session)


async def set_role(user_id: uuid.UUID, role: Role) -> None:
    """Change a user's role; every session of the user ends."""
    if role not in USER_ROLES:
        raise InvalidInput("A user is an admin or an agent.")
    updated = await User.filter(id=user_id).update(role=role)
    if not updated:
        raise NotFound("No such user.")
    await sessions.end_all(user_id)


async def remove_user(user_id: uuid.UUID) -> None:
    """Remove a user; their sessions end with them."""
    await sessions.end_all(user_id)
    await User.filter(id=user_id).delete()


async def create_api_key(org: Org, name: str = "", role: Role = Role.ADMIN) -> tuple[ApiKey, str]:
    """A new API key and its plaintext, which is shown once and never stored."""
    key, prefix, key_hash = new_api_key()
    row = await ApiKey.create(
        org=org, name=name.strip()[:200], prefix=prefix, key_hash=key_hash, role=role
    )
    return row, key


async def revoke_api_key(org_id: uuid.UUID, key_id: uuid.UUID) -> None:
    """Revoke one of the org's keys (idempotent)."""
    updated = await ApiKey.filter(id=key_id, org_id=org_id, revoked_at=None).update(
        revoked_at=datetime.now(UTC)
    )
    if not updated and not await ApiKey.exists(id=key_id, org_id=org_id):
        raise NotFound("No such API key.")
