"""Readiness: is the database reachable and migrated, and is storage reachable?"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tortoise import connections
from tortoise.functions import Count

from web.models import Recording, RecordingStatus
from web.storage import Storages

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
CHECK_TIMEOUT_S = 3.0


def expected_migrations() -> set[str]:
    """The migration names this code ships."""
    return {p.stem for p in MIGRATIONS_DIR.glob("[0-9]*.py")}


async def _check_database() -> str | None:
    conn = connections.get("default")
    try:
        _, rows = await conn.execute_query(
            "SELECT name FROM tortoise_migrations WHERE app = 'models'"
        )
    except Exception as exc:  # any failure is the answer
        return f"database unreachable or not migrated: {type(exc).__name__}"
    missing = expected_migrations() - {row["name"] for row in rows}
    if missing:
        return f"database migrations not applied: {', '.join(sorted(missing))}"
    return None


async def _check_storage(storages: Storages) -> str | None:
    try:
        await storages.platform().probe()
    except Exception as exc:  # any failure is the answer
        return f"storage unreachable: {exc}"
    return None


async def readiness(storages: Storages) -> dict[str, str]:
    """Each part's problem, by name; empty when the process is ready to serve."""
    problems: dict[str, str] = {}
    checks = {"database": _check_database(), "storage": _check_storage(storages)}
    for name, check in checks.items():
        try:
            problem = await asyncio.wait_for(check, CHECK_TIMEOUT_S)
        except TimeoutError:
            problem = f"{name} did not answer within {CHECK_TIMEOUT_S:g}s"
        if problem:
            problems[name] = problem
    return problems


async def recordings_by_status() -> dict[str, int]:
    """How many recordings are in each status (for metrics)."""
    counts = {s.value: 0 for s in RecordingStatus}
    rows = await Recording.all().group_by("status").annotate(n=Count("id")).values("status", "n")
    for row in rows:
        counts[str(row["status"])] = int(row["n"])
    return counts
