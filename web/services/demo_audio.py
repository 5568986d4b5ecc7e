"""Two-voice speech for the demo calls, made offline with espeak-ng (and sox for the phone leg)."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from dataclasses import dataclass

import numpy as np

CALLER_VOICE = "en-us+m3"
ASSISTANT_VOICE = "en-gb+f3"
ASSISTANT_RATE = 22050
CALLER_RATE = 8000
GAP_MS = 450


@dataclass(frozen=True)
class Conversation:
    """Both legs as mono WAV bytes, and where each turn sits on the call's timeline."""

    caller_wav: bytes
    assistant_wav: bytes
    turns_ms: tuple[tuple[int, int], ...]
    duration_ms: int


def speech_available() -> bool:
    """Whether espeak-ng and sox are installed (the demo seeds without audio otherwise)."""
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


def _speak(text: str, voice: str, rate: int) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "165", "--stdout", text],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    # sox resamples (a phone line for the caller) and normalises; -R keeps output repeatable.
    out = subprocess.run(
        [
            "sox",
            "-R",
            "-t",
            "wav",
            "-",
            "-t",
            "raw",
            "-e",
            "signed",
            "-b",
            "16",
            "-c",
            "1",
            "-r",
            str(rate),
            "-",
            "gain",
            "-n",
            "-3",
        ],
        input=wav,
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    return np.frombuffer(out, dtype="<i2")


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def synthesize(turns: list[tuple[str, str]]) -> Conversation:
    """Speak the turns: "user" is the caller (8 kHz), "assistant" the AI (22.05 kHz)."""
    clips: list[tuple[str, np.ndarray, int]] = []
    for role, text in turns:
        if role == "user":
            clips.append((role, _speak(text, CALLER_VOICE, CALLER_RATE), CALLER_RATE))
        else:
            clips.append((role, _speak(text, ASSISTANT_VOICE, ASSISTANT_RATE), ASSISTANT_RATE))
    t = 300
    spans: list[tuple[int, int]] = []
    for _, samples, rate in clips:
        length = len(samples) * 1000 // rate
        spans.append((t, t + length))
        t += length + GAP_MS
    duration = t
    caller = np.zeros(duration * CALLER_RATE // 1000 + 1, dtype=np.int16)
    assistant = np.zeros(duration * ASSISTANT_RATE // 1000 + 1, dtype=np.int16)
    for (role, samples, rate), (start, _) in zip(clips, spans, strict=True):
        track = caller if role == "user" else assistant
        at = start * rate // 1000
        track[at : at + len(samples)] = samples[: len(track) - at]
    return Conversation(
        _wav_bytes(caller, CALLER_RATE),
        _wav_bytes(assistant, ASSISTANT_RATE),
        tuple(spans),
        duration,
    )
