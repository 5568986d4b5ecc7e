"""Playback fixtures: real speech encoded by the audio engine, stored through real storage.

``storage_kind`` runs a test on the local directory and on S3 (a real moto_server).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from audio import encode_files
from tests.conftest import Tenant
from web.models import Assistant, Call, CallStatus, Direction, Org, Recording, RecordingStatus
from web.services.calls import new_call
from web.storage import recording_key


@dataclass(frozen=True)
class SpeechRecording:
    """An encoded two-leg call: the MP3 bytes, its peaks overview JSON, and its facts."""

    mp3: bytes
    peaks_json: bytes
    sha256: str
    duration_ms: int


def _speak(text: str, voice: str, path: Path) -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "-w", str(path), text], check=True)


def make_speech_recording(workdir: Path) -> SpeechRecording:
    """Caller and assistant speech with a talk-over and a long silence, encoded to MP3."""
    workdir.mkdir(parents=True, exist_ok=True)
    parts = {
        "c1": ("Hello, I am calling about my order. It has not arrived yet.", "en-us"),
        "c2": ("Thank you, that is all I needed today.", "en-us"),
        "a1": ("I can help with that. Let me look up your order right away.", "en-gb+f3"),
    }
    for name, (text, voice) in parts.items():
        _speak(text, voice, workdir / f"{name}.wav")
    caller, assistant = workdir / "caller.wav", workdir / "assistant.wav"
    # Caller: speech, 9 s pause (dead air once the assistant stops), speech.
    # Assistant: starts talking over the caller at 1.5 s.
    subprocess.run(
        ["sox", str(workdir / "c1.wav"), str(workdir / "c1p.wav"), "pad", "0", "9"], check=True
    )
    subprocess.run(
        ["sox", str(workdir / "c1p.wav"), str(workdir / "c2.wav"), str(caller)], check=True
    )
    subprocess.run(["sox", str(workdir / "a1.wav"), str(assistant), "pad", "1.5", "0"], check=True)
    out = workdir / "call.mp3"
    result = encode_files(caller=caller, assistant=assistant, dest=out)
    return SpeechRecording(
        mp3=out.read_bytes(),
        peaks_json=result.peaks.overview_json(),
        sha256=result.sha256,
        duration_ms=result.duration_ms,
    )


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechRecording:
    """One real two-voice recording for the whole session (espeak-ng, sox, the audio engine)."""
    return make_speech_recording(tmp_path_factory.mktemp("speech"))


@pytest.fixture(params=["local", "s3"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    """Runs the test on local storage and on S3 (moto_server)."""
    return str(request.param)


@pytest.fixture
def env(
    request: pytest.FixtureRequest, tmp_path: Path, db_url: str, storage_kind: str
) -> dict[str, str]:
    """The app's environment, on the storage ``storage_kind`` names."""
    from tests.conftest import make_env, storage_env

    return make_env(tmp_path / "data", db_url, **storage_env(request, storage_kind))


async def completed_call(
    org: Org, started: datetime, *, assistant: Assistant | None = None, **fields: Any
) -> Call:
    """A completed, recorded inbound call of ``org`` (+14155550101 to +14155550100),
    on ``assistant`` or a new one; ``fields`` are further columns."""
    assistant = assistant or await Assistant.create(org=org, name="Support bot")
    return await new_call(
        org.id,
        assistant,
        Direction.INBOUND,
        "+14155550101",
        "+14155550100",
        started,
        status=CallStatus.COMPLETED,
        recording_enabled=True,
        **fields,
    )


async def seed_call(
    app: Any, tenant: Tenant, speech: SpeechRecording, **options: Any
) -> tuple[Call, Recording]:
    """:func:`seed_call_on` the app's platform storage."""
    return await seed_call_on(app.state.storages.platform(), tenant, speech, **options)


async def add_call_for_object(
    tenant: Tenant, key: str, *, sha256: str, size: int, duration_ms: int
) -> Call:
    """A completed call of ``tenant`` whose available recording is an object already stored."""
    now = datetime.now(UTC)
    call = await completed_call(tenant.org, now, has_recording=True)
    await Recording.create(
        call=call,
        org=tenant.org,
        status=RecordingStatus.AVAILABLE,
        storage_key=key,
        sha256=sha256,
        size_bytes=size,
        duration_ms=duration_ms,
        available_at=now,
    )
    return call


async def seed_call_on(
    storage: Any,
    tenant: Tenant,
    speech: SpeechRecording,
    *,
    status: RecordingStatus = RecordingStatus.AVAILABLE,
    **rec_fields: Any,
) -> tuple[Call, Recording]:
    """A completed call of ``tenant`` with a recording written through ``storage``."""
    started = datetime.now(UTC)
    call = await completed_call(
        tenant.org,
        started,
        ended_at=started,
        duration_ms=speech.duration_ms,
        has_recording=status == RecordingStatus.AVAILABLE,
    )
    key = recording_key(tenant.org.id, started, call.id, "mp3")
    peaks_key = recording_key(tenant.org.id, started, call.id, "peaks.json")
    await storage.put_bytes(key, speech.mp3, "audio/mpeg")
    await storage.put_bytes(peaks_key, speech.peaks_json, "application/json")
    rec = await Recording.create(
        call=call,
        org=tenant.org,
        status=status,
        storage_key=key,
        peaks_key=peaks_key,
        storage_bucket=getattr(storage, "bucket", ""),
        sha256=speech.sha256,
        size_bytes=len(speech.mp3),
        duration_ms=speech.duration_ms,
        available_at=datetime.now(UTC),
        **rec_fields,
    )
    return call, rec
