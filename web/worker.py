"""The worker loop: retention purge, upload retries, crash recovery.

Each pass runs every registered job once. Jobs claim their rows in the database,
so any number of worker processes (and web processes with the embedded worker)
can run side by side without doing the same work twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("talkturo.worker")

Job = Callable[[Any], Awaitable[int]]
Closer = Callable[[Any], Awaitable[None]]


@dataclass
class WorkerJobs:
    """The jobs one pass runs, in order; each gets the app state and returns work done."""

    jobs: list[tuple[str, Job]] = field(default_factory=list)
    # Run when the loop stops, to release what jobs hold (HTTP clients, tasks).
    closers: list[Closer] = field(default_factory=list)

    def add(self, name: str, job: Job) -> None:
        self.jobs.append((name, job))

    def add_closer(self, closer: Closer) -> None:
        self.closers.append(closer)


JOBS = WorkerJobs()


async def run_pass(state: Any) -> dict[str, int]:
    """Run every job once; a failing job is logged and does not stop the others."""
    done: dict[str, int] = {}
    for name, job in JOBS.jobs:
        try:
            done[name] = await job(state)
        except Exception:
            log.exception("worker job %s failed; it will run again next pass", name)
            done[name] = 0
    return done


async def run_forever(state: Any, interval_s: float = 2.0) -> None:
    """Run passes until cancelled; then let each job release what it holds."""
    try:
        while True:
            await run_pass(state)
            await asyncio.sleep(interval_s)
    finally:
        for closer in JOBS.closers:
            try:
                await closer(state)
            except Exception:
                log.exception("worker clean-up failed")


@asynccontextmanager
async def embedded_worker(state: Any, interval_s: float = 2.0) -> AsyncIterator[None]:
    """Run the worker loop beside the web server for the lifetime of the context."""
    task = asyncio.create_task(run_forever(state, interval_s), name="talkturo-worker")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def _register_builtin_jobs() -> None:
    from web import ratelimit
    from web.recordings import jobs
    from web.services import sessions
    from web.webhooks import delivery

    jobs.register(JOBS)
    ratelimit.register(JOBS)
    delivery.register(JOBS)
    sessions.register(JOBS)


_register_builtin_jobs()
