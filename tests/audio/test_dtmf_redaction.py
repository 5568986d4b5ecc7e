"""Keypad tones never reach the MP3: real speech and real DTMF through the recorder and files."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from audio import ENCODER_DELAY_SAMPLES, Recorder, decode_untrusted_to_mp3, encode_files
from audio.dtmf import detect_tones
from audio.dtmf_redaction import DtmfRedactor
from tests.audio._dtmf import (
    NUMBER,
    dtmf_tone,
    mulaw_encode,
    phone_leg,
    with_number,
)
from tests.audio._helpers import (
    L16_24K,
    MULAW_8K,
    RATE,
    chunks,
    feed,
    ffmpeg_decode,
    interleave,
    rms_db,
)
from tests.audio.conftest import Speech


def _caller_with_tones(speech: Speech) -> tuple[npt.NDArray[np.float32], list[tuple[int, int]]]:
    """Caller speech, then a typed number right after it, then the speech again (8 kHz).

    Returns the phone-leg signal and each tone's [start, end) in ms.
    """
    signal, tones = with_number(speech.samples, speech.samples.shape[0] // 2)
    return phone_leg(signal), tones


def _record(
    caller: npt.NDArray[np.float32], assistant: Speech, **options: bool
) -> tuple[npt.NDArray[np.float32], Recorder, int]:
    wire = mulaw_encode(caller).tobytes()
    recorder = Recorder(MULAW_8K, L16_24K, **options)
    stream = interleave(
        chunks("caller", wire, 8000, 1), chunks("assistant", assistant.wire, 24000, 2)
    )
    mp3 = feed(recorder, stream)
    duration = recorder.finish().duration_ms
    return ffmpeg_decode(mp3)[:, ENCODER_DELAY_SAMPLES:], recorder, duration


def _envelope(signal: npt.NDArray[np.float32], window: int) -> npt.NDArray[np.float32]:
    frames = signal[: signal.shape[0] // window * window].reshape(-1, window)
    out: npt.NDArray[np.float32] = np.sqrt(np.mean(np.square(frames), axis=1))
    return out


def test_recorder_silences_tones_in_both_channels_and_keeps_speech(
    caller_speech: Speech, assistant_speech: Speech
) -> None:
    """Tones typed between speech, the assistant talking over them: silent spans, speech kept."""
    caller, tones = _caller_with_tones(caller_speech)
    decoded, recorder, duration = _record(caller, assistant_speech)
    plain, _, plain_duration = _record(caller, assistant_speech, redact_dtmf=False)
    assert duration == plain_duration
    assert decoded.shape == plain.shape
    # Without redaction the tones are in the MP3 (so this test can fail).
    assert "".join(t.digit for t in detect_tones(plain[0], RATE)) == NUMBER
    assert detect_tones(decoded[0], RATE) == []
    spans = recorder.redactions
    assert len(spans) == len(NUMBER)
    for span, (start, end) in zip(spans, tones, strict=True):
        assert span["channel"] == "both"
        assert span["reason"] == "dtmf"
        assert start - 50 <= int(span["start_ms"]) <= start - 35
        assert end + 35 <= int(span["end_ms"]) <= end + 50
        # The tone's time is silent in both channels; near the span's edges the codec
        # smears the neighbouring speech in by up to a frame, so those 25 ms are left out.
        tone = decoded[:, (start - 10) * 24 : (end + 10) * 24]
        inside = decoded[:, (int(span["start_ms"]) + 25) * 24 : (int(span["end_ms"]) - 25) * 24]
        assert rms_db(tone[0]) < -70
        assert rms_db(tone[1]) < -60
        assert rms_db(inside[0]) < -60
        assert rms_db(inside[1]) < -50
    assert recorder.finish().redactions == tuple(spans)
    # Outside the spans both channels are what the recording without redaction holds.
    keep = np.ones(decoded.shape[1], dtype=bool)
    for span in spans:
        keep[int(span["start_ms"]) * 24 - 240 : int(span["end_ms"]) * 24 + 240] = False
    for channel in (0, 1):
        got, want = decoded[channel, keep], plain[channel, keep]
        assert np.corrcoef(got, want)[0, 1] > 0.99
    # Speech right before the first tone and right after the last is kept (vs the input).
    first, last = tones[0][0], tones[-1][1]
    before = slice((first - 1000) * 24, (first - 60) * 24)
    after = slice((last + 220) * 24, (last + 1500) * 24)
    source = np.repeat(caller, 3)
    for part in (before, after):
        assert rms_db(decoded[0, part]) > -40
        got, want = _envelope(decoded[0, part], 480), _envelope(source[part], 480)
        assert np.corrcoef(got, want)[0, 1] > 0.95


def test_reported_dtmf_event_silences_the_time_before_it(
    caller_speech: Speech, assistant_speech: Speech
) -> None:
    """A ``dtmf`` event with no tone in the audio: the 200 ms before it (+40 ms) go silent."""
    wire = caller_speech.wire
    recorder = Recorder(MULAW_8K, L16_24K)
    stream = interleave(
        chunks("caller", wire, 8000, 1), chunks("assistant", assistant_speech.wire, 24000, 2)
    )
    out = bytearray()
    marked = None
    for leg, timestamp, payload in stream:
        out += recorder.add(leg, timestamp, payload)
        if marked is None and timestamp == 2000 and leg == "assistant":
            recorder.mark_dtmf()
            marked = recorder.duration_ms
    out += recorder.finish().mp3_tail
    assert marked is not None
    assert recorder.redactions == [
        {"start_ms": marked - 240, "end_ms": marked + 40, "channel": "both", "reason": "dtmf"}
    ]
    decoded = ffmpeg_decode(bytes(out))[:, ENCODER_DELAY_SAMPLES:]
    assert rms_db(decoded[1, (marked - 215) * 24 : (marked + 15) * 24]) < -60
    assert rms_db(decoded[1, (marked - 600) * 24 : (marked - 260) * 24]) > -40


def test_redaction_can_be_turned_off(caller_speech: Speech, assistant_speech: Speech) -> None:
    """redact_dtmf=False: nothing is silenced or reported, events are ignored."""
    caller, _ = _caller_with_tones(caller_speech)
    _, recorder, _ = _record(caller, assistant_speech, redact_dtmf=False)
    recorder.mark_dtmf(1000)
    assert recorder.redactions == []
    assert recorder.finish().redactions == ()


def _write_wav(path: Path, samples: npt.NDArray[np.float32], rate: int) -> Path:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.mark.parametrize("untrusted", [False, True])
def test_whole_files_have_their_tones_silenced(
    tmp_path: Path, caller_speech: Speech, assistant_speech: Speech, untrusted: bool
) -> None:
    """Whole-file encoding (in-process and in the child) detects tones on each decoded leg."""
    caller, tones = _caller_with_tones(caller_speech)
    caller_wav = _write_wav(tmp_path / "caller.wav", caller, 8000)
    dest = tmp_path / "call.mp3"
    encode = decode_untrusted_to_mp3 if untrusted else encode_files
    result = encode(caller_wav, assistant_speech.wav, dest=dest)
    decoded = ffmpeg_decode(dest)[:, ENCODER_DELAY_SAMPLES:]
    assert detect_tones(decoded[0], RATE) == []
    assert len(result.redactions) == len(NUMBER)
    for span, (start, end) in zip(result.redactions, tones, strict=True):
        assert int(span["start_ms"]) <= start - 35
        assert int(span["end_ms"]) >= end + 35
        assert rms_db(decoded[:, (start - 10) * 24 : (end + 10) * 24]) < -60
    plain = encode_files(
        caller_wav, assistant_speech.wav, dest=tmp_path / "p.mp3", redact_dtmf=False
    )
    assert plain.redactions == ()
    assert plain.duration_ms == result.duration_ms


def test_delay_line_returns_every_sample_once_whatever_the_block_sizes(
    caller_speech: Speech,
) -> None:
    """Blocks of any size: output = input outside the spans, silence inside, same length."""
    rate = 16000
    speech = np.repeat(caller_speech.samples, 2)[: rate * 3]
    tone = dtmf_tone("7", 60, -20, rate)
    left = np.concatenate((speech[:rate], np.zeros(800, np.float32), tone, speech[rate:]))
    right = np.roll(left, 4000)
    stereo = np.stack((left, right)).astype(np.float32)
    redactor = DtmfRedactor(rate)
    rng = np.random.default_rng(3)
    out, position = [], 0
    while position < stereo.shape[1]:
        size = int(rng.integers(1, 3000))
        out.append(redactor.process(stereo[:, position : position + size]))
        position += size
    out.append(redactor.flush())
    result = np.concatenate(out, axis=1)
    assert result.shape == stereo.shape
    spans = redactor.redactions
    assert len(spans) == 2  # the tone in the left channel, then its copy in the right
    keep = np.ones(stereo.shape[1], dtype=bool)
    for span in spans:
        lo, hi = span.start_ms * rate // 1000, span.end_ms * rate // 1000
        assert not result[:, lo:hi].any()
        keep[lo:hi] = False
    assert np.array_equal(result[:, keep], stereo[:, keep])
    start_ms = (rate + 800) * 1000 // rate
    assert start_ms - 45 <= spans[0].start_ms <= start_ms - 35


def test_pause_silences_both_channels_and_keeps_the_timeline(
    caller_speech: Speech, assistant_speech: Speech
) -> None:
    """pause/resume at call-time positions: silence between them, speech elsewhere, same length."""
    stream = list(
        interleave(
            chunks("caller", caller_speech.wire, 8000, 1),
            chunks("assistant", assistant_speech.wire, 24000, 2),
        )
    )
    recorder = Recorder(MULAW_8K, L16_24K)
    plain = Recorder(MULAW_8K, L16_24K)
    out, plain_out = bytearray(), bytearray()
    for leg, timestamp, payload in stream:
        if timestamp == 600 and leg == "caller" and not recorder.paused:
            assert recorder.pause() == 600
            assert recorder.pause() == 600
        if timestamp == 1400 and leg == "caller" and recorder.paused:
            assert recorder.resume() == 1400
        out += recorder.add(leg, timestamp, payload)
        plain_out += plain.add(leg, timestamp, payload)
    assert recorder.resume() is None
    out += recorder.finish().mp3_tail
    plain_out += plain.finish().mp3_tail
    assert recorder.pauses == [{"start_ms": 600, "end_ms": 1400}]
    decoded = ffmpeg_decode(bytes(out))[:, ENCODER_DELAY_SAMPLES:]
    reference = ffmpeg_decode(bytes(plain_out))[:, ENCODER_DELAY_SAMPLES:]
    assert decoded.shape == reference.shape
    for channel in (0, 1):
        assert rms_db(reference[channel, 620 * 24 : 1380 * 24]) > -40
        assert rms_db(decoded[channel, 620 * 24 : 1380 * 24]) < -60
        for part in (slice(100 * 24, 580 * 24), slice(1420 * 24, 2500 * 24)):
            assert np.corrcoef(decoded[channel, part], reference[channel, part])[0, 1] > 0.99
