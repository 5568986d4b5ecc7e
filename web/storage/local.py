"""Objects as files under one directory: atomic writes, ranged reads, multipart via part files."""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from web.storage.base import (
    CHUNK_SIZE,
    ObjectInfo,
    ObjectNotFound,
    StorageUnavailable,
    check_key,
)

_MULTIPART_DIR = ".multipart"
_TYPES = {".mp3": "audio/mpeg", ".json": "application/json", ".dat": "application/octet-stream"}


def _content_type(path: Path) -> str:
    # Files carry no metadata: the type follows from the key's extension.
    return (
        _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )


def _append_file(out: Any, source: Path) -> None:
    """Append a file's bytes in the kernel (sendfile), not through Python buffers."""
    out.flush()
    with source.open("rb") as src:
        size = os.fstat(src.fileno()).st_size
        offset = 0
        while offset < size:
            sent = os.sendfile(out.fileno(), src.fileno(), offset, size - offset)
            if sent == 0:
                break
            offset += sent


def _write_atomic(target: Path, fill: object) -> None:
    """Write via a temp file beside ``target`` and rename, so readers never see a partial file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(fill, bytes):
                out.write(fill)
            else:
                for part in [fill] if isinstance(fill, Path) else fill:  # type: ignore[attr-defined]
                    _append_file(out, Path(part))
        Path(temp).replace(target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class LocalStorage:
    """A :class:`~web.storage.base.Storage` on a local directory (``file://`` storage URL)."""

    bucket = ""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._uploads = root / _MULTIPART_DIR

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def probe(self) -> None:
        """Raise StorageUnavailable unless the directory exists and is writable."""
        if not self.root.is_dir() or not os.access(self.root, os.W_OK):
            raise StorageUnavailable(f"directory {self.root} is missing or not writable")

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Copy the file in atomically."""
        await asyncio.to_thread(_write_atomic, self._path(key), Path(path))

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Write the bytes atomically."""
        await asyncio.to_thread(_write_atomic, self._path(key), bytes(data))

    async def head(self, key: str) -> ObjectInfo:
        """Size, a change tag, mtime and the type implied by the extension."""
        path = self._path(key)
        try:
            st = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        return ObjectInfo(
            size=st.st_size,
            etag=f"{st.st_size:x}-{st.st_mtime_ns:x}",
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
            content_type=_content_type(path),
        )

    @asynccontextmanager
    async def open_range(
        self, key: str, start: int, end: int | None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """The bytes ``[start, end]`` of the file, read CHUNK_SIZE at a time off the event loop."""
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        try:
            size = os.fstat(handle.fileno()).st_size
            if start < 0 or (start >= size and size > 0):
                raise ValueError(f"range start {start} is beyond the object's {size} bytes")
            stop = size if end is None else min(end + 1, size)

            async def chunks() -> AsyncIterator[bytes]:
                position = start
                await asyncio.to_thread(handle.seek, start)
                while position < stop:
                    data = await asyncio.to_thread(handle.read, min(CHUNK_SIZE, stop - position))
                    if not data:
                        return
                    position += len(data)
                    yield data

            yield chunks()
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        """Remove the file if it is there."""
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    def _upload_dir(self, upload_id: str) -> Path:
        if not upload_id or "/" in upload_id or upload_id.startswith("."):
            raise ObjectNotFound(f"no multipart upload {upload_id!r}")
        return self._uploads / upload_id

    async def start_multipart(self, key: str, content_type: str) -> str:
        """A hidden directory holds the parts until completion."""
        check_key(key)
        upload_id = uuid.uuid4().hex

        def create() -> None:
            directory = self._uploads / upload_id
            directory.mkdir(parents=True)
            (directory / "key").write_text(key)

        await asyncio.to_thread(create)
        return upload_id

    async def _checked_dir(self, key: str, upload_id: str) -> Path:
        directory = self._upload_dir(upload_id)
        try:
            stored = await asyncio.to_thread((directory / "key").read_text)
        except FileNotFoundError:
            raise ObjectNotFound(f"no multipart upload {upload_id!r}") from None
        if stored != key:
            raise ObjectNotFound(f"upload {upload_id!r} is not for {key!r}")
        return directory

    async def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        """Write one part file; its etag is the MD5 of its bytes, as on S3."""
        if not 1 <= part_number <= 10000:
            raise ValueError("part numbers run from 1 to 10000")
        directory = await self._checked_dir(key, upload_id)
        await asyncio.to_thread(_write_atomic, directory / f"part-{part_number:05d}", bytes(data))
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    async def complete_multipart(
        self, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        """Concatenate the named parts into the object, then drop the upload."""
        directory = await self._checked_dir(key, upload_id)
        paths = [directory / f"part-{number:05d}" for number, _ in sorted(parts)]
        if not paths or not all(p.exists() for p in paths):
            raise ValueError("complete_multipart needs the parts that were uploaded")
        await asyncio.to_thread(_write_atomic, self._path(key), paths)
        await asyncio.to_thread(shutil.rmtree, directory, True)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Remove the upload's part files."""
        try:
            directory = await self._checked_dir(key, upload_id)
        except ObjectNotFound:
            return
        await asyncio.to_thread(shutil.rmtree, directory, True)

    async def list_multipart_uploads(self) -> list[tuple[str, str]]:
        """Every upload directory with its key."""

        def scan() -> list[tuple[str, str]]:
            found = []
            if not self._uploads.is_dir():
                return []
            for directory in sorted(self._uploads.iterdir()):
                try:
                    found.append(((directory / "key").read_text(), directory.name))
                except (FileNotFoundError, NotADirectoryError):
                    continue
            return found

        return await asyncio.to_thread(scan)
