"""Whole files: two mono legs or one stereo file -> MP3 + peaks; peaks back from an MP3."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pedalboard
from pedalboard.io import AudioFile

from audio.dtmf_redaction import DtmfRedactor
from audio.errors import (
    AudioTooLong,
    BadSampleRate,
    CorruptAudio,
    EmptyAudio,
    NotAudio,
    NotStereo,
    TooManyChannels,
)
from audio.formats import check_sample_rate, output_rate_for
from audio.mp3 import DEFAULT_BITRATE_KBPS, complete_frames_end
from audio.peaks import Peaks, PeaksBuilder
from audio.promises import check_promise
from audio.writer import RecordingResult, StereoMp3Writer

AudioSource = str | os.PathLike[str] | bytes | IO[bytes]
Destination = str | os.PathLike[str] | IO[bytes]

DEFAULT_MAX_DURATION_S = 4 * 3600
_BLOCK_SECONDS = 1
_FILE_RESAMPLE_QUALITY = pedalboard.Resample.Quality.WindowedSinc32


@contextlib.contextmanager
def _open(source: AudioSource, label: str) -> Iterator[Any]:
    """Open an audio source for reading, mapping pedalboard's failures to typed errors."""
    target: Any = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    if isinstance(target, str | os.PathLike):
        target = os.fspath(target)
        if Path(target).is_file() and Path(target).stat().st_size == 0:
            raise EmptyAudio(f"the {label} audio is empty")
    try:
        handle = AudioFile(target)
    except (ValueError, RuntimeError, OSError) as exc:
        text = str(exc)
        if "is empty" in text:
            raise EmptyAudio(f"the {label} audio is empty") from exc
        if "known or supported format" in text or "does not seem" in text:
            raise NotAudio(
                f"the {label} file is not audio in a supported format (WAV, FLAC, MP3, OGG)"
            ) from exc
        raise CorruptAudio(f"the {label} audio file could not be opened: damaged?") from exc
    try:
        yield handle
    finally:
        handle.close()


def _check(
    handle: Any, label: str, max_channels: int, max_duration_s: float, source: AudioSource
) -> int:
    """Validate an opened file's rate, channels, length and its header's promise; its rate."""
    try:
        rate = check_sample_rate(handle.samplerate)
    except BadSampleRate as exc:
        raise BadSampleRate(f"the {label} audio has an unsupported sample rate: {exc}") from exc
    if handle.num_channels > max_channels:
        raise TooManyChannels(
            f"the {label} audio has {handle.num_channels} channels (at most {max_channels})"
        )
    if handle.frames <= 0:
        raise EmptyAudio(f"the {label} audio is empty")
    if handle.frames / rate > max_duration_s:
        raise AudioTooLong(f"the {label} audio is longer than {max_duration_s / 3600:g} hours")
    if isinstance(source, str | os.PathLike | bytes | bytearray):
        check_promise(source, label, handle.frames, rate)
    return rate


def _read(handle: Any, count: int, label: str) -> npt.NDArray[np.float32]:
    try:
        block: npt.NDArray[np.float32] = handle.read(count)
    except (ValueError, RuntimeError, OSError) as exc:
        raise CorruptAudio(f"the {label} audio is damaged and could not be decoded") from exc
    return block


def _mono(block: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A leg's block as mono: stereo legs are averaged."""
    if block.shape[0] == 1:
        mono: npt.NDArray[np.float32] = block[0]
        return mono
    averaged: npt.NDArray[np.float32] = block.mean(axis=0, dtype=np.float32)
    return averaged


def _pad(block: npt.NDArray[np.float32], count: int) -> npt.NDArray[np.float32]:
    if block.shape[-1] >= count:
        return block
    return np.concatenate((block, np.zeros(count - block.shape[-1], dtype=np.float32)))


def _blocks_two_legs(
    caller: Any, assistant: Any, rate: int, labels: tuple[str, str]
) -> Iterator[npt.NDArray[np.float32]]:
    """Stereo blocks from two mono readers at ``rate``; the shorter leg is padded."""
    size = rate * _BLOCK_SECONDS
    readers = [caller, assistant]
    done = [False, False]
    while not all(done):
        legs = []
        for index, reader in enumerate(readers):
            block = np.zeros(0, dtype=np.float32)
            if not done[index]:
                block = _mono(_read(reader, size, labels[index]))
                if block.shape[0] < size:
                    done[index] = True
            legs.append(block)
        count = max(leg.shape[0] for leg in legs)
        if count:
            yield np.stack([_pad(leg, count) for leg in legs])


def _blocks_stereo(reader: Any, rate: int) -> Iterator[npt.NDArray[np.float32]]:
    size = rate * _BLOCK_SECONDS
    while True:
        block = _read(reader, size, "call")
        if block.shape[1]:
            yield np.ascontiguousarray(block, dtype=np.float32)
        if block.shape[1] < size:
            return


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, durable: bool = True) -> Iterator[IO[bytes]]:
    """A temp file beside ``path``, renamed onto it only on success: never seen partial.

    ``durable`` syncs the data to disk before the rename.
    """
    path = Path(path)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        Path(temp_name).replace(path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _destination(dest: Destination) -> Iterator[IO[bytes]]:
    """A stream to write to; for a path, a temp file renamed into place only on success."""
    if not isinstance(dest, str | os.PathLike):
        yield dest
        return
    with atomic_file(dest) as handle:
        yield handle


def encode_files(
    caller: AudioSource | None = None,
    assistant: AudioSource | None = None,
    *,
    stereo: AudioSource | None = None,
    dest: Destination,
    bitrate_kbps: int = DEFAULT_BITRATE_KBPS,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
    redact_dtmf: bool = True,
) -> RecordingResult:
    """Encode whole files to one stereo MP3 (ch 0 caller, ch 1 assistant) in bounded memory.

    Give ``caller`` and ``assistant`` (mono; a stereo leg is averaged) or ``stereo`` alone
    (exactly two channels). Files are WAV, FLAC, MP3 or OGG at any rate; the output rate is
    the nearest MP3 rate at or above the highest input rate, at most 48 kHz. The shorter leg
    is padded with silence. When ``dest`` is a path, the MP3 appears there only on success;
    when it is a stream, the caller owns it and must discard it if this raises.
    With ``redact_dtmf`` keypad tones found in either channel are silenced in both (40 ms
    each side) before encoding; the result's ``redactions`` lists them.

    Trusted input only: use :func:`decode_untrusted_to_mp3` for uploads.
    Raises an :class:`AudioError` subclass describing the problem.
    """
    if (stereo is None) == (caller is None and assistant is None) or (
        stereo is None and (caller is None or assistant is None)
    ):
        raise ValueError("give either caller and assistant, or stereo")
    with contextlib.ExitStack() as stack:
        if stereo is not None:
            handle = stack.enter_context(_open(stereo, "call"))
            in_rate = _check(handle, "call", 2, max_duration_s, stereo)
            if handle.num_channels != 2:
                raise NotStereo()
            rate = output_rate_for(in_rate)
            reader = handle.resampled_to(rate, _FILE_RESAMPLE_QUALITY)
            blocks = _blocks_stereo(reader, rate)
        else:
            assert caller is not None
            assert assistant is not None
            handles = [
                stack.enter_context(_open(caller, "caller")),
                stack.enter_context(_open(assistant, "assistant")),
            ]
            rates = [
                _check(handles[0], "caller", 2, max_duration_s, caller),
                _check(handles[1], "assistant", 2, max_duration_s, assistant),
            ]
            rate = output_rate_for(*rates)
            readers = [h.resampled_to(rate, _FILE_RESAMPLE_QUALITY) for h in handles]
            blocks = _blocks_two_legs(readers[0], readers[1], rate, ("caller", "assistant"))
        writer = StereoMp3Writer(rate, bitrate_kbps)
        redactor = DtmfRedactor(rate) if redact_dtmf else None
        with _destination(dest) as out:
            for block in blocks:
                out.write(writer.write(block if redactor is None else redactor.process(block)))
            if redactor is not None:
                out.write(writer.write(redactor.flush()))
            if writer.samples == 0:
                raise EmptyAudio()
            last, result = writer.close()
            out.write(last)
    redactions = () if redactor is None else tuple(r.as_dict() for r in redactor.redactions)
    return replace(result, mp3_tail=b"", redactions=redactions)


@dataclass(frozen=True)
class Mp3Summary:
    """Facts about an MP3 file computed by decoding it: peaks, duration, size and sha256.

    ``size_bytes`` and ``sha256`` cover the whole complete frames only (what a repaired file
    holds). ``duration_ms`` counts decoded samples, like a player.
    """

    peaks: Peaks
    duration_ms: int
    size_bytes: int
    sha256: str
    sample_rate: int


class _Prefix(io.RawIOBase):
    """Read-only view of the first ``limit`` bytes of a binary file (hides a partial frame)."""

    def __init__(self, handle: IO[bytes], limit: int) -> None:
        self._handle = handle
        self._limit = limit
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: self._limit}[whence]
        self._position = min(max(base + offset, 0), self._limit)
        return self._position

    def read(self, size: int = -1) -> bytes:
        left = self._limit - self._position
        size = left if size is None or size < 0 else min(size, left)
        self._handle.seek(self._position)
        data = self._handle.read(size)
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _scan_frames(handle: IO[bytes]) -> tuple[int, str, int]:
    """(end of the last complete frame, sha256 up to it, decoded samples), 1 MB at a time."""
    digest = hashlib.sha256()
    carry = b""
    consumed = 0
    samples = 0
    while True:
        chunk = handle.read(1 << 20)
        data = carry + chunk
        end, frames, count = complete_frames_end(data)
        digest.update(data[:end])
        consumed += end
        samples += count
        carry = data[end:]
        # End of file, or bytes that are not frames: nothing after them counts.
        if not chunk or (frames == 0 and len(carry) > 1 << 16):
            return consumed, digest.hexdigest(), samples


def peaks_from_mp3(source: str | os.PathLike[str] | bytes) -> Mp3Summary:
    """Peaks (zoom + overview), duration, size and sha256 of an MP3, decoded in blocks.

    For crash recovery: a trailing partial frame is ignored (call :func:`repair_mp3_tail`
    to cut it from the file). Memory stays bounded whatever the file's length.
    Raises :class:`EmptyAudio` when no complete frame is present.
    """
    with contextlib.ExitStack() as stack:
        handle: IO[bytes]
        if isinstance(source, bytes | bytearray):
            handle = io.BytesIO(source)
        else:
            handle = stack.enter_context(Path(source).open("rb"))
        end, digest, total = _scan_frames(handle)
        if end == 0:
            raise EmptyAudio("the MP3 holds no complete frame")
        handle.seek(0)
        view = io.BufferedReader(_Prefix(handle, end))
        reader = stack.enter_context(_open(view, "recording"))
        rate = int(reader.samplerate)
        builder = PeaksBuilder(rate)
        size = rate * _BLOCK_SECONDS
        while builder.samples < total:
            block = _read(reader, min(size, total - builder.samples), "recording")
            if block.shape[1]:
                if block.shape[0] == 1:
                    block = np.concatenate((block, block))
                builder.add(np.ascontiguousarray(block[:2], dtype=np.float32))
            if not block.shape[1]:
                break
        # The decoder may stop short or add a frame of silence: peaks follow the frame count.
        builder.pad_to(total)
        return Mp3Summary(
            peaks=builder.finish(),
            duration_ms=round(total * 1000 / rate),
            size_bytes=end,
            sha256=digest,
            sample_rate=rate,
        )
