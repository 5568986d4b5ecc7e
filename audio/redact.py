"""Redaction of a stored recording: silence (or a 1 kHz tone) in spans of one or both channels.

Only the MP3 frames around each span are re-encoded; every other frame keeps its exact
bits, so outside the spans the file decodes as before except within about one frame of a
span's edges (the decoder overlaps each frame with the one before it). Layer III frames
borrow bytes from earlier frames (the bit reservoir), so frames are not simply swapped:
each frame's main data is extracted through its back-pointer and all frames are laid out
again, each main data as early as the reservoir allows, with the back-pointers rewritten.
Headers (and so size, duration and bitrate) are the original ones.

Edges. A frame's bits reach about 1.5 frames of decoded audio (window overlap and the
synthesis filterbank), so a span's edge cannot be both sharp and free of re-encoded frames
in general: the frames whose windows straddle it are made anew. Each span first gets the
tightest plan (:data:`_EDGE_PLANS`): silence (or the tone) starts one frame before the span
and ends one frame after it, never further, and only the frames that reach into the span
are re-encoded; the result is decoded and, if a span's inside still carries sound (the
encoder smears a sharp release over about a frame), that span is made again with the next,
wider plan. Measured on espeak-ng speech at 24 kHz over every alignment to the frame grid
(the stream from LAME's fast mode, -q 7): the inside stays below -60 dBFS; more than one
frame from an edge the error is at least 29 dB below the signal, within -44 dBFS two frames
out but where the widest plan was needed (-27.6 dBFS once in 24 edges), and bit for bit
three frames out (often already two). Exactly as before right from one frame out would
need the edge frames requantized with short blocks, which this module does not do.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from pedalboard.io import AudioFile

from audio.errors import CorruptAudio, InvalidRedaction
from audio.files import peaks_from_mp3
from audio.mp3 import ENCODER_DELAY_SAMPLES, Mp3StreamEncoder, parse_header
from audio.peaks import Peaks

Channel = Literal["caller", "assistant", "both"]
Mode = Literal["silence", "tone"]
CHANNELS: dict[str, tuple[int, ...]] = {"caller": (0,), "assistant": (1,), "both": (0, 1)}
TONE_HZ = 1000.0
TONE_AMPLITUDE = 0.1  # -20 dBFS
# New frames encoded before the first one kept: the encoder's start-up is discarded.
_PRIMING_FRAMES = 3
# Frames decoded before the audio that is needed: the decoder's overlap warms up on them.
_WARMUP_FRAMES = 2
# A frame's bits shape the decoded samples from its own start to about this many samples
# past its end (window overlap and the synthesis filterbank; measured ~950 at 24 kHz).
_REACH = 1024
# How each span's edges are made, tightest first: (reach before the span in samples, frames
# silenced before it, samples the re-encoded frames stop short of its end, frames silenced
# after it). The first plan changes the audio outside a span only within about one frame
# of its edges; a span whose inside then still carries sound (the encoder smears a sharp
# edge over about a frame) is made again with the next plan, the last being the widest.
_EDGE_PLANS: tuple[tuple[int, float, int, float], ...] = (
    (800, 1.0, 288, 1.0),
    (_REACH, 1.0, 0, 1.0),
    (_REACH, 1.25, 0, 1.0),
    (_REACH, 1.5, 0, 1.0),
)
# Inside a silenced span the decoded channel stays below this (the contract: silence).
_SILENT_DBFS = -64.0
# Inside a tone span, what is not the tone stays below this.
_TONE_RESIDUE_DBFS = -40.0
# Times a region is widened when its frames do not fit the reservoir, before the whole
# stream is re-encoded instead.
_ATTEMPTS = 48
_MAX_PRIMING_FRAMES = 10
# From this many start-up frames on, the first ones are fed noise.
_NOISE_PRIMING_FRAMES = 6
_MAX_EXTENSION_FRAMES = 64


@dataclass(frozen=True, slots=True)
class RedactedRecording:
    """The new MP3 and its facts (same duration, channels and bitrate as the original)."""

    mp3: bytes
    peaks: Peaks
    duration_ms: int
    size_bytes: int
    sha256: str
    frames_reencoded: int


# A span as decoded samples [lo, hi), its channels, and the index of its edge plan.
_Range = tuple[int, int, tuple[int, ...], int]


@dataclass(slots=True)
class _Frame:
    header: bytes  # the 4 header bytes
    side: bytearray  # side information (main_data_begin is rewritten on packing)
    main: bytes  # the frame's main data, resolved through its back-pointer
    slot: int  # bytes after header and side information


def _side_info_size(mpeg1: bool, channels: int) -> int:
    if mpeg1:
        return 32 if channels == 2 else 17
    return 17 if channels == 2 else 9


def _part23_bits(side: bytes | bytearray, mpeg1: bool, channels: int) -> int:
    """Sum of part2_3_length over granules and channels: the frame's main data in bits."""
    value = int.from_bytes(side, "big")
    width = len(side) * 8
    if mpeg1:
        position = 9 + (3 if channels == 2 else 5) + 4 * channels
        granules, per = 2, 59
    else:
        position = 8 + (2 if channels == 2 else 1)
        granules, per = 1, 63
    total = 0
    for _ in range(granules * channels):
        total += (value >> (width - position - 12)) & 0xFFF
        position += per
    return total


def _parse(data: bytes) -> list[_Frame]:
    """Every frame of a CBR Layer III stream with its main data resolved."""
    frames: list[_Frame] = []
    stream = bytearray()  # concatenated slot bytes so far (the reservoir)
    offset = 0
    while offset < len(data):
        header = parse_header(data, offset)
        if header is None or offset + header.length > len(data):
            break
        if not data[offset + 1] & 1:
            raise CorruptAudio("the recording uses CRC-protected frames, which are not supported")
        side_size = _side_info_size(header.mpeg1, header.channels)
        side = bytearray(data[offset + 4 : offset + 4 + side_size])
        begin = (side[0] << 1 | side[1] >> 7) if header.mpeg1 else side[0]
        bits = _part23_bits(side, header.mpeg1, header.channels)
        slot_start = len(stream)
        stream += data[offset + 4 + side_size : offset + header.length]
        start = slot_start - begin
        if start < 0:
            raise CorruptAudio("the recording's first frame borrows from before the file")
        main = bytes(stream[start : start + math.ceil(bits / 8)])
        slot = len(stream) - slot_start
        frames.append(_Frame(bytes(data[offset : offset + 4]), side, main, slot))
        offset += header.length
    return frames


def _pack(frames: Sequence[_Frame], mpeg1: bool) -> tuple[bytes | None, int]:
    """Lay the frames out again, each main data as early as the reservoir allows.

    Returns (stream, -1), or (None, index of the first frame whose main data does not fit).
    """
    max_back = 511 if mpeg1 else 255
    out = bytearray()
    stream = bytearray(sum(f.slot for f in frames))
    slot_start = 0
    end = 0  # end of the previous frame's main data in the stream
    for index, frame in enumerate(frames):
        start = max(end, slot_start - max_back)
        if start + len(frame.main) > slot_start + frame.slot:
            return None, index
        stream[start : start + len(frame.main)] = frame.main
        end = start + len(frame.main)
        side = bytearray(frame.side)
        begin = slot_start - start
        if mpeg1:
            side[0] = begin >> 1
            side[1] = (side[1] & 0x7F) | ((begin & 1) << 7)
        else:
            side[0] = begin
        frame.side = side
        slot_start += frame.slot
    position = 0
    for frame in frames:
        out += frame.header
        out += frame.side
        out += stream[position : position + frame.slot]
        position += frame.slot
    return bytes(out), -1


def _decode(data: bytes) -> npt.NDArray[np.float32]:
    with AudioFile(io.BytesIO(data)) as handle:
        decoded: npt.NDArray[np.float32] = handle.read(handle.frames)
    return decoded


def _silent_frames(rate: int, bitrate: int, count: int) -> list[_Frame]:
    """Frames of digital silence from a fresh encoder (a clean reservoir to decode from)."""
    encoder = Mp3StreamEncoder(rate, bitrate)
    data = encoder.write(np.zeros((2, rate), dtype=np.float32)) + encoder.close()
    return _parse(data)[-count:]


def _check_spans(
    spans: Iterable[tuple[int, int, str]], duration_ms: float
) -> list[tuple[int, int, str]]:
    checked = []
    for span in spans:
        try:
            start, end, channel = span
            start, end = int(start), int(end)
        except (TypeError, ValueError) as exc:
            raise InvalidRedaction("each span needs start_ms, end_ms and a channel") from exc
        if channel not in CHANNELS:
            raise InvalidRedaction(
                f"unknown channel {channel!r} (use 'caller', 'assistant' or 'both')"
            )
        if start < 0 or end <= start:
            raise InvalidRedaction(f"span {start}-{end} ms is empty or reversed")
        if end > duration_ms:
            raise InvalidRedaction(
                f"span {start}-{end} ms ends after the recording ({int(duration_ms)} ms)"
            )
        checked.append((start, end, channel))
    if not checked:
        raise InvalidRedaction("no span to redact")
    return checked


def redact_mp3(
    mp3: bytes,
    spans: Iterable[tuple[int, int, str]],
    mode: Mode = "silence",
    *,
    start_offset_samples: int = ENCODER_DELAY_SAMPLES,
) -> RedactedRecording:
    """Redact ``spans`` (``(start_ms, end_ms, channel)`` in call time) of a stereo CBR MP3.

    Inside each span the named channel becomes silence, or a 1 kHz tone at -20 dBFS with
    ``mode="tone"``; the other channel and everything outside the spans is kept. Call time
    ``t`` sits at decoded sample ``t * rate / 1000 + start_offset_samples`` (the recorder's
    encoder delay). Raises :class:`InvalidRedaction` for bad spans or mode.
    """
    if mode not in ("silence", "tone"):
        raise InvalidRedaction(f"unknown mode {mode!r} (use 'silence' or 'tone')")
    first = parse_header(mp3)
    if first is None:
        raise CorruptAudio("the recording is not an MP3 stream")
    if first.channels != 2:
        raise CorruptAudio("the recording is not stereo")
    frames = _parse(mp3)
    rate, spf, mpeg1 = first.sample_rate, first.samples, first.mpeg1
    total = len(frames) * spf
    checked = _check_spans(spans, (total - start_offset_samples) * 1000 / rate)
    # Spans as decoded sample ranges (with the plan of their edges), then the new stream.
    ranges: list[_Range] = [
        (
            start * rate // 1000 + start_offset_samples,
            -(-end * rate // 1000) + start_offset_samples,
            CHANNELS[channel],
            0,
        )
        for start, end, channel in checked
    ]
    bitrate = first.bitrate_kbps
    silent = _silent_frames(rate, bitrate, 4)
    while True:
        packed, made, reencoded = _build(frames, ranges, mode, silent, rate, spf, bitrate, mpeg1)
        loud = _loud_spans(made, ranges, mode, rate, spf, mpeg1, silent)
        again = [i for i in loud if ranges[i][3] < len(_EDGE_PLANS) - 1]
        if not again:
            break
        for i in again:
            lo, hi, channels, plan = ranges[i]
            ranges[i] = (lo, hi, channels, plan + 1)
    summary = peaks_from_mp3(packed)
    return RedactedRecording(
        mp3=packed,
        peaks=summary.peaks,
        duration_ms=summary.duration_ms,
        size_bytes=len(packed),
        sha256=hashlib.sha256(packed).hexdigest(),
        frames_reencoded=reencoded,
    )


def _build(
    frames: list[_Frame],
    ranges: list[_Range],
    mode: str,
    silent: list[_Frame],
    rate: int,
    spf: int,
    bitrate: int,
    mpeg1: bool,
) -> tuple[bytes, list[_Frame], int]:
    """The redacted stream for ``ranges``, its frames, and how many were encoded anew."""
    regions: list[list[int]] = []
    for lo, hi, _, plan in sorted(ranges):
        f0, f1 = _frames_of(lo, hi, spf, len(frames), plan)
        if f0 < _PRIMING_FRAMES:
            f0 = 0  # the new encoder then starts where the stream starts, reservoir empty
        if regions and f0 <= regions[-1][1] + _PRIMING_FRAMES + _WARMUP_FRAMES + 2:
            regions[-1][1] = max(regions[-1][1], f1)
        else:
            regions.append([f0, f1])
    packed: bytes | None = None
    unmixed: set[int] = set()
    mixed: set[int] = set()
    primings = dict.fromkeys(range(len(regions)), _PRIMING_FRAMES)
    for _ in range(_ATTEMPTS):
        result = [_copy(f) for f in frames]
        for index, (f0, f1) in enumerate(regions):
            result[f0 : f1 + 1] = _reencode(
                frames,
                f0,
                f1,
                ranges,
                mode,
                silent,
                rate,
                spf,
                bitrate,
                mpeg1,
                priming=primings[index],
                unmixed=frozenset(unmixed),
                mixed=mixed,
            )
        packed, failed = _pack(result, mpeg1)
        if packed is not None:
            break
        if not _retry(regions, primings, unmixed, failed, failed in mixed):
            break
        mixed.clear()
    reencoded = sum(f1 - f0 + 1 for f0, f1 in regions)
    if packed is None:
        packed = _reencode_whole(frames, ranges, mode, silent, rate, spf, bitrate, mpeg1)
        return packed, _parse(packed), len(frames)
    return packed, result, reencoded


def _loud_spans(
    frames: list[_Frame],
    ranges: list[_Range],
    mode: str,
    rate: int,
    spf: int,
    mpeg1: bool,
    silent: list[_Frame],
) -> list[int]:
    """Indexes of the ranges whose inside is not what it should be (silence, or the tone).

    Each span is decoded on its own, from a few frames before it (after silent frames that
    give the decoder a clean reservoir), so a long recording is not decoded whole.
    """
    loud = []
    for index, (lo, hi, channels, _) in enumerate(ranges):
        w0 = max(0, lo // spf - 2 * _WARMUP_FRAMES)
        w1 = min(len(frames), hi // spf + 2)
        lead = [_copy(f) for f in silent]
        window, _ = _pack([*lead, *(_copy(f) for f in frames[w0:w1])], mpeg1)
        if window is None:
            loud.append(index)
            continue
        decoded = _decode(window)[:2, len(lead) * spf :]
        for channel in channels:
            inside = decoded[channel, lo - w0 * spf : hi - w0 * spf].astype(np.float64)
            if not inside.size:
                continue
            if mode == "tone":
                t = np.arange(lo, lo + inside.size, dtype=np.float64) / rate
                basis = np.stack([np.sin(2 * np.pi * TONE_HZ * t), np.cos(2 * np.pi * TONE_HZ * t)])
                fit, *_ = np.linalg.lstsq(basis.T, inside, rcond=None)
                inside = inside - fit @ basis
                limit = 10 ** (_TONE_RESIDUE_DBFS / 20)
            else:
                limit = 10 ** (_SILENT_DBFS / 20)
            if float(np.max(np.abs(inside))) >= limit:
                loud.append(index)
                break
    return loud


def _retry(
    regions: list[list[int]],
    primings: dict[int, int],
    unmixed: set[int],
    failed: int,
    was_mixed: bool,
) -> bool:
    """Change the plan after frame ``failed`` did not fit the reservoir; False: give up.

    The new encoder's reservoir at a region's first frame depends on what it encoded
    before: another start-up length (then an earlier start) changes it. An old frame after
    a region may no longer find the bytes it borrowed: the region then extends over it.
    """
    for index, region in enumerate(regions):
        if region[0] <= failed <= region[1]:
            if was_mixed and failed not in unmixed:
                # Mixed frames outgrow the reservoir (a tone costs more than the silence it
                # replaced): the region takes the joint encoding's frames, which fit together.
                unmixed.update(range(region[0], region[1] + 1))
            elif primings[index] < _MAX_PRIMING_FRAMES:
                primings[index] = max(primings[index] + 1, _NOISE_PRIMING_FRAMES)
            else:
                primings[index] = _PRIMING_FRAMES
                region[0] = 0 if region[0] <= _MAX_PRIMING_FRAMES else region[0] - 1
            return True
        if region[1] < failed <= region[1] + _MAX_EXTENSION_FRAMES:
            region[1] = failed
            return True
    return False


def _reencode_whole(
    frames: list[_Frame],
    ranges: list[_Range],
    mode: str,
    silent: list[_Frame],
    rate: int,
    spf: int,
    bitrate: int,
    mpeg1: bool,
) -> bytes:
    """The fallback: decode and re-encode every frame (the encoder's own reservoir layout)."""
    count = len(frames) - 1
    new = _reencode(frames, 0, count, ranges, mode, silent, rate, spf, bitrate, mpeg1, whole=True)
    packed, _ = _pack(new, mpeg1)
    if packed is None:
        raise CorruptAudio("the recording could not be re-encoded with the redactions")
    return packed


def _reencode(
    frames: list[_Frame],
    f0: int,
    f1: int,
    ranges: list[_Range],
    mode: str,
    silent: list[_Frame],
    rate: int,
    spf: int,
    bitrate: int,
    mpeg1: bool,
    *,
    whole: bool = False,
    priming: int = _PRIMING_FRAMES,
    unmixed: frozenset[int] = frozenset(),
    mixed: set[int] | None = None,
) -> list[_Frame]:
    """New frames for ``frames[f0 : f1 + 1]``: decode around them, redact, encode, cut.

    A frame no span touches stays the original, and one touched in one channel keeps the
    other channel's bits when it can (noted in ``mixed``), unless ``whole`` or the frame is
    in ``unmixed``.
    """
    # The new encoder shows its input delayed by ENCODER_DELAY_SAMPLES and its first frames
    # are start-up: feed from where its frame _PRIMING_FRAMES lands on frame f0.
    priming = priming if f0 else 0
    origin = (f0 - priming) * spf  # decoded sample of the new encoder's frame 0
    need_lo = origin + ENCODER_DELAY_SAMPLES
    need_hi = (f1 + 3) * spf
    w0 = max(0, need_lo // spf - _WARMUP_FRAMES)
    w1 = min(len(frames), need_hi // spf + 1)
    lead = [_copy(f) for f in silent]
    window, _ = _pack([*lead, *(_copy(f) for f in frames[w0:w1])], mpeg1)
    if window is None:
        raise CorruptAudio("the recording's frames could not be decoded for redaction")
    decoded = _decode(window)[:2, len(lead) * spf :]
    audio = np.zeros((2, need_hi - need_lo), dtype=np.float32)
    lo = max(need_lo, w0 * spf)
    hi = min(need_hi, w0 * spf + decoded.shape[1])
    if hi > lo:
        audio[:, lo - need_lo : hi - need_lo] = decoded[:, lo - w0 * spf : hi - w0 * spf]
    for start, end, channels, plan in ranges:
        # Also up to a frame (or, by the last plan, 1.5 frames) before and one after: the
        # encoder smears a sharp edge over about a frame (a release more than an attack),
        # which left speech in a span (-34 dBFS) when only the span was replaced.
        _, before, _, after = _EDGE_PLANS[plan]
        a = max(start - int(before * spf), need_lo)
        b = min(end + int(after * spf), need_hi)
        if a >= b:
            continue
        for channel in channels:
            if mode == "tone":
                t = np.arange(a, b, dtype=np.float64) / rate
                tone = TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)
                audio[channel, a - need_lo : b - need_lo] = tone.astype(np.float32)
            else:
                audio[channel, a - need_lo : b - need_lo] = 0.0
    if priming >= _NOISE_PRIMING_FRAMES and f0:
        # Loud noise first drains the new encoder's bit reservoir (it starts out filling it
        # on its own start-up silence), so its first kept frame borrows no more than the
        # old stream before it can lend; real audio follows in time for the window overlap.
        noise_end = max(0, priming * spf - ENCODER_DELAY_SAMPLES - 3 * spf)
        rng = np.random.default_rng(priming)
        audio[:, :noise_end] = rng.uniform(-0.5, 0.5, (2, noise_end)).astype(np.float32)
    count = f1 - f0 + 1
    encodings: dict[int, list[_Frame]] = {}

    def encoded(variant: int) -> list[_Frame]:
        """New frames of the region: -1 both channels; c channel c with the other silent,
        which keeps the encoder from coding mid/side so channel c's bits can stand alone."""
        if variant not in encodings:
            source = audio
            if variant >= 0:
                source = np.zeros_like(audio)
                source[variant] = audio[variant]
            encoder = Mp3StreamEncoder(rate, bitrate)
            pcm = (np.clip(source, -1.0, 1.0) * np.float32(32767.0)).astype(np.int16)
            fresh = _parse(encoder.write(pcm) + encoder.close())[priming : priming + count]
            while len(fresh) < count:
                fresh.append(_copy(silent[-1]))
            encodings[variant] = fresh
        return encodings[variant]

    kept: list[_Frame] = []
    spans = [
        (*_frames_of(lo, hi, spf, len(frames), plan), channels) for lo, hi, channels, plan in ranges
    ]
    # Frames of the region between spans (or added for the reservoir) take the channels of
    # the region's spans: a switch back to old frames there would need the reservoir again.
    in_region = {
        c for first, last, channels in spans if first <= f1 and last >= f0 for c in channels
    }
    for index in range(count):
        k = f0 + index
        original = frames[k]
        touched = {c for first, last, channels in spans if first <= k <= last for c in channels}
        touched = touched or set(in_region)
        if not touched and not whole:
            kept.append(original)
            continue
        if len(touched) == 1 and not whole and k not in unmixed:
            # Take one channel's bits from the joint encoding, or when that coded mid/side,
            # from the one-channel encoding (bigger: it had the whole frame to itself).
            channel = touched.pop()
            combined = _mix(original, encoded(-1)[index], channel, mpeg1)
            if combined is None:
                combined = _mix(original, encoded(channel)[index], channel, mpeg1)
            if combined is not None:
                kept.append(combined)
                if mixed is not None:
                    mixed.add(k)
                continue
        frame = _copy(encoded(-1)[index])
        # The original's padding (so the stream's size and timing stay), the new stereo mode.
        frame.header = original.header[:3] + frame.header[3:]
        frame.slot = original.slot
        kept.append(frame)
    return kept


def _frames_of(lo: int, hi: int, spf: int, count: int, plan: int = 0) -> tuple[int, int]:
    """The frames to re-encode so that decoded samples ``[lo, hi)`` are the new audio."""
    reach, _, short, _ = _EDGE_PLANS[plan]
    first = max(0, (lo - reach) // spf)
    return first, max(first, min(count - 1, (hi - 1 - short) // spf))


def _separate_channels(header: bytes) -> bool:
    """Whether a stereo frame codes its channels apart (no mid/side, no intensity stereo)."""
    mode, extension = header[3] >> 6, (header[3] >> 4) & 3
    return mode != 1 or extension == 0


def _bits(data: bytes | bytearray, length: int) -> str:
    return bin(int.from_bytes(data, "big"))[2:].zfill(len(data) * 8)[:length] if data else ""


def _mix(old: _Frame, new: _Frame, channel: int, mpeg1: bool) -> _Frame | None:
    """``old`` with ``channel`` taken from ``new``: the other channel keeps its exact bits.

    Possible when both frames code the channels apart; None otherwise. Side information and
    main data are per granule and channel (MPEG-1 adds a per-channel scalefactor-reuse field).
    """
    if not (_separate_channels(old.header) and _separate_channels(new.header)):
        return None
    if mpeg1:
        fields = [(12, 16), (16, 20), (20, 79), (79, 138), (138, 197), (197, 256)]
        owners = [0, 1, 0, 1, 0, 1]
        blocks = [0, 1, 0, 1]  # granule 0 ch 0, ch 1, granule 1 ch 0, ch 1
        per, first = 59, 20
    else:
        fields = [(10, 73), (73, 136)]
        owners = [0, 1]
        blocks = [0, 1]
        per, first = 63, 10
    old_side, new_side = _bits(old.side, len(old.side) * 8), _bits(new.side, len(new.side) * 8)
    side = list(old_side)
    for (a, b), owner in zip(fields, owners, strict=True):
        if owner == channel:
            side[a:b] = new_side[a:b]
    lengths_old = [
        int(old_side[first + i * per : first + i * per + 12], 2) for i in range(len(blocks))
    ]
    lengths_new = [
        int(new_side[first + i * per : first + i * per + 12], 2) for i in range(len(blocks))
    ]
    old_main = _bits(old.main, sum(lengths_old))
    new_main = _bits(new.main, sum(lengths_new))
    parts = []
    old_at = new_at = 0
    for owner, old_len, new_len in zip(blocks, lengths_old, lengths_new, strict=True):
        if owner == channel:
            parts.append(new_main[new_at : new_at + new_len])
        else:
            parts.append(old_main[old_at : old_at + old_len])
        old_at += old_len
        new_at += new_len
    main_bits = "".join(parts)
    main_bits += "0" * (-len(main_bits) % 8)
    main = int(main_bits, 2).to_bytes(len(main_bits) // 8, "big") if main_bits else b""
    side_bits = "".join(side)
    side_bytes = bytearray(int(side_bits, 2).to_bytes(len(old.side), "big"))
    return _Frame(old.header, side_bytes, main, old.slot)


def _copy(frame: _Frame) -> _Frame:
    return _Frame(frame.header, bytearray(frame.side), frame.main, frame.slot)
