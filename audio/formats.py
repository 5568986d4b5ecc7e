"""Wire formats of a live leg (mu-law, L16) and the choice of the output sample rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from audio.errors import BadSampleRate, InvalidChunk, UnsupportedEncoding

Encoding = Literal["mulaw", "l16"]
Leg = Literal["caller", "assistant"]
LEGS: tuple[Leg, Leg] = ("caller", "assistant")

MIN_RATE = 8000
MAX_RATE = 192000
MAX_OUTPUT_RATE = 48000
# Layer III sample rates (MPEG-2.5, MPEG-2, MPEG-1), the only rates the MP3 writer accepts.
MP3_RATES: tuple[int, ...] = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)

_ENCODING_ALIASES: dict[str, Encoding] = {
    "mulaw": "mulaw",
    "ulaw": "mulaw",
    "pcmu": "mulaw",
    "audio/x-mulaw": "mulaw",
    "l16": "l16",
    "pcm16": "l16",
    "audio/x-l16": "l16",
}


def _mulaw_table() -> npt.NDArray[np.float32]:
    """G.711 mu-law decode table: byte value -> float sample in [-1, 1)."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    linear = np.where(u & 0x80, -magnitude, magnitude)
    return (linear / 32768.0).astype(np.float32)


MULAW_TABLE: npt.NDArray[np.float32] = _mulaw_table()
MULAW_SILENCE = 0xFF


@dataclass(frozen=True, slots=True)
class LegFormat:
    """The wire format of one live leg: ``encoding`` ("mulaw" or "l16", 16-bit LE) and rate.

    Raises :class:`UnsupportedEncoding` or :class:`BadSampleRate` when invalid. Twilio's
    MIME names (``audio/x-mulaw``, ``audio/x-l16``) are accepted and normalised.
    """

    encoding: Encoding = "mulaw"
    sample_rate: int = 8000

    def __post_init__(self) -> None:
        normalised = _ENCODING_ALIASES.get(str(self.encoding).strip().lower())
        if normalised is None:
            raise UnsupportedEncoding(
                f"unsupported audio encoding {self.encoding!r} (use audio/x-mulaw or audio/x-l16)"
            )
        object.__setattr__(self, "encoding", normalised)
        object.__setattr__(self, "sample_rate", check_sample_rate(self.sample_rate))

    @property
    def bytes_per_sample(self) -> int:
        """Bytes one sample takes on the wire."""
        return 1 if self.encoding == "mulaw" else 2

    def samples_in(self, payload: bytes) -> int:
        """Number of samples in a payload; an odd-length L16 payload is :class:`InvalidChunk`."""
        if len(payload) % self.bytes_per_sample:
            raise InvalidChunk("an L16 payload must have an even number of bytes")
        return len(payload) // self.bytes_per_sample


def check_sample_rate(rate: object) -> int:
    """Validate a sample rate (whole Hz, 8000..192000) and return it as ``int``."""
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise BadSampleRate(f"sample rate must be a number of Hz, not {rate!r}")
    if rate != int(rate) or not MIN_RATE <= rate <= MAX_RATE:
        raise BadSampleRate(
            f"unsupported sample rate {rate!r} Hz (must be a whole number from "
            f"{MIN_RATE} to {MAX_RATE})"
        )
    return int(rate)


def output_rate_for(*rates: float) -> int:
    """The MP3 rate for legs at ``rates``: the nearest MP3 rate >= the highest, capped at 48 kHz."""
    if not rates:
        raise BadSampleRate("no sample rate given")
    highest = max(rates)
    for candidate in MP3_RATES:
        if candidate >= highest:
            return candidate
    return MAX_OUTPUT_RATE


def decode_pcm(
    fmt: LegFormat, raw: npt.NDArray[np.uint8] | npt.NDArray[np.int16]
) -> npt.NDArray[np.float32]:
    """Decode samples stored in the leg's native dtype (uint8 mu-law or int16) to float32."""
    if fmt.encoding == "mulaw":
        return MULAW_TABLE[raw]
    return raw.astype(np.float32) * np.float32(1.0 / 32768.0)
