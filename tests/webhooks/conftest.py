"""Webhook fixtures: a real receiver on loopback, real speech uploads, a real dispatcher.

The receiver is an aiohttp server in the test's own event loop: it answers with the
status codes a test scripts (500, 500, 200, ... or never), and keeps every request as
received so tests verify signatures with the ``standardwebhooks`` library itself.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.conftest import Tenant, api_call, make_env
from web.models import Assistant, Direction, WebhookDelivery
from web.services import calls
from web.settings import Settings
from web.webhooks import outbox
from web.webhooks.delivery import Dispatcher

# Tiny retry waits (5 s becomes 50 µs) and a short attempt limit keep the tests fast.
FAST = {"TALKTURO_WEBHOOK_RETRY_SCALE": "0.00001", "TALKTURO_WEBHOOK_TIMEOUT": "2"}


@dataclass
class Received:
    """One request as the receiver got it."""

    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on a loopback port; ``script`` lists the next answers' codes."""

    port: int
    received: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    hang: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/talkturo"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(dict(request.headers), body))
        self.arrived.set()
        if self.hang:
            await asyncio.sleep(3600)
        code = self.script.pop(0) if self.script else 200
        return web.Response(status=code, text="ok" if code < 300 else "nope")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/talkturo", self._handle)
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        if self.port == 0:
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A receiver answering 200 unless a test scripts otherwise."""
    r = Receiver(0)
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    """The app's environment with the fast retry schedule."""
    return make_env(tmp_path / "data", db_url, **FAST)


@pytest.fixture
async def dispatcher(client: httpx.AsyncClient, settings: Settings) -> AsyncIterator[Dispatcher]:
    """The delivery worker of this process (the app's lifespan is running)."""
    d = Dispatcher(settings)
    yield d
    await d.close()


async def deliver_until(
    dispatcher: Dispatcher, done: Callable[[], Any], within: float = 30.0
) -> None:
    """Run delivery passes until ``done()`` is true (awaited if it is a coroutine)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        await dispatcher.pass_once()
        await dispatcher.drain()
        result = done()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("deliveries did not reach the expected state in time")


async def delivery_states(endpoint_id: str) -> list[str]:
    """Status of every delivery of an endpoint."""
    return [
        str(s)
        for s in await WebhookDelivery.filter(endpoint_id=endpoint_id).values_list(
            "status", flat=True
        )
    ]


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Two seconds of real espeak-ng speech as a stereo WAV (for whole-file uploads)."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    directory = tmp_path_factory.mktemp("webhook-speech")
    mono = directory / "mono.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-w", str(mono), "Your call is being recorded."], check=True
    )
    stereo = directory / "stereo.wav"
    subprocess.run(
        ["sox", str(mono), "-r", "16000", "-c", "2", str(stereo), "trim", "0", "2"], check=True
    )
    return stereo.read_bytes()


async def new_call(http: httpx.AsyncClient, tenant: Tenant) -> str:
    """An assistant and a call through the API; returns the call id."""
    _, call_id = await api_call(http, tenant)
    return call_id


async def upload(http: httpx.AsyncClient, tenant: Tenant, call_id: str, wav: bytes) -> None:
    """Upload the whole recording: it becomes available (the state change under test)."""
    resp = await http.put(
        f"/api/v1/calls/{call_id}/recording",
        content=wav,
        headers={**tenant.api(), "Content-Type": "audio/wav"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "available"


async def add_endpoint(
    http: httpx.AsyncClient, tenant: Tenant, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    """Create an endpoint through the API; returns its JSON (with the secret)."""
    resp = await http.post(
        "/api/v1/webhooks",
        json={"url": url, "events": events or ["recording.available"]},
        headers=tenant.api(),
    )
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def queue_events(org_id: uuid.UUID, kinds: list[str]) -> int:
    """One call per kind in ``kinds`` (on a new assistant), each with its event queued in the
    outbox; how many were queued."""
    assistant = await Assistant.create(org_id=org_id, name="Ava")
    queued = 0
    for i, kind in enumerate(kinds):
        call = await calls.new_call(
            org_id,
            assistant,
            Direction.INBOUND,
            f"+1415555{i:04d}",
            "+14155550100",
            datetime.now(UTC),
            recording_enabled=True,
        )
        queued += await outbox.record(kind, org_id, call.id)
    return queued
