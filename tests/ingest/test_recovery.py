"""Nothing is lost: real faults (kill -9, storage down, dropped parts) and the worker's recovery."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import websockets

from audio.dtmf import detect_tones
from tests.audio._dtmf import mulaw_encode
from tests.conftest import MotoServer, create_bucket, make_env, make_tenant, s3_client
from tests.ingest.conftest import (
    Live,
    Voice,
    call_frames,
    create_call,
    frames,
    read_object,
    settled,
    stereo_start,
)
from tests.ingest.test_keypad_tones import caller_with_tones, decode
from web.models import Recording, RecordingStatus
from web.recordings import parts
from web.recordings.jobs import multipart, recovery, trash
from web.recordings.node import identity
from web.recordings.publish import begin
from web.recordings.spool import move_to_trash, spans_file, spool_paths, trash_dir
from web.settings import Settings, load_settings

STOP = {"event": "stop"}


async def _wait(call_id: str, status: str, within: float) -> Recording:
    for _ in range(int(within / 0.1)):
        rec = await Recording.get_or_none(call_id=call_id)
        if rec is not None and rec.status == status:
            return rec
        await asyncio.sleep(0.1)
    raise AssertionError(f"recording of {call_id} is {rec.status if rec else None}, not {status}")


@pytest.mark.slow
async def test_kill9_mid_call_then_restart_recovers_from_spool(
    env: dict[str, str], db: None, server_factory: Any, voices: tuple[Voice, Voice], db_backend: str
) -> None:
    tenant = await make_tenant("Org A")
    server_env = {**env, "TALKTURO_EMBEDDED_WORKER": "1"}
    server = server_factory(server_env)
    call_id = await create_call(server.url, tenant)
    caller, _ = voices
    wire = caller.mulaw8k * (20 * 8000 // len(caller.mulaw8k) + 1)
    wire = wire[: 20 * 8000]  # 20 s of caller speech
    spool = Path(env["TALKTURO_DATA_DIR"]) / "spool" / "calls" / f"{call_id}.mp3"
    ws_url = server.url.replace("http://", "ws://") + f"/api/v1/calls/{call_id}/media"
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps(stereo_start(tenant.admin_key)))
        for m in frames("inbound", wire, 8000, 1):
            await ws.send(json.dumps(m))
        await settled(spool)
        rec = await Recording.get(call_id=call_id)
        assert rec.status == RecordingStatus.RECORDING
        server.kill9()
    assert (await Recording.get(call_id=call_id)).status == RecordingStatus.RECORDING

    # The restarted server's worker pass at start-up finalizes it from the spool.
    server_factory(server_env)
    rec = await _wait(call_id, "available", within=60)
    assert 20000 - 1000 <= (rec.duration_ms or 0) <= 20000 + 300
    stored = (Path(env["TALKTURO_DATA_DIR"]) / "recordings" / rec.storage_key).read_bytes()
    assert len(stored) == rec.size_bytes
    assert hashlib.sha256(stored).hexdigest() == rec.sha256
    assert not spool.exists()


@pytest.mark.slow
async def test_storage_down_at_hangup_then_back(
    env: dict[str, str],
    db: None,
    server_factory: Any,
    moto_server_private: MotoServer,
    voices: tuple[Voice, Voice],
) -> None:
    moto = moto_server_private
    bucket = create_bucket(moto.endpoint)
    server_env = {
        **env,
        "TALKTURO_EMBEDDED_WORKER": "1",
        "TALKTURO_STORAGE_URL": f"s3://{bucket}/rec",
        "TALKTURO_S3_ENDPOINT_URL": moto.endpoint,
    }
    tenant = await make_tenant("Org A")
    server = server_factory(server_env)
    call_id = await create_call(server.url, tenant)
    ws_url = server.url.replace("http://", "ws://") + f"/api/v1/calls/{call_id}/media"
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps(stereo_start(tenant.admin_key)))
        for m in call_frames(voices):
            await ws.send(json.dumps(m))
        moto.stop()
        await ws.send(json.dumps(STOP))
        await ws.wait_closed()
        assert ws.close_code == 1000
    rec = await _wait(call_id, "processing", within=30)
    assert rec.last_error
    assert rec.next_attempt_at is not None

    moto.start()
    create_bucket(moto.endpoint, bucket)
    rec = await _wait(call_id, "available", within=90)
    assert rec.upload_attempts >= 1
    s3 = s3_client(moto.endpoint)
    body = s3.get_object(Bucket=bucket, Key=f"rec/{rec.storage_key}")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == rec.sha256
    assert len(body) == rec.size_bytes
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    del server


async def test_parts_upload_while_the_call_runs(
    live: Live, voices: tuple[Voice, Voice], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Local storage takes parts of any size: small parts make a short call multipart.
    monkeypatch.setattr(parts, "LOCAL_PART_SIZE", 4096)
    call_id = await create_call(live.http, live.tenant)
    seen_upload: set[str] = set()
    async with websockets.connect(live.ws(call_id)) as ws:
        await ws.send(json.dumps(stereo_start(live.tenant.admin_key)))
        frames = call_frames(voices)
        # Two passes of the call at least; under load the uploader may lag the frames, so
        # the call goes on (up to ten passes) until a part upload has been seen.
        for i, m in enumerate(itertools.islice(itertools.cycle(frames), 10 * len(frames))):
            if seen_upload and i >= 2 * len(frames):
                break
            m = {**m, "media": {**m["media"], "timestamp": str(i * 10)}}
            await ws.send(json.dumps(m))
            if i % 100 == 99:
                await asyncio.sleep(0.05)
                # The row appears once the session has started: it may not be there yet.
                row = await Recording.get_or_none(call_id=call_id)
                if row is not None and row.multipart_upload_id:
                    seen_upload.add(row.multipart_upload_id)
        await ws.send(json.dumps(STOP))
        await ws.wait_closed()
    assert seen_upload, "parts were uploaded during the call"
    rec = await Recording.get(call_id=call_id)
    assert rec.status == RecordingStatus.AVAILABLE
    assert rec.multipart_upload_id is None
    stored = await read_object(live.app, rec, rec.storage_key)
    assert hashlib.sha256(stored).hexdigest() == rec.sha256
    assert await live.app.state.storages.platform().list_multipart_uploads() == []


async def test_orphaned_multipart_uploads_are_aborted(live: Live) -> None:
    storage = live.app.state.storages.platform()
    call_id = await create_call(live.http, live.tenant)
    owned_key = "owned/2024/01/a.mp3"
    orphan = await storage.start_multipart("orphan/2024/01/b.mp3", "audio/mpeg")
    await storage.upload_part("orphan/2024/01/b.mp3", orphan, 1, b"x" * 100)
    owned = await storage.start_multipart(owned_key, "audio/mpeg")
    from web.models import Call

    call = await Call.get(id=call_id)
    begun = await begin(
        live.settings, live.app.state.storages, call, RecordingStatus.RECORDING, Path("/nope")
    )
    rec = begun.row
    await Recording.filter(id=rec.id).update(storage_key=owned_key, multipart_upload_id=owned)
    aborted = await multipart.cleanup_multipart(live.app.state, force=True)
    assert aborted == 1
    assert await storage.list_multipart_uploads() == [(owned_key, owned)]
    # Once the row is done, its leftover upload goes too.
    await Recording.filter(id=rec.id).update(status=RecordingStatus.AVAILABLE)
    assert await multipart.cleanup_multipart(live.app.state, force=True) == 1
    assert await storage.list_multipart_uploads() == []


async def test_dead_owner_on_this_host_is_recovered_and_lost_spool_fails(
    live: Live, voices: tuple[Voice, Voice]
) -> None:
    settings: Settings = live.settings
    me = identity(settings)
    call_id = await create_call(live.http, live.tenant)
    from web.models import Call

    call = await Call.get(id=call_id)
    spool, _ = spool_paths(settings, call.id)
    # A spool as a killed process leaves it: whole frames, then half a frame.
    async with websockets.connect(live.ws(call_id)) as ws:
        await ws.send(json.dumps(stereo_start(live.tenant.admin_key)))
        for m in call_frames(voices):
            await ws.send(json.dumps(m))
        await ws.send(json.dumps(STOP))
        await ws.wait_closed()
    good = await Recording.get(call_id=call_id)
    mp3 = await read_object(live.app, good, good.storage_key)
    await Recording.filter(id=good.id).delete()
    spool.write_bytes(mp3 + mp3[100:400])
    begun = await begin(settings, live.app.state.storages, call, RecordingStatus.RECORDING, spool)
    rec = begun.row
    # Claimed by a process of this host that no longer exists.
    dead = f"{me.node}|999999|dead"
    await Recording.filter(id=rec.id).update(claimed_by=dead)
    assert await recovery.recover_streams(live.app.state) == 1
    rec = await Recording.get(id=rec.id)
    assert rec.status == RecordingStatus.AVAILABLE
    assert rec.sha256 == good.sha256

    other = await create_call(live.http, live.tenant)
    begun = await begin(
        settings,
        live.app.state.storages,
        await Call.get(id=other),
        RecordingStatus.RECORDING,
        settings.spool_dir / "calls" / "gone.mp3",
    )
    lost = begun.row
    await Recording.filter(id=lost.id).update(claimed_by=dead)
    assert await recovery.recover_streams(live.app.state) == 1
    lost = await Recording.get(id=lost.id)
    assert lost.status == RecordingStatus.FAILED
    assert "gone" in lost.last_error


async def test_the_worker_empties_a_spool_trash_left_by_a_crash(tmp_path: Path) -> None:
    settings = load_settings(make_env(tmp_path / "data", "sqlite://:memory:"))
    left = tmp_path / "data" / "spool" / "calls" / "c.mp3"
    left.parent.mkdir(parents=True)
    left.write_bytes(b"\xff" * 1000)
    left.with_suffix(".peaks.json").write_bytes(b"{}")
    # Moved aside at publish, then the process died before the background delete.
    move_to_trash(settings, left)
    assert not left.exists()
    assert len(list(trash_dir(settings).iterdir())) == 2
    assert await trash.empty_spool_trash(SimpleNamespace(settings=settings)) == 2
    assert list(trash_dir(settings).iterdir()) == []


@pytest.mark.slow
async def test_kill9_keeps_the_keypad_tone_and_pause_spans(
    env: dict[str, str], db: None, server_factory: Any, voices: tuple[Voice, Voice], db_backend: str
) -> None:
    """Killed mid-call while paused, after a typed number: the recovered recording lists the
    tones' spans (silent) and the pause, closed where the kept audio ends."""
    tenant = await make_tenant("Org A")
    server_env = {**env, "TALKTURO_EMBEDDED_WORKER": "1"}
    server = server_factory(server_env)
    call_id = await create_call(server.url, tenant)
    caller, _ = voices
    signal, tones = caller_with_tones(caller)
    wire = mulaw_encode(signal).tobytes()
    talk = frames("inbound", wire, 8000, 1)
    end_ms = len(wire) // 8
    # Speech again after the pause request, so the paused span reaches the spool.
    more = frames("inbound", caller.mulaw8k, 8000, 1, start_ms=end_ms)
    spool = Path(env["TALKTURO_DATA_DIR"]) / "spool" / "calls" / f"{call_id}.mp3"
    base = f"/api/v1/calls/{call_id}/recording"
    ws_url = server.url.replace("http://", "ws://") + f"/api/v1/calls/{call_id}/media"
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        websockets.connect(ws_url) as ws,
    ):
        await ws.send(json.dumps(stereo_start(tenant.admin_key)))
        for m in talk:
            await ws.send(json.dumps(m))
        await settled(spool)
        paused = await http.post(f"{base}/pause", headers=tenant.api())
        assert paused.status_code == 200, paused.text
        for m in more:
            await ws.send(json.dumps(m))
        await settled(spool)
        noted = json.loads(spans_file(spool).read_text())
        assert len(noted["pauses"]) == 1
        assert len(noted["redactions"]) == len(tones)
        rec = await Recording.get(call_id=call_id)
        # The row does not have the tones yet: only the file beside the spool does.
        assert rec.status == RecordingStatus.RECORDING
        assert rec.redactions == []
        server.kill9()

    again = server_factory(server_env)
    rec = await _wait(call_id, "available", within=60)
    async with httpx.AsyncClient(base_url=again.url, timeout=30) as http:
        body = (await http.get(f"/api/v1/calls/{call_id}", headers=tenant.api())).json()
        mp3 = (await http.get(base, headers=tenant.api())).content
    spans = body["recording"]["redactions"]
    assert len(spans) == len(tones)
    for start, end in tones:
        assert [s for s in spans if s["start_ms"] <= start - 30 and s["end_ms"] >= end + 30]
    [pause] = body["recording"]["pauses"]
    assert pause["start_ms"] >= end_ms - 500
    assert pause["end_ms"] is not None
    assert pause["end_ms"] > pause["start_ms"]
    assert pause["end_ms"] <= (rec.duration_ms or 0)
    audio, rate = decode(mp3)
    assert detect_tones(audio[0], rate) == []
    assert not spans_file(spool).exists()
