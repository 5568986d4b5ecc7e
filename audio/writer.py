"""Stereo float blocks at the output rate -> MP3 bytes, peaks, size and hash of the stream."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from audio.mp3 import DEFAULT_BITRATE_KBPS, ENCODER_DELAY_SAMPLES, Mp3StreamEncoder
from audio.peaks import Peaks, PeaksBuilder


@dataclass(frozen=True)
class RecordingResult:
    """What :meth:`Recorder.finish` and the one-shot functions report about the whole MP3.

    ``mp3_tail`` holds the bytes not yet handed out (write them after everything returned
    before; empty for the one-shot functions, which write the file themselves).
    ``duration_ms`` is what a player shows: whole frames, encoder delay included.
    ``start_offset_ms`` is that delay: call time t plays at ``t + start_offset_ms``.
    ``redactions`` lists the keypad-tone spans silenced before encoding, in call time
    (``{"start_ms", "end_ms", "channel": "both", "reason": "dtmf"}``).
    """

    mp3_tail: bytes
    duration_ms: int
    size_bytes: int
    sha256: str
    peaks: Peaks
    sample_rate: int
    bitrate_kbps: int
    start_offset_ms: float
    redactions: tuple[dict[str, int | str], ...] = ()


class StereoMp3Writer:
    """Encodes (2, n) float32 blocks; keeps the stream's size, sha256 and peaks as it goes."""

    def __init__(self, sample_rate: int, bitrate_kbps: int = DEFAULT_BITRATE_KBPS) -> None:
        self.sample_rate = sample_rate
        self.bitrate_kbps = bitrate_kbps
        self._encoder = Mp3StreamEncoder(sample_rate, bitrate_kbps)
        # Peaks describe the decoded stream, which starts with the encoder delay.
        self._peaks = PeaksBuilder(sample_rate, leading_silence=ENCODER_DELAY_SAMPLES)
        self._hash = hashlib.sha256()
        self.size = 0
        self.samples = 0

    @property
    def samples_per_frame(self) -> int:
        """Samples one MP3 frame holds at this rate (MPEG-1 1152, MPEG-2 576)."""
        return 1152 if self.sample_rate >= 32000 else 576

    @property
    def frames(self) -> int:
        """MP3 frames handed out so far."""
        return self._encoder.frames

    def write(self, stereo: npt.NDArray[np.float32]) -> bytes:
        """Encode a block; return the MP3 bytes it completed (often several frames, or b"")."""
        if not stereo.shape[1]:
            return b""
        np.clip(stereo, -1.0, 1.0, out=stereo)
        self.samples += stereo.shape[1]
        self._peaks.add(stereo)
        # LAME takes 16-bit input (the peaks above are taken from the float samples).
        pcm = (stereo * np.float32(32767.0)).astype(np.int16)
        return self._account(self._encoder.write(pcm))

    def skip_silence(self, frames: int) -> bytes:
        """Account for ``frames`` more silent frames: the encoder's last frame, repeated.

        Returns that frame; the caller writes it ``frames`` times, in order, after every
        byte handed out so far. Costs a hash of the bytes, never an encode, and memory of one
        chunk. Only valid once the encoder has been fed silence long enough that its frames
        repeat.
        """
        frame = self._encoder.last_frame
        chunk = frame * max(1, (1 << 16) // max(1, len(frame)))
        per_chunk = len(chunk) // max(1, len(frame))
        left = frames
        while left >= per_chunk:
            self._account(chunk)
            left -= per_chunk
        self._account(frame * left)
        added = self._encoder.skip_silence(frames)
        self.samples += added
        self._peaks.add_silence(added)
        return frame

    def close(self, tail: bytes = b"") -> tuple[bytes, RecordingResult]:
        """Flush the encoder: (last bytes, result). ``tail`` is prepended to the last bytes."""
        last = tail + self._account(self._encoder.close())
        decoded = self._encoder.decoded_samples
        self._peaks.pad_to(decoded)
        result = RecordingResult(
            mp3_tail=last,
            duration_ms=round(decoded * 1000 / self.sample_rate),
            size_bytes=self.size,
            sha256=self._hash.hexdigest(),
            peaks=self._peaks.finish(),
            sample_rate=self.sample_rate,
            bitrate_kbps=self.bitrate_kbps,
            start_offset_ms=ENCODER_DELAY_SAMPLES * 1000 / self.sample_rate,
        )
        return last, result

    def _account(self, data: bytes) -> bytes:
        if data:
            self._hash.update(data)
            self.size += len(data)
        return data
