"""Objects as files under one directory: atomic writes, ranged reads, multipart uploads.

A multipart upload appends parts that arrive in order to one ``assembled`` file as they come,
so completing a live call's upload is a rename however long the call was. Parts that come
early wait in part files; completing with other parts than the ones assembled (a subset,
say) copies the spans instead. The latest upload of a part number wins, as on S3.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import mimetypes
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audio.files import atomic_file
from web.storage.base import (
    CHUNK_SIZE,
    ObjectInfo,
    ObjectNotFound,
    StorageUnavailable,
    check_key,
)

_MULTIPART_DIR = ".multipart"
_ASSEMBLED = "assembled"
_MANIFEST = "assembled.parts"
_TYPES = {".mp3": "audio/mpeg", ".json": "application/json", ".dat": "application/octet-stream"}


def _content_type(path: Path) -> str:
    # Files carry no metadata: the type follows from the key's extension.
    return (
        _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )


Segment = tuple[Path, int, int]  # a file, an offset in it, a byte count


def _copy_segment(out: Any, segment: Segment) -> None:
    """Append a span of a file in the kernel (sendfile), not through Python buffers."""
    source, offset, count = segment
    out.flush()
    with source.open("rb") as src:
        end = offset + count
        while offset < end:
            sent = os.sendfile(out.fileno(), src.fileno(), offset, end - offset)
            if sent == 0:
                raise ValueError(f"{source.name} is shorter than expected")
            offset += sent


def _write_atomic(target: Path, fill: bytes | list[Segment]) -> None:
    """Write via a temp file beside ``target`` and rename, so readers never see a partial file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target, durable=False) as out:
        if isinstance(fill, bytes):
            out.write(fill)
        else:
            for segment in fill:
                _copy_segment(out, segment)


def _whole(path: Path) -> Segment:
    return (path, 0, path.stat().st_size)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class _Upload:
    """One multipart upload's directory. Every method runs under the upload's file lock.

    Parts ``1..k`` that arrived in order live back to back in ``assembled``, listed in the
    manifest (``number etag size`` per line); any other part is a ``part-NNNNN`` file until the
    parts before it arrive. Writes go bytes first, then the manifest (atomically), then the
    removal of what they replace, so a crash at any point leaves every part's latest bytes.
    """

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.assembled = directory / _ASSEMBLED

    def part_file(self, number: int) -> Path:
        return self.dir / f"part-{number:05d}"

    @contextmanager
    def locked(self) -> Iterator[list[tuple[int, str, int]]]:
        with (self.dir / "key").open("rb") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            yield self._manifest()

    def _manifest(self) -> list[tuple[int, str, int]]:
        try:
            lines = (self.dir / _MANIFEST).read_text().splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in lines:
            number, etag, size = line.split()
            entries.append((int(number), etag, int(size)))
        return entries

    def _save(self, entries: list[tuple[int, str, int]]) -> None:
        temp = self.dir / f".{_MANIFEST}.tmp"
        temp.write_text("".join(f"{n} {etag} {size}\n" for n, etag, size in entries))
        temp.replace(self.dir / _MANIFEST)

    @staticmethod
    def _offsets(entries: list[tuple[int, str, int]]) -> list[int]:
        offsets, at = [], 0
        for _, _, size in entries:
            offsets.append(at)
            at += size
        return offsets

    def put(self, number: int, data: bytes, etag: str) -> None:
        """Store part ``number``; the latest upload of a number wins, as on S3."""
        with self.locked() as entries:
            numbers = [n for n, _, _ in entries]
            if number in numbers:
                # Uploaded again: the parts after it leave the assembled file for part files.
                cut = numbers.index(number)
                offsets = self._offsets(entries)
                with self.assembled.open("rb") as fh:
                    for (n, _, size), at in zip(
                        entries[cut + 1 :], offsets[cut + 1 :], strict=True
                    ):
                        fh.seek(at)
                        _write_atomic(self.part_file(n), fh.read(size))
                # The manifest stops before the part before its bytes are overwritten.
                entries = entries[:cut]
                self._save(entries)
            elif number != len(entries) + 1:
                _write_atomic(self.part_file(number), bytes(data))
                return
            self._append(entries, number, data, etag)
            # Parts that came early follow on now.
            while (early := self.part_file(len(entries) + 1)).exists():
                body = early.read_bytes()
                self._append(entries, len(entries) + 1, body, _md5(body))

    def _append(
        self, entries: list[tuple[int, str, int]], number: int, data: bytes, etag: str
    ) -> None:
        keep = sum(size for _, _, size in entries)
        fd = os.open(self.assembled, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            # Bytes past the manifest are what a crash left mid-append: drop them.
            os.ftruncate(fd, keep)
            os.lseek(fd, keep, os.SEEK_SET)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        entries.append((number, etag, len(data)))
        self._save(entries)
        self.part_file(number).unlink(missing_ok=True)

    def complete(self, target: Path, parts: list[tuple[int, str]]) -> None:
        """Move the assembled file into place if it is exactly ``parts``; else copy the spans."""
        with self.locked() as entries:
            offsets = self._offsets(entries)
            held = self.assembled.stat().st_size if entries else 0
            if held < sum(size for _, _, size in entries):
                raise ValueError("the upload's assembled parts are damaged; upload them again")
            if [(n, etag) for n, etag, _ in entries] == parts:
                target.parent.mkdir(parents=True, exist_ok=True)
                self.assembled.replace(target)
                return
            listed = {
                n: (etag, at, size) for (n, etag, size), at in zip(entries, offsets, strict=True)
            }
            segments: list[Segment] = []
            for number, etag in parts:
                if number in listed:
                    segments.append((self.assembled, listed[number][1], listed[number][2]))
                    stored = listed[number][0]
                elif self.part_file(number).exists():
                    segments.append(_whole(self.part_file(number)))
                    stored = _md5(self.part_file(number).read_bytes())
                else:
                    raise ValueError(f"part {number} was never uploaded")
                if etag.strip('"') != stored:
                    raise ValueError(f"part {number} does not match its etag")
            if not segments:
                raise ValueError("complete_multipart needs the parts that were uploaded")
            _write_atomic(target, segments)


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
        await asyncio.to_thread(lambda: _write_atomic(self._path(key), [_whole(Path(path))]))

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

    async def delete_every_version(self, key: str) -> None:
        """A directory keeps no versions: the same as :meth:`delete`."""
        await self.delete(key)

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

    def _checked(self, key: str, upload_id: str) -> _Upload:
        """The upload ``upload_id`` of ``key`` (blocking: call it off the event loop)."""
        directory = self._upload_dir(upload_id)
        try:
            stored = (directory / "key").read_text()
        except FileNotFoundError:
            raise ObjectNotFound(f"no multipart upload {upload_id!r}") from None
        if stored != key:
            raise ObjectNotFound(f"upload {upload_id!r} is not for {key!r}")
        return _Upload(directory)

    async def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        """Store one part; its etag is the MD5 of its bytes, as on S3."""
        if not 1 <= part_number <= 10000:
            raise ValueError("part numbers run from 1 to 10000")

        def put() -> str:
            upload = self._checked(key, upload_id)
            etag = _md5(data)
            upload.put(part_number, bytes(data), etag)
            return etag

        return await asyncio.to_thread(put)

    async def complete_multipart(
        self, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        """Make the named parts the object (a rename when they came in order), drop the upload."""

        def complete() -> None:
            upload = self._checked(key, upload_id)
            upload.complete(self._path(key), sorted(parts))
            shutil.rmtree(upload.dir, ignore_errors=True)

        await asyncio.to_thread(complete)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Remove the upload and its parts."""

        def abort() -> None:
            try:
                upload = self._checked(key, upload_id)
            except ObjectNotFound:
                return
            shutil.rmtree(upload.dir, ignore_errors=True)

        await asyncio.to_thread(abort)

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
