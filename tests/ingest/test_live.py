"""Live calls over ``WS /api/v1/calls/{id}/media`` (Twilio Media Streams) against a real server."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets

from tests.conftest import login
from tests.ingest.conftest import (
    GatedDecoder,
    Live,
    Voice,
    call_frames,
    create_call,
    ffmpeg_decode,
    frames,
    interleave,
    read_object,
    rms_db,
    start_message,
    stereo_start,
    stream,
    tmpfs,
    wait_for_status,
)
from web.models import Call, Recording, RecordingStatus
from web.recordings import spool
from web.recordings.presentation import delay_reason

STOP = {"event": "stop", "stop": {"accountSid": "AC0001", "callSid": "CA0001"}}


async def new_call(live: Live, *, recording: bool = True, tenant: Any = None) -> str:
    return await create_call(live.http, tenant or live.tenant, recording=recording)


async def get_call(live: Live, call_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=live.http, headers=live.tenant.api()) as http:
        resp = await http.get(f"/api/v1/calls/{call_id}")
        assert resp.status_code == 200, resp.text
        return dict(resp.json())


def spool_files(live: Live) -> list[str]:
    calls = live.settings.spool_dir / "calls"
    return sorted(p.name for p in calls.iterdir()) if calls.exists() else []


@pytest.mark.parametrize("storage_kind", ["local", "s3"], indirect=True)
async def test_full_live_call_becomes_available(
    live: Live, voices: tuple[Voice, Voice], db_backend: str
) -> None:
    call_id = await new_call(live)
    token = live.tenant.admin_key
    closed = await stream(live.ws(call_id), [stereo_start(token), *call_frames(voices), STOP])
    assert closed.code == 1000

    body = await get_call(live, call_id)
    rec_json = body["recording"]
    assert rec_json["status"] == "available"
    assert rec_json["url"].startswith(f"/api/v1/calls/{call_id}/recording?expires=")
    assert rec_json["purge_at"]
    rec = await Recording.get(call_id=call_id)
    assert (await Call.get(id=call_id)).has_recording
    assert rec.storage_key.endswith(f"/{call_id}.mp3")
    assert rec.spool_path == ""
    assert spool_files(live) == []
    # The published spool is deleted in the background, not left on disk.
    trash = spool.trash_dir(live.settings)
    for _ in range(200):
        if not any(trash.iterdir()):
            break
        await asyncio.sleep(0.05)
    assert list(trash.iterdir()) == []

    stored = await read_object(live.app, rec, rec.storage_key)
    # Exactly the recorder's bytes.
    assert len(stored) == rec.size_bytes == rec_json["size_bytes"]
    assert hashlib.sha256(stored).hexdigest() == rec.sha256 == rec_json["sha256"]
    peaks = json.loads(gzip.decompress(await read_object(live.app, rec, rec.peaks_key)))
    assert peaks["version"] == 2
    assert peaks["channels"] == 2

    caller, assistant = voices
    expected_ms = len(caller.mulaw8k) // 8 + 300 + len(assistant.l16) * 1000 // (2 * 24000)
    assert abs(rec.duration_ms - expected_ms) < 200
    audio = ffmpeg_decode(stored)
    rate = audio.shape[1] * 1000 / rec.duration_ms
    split = int(len(caller.mulaw8k) / 8000 * rate)
    # Caller speech on the left while the right is silent, then the reverse.
    assert rms_db(audio[0, :split]) > -40
    assert rms_db(audio[1, : split - int(0.1 * rate)]) < -60
    assert rms_db(audio[1, split:]) > -40
    assert rms_db(audio[0, split + int(0.4 * rate) :]) < -60


async def test_header_auth_and_default_mulaw_both_tracks(
    live: Live, voices: tuple[Voice, Voice]
) -> None:
    call_id = await new_call(live)
    caller, assistant = voices
    msgs = [
        start_message(),
        *interleave(
            frames("inbound", caller.mulaw8k, 8000, 1),
            frames("outbound", assistant.mulaw8k, 8000, 1),
        ),
        STOP,
    ]
    closed = await stream(live.ws(call_id), msgs, headers=live.tenant.api())
    assert closed.code == 1000
    rec = await Recording.get(call_id=call_id)
    assert rec.status == RecordingStatus.AVAILABLE
    audio = ffmpeg_decode(await read_object(live.app, rec, rec.storage_key))
    assert rms_db(audio[0]) > -40
    assert rms_db(audio[1]) > -40


async def test_gap_is_silence_not_a_shift(live: Live, voices: tuple[Voice, Voice]) -> None:
    call_id = await new_call(live)
    caller, _ = voices
    first = caller.mulaw8k[:8000]  # 1 s
    second = caller.mulaw8k[8000:16000]
    msgs = [
        start_message(live.tenant.admin_key),
        *frames("inbound", first, 8000, 1),
        *frames("inbound", second, 8000, 1, start_ms=3000),
        STOP,
    ]
    assert (await stream(live.ws(call_id), msgs)).code == 1000
    rec = await Recording.get(call_id=call_id)
    assert abs(rec.duration_ms - 4000) < 250
    audio = ffmpeg_decode(await read_object(live.app, rec, rec.storage_key))
    rate = audio.shape[1] * 1000 / rec.duration_ms
    gap = audio[0, int(1.2 * rate) : int(2.9 * rate)]
    assert rms_db(gap) < -60
    assert rms_db(audio[0, int(3.1 * rate) : int(3.9 * rate)]) > -45


def _media(payload: str = "//8=", track: str = "inbound", ts: str = "0") -> dict[str, Any]:
    return {"event": "media", "media": {"track": track, "timestamp": ts, "payload": payload}}


# (name, message, close code, reason); "START" marks where a good start (and audio) goes.
BAD_INPUTS: list[tuple[str, Any, int, str]] = [
    ("malformed json", "{not json", 1003, "malformed JSON"),
    ("bad base64", _media(payload="@@not base64@@"), 1003, "base64"),
    ("unknown track", _media(track="sideways"), 1003, "unknown track"),
    ("unknown event", {"event": "dance"}, 1003, "unknown event"),
    ("bad timestamp", _media(ts="soon"), 1003, "timestamp"),
    ("binary frame", b"\x00\x01", 1003, "binary"),
    ("second start", "SECOND_START", 1008, "already started"),
]


@pytest.mark.parametrize(
    ("name", "bad", "code", "reason"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
@pytest.mark.parametrize("with_audio", [False, True], ids=["no-audio", "audio-first"])
async def test_bad_input_closes_and_keeps_earlier_audio(
    live: Live,
    voices: tuple[Voice, Voice],
    name: str,
    bad: Any,
    code: int,
    reason: str,
    with_audio: bool,
) -> None:
    call_id = await new_call(live)
    start = start_message(live.tenant.admin_key)
    audio = frames("inbound", voices[0].mulaw8k[:16000], 8000, 1) if with_audio else []
    closed = await stream(
        live.ws(call_id), [start, *audio, start if bad == "SECOND_START" else bad]
    )
    assert closed.code == code, closed
    assert reason.lower() in closed.reason.lower(), closed.reason
    rec = await Recording.get_or_none(call_id=call_id)
    if with_audio:
        # Everything before the bad message is kept and finalized at once.
        assert rec is not None
        assert rec.status == RecordingStatus.AVAILABLE
        assert abs((rec.duration_ms or 0) - 2000) < 250
    else:
        assert rec is None, name
        assert (await get_call(live, call_id))["recording"] is None
    assert [f for f in spool_files(live) if f.endswith(".mp3")] == []


@pytest.mark.parametrize(
    ("first", "code", "reason"),
    [
        ([_media()], 1008, "media before start"),
        (
            [start_message(None, media_format={"encoding": "audio/opus", "sampleRate": 8000})],
            1003,
            "unsupported audio encoding",
        ),
        (
            [start_message(None, media_format={"encoding": "audio/x-l16", "sampleRate": 7})],
            1003,
            "sample rate",
        ),
        ([start_message(None, media_formats={"sideways": {}})], 1003, "mediaFormats"),
    ],
)
async def test_bad_start_leaves_nothing(
    live: Live, first: list[Any], code: int, reason: str
) -> None:
    call_id = await new_call(live)
    closed = await stream(live.ws(call_id), first, headers=live.tenant.api())
    assert (closed.code, reason.lower() in closed.reason.lower()) == (code, True), closed
    assert await Recording.get_or_none(call_id=call_id) is None


async def test_refusals_leave_nothing(live: Live, voices: tuple[Voice, Voice]) -> None:
    caller, _ = voices
    audio = frames("inbound", caller.mulaw8k[:8000], 8000, 1)
    disabled = await new_call(live, recording=False)
    closed = await stream(live.ws(disabled), [start_message(live.tenant.admin_key), *audio, STOP])
    assert (closed.code, "disabled" in closed.reason) == (1008, True)
    assert await Recording.get_or_none(call_id=disabled) is None

    theirs = await new_call(live, tenant=live.other)
    closed = await stream(live.ws(theirs), [start_message(live.tenant.admin_key), *audio, STOP])
    assert (closed.code, closed.reason) == (1008, "no such call")
    assert await Recording.get_or_none(call_id=theirs) is None

    mine = await new_call(live)
    closed = await stream(live.ws(mine), [start_message("tk_bad_key"), *audio, STOP])
    assert (closed.code, "API key" in closed.reason) == (1008, True)
    closed = await stream(live.ws("not-a-uuid"), [start_message(live.tenant.admin_key)])
    assert closed.code == 1008
    assert await Recording.get_or_none(call_id=mine) is None


async def test_second_stream_refused_and_others_unaffected(
    live: Live, voices: tuple[Voice, Voice]
) -> None:
    import websockets

    caller, assistant = voices
    token = live.tenant.admin_key
    busy = await new_call(live)
    bystander = await new_call(live)
    async with websockets.connect(live.ws(busy)) as first:
        await first.send(json.dumps(stereo_start(token)))
        for m in frames("inbound", caller.mulaw8k[:8000], 8000, 1):
            await first.send(json.dumps(m))
        closed, ok = await asyncio.gather(
            stream(live.ws(busy), [stereo_start(token), _media()]),
            stream(live.ws(bystander), [stereo_start(token), *call_frames(voices), STOP]),
        )
        assert closed.code == 1008
        assert "live stream" in closed.reason
        assert ok.code == 1000
        await first.send(json.dumps(STOP))
        await first.wait_closed()
    busy_rec = await Recording.get(call_id=busy)
    assert busy_rec.status == RecordingStatus.AVAILABLE
    assert abs((busy_rec.duration_ms or 0) - 1000) < 250
    assert (await Recording.get(call_id=bystander)).status == RecordingStatus.AVAILABLE
    del assistant


@pytest.mark.parametrize("order", ["stop-then-end", "end-then-stop"])
async def test_stop_and_end_in_either_order(
    live: Live, voices: tuple[Voice, Voice], order: str
) -> None:
    import websockets

    call_id = await new_call(live)
    caller, _ = voices

    async def end() -> None:
        async with httpx.AsyncClient(base_url=live.http, headers=live.tenant.api()) as http:
            resp = await http.post(f"/api/v1/calls/{call_id}/end", json={"status": "completed"})
            assert resp.status_code == 200, resp.text

    async with websockets.connect(live.ws(call_id)) as ws:
        await ws.send(json.dumps(start_message(live.tenant.admin_key)))
        for m in frames("inbound", caller.mulaw8k[:8000], 8000, 1):
            await ws.send(json.dumps(m))
        if order == "end-then-stop":
            await end()
        await ws.send(json.dumps(STOP))
        await ws.wait_closed()
    if order == "stop-then-end":
        await end()
    body = await get_call(live, call_id)
    assert body["status"] == "completed"
    assert body["recording"]["status"] == "available"


async def test_no_audio_means_no_recording(live: Live) -> None:
    call_id = await new_call(live)
    closed = await stream(live.ws(call_id), [start_message(live.tenant.admin_key), STOP])
    assert closed.code == 1000
    assert (await get_call(live, call_id))["recording"] is None
    assert spool_files(live) == []


async def test_dropped_socket_is_finalized_after_the_timeout(
    live: Live, voices: tuple[Voice, Voice]
) -> None:
    call_id = await new_call(live)
    caller, _ = voices
    msgs = [start_message(live.tenant.admin_key), *frames("inbound", caller.mulaw8k, 8000, 1)]
    await stream(live.ws(call_id), msgs, close=False)
    # TALKTURO_STREAM_TIMEOUT is 1 s here.
    rec = await wait_for_status(call_id, "available", within=30)
    assert abs((rec.duration_ms or 0) - len(caller.mulaw8k) // 8) < 250
    stored = await read_object(live.app, rec, rec.storage_key)
    assert hashlib.sha256(stored).hexdigest() == rec.sha256
    assert np.isfinite(rms_db(ffmpeg_decode(stored)[0]))


async def test_slow_uploads_never_starve_a_live_call(
    live: Live, voices: tuple[Voice, Voice], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight uploads decode (held at a gate) while a call streams at real-time pace.

    The call is recorded whole, while the uploads wait; at most the pool's size decode at once.
    """
    decoders = GatedDecoder(tmp_path, monkeypatch)
    caller, assistant = voices
    files = {
        "caller": ("c.wav", caller.wav.read_bytes(), "audio/wav"),
        "assistant": ("a.wav", assistant.wav.read_bytes(), "audio/wav"),
    }
    upload_calls = [await new_call(live) for _ in range(8)]
    call_id = await new_call(live)
    async with httpx.AsyncClient(
        base_url=live.http, headers=live.tenant.api(), timeout=120
    ) as http:
        uploads = [
            asyncio.create_task(http.put(f"/api/v1/calls/{c}/recording", files=files))
            for c in upload_calls
        ]
        try:
            await decoders.wait_started(2)
            messages = call_frames(voices)
            async with websockets.connect(live.ws(call_id), max_size=None) as ws:
                await ws.send(json.dumps(stereo_start(live.tenant.admin_key)))
                begun = asyncio.get_running_loop().time()
                for message in messages:
                    due = begun + int(message["media"]["timestamp"]) / 1000
                    await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))
                    await ws.send(json.dumps(message))
                await ws.send(json.dumps(STOP))
                await asyncio.wait_for(ws.wait_closed(), 30)
                assert ws.close_code == 1000
            rec = await wait_for_status(call_id, "available")
            assert decoders.count() == live.settings.recording.decode_workers
        finally:
            decoders.open()
            answers = await asyncio.gather(*uploads)
    assert [a.status_code for a in answers] == [200] * 8
    expected_ms = len(caller.mulaw8k) // 8 + 300 + len(assistant.l16) * 1000 // (2 * 24000)
    assert abs((rec.duration_ms or 0) - expected_ms) < 200
    audio = ffmpeg_decode(await read_object(live.app, rec, rec.storage_key))
    rate = audio.shape[1] * 1000 / (rec.duration_ms or 1)
    split = int(len(caller.mulaw8k) / 8000 * rate)
    # Every 100 ms of the caller's speech made it in: as many loud windows as the source has.
    with wave.open(str(caller.wav), "rb") as handle:
        pcm = handle.readframes(handle.getnframes())
    source = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768
    assert loud_windows(audio[0, :split], int(rate)) >= loud_windows(source, caller.rate) - 2
    assert loud_windows(source, caller.rate) > 10


def loud_windows(signal: Any, rate: int) -> int:
    """How many 100 ms windows of ``signal`` are louder than -40 dBFS."""
    step = rate // 10
    return sum(rms_db(signal[i : i + step]) > -40 for i in range(0, len(signal) - step + 1, step))


@pytest.mark.server_env(TALKTURO_STREAM_START_TIMEOUT="1")
async def test_a_socket_without_a_valid_start_is_closed_at_the_deadline(live: Live) -> None:
    """Silent, chatty-without-start and unauthenticated sockets are all closed with 1008."""
    call_id = await new_call(live)
    for messages in ([], [{"event": "mark"}] * 3, [start_message("not-a-key")]):
        closed = await stream(live.ws(call_id), messages)
        assert closed.code == 1008, (messages, closed)
    silent = await stream(live.ws(call_id), [])
    assert "no valid start within 1 s" in silent.reason
    assert await Recording.get_or_none(call_id=call_id) is None


async def test_a_quiet_stream_with_its_socket_open_is_finalized(
    live: Live, voices: tuple[Voice, Voice], db_backend: str
) -> None:
    """No media for TALKTURO_STREAM_TIMEOUT (1 s here): finalized and the socket closed."""
    call_id = await new_call(live)
    caller, _ = voices
    second = frames("inbound", caller.mulaw8k[:8000], 8000, 1)
    async with websockets.connect(live.ws(call_id), max_size=None) as ws:
        await ws.send(json.dumps(stereo_start(live.tenant.admin_key)))
        for message in second:
            await ws.send(json.dumps(message))
        # The socket stays open, sending nothing.
        rec = await wait_for_status(call_id, "available", within=30)
        await asyncio.wait_for(ws.wait_closed(), 30)
        assert ws.close_code == 1008
        assert "no media for 1 s" in (ws.close_reason or "")
    assert abs((rec.duration_ms or 0) - 1000) < 250


@pytest.mark.server_env(TALKTURO_MEDIA_SOCKETS_PER_KEY="2")
async def test_media_sockets_per_key_are_limited(live: Live, voices: tuple[Voice, Voice]) -> None:
    """A third concurrent stream on one key is refused with 1008; a slot frees when one ends."""
    calls = [await new_call(live) for _ in range(4)]
    key = live.tenant.admin_key
    sockets = [await websockets.connect(live.ws(c), max_size=None) for c in calls[:2]]
    try:
        for ws in sockets:
            await ws.send(json.dumps(stereo_start(key)))
            await ws.send(json.dumps(frames("inbound", voices[0].mulaw8k[:160], 8000, 1)[0]))
        for call_id in calls[:2]:
            await wait_for_status(call_id, "recording")
        refused = await stream(live.ws(calls[2]), [stereo_start(key)])
        assert refused.code == 1008
        assert "media streams open" in refused.reason
        assert await Recording.get_or_none(call_id=calls[2]) is None
        await sockets[0].send(json.dumps(STOP))
        await asyncio.wait_for(sockets[0].wait_closed(), 30)
        await wait_for_status(calls[0], "available")
        media = frames("inbound", voices[0].mulaw8k[:1600], 8000, 1)
        accepted = await stream(live.ws(calls[3]), [stereo_start(key), *media, STOP])
        assert accepted.code == 1000
    finally:
        for ws in sockets:
            await ws.close()


async def test_a_timestamp_jump_to_near_4_hours_is_recorded_cheaply(
    live: Live, voices: tuple[Voice, Voice]
) -> None:
    """1 s of speech, then a frame at 3 h 59 min: a 4-hour recording, mostly skipped silence."""
    call_id = await new_call(live)
    caller, _ = voices
    speech = frames("inbound", caller.mulaw8k[:8000], 8000, 1)
    jump_ms = (4 * 60 - 1) * 60 * 1000
    late = frames("inbound", caller.mulaw8k[:160], 8000, 1, start_ms=jump_ms)
    closed = await stream(
        live.ws(call_id), [stereo_start(live.tenant.admin_key), *speech, *late, STOP]
    )
    assert closed.code == 1000
    rec = await wait_for_status(call_id, "available", within=60)
    assert abs((rec.duration_ms or 0) - jump_ms) < 1000


@pytest.fixture
def tiny_spool(live: Live) -> Iterator[Path]:
    """The live spool on a 16 KB tmpfs: a disk that fills after a few seconds of a call."""
    with tmpfs(live.settings.spool_dir / "calls", "16k") as path:
        yield path


async def test_a_full_disk_is_said_in_the_panel_and_the_audio_kept(
    live: Live, voices: tuple[Voice, Voice], tiny_spool: Path
) -> None:
    """The spool fills: 1011 with a clear reason, the panel says why, the spooled audio stays."""
    call_id = await new_call(live)
    closed = await stream(
        live.ws(call_id), [stereo_start(live.tenant.admin_key), *call_frames(voices)]
    )
    assert closed.code == 1011
    assert "disk is full" in closed.reason
    rec = await Recording.get(call_id=call_id)
    assert rec.status in (RecordingStatus.RECORDING, RecordingStatus.PROCESSING)
    reason = delay_reason(rec)
    assert reason is not None
    assert "could not write the audio to its disk" in reason
    assert "kept" in reason
    spooled = Path(rec.spool_path)
    assert spooled.parent == tiny_spool
    assert (await asyncio.to_thread(spooled.stat)).st_size > 4096
    async with httpx.AsyncClient(base_url=live.http) as http:
        await login(http, live.tenant.admin.email)
        page = await http.get(f"/calls/{call_id}")
        assert page.status_code == 200
    assert "usually ready within seconds" not in page.text
    assert "could not write the audio to its disk" in page.text
