"""A file's header promise checked against its bytes, before anything is decoded.

Decoders pad a file that claims more audio than it holds with silence: a 1 KB WAV whose
header says 46 minutes of 192 kHz decodes as 46 minutes, a FLAC or MP3 cut in half keeps
its full length with the missing half silent. These checks read headers and the file's tail
only, so they cost next to nothing whatever the file claims.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from pathlib import Path
from typing import IO

from audio.errors import TruncatedAudio
from audio.mp3 import complete_frames_end

# A whole MP3 frame or two of slack: the decoder's count includes priming frames.
_MP3_SLACK_SAMPLES = 4 * 1152
_FLAC_TAIL_MAX = 1 << 20
_FLAC_TAIL_MIN = 1 << 16


def check_promise(
    source: str | os.PathLike[str] | bytes, label: str, frames: int, rate: float
) -> None:
    """Raise :class:`TruncatedAudio` when the file (a path or its bytes) holds less than it claims.

    ``frames`` and ``rate`` are what the decoder reports from the header. WAV, FLAC and MP3
    are checked; other formats (OGG measures its length from its last page) pass.
    """
    with contextlib.ExitStack() as stack:
        handle: IO[bytes]
        if isinstance(source, bytes | bytearray):
            handle, size = io.BytesIO(source), len(source)
        else:
            handle = stack.enter_context(Path(source).open("rb"))
            size = Path(source).stat().st_size
        head = handle.read(12)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            _check_wav(handle, size, label)
        elif head[:4] == b"fLaC":
            _check_flac(handle, size, label)
        elif _looks_mp3(head):
            _check_mp3(handle, label, frames, rate)


def _missing(label: str, promised_s: float, held_s: float) -> TruncatedAudio:
    return TruncatedAudio(
        f"the {label} audio's header promises {promised_s:.1f} s but the file holds "
        f"{held_s:.1f} s: truncated or damaged"
    )


def _check_wav(handle: IO[bytes], size: int, label: str) -> None:
    """The ``data`` chunk's declared length must fit in the file."""
    handle.seek(12)
    byte_rate = 0
    block_align = 1
    while True:
        header = handle.read(8)
        if len(header) < 8:
            return
        chunk_id, length = header[:4], struct.unpack("<I", header[4:])[0]
        start = handle.tell()
        if chunk_id == b"fmt ":
            fmt = handle.read(16)
            if len(fmt) == 16:
                _, _, _, byte_rate, block_align, _ = struct.unpack("<HHIIHH", fmt)
        elif chunk_id == b"data":
            # 0 and 0xFFFFFFFF mean "to the end of the file" (a stream written live).
            if length in (0, 0xFFFFFFFF):
                return
            held = size - start
            if length > held + max(block_align, 1):
                rate = max(byte_rate, 1)
                raise _missing(label, length / rate, held / rate)
            return
        handle.seek(start + length + (length & 1))


_CRC8 = [0] * 256
_CRC16 = [0] * 256
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = ((_c << 1) ^ 0x07) & 0xFF if _c & 0x80 else (_c << 1) & 0xFF
    _CRC8[_i] = _c
    _c = _i << 8
    for _ in range(8):
        _c = ((_c << 1) ^ 0x8005) & 0xFFFF if _c & 0x8000 else (_c << 1) & 0xFFFF
    _CRC16[_i] = _c


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ byte]
    return crc


def _utf8_number(data: bytes, at: int) -> tuple[int, int] | None:
    """FLAC's UTF-8-like coded frame or sample number at ``at``: (value, offset after it)."""
    if at >= len(data):
        return None
    first = data[at]
    if first < 0x80:
        return first, at + 1
    for extra in range(1, 7):
        prefix = (0xFF << (7 - extra)) & 0xFF
        if first & ((prefix >> 1) | 0x80) == prefix:
            break
    else:
        return None
    value = first & (0x3F >> extra)
    end = at + 1 + extra
    if end > len(data):
        return None
    for byte in data[at + 1 : end]:
        if byte & 0xC0 != 0x80:
            return None
        value = (value << 6) | (byte & 0x3F)
    return value, end


def _flac_frame_header(data: bytes, at: int) -> tuple[int, int, bool, int] | None:
    """(number, block size, variable blocking, header length) of a frame header at ``at``."""
    if at + 6 > len(data) or data[at] != 0xFF or data[at + 1] & 0xFE != 0xF8:
        return None
    bs_code, sr_code = data[at + 2] >> 4, data[at + 2] & 0x0F
    if bs_code == 0 or sr_code == 15 or data[at + 3] & 1 or (data[at + 3] >> 4) > 10:
        return None
    coded = _utf8_number(data, at + 4)
    if coded is None:
        return None
    number, pos = coded
    if bs_code == 1:
        block = 192
    elif bs_code <= 5:
        block = 576 << (bs_code - 2)
    elif bs_code == 6:
        block, pos = (data[pos] + 1 if pos < len(data) else 0), pos + 1
    elif bs_code == 7:
        block, pos = int.from_bytes(data[pos : pos + 2], "big") + 1, pos + 2
    else:
        block = 256 << (bs_code - 8)
    pos += {12: 1, 13: 2, 14: 2}.get(sr_code, 0)
    if pos >= len(data) or _crc8(data[at:pos]) != data[pos]:
        return None
    return number, block, bool(data[at + 1] & 1), pos + 1 - at


def _check_flac(handle: IO[bytes], size: int, label: str) -> None:
    """STREAMINFO's total samples must be reached by a last frame that ends the file whole."""
    handle.seek(4)
    info = handle.read(4 + 34)
    if len(info) < 38 or info[0] & 0x7F != 0:
        return
    min_block = int.from_bytes(info[4:6], "big")
    max_frame = int.from_bytes(info[11:14], "big")
    packed = int.from_bytes(info[14:22], "big")
    rate = packed >> 44
    total = packed & ((1 << 36) - 1)
    if total == 0 or rate == 0:
        return
    window = min(size, min(_FLAC_TAIL_MAX, max(_FLAC_TAIL_MIN, 2 * max_frame)))
    handle.seek(size - window)
    tail = handle.read(window)
    covered = _flac_covered(tail, min_block, total)
    if covered < total:
        raise _missing(label, total / rate, covered / rate)


def _flac_covered(tail: bytes, min_block: int, total: int) -> int:
    """Samples up to the end of the last frame, if that frame ends the file intact; else 0."""
    at = len(tail) - 2
    checked = 0
    while checked < 8:
        at = tail.rfind(b"\xff", 0, at)
        if at < 0:
            return 0
        found = _flac_frame_header(tail, at)
        if found is None:
            continue
        number, block, variable, _ = found
        first = number if variable else number * min_block
        if first >= total:
            continue
        checked += 1
        if _crc16(tail[at:-2]) == int.from_bytes(tail[-2:], "big"):
            return first + block
    return 0


def _looks_mp3(head: bytes) -> bool:
    return head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _check_mp3(handle: IO[bytes], label: str, frames: int, rate: float) -> None:
    """The whole frames in the file must hold what the decoder says the file lasts."""
    handle.seek(0)
    carry = b""
    samples = 0
    while True:
        chunk = handle.read(1 << 20)
        data = carry + chunk
        end, count, held = complete_frames_end(data)
        samples += held
        carry = data[end:]
        if not chunk or (count == 0 and len(carry) > 1 << 16):
            break
    if samples + _MP3_SLACK_SAMPLES < frames and rate > 0:
        raise _missing(label, frames / rate, samples / rate)
