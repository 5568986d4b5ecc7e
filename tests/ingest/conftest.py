"""Fixtures for ingest tests: real speech as Twilio frames, a real server, a WebSocket client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
import uvicorn
import websockets
from litestar import Litestar

import audio.convert
from tests.conftest import (
    Tenant,
    api_call,
    free_port,
    make_env,
    make_tenant,
    storage_env,
)
from tests.speech import speak_wav
from web.app import create_app
from web.models import Recording
from web.recordings.placement import storage_of
from web.settings import Settings, load_settings

CALLER_TEXT = "Hello, I am calling about my order. It has not arrived yet, can you help me please."
ASSISTANT_TEXT = "Thank you for calling. Let me check that order for you right away."


@dataclass(frozen=True)
class Voice:
    """One leg's speech: the WAV, and its wire bytes as mu-law 8 kHz and L16 at its own rate."""

    wav: Path
    rate: int
    mulaw8k: bytes
    l16: bytes


def _speak(directory: Path, name: str, voice: str, text: str, rate: int) -> Voice:
    wav = speak_wav(directory, name, voice, text, rate)
    ulaw = directory / f"{name}.ul"
    subprocess.run(
        ["sox", "-R", str(wav), "-t", "raw", "-e", "mu-law", "-b", "8", "-r", "8000", str(ulaw)],
        check=True,
    )
    with wave.open(str(wav), "rb") as handle:
        pcm = handle.readframes(handle.getnframes())
    return Voice(wav, rate, ulaw.read_bytes(), pcm)


@pytest.fixture(scope="session")
def voices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Voice, Voice]:
    """The caller (en-us, 8 kHz) and the assistant (en-gb female, 24 kHz), made once."""
    for tool in ("espeak-ng", "sox", "ffmpeg"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    directory = tmp_path_factory.mktemp("voices")
    return (
        _speak(directory, "caller", "en-us", CALLER_TEXT, 8000),
        _speak(directory, "assistant", "en-gb+f3", ASSISTANT_TEXT, 24000),
    )


def frames(
    track: str, wire: bytes, rate: int, width: int, *, start_ms: int = 0, chunk_ms: int = 20
) -> list[dict[str, Any]]:
    """Twilio ``media`` messages of 20 ms each, timestamps from ``start_ms``."""
    step = rate * chunk_ms // 1000 * width
    out = []
    for i, offset in enumerate(range(0, len(wire), step)):
        out.append(
            {
                "event": "media",
                "media": {
                    "track": track,
                    "chunk": str(i + 1),
                    "timestamp": str(start_ms + i * chunk_ms),
                    "payload": base64.b64encode(wire[offset : offset + step]).decode(),
                },
            }
        )
    return out


def interleave(*streams: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge frame lists by timestamp, as a live call would send them."""
    merged = [m for s in streams for m in s]
    merged.sort(key=lambda m: int(m["media"]["timestamp"]))
    return merged


def start_message(
    token: str | None = None,
    media_format: dict[str, Any] | None = None,
    media_formats: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Twilio ``start`` message."""
    start: dict[str, Any] = {
        "streamSid": "MZ0001",
        "accountSid": "AC0001",
        "callSid": "CA0001",
        "tracks": ["inbound", "outbound"],
        "mediaFormat": media_format
        or {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"token": token} if token else {},
    }
    if media_formats is not None:
        start["mediaFormats"] = media_formats
    return {"event": "start", "sequenceNumber": "1", "start": start, "streamSid": "MZ0001"}


def stereo_start(token: str | None = None) -> dict[str, Any]:
    """``start`` with the contract's extension: caller mu-law 8 kHz, assistant L16 24 kHz."""
    return start_message(
        token,
        media_formats={
            "inbound": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "outbound": {"encoding": "audio/x-l16", "sampleRate": 24000, "channels": 1},
        },
    )


def call_frames(voices: tuple[Voice, Voice]) -> list[dict[str, Any]]:
    """A whole call: the caller speaks, then the assistant answers after it."""
    caller, assistant = voices
    caller_ms = len(caller.mulaw8k) // 8
    return interleave(
        frames("inbound", caller.mulaw8k, 8000, 1),
        frames("outbound", assistant.l16, 24000, 2, start_ms=caller_ms + 300),
    )


@dataclass
class Closed:
    """How the server closed the socket."""

    code: int | None
    reason: str


async def stream(
    url: str,
    messages: list[Any],
    *,
    headers: dict[str, str] | None = None,
    close: bool = True,
) -> Closed:
    """Send ``messages`` (dicts as JSON, str as-is) on a media socket; wait for its close."""
    async with websockets.connect(url, additional_headers=headers or {}, max_size=None) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        try:
            for message in messages:
                await ws.send(message if isinstance(message, str | bytes) else json.dumps(message))
        except websockets.ConnectionClosed:
            pass
        if not close:
            # Drop the TCP connection without a stop or a close frame.
            ws.transport.abort()
            return Closed(None, "")
        try:
            await asyncio.wait_for(ws.wait_closed(), 30)
        except TimeoutError:
            await ws.close()
        return Closed(ws.close_code, ws.close_reason or "")


@dataclass
class Live:
    """A real HTTP/WebSocket server (uvicorn) on this test's event loop, and its app."""

    app: Litestar
    settings: Settings
    port: int
    tenant: Tenant
    other: Tenant

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, call_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/calls/{call_id}/media"


@pytest.fixture(params=["local"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    """Which storage the server uses; parametrize indirectly with "s3" to add S3."""
    return str(request.param)


@pytest.fixture
def ingest_env(
    request: pytest.FixtureRequest, tmp_path: Path, db_url: str, storage_kind: str
) -> dict[str, str]:
    """The server's environment: local storage, or a fresh bucket on moto_server."""
    extra = {"TALKTURO_STREAM_TIMEOUT": "1"}
    marker = request.node.get_closest_marker("server_env")
    if marker is not None:
        extra.update(marker.kwargs)
    extra.update(storage_env(request, storage_kind))
    return make_env(tmp_path / "data", db_url, **extra)


@pytest.fixture
async def live(ingest_env: dict[str, str]) -> AsyncIterator[Live]:
    """Uvicorn serving the real app on a free port (lifespan, worker loop off)."""
    settings = load_settings(ingest_env)
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    tenant = await make_tenant("Org A")
    other = await make_tenant("Org B")
    yield Live(app, settings, port, tenant, other)
    server.should_exit = True
    await asyncio.wait_for(task, 30)


async def create_call(base_url: str, tenant: Tenant, *, recording: bool = True) -> str:
    """A new assistant and an inbound call on it, through the API; returns the call id."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        return (await api_call(http, tenant, recording=recording))[1]


async def read_object(live_app: Litestar, rec: Recording, key: str) -> bytes:
    """The stored object's bytes, read back through the storage."""
    storage = await storage_of(live_app.state.storages, rec)
    out = bytearray()
    async with storage.open_range(key, 0, None) as chunks:
        async for chunk in chunks:
            out += chunk
    return bytes(out)


def ffmpeg_decode(mp3: bytes) -> npt.NDArray[np.float32]:
    """Decode with ffmpeg to (2, n) float32 at the MP3's rate."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"],
        input=mp3,
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(out, dtype=np.float32).reshape(-1, 2).T.copy()


def rms_db(x: npt.NDArray[np.float32]) -> float:
    """Level of a signal in dBFS (very quiet is about -120)."""
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-6))


async def wait_for_status(call_id: str, status: str, within: float = 30) -> Recording:
    """Poll the recording row until it reaches ``status``."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        rec = await Recording.get_or_none(call_id=call_id)
        if rec is not None and rec.status == status:
            return rec
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"recording is {rec.status if rec else None}, not {status}")
        await asyncio.sleep(0.05)


class GatedDecoder:
    """Upload decoders that wait at a gate before decoding: uploads that take as long as we like.

    Each child notes that it started, waits until :meth:`open` is called, then runs the real
    ``audio.convert``.
    """

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = directory / "decoders-started"
        self.started.mkdir()
        self.gate = directory / "decoders-gate"
        code = (
            "import os, pathlib, runpy, time\n"
            f"pathlib.Path({str(self.started)!r}, str(os.getpid())).touch()\n"
            f"while not os.path.exists({str(self.gate)!r}):\n"
            "    time.sleep(0.02)\n"
            "runpy.run_module('audio.convert', run_name='__main__')\n"
        )
        command = [sys.executable, "-c", code]
        monkeypatch.setattr(audio.convert, "_child_command", lambda: command)

    def count(self) -> int:
        """How many decoders have started (and wait at the gate, until it opens)."""
        return len(list(self.started.iterdir()))

    async def wait_started(self, count: int, within: float = 30) -> None:
        """Wait until ``count`` decoders have started."""
        deadline = asyncio.get_running_loop().time() + within
        while self.count() < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self.count()} decoders started, not {count}")
            await asyncio.sleep(0.02)

    def open(self) -> None:
        """Let every decoder, waiting or to come, go on."""
        self.gate.touch()


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else -1


async def settled(path: Path, within: float = 30) -> int:
    """Wait until a growing file (a spool) has stopped growing for a second; its size."""
    last, stable = -1, 0
    for _ in range(int(within / 0.2)):
        size = _size(path)
        stable = stable + 1 if size == last and size > 0 else 0
        if stable >= 5:
            return size
        last = size
        await asyncio.sleep(0.2)
    raise AssertionError(f"{path} kept changing")


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path`` (a disk that fills): skips unless root."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
