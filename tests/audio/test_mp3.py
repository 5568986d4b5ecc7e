"""MP3 stream details: encoder delay at every rate, no tag frame, crash repair and recovery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audio import (
    ENCODER_DELAY_SAMPLES,
    EmptyAudio,
    Recorder,
    peaks_from_mp3,
    repair_mp3_tail,
)
from audio.mp3 import BITRATES_KBPS, Mp3StreamEncoder, complete_frames_end, parse_header
from audio.writer import StereoMp3Writer
from tests.audio._helpers import ffmpeg_decode, raw_peaks, stream_call
from tests.audio.conftest import Speech


@pytest.mark.parametrize("rate", [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000])
@pytest.mark.parametrize("bitrate", [32, 48])
def test_decoded_audio_is_delayed_by_the_documented_constant(rate: int, bitrate: int) -> None:
    """At every rate a click at sample n decodes (ffmpeg) at n + ENCODER_DELAY_SAMPLES."""
    writer = StereoMp3Writer(rate, bitrate)
    signal = np.zeros((2, rate), dtype=np.float32)
    signal[:, rate // 2] = 0.9
    mp3 = writer.write(signal)
    last, result = writer.close()
    mp3 += last
    decoded = ffmpeg_decode(mp3)
    assert decoded.shape[1] * 1000 // rate == pytest.approx(result.duration_ms, abs=1)
    for channel in (0, 1):
        found = int(np.argmax(np.abs(decoded[channel])))
        assert abs(found - (rate // 2 + ENCODER_DELAY_SAMPLES)) <= 4
    assert b"Xing" not in mp3[:400]
    assert b"Info" not in mp3[:400]
    header = parse_header(mp3)
    assert header is not None
    assert (header.sample_rate, header.bitrate_kbps) == (rate, bitrate)


def test_bitrate_must_be_a_supported_cbr_value() -> None:
    assert 48 in BITRATES_KBPS
    with pytest.raises(ValueError, match="bitrate"):
        Mp3StreamEncoder(24000, 33)


def _spool(caller: Speech, assistant: Speech) -> tuple[bytes, Recorder]:
    return stream_call(caller.wire, assistant.wire)


def test_repair_trims_a_partial_last_frame(
    tmp_path: Path, caller_speech: Speech, assistant_speech: Speech
) -> None:
    """A spool cut mid-frame (process killed) is trimmed to whole frames, bytes or file."""
    spool, _ = _spool(caller_speech, assistant_speech)
    whole, frames, _ = complete_frames_end(spool)
    assert whole == len(spool)
    cut = spool[: len(spool) - 37]
    repaired = repair_mp3_tail(cut)
    assert len(repaired) < len(cut)
    assert complete_frames_end(repaired)[:2] == (len(repaired), frames - 1)
    path = tmp_path / "spool.mp3"
    path.write_bytes(cut + b"\x00garbage")
    assert repair_mp3_tail(path) == len(repaired)
    assert path.read_bytes() == repaired
    assert repair_mp3_tail(path) == len(repaired)


def test_recovery_peaks_from_the_spool_match_the_decoded_audio(
    tmp_path: Path, caller_speech: Speech, assistant_speech: Speech
) -> None:
    """peaks_from_mp3 on a killed call's spool: peaks and duration of what was saved."""
    spool, _ = _spool(caller_speech, assistant_speech)
    path = tmp_path / "killed.mp3"
    path.write_bytes(spool[:-50])
    summary = peaks_from_mp3(path)
    repaired = repair_mp3_tail(spool[:-50])
    assert summary.size_bytes == len(repaired)
    _, _, samples = complete_frames_end(repaired)
    assert summary.duration_ms == round(samples * 1000 / 24000)
    decoded = ffmpeg_decode(repaired)
    reference = raw_peaks(decoded, summary.peaks.zoom_spp)
    error = np.abs(reference.astype(int) - summary.peaks.zoom.astype(int))
    assert reference.shape == summary.peaks.zoom.shape
    # Two decoders (pedalboard's and ffmpeg's) differ by a few 8-bit steps at most.
    assert error.max() <= 4
    assert error.mean() < 0.2


def test_recovery_peaks_line_up_with_live_peaks(
    caller_speech: Speech, assistant_speech: Speech
) -> None:
    """Peaks rebuilt from the finished MP3 describe the same timeline as the live ones."""
    spool, recorder = _spool(caller_speech, assistant_speech)
    result = recorder.finish()
    summary = peaks_from_mp3(spool + result.mp3_tail)
    assert summary.duration_ms == result.duration_ms
    assert summary.sha256 == result.sha256
    assert summary.peaks.zoom.shape == result.peaks.zoom.shape
    error = np.abs(summary.peaks.zoom.astype(int) - result.peaks.zoom.astype(int))
    assert error.mean() < 2.5


def test_recovery_of_an_empty_spool_is_empty_audio() -> None:
    with pytest.raises(EmptyAudio):
        peaks_from_mp3(b"\xff\xf3")
