"""Decoders for the payloads of telephony media streams: one per track, fed packet by packet.

G.711 (PCMU, PCMA) and L16 are tables and byte orders; G.722 and Opus keep state from
packet to packet and are decoded by FFmpeg's decoders through PyAV (its wheels carry
them, so nothing is installed on the system). Every decoder returns mono float32 samples
in [-1, 1) at :attr:`PayloadDecoder.sample_rate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import av
import numpy as np
import numpy.typing as npt

from audio.errors import BadSampleRate, InvalidChunk, UnsupportedEncoding
from audio.formats import MULAW_TABLE, check_sample_rate

Samples = npt.NDArray[np.float32]

# What each name (Telnyx ``media_format.encoding``, Twilio MIME types) means.
ENCODINGS: dict[str, str] = {
    "pcmu": "pcmu",
    "mulaw": "pcmu",
    "ulaw": "pcmu",
    "audio/x-mulaw": "pcmu",
    "pcma": "pcma",
    "alaw": "pcma",
    "audio/x-alaw": "pcma",
    "l16": "l16",
    "audio/l16": "l16",
    "g722": "g722",
    "opus": "opus",
}
# G.722 is 16 kHz audio whatever RTP's 8 kHz clock says; Opus decodes at 48 kHz.
G722_RATE = 16000
OPUS_RATE = 48000
# One RTP payload of any of these codecs is far smaller; more is not a media frame.
MAX_PAYLOAD = 64 * 1024


def _alaw_table() -> Samples:
    """G.711 A-law decode table: byte value -> float sample in [-1, 1)."""
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    linear = np.where(a & 0x80, magnitude, -magnitude)
    return (linear / 32768.0).astype(np.float32)


ALAW_TABLE: Samples = _alaw_table()


class PayloadDecoder(Protocol):
    """Turns one track's payloads, in order, into samples."""

    sample_rate: int

    def decode(self, payload: bytes) -> Samples:
        """The samples of one payload (may be empty while a codec fills its delay)."""
        ...


def _check_size(payload: bytes) -> None:
    if len(payload) > MAX_PAYLOAD:
        raise InvalidChunk(f"a media payload may be at most {MAX_PAYLOAD} bytes")


@dataclass
class TableDecoder:
    """G.711: one byte per sample through a 256-entry table."""

    table: Samples
    sample_rate: int

    def decode(self, payload: bytes) -> Samples:
        """Look every byte up."""
        _check_size(payload)
        return self.table[np.frombuffer(payload, dtype=np.uint8)]


@dataclass
class L16Decoder:
    """16-bit linear PCM in network byte order (big-endian, as RTP carries it)."""

    sample_rate: int
    channels: int = 1
    little_endian: bool = False

    def decode(self, payload: bytes) -> Samples:
        """Samples of the payload; several channels are mixed to one."""
        _check_size(payload)
        width = 2 * self.channels
        if len(payload) % width:
            raise InvalidChunk(f"an L16 payload must be a whole number of {width}-byte frames")
        ints = np.frombuffer(payload, dtype="<i2" if self.little_endian else ">i2")
        samples = ints.astype(np.float32) * np.float32(1.0 / 32768.0)
        if self.channels > 1:
            samples = samples.reshape(-1, self.channels).mean(axis=1, dtype=np.float32)
        return samples


class FFmpegDecoder:
    """A stateful FFmpeg decoder (G.722, Opus) fed one RTP payload per packet."""

    def __init__(self, codec: str, sample_rate: int, channels: int = 1) -> None:
        self.sample_rate = sample_rate
        ctx = av.CodecContext.create(codec, "r")
        if not isinstance(ctx, av.AudioCodecContext):
            raise UnsupportedEncoding(f"{codec} is not an audio codec")
        ctx.sample_rate = sample_rate
        ctx.layout = "stereo" if channels == 2 else "mono"
        self._ctx = ctx

    def decode(self, payload: bytes) -> Samples:
        """Decode one packet; a corrupt one is :class:`InvalidChunk`."""
        _check_size(payload)
        if not payload:
            return np.zeros(0, dtype=np.float32)
        try:
            frames = self._ctx.decode(av.Packet(payload))
        except av.FFmpegError as exc:
            raise InvalidChunk(f"undecodable {self._ctx.name} payload: {exc}") from None
        parts: list[Samples] = []
        for frame in frames:
            parts.append(_mono_float(frame))
            self.sample_rate = int(frame.sample_rate)
        if not parts:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(parts)


def _mono_float(frame: av.AudioFrame) -> Samples:
    """An audio frame as mono float32, whatever its sample format and layout."""
    data = frame.to_ndarray()
    fmt = frame.format.name
    if fmt.startswith("s16"):
        values = data.astype(np.float32) * np.float32(1.0 / 32768.0)
    elif fmt.startswith("s32"):
        values = data.astype(np.float32) * np.float32(1.0 / 2147483648.0)
    else:
        values = data.astype(np.float32)
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        values = values.reshape(channels, -1).mean(axis=0, dtype=np.float32)
    elif channels > 1:
        values = values.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(values.reshape(-1), dtype=np.float32)


def decoder_for(encoding: str, sample_rate: int, channels: int = 1) -> PayloadDecoder:
    """A fresh decoder for one track: ``encoding`` as Telnyx or Twilio name it.

    Raises :class:`UnsupportedEncoding` for anything else and :class:`BadSampleRate` for a
    rate the codec does not have.
    """
    name = ENCODINGS.get(str(encoding).strip().lower())
    if name is None:
        raise UnsupportedEncoding(
            f"unsupported audio encoding {encoding!r} (PCMU, PCMA, L16, G722 or OPUS)"
        )
    if channels not in (1, 2):
        raise UnsupportedEncoding(f"{channels} channels: a track has 1 or 2")
    rate = check_sample_rate(sample_rate)
    if name == "pcmu":
        return TableDecoder(MULAW_TABLE, rate)
    if name == "pcma":
        return TableDecoder(ALAW_TABLE, rate)
    if name == "l16":
        return L16Decoder(rate, channels)
    if name == "g722":
        # RTP announces G.722 at 8000 (a historical error in RFC 3551); the audio is 16 kHz.
        if rate not in (8000, G722_RATE):
            raise BadSampleRate(f"G.722 is 16000 Hz audio, not {rate} Hz")
        return FFmpegDecoder("g722", G722_RATE, channels)
    if rate not in (8000, 12000, 16000, 24000, OPUS_RATE):
        raise BadSampleRate(f"Opus decodes at 8, 12, 16, 24 or 48 kHz, not {rate} Hz")
    return FFmpegDecoder("opus", OPUS_RATE, channels)


def pcm16le(samples: Samples) -> bytes:
    """Samples as 16-bit little-endian PCM, the recorder's wide wire format (clipped)."""
    scaled = np.clip(np.rint(samples * np.float32(32768.0)), -32768, 32767)
    data: bytes = scaled.astype("<i2").tobytes()
    return data
