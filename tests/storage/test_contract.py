"""The storage contract, run against the local directory and against S3 (moto_server)."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from web.storage import CHUNK_SIZE, ObjectNotFound, Storage, recording_key

KEY = "org/2024/05/call.mp3"


async def _read(storage: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    out = bytearray()
    async with storage.open_range(key, start, end) as chunks:
        async for chunk in chunks:
            assert len(chunk) <= CHUNK_SIZE
            out += chunk
    return bytes(out)


def test_recording_key_layout() -> None:
    started = datetime(2024, 3, 9, 23, 59, tzinfo=UTC)
    assert recording_key("o1", started, "c1", "mp3") == "o1/2024/03/c1.mp3"
    assert recording_key("o1", started, "c1", "peaks.json") == "o1/2024/03/c1.peaks.json"


async def test_put_bytes_head_and_read_back(storage: Storage) -> None:
    data = os.urandom(200_000)
    await storage.put_bytes(KEY, data, "audio/mpeg")
    info = await storage.head(KEY)
    assert info.size == len(data)
    assert info.content_type == "audio/mpeg"
    assert info.etag
    assert info.last_modified.tzinfo is not None
    assert await _read(storage, KEY) == data


async def test_put_file_streams_the_file(storage: Storage, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "in.mp3"
    path.write_bytes(data)
    await storage.put_file(KEY, path, "audio/mpeg")
    assert (await storage.head(KEY)).size == len(data)
    got = await _read(storage, KEY)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


async def test_ranges_are_inclusive(storage: Storage) -> None:
    data = bytes(range(256)) * 1000
    await storage.put_bytes(KEY, data, "audio/mpeg")
    assert await _read(storage, KEY, 0, 0) == data[:1]
    assert await _read(storage, KEY, 10, 19) == data[10:20]
    assert await _read(storage, KEY, 1000, None) == data[1000:]
    assert await _read(storage, KEY, len(data) - 1, None) == data[-1:]
    # An end past the object stops at the object's end.
    assert await _read(storage, KEY, 5, len(data) + 100) == data[5:]


async def test_early_stop_closes_the_body(storage: Storage) -> None:
    data = os.urandom(1024 * 1024)
    await storage.put_bytes(KEY, data, "audio/mpeg")
    for _ in range(20):
        async with storage.open_range(KEY, 0, None) as chunks:
            async for first in chunks:
                assert first == data[: len(first)]
                break
    # Still fully readable afterwards: nothing leaked or left locked.
    assert await _read(storage, KEY) == data


async def test_missing_objects(storage: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        await storage.head("nope/2024/01/x.mp3")
    with pytest.raises(ObjectNotFound):
        async with storage.open_range("nope/2024/01/x.mp3", 0, None):
            pass
    await storage.delete("nope/2024/01/x.mp3")


async def test_delete_is_idempotent(storage: Storage) -> None:
    await storage.put_bytes(KEY, b"abc", "audio/mpeg")
    await storage.delete(KEY)
    await storage.delete(KEY)
    with pytest.raises(ObjectNotFound):
        await storage.head(KEY)


async def test_overwrite_replaces(storage: Storage) -> None:
    await storage.put_bytes(KEY, b"old old old", "audio/mpeg")
    await storage.put_bytes(KEY, b"new", "audio/mpeg")
    assert await _read(storage, KEY) == b"new"


async def test_json_content_type(storage: Storage) -> None:
    key = "org/2024/05/call.peaks.json"
    await storage.put_bytes(key, b'{"version": 2}', "application/json")
    assert (await storage.head(key)).content_type == "application/json"


async def test_multipart_roundtrip(storage: Storage) -> None:
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(5 * 1024 * 1024), os.urandom(1234)]
    upload = await storage.start_multipart(KEY, "audio/mpeg")
    assert (KEY, upload) in await storage.list_multipart_uploads()
    etags = []
    # Out of order on purpose: the part numbers decide the order.
    for number in (2, 1, 3):
        etags.append((number, await storage.upload_part(KEY, upload, number, parts[number - 1])))
    with pytest.raises(ObjectNotFound):
        await storage.head(KEY)
    await storage.complete_multipart(KEY, upload, etags)
    assert await _read(storage, KEY) == b"".join(parts)
    assert (KEY, upload) not in await storage.list_multipart_uploads()


async def test_multipart_in_order_with_a_part_uploaded_again(storage: Storage) -> None:
    # The way a live call uploads: parts in order, and a retried part replaces the first try.
    first, second, retried, last = (os.urandom(5 * 1024 * 1024) for _ in range(4))
    upload = await storage.start_multipart(KEY, "audio/mpeg")
    e1 = await storage.upload_part(KEY, upload, 1, first)
    await storage.upload_part(KEY, upload, 2, second)
    e2 = await storage.upload_part(KEY, upload, 2, retried)
    e3 = await storage.upload_part(KEY, upload, 3, last[:777])
    await storage.complete_multipart(KEY, upload, [(1, e1), (2, e2), (3, e3)])
    assert await _read(storage, KEY) == first + retried + last[:777]


async def test_multipart_completes_with_the_named_parts_only(storage: Storage) -> None:
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(5 * 1024 * 1024), os.urandom(99)]
    upload = await storage.start_multipart(KEY, "audio/mpeg")
    etags = [(n, await storage.upload_part(KEY, upload, n, parts[n - 1])) for n in (1, 2, 3)]
    await storage.complete_multipart(KEY, upload, [etags[0], etags[2]])
    assert await _read(storage, KEY) == parts[0] + parts[2]


async def test_multipart_abort_leaves_nothing(storage: Storage) -> None:
    upload = await storage.start_multipart(KEY, "audio/mpeg")
    await storage.upload_part(KEY, upload, 1, b"x" * 1000)
    await storage.abort_multipart(KEY, upload)
    await storage.abort_multipart(KEY, upload)
    assert (KEY, upload) not in await storage.list_multipart_uploads()
    with pytest.raises(ObjectNotFound):
        await storage.head(KEY)


@pytest.mark.parametrize("bad", ["", "/abs/x.mp3", "a/../b.mp3", "a//b", ".hidden/x", "a/./b"])
async def test_bad_keys_refused(storage: Storage, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.put_bytes(bad, b"x", "audio/mpeg")


async def test_unreachable_s3_is_unavailable(tmp_path: Path) -> None:
    from tests.conftest import free_port, make_env
    from web.settings import load_settings
    from web.storage import Storages, StorageUnavailable

    env = make_env(
        tmp_path / "data",
        "sqlite://:memory:",
        TALKTURO_STORAGE_URL="s3://nobucket",
        TALKTURO_S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
    )
    async with Storages(load_settings(env)) as storages:
        with pytest.raises(StorageUnavailable):
            await storages.platform().put_bytes(KEY, b"x", "audio/mpeg")
        with pytest.raises(StorageUnavailable):
            await storages.platform().head(KEY)
