"""One path from an encoder's result to a stored recording.

:func:`begin` creates a call's recording row and picks its storage (once per stream or
upload); :func:`publish` uploads a finished spool MP3 and its peaks and marks the row
``available``. When storage is down the row stays ``processing`` with ``next_attempt_at``;
a worker job retries from the spool.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from audio import Peaks
from web.models import Call, Recording, RecordingStatus
from web.recordings import lifecycle, placement
from web.recordings.node import identity
from web.recordings.parts import MP3_TYPE, PartUploader
from web.recordings.spool import discard_spool, peaks_file
from web.services.retention import purge_date
from web.settings import Settings
from web.storage import Storage, Storages, StorageUnavailable, recording_key
from web.tenancy import get_org

log = logging.getLogger("talkturo.recordings")

# The overview peaks are stored gzipped, and served as stored to clients that accept gzip.
PEAKS_TYPE = "application/gzip"


class Encoded(Protocol):
    """What an encoder reports about a whole MP3 (a live recorder's or a file decoder's)."""

    @property
    def peaks(self) -> Peaks: ...
    @property
    def duration_ms(self) -> int: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def sha256(self) -> str: ...


@dataclass
class Finished:
    """A complete MP3 in the spool and what is known about it (``peaks_gz``: gzipped JSON)."""

    mp3: Path
    peaks_gz: bytes
    duration_ms: int
    size_bytes: int
    sha256: str
    # Keypad-tone spans the encoder silenced (the call JSON's ``recording.redactions``).
    redactions: list[dict[str, Any]] = field(default_factory=list)


def finished(mp3: Path, result: Encoded, redactions: Sequence[Mapping[str, Any]] = ()) -> Finished:
    """The spool MP3 ``mp3`` as the encoder described it (builds the overview peaks: CPU).

    ``redactions``: the keypad-tone spans the encoder silenced, when it knows them.
    """
    return Finished(
        mp3=mp3,
        peaks_gz=gzip.compress(result.peaks.overview_json(), compresslevel=6, mtime=0),
        duration_ms=result.duration_ms,
        size_bytes=result.size_bytes,
        sha256=result.sha256,
        redactions=[dict(span) for span in redactions],
    )


def finished_from_row(rec: Recording, peaks: bytes) -> Finished:
    """A spool kept for a retry, as its row measured it (``peaks`` as kept beside it)."""
    return Finished(
        mp3=Path(rec.spool_path),
        peaks_gz=peaks,
        duration_ms=int(rec.duration_ms or 0),
        size_bytes=int(rec.size_bytes or 0),
        sha256=rec.sha256 or "",
        redactions=list(rec.redactions or []),
    )


@dataclass(frozen=True)
class Begun:
    """A new recording row, claimed by this process, and the storage its objects go to."""

    row: Recording
    storage: Storage


async def begin(
    settings: Settings, storages: Storages, call: Call, status: RecordingStatus, spool: Path
) -> Begun:
    """Create the recording row of ``call`` in the storage its org uses now.

    IntegrityError if the call already has one (the row is the lock).
    """
    org = await get_org(call.org_id)  # type: ignore[attr-defined]
    target, storage = await placement.for_new(storages, org)
    row = await lifecycle.new_row(
        call,
        status,
        identity(settings),
        storage_target=target,
        storage_bucket=storage.bucket,
        storage_key=recording_key(org.id, call.started_at, call.id, "mp3"),
        peaks_key=recording_key(org.id, call.started_at, call.id, "peaks.json"),
        spool=spool,
    )
    return Begun(row, storage)


async def publish(
    settings: Settings,
    storages: Storages,
    rec: Recording,
    done: Finished,
    uploader: PartUploader | None = None,
    *,
    storage: Storage | None = None,
    call: Call | None = None,
) -> bool:
    """Upload a finished spool MP3 and its peaks, then mark the row ``available``.

    ``storage`` and ``call`` spare the lookups when the caller has them. Returns False when
    storage failed: the row is left ``processing`` with a retry time and the spool is kept.
    Any earlier multipart upload of the row is completed or aborted.

    Once the bytes are stored, one transaction makes the row ``available`` with its
    measures (and records the webhook event); the spool is discarded after.
    """
    try:
        if storage is None:
            storage = await placement.storage_of(storages, rec)
        await _store(storage, rec, done, uploader)
    except (StorageUnavailable, ValueError) as exc:
        await _postpone(rec, done, uploader, str(exc))
        return False
    org = await get_org(rec.org_id)  # type: ignore[attr-defined]
    if call is None:
        call = await Call.get(id=rec.call_id)  # type: ignore[attr-defined]
    await lifecycle.mark_available(
        rec,
        duration_ms=done.duration_ms,
        size_bytes=done.size_bytes,
        sha256=done.sha256,
        redactions=done.redactions,
        purge_at=purge_date(org, call.started_at),
    )
    await discard_spool(settings, done.mp3)
    return True


async def _store(
    storage: Storage, rec: Recording, done: Finished, uploader: PartUploader | None
) -> None:
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
        storage.put_bytes(rec.peaks_key, done.peaks_gz, PEAKS_TYPE),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def _postpone(
    rec: Recording, done: Finished, uploader: PartUploader | None, error: str
) -> None:
    """Keep the spool and the peaks for a retry; release the claim with a retry time."""
    if uploader is not None:
        await uploader.abandon()
    await asyncio.to_thread(peaks_file(done.mp3).write_bytes, done.peaks_gz)
    measures = {
        "duration_ms": done.duration_ms,
        "size_bytes": done.size_bytes,
        "sha256": done.sha256,
        "redactions": done.redactions,
    }
    attempts = await lifecycle.postpone(rec, error, measures)
    log.warning("upload of %s failed (attempt %d): %s", rec.storage_key, attempts, error)
