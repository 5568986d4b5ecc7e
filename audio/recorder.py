"""The live recorder: two legs in, stereo MP3 bytes and peaks out, while the call runs."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from audio.dtmf import DtmfDetector
from audio.dtmf_redaction import DtmfRedactor
from audio.formats import Leg, LegFormat, output_rate_for
from audio.mp3 import DEFAULT_BITRATE_KBPS
from audio.resample import resampler_for
from audio.timeline import DEFAULT_BATCH_MS, DEFAULT_REORDER_WINDOW_MS, Batch, Timeline
from audio.writer import RecordingResult, StereoMp3Writer

# If nobody calls encode(), push() commits on its own once this much audio is waiting.
_MAX_BACKLOG_MS = 2000


class _LegStage:
    """Brings one leg to the output rate, keeping produced-but-unused samples in a FIFO."""

    def __init__(self, rate: int, output_rate: int) -> None:
        self.resampler = resampler_for(rate, output_rate)
        latency = 0 if self.resampler is None else self.resampler.latency_samples
        self.latency_ms = math.ceil(latency * 1000 / rate) + 1 if latency else 0
        self.fifo = np.zeros(0, dtype=np.float32)

    def feed(self, samples: npt.NDArray[np.float32]) -> None:
        if self.resampler is not None:
            samples = self.resampler.process(samples)
        self._append(samples)

    def flush(self) -> None:
        if self.resampler is not None:
            self._append(self.resampler.flush())

    def _append(self, samples: npt.NDArray[np.float32]) -> None:
        if samples.shape[0]:
            self.fifo = np.concatenate((self.fifo, samples)) if self.fifo.shape[0] else samples

    def take(self, count: int) -> tuple[npt.NDArray[np.float32], int]:
        """``count`` samples (zero-padded if short) and how many were missing."""
        out = self.fifo[:count]
        self.fifo = self.fifo[count:]
        missing = count - out.shape[0]
        if missing:
            out = np.concatenate((out, np.zeros(missing, dtype=np.float32)))
        return out, missing


class Recorder:
    """Records a live two-leg call into one stereo MP3 (ch 0 caller, ch 1 assistant) + peaks.

    Feed raw payloads with :meth:`add` (or :meth:`push` + :meth:`encode`); write every returned
    byte string to the spool in order; call :meth:`finish` once and write its ``mp3_tail``.
    Memory stays bounded whatever the call's length (peaks grow by 1.4 MB per hour).

    Cost model: :meth:`push` is a validation plus one copy into a preallocated buffer
    (microseconds). Every ``batch_ms`` of call time a batch becomes due (:attr:`encode_due`);
    :meth:`encode` then decodes, resamples, encodes and builds peaks for it (around a
    millisecond, mostly in native code that releases the GIL). An asyncio server should
    ``push`` on the loop and run ``encode``/``finish`` via ``asyncio.to_thread`` only when
    ``encode_due`` is true. One caller at a time: await the encode before the next push.
    """

    def __init__(
        self,
        caller: LegFormat,
        assistant: LegFormat,
        *,
        bitrate_kbps: int = DEFAULT_BITRATE_KBPS,
        reorder_window_ms: int = DEFAULT_REORDER_WINDOW_MS,
        batch_ms: int = DEFAULT_BATCH_MS,
        redact_dtmf: bool = True,
    ) -> None:
        self.sample_rate = output_rate_for(caller.sample_rate, assistant.sample_rate)
        self._writer = StereoMp3Writer(self.sample_rate, bitrate_kbps)
        self._resamplers = (
            _LegStage(caller.sample_rate, self.sample_rate),
            _LegStage(assistant.sample_rate, self.sample_rate),
        )
        # Output trails the committed input by the resamplers' look-ahead so both legs have it.
        self._latency_ms = max(r.latency_ms for r in self._resamplers)
        self._timeline = Timeline(
            caller,
            assistant,
            self._process,
            reorder_window_ms=reorder_window_ms,
            batch_ms=batch_ms,
            skipper=self._skip_silence,
        )
        self._out_samples = 0
        self._missing = 0
        # MP3 bytes not handed out yet; a (frame, count) pair is a silent frame repeated.
        self._outbox: list[bytes | tuple[bytes, int]] = []

        self._lock = threading.Lock()
        self._result: RecordingResult | None = None
        # Keypad tones are found in each decoded leg at its own rate (8 kHz for a mu-law
        # caller), then silenced in both channels before the encoder by a delay line at the
        # output rate; the MP3 then trails by DELAY_MS more.
        self._redactor = DtmfRedactor(self.sample_rate, detect=False) if redact_dtmf else None
        self._detectors = (
            (DtmfDetector(caller.sample_rate), DtmfDetector(assistant.sample_rate))
            if redact_dtmf
            else ()
        )
        self._gap_unit_ms = _gap_unit_ms(
            self.sample_rate,
            caller.sample_rate,
            assistant.sample_rate,
            (self._detectors[0].skip_unit, self._detectors[1].skip_unit)
            if self._detectors
            else (1, 1),
        )
        # Paused spans in output samples, [start, end) with None for "still paused".
        self._pauses: list[list[int | None]] = []

    @property
    def encode_due(self) -> bool:
        """True when :meth:`encode` has a batch to do (cheap to check)."""
        return self._timeline.due

    def push_is_heavy(self, timestamp_ms: int) -> bool:
        """Whether a push at ``timestamp_ms`` may encode on the spot (run it off the loop).

        A chunk far past the call's end makes the timeline fill the gap with silence, and
        more than :data:`_MAX_BACKLOG_MS` waiting is committed at once.
        """
        # The frontier (latest chunk start) is never past the end: a cheap, safe bound.
        return timestamp_ms > self._timeline.frontier_ms + _MAX_BACKLOG_MS

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: chunks and samples per leg, late chunks dropped/trimmed, reordered, bytes."""
        stats: dict[str, Any] = self._timeline.stats.as_dict()
        stats.update(
            frontier_ms=self._timeline.frontier_ms,
            committed_ms=self._timeline.committed_ms,
            mp3_bytes=self._writer.size,
            mp3_frames=self._writer.frames,
            resampler_underflow=self._missing,
        )
        return stats

    @property
    def duration_ms(self) -> int:
        """Call time received so far (latest chunk end on either leg)."""
        return self._timeline.end_ms

    @property
    def redactions(self) -> list[dict[str, int | str]]:
        """Keypad-tone spans silenced so far, in call time (the contract's redaction form)."""
        if self._redactor is None:
            return []
        return [span.as_dict() for span in self._redactor.redactions]

    def mark_dtmf(self, at_ms: int | None = None, duration_ms: int | None = None) -> None:
        """A ``dtmf`` event from the stream: silence the tone it reports, in both channels.

        ``at_ms`` is when the tone ended in call time (default: the end of the audio received
        so far, where an event that carries no time belongs); without ``duration_ms`` the
        200 ms before it are taken, plus 40 ms each side. Ignored when redaction is off.
        """
        with self._guard():
            if self._redactor is not None:
                end = self._timeline.end_ms if at_ms is None else at_ms
                self._redactor.mark(end, duration_ms)

    @property
    def paused(self) -> bool:
        """Whether the recording is paused now (both channels stored as silence)."""
        return bool(self._pauses) and self._pauses[-1][1] is None

    @property
    def pauses(self) -> list[dict[str, int | None]]:
        """The paused spans in call time: ``{"start_ms", "end_ms"}`` (``end_ms`` None if open)."""
        rate = self.sample_rate
        return [
            {
                "start_ms": int(start or 0) * 1000 // rate,
                "end_ms": None if end is None else end * 1000 // rate,
            }
            for start, end in self._pauses
        ]

    def pause(self, at_ms: int | None = None) -> int:
        """Store silence in both channels from ``at_ms`` (default: the audio received so far).

        Audio before it that is already encoded stays; the timeline keeps its length.
        Returns the pause's start in call time; pausing while paused changes nothing.
        """
        with self._guard():
            if self.paused:
                return int(self._pauses[-1][0] or 0) * 1000 // self.sample_rate
            at = self._timeline.end_ms if at_ms is None else at_ms
            start = max(self._out_samples, at * self.sample_rate // 1000)
            self._pauses.append([start, None])
            return start * 1000 // self.sample_rate

    def resume(self, at_ms: int | None = None) -> int | None:
        """Store the audio again from ``at_ms`` (default: the audio received so far).

        Returns the pause's end in call time, or None when not paused.
        """
        with self._guard():
            if not self.paused:
                return None
            span = self._pauses[-1]
            at = self._timeline.end_ms if at_ms is None else at_ms
            end = max(int(span[0] or 0), self._out_samples, at * self.sample_rate // 1000)
            span[1] = end
            return end * 1000 // self.sample_rate

    def push(self, leg: Leg, timestamp_ms: int, payload: bytes) -> None:
        """Place a chunk without encoding (unless 2 s of audio were left waiting)."""
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("the recorder is already busy: await encode before the next push")
        try:
            timeline = self._timeline
            timeline.push(leg, timestamp_ms, payload)
            if timeline.frontier_ms - timeline.committed_ms > _MAX_BACKLOG_MS:
                timeline.commit_due()
        finally:
            self._lock.release()

    def encode(self) -> bytes:
        """Encode every due batch; return the MP3 bytes produced since the last hand-out."""
        with self._guard():
            self._timeline.commit_due()
            return self._drain()

    def encode_to(self, write: Callable[[bytes], None]) -> None:
        """Like :meth:`encode`, handing the bytes to ``write`` in order, in bounded chunks.

        A long gap in the timestamps comes out as one silent frame repeated: no memory
        and next to no CPU whatever its length.
        """
        with self._guard():
            self._timeline.commit_due()
            outbox, self._outbox = self._outbox, []
            for item in outbox:
                if isinstance(item, bytes):
                    write(item)
                    continue
                frame, count = item
                per_chunk = max(1, (1 << 16) // max(1, len(frame)))
                while count:
                    take = min(count, per_chunk)
                    write(frame * take)
                    count -= take

    @property
    def skipped_ms(self) -> int:
        """Call time passed over as repeated silent frames rather than encoded."""
        return self._timeline.skipped_ms

    def add(self, leg: Leg, timestamp_ms: int, payload: bytes) -> bytes:
        """Place a chunk and, if a batch is due, encode it. Returns new MP3 bytes (often b"")."""
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("the recorder is already busy: await encode before the next push")
        try:
            timeline = self._timeline
            timeline.push(leg, timestamp_ms, payload)
            if timeline.due:
                timeline.commit_due()
            return self._drain() if self._outbox else b""
        finally:
            self._lock.release()

    def finish(self) -> RecordingResult:
        """Encode everything left, close the stream, and report on the whole MP3."""
        with self._guard():
            if self._result is not None:
                return self._result
            end_ms = self._timeline.finish()
            for resampler in self._resamplers:
                resampler.flush()
            self._tones_over()
            self._emit(end_ms * self.sample_rate // 1000)
            if self._redactor is not None:
                self._write(self._redactor.flush())
            _, result = self._writer.close(self._drain())
            self._result = replace(result, redactions=tuple(self.redactions))
            return self._result

    def _guard(self) -> _Guard:
        return _Guard(self._lock)

    def _process(self, batch: Batch) -> None:
        if self._detectors:
            self._detect(batch.caller, batch.assistant)
        self._resamplers[0].feed(batch.caller)
        self._resamplers[1].feed(batch.assistant)
        target_ms = max(0, batch.end_ms - self._latency_ms)
        self._emit(target_ms * self.sample_rate // 1000)

    def _detect(self, *legs: npt.NDArray[np.float32]) -> None:
        """Look for keypad tones in each leg's new samples; hand them to the delay line.

        The legs run ahead of the output (by the resamplers' look-ahead), so a tone is known
        before its start leaves the line.
        """
        redactor = self._redactor
        assert redactor is not None
        out = self.sample_rate
        for detector, samples in zip(self._detectors, legs, strict=True):
            rate = detector.sample_rate
            for tone in detector.feed(samples):
                redactor.add_tone(tone.start * out // rate, -(-tone.end * out // rate))
            active = detector.active
            if active is not None:
                redactor.add_tone(
                    active.start * out // rate, -(-detector.fed * out // rate), sounding=True
                )

    def _tones_over(self) -> None:
        """End of the call: tones still sounding in a leg end here."""
        redactor = self._redactor
        if redactor is None:
            return
        out = self.sample_rate
        for detector in self._detectors:
            rate = detector.sample_rate
            for tone in detector.flush():
                redactor.add_tone(tone.start * out // rate, -(-tone.end * out // rate))

    def _skip_silence(self, span_ms: int) -> int:
        """Pass over up to ``span_ms`` of pure silence as repeated silent frames; ms passed."""
        unit = self._gap_unit_ms
        span = span_ms // unit * unit
        if span <= 0 or not self._writer.frames:
            return 0
        samples = span * self.sample_rate // 1000
        frames = samples // self._writer.samples_per_frame
        if self._redactor is not None:
            if not (self._redactor.can_skip() and all(d.idle for d in self._detectors)):
                return 0
            self._redactor.skip_silence(samples)
            for detector in self._detectors:
                detector.skip_silence(span * detector.sample_rate // 1000)
        frame = self._writer.skip_silence(frames)
        self._out_samples += samples
        self._outbox.append((frame, frames))
        return span

    def _emit(self, target_samples: int) -> None:
        count = target_samples - self._out_samples
        if count <= 0:
            return
        left, missing_left = self._resamplers[0].take(count)
        right, missing_right = self._resamplers[1].take(count)
        self._missing += missing_left + missing_right
        stereo = np.stack((left, right))
        self._silence_paused(stereo, self._out_samples)
        self._out_samples = target_samples
        if self._redactor is not None:
            stereo = self._redactor.process(stereo)
        self._write(stereo)

    def _silence_paused(self, stereo: npt.NDArray[np.float32], first: int) -> None:
        last = first + stereo.shape[1]
        for start, end in reversed(self._pauses):
            if end is not None and end <= first:
                break
            lo = max(first, int(start or 0))
            hi = last if end is None else min(last, end)
            if hi > lo:
                stereo[:, lo - first : hi - first] = 0

    def _write(self, stereo: npt.NDArray[np.float32]) -> None:
        data = self._writer.write(stereo)
        if data:
            self._outbox.append(data)

    def _drain(self) -> bytes:
        if not self._outbox:
            return b""
        parts = [item if isinstance(item, bytes) else item[0] * item[1] for item in self._outbox]
        self._outbox.clear()
        return b"".join(parts) if len(parts) > 1 else parts[0]


def _gap_unit_ms(
    output_rate: int, caller_rate: int, assistant_rate: int, steps: tuple[int, int]
) -> int:
    """The shortest span (ms): whole MP3 frames out, whole multiples of each leg's ``steps``
    (its tone detector's skip unit, in leg samples)."""
    per_frame = 1152 if output_rate >= 32000 else 576
    unit = 1000 * per_frame // math.gcd(1000 * per_frame, output_rate)
    for rate, step in zip((caller_rate, assistant_rate), steps, strict=True):
        # span * rate / 1000 must be a whole multiple of step.
        leg_unit = 1000 * step // math.gcd(1000 * step, rate)
        unit = unit * leg_unit // math.gcd(unit, leg_unit)
    return unit


class _Guard:
    """Refuses concurrent use instead of corrupting state (the recorder is single-caller)."""

    __slots__ = ("_lock",)

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("the recorder is already busy: await encode before the next push")

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
