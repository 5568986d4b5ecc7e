"""Fixtures for the audio tests: real speech from espeak-ng, shaped with sox, cached per session."""

from __future__ import annotations

import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.speech import speak_wav

CALLER_TEXT = (
    "Hello, I am calling about my order number four five six. It has not arrived yet, "
    "and I would like to know when it will be delivered, or else get a refund please."
)
ASSISTANT_TEXT = (
    "Thank you for calling. I am sorry to hear that. Let me check the status of your order "
    "right away. It shipped on Monday and should arrive by Thursday afternoon."
)


@dataclass(frozen=True)
class Speech:
    """One leg's speech: the WAV file, its samples as float32, and the same as wire bytes."""

    wav: Path
    rate: int
    samples: npt.NDArray[np.float32]
    wire: bytes


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


def _speak(directory: Path, name: str, voice: str, text: str, rate: int) -> Path:
    return speak_wav(directory, name, voice, text, rate)


def _read_wav(path: Path) -> npt.NDArray[np.float32]:
    with wave.open(str(path), "rb") as handle:
        frames = handle.readframes(handle.getnframes())
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session temp directory holding the generated speech files."""
    _require("espeak-ng")
    _require("sox")
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def caller_speech(speech_dir: Path) -> Speech:
    """The caller: an en-us voice at 8 kHz, with its mu-law wire bytes encoded by sox."""
    wav = _speak(speech_dir, "caller", "en-us", CALLER_TEXT, 8000)
    ulaw = speech_dir / "caller.ul"
    subprocess.run(
        ["sox", "-R", str(wav), "-t", "raw", "-e", "mu-law", "-b", "8", "-r", "8000", str(ulaw)],
        check=True,
    )
    wire = ulaw.read_bytes()
    from audio.formats import MULAW_TABLE

    samples = MULAW_TABLE[np.frombuffer(wire, dtype=np.uint8)]
    return Speech(wav=wav, rate=8000, samples=samples, wire=wire)


@pytest.fixture(scope="session")
def assistant_speech(speech_dir: Path) -> Speech:
    """The assistant: an en-gb female voice at 24 kHz, wire bytes as 16-bit little-endian PCM."""
    wav = _speak(speech_dir, "assistant", "en-gb+f3", ASSISTANT_TEXT, 24000)
    samples = _read_wav(wav)
    wire = (samples * 32768.0).astype("<i2").tobytes()
    return Speech(wav=wav, rate=24000, samples=samples, wire=wire)


@pytest.fixture(scope="session")
def stereo_call_wav(speech_dir: Path, caller_speech: Speech, assistant_speech: Speech) -> Path:
    """One stereo 24 kHz WAV of a call (ch 0 caller, ch 1 assistant), made with sox."""
    caller24 = speech_dir / "caller24.wav"
    subprocess.run(["sox", "-R", str(caller_speech.wav), "-r", "24000", str(caller24)], check=True)
    out = speech_dir / "call-stereo.wav"
    subprocess.run(
        ["sox", "-R", "-M", str(caller24), str(assistant_speech.wav), str(out)],
        check=True,
    )
    return out


@pytest.fixture(scope="session")
def waveform_data_reader() -> Path:
    """The node script reading peaks with the waveform-data package (skips when unavailable)."""
    _require("node")
    root = Path(__file__).resolve().parents[2]
    if not (root / "node_modules" / "waveform-data").is_dir():
        pytest.skip("npm package waveform-data is not installed")
    return Path(__file__).with_name("read_peaks.cjs")
