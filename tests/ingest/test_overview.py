"""The hang-up's fast overview is exactly what the audio engine's overview_json writes."""

from __future__ import annotations

import numpy as np
import pytest

from audio import Peaks
from web.services.recordings import overview_json


@pytest.mark.parametrize("length", [1, 3999, 4000, 4001, 12345, 360_000, 360_007])
def test_same_bytes_as_the_audio_engine(length: int) -> None:
    rng = np.random.default_rng(length)
    zoom = rng.integers(-128, 128, size=(length, 4)).astype(np.int8)
    peaks = Peaks(sample_rate=24000, zoom_spp=240, zoom=zoom)
    assert overview_json(peaks) == peaks.overview_json()
