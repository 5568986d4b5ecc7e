"""Who is asking: a dashboard user (session cookie) or an API key (Bearer); role guards.

Guards resolve the caller once per request and keep it in the connection's state, so the
``principal`` dependency of the same request does not look it up again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from web.errors import NotAuthenticated, PermissionDenied
from web.models import ApiKey, Role, User
from web.observability import note
from web.security import hash_api_key
from web.services import sessions

# The session cookie holds the token of a server-side session (web.services.sessions).
SESSION_TOKEN_KEY = "sid"
# last_used_at is written at most this often per key, so reads stay reads.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller, always bound to exactly one org."""

    org_id: uuid.UUID
    role: Role
    label: str
    user_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    # The server-side session this request came with (dashboard users only).
    session_id: str | None = None
    # The user's (time zone, playback speed) as read with the session; None when not read.
    preferences: tuple[str | None, str] | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def require_admin(self, reason: str = "This needs an admin.") -> None:
        """Raise PermissionDenied with ``reason`` unless the caller is an admin."""
        if not self.is_admin:
            raise PermissionDenied(reason)


def _principal_of(user: User, session_id: str) -> Principal:
    return Principal(
        org_id=user.org_id,  # type: ignore[attr-defined]
        role=Role(user.role),
        label=user.email,
        user_id=user.id,
        session_id=session_id,
        preferences=(user.time_zone, user.playback_speed or "1"),
    )


def session_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The session token the request's cookie carries, or ""."""
    session = connection.scope.get("session") or {}
    raw = session.get(SESSION_TOKEN_KEY) if isinstance(session, dict) else None
    return raw if isinstance(raw, str) else ""


async def session_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The signed-in user of this session, or None (also once it ended or expired)."""
    live = await sessions.lookup(session_token(connection))
    return _principal_of(live.user, live.session_id) if live else None


_PRINCIPAL = "talkturo.principal"


def _remembered(connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
    # Per-connection state: a guard and the handler's dependency resolve the caller once.
    state: dict[str, Any] = connection.scope.setdefault("state", {})
    return state


async def _dashboard(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    known = _remembered(connection)
    if _PRINCIPAL not in known:
        principal = await session_principal(connection)
        if principal is None:
            raise NotAuthenticated("Please sign in.")
        note(org_id=str(principal.org_id))
        known[_PRINCIPAL] = principal
    found: Principal = known[_PRINCIPAL]
    return found


async def dashboard_principal(request: Request[Any, Any, Any]) -> Principal:
    """Dependency for dashboard routes: the signed-in user, or 401 (a redirect to login)."""
    return await _dashboard(request)


async def key_principal(authorization: str | None) -> Principal | None:
    """The API key named by an ``Authorization: Bearer`` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    key = await ApiKey.get_or_none(key_hash=hash_api_key(token), revoked_at=None)
    if key is None:
        return None
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
        await ApiKey.filter(id=key.id).update(last_used_at=now)
    return Principal(
        org_id=key.org_id,  # type: ignore[attr-defined]
        role=Role(key.role),
        label=f"api key {key.prefix}",
        api_key_id=key.id,
    )


async def _api(connection: ASGIConnection[Any, Any, Any, Any], unauthenticated: str) -> Principal:
    known = _remembered(connection)
    if _PRINCIPAL not in known:
        principal = await key_principal(connection.headers.get("authorization"))
        if principal is None:
            raise NotAuthenticated(unauthenticated)
        note(org_id=str(principal.org_id))
        known[_PRINCIPAL] = principal
    found: Principal = known[_PRINCIPAL]
    return found


_NO_KEY = "A valid API key is required: Authorization: Bearer <key>."


async def api_principal(request: Request[Any, Any, Any]) -> Principal:
    """Dependency for API routes: the Bearer key's org and role, or 401."""
    return await _api(request, _NO_KEY)


def _admin_reason(handler: BaseRouteHandler) -> str:
    return str(handler.opt.get("admin_reason", "This needs an admin."))


async def api_admin(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: an admin API key, else 401/403 (``opt={"admin_reason": ...}`` words the 403)."""
    unauthenticated = str(handler.opt.get("unauthenticated", _NO_KEY))
    (await _api(connection, unauthenticated)).require_admin(_admin_reason(handler))


async def dashboard_admin(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: a signed-in admin, else 401/403 (``opt={"admin_reason": ...}`` words the 403)."""
    (await _dashboard(connection)).require_admin(_admin_reason(handler))


# How a refused request names the caller's role.
_ROLE_WORDS = {
    Role.ADMIN: "an admin",
    Role.AGENT: "a read-only (agent)",
    Role.INGEST: "an ingest",
}


def check_roles(principal: Principal, roles: frozenset[Role]) -> None:
    """Raise PermissionDenied (403) unless the principal's role is one of ``roles``."""
    if principal.role not in roles:
        if roles == {Role.ADMIN}:
            raise PermissionDenied("This needs an admin.")
        names = " or ".join(sorted(r.value for r in roles))
        what = "key" if principal.api_key_id else "user"
        raise PermissionDenied(
            f"This needs a role of {names}; this is {_ROLE_WORDS[principal.role]} {what}."
        )


def require_roles(*roles: Role) -> Guard:
    """A guard: the caller (an API key on ``/api/``, else the signed-in user) must have one
    of ``roles``, else 403."""
    allowed = frozenset(roles)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if connection.scope["path"].startswith("/api/"):
            principal = await _api(connection, _NO_KEY)
        else:
            principal = await _dashboard(connection)
        check_roles(principal, allowed)

    return guard


# Every API route names a guard (tests/web/test_key_roles.py checks): api_admin above, or:
# reading calls, transcripts and recordings (not ingest keys),
READ_ROLES = frozenset({Role.ADMIN, Role.AGENT})
require_reader = require_roles(*READ_ROLES)
# what a voice pipeline does: create and end calls, media, uploads, transcripts, analysis.
require_ingest = require_roles(Role.ADMIN, Role.INGEST)
# Roles that may open a live media stream (checked by the media socket at ``start``).
STREAM_ROLES = frozenset({Role.ADMIN, Role.INGEST})
