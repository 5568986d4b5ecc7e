"""A growing spool file uploaded to storage in multipart parts while the call runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from web.models import Recording
from web.storage import S3Storage, Storage, StorageUnavailable

log = logging.getLogger("talkturo.recordings")

MP3_TYPE = "audio/mpeg"
# S3's smallest part (except the last); parts are uploaded from the spool as the call grows.
PART_SIZE = 5 * 1024 * 1024
# A local directory has no minimum: smaller parts leave a smaller tail for the hang-up.
LOCAL_PART_SIZE = 256 * 1024


class PartUploader:
    """Uploads a growing spool file to storage as multipart parts, in the background.

    :meth:`poke` after each spool write starts the next part once ``PART_SIZE`` bytes are
    waiting; :meth:`finish` uploads the rest and completes. A failed part is retried at the
    next poke after a pause; the call never waits for storage.
    """

    def __init__(self, storage: Storage, rec: Recording, spool: Path) -> None:
        self.storage = storage
        self.rec_id = rec.id
        self.key = rec.storage_key
        self.spool = spool
        self.upload_id: str | None = None
        self.parts: list[tuple[int, str]] = []
        self.uploaded = 0
        self._task: asyncio.Task[None] | None = None
        self._pause_until = 0.0
        self.part_size = PART_SIZE if isinstance(storage, S3Storage) else LOCAL_PART_SIZE

    def poke(self, spool_size: int) -> None:
        """Start uploading the next part if one is complete and nothing is in flight."""
        if self._task is not None and not self._task.done():
            return
        loop = asyncio.get_running_loop()
        if spool_size - self.uploaded < self.part_size or loop.time() < self._pause_until:
            return
        self._task = loop.create_task(self._next_part())

    async def _next_part(self) -> None:
        try:
            await self._upload(self.uploaded + self.part_size)
        except StorageUnavailable as exc:
            log.warning("part upload of %s failed, retrying later: %s", self.key, exc)
            self._pause_until = asyncio.get_running_loop().time() + 10.0

    async def _upload(self, end: int) -> None:
        if self.upload_id is None:
            self.upload_id = await self.storage.start_multipart(self.key, MP3_TYPE)
            await Recording.filter(id=self.rec_id).update(multipart_upload_id=self.upload_id)
        data = await asyncio.to_thread(_read_span, self.spool, self.uploaded, end)
        etag = await self.storage.upload_part(self.key, self.upload_id, len(self.parts) + 1, data)
        self.parts.append((len(self.parts) + 1, etag))
        self.uploaded += len(data)

    async def settle(self) -> None:
        """Wait for the part in flight, if any (its failure is not an error here)."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task

    async def finish(self, size: int) -> None:
        """Upload what is left and complete (or one plain PUT for a short recording)."""
        await self.settle()
        if self.upload_id is None or not self.parts:
            await self.storage.put_file(self.key, self.spool, MP3_TYPE)
            return
        while self.uploaded < size:
            await self._upload(min(size, self.uploaded + self.part_size))
        await self.storage.complete_multipart(self.key, self.upload_id, self.parts)
        self.upload_id = None

    async def abandon(self) -> None:
        """Abort the multipart upload (best effort: the row keeps its id for a later abort)."""
        await self.settle()
        if self.upload_id is None:
            return
        try:
            await self.storage.abort_multipart(self.key, self.upload_id)
        except StorageUnavailable:
            return
        await Recording.filter(id=self.rec_id).update(multipart_upload_id=None)
        self.upload_id = None


def _read_span(path: Path, start: int, end: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(start)
        return fh.read(end - start)
