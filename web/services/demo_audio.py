"""Two-voice speech for the demo calls, made offline by the eSpeak NG library in its wheel.

The ``espeakng-loader`` wheel ships libespeak-ng and its voice data, so the demo needs no
system package: the library is driven through ctypes, and the caller's phone leg (band-pass,
8 kHz, mu-law) is shaped with pedalboard and numpy.
"""

from __future__ import annotations

import ctypes
import io
import threading
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import espeakng_loader
import numpy as np
import numpy.typing as npt
import pedalboard
from pedalboard.io import StreamResampler

ASSISTANT_RATE = 22050
CALLER_RATE = 8000
GAP_MS = 450
LEAD_IN_MS = 300

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _PITCH, _RANGE = 1, 3, 4
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Voice:
    """An eSpeak NG voice ("language+variant") and how fast and high it speaks."""

    name: str
    words_per_minute: int
    pitch: int  # 0-100, 50 is the voice's own
    pitch_range: int  # 0-100, 0 is monotone


CALLER_VOICE = Voice("en-us+m3", 160, 35, 45)
ASSISTANT_VOICE = Voice("en+f3", 170, 70, 60)


@dataclass(frozen=True)
class Conversation:
    """Both legs as mono WAV bytes, and where each turn sits on the call's timeline."""

    caller_wav: bytes
    assistant_wav: bytes
    turns_ms: tuple[tuple[int, int], ...]
    duration_ms: int


class _Engine:
    """The process's one eSpeak NG instance (the library keeps global state)."""

    def __init__(self) -> None:
        self.lib: Any = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        self.rate = int(self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0))
        if self.rate <= 0:
            raise RuntimeError("eSpeak NG failed to initialise")
        self.chunks: list[npt.NDArray[np.int16]] = []
        # ctypes must keep the callback object alive as long as the library may call it.
        self.callback = _SYNTH_CALLBACK(self._collect)
        self.lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, wav: Any, count: int, _events: Any) -> int:
        if count > 0 and wav:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def speak(self, text: str, voice: Voice) -> Samples:
        if self.lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise RuntimeError(f"eSpeak NG has no voice {voice.name!r}")
        self.lib.espeak_SetParameter(_RATE, voice.words_per_minute, 0)
        self.lib.espeak_SetParameter(_PITCH, voice.pitch, 0)
        self.lib.espeak_SetParameter(_RANGE, voice.pitch_range, 0)
        data = text.encode()
        self.chunks = []
        status = self.lib.espeak_Synth(
            data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        if status != 0:
            raise RuntimeError(f"eSpeak NG failed to speak ({status})")
        pcm = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


_lock = threading.Lock()
_engine: _Engine | None = None


def speak(text: str, voice: Voice) -> tuple[Samples, int]:
    """``text`` spoken by ``voice``: mono float samples and their sample rate."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = _Engine()
        return _engine.speak(text, voice), _engine.rate


def _normalise(samples: Samples, peak_db: float = -3.0) -> Samples:
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak == 0.0:
        return samples
    return (samples * (10 ** (peak_db / 20) / peak)).astype(np.float32)


def _resample(samples: Samples, source: int, target: int) -> Samples:
    resampler = StreamResampler(source, target, 1)
    out = np.concatenate(
        [resampler.process(samples[np.newaxis, :]), resampler.process(None)], axis=1
    )
    return np.asarray(out[0], dtype=np.float32)


def phone_leg(samples: Samples, rate: int) -> Samples:
    """Speech as a phone line carries it: 300-3400 Hz, 8 kHz, G.711 mu-law quantisation."""
    shaped = samples[np.newaxis, :]
    # pedalboard's filters are first-order (6 dB/octave): three in a row make a phone's band.
    for _ in range(3):
        for band_edge in (pedalboard.HighpassFilter(300), pedalboard.LowpassFilter(3400)):
            shaped = band_edge(shaped, rate)
    narrow = _resample(np.asarray(shaped[0], dtype=np.float32), rate, CALLER_RATE)
    narrow = _normalise(np.clip(narrow, -1.0, 1.0).astype(np.float32))
    mu = 255.0
    code = np.round(np.sign(narrow) * np.log1p(mu * np.abs(narrow)) / np.log1p(mu) * 127) / 127
    expanded: Samples = (np.sign(code) * np.expm1(np.abs(code) * np.log1p(mu)) / mu).astype(
        np.float32
    )
    return expanded


def speak_caller(text: str) -> Samples:
    """The caller's line: the caller voice through a phone leg, at ``CALLER_RATE``."""
    samples, rate = speak(text, CALLER_VOICE)
    return phone_leg(samples, rate)


def speak_assistant(text: str) -> Samples:
    """The assistant's line: the assistant voice at ``ASSISTANT_RATE``, normalised."""
    samples, rate = speak(text, ASSISTANT_VOICE)
    if rate != ASSISTANT_RATE:
        samples = _resample(samples, rate, ASSISTANT_RATE)
    return _normalise(samples)


def wav_bytes(samples: Samples, rate: int) -> bytes:
    """Float samples in [-1, 1] as a mono 16-bit WAV file."""
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def synthesize(
    turns: Sequence[tuple[str, str]], pauses_ms: Sequence[int] | None = None
) -> Conversation:
    """Speak the turns: "user" is the caller (8 kHz), "assistant" the AI (22.05 kHz).

    ``pauses_ms[i]``, when given, is extra silence before turn ``i`` (someone on hold).
    """
    clips: list[tuple[str, Samples, int]] = []
    spoken: dict[tuple[str, str], Samples] = {}
    for role, text in turns:
        # Long calls repeat lines; each distinct line is spoken once.
        if (role, text) not in spoken:
            spoken[role, text] = speak_caller(text) if role == "user" else speak_assistant(text)
        rate = CALLER_RATE if role == "user" else ASSISTANT_RATE
        clips.append((role, spoken[role, text], rate))
    t = LEAD_IN_MS
    spans: list[tuple[int, int]] = []
    for n, (_, samples, rate) in enumerate(clips):
        if pauses_ms is not None and n > 0:
            t += pauses_ms[n]
        length = len(samples) * 1000 // rate
        spans.append((t, t + length))
        t += length + GAP_MS
    duration = t
    caller = np.zeros(duration * CALLER_RATE // 1000 + 1, dtype=np.float32)
    assistant = np.zeros(duration * ASSISTANT_RATE // 1000 + 1, dtype=np.float32)
    for (role, samples, rate), (start, _) in zip(clips, spans, strict=True):
        track = caller if role == "user" else assistant
        at = start * rate // 1000
        track[at : at + len(samples)] = samples[: len(track) - at]
    return Conversation(
        wav_bytes(caller, CALLER_RATE),
        wav_bytes(assistant, ASSISTANT_RATE),
        tuple(spans),
        duration,
    )
