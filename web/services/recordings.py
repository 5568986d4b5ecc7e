"""Recordings: from a spooled MP3 on this host to an ``available`` row with objects in storage.

Every recording passes through a spool file under ``settings.spool_dir`` on the host that
made it. Publishing uploads it (or completes the multipart upload that grew during the call),
stores the peaks beside it and marks the row ``available``. When storage is down the row
stays ``processing`` with ``next_attempt_at``; a worker job retries from the spool.

Work on a row is claimed in the database (``claimed_by``/``claimed_until``), never only in
memory, so any number of processes can run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from web.models import Call, Org, Recording, RecordingStatus
from web.observability import PURGED
from web.services.retention import purge_date
from web.settings import Settings
from web.storage import S3Storage, Storage, Storages, StorageUnavailable, recording_key

log = logging.getLogger("talkturo.recordings")
status_log = logging.getLogger("talkturo.recording")

MP3_TYPE = "audio/mpeg"
PEAKS_TYPE = "application/json"
# S3's smallest part (except the last); parts are uploaded from the spool as the call grows.
PART_SIZE = 5 * 1024 * 1024
# A local directory has no minimum: smaller parts leave a smaller tail for the hang-up.
LOCAL_PART_SIZE = 256 * 1024
# A claim lasts this long unless renewed; live streams renew it every HEARTBEAT_S.
LEASE = timedelta(seconds=30)
HEARTBEAT_S = 5.0
# Retry delays after a failed upload: 1 s, 2 s, 4 s, ... at most a minute.
MAX_BACKOFF_S = 60.0


def log_status(call_id: Any, org_id: Any, status: RecordingStatus, **extra: Any) -> None:
    """One structured log line per state change of a recording."""
    status_log.info(
        "recording of call %s is %s",
        call_id,
        status.value,
        extra={"call_id": str(call_id), "org_id": str(org_id), "status": status.value, **extra},
    )


def note_purged(call_id: Any, org_id: Any) -> None:
    """Count and log a recording purged by retention."""
    PURGED.inc()
    log_status(call_id, org_id, RecordingStatus.PURGED)


@dataclass(frozen=True)
class Identity:
    """Who this process is: ``node`` names the host's spool, ``worker`` this very process."""

    node: str
    worker: str


_identities: dict[tuple[Path, int], Identity] = {}


def identity(settings: Settings) -> Identity:
    """This process's identity; the node id is kept in the spool dir so restarts keep it."""
    cache_key = (settings.spool_dir, os.getpid())
    found = _identities.get(cache_key)
    if found is not None:
        return found
    spool = settings.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / "node-id"
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(uuid.uuid4().hex)
    # The host name too: containers sharing a volume must not take each other's spools.
    node = f"{socket.gethostname()}/{path.read_text().strip()}"
    found = Identity(node, f"{node}|{os.getpid()}|{secrets.token_hex(4)}")
    _identities[cache_key] = found
    return found


def owner_is_dead(me: Identity, claimed_by: str | None, claimed_until: datetime | None) -> bool:
    """Whether the process that claimed a row can no longer be working on it."""
    now = datetime.now(UTC)
    if not claimed_by or claimed_until is None or claimed_until < now:
        return True
    if claimed_by == me.worker:
        return False
    owner_node, _, rest = claimed_by.partition("|")
    pid = rest.split("|", 1)[0]
    # A claim of another host runs until it expires; on this host a gone pid frees it now.
    if owner_node != me.node or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def spool_paths(settings: Settings, call_id: uuid.UUID) -> tuple[Path, Path]:
    """The spool MP3 of a call and the peaks file beside it."""
    base = settings.spool_dir / "calls"
    base.mkdir(parents=True, exist_ok=True)
    return base / f"{call_id}.mp3", base / f"{call_id}.peaks.json"


def remove_spool(mp3: Path) -> None:
    """Delete a spool MP3 and its peaks file."""
    mp3.unlink(missing_ok=True)
    mp3.with_suffix(".peaks.json").unlink(missing_ok=True)


def trash_dir(settings: Settings) -> Path:
    """Where published spools wait to be deleted (beside the spool, on the same disk)."""
    return settings.data_dir / "spool-trash"


def _move_to_trash(settings: Settings, mp3: Path) -> list[Path]:
    """Move a spool MP3 and its peaks file into the trash; returns where they went."""
    trash = trash_dir(settings)
    trash.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in (mp3, mp3.with_suffix(".peaks.json")):
        target = trash / f"{secrets.token_hex(8)}-{path.name}"
        try:
            path.rename(target)
        except FileNotFoundError:
            continue
        except OSError:
            path.unlink(missing_ok=True)  # another disk: delete it here and now
            continue
        moved.append(target)
    return moved


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def empty_trash(settings: Settings) -> int:
    """Delete every file in the spool trash; returns how many."""
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for path in trash_dir(settings).iterdir():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


_DELETING: set[asyncio.Task[None]] = set()


async def discard_spool(settings: Settings, mp3: Path) -> None:
    """Take a published spool out of the spool at once; delete it in the background.

    Unlinking an hour-long call's file costs milliseconds that the hang-up need not wait for.
    A crash before the delete leaves it in the trash, which the worker empties.
    """
    moved = await asyncio.to_thread(_move_to_trash, settings, mp3)
    if moved:
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(_unlink_all, moved))
        _DELETING.add(task)
        task.add_done_callback(_DELETING.discard)


# A recording in progress that nobody has worked on for this long is waiting for something.
STALLED_AFTER = timedelta(minutes=2)
HOST_AWAY = (
    "Waiting for the server that recorded this call: it holds the audio, and the recording"
    " is finished as soon as that server is back."
)


def delay_reason(rec: Recording, now: datetime | None = None) -> str | None:
    """Why a recording still in progress is late, in words; None while it is simply underway.

    A failed upload says so (it is retried from the spool). A spool lives on the disk of the
    host that recorded the call and only that host can finish it, so a row that no process
    has touched for a while is waiting for that host.
    """
    if RecordingStatus(rec.status) not in (RecordingStatus.RECORDING, RecordingStatus.PROCESSING):
        return None
    now = now or datetime.now(UTC)
    if rec.next_attempt_at is not None:
        if rec.next_attempt_at >= now - STALLED_AFTER:
            tries = "1 attempt" if rec.upload_attempts == 1 else f"{rec.upload_attempts} attempts"
            return (
                f"Storage has not taken the recording yet ({tries}); it is retried"
                " automatically and the audio is kept until then."
            )
        return HOST_AWAY
    touched = rec.claimed_until or rec.last_activity_at
    if touched is not None and touched < now - STALLED_AFTER:
        return HOST_AWAY
    return None


async def new_row(
    settings: Settings,
    storages: Storages,
    call: Call,
    status: RecordingStatus,
    spool: Path,
) -> Recording:
    """Create the recording row of ``call``, claimed by this process. IntegrityError if one exists.

    The row is the lock: a call has at most one, so a second stream or upload is refused.
    """
    org = await Org.get(id=call.org_id)  # type: ignore[attr-defined]
    storage = await storages.for_org(org)
    me = identity(settings)
    now = datetime.now(UTC)
    row = await Recording.create(
        call_id=call.id,
        org_id=org.id,
        status=status,
        storage_target=storages.target_of(org),
        storage_bucket=storage.bucket,
        storage_key=recording_key(org.id, call.started_at, call.id, "mp3"),
        peaks_key=recording_key(org.id, call.started_at, call.id, "peaks.json"),
        spool_path=str(spool),
        spool_node=me.node,
        last_activity_at=now,
        claimed_by=me.worker,
        claimed_until=now + LEASE,
    )
    log_status(call.id, org.id, status)
    return row


async def renew(rec_id: uuid.UUID, worker: str, last_activity: datetime | None) -> None:
    """Extend this process's claim on a row (and note the stream's last activity)."""
    update: dict[str, Any] = {"claimed_until": datetime.now(UTC) + LEASE}
    if last_activity is not None:
        update["last_activity_at"] = last_activity
    await Recording.filter(id=rec_id, claimed_by=worker).update(**update)


async def release(rec_id: uuid.UUID, worker: str) -> None:
    """Give up this process's claim on a row, so a worker can take it at once."""
    await Recording.filter(id=rec_id, claimed_by=worker).update(claimed_by=None, claimed_until=None)


async def claim(rec_id: uuid.UUID, me: Identity, *, lease: timedelta = LEASE, **where: Any) -> bool:
    """Take a row whose claim is free or expired (atomically); True if this process got it."""
    now = datetime.now(UTC)
    free = Q(claimed_by=None) | Q(claimed_until=None) | Q(claimed_until__lt=now)
    taken = await Recording.filter(free, id=rec_id, **where).update(
        claimed_by=me.worker, claimed_until=now + lease
    )
    return bool(taken)


async def drop_row(rec: Recording) -> None:
    """Forget a recording that never got audio (and its spool)."""
    await Recording.filter(id=rec.id).delete()
    if rec.spool_path:
        await asyncio.to_thread(remove_spool, Path(rec.spool_path))


@dataclass
class Finished:
    """A complete MP3 in the spool and what is known about it."""

    mp3: Path
    peaks_json: bytes
    duration_ms: int
    size_bytes: int
    sha256: str


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


def backoff_s(attempts: int) -> float:
    """Delay before retry number ``attempts`` (1-based)."""
    return float(min(MAX_BACKOFF_S, 2 ** max(0, attempts - 1)))


async def publish(
    settings: Settings,
    storages: Storages,
    rec: Recording,
    done: Finished,
    uploader: PartUploader | None = None,
) -> bool:
    """Upload a finished spool MP3 and its peaks, then mark the row ``available``.

    Returns False when storage failed: the row is left ``processing`` with a retry time and
    the spool is kept. Any earlier multipart upload of the row is completed or aborted.
    """
    await Recording.filter(id=rec.id).update(
        status=RecordingStatus.PROCESSING,
        duration_ms=done.duration_ms,
        size_bytes=done.size_bytes,
        sha256=done.sha256,
    )
    log_status(rec.call_id, rec.org_id, RecordingStatus.PROCESSING)  # type: ignore[attr-defined]
    try:
        storage = await storages.for_recording(rec)

        async def store_mp3() -> None:
            if uploader is not None:
                await uploader.finish(done.size_bytes)
                return
            stale = await Recording.get(id=rec.id).values_list("multipart_upload_id", flat=True)
            if stale:
                await storage.abort_multipart(rec.storage_key, str(stale))
                await Recording.filter(id=rec.id).update(multipart_upload_id=None)
            await storage.put_file(rec.storage_key, done.mp3, MP3_TYPE)

        # The MP3 and the peaks go up side by side: the hang-up waits for the slower one.
        outcomes = await asyncio.gather(
            store_mp3(),
            storage.put_bytes(rec.peaks_key, done.peaks_json, PEAKS_TYPE),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
    except (StorageUnavailable, ValueError) as exc:
        await _postpone(rec, done, uploader, str(exc))
        return False
    await _mark_available(rec, done)
    await discard_spool(settings, done.mp3)
    return True


async def _postpone(
    rec: Recording, done: Finished, uploader: PartUploader | None, error: str
) -> None:
    """Keep the spool and the peaks for a retry; release the claim with a retry time."""
    if uploader is not None:
        await uploader.abandon()
    await asyncio.to_thread(done.mp3.with_suffix(".peaks.json").write_bytes, done.peaks_json)
    fresh = await Recording.get(id=rec.id)
    attempts = fresh.upload_attempts + 1
    await Recording.filter(id=rec.id).update(
        status=RecordingStatus.PROCESSING,
        upload_attempts=attempts,
        last_error=error[:1000],
        next_attempt_at=datetime.now(UTC) + timedelta(seconds=backoff_s(attempts)),
        claimed_by=None,
        claimed_until=None,
    )
    log.warning("upload of %s failed (attempt %d): %s", rec.storage_key, attempts, error)


async def _mark_available(rec: Recording, done: Finished) -> None:
    call = await Call.get(id=rec.call_id)  # type: ignore[attr-defined]
    org = await Org.get(id=rec.org_id)  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    async with in_transaction():
        await Recording.filter(id=rec.id).update(
            status=RecordingStatus.AVAILABLE,
            duration_ms=done.duration_ms,
            size_bytes=done.size_bytes,
            sha256=done.sha256,
            purge_at=purge_date(org, call.started_at),
            available_at=now,
            spool_path="",
            multipart_upload_id=None,
            next_attempt_at=None,
            last_error="",
            claimed_by=None,
            claimed_until=None,
        )
        await Call.filter(id=call.id).update(has_recording=True)
    log_status(call.id, org.id, RecordingStatus.AVAILABLE, duration_ms=done.duration_ms)
