"""Wire formats: leg format validation, mu-law table, output rate choice."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from audio import BadSampleRate, InvalidChunk, LegFormat, UnsupportedEncoding, output_rate_for
from audio.formats import MULAW_TABLE


def test_leg_format_normalises_twilio_names() -> None:
    assert LegFormat("audio/x-mulaw", 8000) == LegFormat("mulaw", 8000)
    assert LegFormat("audio/x-l16", 24000).encoding == "l16"


@pytest.mark.parametrize("rate", [0, 4000, 7999, 192001, 8000.5, "8000", True])
def test_leg_format_rejects_bad_rates(rate: object) -> None:
    with pytest.raises(BadSampleRate, match="sample rate"):
        LegFormat("l16", rate)  # type: ignore[arg-type]


def test_leg_format_rejects_unknown_encoding() -> None:
    with pytest.raises(UnsupportedEncoding, match="opus"):
        LegFormat("opus", 48000)  # type: ignore[arg-type]


def test_odd_l16_payload_is_invalid() -> None:
    with pytest.raises(InvalidChunk, match="even"):
        LegFormat("l16", 16000).samples_in(b"\x00\x01\x02")


@pytest.mark.parametrize(
    ("rates", "expected"),
    [
        ((8000, 24000), 24000),
        ((8000, 8000), 8000),
        ((8000, 16001), 22050),
        ((44100, 8000), 44100),
        ((96000, 8000), 48000),
        ((11025,), 11025),
    ],
)
def test_output_rate_is_nearest_mp3_rate_at_or_above(rates: tuple[int, ...], expected: int) -> None:
    assert output_rate_for(*rates) == expected


def test_mulaw_table_matches_sox(tmp_path: Path) -> None:
    """Every mu-law byte decodes as sox (an independent G.711 implementation) decodes it."""
    raw = tmp_path / "all.ul"
    raw.write_bytes(bytes(range(256)))
    out = subprocess.run(
        [
            "sox",
            "-t",
            "raw",
            "-e",
            "mu-law",
            "-b",
            "8",
            "-r",
            "8000",
            "-c",
            "1",
            str(raw),
            "-t",
            "raw",
            "-e",
            "signed",
            "-b",
            "16",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    reference = np.frombuffer(out, dtype="<i2")
    assert np.array_equal((MULAW_TABLE * 32768).astype(np.int16), reference)
    assert MULAW_TABLE[0xFF] == 0.0
