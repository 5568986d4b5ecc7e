"""Process wiring shared by `serve` and `worker`: what each process opens and runs."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from types import SimpleNamespace
from typing import Any

from litestar import Litestar

from web.db import close_db, open_db
from web.settings import Settings
from web.storage import Storages
from web.worker import embedded_worker, run_forever


@asynccontextmanager
async def worker_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Run the worker loop inside the web process (``TALKTURO_EMBEDDED_WORKER``)."""
    async with embedded_worker(app.state):
        yield


async def run_worker_process(settings: Settings) -> None:
    """``talkturo worker``: open what the jobs need, then loop until SIGTERM/SIGINT."""
    await open_db(settings.database)
    try:
        async with Storages(settings) as storages:
            state: Any = SimpleNamespace(settings=settings, storages=storages)
            loop = asyncio.get_running_loop()
            task = asyncio.create_task(run_forever(state))
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, task.cancel)
            with suppress(asyncio.CancelledError):
                await task
    finally:
        await close_db()
