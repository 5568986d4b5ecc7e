"""Rate limits on sign-in and on the API, counted in the database so every process agrees.

Fixed windows: each counter is one row of ``rate_counter`` bumped by one atomic upsert, so
N web processes share it. The client address is the ASGI scope's ``client`` (uvicorn runs
with ``proxy_headers``: it already resolved a trusted proxy's ``X-Forwarded-For``), and
never a header read here, so a spoofed ``X-Forwarded-For`` counts against the same address.

- ``POST /login``: FAILED attempts per client address and per email, whichever runs out
  first (a whole office signing in at once from one address is never refused).
- ``/api/``: per API key (its public prefix) and per client address.

Over the limit the answer is 429 with ``Retry-After`` (seconds until the window ends).
"""

from __future__ import annotations

import hashlib
import logging
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

log = logging.getLogger("talkturo.ratelimit")


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


# Where counts go while the database refuses writes (a full disk): this process only.
_fallback: dict[str, tuple[int, int]] = {}
_FALLBACK_MAX = 100_000


def _fallback_bump(key: str, now: int, window_ms: int) -> tuple[int, int]:
    started, count = _fallback.get(key, (now, 0))
    if started <= now - window_ms:
        started, count = now, 0
    if len(_fallback) >= _FALLBACK_MAX and key not in _fallback:
        _fallback.clear()
    _fallback[key] = (started, count + 1)
    return count + 1, started


def _over(limit: Limit, count: int, started: int, now: int) -> RateLimited | None:
    if count <= limit.count:
        return None
    retry = max(1, math.ceil((started + limit.window_s * 1000 - now) / 1000))
    return RateLimited(f"Too many requests; try again in {retry} seconds.", retry)


async def _bump(limit: Limit, subject: str, now: int) -> tuple[int, int]:
    """One more in the subject's window: (count, window start)."""
    window_ms = limit.window_s * 1000
    key = _key(limit, subject)
    conn = connections.get("default")
    dialect = conn.capabilities.dialect
    sql = _UPSERT["postgres" if dialect == "postgres" else "sqlite"]
    try:
        rows = await conn.execute_query_dict(sql, [key, now, now - window_ms])
    except Exception as exc:  # a counter that cannot be written must not fail the request
        log.warning("rate counter not written, counting in memory: %s", exc)
        return _fallback_bump(key, now, window_ms)
    row = rows[0]
    return int(row["count"]), int(row["window_start_ms"])


async def hit(limit: Limit, subject: str, *, now_ms: int | None = None) -> None:
    """Count one request of ``subject`` against ``limit``; RateLimited when it is over."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    count, started = await _bump(limit, subject, now)
    refused = _over(limit, count, started, now)
    if refused:
        raise refused


async def used(limit: Limit, subject: str, *, now_ms: int | None = None) -> RateLimited | None:
    """Whether ``subject`` has used up ``limit`` in the current window (reads only)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    window_ms = limit.window_s * 1000
    key = _key(limit, subject)
    count, started = 0, now
    row = await RateCounter.get_or_none(key=key)
    if row is not None and row.window_start_ms > now - window_ms:
        count, started = row.count, row.window_start_ms
    mem = _fallback.get(key)
    if mem is not None and mem[0] > now - window_ms and mem[1] > count:
        started, count = mem
    # Used up once the limit is reached: the next attempt would be one too many.
    return _over(limit, count + 1, started, now)


def client_address(scope: Scope) -> str:
    """The peer address as the server saw it (after uvicorn's trusted-proxy handling)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def login_refused(scope: Scope, email: str) -> RateLimited | None:
    """Why a sign-in attempt is refused before the password is checked, if it is."""
    refused = await used(LOGIN_PER_ADDRESS, client_address(scope))
    if refused is None and email.strip():
        refused = await used(LOGIN_PER_EMAIL, email.strip().lower())
    return refused


async def login_failed(scope: Scope, email: str) -> None:
    """Count a failed sign-in by address and by email (never raises)."""
    now = int(time.time() * 1000)
    await _bump(LOGIN_PER_ADDRESS, client_address(scope), now)
    if email.strip():
        await _bump(LOGIN_PER_EMAIL, email.strip().lower(), now)


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
