"""Database wiring: the Tortoise config built from settings, open, close, migrate."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.context import TortoiseContext
from tortoise.migrations.api.migrate import migrate as _migrate

from web.settings import DatabaseSettings

APP_LABEL = "models"
# Any fixed number shared by every process of this service.
MIGRATION_LOCK_ID = 0x7A1C7ED0


def _db_url(db: DatabaseSettings) -> str:
    if not db.is_sqlite:
        parts = urlsplit(db.url)
        scheme = "postgres" if parts.scheme in {"postgresql", "psycopg"} else parts.scheme
        return urlunsplit((scheme, *parts[1:]))
    # WAL is Tortoise's default; the busy timeout lets `web` and `worker` share one file.
    sep = "&" if "?" in db.url else "?"
    return db.url if "busy_timeout" in db.url else f"{db.url}{sep}busy_timeout=10000"


def asyncpg_dsn(db: DatabaseSettings) -> str:
    """The PostgreSQL URL as asyncpg takes it (for a connection of its own, outside the ORM)."""
    return _db_url(db).replace("postgres://", "postgresql://", 1)


def tortoise_config(db: DatabaseSettings) -> dict[str, Any]:
    """The Tortoise configuration for ``db``."""
    return {
        "connections": {"default": _db_url(db)},
        "apps": {
            APP_LABEL: {
                "models": ["web.models"],
                "default_connection": "default",
                "migrations": "web.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# Used by the `tortoise makemigrations` developer command (see [tool.tortoise]).
MIGRATIONS_CONFIG = tortoise_config(DatabaseSettings(url="sqlite://:memory:"))


_context: TortoiseContext | None = None


async def open_db(db: DatabaseSettings) -> None:
    """Open the ORM for this process: one context, shared by every task."""
    global _context
    if _context is not None:
        await close_db()
    ctx = TortoiseContext()
    # Current only while it initialises; then global, so every task (requests, the
    # worker) finds it, not only the lifespan task that opened it.
    with ctx:
        await ctx.init(config=tortoise_config(db), _enable_global_fallback=True)
    _context = ctx


async def close_db() -> None:
    """Close every connection the ORM holds."""
    global _context
    if _context is not None:
        ctx, _context = _context, None
        await ctx.close_connections()
    # Tortoise caches SQL per connection *name*; a reopen on another dialect must not reuse it.
    EXECUTOR_CACHE.clear()


async def migrate(db: DatabaseSettings) -> None:
    """Apply every pending migration, in a context of its own that is closed after.

    On PostgreSQL an advisory lock serialises migrations, so N processes starting at once
    (a rolling deploy) apply each migration exactly once.
    """
    lock = None
    if not db.is_sqlite:
        lock = await asyncpg.connect(_db_url(db).replace("postgres://", "postgresql://", 1))
        await lock.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        with TortoiseContext() as ctx:
            try:
                await _migrate(config=tortoise_config(db))
            finally:
                await ctx.close_connections()
    finally:
        if lock is not None:
            await lock.close()
