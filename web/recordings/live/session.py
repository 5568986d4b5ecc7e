"""One live media stream of one call, from ``start`` to the published recording.

The controller hands a :class:`MediaSession` each WebSocket message; the session's dialect
turns it into an event. The session feeds the recorder (push on the loop, encode in a
thread), appends the MP3 to the spool as it is produced and uploads it to storage in parts
while the call runs, so at ``stop`` only the tail remains. A message it cannot accept raises
:class:`StreamRefused` with the close code and reason; whatever audio came before is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError

from audio import AudioError, Recorder
from web.auth import STREAM_ROLES, Principal, key_principal
from web.errors import NotFound
from web.models import Call, Recording, RecordingStatus
from web.observability import ENCODER_LAG, LIVE_CALLS, MEDIA_FRAMES
from web.recordings import lifecycle
from web.recordings.live import pause
from web.recordings.live.events import (
    INTERNAL,
    POLICY,
    UNSUPPORTED,
    Dialect,
    Dtmf,
    Media,
    Start,
    Stop,
    StreamRefused,
)
from web.recordings.live.recognise import Recognising
from web.recordings.live.twilio import TRACKS
from web.recordings.node import identity
from web.recordings.parts import PartUploader
from web.recordings.publish import Finished, begin, finished, publish
from web.recordings.spool import SpoolFile, spool_paths
from web.settings import Settings
from web.storage import Storage, Storages
from web.tenancy import get_call

log = logging.getLogger("talkturo.ingest")

__all__ = ["MediaSession", "StreamRefused"]

# Per-track frame counters, looked up once (a frame must cost next to nothing).
_FRAMES = {track: MEDIA_FRAMES.labels(track) for track in TRACKS}

# Sessions whose socket went away without ``stop``: kept alive until their timeout fires.
_DETACHED: set[MediaSession] = set()
# Started media sockets per API key in this process, for the per-key limit.
_SOCKETS_PER_KEY: dict[object, int] = {}


class MediaSession:
    """One live media stream of one call, from ``start`` to the published recording."""

    def __init__(
        self,
        settings: Settings,
        storages: Storages,
        call_id: str,
        authorization: str | None,
        dialect: Dialect | None = None,
    ) -> None:
        self.settings = settings
        self.storages = storages
        self.call_id = call_id
        self.authorization = authorization
        self.dialect: Dialect = dialect or Recognising()
        self.me = identity(settings)
        self.call: Call | None = None
        self.row: Recording | None = None
        self.storage: Storage | None = None
        self.recorder: Recorder | None = None
        self.uploader: PartUploader | None = None
        self.spool: SpoolFile | None = None
        self.media_count = 0
        self._frame_counts: dict[str, int] = {}
        self.finished = False
        self._final_lock = asyncio.Lock()
        self._last_mono = time.monotonic()
        self._noted_wall: datetime | None = None
        self._detached = False
        self._keeper: asyncio.Task[None] | None = None
        self._counted = False
        self._flushed = False
        self._last_media = time.monotonic()
        self.spool_error: str | None = None
        self._key: object = None
        # Set by the controller: closes the socket once the stream timed out with it open.
        self.on_idle: Callable[[], Awaitable[None]] | None = None
        self.pause_version = 0
        self._pause_wish: tuple[int, bool] | None = None
        self._pause_task: asyncio.Task[None] | None = None
        # True while the recorder works in a thread (it takes one caller at a time).
        self._busy = False
        # The spans last written beside the spool (redactions, pauses).
        self._spans_saved: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])

    @property
    def started(self) -> bool:
        return self.recorder is not None

    async def handle(self, raw: str | bytes | None) -> bool:
        """Take one message; True once the stream is over (``stop``)."""
        if self.finished:
            return True
        event = self.dialect.parse(raw, started=self.started)
        self._last_mono = now = time.monotonic()
        if isinstance(event, Media):
            self._last_media = now
            await self._media(event)
            return False
        if isinstance(event, Start):
            await self._start(event)
            return False
        if isinstance(event, Stop):
            await self.finalize()
            return True
        if isinstance(event, Dtmf) and self.recorder is not None:
            self.recorder.mark_dtmf()
        return False

    async def _principal(self, token: str | None) -> Principal:
        principal = await key_principal(self.authorization)
        if principal is None and token:
            principal = await key_principal(f"Bearer {token}")
        if principal is None:
            raise StreamRefused(POLICY, "a valid API key is required")
        if principal.role not in STREAM_ROLES:
            raise StreamRefused(POLICY, "this key's role cannot stream media: use an ingest key")
        return principal

    async def _start(self, start: Start) -> None:
        principal = await self._principal(start.token)
        if start.format_error is not None:
            raise start.format_error
        self._hold_socket_slot(principal)
        try:
            await self._begin(principal, start)
        except BaseException:
            self._free_socket_slot()
            raise

    async def _begin(self, principal: Principal, start: Start) -> None:
        try:
            call = await get_call(principal.org_id, self.call_id)
        except NotFound:
            raise StreamRefused(POLICY, "no such call") from None
        if not call.recording_enabled:
            raise StreamRefused(POLICY, "recording is disabled for this call")
        path, _ = spool_paths(self.settings, call.id)
        try:
            begun = await begin(self.settings, self.storages, call, RecordingStatus.RECORDING, path)
        except IntegrityError:
            raise StreamRefused(
                POLICY, "this call already has a recording or a live stream"
            ) from None
        self.call = call
        self.row = begun.row
        self.storage = begun.storage
        self.spool = SpoolFile(path)
        self.recorder = Recorder(start.caller, start.assistant, redact_dtmf=call.redact_dtmf)
        LIVE_CALLS.inc()
        self._counted = True
        self.uploader = PartUploader(begun.storage, begun.row, path)
        self._keeper = asyncio.get_running_loop().create_task(self._keep())
        pause.watcher(self.settings.database).watch(begun.row.id, self)

    def _hold_socket_slot(self, principal: Principal) -> None:
        """Count this socket against its key's limit; refused with 1008 over the limit."""
        key = principal.api_key_id or principal.label
        limit = self.settings.recording.media_sockets_per_key
        if _SOCKETS_PER_KEY.get(key, 0) >= limit:
            raise StreamRefused(
                POLICY, f"this API key already has {limit} media streams open (the limit)"
            )
        _SOCKETS_PER_KEY[key] = _SOCKETS_PER_KEY.get(key, 0) + 1
        self._key = key

    def _free_socket_slot(self) -> None:
        key, self._key = self._key, None
        if key is None:
            return
        left = _SOCKETS_PER_KEY.get(key, 0) - 1
        if left > 0:
            _SOCKETS_PER_KEY[key] = left
        else:
            _SOCKETS_PER_KEY.pop(key, None)

    async def _media(self, media: Media) -> None:
        recorder = self.recorder
        assert recorder is not None
        if self._pause_wish is not None:
            await self._apply_pause()
        self._busy = True
        try:
            if recorder.push_is_heavy(media.timestamp_ms):
                await asyncio.to_thread(recorder.push, media.leg, media.timestamp_ms, media.payload)
            else:
                recorder.push(media.leg, media.timestamp_ms, media.payload)
        except AudioError as exc:
            raise StreamRefused(UNSUPPORTED, f"bad media: {exc}") from None
        finally:
            self._busy = False
        self.media_count += 1
        # Counted here, added to the metric once per encode (a frame must cost next to nothing).
        self._frame_counts[media.track] = self._frame_counts.get(media.track, 0) + 1
        if recorder.encode_due:
            self._count_frames()
            self._busy = True
            try:
                await asyncio.to_thread(self._encode)
            except OSError as exc:
                await self._spool_failed(exc)
            finally:
                self._busy = False
            if self.uploader is not None and self.spool is not None:
                self.uploader.poke(self.spool.size)

    def _count_frames(self) -> None:
        for track, count in self._frame_counts.items():
            if count:
                _FRAMES[track].inc(count)
                self._frame_counts[track] = 0

    async def _spool_failed(self, exc: OSError) -> None:
        """The spool cannot be written (a full disk): say so, keep what is there, refuse."""
        assert self.row is not None
        log.error("the spool of call %s cannot be written: %s", self.call_id, exc)
        self.spool_error = f"the server could not write the audio to its disk ({exc.strerror})"
        await lifecycle.note_error(self.row, self.spool_error)
        raise StreamRefused(
            INTERNAL, "the server's disk is full: the audio received so far is kept"
        )

    def pause_wished(self, version: int, paused: bool) -> None:
        """The process's pause watcher saw a newer request: apply it between frames."""
        self._pause_wish = (version, paused)
        if self._busy or self.finished:
            return  # the next frame applies it (or the watcher hands it again)
        if self._pause_task is None or self._pause_task.done():
            self._pause_task = asyncio.get_running_loop().create_task(self._apply_wish())

    async def _apply_wish(self) -> None:
        if self._busy:
            return
        try:
            await self._apply_pause()
        except Exception:
            log.exception("could not apply the pause request of call %s", self.call_id)

    async def _apply_pause(self) -> None:
        wish, self._pause_wish = self._pause_wish, None
        if wish is None or self.recorder is None or self.row is None or self.finished:
            return
        version, paused = wish
        if paused:
            self.recorder.pause()
        else:
            self.recorder.resume()
        self.pause_version = version
        try:
            self._save_spans()
        except OSError as exc:
            log.warning("could not note the spans of call %s: %s", self.call_id, exc)
        await pause.applied(self.row.id, version, self.recorder.pauses)

    def _encode(self) -> None:
        assert self.recorder is not None
        assert self.spool is not None
        self.recorder.encode_to(self.spool.write)
        self._save_spans()
        stats = self.recorder.stats
        ENCODER_LAG.observe(max(0, stats["frontier_ms"] - stats["committed_ms"]) / 1000)

    def _save_spans(self) -> None:
        """Note new keypad-tone or pause spans beside the spool, so a crash keeps them."""
        assert self.recorder is not None
        assert self.spool is not None
        spans = (list(self.recorder.redactions), list(self.recorder.pauses))
        if spans != self._spans_saved:
            self.spool.write_spans(*spans)
            self._spans_saved = spans

    def _finish(self) -> Finished:
        assert self.recorder is not None
        assert self.spool is not None
        result = self.recorder.finish()
        if result.mp3_tail:
            self.spool.write(result.mp3_tail)
        self.spool.close()
        self._flushed = True
        return finished(self.spool.path, result, result.redactions)

    async def _keep(self) -> None:
        """Renew the claim while the stream lives; finalize once no media came for the timeout.

        Whether or not the socket is still open: a quiet stream with its socket open is
        finalized too (and its socket closed).
        """
        assert self.row is not None
        timeout = self.settings.recording.stream_timeout_s
        while not self.finished:
            wait = min(lifecycle.HEARTBEAT_S, self._last_media + timeout - time.monotonic())
            await asyncio.sleep(max(0.05, wait))
            if self.finished:
                return
            if time.monotonic() >= self._last_media + timeout:
                log.info(
                    "stream of call %s got no media for %g s; finalizing", self.call_id, timeout
                )
                try:
                    await self.finalize(from_keeper=True)
                except Exception:
                    # The claim lapses; recovery finishes the recording from its spool.
                    log.exception("could not finalize call %s", self.call_id)
                    return
                if not self._detached and self.on_idle is not None:
                    with contextlib.suppress(Exception):
                        await self.on_idle()
                return
            wall = self._wall_of_last()
            try:
                await lifecycle.renew(self.row.id, self.me.worker, wall)
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
        if self.spool_error is not None:
            # Finalizing would write again: left to the timeout, then to recovery.
            self.detach()
            return
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
            pause.watcher(self.settings.database).unwatch(self.row.id)
            try:
                await self._take_held()
                await self._publish()
            finally:
                self._release()

    async def _take_held(self) -> None:
        """Give the recorder what the dialect held back for ordering (up to a bad payload)."""
        try:
            for media in self.dialect.held():
                await self._media(media)
        except StreamRefused as exc:
            log.warning("held media of call %s dropped: %s", self.call_id, exc.reason)

    async def hand_off(self) -> None:
        """The process is shutting down: finalize now with every frame received.

        If that is cut short (or fails) once the spool is complete, the claim is released
        so a worker finalizes the recording from the spool; nothing is raised.
        """
        try:
            await self.finalize()
        except BaseException as exc:
            if self._flushed and self.row is not None:
                await asyncio.shield(lifecycle.release(self.row.id, self.me.worker))
            if isinstance(exc, Exception):
                log.exception("could not finalize call %s at shutdown", self.call_id)
                return
            raise

    async def _publish(self) -> None:
        assert self.row is not None
        assert self.spool is not None
        if self.media_count == 0:
            self.spool.close()
            if self.uploader is not None:
                await self.uploader.abandon()
            await lifecycle.drop_row(self.row)
            return
        recorder = self.recorder
        assert recorder is not None
        # A pause still open at the end closes where the call ends.
        recorder.resume()
        done = await asyncio.to_thread(self._finish)
        if recorder.pauses:
            await pause.applied(self.row.id, self.pause_version, recorder.pauses)
        await publish(
            self.settings,
            self.storages,
            self.row,
            done,
            self.uploader,
            storage=self.storage,
            call=self.call,
        )

    def _release(self) -> None:
        self._count_frames()
        _DETACHED.discard(self)
        if self.finished or not self.started:
            self._free_socket_slot()
        if self._counted and (self.finished or not self.started):
            self._counted = False
            LIVE_CALLS.dec()
        if self.spool is not None and self.finished:
            self.spool.close()
