"""Recorder throughput on a 10-minute two-leg call vs the lame command on the same audio.

Target: ours / lame <= 1.0 (wall time, same machine, same run, same rate and bitrate).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
from _common import chunked, make_call, progress, verdict

from audio import DEFAULT_BITRATE_KBPS, LegFormat, Recorder

MINUTES = 10


def run_recorder(stream: list[tuple[str, int, bytes]]) -> tuple[float, int]:
    recorder = Recorder(LegFormat("mulaw", 8000), LegFormat("l16", 24000))
    size = 0
    started = time.perf_counter()
    for leg, ts, payload in stream:
        size += len(recorder.add(leg, ts, payload))  # type: ignore[arg-type]
    size += len(recorder.finish().mp3_tail)
    return time.perf_counter() - started, size


def run_lame(stereo: np.ndarray, directory: Path) -> float:
    wav = directory / "call.wav"
    with wave.open(str(wav), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(24000)
        handle.writeframes((stereo.T * 32767).astype("<i2").tobytes())
    started = time.perf_counter()
    subprocess.run(
        [
            "lame",
            "--silent",
            "--cbr",
            "-b",
            str(DEFAULT_BITRATE_KBPS),
            str(wav),
            str(directory / "x.mp3"),
        ],
        check=True,
    )
    return time.perf_counter() - started


def main() -> int:
    progress(f"making a {MINUTES}-minute call from espeak-ng speech...")
    caller, assistant, stereo = make_call(MINUTES * 60)
    stream = chunked(caller, assistant)
    progress(f"{len(stream)} chunks; recording (best of 3)...")
    ours = min(run_recorder(stream)[0] for _ in range(3))
    with tempfile.TemporaryDirectory() as work:
        progress("lame on the same audio as one stereo WAV (best of 3)...")
        lame = min(run_lame(stereo, Path(work)) for _ in range(3))
    print(f"recorder: {ours:.2f} s for {MINUTES} min ({MINUTES * 60 / ours:.0f}x real time)")
    print(f"lame --cbr -b {DEFAULT_BITRATE_KBPS} at 24 kHz: {lame:.2f} s")
    print(f"ratio ours/lame: {ours / lame:.2f}")
    return 0 if verdict("ours/lame", ours / lame, 1.0, at_most=True) else 1


if __name__ == "__main__":
    sys.exit(main())
