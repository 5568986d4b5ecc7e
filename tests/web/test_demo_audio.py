"""The demo's speech engine: the bundled eSpeak NG library, a phone leg, turns on a timeline."""

from __future__ import annotations

import io
import wave

import numpy as np

from web.services import demo_audio

LINE = "Hi, I'd like to book a cleaning for next week if you have anything."


def _band_share(samples: np.ndarray, rate: int, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(power[(freqs >= low) & (freqs < high)].sum() / power.sum())


def _wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnchannels() == 1
        assert w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768
        return pcm, w.getframerate()


def test_the_caller_sounds_like_a_phone_line() -> None:
    caller = demo_audio.speak_caller(LINE)
    assert len(caller) / demo_audio.CALLER_RATE > 2
    assert _band_share(caller, demo_audio.CALLER_RATE, 300, 3400) > 0.95
    assert 0.6 < np.max(np.abs(caller)) < 0.75  # normalised to -3 dBFS
    # Unfiltered, the same voice has clearly more energy below 300 Hz.
    raw, rate = demo_audio.speak(LINE, demo_audio.CALLER_VOICE)
    assert _band_share(raw, rate, 0, 300) > 2 * _band_share(caller, demo_audio.CALLER_RATE, 0, 300)


def test_turns_sit_where_they_are_spoken_with_pauses() -> None:
    turns = [("assistant", "How can I help?"), ("user", "One moment."), ("user", "I'm back.")]
    held = demo_audio.synthesize(turns, [0, 0, 7000])
    gap = demo_audio.GAP_MS
    assert held.turns_ms[0][0] == demo_audio.LEAD_IN_MS
    assert held.turns_ms[1][0] == held.turns_ms[0][1] + gap
    assert held.turns_ms[2][0] == held.turns_ms[1][1] + gap + 7000
    assert held.duration_ms == held.turns_ms[2][1] + gap
    caller, caller_rate = _wav(held.caller_wav)
    assistant, assistant_rate = _wav(held.assistant_wav)
    assert (caller_rate, assistant_rate) == (demo_audio.CALLER_RATE, demo_audio.ASSISTANT_RATE)
    for pcm, rate in ((caller, caller_rate), (assistant, assistant_rate)):
        assert abs(len(pcm) * 1000 / rate - held.duration_ms) < 5
    for n, (role, _) in enumerate(turns):
        start, end = held.turns_ms[n]
        own, other = (caller, assistant) if role == "user" else (assistant, caller)
        own_rate = caller_rate if role == "user" else assistant_rate
        other_rate = assistant_rate if role == "user" else caller_rate
        assert np.sqrt((own[start * own_rate // 1000 : end * own_rate // 1000] ** 2).mean()) > 0.05
        assert not other[start * other_rate // 1000 : end * other_rate // 1000].any()
    # The hold is silent on both sides.
    gap_from, gap_to = held.turns_ms[1][1] + 100, held.turns_ms[2][0] - 100
    assert not caller[gap_from * caller_rate // 1000 : gap_to * caller_rate // 1000].any()
