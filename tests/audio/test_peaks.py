"""Peaks: checked against the decoded MP3's own min/max, and read by waveform-data (npm)."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from audio import OVERVIEW_MAX_POINTS, Peaks
from audio.peaks import COARSE, PeaksBuilder
from tests.audio._helpers import ffmpeg_decode, raw_peaks, stream_call
from tests.audio.conftest import Speech


def _record(caller: Speech, assistant: Speech) -> tuple[bytes, Peaks, int]:
    spool, recorder = stream_call(caller.wire, assistant.wire)
    result = recorder.finish()
    return spool + result.mp3_tail, result.peaks, result.duration_ms


def test_zoom_peaks_match_the_decoded_audio(
    caller_speech: Speech, assistant_speech: Speech
) -> None:
    """Each 10 ms pixel's min/max equals the decoded MP3's, up to the codec's own error."""
    mp3, peaks, duration_ms = _record(caller_speech, assistant_speech)
    decoded = ffmpeg_decode(mp3)
    assert peaks.zoom_spp == 240
    assert abs(peaks.length * 10 - duration_ms) <= 10
    reference = raw_peaks(decoded, peaks.zoom_spp)
    assert reference.shape == peaks.zoom.shape
    error = np.abs(reference.astype(int) - peaks.zoom.astype(int))
    # Floor quantization turns the codec's tiny negative noise in silence into -1.
    assert error.mean() < 2.5
    assert np.percentile(error, 99) <= 12
    # Silence is exactly silence: the leading encoder delay and the caller's gaps.
    assert not peaks.zoom[:4].any()


def test_overview_is_derived_exactly_from_the_zoom_level() -> None:
    """The overview's pixel i is the min/max over zoom pixels [i*k, (i+1)*k)."""
    rng = np.random.default_rng(5)
    zoom = np.sort(rng.integers(-128, 128, size=(10_001, 4), dtype=np.int8).reshape(-1, 2), axis=1)
    peaks = Peaks(sample_rate=24000, zoom_spp=240, zoom=zoom.reshape(-1, 4).astype(np.int8))
    spp, rows = peaks.overview()
    factor = spp // 240
    assert rows.shape[0] <= OVERVIEW_MAX_POINTS
    assert factor == 3
    for i in (0, 1, 1234, rows.shape[0] - 1):
        group = peaks.zoom[i * factor : (i + 1) * factor].astype(int)
        assert rows[i, 0] == group[:, 0].min()
        assert rows[i, 1] == group[:, 1].max()
        assert rows[i, 2] == group[:, 2].min()
        assert rows[i, 3] == group[:, 3].max()


def test_peaks_json_is_audiowaveform_v2(caller_speech: Speech, assistant_speech: Speech) -> None:
    """Both levels carry the audiowaveform v2 keys; data interleaves channels at each index."""
    _, peaks, _ = _record(caller_speech, assistant_speech)
    for document in (json.loads(peaks.overview_json()), json.loads(peaks.zoom_json())):
        assert {k: document[k] for k in ("version", "channels", "bits", "sample_rate")} == {
            "version": 2,
            "channels": 2,
            "bits": 8,
            "sample_rate": 24000,
        }
        assert len(document["data"]) == 4 * document["length"]
        assert all(-128 <= v <= 127 for v in document["data"])
    assert b" " not in peaks.overview_json()


def test_waveform_data_reads_our_peaks(
    tmp_path: Path, waveform_data_reader: Path, caller_speech: Speech, assistant_speech: Speech
) -> None:
    """An independent reader (npm waveform-data) sees the same values in JSON and binary form."""
    _, peaks, _ = _record(caller_speech, assistant_speech)
    spp, overview = peaks.overview()
    for name, data, rows, scale in (
        ("overview.json", peaks.overview_json(), overview, spp),
        ("zoom.dat", peaks.zoom_dat(), peaks.zoom, peaks.zoom_spp),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        out = subprocess.run(
            ["node", str(waveform_data_reader), str(path)],
            capture_output=True,
            check=True,
            cwd=waveform_data_reader.parents[2],
        ).stdout
        seen = json.loads(out)
        assert (seen["length"], seen["channels"], seen["scale"], seen["bits"]) == (
            rows.shape[0],
            2,
            scale,
            8,
        )
        for channel in (0, 1):
            assert seen["data"][channel]["min"] == rows[:, 2 * channel].tolist()
            assert seen["data"][channel]["max"] == rows[:, 2 * channel + 1].tolist()


def test_overview_of_an_hour_is_small(caller_speech: Speech, assistant_speech: Speech) -> None:
    """60 minutes of speech on both channels: <= 4000 points, <= 40 KB gzipped."""
    builder = PeaksBuilder(24000)
    caller = np.repeat(caller_speech.samples, 3)
    assistant = assistant_speech.samples
    n = min(caller.shape[0], assistant.shape[0])
    block = np.stack((caller[:n], assistant[:n]))
    while builder.samples < 3600 * 24000:
        builder.add(block.copy())
    peaks = builder.finish()
    overview = peaks.overview_json()
    assert json.loads(overview)["length"] <= OVERVIEW_MAX_POINTS
    assert len(gzip.compress(overview, 9)) <= 40_000


@pytest.mark.parametrize("length", [1, 3999, 4000, 4001, 12345, 360_007])
def test_overview_is_min_of_mins_and_max_of_maxes_per_group(length: int) -> None:
    rng = np.random.default_rng(length)
    zoom = rng.integers(-128, 128, size=(length, 4)).astype(np.int8)
    peaks = Peaks(sample_rate=24000, zoom_spp=240, zoom=zoom)
    spp, rows = peaks.overview()
    factor = spp // 240
    assert len(rows) <= 4000
    for g in (0, len(rows) // 2, len(rows) - 1):
        group = zoom[g * factor : (g + 1) * factor]
        assert list(rows[g]) == [
            group[:, 0].min(),
            group[:, 1].max(),
            group[:, 2].min(),
            group[:, 3].max(),
        ]


@pytest.mark.parametrize("length", [64_001, 100_003, 360_000])
def test_the_coarse_level_built_during_the_call_gives_the_same_overview(length: int) -> None:
    # A long call: the builder keeps a coarse level as it goes; the overview made from it
    # must equal the one derived from the zoom level alone (as recovery from a spool does).
    rng = np.random.default_rng(length)
    builder = PeaksBuilder(800)
    samples = rng.uniform(-1, 1, size=(2, length * builder.spp - 3)).astype(np.float32)
    at = 0
    while at < samples.shape[1]:
        step = int(rng.integers(1, 20_000))
        builder.add(samples[:, at : at + step])
        at += step
    built = builder.finish()
    assert built.coarse is not None
    plain = Peaks.from_bytes(built.to_bytes())
    assert plain.coarse is None
    spp, rows = built.overview()
    assert spp == plain.overview()[0]
    assert spp // built.zoom_spp > COARSE
    assert np.array_equal(rows, plain.overview()[1])
    assert len(rows) <= OVERVIEW_MAX_POINTS
