"""Readiness: is the database reachable and migrated, is storage reachable, and can the
data directory (spool of live calls) be written?"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tortoise import connections
from tortoise.functions import Count

from web.models import Recording, RecordingStatus
from web.storage import Storages

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
CHECK_TIMEOUT_S = 3.0
# Below this much free space a live call's spool could not grow for long: not ready.
MIN_FREE_BYTES = 16 * 1024 * 1024
_PROBE_BYTES = b"\0" * 4096


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


def _write_probe(data_dir: Path) -> str | None:
    """Write, sync and delete a small file in ``data_dir``; the problem, if any."""
    try:
        stat = os.statvfs(data_dir)
        free = stat.f_bavail * stat.f_frsize
        if free < MIN_FREE_BYTES:
            return f"data directory {data_dir} is full ({free // 1024} KiB free)"
        probe = data_dir / f".ready-{os.getpid()}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, _PROBE_BYTES)
                os.fsync(fd)
            finally:
                os.close(fd)
        finally:
            probe.unlink(missing_ok=True)
    except OSError as exc:
        return f"data directory {data_dir} cannot be written: {exc.strerror or exc}"
    return None


async def _check_data_dir(data_dir: Path) -> str | None:
    return await asyncio.to_thread(_write_probe, data_dir)


async def readiness(storages: Storages, data_dir: Path | None = None) -> dict[str, str]:
    """Each part's problem, by name; empty when the process is ready to serve."""
    problems: dict[str, str] = {}
    checks = {"database": _check_database(), "storage": _check_storage(storages)}
    if data_dir is not None:
        checks["data_dir"] = _check_data_dir(data_dir)
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
