"""The timeline layer: placement by timestamp, gaps, late chunks, and order independence."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from audio.formats import LegFormat
from audio.timeline import Batch, Timeline

CALLER = LegFormat("mulaw", 8000)
ASSISTANT = LegFormat("l16", 16000)


class Collector:
    """Consumer that concatenates committed batches per leg and checks they are contiguous."""

    def __init__(self) -> None:
        self.caller: list[npt.NDArray[np.float32]] = []
        self.assistant: list[npt.NDArray[np.float32]] = []
        self.end_ms = 0

    def __call__(self, batch: Batch) -> None:
        assert batch.start_ms == self.end_ms
        self.end_ms = batch.end_ms
        self.caller.append(batch.caller)
        self.assistant.append(batch.assistant)

    def legs(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        return np.concatenate(self.caller), np.concatenate(self.assistant)


def _signal(leg_rate: int, ms: int, seed: int, encoding: str) -> bytes:
    rng = np.random.default_rng(seed)
    count = leg_rate * ms // 1000
    if encoding == "mulaw":
        # Avoid 0x7F/0xFF (both decode to zero) so silence and signal are distinguishable.
        return rng.integers(0, 0x7F, size=count, dtype=np.uint8).tobytes()
    return rng.integers(-20000, 20000, size=count, dtype=np.int16).astype("<i2").tobytes()


def _split(
    payload: bytes, bytes_per_ms: int, cuts: list[int], total_ms: int
) -> list[tuple[int, bytes]]:
    edges = sorted({0, total_ms, *(c for c in cuts if 0 < c < total_ms)})
    return [
        (start, payload[start * bytes_per_ms : end * bytes_per_ms])
        for start, end in itertools.pairwise(edges)
    ]


def _run(events: list[tuple[str, int, bytes]]) -> tuple[Collector, Timeline]:
    collector = Collector()
    timeline = Timeline(CALLER, ASSISTANT, collector)
    for leg, ts, payload in events:
        timeline.push(leg, ts, payload)  # type: ignore[arg-type]
        timeline.commit_due()
    timeline.finish()
    return collector, timeline


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    total_ms=st.integers(min_value=40, max_value=3000),
    caller_cuts=st.lists(st.integers(min_value=1, max_value=2999), max_size=40),
    assistant_cuts=st.lists(st.integers(min_value=1, max_value=2999), max_size=40),
    delays=st.lists(st.integers(min_value=0, max_value=199), min_size=1, max_size=80),
)
def test_any_split_and_order_within_window_gives_the_in_order_output(
    total_ms: int,
    caller_cuts: list[int],
    assistant_cuts: list[int],
    delays: list[int],
) -> None:
    """Chunks of any size, each arriving < 200 ms after its start on the call clock, land alike."""
    caller = _signal(8000, total_ms, 1, "mulaw")
    assistant = _signal(16000, total_ms, 2, "l16")
    events = [("caller", ts, p) for ts, p in _split(caller, 8, caller_cuts, total_ms)]
    events += [("assistant", ts, p) for ts, p in _split(assistant, 32, assistant_cuts, total_ms)]
    in_order = sorted(events, key=lambda e: e[1])

    # Each chunk arrives less than the window after its start time on the call clock.
    def arrival(index: int) -> tuple[int, int]:
        return events[index][1] + delays[index % len(delays)], index

    shuffled = [events[i] for _, i in sorted(arrival(i) for i in range(len(events)))]
    expected, _ = _run(in_order)
    actual, timeline = _run(shuffled)
    assert sum(timeline.stats.late_dropped.values()) == 0
    for want, got in zip(expected.legs(), actual.legs(), strict=True):
        assert np.array_equal(want, got)
    caller_out, assistant_out = actual.legs()
    assert caller_out.shape[0] == 8 * total_ms
    assert assistant_out.shape[0] == 16 * total_ms


def test_gap_is_silence_and_never_shifts() -> None:
    """Audio after a gap sits at its own timestamp; the gap decodes as zeros."""
    collector = Collector()
    timeline = Timeline(CALLER, ASSISTANT, collector)
    tone = bytes([0x10]) * 160
    timeline.push("caller", 0, tone)
    timeline.push("caller", 1000, tone)
    timeline.finish()
    caller, assistant = collector.legs()
    assert caller.shape[0] == 8 * 1020
    assert np.all(caller[:160] != 0)
    assert np.all(caller[160:8000] == 0)
    assert np.all(caller[8000:8160] != 0)
    # The silent leg is padded to the same length.
    assert assistant.shape[0] == 16 * 1020
    assert not assistant.any()


def test_chunk_later_than_the_window_is_dropped_and_counted() -> None:
    """A chunk older than the committed point is dropped, not written over what followed."""
    collector = Collector()
    timeline = Timeline(CALLER, ASSISTANT, collector)
    for ts in range(0, 2000, 20):
        timeline.push("caller", ts, bytes([0x20]) * 160)
        timeline.commit_due()
    timeline.push("caller", 100, bytes([0x10]) * 160)
    timeline.finish()
    assert timeline.stats.late_dropped["caller"] == 1
    caller, _ = collector.legs()
    assert np.all(caller == caller[0])


def test_timestamp_jump_commits_instead_of_growing() -> None:
    """A chunk an hour ahead commits the silence before it rather than buffering an hour."""
    collector = Collector()
    timeline = Timeline(CALLER, ASSISTANT, collector)
    timeline.push("caller", 0, bytes([0x10]) * 160)
    timeline.push("assistant", 3_600_000, b"\x01\x00" * 320)
    assert timeline.committed_ms >= 3_600_000 - 200
    timeline.finish()
    caller, assistant = collector.legs()
    assert caller.shape[0] == 8 * 3_600_020
    assert assistant.shape[0] == 16 * 3_600_020
