"""Waveform peaks in audiowaveform's format (JSON v2, binary .dat v2), built incrementally.

Two levels: a zoom level at a fixed ~10 ms per pixel, kept as compact int8 min/max rows while
the call runs, and an overview of at most 4,000 pixels per channel derived from it at the end
(``samples_per_pixel`` a whole multiple of the zoom level's, so both describe the same samples).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import msgspec
import numpy as np
import numpy.typing as npt

OVERVIEW_MAX_POINTS = 4000
ZOOM_PIXELS_PER_SECOND = 100
# Long recordings keep a coarse level (this many zoom pixels per row), built block by block as
# the call runs, so the overview at hang-up reduces ~16 times fewer rows.
COARSE = 16
_BLOCK_ROWS = 6000  # a whole number of COARSE groups


def _reduce(rows: npt.NDArray[np.int8], factor: int) -> npt.NDArray[np.int8]:
    """Min of mins and max of maxes over groups of ``factor`` rows (the last may be short)."""
    length = rows.shape[0]
    if factor == 1:
        return rows
    groups = math.ceil(length / factor)
    padded = np.empty((groups * factor, 4), dtype=np.int8)
    padded[:length] = rows
    # Padding must not win a min/max: fill with the last row's values.
    padded[length:] = rows[-1]
    # Reduce along a contiguous axis: about ten times faster than the strided view on an
    # hour, and this runs while the caller waits at hang-up.
    columns = np.ascontiguousarray(padded.reshape(groups, factor, 4).transpose(0, 2, 1))
    out = np.empty((groups, 4), dtype=np.int8)
    out[:, 0::2] = columns[:, 0::2, :].min(axis=2)
    out[:, 1::2] = columns[:, 1::2, :].max(axis=2)
    return out


def overview_factor(length: int, max_points: int = OVERVIEW_MAX_POINTS) -> int:
    """Zoom pixels per overview pixel: the fewest that fit, a multiple of COARSE above it."""
    factor = max(1, math.ceil(length / max_points))
    return factor if factor <= COARSE else COARSE * math.ceil(factor / COARSE)


def zoom_samples_per_pixel(sample_rate: int) -> int:
    """Samples per zoom pixel at ``sample_rate`` (10 ms, rounded down to whole samples)."""
    return max(1, sample_rate // ZOOM_PIXELS_PER_SECOND)


def quantize(values: npt.NDArray[np.float32]) -> npt.NDArray[np.int8]:
    """Float samples to 8-bit peaks the way audiowaveform does (16-bit value >> 8)."""
    scaled = np.floor(values * np.float32(128.0))
    quantized: npt.NDArray[np.int8] = np.clip(scaled, -128, 127).astype(np.int8)
    return quantized


@dataclass(frozen=True)
class Peaks:
    """Peaks of a stereo recording at the zoom level; the overview is derived on demand.

    ``zoom`` has one row per pixel: ``[min0, max0, min1, max1]`` (channel 0 caller, 1 assistant)
    as int8. ``sample_rate`` is the MP3's; pixel ``i`` covers decoded samples
    ``[i * zoom_spp, (i + 1) * zoom_spp)`` of the MP3 as a decoder outputs it (encoder delay
    included), so the waveform lines up with playback.
    """

    sample_rate: int
    zoom_spp: int
    zoom: npt.NDArray[np.int8]
    # ``zoom`` reduced by COARSE, when the builder made it on the way; derived when absent.
    coarse: npt.NDArray[np.int8] | None = field(default=None, compare=False, repr=False)

    @property
    def length(self) -> int:
        """Number of zoom pixels per channel."""
        return int(self.zoom.shape[0])

    def overview(self, max_points: int = OVERVIEW_MAX_POINTS) -> tuple[int, npt.NDArray[np.int8]]:
        """(samples_per_pixel, rows) with at most ``max_points`` rows: min of mins, max of maxes."""
        factor = overview_factor(self.length, max_points)
        if factor <= COARSE:
            return self.zoom_spp * factor, _reduce(self.zoom, factor)
        coarse = self.coarse
        if coarse is None or coarse.shape[0] != math.ceil(self.length / COARSE):
            coarse = _reduce(self.zoom, COARSE)
        return self.zoom_spp * factor, _reduce(coarse, factor // COARSE)

    def overview_json(self, max_points: int = OVERVIEW_MAX_POINTS) -> bytes:
        """The overview as audiowaveform JSON v2 (compact), at most ``max_points`` per channel."""
        spp, rows = self.overview(max_points)
        return _json(self.sample_rate, spp, rows)

    def zoom_json(self) -> bytes:
        """The zoom level (~10 ms per pixel) as audiowaveform JSON v2 (compact)."""
        return _json(self.sample_rate, self.zoom_spp, self.zoom)

    def zoom_dat(self) -> bytes:
        """The zoom level as audiowaveform binary .dat v2 (8-bit), ~4 bytes per 10 ms."""
        header = struct.pack("<iIiiIi", 2, 1, self.sample_rate, self.zoom_spp, self.length, 2)
        return header + self.zoom.tobytes()

    def to_bytes(self) -> bytes:
        """Compact serialisation (the .dat form), readable back with :meth:`from_bytes`."""
        return self.zoom_dat()

    @classmethod
    def from_bytes(cls, data: bytes) -> Peaks:
        """Read what :meth:`to_bytes` (or audiowaveform's 8-bit stereo .dat v2) wrote."""
        version, flags, rate, spp, length, channels = struct.unpack_from("<iIiiIi", data)
        if version != 2 or flags != 1 or channels != 2:
            raise ValueError("not 8-bit stereo audiowaveform data version 2")
        rows = np.frombuffer(data, dtype=np.int8, offset=24, count=length * 4).reshape(length, 4)
        return cls(sample_rate=rate, zoom_spp=spp, zoom=rows.copy())


def _json(sample_rate: int, spp: int, rows: npt.NDArray[np.int8]) -> bytes:
    document = {
        "version": 2,
        "channels": 2,
        "sample_rate": sample_rate,
        "samples_per_pixel": spp,
        "bits": 8,
        "length": int(rows.shape[0]),
        "data": rows.reshape(-1).tolist(),
    }
    # msgspec writes the same compact JSON as json.dumps(separators=(",", ":")), 10x faster.
    return msgspec.json.encode(document)


class PeaksBuilder:
    """Accumulates zoom-level peaks from stereo float32 blocks, in bounded-growth int8 blocks.

    Memory: 4 bytes per 10 ms (1.4 MB per hour), never the samples themselves.
    """

    def __init__(self, sample_rate: int, leading_silence: int = 0) -> None:
        self.sample_rate = sample_rate
        self.spp = zoom_samples_per_pixel(sample_rate)
        self._carry = np.zeros((2, 0), dtype=np.float32)
        self._blocks: list[npt.NDArray[np.int8]] = []
        self._coarse: list[npt.NDArray[np.int8]] = []
        self._block = np.zeros((_BLOCK_ROWS, 4), dtype=np.int8)
        self._used = 0
        self.samples = 0
        if leading_silence:
            self.add(np.zeros((2, leading_silence), dtype=np.float32))

    def add(self, stereo: npt.NDArray[np.float32]) -> None:
        """Add a (2, n) block of samples in [-1, 1]."""
        self.samples += stereo.shape[1]
        if self._carry.shape[1]:
            stereo = np.concatenate((self._carry, stereo), axis=1)
        whole = stereo.shape[1] // self.spp
        if whole:
            cut = whole * self.spp
            self._append(stereo[:, :cut].reshape(2, whole, self.spp))
            stereo = stereo[:, cut:]
        self._carry = np.array(stereo, dtype=np.float32, copy=True)

    def add_silence(self, count: int) -> None:
        """Add ``count`` samples of silence in both channels without building them."""
        if count <= 0:
            return
        if self._carry.shape[1]:
            head = min(count, self.spp - self._carry.shape[1])
            self.add(np.zeros((2, head), dtype=np.float32))
            count -= head
        whole, rest = divmod(count, self.spp)
        self.samples += whole * self.spp
        while whole:
            take = min(whole, _BLOCK_ROWS)
            self._append_rows(np.zeros((take, 4), dtype=np.int8))
            whole -= take
        if rest:
            self.add(np.zeros((2, rest), dtype=np.float32))

    def pad_to(self, total_samples: int) -> None:
        """Append silence so the peaks cover ``total_samples`` samples."""
        if total_samples > self.samples:
            self.add(np.zeros((2, total_samples - self.samples), dtype=np.float32))

    def finish(self) -> Peaks:
        """Close the last partial pixel and return the :class:`Peaks`."""
        if self._carry.shape[1]:
            self._append(self._carry.reshape(2, 1, -1))
            self._carry = np.zeros((2, 0), dtype=np.float32)
        parts = [*self._blocks, self._block[: self._used]]
        zoom = np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
        coarse = None
        if self._used:
            coarse = np.concatenate([*self._coarse, _reduce(self._block[: self._used], COARSE)])
        elif self._coarse:
            coarse = np.concatenate(self._coarse)
        return Peaks(sample_rate=self.sample_rate, zoom_spp=self.spp, zoom=zoom, coarse=coarse)

    def _append(self, pixels: npt.NDArray[np.float32]) -> None:
        rows = np.empty((pixels.shape[1], 4), dtype=np.int8)
        rows[:, 0] = quantize(pixels[0].min(axis=1))
        rows[:, 1] = quantize(pixels[0].max(axis=1))
        rows[:, 2] = quantize(pixels[1].min(axis=1))
        rows[:, 3] = quantize(pixels[1].max(axis=1))
        self._append_rows(rows)

    def _append_rows(self, rows: npt.NDArray[np.int8]) -> None:
        start = 0
        while start < rows.shape[0]:
            room = _BLOCK_ROWS - self._used
            take = min(room, rows.shape[0] - start)
            self._block[self._used : self._used + take] = rows[start : start + take]
            self._used += take
            start += take
            if self._used == _BLOCK_ROWS:
                self._blocks.append(self._block)
                self._coarse.append(_reduce(self._block, COARSE))
                self._block = np.zeros((_BLOCK_ROWS, 4), dtype=np.int8)
                self._used = 0
