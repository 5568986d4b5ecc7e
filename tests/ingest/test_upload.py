"""Whole-file upload (``PUT /api/v1/calls/{id}/recording``), transcript and analysis."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.audio.test_promises import lying_wav
from tests.conftest import Tenant, api_call
from tests.ingest.conftest import GatedDecoder, Voice, ffmpeg_decode, read_object, rms_db, tmpfs
from web.models import Analysis, Call, Message, Recording, RecordingStatus
from web.recordings import lifecycle, upload
from web.recordings.jobs import recovery


async def put_recording(
    client: AsyncTestClient[Any], tenant: Tenant, call_id: str, body: Any, content_type: str
) -> Any:
    """PUT ``body`` as the call's whole recording with the admin key."""
    return await client.put(
        f"/api/v1/calls/{call_id}/recording",
        content=body,
        headers={**tenant.api(), "Content-Type": content_type},
    )


async def new_call(client: AsyncTestClient[Any], tenant: Tenant, recording: bool = True) -> str:
    _, call_id = await api_call(
        client,
        tenant,
        recording=recording,
        direction="outbound",
        from_number="+14155550100",
        to_number="+14155550199",
    )
    return call_id


@pytest.fixture(scope="session")
def stereo_wav(voices: tuple[Voice, Voice], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stereo 24 kHz WAV: caller left, assistant right (assistant starts after the caller)."""
    caller, assistant = voices
    directory = tmp_path_factory.mktemp("stereo")
    c24 = directory / "c24.wav"
    subprocess.run(["sox", "-R", str(caller.wav), "-r", "24000", str(c24)], check=True)
    seconds = len(caller.mulaw8k) / 8000
    padded = directory / "a-padded.wav"
    subprocess.run(["sox", "-R", str(assistant.wav), str(padded), "pad", f"{seconds}"], check=True)
    c_long = directory / "c-long.wav"
    subprocess.run(["sox", "-R", str(c24), str(c_long), "pad", "0", "10"], check=True)
    out = directory / "stereo.wav"
    flac = directory / "stereo.flac"
    subprocess.run(
        ["sox", "-R", "-M", str(c_long), str(padded), str(out), "trim", "0", f"{seconds + 4}"],
        check=True,
    )
    subprocess.run(["sox", "-R", str(out), str(flac)], check=True)
    return out


@pytest.fixture(scope="session")
def stereo_bytes(stereo_wav: Path) -> bytes:
    """The stereo WAV's bytes."""
    return stereo_wav.read_bytes()


@pytest.fixture(scope="session")
def stereo_flac(stereo_wav: Path) -> bytes:
    """The same call as FLAC."""
    return stereo_wav.with_suffix(".flac").read_bytes()


def spool_leftovers(app: Litestar) -> list[Path]:
    spool = app.state.settings.spool_dir
    return [p for p in spool.rglob("*") if p.is_file() and p.name != "node-id"]


async def test_stereo_file_becomes_available(
    client: AsyncTestClient[Any],
    app: Litestar,
    tenant: Tenant,
    stereo_bytes: bytes,
    db_backend: str,
) -> None:
    call_id = await new_call(client, tenant)
    resp = await put_recording(client, tenant, call_id, stereo_bytes, "audio/wav")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "available"
    rec = await Recording.get(call_id=call_id)
    stored = await read_object(app, rec, rec.storage_key)
    assert len(stored) == body["size_bytes"]
    assert hashlib.sha256(stored).hexdigest() == body["sha256"]
    assert (await Call.get(id=call_id)).has_recording
    audio = ffmpeg_decode(stored)
    half = audio.shape[1] // 4
    assert rms_db(audio[0, :half]) > -40
    assert rms_db(audio[1, : half // 2]) < -60
    assert spool_leftovers(app) == []


async def test_multipart_pair(
    client: AsyncTestClient[Any], app: Litestar, tenant: Tenant, voices: tuple[Voice, Voice]
) -> None:
    caller, assistant = voices
    call_id = await new_call(client, tenant)
    resp = await client.put(
        f"/api/v1/calls/{call_id}/recording",
        files={
            "caller": ("caller.wav", caller.wav.read_bytes(), "audio/wav"),
            "assistant": ("assistant.wav", assistant.wav.read_bytes(), "audio/wav"),
        },
        headers=tenant.api(),
    )
    assert resp.status_code == 200, resp.text
    rec = await Recording.get(call_id=call_id)
    assert rec.status == RecordingStatus.AVAILABLE
    audio = ffmpeg_decode(await read_object(app, rec, rec.storage_key))
    assert rms_db(audio[0]) > -40
    assert rms_db(audio[1]) > -40
    # Longest leg decides the length.
    longest_ms = max(len(caller.mulaw8k) // 8, len(assistant.l16) * 1000 // 48000)
    assert abs((rec.duration_ms or 0) - longest_ms) < 250


@pytest.mark.parametrize(
    ("what", "body", "ctype", "needle"),
    [
        ("text", b"hello, this is not audio at all" * 100, "audio/wav", "not audio"),
        ("empty", b"", "audio/wav", "empty"),
        ("truncated", "TRUNCATED", "audio/flac", "audio"),
        ("missing field", "ONLY_CALLER", "multipart", "assistant"),
        ("unknown field", "EXTRA_FIELD", "multipart", "unexpected"),
    ],
)
async def test_bad_files_are_422_and_leave_nothing(
    client: AsyncTestClient[Any],
    app: Litestar,
    tenant: Tenant,
    voices: tuple[Voice, Voice],
    stereo_bytes: bytes,
    stereo_flac: bytes,
    what: str,
    body: Any,
    ctype: str,
    needle: str,
) -> None:
    call_id = await new_call(client, tenant)
    url = f"/api/v1/calls/{call_id}/recording"
    wav = voices[0].wav.read_bytes()
    if body == "TRUNCATED":
        # A WAV header that promises far more audio than follows, cut mid-way.
        resp = await client.put(
            url,
            content=stereo_flac[:30],
            headers={**tenant.api(), "Content-Type": ctype},
        )
    elif body == "ONLY_CALLER":
        resp = await client.put(
            url, files={"caller": ("c.wav", wav, "audio/wav")}, headers=tenant.api()
        )
    elif body == "EXTRA_FIELD":
        resp = await client.put(
            url, files={"bogus": ("c.wav", wav, "audio/wav")}, headers=tenant.api()
        )
    else:
        resp = await client.put(url, content=body, headers={**tenant.api(), "Content-Type": ctype})
    assert resp.status_code == 422, resp.text
    assert needle.lower() in resp.json()["detail"].lower(), resp.text
    assert await Recording.get_or_none(call_id=call_id) is None
    assert spool_leftovers(app) == []
    # The call can still get its recording afterwards.
    ok = await client.put(
        url, content=stereo_bytes, headers={**tenant.api(), "Content-Type": "audio/wav"}
    )
    assert ok.status_code == 200, ok.text


async def test_too_large_is_413(
    client: AsyncTestClient[Any], app: Litestar, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_id = await new_call(client, tenant)
    monkeypatch.setattr(upload, "MAX_UPLOAD_BYTES", 100_000)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield b"\x00" * 10_000

    resp = await put_recording(client, tenant, call_id, body(), "audio/wav")
    assert resp.status_code == 413, resp.text
    assert "MiB" in resp.json()["detail"]
    assert await Recording.get_or_none(call_id=call_id) is None
    assert spool_leftovers(app) == []


async def test_announced_size_over_the_limit_is_413(
    client: AsyncTestClient[Any], tenant: Tenant
) -> None:
    call_id = await new_call(client, tenant)
    resp = await client.put(
        f"/api/v1/calls/{call_id}/recording",
        content=b"RIFF",
        headers={
            **tenant.api(),
            "Content-Type": "audio/wav",
            "Content-Length": str(upload.MAX_UPLOAD_BYTES + 1),
        },
    )
    assert resp.status_code == 413


async def test_refused_when_disabled_or_already_recorded(
    client: AsyncTestClient[Any], tenant: Tenant, stereo_bytes: bytes
) -> None:
    headers = {**tenant.api(), "Content-Type": "audio/wav"}
    off = await new_call(client, tenant, recording=False)
    resp = await client.put(f"/api/v1/calls/{off}/recording", content=stereo_bytes, headers=headers)
    assert resp.status_code == 409
    assert "disabled" in resp.json()["detail"]
    assert await Recording.get_or_none(call_id=off) is None

    call_id = await new_call(client, tenant)
    url = f"/api/v1/calls/{call_id}/recording"
    assert (await client.put(url, content=stereo_bytes, headers=headers)).status_code == 200
    again = await client.put(url, content=stereo_bytes, headers=headers)
    assert again.status_code == 409
    assert "already has a recording" in again.json()["detail"]

    live = await new_call(client, tenant)
    await Recording.filter(call_id=call_id).update(call_id=live, status=RecordingStatus.RECORDING)
    resp = await client.put(
        f"/api/v1/calls/{live}/recording", content=stereo_bytes, headers=headers
    )
    assert resp.status_code == 409
    assert "live" in resp.json()["detail"]


async def test_transcript_replaces_and_validates(
    client: AsyncTestClient[Any], tenant: Tenant, db_backend: str
) -> None:
    call_id = await new_call(client, tenant)
    url = f"/api/v1/calls/{call_id}/transcript"
    first = {
        "messages": [
            {"role": "user", "text": "Where is my parcel?", "start_ms": 0, "end_ms": 1500},
            {"role": "assistant", "text": "It ships Monday.", "start_ms": 1700, "end_ms": 2900},
        ]
    }
    resp = await client.put(url, json=first, headers=tenant.api())
    assert resp.status_code == 200, resp.text
    call = await Call.get(id=call_id)
    assert call.transcript_text == "Where is my parcel?\nIt ships Monday."
    second = {
        "messages": [
            {"role": "system", "text": "Call transferred.", "start_ms": 3000, "end_ms": 3000}
        ]
    }
    assert (await client.put(url, json=second, headers=tenant.api())).status_code == 200
    msgs = await Message.filter(call_id=call_id).order_by("seq").values_list("text", flat=True)
    assert msgs == ["Call transferred."]

    bad_cases = [
        {"messages": [{"role": "robot", "text": "x", "start_ms": 0, "end_ms": 1}]},
        {"messages": [{"role": "user", "text": "x", "start_ms": 5, "end_ms": 1}]},
        {"messages": [{"role": "user", "text": "x", "start_ms": 0}]},
        {"messages": [{"role": "user", "text": "x", "start_ms": 0, "end_ms": 1, "mood": "sad"}]},
        {"msgs": []},
    ]
    for bad in bad_cases:
        resp = await client.put(url, json=bad, headers=tenant.api())
        assert resp.status_code == 400, (bad, resp.text)
        assert resp.json()["detail"]
    # A refused PUT changed nothing.
    assert (await Call.get(id=call_id)).transcript_text == "Call transferred."


async def test_analysis_replaces_and_validates(
    client: AsyncTestClient[Any], tenant: Tenant
) -> None:
    call_id = await new_call(client, tenant)
    url = f"/api/v1/calls/{call_id}/analysis"
    body = {"summary": "Parcel late; ETA Thursday.", "success": True, "data": {"order": 456}}
    resp = await client.put(url, json=body, headers=tenant.api())
    assert resp.status_code == 200, resp.text
    assert resp.json() == body
    resp = await client.put(
        url, json={"summary": "Unclear.", "success": None}, headers=tenant.api()
    )
    assert resp.status_code == 200
    rows = await Analysis.filter(call_id=call_id).all()
    assert [(a.summary, a.success, a.data) for a in rows] == [("Unclear.", None, {})]
    for bad in ({"success": "yes"}, {"data": []}, {"summary": 5}, {"verdict": 1}):
        assert (await client.put(url, json=bad, headers=tenant.api())).status_code == 400, bad


async def test_a_header_promising_more_than_the_bytes_is_422(
    client: AsyncTestClient[Any], app: Litestar, tenant: Tenant, stereo_flac: bytes
) -> None:
    """1 KB claiming 46 minutes of 192 kHz, and a FLAC cut in half: 422, never silence."""
    for body, ctype in (
        (lying_wav(), "audio/wav"),
        (stereo_flac[: len(stereo_flac) // 2], "audio/flac"),
    ):
        call_id = await new_call(client, tenant)
        resp = await put_recording(client, tenant, call_id, body, ctype)
        assert resp.status_code == 422, resp.text
        assert "header promises" in resp.json()["detail"]
        assert await Recording.get_or_none(call_id=call_id) is None
    assert spool_leftovers(app) == []


async def test_an_upload_decoding_past_its_lease_keeps_its_claim(
    client: AsyncTestClient[Any],
    app: Litestar,
    tenant: Tenant,
    stereo_bytes: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    db_backend: str,
) -> None:
    """Recovery leaves a still-decoding upload alone; a second upload meanwhile is 409."""
    monkeypatch.setattr(lifecycle, "LEASE", timedelta(seconds=1))
    monkeypatch.setattr(lifecycle, "HEARTBEAT_S", 0.2)
    decoders = GatedDecoder(tmp_path, monkeypatch)
    call_id = await new_call(client, tenant)
    url = f"/api/v1/calls/{call_id}/recording"
    headers = {**tenant.api(), "Content-Type": "audio/wav"}
    first = asyncio.create_task(client.put(url, content=stereo_bytes, headers=headers))
    try:
        await decoders.wait_started(1)
        # Three leases pass while the upload decodes.
        await asyncio.sleep(3)
        assert await recovery.recover_streams(app.state) == 0
        rec = await Recording.get(call_id=call_id)
        assert rec.status == RecordingStatus.PROCESSING
        assert rec.claimed_until is not None
        assert rec.claimed_until > datetime.now(UTC)
        second = await client.put(url, content=stereo_bytes, headers=headers)
        assert second.status_code == 409, second.text
        assert decoders.count() == 1
    finally:
        decoders.open()
        resp = await first
    assert resp.status_code == 200, resp.text
    rec = await Recording.get(call_id=call_id)
    assert rec.status == RecordingStatus.AVAILABLE
    assert rec.claimed_by is None


@pytest.fixture
def full_uploads(app: Litestar) -> Iterator[Path]:
    """The uploads' work directory on a 4 KB tmpfs."""
    with tmpfs(app.state.settings.spool_dir / "uploads", "4k") as path:
        yield path


async def test_an_upload_to_a_full_disk_is_507_and_leaves_nothing(
    client: AsyncTestClient[Any], tenant: Tenant, stereo_bytes: bytes, full_uploads: Path
) -> None:
    """The body cannot be written: 507 with a clear detail, no recording row left."""
    call_id = await new_call(client, tenant)
    resp = await put_recording(client, tenant, call_id, stereo_bytes, "audio/wav")
    assert resp.status_code == 507, resp.text
    assert "disk is full" in resp.json()["detail"]
    assert await Recording.get_or_none(call_id=call_id) is None
