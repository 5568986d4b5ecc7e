"""Placement of live chunks on a two-leg timeline by their timestamps, in bounded memory.

Each leg keeps its native samples (mu-law bytes or int16) in a small preallocated buffer that
starts at the committed point. A chunk is copied in at the sample its timestamp names; a gap
stays silence; overlapping samples take the latest chunk's. The call's clock (the frontier) is
the latest chunk *start* seen on either leg; everything older than ``frontier - window`` is
final and is committed in batches to a consumer. So a chunk of any length is placed in full
whenever it arrives before the clock passes its start + window. Chunks that end before the
committed point are dropped and counted: a late chunk never shifts what follows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from audio.errors import InvalidChunk
from audio.formats import LEGS, MULAW_SILENCE, Leg, LegFormat, decode_pcm

DEFAULT_REORDER_WINDOW_MS = 200
DEFAULT_BATCH_MS = 480
# Upper bound of one committed batch when catching up (timestamp jump, finish).
MAX_BATCH_MS = 1000
# Spare room beyond window + batch before a leg buffer must commit or grow.
_SPARE_MS = 600
# A gap is committed as real silence this long (so every stage after holds only silence)
# before the rest of it is handed to the skipper.
GAP_WARM_MS = 2000


@dataclass(frozen=True, slots=True)
class Batch:
    """Committed audio for ``[start_ms, end_ms)``: per leg, float32 samples at the leg's rate."""

    start_ms: int
    end_ms: int
    caller: npt.NDArray[np.float32]
    assistant: npt.NDArray[np.float32]


@dataclass
class TimelineStats:
    """Counters of what the timeline received and what it had to drop."""

    chunks: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEGS, 0))
    samples: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEGS, 0))
    late_dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEGS, 0))
    late_trimmed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEGS, 0))
    reordered: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LEGS, 0))

    def as_dict(self) -> dict[str, dict[str, int]]:
        """Plain-dict view (for logs and JSON)."""
        return {
            "chunks": dict(self.chunks),
            "samples": dict(self.samples),
            "late_dropped": dict(self.late_dropped),
            "late_trimmed": dict(self.late_trimmed),
            "reordered": dict(self.reordered),
        }


class _LegBuffer:
    """Native samples of one leg from the committed point ``base`` onwards."""

    def __init__(self, fmt: LegFormat, capacity_ms: int) -> None:
        self.fmt = fmt
        self.rate = fmt.sample_rate
        self.dtype = np.dtype(np.uint8) if fmt.encoding == "mulaw" else np.dtype("<i2")
        self.silence = MULAW_SILENCE if fmt.encoding == "mulaw" else 0
        self.width = self.dtype.itemsize
        # The samples as bytes (a payload is copied in by slice, no array made per chunk),
        # and an array view of the same memory for decoding and moving whole batches.
        self.raw = bytearray()
        self.buffer: npt.NDArray[np.generic] = self._allocate(self.rate * capacity_ms // 1000)
        self.base = 0
        self.filled = 0  # relative end of the written region
        self.end = 0  # absolute end of the latest-ending chunk
        self.last_start = -1
        self.wide = fmt.encoding == "l16"
        self.chunks = self.samples = self.late_dropped = self.late_trimmed = self.reordered = 0

    def _allocate(self, samples: int) -> npt.NDArray[np.generic]:
        """A new buffer of ``samples`` silent samples (``raw`` and its array view)."""
        self.raw = bytearray(samples * self.width)
        buffer = np.frombuffer(self.raw, dtype=self.dtype)
        buffer[:] = self.silence
        self.buffer = buffer
        return buffer

    def sample_at(self, ms: int) -> int:
        return ms * self.rate // 1000

    def write(self, start: int, payload: bytes | memoryview) -> None:
        """Copy ``payload`` (whole samples in the leg's wire format) in from sample ``start``."""
        offset = start - self.base
        stop = offset + len(payload) // self.width
        if stop > self.buffer.shape[0]:
            old = self.buffer
            grown = self._allocate(max(stop, 2 * old.shape[0]))
            grown[: self.filled] = old[: self.filled]
        self.raw[offset * self.width : stop * self.width] = payload
        if stop > self.filled:
            self.filled = stop
        if start + stop - offset > self.end:
            self.end = start + stop - offset

    def skip(self, stop: int) -> None:
        """Move the committed point to ``stop`` over a stretch nothing was written to."""
        assert self.filled == 0
        self.base = stop

    def take(self, stop: int) -> npt.NDArray[np.float32]:
        """Decode and remove samples ``[base, stop)``; unwritten parts are silence."""
        count = stop - self.base
        held = min(count, self.buffer.shape[0])
        out = decode_pcm(self.fmt, self.buffer[:held])  # type: ignore[arg-type]
        if held < count:
            out = np.concatenate((out, np.zeros(count - held, dtype=np.float32)))
        if count >= self.filled:
            self.buffer[: self.filled] = self.silence
            self.filled = 0
        else:
            remaining = self.filled - count
            self.buffer[:remaining] = self.buffer[count : self.filled]
            self.buffer[remaining : self.filled] = self.silence
            self.filled = remaining
        self.base = stop
        return out


class Timeline:
    """Two legs placed by timestamp; commits final audio in batches to ``consumer``.

    ``push`` is cheap (validation and one copy) unless a chunk lands far beyond the buffer,
    in which case it commits first. Call :meth:`commit_due` when :attr:`due` is true and
    :meth:`finish` once at the end. Not thread-safe: one caller at a time.
    """

    def __init__(
        self,
        caller: LegFormat,
        assistant: LegFormat,
        consumer: Callable[[Batch], None],
        *,
        reorder_window_ms: int = DEFAULT_REORDER_WINDOW_MS,
        batch_ms: int = DEFAULT_BATCH_MS,
        skipper: Callable[[int], int] | None = None,
    ) -> None:
        if reorder_window_ms < 0 or batch_ms <= 0:
            raise ValueError("reorder_window_ms must be >= 0 and batch_ms > 0")
        self.window_ms = reorder_window_ms
        self.batch_ms = batch_ms
        capacity_ms = reorder_window_ms + batch_ms + _SPARE_MS
        self._legs = {
            "caller": _LegBuffer(caller, capacity_ms),
            "assistant": _LegBuffer(assistant, capacity_ms),
        }
        self._consumer = consumer
        # Given a span of pure silence (ms), passes over as much of it as it can cheaply
        # and says how much; the rest is committed as batches.
        self._skipper = skipper
        self.skipped_ms = 0
        self.frontier_ms = 0
        self.committed_ms = 0
        self.finished = False

    @property
    def stats(self) -> TimelineStats:
        """Counters of chunks and samples received, late chunks dropped or trimmed, reordered."""
        legs = self._legs.items()
        return TimelineStats(
            chunks={name: leg.chunks for name, leg in legs},
            samples={name: leg.samples for name, leg in legs},
            late_dropped={name: leg.late_dropped for name, leg in legs},
            late_trimmed={name: leg.late_trimmed for name, leg in legs},
            reordered={name: leg.reordered for name, leg in legs},
        )

    @property
    def due(self) -> bool:
        """Whether a full batch is final and waiting to be committed."""
        return self.frontier_ms - self.window_ms - self.committed_ms >= self.batch_ms

    @property
    def end_ms(self) -> int:
        """The call's length so far: the latest chunk end on either leg, rounded up to 1 ms."""
        return max(-(-leg.end * 1000 // leg.rate) for leg in self._legs.values())

    def push(self, leg: Leg, timestamp_ms: int, payload: bytes) -> None:
        """Place a raw payload of ``leg`` at ``timestamp_ms`` (ms since the call started)."""
        buffer = self._legs.get(leg)
        if buffer is None:
            raise InvalidChunk(f"unknown leg {leg!r} (expected 'caller' or 'assistant')")
        if self.finished:
            raise InvalidChunk("the recording is already finished")
        if type(timestamp_ms) is not int or timestamp_ms < 0:
            raise InvalidChunk(f"timestamp must be a non-negative integer, not {timestamp_ms!r}")
        count = len(payload)
        if buffer.wide:
            if count & 1:
                raise InvalidChunk("an L16 payload must have an even number of bytes")
            count >>= 1
        buffer.chunks += 1
        if not count:
            return
        rate = buffer.rate
        start = timestamp_ms * rate // 1000
        base = buffer.base
        data: bytes | memoryview = payload
        if start + count <= base:
            buffer.late_dropped += 1
            return
        if start < base:
            buffer.late_trimmed += 1
            data = memoryview(payload)[(base - start) * buffer.width :]
            count -= base - start
            start = base
        if start < buffer.last_start:
            buffer.reordered += 1
        buffer.last_start = start
        buffer.samples += count
        start_ms = start * 1000 // rate
        if start + count - base > buffer.buffer.shape[0]:
            # Far ahead of the buffer (a timestamp jump): commit what is final before this chunk.
            self._commit_to(max(self.frontier_ms, start_ms) - self.window_ms)
        buffer.write(start, data)
        if start_ms > self.frontier_ms:
            self.frontier_ms = start_ms

    def commit_due(self) -> None:
        """Commit every full batch that is final (older than the reorder window)."""
        while self.due:
            self._commit_batch(self.committed_ms + self.batch_ms)

    def finish(self) -> int:
        """Commit everything received (the shorter leg padded with silence); returns end ms."""
        end = self.end_ms
        self._commit_to(end)
        self.finished = True
        return end

    def _commit_to(self, target_ms: int) -> None:
        quiet_since: int | None = None
        while self.committed_ms < target_ms:
            if self._skipper is not None and not any(leg.filled for leg in self._legs.values()):
                # Nothing written ahead: the rest up to target is a gap of pure silence.
                quiet_since = self.committed_ms if quiet_since is None else quiet_since
                if self.committed_ms - quiet_since >= GAP_WARM_MS:
                    skipped = self._skipper(target_ms - self.committed_ms)
                    if skipped > 0:
                        self._skip(skipped)
                        quiet_since = None
                        continue
            self._commit_batch(min(target_ms, self.committed_ms + MAX_BATCH_MS))

    def _skip(self, span_ms: int) -> None:
        end_ms = self.committed_ms + span_ms
        for leg in self._legs.values():
            leg.skip(leg.sample_at(end_ms))
        self.committed_ms = end_ms
        self.skipped_ms += span_ms

    def _commit_batch(self, end_ms: int) -> None:
        caller = self._legs["caller"]
        assistant = self._legs["assistant"]
        batch = Batch(
            start_ms=self.committed_ms,
            end_ms=end_ms,
            caller=caller.take(caller.sample_at(end_ms)),
            assistant=assistant.take(assistant.sample_at(end_ms)),
        )
        self.committed_ms = end_ms
        self._consumer(batch)
