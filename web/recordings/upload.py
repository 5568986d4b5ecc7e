"""Whole-file upload of a call's recording: the body streamed to disk, decoded, published.

The body goes to disk in blocks as it arrives (never whole in memory); a multipart body is
split into its ``caller`` and ``assistant`` files on the way. Decoding runs in a child
process of a bounded pool of its own (see :mod:`web.recordings.decoding`).
"""

from __future__ import annotations

import asyncio
import errno
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from multipart import (  # type: ignore[import-untyped]
    MultipartError,
    PushMultipartParser,
    parse_options_header,
)
from tortoise.exceptions import IntegrityError

from audio import AudioError, RecordingResult
from web.errors import Conflict, InsufficientStorage, PayloadTooLarge, Unprocessable
from web.models import Recording, RecordingStatus
from web.recordings import lifecycle
from web.recordings.decoding import decode_upload
from web.recordings.node import identity
from web.recordings.presentation import busy_reason
from web.recordings.publish import begin, finished, publish
from web.recordings.spool import spool_paths
from web.settings import Settings
from web.storage import Storages
from web.tenancy import get_call, recording_of

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
_WRITE_BLOCK = 1 << 20


async def _save_stream(chunks: AsyncIterator[bytes], sink: _Sink) -> int:
    total = 0
    try:
        async for chunk in chunks:
            total += len(chunk)
            if total > MAX_UPLOAD_BYTES:
                raise PayloadTooLarge(
                    f"The upload is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB."
                )
            await sink.feed(chunk)
        await sink.close()
    finally:
        sink.discard()
    return total


class _Sink:
    """Writes a stream to files in blocks, off the event loop; memory stays ~1 MiB."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("wb")
        self._buffer = bytearray()
        self.size = 0

    async def feed(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        if len(self._buffer) >= _WRITE_BLOCK:
            block, self._buffer = bytes(self._buffer), bytearray()
            await asyncio.to_thread(self._handle.write, block)

    def discard(self) -> None:
        """Close the file whatever happened (the caller removes the directory)."""
        self._handle.close()

    async def close(self) -> None:
        if self._buffer:
            await asyncio.to_thread(self._handle.write, bytes(self._buffer))
            self._buffer = bytearray()
        self._handle.close()


class _MultipartSink(_Sink):
    """Splits multipart/form-data as it streams: fields ``caller`` and ``assistant`` to files."""

    FIELDS = ("caller", "assistant")

    def __init__(self, work: Path, boundary: str) -> None:
        self.work = work
        self.parser = PushMultipartParser(boundary, max_segment_count=4)
        self.files: dict[str, _Sink] = {}
        self._current: _Sink | None = None

    async def feed(self, data: bytes) -> None:
        try:
            for event in self.parser.parse(data):
                await self._event(event)
        except MultipartError as exc:
            raise Unprocessable(f"The multipart body is malformed: {exc}") from None

    async def _event(self, event: Any) -> None:
        if event is None:
            if self._current is not None:
                await self._current.close()
            self._current = None
        elif isinstance(event, bytes | bytearray):
            if self._current is not None:
                await self._current.feed(bytes(event))
        else:
            name = event.name
            if name not in self.FIELDS:
                raise Unprocessable(
                    f"Unexpected multipart field {str(name)[:40]!r}: send caller and assistant."
                )
            if name in self.files:
                raise Unprocessable(f"The multipart field {name!r} appears twice.")
            self._current = _Sink(self.work / f"{name}.in")
            self.files[name] = self._current

    def discard(self) -> None:
        for sink in self.files.values():
            sink.discard()

    async def close(self) -> None:
        try:
            for event in self.parser.parse(b""):
                await self._event(event)
            self.parser.close()
        except MultipartError as exc:
            raise Unprocessable(f"The multipart body is malformed: {exc}") from None
        finally:
            self.discard()
        missing = [f for f in self.FIELDS if f not in self.files]
        if missing:
            raise Unprocessable(
                "A multipart upload needs the fields caller and assistant (mono files each); "
                f"missing: {', '.join(missing)}."
            )


async def upload_recording(
    settings: Settings,
    storages: Storages,
    org_id: uuid.UUID,
    call_id: str,
    content_type: str,
    body: AsyncIterator[bytes],
) -> Recording:
    """Store a whole recording: one stereo file, or multipart ``caller`` + ``assistant``.

    The body goes to disk as it arrives (never whole in memory) and is decoded in a child
    process. Refused with 409 when the call records nothing or already has a recording or a
    live stream; 413 over :data:`MAX_UPLOAD_BYTES`; 422 for audio that cannot be used.
    Nothing is left behind on failure.
    """
    call = await get_call(org_id, call_id)
    if not call.recording_enabled:
        raise Conflict("Recording was disabled for this call when it started.")
    existing = await recording_of(call)
    if existing is not None and existing.status == RecordingStatus.FAILED:
        await existing.delete()
    elif existing is not None:
        raise Conflict(busy_reason(existing))
    mp3, _ = spool_paths(settings, call.id)
    try:
        begun = await begin(settings, storages, call, RecordingStatus.PROCESSING, mp3)
    except IntegrityError:
        raise Conflict("The call already has a recording.") from None
    work = settings.spool_dir / "uploads" / uuid.uuid4().hex
    # The claim is renewed while the body arrives, decodes and uploads: the worker never
    # takes a recording whose upload is still in progress, and a second upload gets 409.
    async with lifecycle.held(begun.row.id, identity(settings).worker):
        try:
            work.mkdir(parents=True)
            result = await _receive_and_decode(
                settings, work, mp3, content_type, body, call.redact_dtmf
            )
            done = await asyncio.to_thread(finished, mp3, result, result.redactions)
        except OSError as exc:
            await asyncio.shield(lifecycle.drop_row(begun.row))
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise InsufficientStorage(
                    "The server's disk is full: the upload was not stored. Try again later."
                ) from None
            raise
        except BaseException:
            await asyncio.shield(lifecycle.drop_row(begun.row))
            raise
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        await publish(settings, storages, begun.row, done, storage=begun.storage, call=call)
    return await Recording.get(id=begun.row.id)


async def _receive_and_decode(
    settings: Settings,
    work: Path,
    mp3: Path,
    content_type: str,
    body: AsyncIterator[bytes],
    redact_dtmf: bool,
) -> RecordingResult:
    kind, options = parse_options_header(content_type or "")
    sink: _Sink
    if kind == "multipart/form-data":
        boundary = options.get("boundary")
        if not boundary:
            raise Unprocessable("multipart/form-data needs a boundary.")
        sink = _MultipartSink(work, boundary)
    else:
        sink = _Sink(work / "stereo.in")
    size = await _save_stream(body, sink)
    if size == 0:
        raise Unprocessable("The request body is empty: send an audio file.")
    try:
        if isinstance(sink, _MultipartSink):
            return await decode_upload(
                settings,
                caller=sink.files["caller"].path,
                assistant=sink.files["assistant"].path,
                dest=mp3,
                redact_dtmf=redact_dtmf,
            )
        return await decode_upload(settings, stereo=sink.path, dest=mp3, redact_dtmf=redact_dtmf)
    except AudioError as exc:
        raise Unprocessable(f"The audio could not be used: {exc}.") from None
