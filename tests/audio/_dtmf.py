"""Real keypad tones for the tests: the standard frequency pairs, optionally as a phone leg."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from audio.dtmf import COLUMN_HZ, DIGITS, ROW_HZ
from audio.formats import MULAW_TABLE


def dtmf_tone(digit: str, ms: int, level_db: float, rate: int) -> npt.NDArray[np.float32]:
    """``digit``'s row and column sines, each at ``level_db`` dBFS (sine peak), ``ms`` long."""
    index = DIGITS.index(digit)
    t = np.arange(rate * ms // 1000) / rate
    amplitude = 10 ** (level_db / 20)
    row, col = ROW_HZ[index // 4], COLUMN_HZ[index % 4]
    tone = amplitude * (np.sin(2 * np.pi * row * t) + np.sin(2 * np.pi * col * t))
    return tone.astype(np.float32)


NUMBER = "4921"
TONE_MS = 90
GAP_MS = 160


def with_number(
    speech: npt.NDArray[np.float32], half: int
) -> tuple[npt.NDArray[np.float32], list[tuple[int, int]]]:
    """8 kHz ``speech`` with NUMBER typed at sample ``half`` (a gap before each tone and
    after the last): the signal and each tone's [start, end) in ms."""
    parts = [speech[:half]]
    position = half // 8
    tones = []
    for digit in NUMBER:
        parts.append(np.zeros(8 * GAP_MS, dtype=np.float32))
        position += GAP_MS
        parts.append(dtmf_tone(digit, TONE_MS, -12, 8000))
        tones.append((position, position + TONE_MS))
        position += TONE_MS
    parts += [np.zeros(8 * GAP_MS, dtype=np.float32), speech[half:]]
    return np.concatenate(parts), tones


def mulaw_encode(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """G.711 mu-law bytes of float samples (the inverse of the recorder's table)."""
    x = np.clip(samples * 32768, -32768, 32767).astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def phone_leg(signal: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """An 8 kHz signal as a telephone leg delivers it: 300-3400 Hz, mu-law coded and decoded."""
    spectrum = np.fft.rfft(signal)
    freqs = np.fft.rfftfreq(signal.shape[0], 1 / 8000)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    banded = np.fft.irfft(spectrum, signal.shape[0]).astype(np.float32)
    decoded: npt.NDArray[np.float32] = MULAW_TABLE[mulaw_encode(banded)]
    return decoded


def hold_tune(seconds: int, rate: int = 8000) -> npt.NDArray[np.float32]:
    """Music-on-hold-like audio: a melody over triads, notes with harmonics, fixed seed."""
    rng = np.random.default_rng(5)
    out = np.zeros(seconds * rate, dtype=np.float32)
    scale = [0, 2, 4, 5, 7, 9, 11]

    def note(pitch: int, length: int, level: float) -> npt.NDArray[np.float32]:
        t = np.arange(length) / rate
        freq = 440 * 2 ** ((pitch - 69) / 12)
        partials = sum(
            a * np.sin(2 * np.pi * freq * (k + 1) * t) for k, a in enumerate((1, 0.5, 0.3))
        )
        return (level * partials * np.minimum(1, t / 0.02) * np.exp(-t * 2.5)).astype(np.float32)

    position = 0
    while position < out.shape[0]:
        length = rate
        root = 48 + scale[int(rng.integers(7))]
        for interval in (12, 16, 19):
            piece = note(root + interval, length, 0.12)[: out.shape[0] - position]
            out[position : position + piece.shape[0]] += piece
        at = position
        while at < position + length:
            step = int(rate * rng.choice([0.125, 0.25]))
            piece = note(72 + scale[int(rng.integers(7))], step, 0.2)[: out.shape[0] - at]
            out[at : at + piece.shape[0]] += piece
            at += step
        position += length
    return out
