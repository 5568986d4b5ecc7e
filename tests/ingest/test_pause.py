"""Pausing a live recording through another web process than the one holding the stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import make_tenant
from tests.ingest.conftest import (
    Live,
    Voice,
    call_frames,
    create_call,
    rms_db,
    stereo_start,
    wait_for_status,
)
from tests.ingest.test_keypad_tones import decode
from web.models import AuditEvent, Recording
from web.recordings.live import pause

pytestmark = [pytest.mark.slow]

PAUSE_AT_MS = 2000
RESUME_AT_MS = 3500


def _ts(message: dict[str, Any]) -> int:
    return int(message["media"]["timestamp"])


async def test_pause_through_another_process(
    env: dict[str, str],
    db: None,
    server_factory: Any,
    voices: tuple[Voice, Voice],
    db_backend: str,
) -> None:
    """Stream to web A, pause and resume through web B: silence in the span, speech elsewhere."""
    shared = {**env, "TALKTURO_EMBEDDED_WORKER": "0"}
    tenant = await make_tenant("Org A")
    other = await make_tenant("Org B")
    web_a = server_factory(shared)
    web_b = server_factory(shared)
    call_id = await create_call(web_a.url, tenant)
    messages = call_frames(voices)
    before = [m for m in messages if _ts(m) < PAUSE_AT_MS]
    during = [m for m in messages if PAUSE_AT_MS <= _ts(m) < RESUME_AT_MS]
    after = [m for m in messages if _ts(m) >= RESUME_AT_MS]
    base = f"/api/v1/calls/{call_id}/recording"
    async with httpx.AsyncClient(base_url=web_b.url, timeout=30) as b:
        idle = await b.post(f"{base}/pause", headers=tenant.api())
        assert idle.status_code == 409
        assert "live" in idle.json()["detail"]
        ws_a = web_a.url.replace("http://", "ws://")
        async with websockets.connect(f"{ws_a}/api/v1/calls/{call_id}/media") as ws:
            await ws.send(json.dumps(stereo_start(tenant.admin_key)))
            for message in before:
                await ws.send(json.dumps(message))
            # Web A has taken the stream (its row is live) and, given time, the frames.
            await wait_for_status(call_id, "recording", within=60)
            await asyncio.sleep(1.5)
            assert (await b.post(f"{base}/pause", headers=tenant.api("agent"))).status_code == 403
            assert (await b.post(f"{base}/pause", headers=other.api())).status_code == 404
            paused = await b.post(f"{base}/pause", headers=tenant.api())
            assert paused.status_code == 200, paused.text
            assert paused.json()["paused"] is True
            [span] = paused.json()["pauses"]
            assert span["end_ms"] is None
            # In effect at once: no later than the audio sent before the answer.
            assert 500 <= span["start_ms"] <= PAUSE_AT_MS
            again = await b.post(f"{base}/pause", headers=tenant.api())
            assert again.json() == paused.json()
            for message in during:
                await ws.send(json.dumps(message))
            await asyncio.sleep(1.5)
            resumed = await b.post(f"{base}/resume", headers=tenant.api())
            assert resumed.status_code == 200, resumed.text
            assert resumed.json()["paused"] is False
            [span] = resumed.json()["pauses"]
            assert span["start_ms"] + 500 <= span["end_ms"] <= RESUME_AT_MS
            for message in after:
                await ws.send(json.dumps(message))
            await ws.send(json.dumps({"event": "stop"}))
            await asyncio.wait_for(ws.wait_closed(), 60)
        done = await b.post(f"{base}/resume", headers=tenant.api())
        assert done.status_code == 409
        body = (await b.get(f"/api/v1/calls/{call_id}", headers=tenant.api())).json()
        assert body["recording"]["status"] == "available"
        assert body["recording"]["pauses"] == [span]
        mp3 = await b.get(base, headers=tenant.api())
        assert mp3.status_code == 200
    actions = await AuditEvent.filter(call_id=call_id).values_list("action", flat=True)
    assert sorted(a for a in actions if a in ("recording.pause", "recording.resume")) == [
        "recording.pause",
        "recording.resume",
    ]
    audio, rate = decode(mp3.content)
    per_ms = rate // 1000
    caller_end = len(voices[0].mulaw8k) // 8
    start, end = span["start_ms"], span["end_ms"]
    # Both channels are silence in the span; the caller speaks before and after it.
    assert rms_db(audio[0, (start + 30) * per_ms : (end - 30) * per_ms]) < -60
    assert rms_db(audio[1, (start + 30) * per_ms : (end - 30) * per_ms]) < -60
    assert rms_db(audio[0, 300 * per_ms : (start - 50) * per_ms]) > -40
    assert rms_db(audio[0, (end + 50) * per_ms : (caller_end - 100) * per_ms]) > -45
    assert rms_db(audio[1, (caller_end + 500) * per_ms :]) > -40
    # The timeline keeps its length.
    assert abs(body["recording"]["duration_ms"] - _ts(messages[-1])) < 200


async def test_one_watcher_for_every_stream_pauses_only_the_one_asked(
    live: Live,
    voices: tuple[Voice, Voice],
    db_backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Several streams in one process share one watcher; a pause reaches only its stream.

    On PostgreSQL the safety-net poll is pushed out of reach: only the notification can
    bring the request in time.
    """
    if db_backend == "postgres":
        monkeypatch.setattr(pause, "LISTENING_POLL_S", 3600.0)
    calls = [await create_call(live.http, live.tenant) for _ in range(3)]
    messages = call_frames(voices)
    opening = [m for m in messages if _ts(m) < 1500]
    rest = [m for m in messages if _ts(m) >= 1500]
    sockets = [await websockets.connect(live.ws(call_id)) for call_id in calls]
    try:
        for ws in sockets:
            await ws.send(json.dumps(stereo_start(live.tenant.admin_key)))
            for message in opening:
                await ws.send(json.dumps(message))
        for call_id in calls:
            await wait_for_status(call_id, "recording", within=60)
        watcher = pause.watcher(live.settings.database)
        rows = {(await Recording.get(call_id=call_id)).id for call_id in calls}
        for _ in range(600):
            if set(watcher.streams) == rows and (db_backend != "postgres" or watcher.listening):
                break
            await asyncio.sleep(0.05)
        assert set(watcher.streams) == rows
        assert watcher.listening is (db_backend == "postgres")
        base = f"/api/v1/calls/{calls[1]}/recording"
        async with httpx.AsyncClient(base_url=live.http, timeout=30) as http:
            paused = await http.post(f"{base}/pause", headers=live.tenant.api())
            assert paused.status_code == 200, paused.text
            # Applied by the holding session before the answer: the span is there.
            [span] = paused.json()["pauses"]
            assert span["end_ms"] is None
            for ws in sockets:
                for message in rest:
                    await ws.send(json.dumps(message))
                await ws.send(json.dumps({"event": "stop"}))
                await asyncio.wait_for(ws.wait_closed(), 60)
            bodies = [
                (await http.get(f"/api/v1/calls/{c}", headers=live.tenant.api())).json()
                for c in calls
            ]
    finally:
        for ws in sockets:
            await ws.close()
    assert [b["recording"]["status"] for b in bodies] == ["available"] * 3
    assert bodies[0]["recording"]["pauses"] == []
    assert bodies[2]["recording"]["pauses"] == []
    [stored] = bodies[1]["recording"]["pauses"]
    assert stored["start_ms"] == span["start_ms"]
    # Open at hang-up: it closes where the call ends.
    assert stored["end_ms"] is not None
    assert stored["end_ms"] > stored["start_ms"]
    assert watcher.streams == {}
