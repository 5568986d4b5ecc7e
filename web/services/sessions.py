"""Dashboard sessions kept on the server, so signing out (or a password or role change)
really ends them, and each lasts at most :data:`LIFETIME` from sign-in however much it is used.

The session cookie (encrypted by Litestar) holds only a random token; the table holds its
SHA-256, the user, the user's role at sign-in and the absolute expiry.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from web.models import User, UserSession

LIFETIME = timedelta(hours=12)
CLEANUP_INTERVAL_S = 600.0
_last_cleanup: dict[int, float] = {}


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A session that is still valid, with its user."""

    session_id: str
    user: User


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start(user: User, *, now: datetime | None = None) -> str:
    """A new session of ``user``; returns the token the cookie carries."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    # This user's expired sessions go first, so the table does not grow between worker passes.
    await UserSession.filter(user_id=user.id, expires_at__lte=now).delete()
    await UserSession.create(
        id=_hash(token), user=user, role=user.role, created_at=now, expires_at=now + LIFETIME
    )
    return token


async def lookup(token: str, *, now: datetime | None = None) -> LiveSession | None:
    """The session of ``token`` if it exists, has not expired and its user kept their role."""
    if not token or len(token) > 200:
        return None
    row = await UserSession.get_or_none(id=_hash(token)).select_related("user")
    if row is None:
        return None
    if row.expires_at <= (now or datetime.now(UTC)) or row.user.role != row.role:
        return None
    return LiveSession(row.id, row.user)


async def end(token: str) -> None:
    """End the session of ``token`` (idempotent)."""
    if token:
        await UserSession.filter(id=_hash(token)).delete()


async def end_all(user_id: uuid.UUID, *, keep: str | None = None) -> int:
    """End every session of the user, except the one with id ``keep``; returns how many."""
    query = UserSession.filter(user_id=user_id)
    if keep:
        query = query.exclude(id=keep)
    return int(await query.delete())


async def cleanup_job(state: Any) -> int:
    """Worker job: delete expired sessions (at most every 10 minutes)."""
    mono = time.monotonic()
    last = _last_cleanup.get(id(state))
    if last is not None and mono - last < CLEANUP_INTERVAL_S:
        return 0
    _last_cleanup[id(state)] = mono
    return int(await UserSession.filter(expires_at__lte=datetime.now(UTC)).delete())


def register(jobs: Any) -> None:
    """Add the session clean-up to the worker's registry."""
    jobs.add("session_cleanup", cleanup_job)
