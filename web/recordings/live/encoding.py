"""The live streams' encodes, handed to the thread pool together.

Each stream's batch is a few milliseconds of work in a thread (the MP3 encoder releases the
GIL). Handing each one over on its own costs a thread wake-up and a GIL hand-back per batch;
the batches that fall due within :data:`GATHER_S` of each other go over as one job instead
and run one after another in one thread. A batch waits at most that long more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

# How long the first batch due waits for others to go with it.
GATHER_S = 0.02

Job = tuple[Callable[[], None], "asyncio.Future[None]"]


def _run_all(jobs: list[Job]) -> list[BaseException | None]:
    """Run every job in turn (in a pool thread); what each one raised, if anything."""
    errors: list[BaseException | None] = []
    for fn, future in jobs:
        if future.cancelled():
            # Its stream stopped waiting (the task was cancelled): leave its recorder alone.
            errors.append(None)
            continue
        try:
            fn()
        except Exception as exc:
            errors.append(exc)
        else:
            errors.append(None)
    return errors


class Encodes:
    """Gathers the encodes of one event loop's streams and runs them in its default pool."""

    def __init__(self, gather_s: float = GATHER_S) -> None:
        self.gather_s = gather_s
        self._jobs: list[Job] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, fn: Callable[[], None]) -> asyncio.Future[None]:
        """Run ``fn`` in a pool thread with the others due now; its outcome, to await."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new loop (tests run several servers in one process): jobs of an old one are gone.
            self._loop, self._jobs = loop, []
        future: asyncio.Future[None] = loop.create_future()
        self._jobs.append((fn, future))
        if len(self._jobs) == 1:
            loop.call_later(self.gather_s, self._hand_over, loop)
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        jobs, self._jobs = self._jobs, []
        done = loop.run_in_executor(None, _run_all, jobs)
        done.add_done_callback(lambda outcome: _settle(jobs, outcome))


def _settle(jobs: list[Job], outcome: asyncio.Future[list[BaseException | None]]) -> None:
    if outcome.cancelled() or outcome.exception() is not None:
        failure = None if outcome.cancelled() else outcome.exception()
        for _, future in jobs:
            if not future.done():
                if failure is None:
                    future.cancel()
                else:
                    future.set_exception(failure)
        return
    for (_, future), error in zip(jobs, outcome.result(), strict=True):
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
