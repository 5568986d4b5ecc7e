"""Many live calls hanging up at once: each recording becomes available, nothing is lost.

Recordings that become available together commit together; these tests hold that every
call still gets its own recording, its ``has_recording`` flag and its one webhook event,
and that a row the shared commit cannot write fails alone.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from tests.ingest.conftest import Live, Voice, call_frames, create_call, stereo_start, stream
from web.models import Call, Recording, RecordingStatus, WebhookDelivery, WebhookEndpoint
from web.recordings import lifecycle
from web.security import encrypt_secret
from web.webhooks import events
from web.webhooks.endpoints import new_secret

STOP = {"event": "stop", "stop": {"accountSid": "AC0001", "callSid": "CA0001"}}
CALLS = 12


async def _endpoint(live: Live, subscribed: list[str]) -> WebhookEndpoint:
    return await WebhookEndpoint.create(
        org_id=live.tenant.org.id,
        url="https://hooks.example.com/talkturo",
        events=subscribed,
        enabled=True,
        secret_encrypted=encrypt_secret(live.settings.secret_key, new_secret()),
    )


async def _stream_until_stop(
    live: Live, call_id: str, messages: list[Any], sent: asyncio.Queue[str], go: asyncio.Event
) -> int:
    """Stream a whole call, then wait for ``go`` before ``stop``: the calls hang up together."""
    async with websockets.connect(live.ws(call_id), max_size=None) as ws:
        await ws.send(json.dumps(stereo_start(live.tenant.admin_key)))
        for message in messages:
            await ws.send(json.dumps(message))
        await sent.put(call_id)
        await go.wait()
        await ws.send(json.dumps(STOP))
        await asyncio.wait_for(ws.wait_closed(), 60)
        return int(ws.close_code or 0)


# Streams that finished sending wait for the others: no timeout may finalize them first.
@pytest.mark.server_env(TALKTURO_STREAM_TIMEOUT="120")
async def test_calls_hanging_up_together_each_become_available_with_their_event(
    live: Live, voices: tuple[Voice, Voice], db_backend: str
) -> None:
    available = await _endpoint(live, [events.RECORDING_AVAILABLE])
    await _endpoint(live, [events.RECORDING_DELETED])  # not subscribed: hears nothing
    call_ids = [await create_call(live.http, live.tenant) for _ in range(CALLS)]
    messages = call_frames(voices)
    sent: asyncio.Queue[str] = asyncio.Queue()
    go = asyncio.Event()
    streams = [
        asyncio.create_task(_stream_until_stop(live, c, messages, sent, go)) for c in call_ids
    ]
    # Every stream has sent its audio and is live on the server before any of them hangs up.
    for _ in call_ids:
        await asyncio.wait_for(sent.get(), 120)
    for _ in range(1200):
        started = Recording.filter(call_id__in=call_ids, status=RecordingStatus.RECORDING)
        if await started.count() == CALLS:
            break
        await asyncio.sleep(0.05)
    go.set()
    assert await asyncio.gather(*streams) == [1000] * CALLS

    rows = await Recording.filter(call_id__in=call_ids)
    assert sorted(str(r.call_id) for r in rows) == sorted(call_ids)  # type: ignore[attr-defined]
    for rec in rows:
        assert rec.status == RecordingStatus.AVAILABLE
        assert rec.available_at is not None
        assert rec.duration_ms
        assert rec.size_bytes
        assert rec.sha256
        assert rec.spool_path == ""
        assert rec.claimed_by is None
    assert await Call.filter(id__in=call_ids, has_recording=True).count() == CALLS
    deliveries = await WebhookDelivery.filter(org_id=live.tenant.org.id)
    assert sorted(str(d.call_id) for d in deliveries) == sorted(call_ids)
    assert {d.endpoint_id for d in deliveries} == {available.id}  # type: ignore[attr-defined]
    assert {d.type for d in deliveries} == {events.RECORDING_AVAILABLE}
    assert len({d.event_id for d in deliveries}) == CALLS


@pytest.mark.parametrize("bad", [0, 2])
async def test_a_row_the_shared_commit_cannot_write_fails_alone(
    live: Live, voices: tuple[Voice, Voice], db_backend: str, bad: int
) -> None:
    await _endpoint(live, [events.RECORDING_AVAILABLE])
    call_ids = [await create_call(live.http, live.tenant) for _ in range(3)]
    second = call_frames(voices)[:100]
    for call_id in call_ids:
        closed = await stream(
            live.ws(call_id), [stereo_start(live.tenant.admin_key), *second, STOP]
        )
        assert closed.code == 1000
    # The rows set back to where a hang-up holds them (stored, not yet available); the
    # ``bad`` one's size cannot be stored (past a 64-bit integer, on either database).
    rows = [await Recording.get(call_id=c) for c in call_ids]
    await WebhookDelivery.filter(org_id=live.tenant.org.id).delete()
    for rec in rows:
        await Recording.filter(id=rec.id).update(status=RecordingStatus.PROCESSING)
        rec.status = RecordingStatus.PROCESSING
    measures: list[dict[str, Any]] = [
        {"duration_ms": 1000, "size_bytes": 100, "sha256": "ab" * 32, "purge_at": None}
        for _ in rows
    ]
    measures[bad]["size_bytes"] = 2**70
    outcomes = await asyncio.gather(
        *(lifecycle.mark_available(rec, **m) for rec, m in zip(rows, measures, strict=True)),
        return_exceptions=True,
    )
    assert [isinstance(o, Exception) for o in outcomes] == [i == bad for i in range(3)]
    fresh = {str(r.call_id): r for r in await Recording.filter(call_id__in=call_ids)}  # type: ignore[attr-defined]
    for i, call_id in enumerate(call_ids):
        expected = RecordingStatus.PROCESSING if i == bad else RecordingStatus.AVAILABLE
        assert fresh[call_id].status == expected
    heard = {str(d.call_id) for d in await WebhookDelivery.filter(org_id=live.tenant.org.id)}
    assert heard == {c for i, c in enumerate(call_ids) if i != bad}
