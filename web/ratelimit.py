"""Rate limits on sign-in and on the API, counted in the database so every process agrees.

Fixed windows: each counter is one row of ``rate_counter`` bumped by one atomic upsert, so
N web processes share it. The client address is the ASGI scope's ``client`` (uvicorn runs
with ``proxy_headers``: it already resolved a trusted proxy's ``X-Forwarded-For``), and
never a header read here, so a spoofed ``X-Forwarded-For`` counts against the same address.

- ``POST /login``: per client address and per email, whichever runs out first.
- ``/api/``: per API key (its public prefix) and per client address.

Over the limit the answer is 429 with ``Retry-After`` (seconds until the window ends).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from tortoise import connections

from web.errors import RateLimited
from web.interval import Interval
from web.models import RateCounter
from web.security import API_KEY_PREFIX


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` requests per ``window_s`` seconds."""

    name: str
    count: int
    window_s: int


LOGIN_PER_EMAIL = Limit("login-email", 10, 300)
LOGIN_PER_ADDRESS = Limit("login-address", 30, 300)
API_PER_KEY = Limit("api-key", 1200, 60)
API_PER_ADDRESS = Limit("api-address", 2400, 60)
# Counters idle this long are deleted by the worker.
STALE_AFTER_S = 24 * 3600
CLEANUP_INTERVAL_S = 600.0
_cleanup = Interval(CLEANUP_INTERVAL_S)

_UPSERT = {
    "postgres": (
        "INSERT INTO rate_counter (key, window_start_ms, count) VALUES ($1, $2, 1) "
        "ON CONFLICT (key) DO UPDATE SET "
        "count = CASE WHEN rate_counter.window_start_ms <= $3 THEN 1"
        " ELSE rate_counter.count + 1 END, "
        "window_start_ms = CASE WHEN rate_counter.window_start_ms <= $3 THEN $2"
        " ELSE rate_counter.window_start_ms END "
        "RETURNING count, window_start_ms"
    ),
    "sqlite": (
        "INSERT INTO rate_counter (key, window_start_ms, count) VALUES (?1, ?2, 1) "
        "ON CONFLICT (key) DO UPDATE SET "
        "count = CASE WHEN rate_counter.window_start_ms <= ?3 THEN 1"
        " ELSE rate_counter.count + 1 END, "
        "window_start_ms = CASE WHEN rate_counter.window_start_ms <= ?3 THEN ?2"
        " ELSE rate_counter.window_start_ms END "
        "RETURNING count, window_start_ms"
    ),
}


def _key(limit: Limit, subject: str) -> str:
    # Hashed: the table never holds emails or addresses in the clear.
    return hashlib.sha256(f"{limit.name}\n{subject}".encode()).hexdigest()


async def hit(limit: Limit, subject: str, *, now_ms: int | None = None) -> None:
    """Count one request of ``subject`` against ``limit``; RateLimited when it is over."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    window_ms = limit.window_s * 1000
    conn = connections.get("default")
    dialect = conn.capabilities.dialect
    sql = _UPSERT["postgres" if dialect == "postgres" else "sqlite"]
    rows = await conn.execute_query_dict(sql, [_key(limit, subject), now, now - window_ms])
    row = rows[0]
    count, started = int(row["count"]), int(row["window_start_ms"])
    if count > limit.count:
        retry = max(1, math.ceil((started + window_ms - now) / 1000))
        raise RateLimited(f"Too many requests; try again in {retry} seconds.", retry)


def client_address(scope: Scope) -> str:
    """The peer address as the server saw it (after uvicorn's trusted-proxy handling)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def check_login(scope: Scope, email: str) -> None:
    """Count a sign-in attempt by address and by email; RateLimited when over either."""
    await hit(LOGIN_PER_ADDRESS, client_address(scope))
    if email.strip():
        await hit(LOGIN_PER_EMAIL, email.strip().lower())


def key_prefix(authorization: str | None) -> str | None:
    """The public prefix of a Bearer API key (``tk_xxxxxxxx``), if the header carries one."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(API_KEY_PREFIX):
        return None
    head, sep, _ = token[len(API_KEY_PREFIX) :].partition("_")
    return f"{API_KEY_PREFIX}{head}" if sep and head else None


async def check_api(scope: Scope) -> None:
    """Count an API request by key prefix (when there is one) and by address."""
    headers = dict(scope.get("headers") or [])
    raw = headers.get(b"authorization")
    prefix = key_prefix(raw.decode("latin-1") if raw else None)
    if prefix is not None:
        await hit(API_PER_KEY, prefix)
    await hit(API_PER_ADDRESS, client_address(scope))


class ApiRateLimitMiddleware:
    """429 with Retry-After for ``/api/`` HTTP requests over their limits."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["path"].startswith("/api/"):
            # Raised inside the route's stack: the app's error handler answers it.
            await check_api(scope)
        await self.app(scope, receive, send)


async def cleanup_job(state: Any) -> int:
    """Worker job: delete counters whose window ended long ago (at most every 10 minutes)."""
    if not _cleanup.due(state):
        return 0
    cutoff = int(time.time() * 1000) - STALE_AFTER_S * 1000
    return int(await RateCounter.filter(window_start_ms__lt=cutoff).delete())


def register(jobs: Any) -> None:
    """Add the counter clean-up to the worker's registry."""
    jobs.add("ratelimit_cleanup", cleanup_job)
