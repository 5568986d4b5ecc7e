"""Keypad tones never reach the encoder: a short delay line that silences them in both channels.

Stereo blocks at the output rate go in; the same samples come out :data:`DELAY_MS` later,
with silence from :data:`PAD_MS` before to :data:`PAD_MS` after every tone found in either
channel (or reported by the stream with :meth:`DtmfRedactor.mark`). The delay is what the
detector needs to confirm a tone plus the padding before it, so the start of a tone is still
in the line when it is recognised. Speech outside the padded spans passes untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from audio.dtmf import CONFIRM_LATENCY_MS, HOP_MS, DtmfDetector

PAD_MS = 40
# A reported tone carries no timing: silence the EVENT_SPAN_MS before the event (a key press
# is usually 70-200 ms and is reported as it ends), plus the padding on both sides.
EVENT_SPAN_MS = 200
DELAY_MS = PAD_MS + CONFIRM_LATENCY_MS + HOP_MS


@dataclass(frozen=True, slots=True)
class Redaction:
    """A silenced span in call time (ms from the first sample), in both channels."""

    start_ms: int
    end_ms: int
    channel: str = "both"
    reason: str = "dtmf"

    def as_dict(self) -> dict[str, int | str]:
        """The contract's form: ``{"start_ms", "end_ms", "channel", "reason"}``."""
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "channel": self.channel,
            "reason": self.reason,
        }


class DtmfRedactor:
    """Delay line over (2, n) float32 blocks that silences keypad tones in both channels.

    :meth:`process` returns as many samples as were fed, minus the delay still held (exactly
    the same total after :meth:`flush`). Spans are in samples from the first sample fed.
    """

    def __init__(self, sample_rate: int, *, detect: bool = True) -> None:
        self.sample_rate = sample_rate
        self.delay = math.ceil(DELAY_MS * sample_rate / 1000)
        self.pad = PAD_MS * sample_rate // 1000
        # Without ``detect`` the caller finds the tones (in each leg, at the leg's own rate)
        # and hands them in with :meth:`add_tone`; the line only delays and silences.
        self._detectors: tuple[DtmfDetector, ...] = (
            (DtmfDetector(sample_rate), DtmfDetector(sample_rate)) if detect else ()
        )
        self._held = np.zeros((2, 0), dtype=np.float32)
        self._out = 0  # absolute index of _held[:, 0]
        self._in = 0  # samples fed so far
        self._spans: list[list[int]] = []  # merged [start, end) still to apply, sorted
        self._done: list[tuple[int, int]] = []

    @property
    def redactions(self) -> list[Redaction]:
        """Every span silenced so far (and those decided but still in the line), in ms."""
        spans = self._done + [(s, e) for s, e in self._spans if s < e]
        return [self._to_ms(start, end) for start, end in spans]

    def mark(self, at_ms: int, duration_ms: int | None = None) -> None:
        """A tone the stream reported as ending at ``at_ms`` (call time), ``duration_ms`` long.

        Without a duration the tone is taken as the :data:`EVENT_SPAN_MS` before ``at_ms``.
        Audio already out of the line cannot be taken back: what is still in it is silenced.
        """
        end = max(0, at_ms) * self.sample_rate // 1000
        length_ms = EVENT_SPAN_MS if duration_ms is None else max(0, duration_ms)
        length = length_ms * self.sample_rate // 1000
        self._add(end - length - self.pad, end + self.pad)

    def add_tone(self, start: int, end: int, *, sounding: bool = False) -> None:
        """A tone found elsewhere, ``[start, end)`` in samples at this rate, silenced with the
        padding; ``sounding``: still on at ``end`` (no padding after: the end comes later).

        Spans may reach past what was fed. Audio already out of the line cannot be taken back.
        """
        self._add(start - self.pad, end if sounding else end + self.pad)

    def process(self, stereo: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Feed a block; return the block that leaves the line (possibly empty)."""
        count = stereo.shape[1]
        if not count:
            return np.zeros((2, 0), dtype=np.float32)
        self._in += count
        for channel, detector in enumerate(self._detectors):
            for tone in detector.feed(stereo[channel]):
                self._add(tone.start - self.pad, tone.end + self.pad)
            active = detector.active
            if active is not None:
                # Still sounding: silence through everything fed; the end comes with the tone.
                self._add(active.start - self.pad, self._in)
        if self._held.shape[1]:
            held = np.concatenate((self._held, stereo), axis=1).astype(np.float32, copy=False)
        else:
            held = np.array(stereo, dtype=np.float32)
        self._silence(held)
        release = max(0, self._in - self.delay - self._out)
        return self._release(held, release)

    @property
    def skip_unit(self) -> int:
        """Samples :meth:`skip_silence` takes a multiple of."""
        return self._detectors[0].skip_unit if self._detectors else 1

    def can_skip(self) -> bool:
        """Whether silence can be passed over now: nothing held but silence, no tone open."""
        return (
            not self._spans
            and all(d.idle for d in self._detectors)
            and not (self._held.size and np.abs(self._held).max() > 0)
        )

    def skip_silence(self, count: int) -> None:
        """Pass over ``count`` samples of silence as if fed and released (when :meth:`can_skip`)."""
        assert count % self.skip_unit == 0
        self._in += count
        self._out += count
        for detector in self._detectors:
            detector.skip_silence(count)

    def flush(self) -> npt.NDArray[np.float32]:
        """End of stream: the tones still sounding end here; return everything held."""
        for detector in self._detectors:
            for tone in detector.flush():
                self._add(tone.start - self.pad, tone.end + self.pad)
        held = self._held
        self._silence(held)
        out = self._release(held, held.shape[1])
        self._done.extend((s, min(e, self._in)) for s, e in self._spans if s < min(e, self._in))
        self._spans.clear()
        return out

    def _add(self, start: int, end: int) -> None:
        start = max(start, self._out, 0)
        if end <= start:
            return
        spans = self._spans
        spans.append([start, end])
        spans.sort()
        merged: list[list[int]] = []
        for span in spans:
            if merged and span[0] <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], span[1])
            else:
                merged.append(span)
        self._spans = merged

    def _silence(self, held: npt.NDArray[np.float32]) -> None:
        base = self._out
        for start, end in self._spans:
            lo, hi = max(start - base, 0), min(end - base, held.shape[1])
            if lo < hi:
                held[:, lo:hi] = 0.0

    def _release(self, held: npt.NDArray[np.float32], count: int) -> npt.NDArray[np.float32]:
        out = np.ascontiguousarray(held[:, :count])
        self._held = held[:, count:].copy()
        self._out += count
        # Spans wholly out of the line are final (their end may lie ahead: keep those).
        while self._spans and self._spans[0][1] <= self._out:
            start, end = self._spans.pop(0)
            self._done.append((start, end))
        return out

    def _to_ms(self, start: int, end: int) -> Redaction:
        rate = self.sample_rate
        return Redaction(start * 1000 // rate, -(-end * 1000 // rate))
