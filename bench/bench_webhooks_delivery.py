"""Webhook delivery throughput: the outbox worker against plain POSTs to the same receiver.

A receiver (aiohttp, loopback) answers 200. 400 events of an org are queued through the
outbox (SQLite); one Dispatcher delivers them (claim, build the call JSON, sign, POST to
the checked address, record) in worker passes. Reference measured in the same run: the
same number of bare httpx POSTs of the same body with the same concurrency (32).
Target: the worker takes at most 20 times the bare POSTs (signing, the database and the
call JSON included), i.e. the receiver, not the worker, limits delivery.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from _common import progress, verdict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_EVENTS = 400
CONCURRENCY = 32


async def main() -> bool:
    import httpx
    from aiohttp import web

    from tests.webhooks.conftest import queue_events
    from web.db import close_db, migrate, open_db
    from web.models import WebhookDelivery
    from web.services.accounts import create_org
    from web.settings import load_settings
    from web.webhooks import endpoints, events
    from web.webhooks.delivery import Dispatcher

    received = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        received += 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/hook"

    tmp = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    settings = load_settings(
        {
            "TALKTURO_DATA_DIR": str(tmp),
            "TALKTURO_SECRET_KEY": "bench-secret-key-0123456789",
            "TALKTURO_ALLOW_PRIVATE_ENDPOINTS": "1",
        }
    )
    await migrate(settings.database)
    await open_db(settings.database)
    try:
        org = await create_org("Bench", "pro")
        endpoint, _ = await endpoints.create(org.id, settings, url, list(events.EVENT_TYPES))
        progress(f"queueing {N_EVENTS} events")
        await queue_events(org.id, [events.RECORDING_AVAILABLE] * N_EVENTS)

        body = b"x" * 600

        async def bare() -> float:
            async with httpx.AsyncClient(
                limits=httpx.Limits(max_connections=CONCURRENCY), trust_env=False
            ) as http:
                sem = asyncio.Semaphore(CONCURRENCY)

                async def post() -> None:
                    async with sem:
                        (await http.post(url, content=body)).raise_for_status()

                start = time.perf_counter()
                await asyncio.gather(*(post() for _ in range(N_EVENTS)))
                return time.perf_counter() - start

        # The reference before and after the worker; the faster one counts (a noisy machine).
        progress("reference: bare POSTs")
        bare_s = await bare()
        dispatcher = Dispatcher(settings)
        progress("delivering through the worker")
        start = time.perf_counter()
        while (
            await WebhookDelivery.filter(endpoint_id=endpoint.id, status="delivered").count()
            < N_EVENTS
        ):
            await dispatcher.pass_once()
            await dispatcher.drain()
        worker_s = time.perf_counter() - start
        await dispatcher.close()
        assert received == N_EVENTS * 2
        bare_s = min(bare_s, await bare())
    finally:
        await close_db()
        await runner.cleanup()
    print(f"worker: {N_EVENTS / worker_s:.0f} deliveries/s; bare POSTs: {N_EVENTS / bare_s:.0f}/s")
    return verdict("webhook worker time / bare POST time", worker_s / bare_s, 20.0, at_most=True)


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(main()) else 1)
