"""Shared bench helpers: a realistic two-leg call made from espeak-ng speech, progress output."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CALLER_LINES = [
    "Hi, I am calling about my order. It has not arrived yet.",
    "The order number is four five six seven. I placed it two weeks ago.",
    "Can you tell me when it will be delivered? I need it before the weekend.",
    "Okay, and if it does not come by Friday, can I get a refund?",
]
ASSISTANT_LINES = [
    "Thank you for calling. I am sorry to hear that, let me look it up for you.",
    "I found your order. It shipped on Monday and is with the courier now.",
    "It should arrive by Thursday afternoon. I will send you the tracking link.",
    "Yes, if it is late you can request a full refund from your account page.",
]


def _speak(text: str, voice: str, rate: int, directory: Path, name: str) -> npt.NDArray[np.int16]:
    raw, out = directory / f"{name}.raw.wav", directory / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", "-R", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(out)], check=True
    )
    with wave.open(str(out)) as handle:
        return np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").copy()


def mulaw_encode(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """G.711 mu-law encoding (the inverse of the recorder's table)."""
    x = samples.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def make_call(seconds: int) -> tuple[bytes, bytes, npt.NDArray[np.float32]]:
    """A turn-taking call: (caller mu-law 8 kHz, assistant L16 24 kHz, stereo float32 at 24 kHz)."""
    with tempfile.TemporaryDirectory() as work:
        directory = Path(work)
        caller_turns = [
            _speak(t, "en-us", 8000, directory, f"c{i}") for i, t in enumerate(CALLER_LINES)
        ]
        assistant_turns = [
            _speak(t, "en-gb+f3", 24000, directory, f"a{i}") for i, t in enumerate(ASSISTANT_LINES)
        ]
    caller = np.zeros(seconds * 8000, dtype=np.int16)
    assistant = np.zeros(seconds * 24000, dtype=np.int16)
    t, turn = 0.3, 0
    while True:
        c = caller_turns[turn % len(caller_turns)]
        start = int(t * 8000)
        if start + len(c) > len(caller):
            break
        caller[start : start + len(c)] = c
        t += len(c) / 8000 + 0.4
        a = assistant_turns[turn % len(assistant_turns)]
        start = int(t * 24000)
        if start + len(a) > len(assistant):
            break
        assistant[start : start + len(a)] = a
        t += len(a) / 24000 + 0.5
        turn += 1
    stereo = np.stack(
        (np.repeat(caller, 3).astype(np.float32) / 32768, assistant.astype(np.float32) / 32768)
    )
    return mulaw_encode(caller).tobytes(), assistant.astype("<i2").tobytes(), stereo


def chunked(caller: bytes, assistant: bytes, chunk_ms: int = 20) -> list[tuple[str, int, bytes]]:
    """Interleaved 20 ms chunks of both legs, as they arrive on a media stream."""
    out: list[tuple[str, int, bytes]] = []
    step_c, step_a = 8 * chunk_ms, 48 * chunk_ms
    for k in range(len(caller) // step_c):
        out.append(("caller", k * chunk_ms, caller[k * step_c : (k + 1) * step_c]))
        out.append(("assistant", k * chunk_ms, assistant[k * step_a : (k + 1) * step_a]))
    return out


def post_call(http: Any, assistant_id: str) -> str:
    """Create an inbound call of ``assistant_id`` through the API (an httpx client); its id."""
    r = http.post(
        "/api/v1/calls",
        json={
            "assistant_id": assistant_id,
            "direction": "inbound",
            "from_number": "+14155550100",
            "to_number": "+14155550101",
        },
    )
    r.raise_for_status()
    return str(r.json()["id"])


def progress(message: str) -> None:
    """One progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def verdict(name: str, value: float, target: float, *, at_most: bool) -> bool:
    """Print the PASS/FAIL line for a target and return whether it passed."""
    ok = value <= target if at_most else value >= target
    sign = "<=" if at_most else ">="
    print(f"{'PASS' if ok else 'FAIL'}: {name} = {value:.3g} (target {sign} {target:g})")
    return ok
