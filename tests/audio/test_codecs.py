"""Payload decoders of telephony streams: real espeak-ng speech encoded by ffmpeg, decoded
packet by packet (20 ms, as Telnyx and Twilio send it) and compared with the original."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from audio.codecs import ALAW_TABLE, decoder_for
from audio.errors import BadSampleRate, InvalidChunk, UnsupportedEncoding
from tests.audio.conftest import CALLER_TEXT
from tests.speech import speak_wav

Samples = npt.NDArray[np.float32]


def _ffmpeg(*args: str, data: bytes | None = None) -> bytes:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", *args],
        input=data,
        capture_output=True,
        check=True,
    )
    return done.stdout


def _read_s16(path: Path) -> Samples:
    raw = _ffmpeg("-i", str(path), "-f", "s16le", "-ac", "1", "-")
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


@pytest.fixture(scope="module")
def speech16k(speech_dir: Path) -> Path:
    """The caller's words at 16 kHz (espeak-ng, sox)."""
    return speak_wav(speech_dir, "codec16k", "en-us", CALLER_TEXT, 16000)


@pytest.fixture(scope="module")
def speech8k(speech_dir: Path) -> Path:
    """The caller's words at 8 kHz."""
    return speak_wav(speech_dir, "codec8k", "en-us", CALLER_TEXT, 8000)


def packets(wire: bytes, size: int) -> Iterator[bytes]:
    """20 ms payloads of ``size`` bytes."""
    for offset in range(0, len(wire), size):
        yield wire[offset : offset + size]


def best_correlation(a: Samples, b: Samples, max_lag: int) -> float:
    """Normalised correlation of ``a`` and ``b`` at the best lag within ``max_lag`` samples."""
    n = min(len(a), len(b)) - max_lag
    best = 0.0
    for lag in range(max_lag + 1):
        x, y = a[:n], b[lag : lag + n]
        best = max(best, float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-12)))
    return best


def test_alaw_table_is_ffmpegs() -> None:
    decoded = _ffmpeg(
        "-f",
        "alaw",
        "-ar",
        "8000",
        "-ac",
        "1",
        "-i",
        "-",
        "-f",
        "s16le",
        "-",
        data=bytes(range(256)),
    )
    assert np.array_equal(ALAW_TABLE, np.frombuffer(decoded, "<i2") / np.float32(32768.0))


@pytest.mark.parametrize("name", ["PCMA", "audio/x-alaw"])
def test_pcma_speech(speech8k: Path, name: str) -> None:
    wire = _ffmpeg("-i", str(speech8k), "-f", "alaw", "-ar", "8000", "-ac", "1", "-")
    decoder = decoder_for(name, 8000)
    out = np.concatenate([decoder.decode(p) for p in packets(wire, 160)])
    original = _read_s16(speech8k)
    assert len(out) == len(original)
    noise = out - original
    snr = 10 * np.log10(np.sum(original**2) / np.sum(noise**2))
    assert snr > 30  # G.711 A-law: ~38 dB on speech


def test_pcmu_still_decodes(speech8k: Path) -> None:
    wire = _ffmpeg("-i", str(speech8k), "-f", "mulaw", "-ar", "8000", "-ac", "1", "-")
    out = np.concatenate([decoder_for("PCMU", 8000).decode(p) for p in packets(wire, 160)])
    assert best_correlation(_read_s16(speech8k), out, 0) > 0.99


@pytest.mark.parametrize("rate", [8000, 16000])
def test_l16_is_big_endian_as_rtp_carries_it(speech16k: Path, rate: int) -> None:
    wire = _ffmpeg("-i", str(speech16k), "-f", "s16be", "-ar", str(rate), "-ac", "1", "-")
    step = rate // 50 * 2
    out = np.concatenate([decoder_for("L16", rate).decode(p) for p in packets(wire, step)])
    expected = np.frombuffer(wire, ">i2").astype(np.float32) / 32768.0
    assert np.array_equal(out, expected)
    # Read as little-endian the same bytes would be noise: the byte order matters.
    wrong = np.frombuffer(wire, "<i2").astype(np.float32) / 32768.0
    assert best_correlation(expected, wrong, 0) < 0.5


def test_g722_speech_decoded_packet_by_packet(speech16k: Path, tmp_path: Path) -> None:
    wire = _ffmpeg(
        "-i", str(speech16k), "-ar", "16000", "-ac", "1", "-c:a", "g722", "-f", "g722", "-"
    )
    # 64 kbit/s: 160 bytes per 20 ms. Telnyx announces G722 at 8000 (RTP's clock) or 16000.
    decoder = decoder_for("G722", 8000)
    out = np.concatenate([decoder.decode(p) for p in packets(wire, 160)])
    assert decoder.sample_rate == 16000
    (tmp_path / "speech.g722").write_bytes(wire)
    whole = _read_s16(tmp_path / "speech.g722")
    # The decoder's state runs across packets: the same as decoding the stream at once.
    assert len(out) == len(whole)
    assert np.max(np.abs(out - whole)) < 1e-4
    assert best_correlation(_read_s16(speech16k), out, 64) > 0.95


def _opus_packets(source: Path, tmp_path: Path) -> list[bytes]:
    ogg = tmp_path / "speech.ogg"
    _ffmpeg(
        "-i",
        str(source),
        "-c:a",
        "libopus",
        "-b:a",
        "24k",
        "-frame_duration",
        "20",
        "-application",
        "voip",
        str(ogg),
    )
    with av.open(str(ogg)) as container:
        stream = container.streams.audio[0]
        return [bytes(p) for p in container.demux(stream) if p.size]


def test_opus_speech_decoded_packet_by_packet(speech16k: Path, tmp_path: Path) -> None:
    payloads = _opus_packets(speech16k, tmp_path)
    assert len(payloads) > 100
    decoder = decoder_for("OPUS", 16000)
    out = np.concatenate([decoder.decode(p) for p in payloads])
    assert decoder.sample_rate == 48000
    original = _read_s16(speech16k)
    # Compare at 16 kHz: every third sample of the 48 kHz output (speech is below 8 kHz).
    resampled = out[::3]
    assert abs(len(resampled) - len(original)) < 16000 // 10
    assert best_correlation(original, resampled, 400) > 0.8


def test_encodings_and_rates_refused() -> None:
    for name in ("AMR-WB", "speex", "", "audio/x-flac"):
        with pytest.raises(UnsupportedEncoding):
            decoder_for(name, 8000)
    with pytest.raises(BadSampleRate):
        decoder_for("G722", 44100)
    with pytest.raises(BadSampleRate):
        decoder_for("OPUS", 44100)
    with pytest.raises(BadSampleRate):
        decoder_for("PCMA", 7000)
    with pytest.raises(UnsupportedEncoding):
        decoder_for("L16", 8000, channels=3)


def test_malformed_payloads_are_invalid_chunks() -> None:
    with pytest.raises(InvalidChunk):
        decoder_for("L16", 8000).decode(b"\x00\x01\x02")
    with pytest.raises(InvalidChunk):
        decoder_for("PCMA", 8000).decode(b"\x00" * (64 * 1024 + 1))
    # An Opus packet of code 3 announcing zero frames is invalid (RFC 6716 §3.2.5).
    with pytest.raises(InvalidChunk):
        decoder_for("OPUS", 48000).decode(b"\x03\x00")


def test_stereo_l16_is_mixed_to_one_track() -> None:
    left = np.full(160, 8192, dtype=">i2")
    right = np.full(160, -8192, dtype=">i2")
    frames = np.stack([left, right], axis=1).reshape(-1).astype(">i2").tobytes()
    out = decoder_for("L16", 8000, channels=2).decode(frames)
    assert len(out) == 160
    assert np.all(out == 0)
