"""Shared helpers for the audio tests: decoding with ffmpeg, feeding a recorder, measuring."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from audio import LegFormat, Recorder
from audio.formats import Leg
from audio.peaks import quantize

Chunk = tuple[Leg, int, bytes]
# The two legs as a voice pipeline sends them, and the recorder's output rate.
MULAW_8K = LegFormat("mulaw", 8000)
L16_24K = LegFormat("l16", 24000)
RATE = 24000


def ffmpeg_decode(mp3: bytes | Path, *, channels: int = 2) -> npt.NDArray[np.float32]:
    """Decode an MP3 with ffmpeg (an independent decoder) to a (channels, n) float32 array."""
    source = str(mp3) if isinstance(mp3, Path) else "pipe:0"
    data = None if isinstance(mp3, Path) else mp3
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", source, "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"],
        input=data,
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(out, dtype=np.float32).reshape(-1, channels).T.copy()


def ffprobe_duration_ms(path: Path) -> float:
    """The duration ffprobe reports for a file, in ms."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return float(out) * 1000


def chunks(
    leg: Leg, payload: bytes, rate: int, sample_bytes: int, chunk_ms: int = 20
) -> Iterator[Chunk]:
    """Split a leg's whole payload into Twilio-style chunks stamped with their start ms.

    Chunk k starts at sample floor(k * chunk_ms * rate / 1000), the sample its stamp names.
    """
    total = len(payload) // sample_bytes
    k = 0
    while (start := k * chunk_ms * rate // 1000) < total:
        stop = (k + 1) * chunk_ms * rate // 1000
        yield leg, k * chunk_ms, payload[start * sample_bytes : stop * sample_bytes]
        k += 1


def interleave(*streams: Iterable[Chunk]) -> list[Chunk]:
    """Merge chunk streams by timestamp (stable), like one websocket carrying both tracks."""
    merged = [c for stream in streams for c in stream]
    return sorted(merged, key=lambda c: c[1])


def stream_call(caller_wire: bytes, assistant_wire: bytes) -> tuple[bytes, Recorder]:
    """Both legs (caller mu-law 8 kHz, assistant L16 24 kHz) through a new recorder,
    interleaved as one websocket carries them: the MP3 bytes handed out before ``finish``,
    and the recorder."""
    recorder = Recorder(MULAW_8K, L16_24K)
    stream = interleave(
        chunks("caller", caller_wire, 8000, 1), chunks("assistant", assistant_wire, 24000, 2)
    )
    out = bytearray()
    for leg, ts, payload in stream:
        out += recorder.add(leg, ts, payload)
    return bytes(out), recorder


def feed(recorder: Recorder, items: Iterable[Chunk]) -> bytes:
    """Feed chunks with ``add`` and return every MP3 byte handed out, tail included."""
    out = bytearray()
    for leg, timestamp, payload in items:
        out += recorder.add(leg, timestamp, payload)
    out += recorder.finish().mp3_tail
    return bytes(out)


def rms_db(signal: npt.NDArray[np.float32]) -> float:
    """RMS level in dBFS (floor -200)."""
    return float(10 * np.log10(max(float(np.mean(np.square(signal, dtype=np.float64))), 1e-20)))


def raw_peaks(decoded: npt.NDArray[np.float32], spp: int) -> npt.NDArray[np.int8]:
    """Reference min/max per pixel of decoded stereo audio, quantized like audiowaveform."""
    pixels = -(-decoded.shape[1] // spp)
    padded = np.zeros((2, pixels * spp), dtype=np.float32)
    padded[:, : decoded.shape[1]] = decoded
    shaped = padded.reshape(2, pixels, spp)
    rows = np.empty((pixels, 4), dtype=np.int8)
    rows[:, 0] = quantize(shaped[0].min(axis=1))
    rows[:, 1] = quantize(shaped[0].max(axis=1))
    rows[:, 2] = quantize(shaped[1].min(axis=1))
    rows[:, 3] = quantize(shaped[1].max(axis=1))
    return rows
