"""The live recorder, checked on the decoded MP3 (ffmpeg): separation, alignment, stream facts."""

from __future__ import annotations

import hashlib
import random
import subprocess
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audio import ENCODER_DELAY_SAMPLES, InvalidChunk, LegFormat, Recorder
from audio.dtmf_redaction import DELAY_MS
from audio.mp3 import complete_frames_end, parse_header
from tests.audio._dtmf import dtmf_tone, mulaw_encode
from tests.audio._helpers import (
    L16_24K,
    MULAW_8K,
    RATE,
    Chunk,
    chunks,
    feed,
    ffmpeg_decode,
    ffprobe_duration_ms,
    interleave,
    rms_db,
)
from tests.audio.conftest import Speech


def _silence(leg_format: LegFormat, ms: int) -> bytearray:
    count = leg_format.sample_rate * ms // 1000
    if leg_format.encoding == "mulaw":
        return bytearray([0xFF]) * count
    return bytearray(2 * count)


def _click(payload: bytearray, leg_format: LegFormat, at_ms: int) -> None:
    index = leg_format.sample_rate * at_ms // 1000
    if leg_format.encoding == "mulaw":
        payload[index] = 0x80  # the largest positive mu-law value
    else:
        payload[2 * index : 2 * index + 2] = (30000).to_bytes(2, "little", signed=True)


def test_channel_separation_on_real_speech(caller_speech: Speech, assistant_speech: Speech) -> None:
    """Turn-taking speech: each voice lives in its own channel, the other stays below -60 dB."""
    caller_ms = len(caller_speech.wire) // 8
    gap_ms = 400
    assistant_start = caller_ms + gap_ms
    caller_stream = chunks("caller", caller_speech.wire, 8000, 1)
    assistant_stream = [
        (leg, ts + assistant_start, payload)
        for leg, ts, payload in chunks("assistant", assistant_speech.wire, 24000, 2)
    ]
    mp3 = feed(Recorder(MULAW_8K, L16_24K), interleave(caller_stream, assistant_stream))
    decoded = ffmpeg_decode(mp3)[:, ENCODER_DELAY_SAMPLES:]
    margin = RATE // 10  # encoder pre-echo around the turn boundaries
    caller_turn = decoded[:, margin : caller_ms * 24 - margin]
    start = assistant_start * 24
    assistant_turn = decoded[:, start + margin : start + len(assistant_speech.samples) - margin]
    caller_leak = rms_db(caller_turn[1]) - rms_db(caller_turn[0])
    assistant_leak = rms_db(assistant_turn[0]) - rms_db(assistant_turn[1])
    assert rms_db(caller_turn[0]) > -40
    assert rms_db(assistant_turn[1]) > -40
    assert caller_leak < -60
    assert assistant_leak < -60


def test_double_talk_keeps_each_voice_in_its_channel(
    caller_speech: Speech, assistant_speech: Speech
) -> None:
    """Both talking at once: each channel still follows its own leg's envelope, not the other's."""
    stream = interleave(
        chunks("caller", caller_speech.wire, 8000, 1),
        chunks("assistant", assistant_speech.wire, 24000, 2),
    )
    decoded = ffmpeg_decode(feed(Recorder(MULAW_8K, L16_24K), stream))[:, ENCODER_DELAY_SAMPLES:]
    caller = np.repeat(caller_speech.samples, 3)
    assistant = assistant_speech.samples
    n = min(len(caller), len(assistant), decoded.shape[1])
    window = RATE // 50

    def envelope(signal: np.ndarray) -> np.ndarray:
        frames = signal[: n // window * window].reshape(-1, window)
        return np.sqrt(np.mean(np.square(frames), axis=1))

    ch0, ch1 = envelope(decoded[0]), envelope(decoded[1])
    want0, want1 = envelope(caller), envelope(assistant)
    assert np.corrcoef(ch0, want0)[0, 1] > 0.95
    assert np.corrcoef(ch1, want1)[0, 1] > 0.95
    assert np.corrcoef(ch0, want1)[0, 1] < np.corrcoef(ch0, want0)[0, 1] - 0.3


def _click_call(
    duration_ms: int, clicks_ms: list[int], *, gaps: set[int], seed: int
) -> list[Chunk]:
    """Both legs silent but for clicks at ``clicks_ms``; chunks in ``gaps`` never sent."""
    caller = _silence(MULAW_8K, duration_ms)
    assistant = _silence(L16_24K, duration_ms)
    for at in clicks_ms:
        _click(caller, MULAW_8K, at)
        _click(assistant, L16_24K, at)
    stream = [
        c
        for c in interleave(
            chunks("caller", bytes(caller), 8000, 1),
            chunks("assistant", bytes(assistant), 24000, 2),
        )
        if c[1] not in gaps
    ]
    # Network jitter: each chunk arrives up to 180 ms after its time, so the order shuffles.
    rng = random.Random(seed)
    return [
        c for _, c in sorted(((c[1] + rng.randrange(180), c) for c in stream), key=lambda x: x[0])
    ]


def _click_positions(decoded: np.ndarray, expected: int) -> tuple[int, int]:
    span = RATE // 20
    segment = decoded[:, expected - span : expected + span]
    return (
        int(np.argmax(np.abs(segment[0]))) - span + expected,
        int(np.argmax(np.abs(segment[1]))) - span + expected,
    )


def test_clicks_land_on_their_sample_despite_gaps_jitter_and_reordering() -> None:
    """A click stamped t ms lands at sample t*R/1000 + encoder delay in both channels."""
    clicks = [510, 1234, 4567, 9999, 15001, 19990]
    gaps = {
        ts for ts in range(0, 20000, 20) if ts % 700 < 40 and all(abs(ts - c) > 60 for c in clicks)
    }
    stream = _click_call(20000, clicks, gaps=gaps, seed=7)
    recorder = Recorder(MULAW_8K, L16_24K)
    decoded = ffmpeg_decode(feed(recorder, stream))
    assert recorder.stats["reordered"]["caller"] > 0
    assert sum(recorder.stats["late_dropped"].values()) == 0
    for at in clicks:
        expected = at * RATE // 1000 + ENCODER_DELAY_SAMPLES
        left, right = _click_positions(decoded, expected)
        assert abs(left - expected) <= 4, (at, left, expected)
        assert abs(right - expected) <= 4, (at, right, expected)


def _decode_windows(mp3: Path, centres: list[int], span: int) -> dict[int, np.ndarray]:
    """Stream-decode a long MP3 with ffmpeg, keeping only windows around ``centres``."""
    process = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-i", str(mp3), "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    windows: dict[int, np.ndarray] = {}
    position = 0
    block = 1 << 20
    while chunk := process.stdout.read(block * 4):
        samples = np.frombuffer(chunk[: len(chunk) // 4 * 4], dtype="<i2").reshape(-1, 2).T
        for centre in centres:
            lo, hi = centre - span, centre + span
            if lo < position + samples.shape[1] and hi > position:
                part = samples[:, max(lo - position, 0) : hi - position]
                windows[centre] = (
                    np.concatenate((windows[centre], part), axis=1) if centre in windows else part
                )
        position += samples.shape[1]
    process.stdout.close()
    assert process.wait() == 0
    return windows


@pytest.mark.slow
def test_an_hour_of_call_keeps_both_channels_aligned(tmp_path: Path) -> None:
    """After 60 minutes (8 kHz caller resampled beside a 24 kHz assistant) clicks coincide."""
    duration_ms = 3_600_000
    clicks = [1000, 1_234_567, 2_400_020, 3_599_000]
    recorder = Recorder(MULAW_8K, L16_24K)
    spool = tmp_path / "hour.mp3"
    silent_caller = bytes([0xFF]) * 160
    silent_assistant = bytes(960)
    with spool.open("wb") as out:
        for ts in range(0, duration_ms, 20):
            caller, assistant = silent_caller, silent_assistant
            for at in clicks:
                if ts <= at < ts + 20:
                    c, a = bytearray(caller), bytearray(assistant)
                    _click(c, MULAW_8K, at - ts)
                    _click(a, L16_24K, at - ts)
                    caller, assistant = bytes(c), bytes(a)
            out.write(recorder.add("caller", ts, caller))
            out.write(recorder.add("assistant", ts, assistant))
        result = recorder.finish()
        out.write(result.mp3_tail)
    centres = [at * RATE // 1000 + ENCODER_DELAY_SAMPLES for at in clicks]
    windows = _decode_windows(spool, centres, RATE // 20)
    for centre in centres:
        segment = windows[centre].astype(np.float32)
        left = int(np.argmax(np.abs(segment[0])))
        right = int(np.argmax(np.abs(segment[1])))
        assert abs(left - right) <= RATE // 1000
        assert abs(left - RATE // 20) <= 4
    assert abs(result.duration_ms - duration_ms) < 100


def test_finish_reports_the_stream_as_handed_out(
    tmp_path: Path, caller_speech: Speech, assistant_speech: Speech
) -> None:
    """size_bytes and sha256 cover exactly the bytes handed out; duration matches ffprobe."""
    stream = interleave(
        chunks("caller", caller_speech.wire, 8000, 1),
        chunks("assistant", assistant_speech.wire, 24000, 2),
    )
    recorder = Recorder(MULAW_8K, L16_24K)
    handed = bytearray()
    for leg, ts, payload in stream:
        handed += recorder.add(leg, ts, payload)
    result = recorder.finish()
    handed += result.mp3_tail
    path = tmp_path / "call.mp3"
    path.write_bytes(handed)
    assert result.size_bytes == len(handed)
    assert result.sha256 == hashlib.sha256(handed).hexdigest()
    assert abs(ffprobe_duration_ms(path) - result.duration_ms) <= 50
    decoded = ffmpeg_decode(path)
    assert abs(decoded.shape[1] * 1000 / RATE - result.duration_ms) <= 50
    content_ms = max(len(caller_speech.wire) // 8, len(assistant_speech.wire) // 48)
    assert abs(result.duration_ms - result.start_offset_ms - content_ms) <= 50
    header = parse_header(handed)
    assert header is not None
    assert (header.sample_rate, header.bitrate_kbps, header.channels) == (RATE, 32, 2)
    assert complete_frames_end(handed)[0] == len(handed)


@pytest.mark.parametrize("redact_dtmf", [False, True])
def test_handed_out_mp3_lags_live_audio_by_well_under_a_second(redact_dtmf: bool) -> None:
    """At every moment, the frames already handed out decode past (fed time - 1 s): a crash
    loses under a second. A batch (480 ms) waits out the reorder window (200 ms) before it is
    encoded; keypad-tone redaction holds DELAY_MS more so a tone's start is still silenceable.
    """
    recorder = Recorder(MULAW_8K, L16_24K, redact_dtmf=redact_dtmf)
    handed = bytearray()
    worst_lag_ms = 0.0
    tone = (np.sin(np.arange(480) / 5) * 8000).astype("<i2").tobytes()
    for ts in range(0, 10_000, 20):
        handed += recorder.add("caller", ts, bytes([0x20]) * 160)
        handed += recorder.add("assistant", ts, tone)
        _, _, samples = complete_frames_end(handed)
        content_ms = (samples - ENCODER_DELAY_SAMPLES) * 1000 / RATE
        worst_lag_ms = max(worst_lag_ms, ts + 20 - content_ms)
    assert worst_lag_ms < 900 + (DELAY_MS if redact_dtmf else 0)
    assert worst_lag_ms < 1000


def test_shorter_leg_is_padded_with_silence() -> None:
    """A leg that stops early is silent for the rest; the recording lasts as long as the longest."""
    recorder = Recorder(MULAW_8K, L16_24K)
    loud = (np.ones(480) * 12000).astype("<i2").tobytes()
    stream: list[Chunk] = [("caller", ts, bytes([0x10]) * 160) for ts in range(0, 3000, 20)]
    stream += [("assistant", ts, loud) for ts in range(0, 1000, 20)]
    decoded = ffmpeg_decode(feed(recorder, interleave(stream)))[:, ENCODER_DELAY_SAMPLES:]
    assert decoded.shape[1] >= 3 * RATE
    assert rms_db(decoded[1, int(1.2 * RATE) : 3 * RATE]) < -90
    assert rms_db(decoded[0, int(1.2 * RATE) : int(2.9 * RATE)]) > -30


def test_late_chunk_is_dropped_counted_and_changes_nothing() -> None:
    """A chunk far older than the window is counted and dropped; the output is unchanged."""
    stream: list[Chunk] = [("caller", ts, bytes([0x30]) * 160) for ts in range(0, 3000, 20)]
    reference = Recorder(MULAW_8K, L16_24K)
    expected = feed(reference, stream)
    recorder = Recorder(MULAW_8K, L16_24K)
    late = [*stream[:100], ("caller", 200, bytes([0x80]) * 160), *stream[100:]]
    assert feed(recorder, late) == expected
    assert recorder.stats["late_dropped"]["caller"] == 1


@pytest.mark.parametrize(
    "rates", [(8000, 8000), (8000, 16000), (16000, 22050), (11025, 8000), (44100, 48000)]
)
def test_other_rate_pairs_stay_aligned(rates: tuple[int, int]) -> None:
    """Clicks stay on their sample for other leg rates too (resampling both ways)."""
    caller_fmt, assistant_fmt = LegFormat("l16", rates[0]), LegFormat("l16", rates[1])
    rate = Recorder(caller_fmt, assistant_fmt).sample_rate
    clicks = [300, 1777, 2950]
    caller, assistant = _silence(caller_fmt, 3000), _silence(assistant_fmt, 3000)
    for at in clicks:
        _click(caller, caller_fmt, at)
        _click(assistant, assistant_fmt, at)
    stream = interleave(
        chunks("caller", bytes(caller), rates[0], 2),
        chunks("assistant", bytes(assistant), rates[1], 2),
    )
    decoded = ffmpeg_decode(feed(Recorder(caller_fmt, assistant_fmt), stream))
    for at in clicks:
        expected = at * rate // 1000 + ENCODER_DELAY_SAMPLES
        span = rate // 20
        segment = decoded[:, expected - span : expected + span]
        for channel in (0, 1):
            assert abs(int(np.argmax(np.abs(segment[channel]))) - span) <= max(4, rate // 4000)


def test_bad_chunks_raise_typed_errors() -> None:
    """Unknown leg, negative timestamp and odd L16 payloads are InvalidChunk."""
    recorder = Recorder(MULAW_8K, L16_24K)
    with pytest.raises(InvalidChunk, match="leg"):
        recorder.add("robot", 0, b"\xff")  # type: ignore[arg-type]
    with pytest.raises(InvalidChunk, match="timestamp"):
        recorder.add("caller", -20, b"\xff")
    with pytest.raises(InvalidChunk, match="even"):
        recorder.add("assistant", 0, b"\x00\x01\x02")


def test_push_and_encode_split_cheap_and_heavy_work() -> None:
    """push never returns audio; encode_due says when encode has a batch; output equals add's."""
    stream: list[Chunk] = [("caller", ts, bytes([0x30]) * 160) for ts in range(0, 2000, 20)]
    expected = feed(Recorder(MULAW_8K, L16_24K), stream)
    recorder = Recorder(MULAW_8K, L16_24K)
    out = bytearray()
    for leg, ts, payload in stream:
        recorder.push(leg, ts, payload)
        if recorder.encode_due:
            out += recorder.encode()
            assert not recorder.encode_due
    out += recorder.finish().mp3_tail
    assert bytes(out) == expected


def _tone_l16(ms: int) -> bytes:
    t = np.arange(24 * ms) / 24000
    return (np.sin(2 * np.pi * 440 * t) * 12000).astype("<i2").tobytes()


class _Sink:
    """Where handed-out bytes go: hashed and counted, kept only when asked."""

    def __init__(self, keep: bool) -> None:
        self.hash = hashlib.sha256()
        self.size = 0
        self.kept = bytearray() if keep else None

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.size += len(data)
        if self.kept is not None:
            self.kept += data


def _record_with_jump(jump_ms: int, *, keep: bool) -> tuple[_Sink, Any, Recorder, int]:
    """1 s of tone on both legs, nothing until ``jump_ms``, then 1 s more; via ``encode_to``."""
    recorder = Recorder(L16_24K, L16_24K)
    out = _Sink(keep)
    peak = 0
    tracemalloc.start()
    try:
        for base in (0, jump_ms):
            for ts in range(base, base + 1000, 20):
                for leg in ("caller", "assistant"):
                    recorder.push(leg, ts, _tone_l16(20))
                if recorder.encode_due:
                    recorder.encode_to(out.write)
        peak = tracemalloc.get_traced_memory()[1]
        result = recorder.finish()
    finally:
        tracemalloc.stop()
    out.write(result.mp3_tail)
    return out, result, recorder, peak


def test_a_timestamp_jump_to_near_4_hours_is_repeated_silent_frames() -> None:
    """No memory beyond the bytes themselves, no encoding of the gap; the stream stays exact."""
    jump_ms = 4 * 3600 * 1000 - 10_000
    handed, result, recorder, peak = _record_with_jump(jump_ms, keep=False)
    # The gap was passed over, not encoded: all of it but the warm-up and a frame.
    assert recorder.skipped_ms >= jump_ms - 1000 - 3000
    # Memory: the peaks of 4 hours (1.4 MB an hour), never the MP3 (57 MB) or the samples.
    assert peak < 8 * 1024 * 1024
    assert handed.size > 50_000_000
    assert result.size_bytes == handed.size
    assert result.sha256 == handed.hash.hexdigest()
    assert abs(result.duration_ms - result.start_offset_ms - (jump_ms + 1000)) <= 50
    assert result.peaks.zoom.shape[0] * result.peaks.zoom_spp >= (jump_ms + 1000) * 24


def test_a_skipped_gap_decodes_like_an_encoded_one(tmp_path: Path) -> None:
    """A 61 s gap: tone before and after in place, silence between, the length right."""
    jump_ms = 61_000
    handed, result, recorder, _ = _record_with_jump(jump_ms, keep=True)
    assert recorder.skipped_ms > 50_000
    assert handed.kept is not None
    assert complete_frames_end(handed.kept)[0] == len(handed.kept) == result.size_bytes
    path = tmp_path / "gap.mp3"
    path.write_bytes(handed.kept)
    decoded = ffmpeg_decode(path)
    offset = ENCODER_DELAY_SAMPLES
    assert abs(decoded.shape[1] - offset - (jump_ms + 1000) * 24) <= 1152
    at = lambda ms: offset + ms * 24  # noqa: E731
    for channel in (0, 1):
        assert rms_db(decoded[channel, at(100) : at(900)]) > -25
        assert rms_db(decoded[channel, at(2000) : at(jump_ms - 500)]) < -80
        assert rms_db(decoded[channel, at(jump_ms + 100) : at(jump_ms + 900)]) > -25


def test_a_keypad_tone_after_a_skipped_gap_is_still_silenced() -> None:
    """The redactor passes over the gap in step: a tone 61 s later is found at its time."""
    recorder = Recorder(L16_24K, L16_24K)
    out = _Sink(keep=False)
    jump_ms = 61_000
    tone = (dtmf_tone("5", 300, -10, 24000) * 32767).astype("<i2").tobytes()
    pieces = [(0, _tone_l16(1000)), (jump_ms, tone), (jump_ms + 300, bytes(2 * 24 * 1000))]
    for base, payload in pieces:
        for offset in range(0, len(payload), 960):
            ts = base + offset // 48
            for leg in ("caller", "assistant"):
                recorder.push(leg, ts, payload[offset : offset + 960])
            if recorder.encode_due:
                recorder.encode_to(out.write)
    result = recorder.finish()
    assert recorder.skipped_ms > 50_000
    spans = [(r["start_ms"], r["end_ms"]) for r in result.redactions]
    assert spans, "the tone was not found"
    assert all(jump_ms - 100 <= start and end <= jump_ms + 500 for start, end in spans), spans


@pytest.mark.parametrize(
    ("caller", "assistant"),
    [(MULAW_8K, L16_24K), (LegFormat("l16", 96000), LegFormat("l16", 16000))],
    ids=["mulaw-8k-caller", "l16-96k-caller"],
)
def test_a_keypad_tone_is_found_in_its_leg_at_the_leg_rate(
    caller: LegFormat, assistant: LegFormat
) -> None:
    """Tones are looked for in each decoded leg at its own rate (8 kHz mu-law as it comes, a
    96 kHz leg above the output rate): both channels silent over the tone, speech kept."""
    recorder = Recorder(caller, assistant)
    rate = caller.sample_rate
    lead = np.zeros(rate * 600 // 1000, dtype=np.float32)
    tail = np.zeros(rate * 900 // 1000, dtype=np.float32)
    signal = np.concatenate((lead, dtmf_tone("7", 60, -30, rate), tail))
    if caller.encoding == "mulaw":
        wire = mulaw_encode(signal).tobytes()
    else:
        wire = (signal * 32767).astype("<i2").tobytes()
    other = (np.sin(np.arange(assistant.sample_rate * 1.56) / 7) * 6000).astype("<i2").tobytes()
    step, other_step = caller.bytes_per_sample * rate // 50, 2 * assistant.sample_rate // 50
    stream: list[Chunk] = [
        ("caller", 20 * k, wire[k * step : (k + 1) * step]) for k in range(len(wire) // step)
    ]
    stream += [
        ("assistant", 20 * k, other[k * other_step : (k + 1) * other_step])
        for k in range(len(other) // other_step)
    ]
    mp3 = feed(recorder, interleave(stream))
    result = recorder.finish()
    [span] = result.redactions
    # The tone sounds from 600 to 660 ms: silenced with the padding either side.
    assert span["start_ms"] <= 600 - 30
    assert span["end_ms"] >= 660 + 30
    assert span["end_ms"] - span["start_ms"] <= 60 + 2 * 40 + 40
    out_rate = recorder.sample_rate
    decoded = ffmpeg_decode(mp3)[:, ENCODER_DELAY_SAMPLES:]
    lo, hi = span["start_ms"] * out_rate // 1000, span["end_ms"] * out_rate // 1000
    edge = out_rate * 30 // 1000  # an MP3 frame smears the edges
    assert rms_db(decoded[:, lo + edge : hi - edge]) < -60
    # The other leg keeps its audio outside the span.
    assert rms_db(decoded[1, hi + out_rate // 20 : hi + out_rate // 5]) > -30
