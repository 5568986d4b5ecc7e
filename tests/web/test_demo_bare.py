"""The demo on a machine without the Debian audio tools: real two-voice recordings anyway."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pedalboard.io import AudioFile

from tests.bare import path_without
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

HIDDEN = {
    "espeak-ng",
    "espeak",
    "speak-ng",
    "sox",
    "soxi",
    "play",
    "rec",
    "lame",
    "ffmpeg",
    "ffprobe",
    "chromium",
    "chromium-browser",
}
FRAME_S = 0.05


def _frames_rms(channel: np.ndarray, rate: int) -> np.ndarray:
    n = int(rate * FRAME_S)
    usable = len(channel) // n * n
    return np.sqrt((channel[:usable].reshape(-1, n) ** 2).mean(axis=1))


def _median_pitch(channel: np.ndarray, other: np.ndarray, rate: int) -> float:
    """Median fundamental frequency over 40 ms frames where only this channel speaks."""
    n = int(rate * 0.04)
    lo, hi = rate // 400, rate // 60
    pitches = []
    for i in range(0, len(channel) - n, n):
        frame, quiet = channel[i : i + n], other[i : i + n]
        if np.sqrt((frame**2).mean()) < 0.05 or np.sqrt((quiet**2).mean()) > 0.01:
            continue
        frame = frame - frame.mean()
        ac = np.correlate(frame, frame, "full")[n - 1 :]
        pitches.append(rate / (lo + int(np.argmax(ac[lo:hi]))))
    assert len(pitches) > 20, "too few voiced frames to tell the voice"
    return float(np.median(pitches))


@pytest.fixture(scope="module")
def bare_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`talkturo demo` seeded with espeak-ng, sox, lame, ffmpeg and chromium off PATH."""
    base = tmp_path_factory.mktemp("bare-demo")
    data = base / "data"
    env = {
        "PATH": path_without(base / "bin", HIDDEN),
        "HOME": str(base),
        "TALKTURO_DATA_DIR": str(data),
        "LANG": "C.UTF-8",
    }
    for tool in ("espeak-ng", "sox", "ffmpeg", "lame", "chromium"):
        assert subprocess.run(["which", tool], env=env, capture_output=True).returncode != 0
    talkturo = Path(sys.executable).with_name("talkturo")
    done = subprocess.run(
        [str(talkturo), "demo"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr
    assert "Demo ready." in done.stderr
    assert "missing" not in done.stderr
    return data


def _rows(data: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(data / "talkturo.sqlite3") as db:
        return db.execute(sql, params).fetchall()


def _decode(data: Path, key: str) -> tuple[np.ndarray, int]:
    with AudioFile(str(data / "recordings" / key)) as f:
        return f.read(f.frames), int(f.samplerate)


def test_bare_demo_recordings_have_two_different_voices(bare_demo: Path) -> None:
    recs = _rows(
        bare_demo,
        "SELECT r.storage_key, r.duration_ms FROM recording r JOIN call c ON c.id = r.call_id"
        " WHERE r.status = 'available' ORDER BY c.started_at",
    )
    assert len(recs) >= 10
    key = str(recs[0][0])
    pcm, rate = _decode(bare_demo, key)
    assert pcm.shape[0] == 2
    caller, assistant = pcm
    # Both channels carry speech for a good share of the call.
    for channel in (caller, assistant):
        assert (_frames_rms(channel, rate) > 0.02).mean() > 0.08
    assert not np.allclose(caller, assistant, atol=0.01)
    # A low caller voice and a high assistant voice.
    assert _median_pitch(assistant, caller, rate) > 1.5 * _median_pitch(caller, assistant, rate)


def test_bare_demo_long_calls_have_speech_throughout(bare_demo: Path) -> None:
    long_recs = _rows(
        bare_demo,
        "SELECT r.storage_key, c.id FROM recording r JOIN call c ON c.id = r.call_id"
        " WHERE r.status = 'available' AND r.duration_ms > 300000",
    )
    assert len(long_recs) >= 3
    key, call_id = long_recs[0]
    pcm, rate = _decode(bare_demo, str(key))
    assert pcm.shape[1] / rate > 300
    loud = (_frames_rms(pcm[0], rate) > 0.02) | (_frames_rms(pcm[1], rate) > 0.02)
    # No stretch of silence longer than 15 s: someone is speaking throughout.
    longest, run = 0, 0
    for frame_loud in loud:
        run = 0 if frame_loud else run + 1
        longest = max(longest, run)
    assert longest * FRAME_S < 15
    # Each message is where its speaker is heard.
    messages = _rows(
        bare_demo, "SELECT role, start_ms, end_ms FROM message WHERE call_id = ?", call_id
    )
    assert len(messages) > 40
    for role, start_ms, end_ms in messages:
        side = pcm[0] if role == "user" else pcm[1]
        seg = side[int(start_ms) * rate // 1000 : int(end_ms) * rate // 1000]
        assert np.sqrt((seg**2).mean()) > 0.02, (role, start_ms)
        assert int(end_ms) * rate // 1000 <= pcm.shape[1]


def test_bare_demo_summaries_match_the_call_direction(bare_demo: Path) -> None:
    rows = _rows(
        bare_demo,
        "SELECT a.summary, c.direction, c.transcript_text FROM analysis a"
        " JOIN call c ON c.id = a.call_id",
    )
    assert len(rows) > 100
    directions = {str(d) for _, d, _ in rows}
    assert directions == {"inbound", "outbound"}
    for summary, direction, transcript in rows:
        assert ("outbound" in str(summary).lower()) == (direction == "outbound"), summary
        assert transcript
