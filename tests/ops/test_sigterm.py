"""SIGTERM on a web process: live calls drain, new streams get 1012, nothing is lost."""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import make_env, make_tenant
from tests.ingest.conftest import Voice, create_call, frames, stereo_start, voices  # noqa: F401
from web.models import Recording
from web.settings import SettingsError, load_settings

DRAIN_S = 3
FRAME_MS = 20
# Frames sent at once before the signal, then one every PACE_S (faster than real time).
PRIMED_FRAMES = 150
PACE_S = 0.015


async def wait_available(call_id: str, within: float) -> Recording:
    """Poll until the call's recording is available."""
    rec = None
    for _ in range(int(within / 0.1)):
        rec = await Recording.get_or_none(call_id=call_id)
        if rec is not None and rec.status == "available":
            return rec
        await asyncio.sleep(0.1)
    raise AssertionError(f"recording of {call_id} is {rec.status if rec else None}")


@dataclass
class Caller:
    """One live stream: what it sent, and how the server closed it."""

    url: str
    token: str
    wire: bytes
    primed: asyncio.Event = field(default_factory=asyncio.Event)
    sent_end_ms: int = 0
    close_code: int | None = None
    close_reason: str = ""

    async def run(self) -> None:
        messages = frames("inbound", self.wire, 8000, 1)
        async with websockets.connect(self.url, max_size=None) as ws:
            await ws.send(json.dumps(stereo_start(self.token)))
            try:
                for i, message in enumerate(messages):
                    await ws.send(json.dumps(message))
                    self.sent_end_ms = int(message["media"]["timestamp"]) + FRAME_MS
                    if i + 1 == PRIMED_FRAMES:
                        self.primed.set()
                    elif i >= PRIMED_FRAMES:
                        await asyncio.sleep(PACE_S)
            except websockets.ConnectionClosed:
                pass
            await asyncio.wait_for(ws.wait_closed(), 60)
            self.close_code = ws.close_code
            self.close_reason = ws.close_reason or ""


@pytest.mark.slow
async def test_sigterm_drains_live_calls_and_refuses_new_ones(
    env: dict[str, str],
    db: None,
    server_factory: Any,
    voices: tuple[Voice, Voice],  # noqa: F811
) -> None:
    tenant = await make_tenant("Org A")
    server_env = {**env, "TALKTURO_DRAIN_TIMEOUT": str(DRAIN_S)}
    server = server_factory(server_env)
    ws_base = server.url.replace("http://", "ws://")
    calls = [await create_call(server.url, tenant) for _ in range(3)]
    late_call = await create_call(server.url, tenant)
    caller, _ = voices
    # 30 s of speech: more than the drain lets through, so the server cuts every stream.
    wire = (caller.mulaw8k * (30 * 8000 // len(caller.mulaw8k) + 1))[: 30 * 8000]
    streams = [Caller(f"{ws_base}/api/v1/calls/{c}/media", tenant.admin_key, wire) for c in calls]
    tasks = [asyncio.create_task(s.run()) for s in streams]
    await asyncio.wait_for(asyncio.gather(*(s.primed.wait() for s in streams)), 60)
    at_signal = {s.url: s.sent_end_ms for s in streams}
    server.proc.send_signal(signal.SIGTERM)

    # A stream opened while draining is accepted, then closed with "service restart".
    await asyncio.sleep(0.3)
    async with websockets.connect(f"{ws_base}/api/v1/calls/{late_call}/media") as late:
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(late.recv(), 30)
        assert late.close_code == 1012
        assert "restart" in (late.close_reason or "")
    # Load balancers see it is going away while it drains.
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert "process" in ready.json()["problems"]

    await asyncio.wait_for(asyncio.gather(*tasks), 90)
    await asyncio.to_thread(server.proc.wait, 60)
    for s in streams:
        assert s.close_code == 1012, (s.close_code, s.close_reason)
        # The live calls went on after the signal (the drain did not cut them at once).
        assert s.sent_end_ms > at_signal[s.url]

    # Any recording the drain left unfinished is the next process's worker's to finalize.
    server_factory({**server_env, "TALKTURO_EMBEDDED_WORKER": "1"})
    for s, call_id in zip(streams, calls, strict=True):
        rec = await wait_available(call_id, within=60)
        assert rec.duration_ms is not None
        assert at_signal[s.url] <= rec.duration_ms
        assert abs(rec.duration_ms - s.sent_end_ms) <= 1000, (rec.duration_ms, s.sent_end_ms)
    assert await Recording.get_or_none(call_id=late_call) is None
    assert '"status":"available"' in server.log()


@pytest.mark.parametrize("value", ["soon", "-1", "3601"])
def test_a_bad_drain_timeout_is_refused_naming_the_setting(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="TALKTURO_DRAIN_TIMEOUT"):
        load_settings(make_env(tmp_path, "sqlite://x.db", TALKTURO_DRAIN_TIMEOUT=value))


def test_the_drain_timeout_defaults_to_30_seconds(tmp_path: Path) -> None:
    settings = load_settings(make_env(tmp_path, "sqlite://x.db"))
    assert settings.recording.drain_timeout_s == 30
    settings = load_settings(make_env(tmp_path, "sqlite://x.db", TALKTURO_DRAIN_TIMEOUT="0"))
    assert settings.recording.drain_timeout_s == 0
