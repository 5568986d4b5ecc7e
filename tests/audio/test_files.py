"""Whole files: one-shot encoding, typed errors, and the child-process decoder for uploads."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import audio.convert
from audio import (
    ENCODER_DELAY_SAMPLES,
    AudioError,
    BadSampleRate,
    CorruptAudio,
    EmptyAudio,
    NotAudio,
    NotStereo,
    TooManyChannels,
    decode_untrusted_to_mp3,
    encode_files,
)
from tests.audio._helpers import ffmpeg_decode, ffprobe_duration_ms
from tests.audio.conftest import Speech


def _envelope(signal: np.ndarray, window: int) -> np.ndarray:
    frames = signal[: signal.shape[0] // window * window].reshape(-1, window)
    return np.sqrt(np.mean(np.square(frames), axis=1))


def test_two_legs_round_trip_through_ffmpeg(
    tmp_path: Path, caller_speech: Speech, assistant_speech: Speech
) -> None:
    """8 kHz caller + 24 kHz assistant files: duration within 50 ms, envelopes follow the input."""
    dest = tmp_path / "call.mp3"
    result = encode_files(caller_speech.wav, assistant_speech.wav, dest=dest)
    assert result.sample_rate == 24000
    assert result.size_bytes == dest.stat().st_size
    assert abs(ffprobe_duration_ms(dest) - result.duration_ms) <= 50
    decoded = ffmpeg_decode(dest)[:, ENCODER_DELAY_SAMPLES:]
    longest_ms = max(len(caller_speech.samples) / 8, len(assistant_speech.samples) / 24)
    assert abs(decoded.shape[1] / 24 - longest_ms) <= 50
    window = 24000 // 50
    for channel, reference in (
        (0, np.repeat(caller_speech.samples, 3)),
        (1, assistant_speech.samples),
    ):
        n = min(reference.shape[0], decoded.shape[1])
        got, want = _envelope(decoded[channel, :n], window), _envelope(reference[:n], window)
        assert np.corrcoef(got, want)[0, 1] > 0.97
        loud = want > 0.05
        ratio_db = 20 * np.log10(got[loud] / want[loud])
        assert abs(float(np.median(ratio_db))) < 1.0


def test_one_stereo_file_keeps_its_channels(tmp_path: Path, stereo_call_wav: Path) -> None:
    """A stereo upload maps channel 0 to the caller and channel 1 to the assistant."""
    buffer = io.BytesIO()
    result = encode_files(stereo=stereo_call_wav, dest=buffer)
    decoded = ffmpeg_decode(buffer.getvalue())[:, ENCODER_DELAY_SAMPLES:]
    assert result.size_bytes == len(buffer.getvalue())
    with __import__("wave").open(str(stereo_call_wav)) as handle:
        raw = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").reshape(-1, 2).T
    reference = raw.astype(np.float32) / 32768
    n = min(reference.shape[1], decoded.shape[1])
    for channel in (0, 1):
        got, want = _envelope(decoded[channel, :n], 480), _envelope(reference[channel, :n], 480)
        assert np.corrcoef(got, want)[0, 1] > 0.97


def _write_wav(path: Path, rate: int, channels: int, frames: int) -> Path:
    import wave

    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(np.zeros(frames * channels, dtype="<i2").tobytes())
    return path


def test_typed_errors_for_bad_files(tmp_path: Path, caller_speech: Speech) -> None:
    """Each kind of bad input raises its own AudioError subclass and leaves no file behind."""
    dest = tmp_path / "out.mp3"
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio at all" * 100)
    cases: list[tuple[dict[str, object], type[AudioError]]] = [
        ({"stereo": garbage}, NotAudio),
        ({"stereo": b""}, EmptyAudio),
        ({"stereo": _write_wav(tmp_path / "empty.wav", 24000, 2, 0)}, EmptyAudio),
        ({"stereo": caller_speech.wav}, NotStereo),
        ({"stereo": _write_wav(tmp_path / "three.wav", 24000, 3, 100)}, TooManyChannels),
        ({"stereo": _write_wav(tmp_path / "low.wav", 4000, 2, 100)}, BadSampleRate),
        ({"caller": garbage, "assistant": caller_speech.wav}, NotAudio),
    ]
    for kwargs, error in cases:
        with pytest.raises(error) as caught:
            encode_files(dest=dest, **kwargs)  # type: ignore[arg-type]
        assert str(caught.value)
        assert not dest.exists()
    assert list(tmp_path.glob(".out.mp3.*")) == []


def test_untrusted_decoder_matches_in_process_encoding(
    tmp_path: Path, caller_speech: Speech, assistant_speech: Speech
) -> None:
    """The child process produces the same MP3 and peaks as encoding in-process."""
    direct = encode_files(caller_speech.wav, assistant_speech.wav, dest=tmp_path / "a.mp3")
    child = decode_untrusted_to_mp3(
        caller_speech.wav.read_bytes(), assistant_speech.wav, dest=tmp_path / "b.mp3"
    )
    assert child.sha256 == direct.sha256
    assert child.duration_ms == direct.duration_ms
    assert np.array_equal(child.peaks.zoom, direct.peaks.zoom)


def test_untrusted_garbage_is_a_typed_error(tmp_path: Path) -> None:
    """Garbage through the child gives NotAudio and no destination file."""
    dest = tmp_path / "out.mp3"
    with pytest.raises(NotAudio):
        decode_untrusted_to_mp3(stereo=b"\x00\xff" * 5000, dest=dest)
    assert not dest.exists()


def test_untrusted_truncated_file_does_not_crash(tmp_path: Path, stereo_call_wav: Path) -> None:
    """A WAV cut in half and an MP3 with damaged frames are handled, never fatal to the caller."""
    mp3 = tmp_path / "ok.mp3"
    encode_files(stereo=stereo_call_wav, dest=mp3)
    data = bytearray(mp3.read_bytes())
    rng = np.random.default_rng(3)
    for offset in rng.integers(0, len(data), size=300):
        data[int(offset)] = int(rng.integers(0, 256))
    for name, payload in (
        ("half.wav", stereo_call_wav.read_bytes()[: stereo_call_wav.stat().st_size // 2]),
        ("damaged.mp3", bytes(data)),
    ):
        dest = tmp_path / f"{name}.out.mp3"
        try:
            result = decode_untrusted_to_mp3(stereo=payload, dest=dest)
        except AudioError:
            assert not dest.exists()
        else:
            assert dest.stat().st_size == result.size_bytes


def test_a_crashing_decoder_becomes_corrupt_audio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stereo_call_wav: Path
) -> None:
    """A child killed by a native crash (SIGABRT here) surfaces as CorruptAudio."""
    crash = [sys.executable, "-c", "import os; os.abort()"]
    monkeypatch.setattr(audio.convert, "_child_command", lambda: crash)
    dest = tmp_path / "out.mp3"
    with pytest.raises(CorruptAudio, match="damaged"):
        decode_untrusted_to_mp3(stereo=stereo_call_wav, dest=dest)
    assert not dest.exists()


def test_a_hanging_decoder_times_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stereo_call_wav: Path
) -> None:
    """A child that never answers is killed after the timeout and reported as CorruptAudio."""
    hang = [sys.executable, "-c", "import time; time.sleep(30)"]
    monkeypatch.setattr(audio.convert, "_child_command", lambda: hang)
    with pytest.raises(CorruptAudio, match="too long"):
        decode_untrusted_to_mp3(stereo=stereo_call_wav, dest=tmp_path / "o.mp3", timeout_s=0.5)


def test_convert_module_runs_as_a_command(tmp_path: Path, stereo_call_wav: Path) -> None:
    """``python -m audio.convert`` answers one JSON line (the child protocol)."""
    job = '{{"stereo": "{}", "dest": "{}", "peaks": "{}", "bitrate_kbps": 48}}'.format(
        stereo_call_wav,
        tmp_path / "o.mp3",
        tmp_path / "p.dat",
    )
    done = subprocess.run(
        [sys.executable, "-m", "audio.convert"], input=job.encode(), capture_output=True, check=True
    )
    assert b'"sha256"' in done.stdout
    assert (tmp_path / "o.mp3").stat().st_size > 0
