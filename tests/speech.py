"""Real speech for tests: espeak-ng speaks, sox shapes it (mono, 16-bit, normalised)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def speak_wav(directory: Path, name: str, voice: str, text: str, rate: int) -> Path:
    """``text`` spoken by ``voice`` as a mono 16-bit WAV at ``rate`` Hz in ``directory``.

    sox runs with ``-R`` (no random dither), so the same text gives the same samples.
    """
    raw = directory / f"{name}.raw.wav"
    out = directory / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
    subprocess.run(
        [
            "sox",
            "-R",
            str(raw),
            "-r",
            str(rate),
            "-c",
            "1",
            "-b",
            "16",
            str(out),
            "gain",
            "-n",
            "-3",
        ],
        check=True,
    )
    return out
