"""The storage interface every backend implements: objects by key, ranges, multipart."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

# Chunk size of streamed reads: never a whole object in memory, but few sends per MB.
CHUNK_SIZE = 256 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD tells about a stored object."""

    size: int
    etag: str
    last_modified: datetime
    content_type: str


class ObjectNotFound(Exception):
    """No object (or no multipart upload) under that key."""


class StorageUnavailable(Exception):
    """The storage could not be reached or failed; the caller retries later."""


class Storage(Protocol):
    """A place for objects: a local directory or an S3 bucket (with a key prefix).

    Keys are relative (``org/yyyy/mm/call.mp3``); the storage prepends its own prefix.
    """

    bucket: str

    async def probe(self) -> None:
        """Raise StorageUnavailable unless this storage is reachable and usable."""
        ...

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file at ``path`` under ``key`` (streamed, never whole in memory)."""
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key``."""
        ...

    async def head(self, key: str) -> ObjectInfo:
        """Size, etag, time and type of the object; :class:`ObjectNotFound` if missing."""
        ...

    def open_range(
        self, key: str, start: int, end: int | None
    ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Bytes ``[start, end]`` inclusive (``end`` None: to the end), in CHUNK_SIZE chunks.

        The context manager always closes the underlying body, even when the consumer stops
        early. :class:`ObjectNotFound` if missing; ``start`` must be below the object's size.
        """
        ...

    async def delete(self, key: str) -> None:
        """Delete the object; deleting what is not there is not an error."""
        ...

    async def delete_every_version(self, key: str) -> None:
        """Delete the object and, where the store keeps them, all its older versions."""
        ...

    async def start_multipart(self, key: str, content_type: str) -> str:
        """Begin a multipart upload to ``key``; returns its upload id."""
        ...

    async def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        """Upload part ``part_number`` (1-based); returns its etag."""
        ...

    async def complete_multipart(
        self, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        """Assemble the parts (number, etag) in order into the object at ``key``."""
        ...

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Discard an unfinished multipart upload; aborting a gone one is not an error."""
        ...

    async def list_multipart_uploads(self) -> list[tuple[str, str]]:
        """Every unfinished multipart upload under this storage's prefix: (key, upload id)."""
        ...


def recording_key(
    org_id: uuid.UUID | str, started_at: datetime, call_id: uuid.UUID | str, ext: str
) -> str:
    """A call's object key: ``{org_id}/{yyyy}/{mm}/{call_id}.{ext}`` (ext "mp3", "peaks.json")."""
    return f"{org_id}/{started_at:%Y}/{started_at:%m}/{call_id}.{ext.lstrip('.')}"


def check_key(key: str) -> str:
    """Refuse keys that could escape the storage's root or prefix."""
    parts = key.split("/")
    # A leading dot is refused too: hidden names are the local storage's temp files.
    if not key or "\\" in key or any(not p or p.startswith(".") for p in parts):
        raise ValueError(f"invalid storage key {key!r}")
    return key
