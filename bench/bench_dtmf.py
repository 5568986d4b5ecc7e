"""Keypad tone detection: detection rate on real DTMF and false alarms on speech and music.

Targets: all 16 digits found at -30 dBFS per tone and 40 ms, alone on a telephone leg
(phone band + mu-law) and with speech on the other leg; no false alarm in 30+ minutes of
espeak-ng speech (several voices, male and female) nor on a synthesized hold tune.
Speech or noise mixed on the same leg as the tones is measured for information only.
Detection runs the way the recorder runs it: each leg at its own rate (8 kHz for a mu-law
caller, 24 kHz for an L16 assistant), and through the two-channel redaction stage that
whole-file uploads use.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
from _common import mulaw_encode, progress, verdict

from audio.dtmf import COLUMN_HZ, DIGITS, ROW_HZ, DtmfDetector
from audio.dtmf_redaction import DtmfRedactor
from audio.formats import MULAW_TABLE
from audio.resample import resampler_for

SPEECH_MINUTES = float(sys.argv[1]) if len(sys.argv) > 1 else 32.0
VOICES = ["en-us", "en+m3", "en+f2", "en+f4", "en-gb+m1", "en-gb+f3", "en-us+f5", "en+m7"]
LEVELS_DB = (-10, -20, -30)
DURATIONS_MS = (40, 50, 70, 100)
RATES = (8000, 24000)

SUBJECTS = ["my order", "the invoice", "your account", "the delivery", "our meeting", "the card"]
VERBS = ["arrived", "changed", "was cancelled", "is late", "looks wrong", "was paid twice"]
EXTRAS = [
    "Could you check it for me please?",
    "I have been waiting for nearly three weeks now.",
    "Thank you so much for your help today.",
    "Let me read the number again slowly.",
    "Is there anything else I can do for you?",
    "The reference is seven eight nine four five six one two.",
    "Hmm, I see, so what happens next?",
    "Oh wow, that is really great news!",
    "Please hold while I transfer you to billing.",
    "My phone number is oh two oh seven nine four six one three eight.",
]


def _sentences(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        subject, verb = rng.choice(SUBJECTS), rng.choice(VERBS)
        number = " ".join(str(rng.randrange(10)) for _ in range(rng.randrange(3, 9)))
        out.append(
            f"Hello, {subject} {verb} on {rng.choice(['Monday', 'Friday', 'the fifth'])}, "
            f"number {number}. {rng.choice(EXTRAS)} {rng.choice(EXTRAS)}"
        )
    return out


def _read_wav(path: Path) -> npt.NDArray[np.float32]:
    with wave.open(str(path)) as handle:
        data = handle.readframes(handle.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768


def speech_corpus(directory: Path, minutes: float) -> dict[str, npt.NDArray[np.float32]]:
    """Per voice, 8 kHz speech (sox, normalised to -3 dBFS peak), until ``minutes`` in total."""
    rng = random.Random(16)
    per_voice = minutes * 60 / len(VOICES)
    corpus: dict[str, npt.NDArray[np.float32]] = {}
    for voice in VOICES:
        parts: list[npt.NDArray[np.float32]] = []
        seconds = 0.0
        batch = 0
        while seconds < per_voice:
            text = " ".join(_sentences(rng, 12))
            raw = directory / f"{voice}-{batch}.raw.wav"
            out = directory / f"{voice}-{batch}.wav"
            speed = str(rng.choice([140, 160, 175, 190]))
            speak = ["espeak-ng", "-v", voice, "-s", speed, "-w", str(raw), text]
            subprocess.run(speak, check=True)
            shape = ["sox", "-R", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out)]
            subprocess.run([*shape, "gain", "-n", "-3"], check=True)
            samples = _read_wav(out)
            parts.append(samples)
            seconds += samples.shape[0] / 8000
            batch += 1
        corpus[voice] = np.concatenate(parts)
        progress(f"  {voice}: {seconds / 60:.1f} min")
    return corpus


def phone_leg(signal: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """An 8 kHz signal as a telephone leg delivers it: 300-3400 Hz band, mu-law coded."""
    spectrum = np.fft.rfft(signal)
    freqs = np.fft.rfftfreq(signal.shape[0], 1 / 8000)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    banded = np.fft.irfft(spectrum, signal.shape[0]).astype(np.float32)
    pcm = np.clip(banded * 32768, -32768, 32767).astype(np.int16)
    decoded: npt.NDArray[np.float32] = MULAW_TABLE[mulaw_encode(pcm)]
    return decoded


def to_rate(signal: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float32]:
    """8 kHz leg brought to ``rate`` with the recorder's resampler."""
    resampler = resampler_for(8000, rate)
    if resampler is None:
        return signal
    out = np.concatenate((resampler.process(signal), resampler.flush()))
    return out[: signal.shape[0] * rate // 8000]


def dtmf_tone(digit: str, ms: int, level_db: float, rate: int = 8000) -> npt.NDArray[np.float32]:
    """A keypad tone: its row and column sines, each at ``level_db`` dBFS (peak)."""
    index = DIGITS.index(digit)
    t = np.arange(rate * ms // 1000) / rate
    amplitude = 10 ** (level_db / 20)
    row, col = ROW_HZ[index // 4], COLUMN_HZ[index % 4]
    return (amplitude * (np.sin(2 * np.pi * row * t) + np.sin(2 * np.pi * col * t))).astype(
        np.float32
    )


def detect(signal: npt.NDArray[np.float32], rate: int) -> list[str]:
    """Digits found in ``signal`` fed in 20 ms chunks."""
    detector = DtmfDetector(rate)
    step = rate // 50
    found = []
    for start in range(0, signal.shape[0], step):
        found += [t.digit for t in detector.feed(signal[start : start + step])]
    return found + [t.digit for t in detector.flush()]


def detection(
    rate: int, speech: npt.NDArray[np.float32], condition: str
) -> tuple[int, int, list[str]]:
    """(found, total, misses) over 16 digits x levels x durations in one condition."""
    found = total = 0
    misses: list[str] = []
    offset = 0
    for level in LEVELS_DB:
        for ms in DURATIONS_MS:
            for digit in DIGITS:
                gap = np.zeros(1600, dtype=np.float32)
                clean = np.concatenate((gap, dtmf_tone(digit, ms, level), gap))
                if condition == "speech on the same leg (-20 dBFS rms)":
                    part = speech[offset : offset + clean.shape[0]]
                    offset = (offset + clean.shape[0] * 7) % (speech.shape[0] - clean.shape[0])
                    rms = float(np.sqrt(np.mean(np.square(part)))) or 1.0
                    clean = clean + part * np.float32(0.1 / rms)
                elif condition == "noise on the same leg (-40 dBFS)":
                    noise = np.random.default_rng(total).standard_normal(clean.shape[0])
                    clean = clean + (noise * 0.01).astype(np.float32)
                leg = to_rate(phone_leg(clean), rate)
                total += 1
                if condition == "speech on the other leg":
                    # Through the recorder's two-channel stage: a span must cover the tone.
                    part = speech[offset : offset + clean.shape[0]]
                    offset = (offset + clean.shape[0] * 7) % (speech.shape[0] - clean.shape[0])
                    other = to_rate(phone_leg(part), rate)[: leg.shape[0]]
                    redactor = DtmfRedactor(rate)
                    redactor.process(np.stack((leg, other)))
                    redactor.flush()
                    spans = [(r.start_ms, r.end_ms) for r in redactor.redactions]
                    covered = len(spans) == 1 and spans[0][0] <= 200 and spans[0][1] >= 200 + ms
                    got = [digit] if covered else [f"{spans}"]
                else:
                    got = detect(leg, rate)
                if got == [digit]:
                    found += 1
                else:
                    misses.append(f"{digit}@{level}dB/{ms}ms->{''.join(got) or '-'}")
    return found, total, misses


def hold_tune(seconds: int, *, harmonics: bool, seed: int = 3) -> npt.NDArray[np.float32]:
    """Music-on-hold-like audio at 8 kHz: a melody over chords, notes of an equal-tempered scale."""
    rng = np.random.default_rng(seed)
    rate = 8000
    out = np.zeros(seconds * rate, dtype=np.float32)
    partials = (1.0, 0.5, 0.3, 0.2) if harmonics else (1.0,)
    scale = [0, 2, 4, 5, 7, 9, 11]

    def note(freq: float, length: int, level: float) -> npt.NDArray[np.float32]:
        t = np.arange(length) / rate
        wave_ = sum(a * np.sin(2 * np.pi * freq * (k + 1) * t) for k, a in enumerate(partials))
        envelope = np.minimum(1, t / 0.02) * np.exp(-t * 2.5)
        return (level * wave_ * envelope).astype(np.float32)

    position = 0
    while position < out.shape[0]:
        chord_len = int(rate * rng.choice([1.0, 2.0]))
        root = 48 + scale[int(rng.integers(7))]
        for interval in (0, 4, 7):
            freq = 440 * 2 ** ((root + interval + 12 - 69) / 12)
            piece = note(freq, chord_len, 0.12)[: out.shape[0] - position]
            out[position : position + piece.shape[0]] += piece
        melody_at = position
        while melody_at < position + chord_len:
            length = int(rate * rng.choice([0.125, 0.25, 0.5]))
            pitch = 72 + scale[int(rng.integers(7))] + 12 * int(rng.integers(0, 2))
            piece = note(440 * 2 ** ((pitch - 69) / 12), length, 0.2)
            piece = piece[: out.shape[0] - melody_at]
            out[melody_at : melody_at + piece.shape[0]] += piece
            melody_at += length
        position += chord_len
    return out


def main() -> int:
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-dtmf-") as work:
        progress(f"speaking {SPEECH_MINUTES} minutes with espeak-ng in {len(VOICES)} voices...")
        corpus = speech_corpus(Path(work), SPEECH_MINUTES)
    speech = np.concatenate(list(corpus.values()))
    print(f"speech corpus: {speech.shape[0] / 8000 / 60:.1f} min, voices {', '.join(VOICES)}")
    for rate in RATES:
        progress(f"detection at {rate} Hz...")
        for condition, target in (
            ("alone (phone band + mu-law)", True),
            ("speech on the other leg", True),
            ("speech on the same leg (-20 dBFS rms)", False),
            ("noise on the same leg (-40 dBFS)", False),
        ):
            found, total, misses = detection(rate, speech, condition)
            note = "" if target else " (information)"
            print(f"{rate} Hz, {condition}: {found}/{total} detected{note}")
            if misses:
                print(f"  missed: {' '.join(misses[:12])}{' ...' if len(misses) > 12 else ''}")
            if target:
                ok &= verdict(
                    f"detection rate at {rate} Hz, {condition}", found / total, 1.0, at_most=False
                )
        progress(f"false alarms at {rate} Hz on speech...")
        hours = 0.0
        alarms: list[str] = []
        for voice, samples in corpus.items():
            leg = to_rate(phone_leg(samples), rate)
            got = detect(leg, rate)
            hours += samples.shape[0] / 8000 / 3600
            alarms += [f"{voice}:{d}" for d in got]
        print(
            f"{rate} Hz speech: {len(alarms)} false alarms in {hours * 60:.1f} min "
            f"({len(alarms) / hours:.1f} per hour) {' '.join(alarms[:10])}"
        )
        ok &= verdict(
            f"false alarms per hour of speech at {rate} Hz", len(alarms) / hours, 0.0, at_most=True
        )
        for harmonics in (True, False):
            tune = hold_tune(600, harmonics=harmonics)
            got = detect(to_rate(phone_leg(tune), rate), rate)
            label = "with harmonics" if harmonics else "pure sines (information)"
            print(
                f"{rate} Hz hold tune {label}: {len(got)} false alarms in 10 min "
                f"({len(got) * 6:.0f} per hour) {' '.join(got[:10])}"
            )
            if harmonics:
                ok &= verdict(
                    f"false alarms per hour of hold music at {rate} Hz",
                    len(got) * 6.0,
                    0.0,
                    at_most=True,
                )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
