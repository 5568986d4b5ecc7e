"""Local multipart uploads: parts that arrive in order complete by a rename, not a copy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from web.storage.local import LocalStorage

KEY = "org/2024/05/call.mp3"


async def _upload(storage: LocalStorage, parts: list[bytes]) -> tuple[str, list[tuple[int, str]]]:
    upload = await storage.start_multipart(KEY, "audio/mpeg")
    etags = [(n, await storage.upload_part(KEY, upload, n, p)) for n, p in enumerate(parts, 1)]
    return upload, etags


async def test_in_order_parts_complete_by_moving_the_assembled_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    parts = [os.urandom(1 << 20) for _ in range(3)] + [b"tail"]
    upload, etags = await _upload(storage, parts)
    assembled = tmp_path / ".multipart" / upload / "assembled"
    inode = assembled.stat().st_ino
    await storage.complete_multipart(KEY, upload, etags)
    target = tmp_path / KEY
    assert target.read_bytes() == b"".join(parts)
    assert target.stat().st_ino == inode  # moved, not copied
    assert not (tmp_path / ".multipart" / upload).exists()


async def test_out_of_order_parts_are_concatenated(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    upload = await storage.start_multipart(KEY, "audio/mpeg")
    e2 = await storage.upload_part(KEY, upload, 2, b"second")
    e1 = await storage.upload_part(KEY, upload, 1, b"first-")
    await storage.complete_multipart(KEY, upload, [(2, e2), (1, e1)])
    assert (tmp_path / KEY).read_bytes() == b"first-second"


async def test_bytes_left_by_a_crash_mid_append_are_dropped(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    upload, etags = await _upload(storage, [b"a" * 1000])
    # A crash after writing bytes but before recording them in the manifest.
    with (tmp_path / ".multipart" / upload / "assembled").open("ab") as fh:
        fh.write(b"garbage")
    etags.append((2, await storage.upload_part(KEY, upload, 2, b"b" * 10)))
    await storage.complete_multipart(KEY, upload, etags)
    assert (tmp_path / KEY).read_bytes() == b"a" * 1000 + b"b" * 10


async def test_an_earlier_part_uploaded_again_replaces_only_itself(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    upload, etags = await _upload(storage, [b"1" * 10, b"2" * 20, b"3" * 30, b"4" * 40])
    etags[1] = (2, await storage.upload_part(KEY, upload, 2, b"two"))
    await storage.complete_multipart(KEY, upload, etags)
    assert (tmp_path / KEY).read_bytes() == b"1" * 10 + b"two" + b"3" * 30 + b"4" * 40


async def test_completion_refuses_an_etag_that_does_not_match(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    upload, etags = await _upload(storage, [b"a" * 10, b"b" * 10])
    with pytest.raises(ValueError, match="part 2"):
        await storage.complete_multipart(KEY, upload, [etags[0], (2, "0" * 32)])
    assert not (tmp_path / KEY).exists()


async def test_a_damaged_assembled_file_is_refused_not_published(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    upload, etags = await _upload(storage, [b"x" * 100, b"y" * 100])
    # The manifest names bytes the assembled file no longer has (a disk lost them).
    os.truncate(tmp_path / ".multipart" / upload / "assembled", 150)
    with pytest.raises(ValueError, match="damaged"):
        await storage.complete_multipart(KEY, upload, etags)
    assert not (tmp_path / KEY).exists()
