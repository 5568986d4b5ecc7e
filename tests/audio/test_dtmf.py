"""The keypad tone detector on real DTMF (phone band, mu-law), real speech and a hold tune."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from audio.dtmf import DIGITS, DtmfDetector, detect_tones
from audio.resample import resampler_for
from tests.audio._dtmf import dtmf_tone, hold_tune, phone_leg
from tests.audio.conftest import Speech, _read_wav
from tests.speech import speak_wav

VOICES = ["en-us", "en+m3", "en+f2", "en+f4"]
LINES = (
    "Hello, I would like to check the balance on my account please, the number is "
    "four seven one two. Oh, and could you also tell me when the next payment is due? "
    "Thank you so much, that is very helpful. Have a wonderful day, goodbye now."
)


def _at_rate(signal: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float32]:
    resampler = resampler_for(8000, rate)
    if resampler is None:
        return signal
    return np.concatenate((resampler.process(signal), resampler.flush()))


def _streamed(signal: npt.NDArray[np.float32], rate: int) -> list[str]:
    """Digits found when the signal arrives in 20 ms chunks."""
    detector = DtmfDetector(rate)
    found: list[str] = []
    for start in range(0, signal.shape[0], rate // 50):
        found += [t.digit for t in detector.feed(signal[start : start + rate // 50])]
    return found + [t.digit for t in detector.flush()]


@pytest.mark.parametrize("rate", [8000, 24000])
@pytest.mark.parametrize(("level_db", "ms"), [(-10, 40), (-30, 40), (-30, 100)])
def test_every_digit_is_found_on_a_phone_leg(rate: int, level_db: int, ms: int) -> None:
    """All 16 digits, down to -30 dBFS and 40 ms, through the phone band and mu-law."""
    gap = np.zeros(1600, dtype=np.float32)
    for digit in DIGITS:
        leg = _at_rate(
            phone_leg(np.concatenate((gap, dtmf_tone(digit, ms, level_db, 8000), gap))), rate
        )
        assert _streamed(leg, rate) == [digit], (digit, level_db, ms)


def test_a_sequence_gives_each_digit_with_its_timing() -> None:
    """A typed number: every digit in order, each span within 10 ms of the tone."""
    rate = 16000
    number = "4111#9*0"
    parts, expected = [], []
    position = 0
    for digit in number:
        gap = np.zeros(rate * 60 // 1000, dtype=np.float32)
        tone = dtmf_tone(digit, 80, -15, rate)
        parts += [gap, tone]
        position += gap.shape[0]
        expected.append((position, position + tone.shape[0]))
        position += tone.shape[0]
    tones = detect_tones(np.concatenate([*parts, np.zeros(800, dtype=np.float32)]), rate)
    assert "".join(t.digit for t in tones) == number
    for tone, (start, end) in zip(tones, expected, strict=True):
        assert abs(tone.start - start) <= rate // 100
        assert abs(tone.end - end) <= rate // 100


def test_short_blips_and_quiet_tones_are_not_tones() -> None:
    """20 ms (shorter than a key press) and -50 dBFS tones are not reported."""
    gap = np.zeros(800, dtype=np.float32)
    assert detect_tones(np.concatenate((gap, dtmf_tone("5", 20, -10, 8000), gap)), 8000) == []
    assert detect_tones(np.concatenate((gap, dtmf_tone("5", 100, -50, 8000), gap)), 8000) == []


@pytest.fixture(scope="session")
def voices(speech_dir: Path) -> list[npt.NDArray[np.float32]]:
    """About two and a half minutes of speech in four voices, male and female, at 8 kHz."""
    out = []
    for voice in VOICES:
        wav = speak_wav(speech_dir, f"dtmf-{voice}", voice, " ".join([LINES] * 3), 8000)
        out.append(_read_wav(wav))
    return out


@pytest.mark.parametrize("rate", [8000, 24000])
def test_no_false_alarm_on_speech(
    rate: int, voices: list[npt.NDArray[np.float32]], caller_speech: Speech
) -> None:
    """Several voices on a phone leg, and the caller fixture: no tone found."""
    total = sum(v.shape[0] for v in voices) / 8000
    assert total > 120
    for samples in [*voices, caller_speech.samples]:
        assert _streamed(_at_rate(phone_leg(samples), rate), rate) == []


def test_no_false_alarm_on_a_hold_tune() -> None:
    """Two minutes of chords and melody (notes with harmonics): no tone found."""
    assert _streamed(phone_leg(hold_tune(120)), 8000) == []
