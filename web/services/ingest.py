"""Ingest of a call's data: live Twilio media streams, whole-file uploads, transcript, analysis.

A live stream is a :class:`MediaSession`: the controller hands it each WebSocket message;
it speaks Twilio Media Streams, feeds the recorder (push on the loop, encode in a thread),
appends the MP3 to a spool file as it is produced and uploads it to storage in parts while
the call runs, so at ``stop`` only the tail remains. A message it cannot accept raises
:class:`StreamRefused` with the close code and reason; whatever audio came before is kept.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from multipart import (  # type: ignore[import-untyped]
    MultipartError,
    PushMultipartParser,
    parse_options_header,
)
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from audio import AudioError, LegFormat, Recorder, RecordingResult, decode_untrusted_to_mp3
from web.auth import Principal, key_principal
from web.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, Unprocessable
from web.models import Analysis, Call, Message, MessageRole, Recording, RecordingStatus
from web.observability import ENCODER_LAG, LIVE_CALLS, MEDIA_FRAMES
from web.services import recordings as recs
from web.settings import Settings
from web.storage import Storages
from web.tenancy import get_call

log = logging.getLogger("talkturo.ingest")

POLICY = 1008
UNSUPPORTED = 1003
# Twilio's track names, and the leg each one is.
TRACKS = {"inbound": "caller", "outbound": "assistant"}
# A timestamp beyond this is refused: no call is longer than the audio engine accepts.
MAX_CALL_MS = 4 * 3600 * 1000
# A chunk this far past the call's end is pushed in a thread: filling the gap encodes silence.
_JUMP_MS = 2000
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
_WRITE_BLOCK = 1 << 20

# Per-track frame counters, looked up once (a frame must cost next to nothing).
_FRAMES = {track: MEDIA_FRAMES.labels(track) for track in TRACKS}

# Sessions whose socket went away without ``stop``: kept alive until their timeout fires.
_DETACHED: set[MediaSession] = set()


class StreamRefused(Exception):
    """Close the socket with ``code`` and ``reason`` (audio before it is kept)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason[:120]


def _leg_format(spec: Any, what: str) -> LegFormat:
    if spec is None:
        return LegFormat()
    if not isinstance(spec, dict):
        raise StreamRefused(UNSUPPORTED, f"{what} must be an object")
    channels = spec.get("channels", 1)
    if channels != 1:
        raise StreamRefused(UNSUPPORTED, f"{what}: only mono tracks are supported")
    try:
        return LegFormat(
            encoding=spec.get("encoding", "audio/x-mulaw"),
            sample_rate=spec.get("sampleRate", 8000),
        )
    except AudioError as exc:
        raise StreamRefused(UNSUPPORTED, f"{what}: {exc}") from None


def _timestamp(value: Any) -> int:
    if isinstance(value, bool):
        raise StreamRefused(UNSUPPORTED, "media.timestamp must be milliseconds")
    try:
        ms = int(value) if isinstance(value, int | str) else -1
    except ValueError:
        ms = -1
    if not 0 <= ms <= MAX_CALL_MS:
        raise StreamRefused(UNSUPPORTED, "media.timestamp must be milliseconds since the start")
    return ms


class MediaSession:
    """One live media stream of one call, from ``start`` to the published recording."""

    def __init__(
        self, settings: Settings, storages: Storages, call_id: str, authorization: str | None
    ) -> None:
        self.settings = settings
        self.storages = storages
        self.call_id = call_id
        self.authorization = authorization
        self.me = recs.identity(settings)
        self.row: Recording | None = None
        self.recorder: Recorder | None = None
        self.uploader: recs.PartUploader | None = None
        self.spool: Path | None = None
        self._fd = -1
        self.spool_size = 0
        self.media_count = 0
        self.finished = False
        self._final_lock = asyncio.Lock()
        self._last_mono = time.monotonic()
        self._last_wall = datetime.now(UTC)
        self._noted_wall: datetime | None = None
        self._detached = False
        self._keeper: asyncio.Task[None] | None = None
        self.published: bool | None = None
        self._counted = False
        self._flushed = False

    @property
    def started(self) -> bool:
        return self.recorder is not None

    async def handle(self, raw: str | bytes | None) -> bool:
        """Take one message; True once the stream is over (``stop``)."""
        if raw is None or isinstance(raw, bytes):
            raise StreamRefused(UNSUPPORTED, "binary frames are not accepted: send JSON text")
        try:
            msg = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise StreamRefused(UNSUPPORTED, "malformed JSON") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("event"), str):
            raise StreamRefused(UNSUPPORTED, "a message must be a JSON object with an event")
        event = msg["event"]
        self._last_mono = time.monotonic()
        if event == "media":
            await self._media(msg.get("media"))
            return False
        if event == "start":
            await self._start(msg.get("start"))
            return False
        if event in ("connected", "dtmf", "mark"):
            return False
        if event == "stop":
            await self.finalize()
            return True
        raise StreamRefused(UNSUPPORTED, f"unknown event {event[:40]!r}")

    async def _principal(self, params: dict[str, Any]) -> Principal:
        principal = await key_principal(self.authorization)
        token = params.get("token")
        if principal is None and isinstance(token, str) and token:
            principal = await key_principal(f"Bearer {token}")
        if principal is None:
            raise StreamRefused(POLICY, "a valid API key is required")
        return principal

    async def _start(self, start: Any) -> None:
        if self.started:
            raise StreamRefused(POLICY, "the stream has already started")
        if not isinstance(start, dict):
            raise StreamRefused(UNSUPPORTED, "start must be an object")
        params = start.get("customParameters") or {}
        if not isinstance(params, dict):
            raise StreamRefused(UNSUPPORTED, "start.customParameters must be an object")
        principal = await self._principal(params)
        default = _leg_format(start.get("mediaFormat"), "start.mediaFormat")
        per_track = start.get("mediaFormats") or {}
        if not isinstance(per_track, dict) or set(per_track) - set(TRACKS):
            raise StreamRefused(UNSUPPORTED, "start.mediaFormats names inbound and outbound only")
        caller = (
            _leg_format(per_track.get("inbound"), "mediaFormats.inbound")
            if ("inbound" in per_track)
            else default
        )
        assistant = (
            _leg_format(per_track.get("outbound"), "mediaFormats.outbound")
            if ("outbound" in per_track)
            else default
        )
        try:
            call = await get_call(principal.org_id, self.call_id)
        except NotFound:
            raise StreamRefused(POLICY, "no such call") from None
        if not call.recording_enabled:
            raise StreamRefused(POLICY, "recording is disabled for this call")
        spool, _ = recs.spool_paths(self.settings, call.id)
        try:
            self.row = await recs.new_row(
                self.settings, self.storages, call, RecordingStatus.RECORDING, spool
            )
        except IntegrityError:
            raise StreamRefused(
                POLICY, "this call already has a recording or a live stream"
            ) from None
        self.spool = spool
        self._fd = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        self.recorder = Recorder(caller, assistant)
        LIVE_CALLS.inc()
        self._counted = True
        storage = await self.storages.for_recording(self.row)
        self.uploader = recs.PartUploader(storage, self.row, spool)
        self._keeper = asyncio.get_running_loop().create_task(self._keep())

    async def _media(self, media: Any) -> None:
        recorder = self.recorder
        if recorder is None:
            raise StreamRefused(POLICY, "media before start")
        if not isinstance(media, dict):
            raise StreamRefused(UNSUPPORTED, "media must be an object")
        track = media.get("track", "inbound")
        leg = TRACKS.get(track)
        if leg is None:
            raise StreamRefused(UNSUPPORTED, "unknown track: use inbound or outbound")
        ts = _timestamp(media.get("timestamp"))
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise StreamRefused(UNSUPPORTED, "media.payload must be base64 text")
        try:
            data = binascii.a2b_base64(payload, strict_mode=True)
        except (binascii.Error, ValueError):
            raise StreamRefused(UNSUPPORTED, "media.payload is not valid base64") from None
        try:
            if ts > recorder.duration_ms + _JUMP_MS:
                await asyncio.to_thread(recorder.push, leg, ts, data)  # type: ignore[arg-type]
            else:
                recorder.push(leg, ts, data)  # type: ignore[arg-type]
        except AudioError as exc:
            raise StreamRefused(UNSUPPORTED, f"bad media: {exc}") from None
        self.media_count += 1
        _FRAMES[track].inc()
        if recorder.encode_due:
            await asyncio.to_thread(self._encode)
            if self.uploader is not None:
                self.uploader.poke(self.spool_size)

    def _write(self, data: bytes) -> None:
        # Unbuffered writes: what the recorder produced is in the OS even if we are killed.
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.spool_size += len(data)

    def _encode(self) -> None:
        assert self.recorder is not None
        data = self.recorder.encode()
        if data:
            self._write(data)
        stats = self.recorder.stats
        ENCODER_LAG.observe(max(0, stats["frontier_ms"] - stats["committed_ms"]) / 1000)

    def _finish(self) -> tuple[RecordingResult, bytes]:
        assert self.recorder is not None
        result = self.recorder.finish()
        if result.mp3_tail:
            self._write(result.mp3_tail)
        os.close(self._fd)
        self._fd = -1
        self._flushed = True
        return result, result.peaks.overview_json()

    async def _keep(self) -> None:
        """Renew the claim while the stream lives; finalize once a dropped socket times out."""
        assert self.row is not None
        timeout = self.settings.recording.stream_timeout_s
        while not self.finished:
            wait = recs.HEARTBEAT_S
            if self._detached:
                wait = min(wait, self._last_mono + timeout - time.monotonic())
            await asyncio.sleep(max(0.05, wait))
            if self.finished:
                return
            if self._detached and time.monotonic() >= self._last_mono + timeout:
                log.info("stream of call %s timed out; finalizing", self.call_id)
                await self.finalize(from_keeper=True)
                return
            wall = self._wall_of_last()
            try:
                await recs.renew(self.row.id, self.me.worker, wall)
                self._noted_wall = wall
            except Exception:
                log.exception("could not renew the claim of call %s", self.call_id)

    def _wall_of_last(self) -> datetime | None:
        wall = datetime.fromtimestamp(time.time() - (time.monotonic() - self._last_mono), UTC)
        return None if self._noted_wall is not None and wall <= self._noted_wall else wall

    def detach(self) -> None:
        """The socket went away without ``stop``: finalize after the stream timeout."""
        if not self.started or self.finished:
            self._release()
            return
        self._detached = True
        _DETACHED.add(self)

    async def abort(self) -> None:
        """A refused message: keep and finalize what came before (or leave nothing)."""
        if self.started:
            await self.finalize()

    async def finalize(self, *, from_keeper: bool = False) -> None:
        """Encode the rest, publish the recording; a stream without audio leaves nothing."""
        async with self._final_lock:
            if self.finished or self.row is None or self.recorder is None:
                return
            self.finished = True
            if self._keeper is not None and not from_keeper:
                self._keeper.cancel()
            try:
                await self._publish()
            finally:
                self._release()

    async def hand_off(self) -> None:
        """The process is shutting down: finalize now with every frame received.

        If that is cut short (or fails) once the spool is complete, the claim is released
        so a worker finalizes the recording from the spool; nothing is raised.
        """
        try:
            await self.finalize()
        except BaseException as exc:
            if self._flushed and self.row is not None:
                await asyncio.shield(recs.release(self.row.id, self.me.worker))
            if isinstance(exc, Exception):
                log.exception("could not finalize call %s at shutdown", self.call_id)
                return
            raise

    async def _publish(self) -> None:
        assert self.row is not None
        assert self.spool is not None
        if self.media_count == 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
            if self.uploader is not None:
                await self.uploader.abandon()
            await recs.drop_row(self.row)
            return
        await Recording.filter(id=self.row.id).update(status=RecordingStatus.PROCESSING)
        result, peaks = await asyncio.to_thread(self._finish)
        done = recs.Finished(
            mp3=self.spool,
            peaks_json=peaks,
            duration_ms=result.duration_ms,
            size_bytes=result.size_bytes,
            sha256=result.sha256,
        )
        self.published = await recs.publish(
            self.settings, self.storages, self.row, done, self.uploader
        )

    def _release(self) -> None:
        _DETACHED.discard(self)
        if self._counted and (self.finished or not self.started):
            self._counted = False
            LIVE_CALLS.dec()
        if self._fd >= 0 and self.finished:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


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
    existing = await Recording.get_or_none(call_id=call.id)
    if existing is not None and existing.status == RecordingStatus.FAILED:
        await existing.delete()
    elif existing is not None:
        raise Conflict(_busy_reason(existing))
    mp3, _ = recs.spool_paths(settings, call.id)
    try:
        row = await recs.new_row(settings, storages, call, RecordingStatus.PROCESSING, mp3)
    except IntegrityError:
        raise Conflict("The call already has a recording.") from None
    work = settings.spool_dir / "uploads" / uuid.uuid4().hex
    try:
        work.mkdir(parents=True)
        result = await _receive_and_decode(work, mp3, content_type, body)
        peaks = await asyncio.to_thread(result.peaks.overview_json)
    except BaseException:
        await asyncio.shield(recs.drop_row(row))
        raise
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    done = recs.Finished(mp3, peaks, result.duration_ms, result.size_bytes, result.sha256)
    await recs.publish(settings, storages, row, done)
    return await Recording.get(id=row.id)


def _busy_reason(rec: Recording) -> str:
    if rec.status == RecordingStatus.RECORDING:
        return "The call is streaming its audio live right now."
    if rec.status in (RecordingStatus.DELETED, RecordingStatus.PURGED):
        return f"The call's recording was {rec.status}; it cannot be replaced."
    return "The call already has a recording."


async def _receive_and_decode(
    work: Path, mp3: Path, content_type: str, body: AsyncIterator[bytes]
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
            return await asyncio.to_thread(
                decode_untrusted_to_mp3,
                sink.files["caller"].path,
                sink.files["assistant"].path,
                dest=mp3,
            )
        return await asyncio.to_thread(decode_untrusted_to_mp3, stereo=sink.path, dest=mp3)
    except AudioError as exc:
        raise Unprocessable(f"The audio could not be used: {exc}.") from None


class TranscriptMessage(msgspec.Struct, forbid_unknown_fields=True):
    """One turn of a transcript as the API takes it."""

    role: str
    text: str
    start_ms: int
    end_ms: int


async def put_transcript(
    org_id: uuid.UUID, call_id: str, messages: list[TranscriptMessage]
) -> Call:
    """Replace the call's transcript (and its searchable text) in one transaction."""
    call = await get_call(org_id, call_id)
    rows = []
    for seq, m in enumerate(messages):
        try:
            role = MessageRole(m.role)
        except ValueError:
            raise InvalidInput(f"messages[{seq}].role must be user, assistant or system.") from None
        if m.start_ms < 0 or m.end_ms < m.start_ms:
            raise InvalidInput(f"messages[{seq}]: need 0 <= start_ms <= end_ms.")
        if len(m.text) > 100_000:
            raise InvalidInput(f"messages[{seq}].text is too long.")
        rows.append(
            Message(
                call_id=call.id,
                seq=seq,
                role=role,
                text=m.text,
                start_ms=m.start_ms,
                end_ms=m.end_ms,
            )
        )
    async with in_transaction():
        await Message.filter(call_id=call.id).delete()
        if rows:
            await Message.bulk_create(rows)
        call.transcript_text = "\n".join(m.text for m in messages)
        await call.save(update_fields=["transcript_text"])
    await _index(call)
    return call


async def _index(call: Call) -> None:
    try:
        from web.services import search
    except ImportError:  # pragma: no cover - the search module is optional
        return
    await search.index_transcript(call)


async def put_analysis(
    org_id: uuid.UUID, call_id: str, summary: str, success: bool | None, data: dict[str, Any]
) -> Analysis:
    """Replace the call's analysis."""
    call = await get_call(org_id, call_id)
    if len(summary) > 100_000:
        raise InvalidInput("summary is too long.")
    async with in_transaction():
        await Analysis.filter(call_id=call.id).delete()
        return await Analysis.create(call_id=call.id, summary=summary, success=success, data=data)
