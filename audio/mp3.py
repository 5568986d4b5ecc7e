"""MP3 frames: header parsing, a streaming stereo encoder handing out whole frames, tail repair."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import lameenc
import numpy as np
import numpy.typing as npt

# LAME's encoder delay (576) plus the Layer III decoder delay (529), in samples at the output
# rate: a decoder without gapless info (ffmpeg, browsers, pedalboard) outputs this much silence
# before the first input sample.
ENCODER_DELAY_SAMPLES = 1105

BITRATES_KBPS: tuple[int, ...] = (32, 40, 48, 56, 64)
# LAME's -q 7 ("fast"): no noise-shaping search. On espeak-ng speech at 24 kHz, 32 kbps it
# costs 40% less CPU than the default -q 3 and keeps STOI at 0.991/0.992 per channel (-q 3:
# 0.990/0.988); size is the same (CBR).
LAME_QUALITY = 7
DEFAULT_BITRATE_KBPS = 32

_BITRATES_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BITRATES_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """A parsed MPEG audio Layer III frame header."""

    mpeg1: bool
    bitrate_kbps: int
    sample_rate: int
    padding: int
    channels: int

    @property
    def length(self) -> int:
        """Frame length in bytes, header included (Layer III)."""
        coefficient = 144 if self.mpeg1 else 72
        return coefficient * self.bitrate_kbps * 1000 // self.sample_rate + self.padding

    @property
    def samples(self) -> int:
        """Samples per channel the frame decodes to."""
        return 1152 if self.mpeg1 else 576


def parse_header(data: bytes | bytearray | memoryview, offset: int = 0) -> FrameHeader | None:
    """Parse a Layer III header at ``offset``; ``None`` when it is not one (or is free-format)."""
    if offset + 4 > len(data):
        return None
    b0, b1, b2, b3 = data[offset], data[offset + 1], data[offset + 2], data[offset + 3]
    if b0 != 0xFF or (b1 & 0xE0) != 0xE0:
        return None
    version = (b1 >> 3) & 3
    layer = (b1 >> 1) & 3
    bitrate_index = b2 >> 4
    rate_index = (b2 >> 2) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    table = _BITRATES_V1 if version == 3 else _BITRATES_V2
    return FrameHeader(
        mpeg1=version == 3,
        bitrate_kbps=table[bitrate_index],
        sample_rate=_RATES[version][rate_index],
        padding=(b2 >> 1) & 1,
        channels=1 if (b3 >> 6) == 3 else 2,
    )


def _id3v2_size(data: bytes | bytearray | memoryview) -> int:
    """Size of a leading ID3v2 tag (0 when there is none)."""
    if len(data) >= 10 and bytes(data[:3]) == b"ID3":
        size = 0
        for byte in data[6:10]:
            size = (size << 7) | (byte & 0x7F)
        return 10 + size + (10 if data[5] & 0x10 else 0)
    return 0


# (second header byte << 8 | third) -> (frame length, samples), or None when not a frame:
# the length and samples of a Layer III frame depend on these two bytes only.
_SHAPES: dict[int, tuple[int, int] | None] = {}


def _shape(data: bytes | bytearray | memoryview, offset: int) -> tuple[int, int] | None:
    """(length, samples) of the frame whose header is at ``offset``, None if not one."""
    if offset + 4 > len(data) or data[offset] != 0xFF:
        return None
    key = data[offset + 1] << 8 | data[offset + 2]
    try:
        return _SHAPES[key]
    except KeyError:
        header = parse_header(data, offset)
        shape = None if header is None else (header.length, header.samples)
        _SHAPES[key] = shape
        return shape


def _walk(data: bytes | bytearray | memoryview) -> tuple[int, int, int, int]:
    """Walk frames from the start: (end of the last complete frame, frames, samples, start of
    the last complete frame)."""
    offset = _id3v2_size(data)
    frames = samples = 0
    end = last = offset
    size = len(data)
    while True:
        shape = _shape(data, offset)
        if shape is None or offset + shape[0] > size:
            return end, frames, samples, last
        last = offset
        offset += shape[0]
        end = offset
        frames += 1
        samples += shape[1]


def complete_frames_end(data: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """Walk frames from the start: (end offset of the last complete frame, frames, samples)."""
    end, frames, samples, _ = _walk(data)
    return end, frames, samples


@overload
def repair_mp3_tail(source: bytes | bytearray) -> bytes: ...
@overload
def repair_mp3_tail(source: str | os.PathLike[str]) -> int: ...
def repair_mp3_tail(source: bytes | bytearray | str | os.PathLike[str]) -> bytes | int:
    """Trim an MP3 stream cut by a crash to its last complete frame.

    Given bytes, returns the trimmed bytes. Given a path, truncates the file in place and
    returns its new size. Anything after the last whole frame (a partial frame, garbage) goes.
    """
    if isinstance(source, bytes | bytearray):
        end, _, _ = complete_frames_end(source)
        return bytes(source[:end])
    path = Path(source)
    with path.open("r+b") as handle:
        data = handle.read()
        end, _, _ = complete_frames_end(data)
        if end != len(data):
            handle.truncate(end)
    return end


class Mp3StreamEncoder:
    """Incremental CBR stereo MP3 encoder that hands out whole frames as they are produced.

    No Xing/Info header is emitted (the stream is open-ended), so every frame is audio and
    decoders show :data:`ENCODER_DELAY_SAMPLES` of leading silence.
    """

    def __init__(
        self,
        sample_rate: int,
        bitrate_kbps: int = DEFAULT_BITRATE_KBPS,
        quality: int = LAME_QUALITY,
    ) -> None:
        if bitrate_kbps not in BITRATES_KBPS:
            raise ValueError(f"bitrate must be one of {BITRATES_KBPS} kbps, not {bitrate_kbps}")
        self.sample_rate = sample_rate
        self.bitrate_kbps = bitrate_kbps
        encoder = lameenc.Encoder()
        encoder.set_channels(2)
        encoder.set_in_sample_rate(sample_rate)
        # LAME would pick its own output rate for a low bitrate (16 kHz at 32 kbps stereo).
        encoder.set_out_sample_rate(sample_rate)
        encoder.set_bit_rate(bitrate_kbps)
        encoder.set_quality(quality)
        encoder.silence()
        self._lame = encoder
        self._carry = bytearray()
        self.last_frame = b""
        self.frames = 0
        self.decoded_samples = 0
        self.samples_in = 0

    def write(self, stereo: npt.NDArray[np.float32] | npt.NDArray[np.int16]) -> bytes:
        """Encode a (2, n) float32 or int16 block; return the whole MP3 frames now available."""
        count = stereo.shape[1]
        if not count:
            return b""
        pcm: npt.NDArray[np.int16]
        if stereo.dtype == np.int16:
            pcm = stereo.astype(np.int16, copy=False)
        else:
            pcm = np.multiply(np.clip(stereo, -1.0, 1.0), 32767.0).astype(np.int16)
        self.samples_in += count
        # LAME takes the channels interleaved (the transpose's bytes); it releases the GIL.
        return self._frames_from(self._lame.encode(pcm.T.tobytes()))

    def close(self) -> bytes:
        """Flush the encoder and return the final frames."""
        out = self._frames_from(self._lame.flush())
        # Whatever does not parse as a frame is kept rather than silently lost.
        tail = bytes(self._carry)
        self._carry.clear()
        return out + tail

    def _frames_from(self, data: bytes | bytearray) -> bytes:
        if not data:
            return b""
        self._carry += data
        end, frames, samples, last = _walk(self._carry)
        if not frames:
            return b""
        out = bytes(self._carry[:end])
        del self._carry[:end]
        self.frames += frames
        self.decoded_samples += samples
        if frames:
            self.last_frame = out[last:]
        return out

    def skip_silence(self, frames: int) -> int:
        """Account for ``frames`` copies of :attr:`last_frame` written by the caller.

        Only valid after the encoder has been fed silence long enough that its output
        frames repeat (a silent CBR frame); returns the samples they decode to.
        """
        header = parse_header(self.last_frame)
        assert header is not None
        self.frames += frames
        self.decoded_samples += frames * header.samples
        self.samples_in += frames * header.samples
        return frames * header.samples
