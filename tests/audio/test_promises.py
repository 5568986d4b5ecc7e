"""A header's promise checked against the file's bytes: lying lengths and cut files refused."""

from __future__ import annotations

import io
import struct
import subprocess
from pathlib import Path

import pytest

from audio import TruncatedAudio, encode_files
from audio.promises import check_promise


def lying_wav(seconds: int = 46 * 60, rate: int = 192_000) -> bytes:
    """1 KB: a stereo 16-bit WAV header claiming ``seconds`` at ``rate``, then 1000 bytes."""
    block = 4
    data_len = seconds * rate * block
    header = b"RIFF" + struct.pack("<I", 36 + data_len) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, rate, rate * block, block, 16)
    header += b"data" + struct.pack("<I", data_len)
    return header + bytes(range(250)) * 4


def test_a_wav_claiming_46_minutes_in_1_kb_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "lie.wav"
    path.write_bytes(lying_wav())
    assert path.stat().st_size < 1100
    with pytest.raises(TruncatedAudio, match=r"2760\.0 s"):
        encode_files(stereo=path, dest=io.BytesIO())
    with pytest.raises(TruncatedAudio):
        encode_files(stereo=path.read_bytes(), dest=io.BytesIO())


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_cut_files_are_refused_not_padded_with_silence(
    tmp_path: Path, stereo_call_wav: Path, fmt: str
) -> None:
    whole = tmp_path / f"call.{fmt}"
    encoder = ["lame", "--quiet"] if fmt == "mp3" else ["sox", "-R"]
    subprocess.run([*encoder, str(stereo_call_wav), str(whole)], check=True)
    data = whole.read_bytes()
    ok = encode_files(stereo=whole, dest=io.BytesIO())
    assert ok.duration_ms > 1000
    for cut in (
        data[: len(data) // 2],
        data[:-10] if fmt == "flac" else data[: len(data) * 3 // 4],
    ):
        part = tmp_path / f"cut.{fmt}"
        part.write_bytes(cut)
        with pytest.raises(TruncatedAudio, match="header promises"):
            encode_files(stereo=part, dest=io.BytesIO())


def test_intact_files_of_every_encoder_pass(tmp_path: Path, stereo_call_wav: Path) -> None:
    """FLAC from sox and ffmpeg, MP3 from lame, OGG and WAV pass the check untouched."""
    made = []
    for name, command in {
        "sox.flac": ["sox", "-R", str(stereo_call_wav), str(tmp_path / "sox.flac")],
        "ffmpeg.flac": [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(stereo_call_wav),
            str(tmp_path / "ffmpeg.flac"),
        ],
        "lame.mp3": ["lame", "--quiet", str(stereo_call_wav), str(tmp_path / "lame.mp3")],
        "sox.ogg": ["sox", "-R", str(stereo_call_wav), str(tmp_path / "sox.ogg")],
    }.items():
        subprocess.run(command, check=True)
        made.append(tmp_path / name)
    for path in [stereo_call_wav, *made]:
        check_promise(path, "call", 0, 24000)
        assert encode_files(stereo=path, dest=io.BytesIO()).duration_ms > 1000
