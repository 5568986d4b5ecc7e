"""Streaming DTMF (keypad tone) detection on one decoded mono leg, at any rate from 8 to 48 kHz.

Every 5 ms a 20 ms window is correlated with the eight DTMF frequencies and their second
harmonics (the Goertzel bins, computed for a whole block as one matrix product). A window is
a hit for a digit when one row and one column tone dominate their groups, their levels are
within the twist limits, together they hold most of the window's energy (speech and music
spread theirs), and neither has a strong second harmonic (voices and instruments do). A tone
is confirmed after 30 ms of consecutive hits (a 40 ms tone gives at least that) and ends after
two missed windows, so one noisy window inside a tone does not split it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

ROW_HZ = (697.0, 770.0, 852.0, 941.0)
COLUMN_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
DIGITS = "123A456B789C*0#D"

HOP_MS = 5
WINDOW_MS = 20
# Consecutive hit windows that confirm a tone: a 40 ms tone in silence gives about seven.
CONFIRM_HITS = 6
# Missed windows that end a confirmed tone (one miss is bridged).
END_MISSES = 2
# Each tone at -42 dBFS (sine amplitude 0.008) or louder; the target is -30 dBFS.
MIN_TONE_POWER = 0.5 * 10 ** (-42 / 10)
# The high tone may be this much louder than the low one (normal twist) or quieter (reverse).
MAX_NORMAL_TWIST_DB = 8.0
MAX_REVERSE_TWIST_DB = 8.0
# The chosen tone must beat the others of its group by this much.
GROUP_DOMINANCE_DB = 8.0
# Share of the window's energy the two tones must hold.
MIN_ENERGY_SHARE = 0.7
# A second harmonic this close to its fundamental means a voice or an instrument. Twice a row
# frequency lies 60-70 Hz from a column tone, whose leakage reads about -15 dB there.
MAX_COLUMN_HARMONIC_DB = -15.0
MAX_ROW_HARMONIC_DB = -9.0

# A block whose samples all stay below this peak cannot hold a tone of MIN_TONE_POWER (a sine
# of power p peaks at sqrt(2 p)): it is passed over without any analysis (silence, quiet noise).
_GATE_PEAK = float(np.sqrt(2 * MIN_TONE_POWER))

# How far behind the last sample fed a tone's start may be when it is first reported (as
# :attr:`DtmfDetector.active`): the window past its start, then the further hits that confirm.
CONFIRM_LATENCY_MS = WINDOW_MS * 3 // 4 + (CONFIRM_HITS - 1) * HOP_MS


@dataclass(frozen=True, slots=True)
class ToneSpan:
    """A detected keypad tone: ``digit`` in samples ``[start, end)`` of the stream fed so far."""

    digit: str
    start: int
    end: int
    sample_rate: int

    @property
    def start_ms(self) -> float:
        """Start in ms from the first sample fed."""
        return self.start * 1000 / self.sample_rate

    @property
    def end_ms(self) -> float:
        """End in ms from the first sample fed."""
        return self.end * 1000 / self.sample_rate


def _basis(rate: int, window: int) -> npt.NDArray[np.float32]:
    """(window, 32) cosines and sines of the 8 tones and their second harmonics."""
    freqs = np.array(ROW_HZ + COLUMN_HZ, dtype=np.float64)
    freqs = np.concatenate((freqs, 2 * freqs))
    n = np.arange(window, dtype=np.float64)[:, None]
    phase = 2 * np.pi * n * freqs[None, :] / rate
    return np.concatenate((np.cos(phase), np.sin(phase)), axis=1).astype(np.float32)


class DtmfDetector:
    """Finds keypad tones in a mono float32 stream fed in chunks of any size.

    :meth:`feed` returns the tones that ended in (or before) the chunk; :attr:`active` tells
    about a confirmed tone still sounding. Call :meth:`flush` once at the end.
    """

    def __init__(self, sample_rate: int) -> None:
        if not 8000 <= sample_rate <= 192000:
            raise ValueError(f"DTMF detection needs a rate from 8 to 192 kHz, not {sample_rate}")
        self.sample_rate = sample_rate
        # The tones and their harmonics lie below 3.3 kHz: above 16 kHz the stream is first
        # averaged down by a whole factor to 8-16 kHz (a third of the cost at 24 kHz); a
        # caller's 8 kHz leg is analysed as it comes.
        self.factor = max(1, sample_rate // 8000)
        rate = sample_rate // self.factor
        self.hop = rate * HOP_MS // 1000
        self.window = self.hop * (WINDOW_MS // HOP_MS)
        basis = _basis(rate, self.window)
        # Cosines then sines of the eight tones, and of their second harmonics.
        self._fundamentals = np.ascontiguousarray(basis[:, list(range(8)) + list(range(16, 24))])
        self._harmonics = np.ascontiguousarray(basis[:, list(range(8, 16)) + list(range(24, 32))])
        self._scale = np.float32(2.0 / (self.window * self.window))
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_start = 0  # absolute index of _pending[0] (at the reduced rate)
        self._odd = np.zeros(0, dtype=np.float32)  # input samples short of a whole factor
        self._next_frame = 0  # index of the next window to compute
        self.fed = 0
        # Run state: the digit being followed, its first hit window, hits, misses in a row.
        self._digit = -1
        self._first = 0
        self._last = 0
        self._hits = 0
        self._misses = 0
        self._confirmed = False

    @property
    def active(self) -> ToneSpan | None:
        """The confirmed tone still sounding (its ``end`` is the last hit so far), if any."""
        if not self._confirmed:
            return None
        return self._span()

    def feed(self, samples: npt.NDArray[np.float32]) -> list[ToneSpan]:
        """Analyse the next samples; return tones that are over."""
        samples = np.asarray(samples, dtype=np.float32)
        self.fed += samples.shape[0]
        if self.factor > 1:
            joined = np.concatenate((self._odd, samples)) if self._odd.size else samples
            whole = joined.shape[0] // self.factor * self.factor
            self._odd = joined[whole:].copy()
            total = joined[0 : whole : self.factor].copy()
            for phase in range(1, self.factor):
                total += joined[phase : whole : self.factor]
            samples = total * np.float32(1.0 / self.factor)
        pending = np.concatenate((self._pending, samples)) if self._pending.size else samples
        offset = self._next_frame * self.hop - self._pending_start
        count = (pending.shape[0] - offset - self.window) // self.hop + 1
        done: list[ToneSpan] = []
        if count > 0:
            view = np.ascontiguousarray(pending[offset:], dtype=np.float32)
            if view.shape[0] and float(np.abs(view).max()) >= _GATE_PEAK:
                squares = np.concatenate(([0.0], np.cumsum(np.square(view, dtype=np.float64))))
                starts = np.arange(count) * self.hop
                energy = (squares[starts + self.window] - squares[starts]) / self.window
                done = self._classify(view, starts, energy.astype(np.float32))
            elif self._digit >= 0:
                # Too quiet for any tone: every window misses (ends a tone being followed).
                done = self._follow(np.full(count, -1, dtype=np.int64))
            self._next_frame += count
        keep_from = self._next_frame * self.hop - self._pending_start
        self._pending = pending[keep_from:].copy()
        self._pending_start += keep_from
        return done

    @property
    def skip_unit(self) -> int:
        """Input samples :meth:`skip_silence` takes a multiple of."""
        return self.factor * self.hop

    @property
    def idle(self) -> bool:
        """No tone is being followed: skipping silence cannot cut one."""
        return self._digit < 0 and not (self._pending.size and np.abs(self._pending).max() > 0)

    def skip_silence(self, count: int) -> None:
        """Pass over ``count`` input samples of silence as if fed (while :attr:`idle`)."""
        assert self.idle
        assert count % self.skip_unit == 0
        reduced = count // self.factor
        self.fed += count
        self._next_frame += reduced // self.hop
        self._pending_start += reduced

    def flush(self) -> list[ToneSpan]:
        """End of stream: a confirmed tone still sounding is over."""
        done = [self._span()] if self._confirmed else []
        self._reset()
        return done

    def _classify(
        self,
        view: npt.NDArray[np.float32],
        starts: npt.NDArray[np.int64],
        energy: npt.NDArray[np.float32],
    ) -> list[ToneSpan]:
        return self._follow(self._hits_of(view, starts, energy))

    def _follow(self, digits: npt.NDArray[np.int64]) -> list[ToneSpan]:
        """Advance the run state over the windows' digits (-1: no tone) from _next_frame."""
        done: list[ToneSpan] = []
        if self._digit < 0 and not (digits >= 0).any():
            return done
        base = self._next_frame
        for index, digit in enumerate(digits.tolist()):
            frame = base + index
            if self._digit >= 0 and digit == self._digit:
                self._last = frame
                self._hits += 1
                self._misses = 0
                if self._hits >= CONFIRM_HITS:
                    self._confirmed = True
                continue
            if self._digit >= 0:
                self._misses += 1
                if self._confirmed and self._misses < END_MISSES:
                    continue
                if self._confirmed:
                    done.append(self._span())
                self._reset()
            if digit >= 0:
                self._digit, self._first, self._last = digit, frame, frame
                self._hits, self._misses = 1, 0
        return done

    def _span(self) -> ToneSpan:
        # A window hits once the tone fills about three quarters of it: trim a quarter.
        quarter = self.window // 4
        start = (self._first * self.hop + quarter) * self.factor
        end = (self._last * self.hop + self.window - quarter) * self.factor
        return ToneSpan(DIGITS[self._digit], start, max(end, start), self.sample_rate)

    def _reset(self) -> None:
        self._digit = -1
        self._hits = self._misses = 0
        self._confirmed = False

    def _hits_of(
        self,
        view: npt.NDArray[np.float32],
        starts: npt.NDArray[np.int64],
        energy: npt.NDArray[np.float32],
    ) -> npt.NDArray[np.int64]:
        """Per window (``view`` from each of ``starts``, mean square ``energy``): the digit
        it holds, or -1. Quiet windows are not analysed."""
        digits: npt.NDArray[np.int64] = np.full(starts.shape[0], -1, dtype=np.int64)
        # Two tones of at least MIN_TONE_POWER each need about twice that in the window.
        loud = np.flatnonzero(energy >= MIN_TONE_POWER)
        if not loud.size:
            return digits
        # Overlapping windows as a strided view of ``view`` (no copy until the loud are taken).
        windows = np.ndarray(
            (starts.shape[0], self.window),
            dtype=np.float32,
            buffer=view,
            strides=(self.hop * 4, 4),
        )
        frames = windows[loud]
        energy = energy[loud]
        projections = frames @ self._fundamentals
        power = (np.square(projections[:, :8]) + np.square(projections[:, 8:])) * self._scale
        rows, cols = power[:, 0:4], power[:, 4:8]
        row = np.argmax(rows, axis=1)
        col = np.argmax(cols, axis=1)
        picks = np.arange(frames.shape[0])
        row_power = rows[picks, row]
        col_power = cols[picks, col]
        # Index 2 of four after partition is the second strongest.
        row_next = np.partition(rows, 2, axis=1)[:, 2]
        col_next = np.partition(cols, 2, axis=1)[:, 2]
        dominance = 10 ** (GROUP_DOMINANCE_DB / 10)
        ok = (
            (row_power >= MIN_TONE_POWER)
            & (col_power >= MIN_TONE_POWER)
            & (col_power <= row_power * 10 ** (MAX_NORMAL_TWIST_DB / 10))
            & (row_power <= col_power * 10 ** (MAX_REVERSE_TWIST_DB / 10))
            & (row_power >= row_next * dominance)
            & (col_power >= col_next * dominance)
            & (row_power + col_power >= MIN_ENERGY_SHARE * energy)
        )
        hits = np.flatnonzero(ok)
        if not hits.size:
            return digits
        harmonics = frames[hits] @ self._harmonics
        harmonic_power = (np.square(harmonics[:, :8]) + np.square(harmonics[:, 8:])) * self._scale
        row, col = row[hits], col[hits]
        lows = np.arange(hits.shape[0])
        clean = (
            harmonic_power[lows, row] <= row_power[hits] * 10 ** (MAX_ROW_HARMONIC_DB / 10)
        ) & (harmonic_power[lows, 4 + col] <= col_power[hits] * 10 ** (MAX_COLUMN_HARMONIC_DB / 10))
        digits[loud[hits[clean]]] = (row * 4 + col)[clean]
        return digits


def detect_tones(samples: npt.NDArray[np.float32], sample_rate: int) -> list[ToneSpan]:
    """All keypad tones in a whole mono signal."""
    detector = DtmfDetector(sample_rate)
    return detector.feed(samples) + detector.flush()
