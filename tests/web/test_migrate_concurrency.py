"""Several processes starting at once on one PostgreSQL migrate it exactly once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.conftest import empty_pg_database, in_thread
from web.db import migrate
from web.services.health import expected_migrations
from web.settings import DatabaseSettings


@pytest.mark.postgres
def test_concurrent_migrations_apply_each_once(pg_database: str) -> None:
    url, drop = empty_pg_database("talkturo_race")
    try:
        # Four "processes" at once: each on its own event loop and thread, like separate starts.
        async def all_at_once() -> None:
            await asyncio.gather(
                *(asyncio.to_thread(in_thread, migrate(DatabaseSettings(url))) for _ in range(4))
            )

        in_thread(all_at_once())

        async def applied() -> list[str]:
            conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
            rows = await conn.fetch("SELECT name FROM tortoise_migrations WHERE app = 'models'")
            await conn.close()
            return [r["name"] for r in rows]

        names = in_thread(applied())
        assert sorted(names) == sorted(expected_migrations())
    finally:
        drop()
