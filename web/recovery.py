"""Worker jobs that make sure no recording is lost.

- ``recover_streams``: a stream whose process died (kill -9, crash, restart) is finalized
  from its spool on this host: the cut frame is trimmed, peaks are rebuilt from the MP3.
- ``retry_uploads``: a recording whose upload failed is uploaded again, with backoff.
- ``cleanup_multipart``: multipart uploads that no live recording owns are aborted.
- ``empty_spool_trash``: published spools whose background deletion a crash cut short.

Streams whose socket dropped while their process lives are finalized by that process
after ``TALKTURO_STREAM_TIMEOUT`` (it holds the audio not yet encoded). Every job claims its
rows in the database first, so several processes never do the same work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audio import AudioError, EmptyAudio, peaks_from_mp3, repair_mp3_tail
from web.models import Org, Recording, RecordingStatus
from web.observability import UPLOAD_RETRIES
from web.services import recordings as recs
from web.settings import Settings
from web.storage import Storage, Storages, StorageUnavailable

log = logging.getLogger("talkturo.recovery")

# Incomplete multipart uploads are looked for at start-up and then this often.
CLEANUP_INTERVAL_S = 300.0
_LIVE = (RecordingStatus.RECORDING, RecordingStatus.PROCESSING)
_last_cleanup: dict[int, float] = {}


async def _claim_from(rec: Recording, me: recs.Identity) -> bool:
    """Take a row from a dead owner: only if nobody changed its claim in between."""
    now = datetime.now(UTC)
    taken = await Recording.filter(
        id=rec.id, claimed_by=rec.claimed_by, status=rec.status, next_attempt_at=None
    ).update(claimed_by=me.worker, claimed_until=now + recs.LEASE)
    return bool(taken)


async def _fail(rec: Recording, error: str) -> None:
    await Recording.filter(id=rec.id).update(
        status=RecordingStatus.FAILED, last_error=error, claimed_by=None, claimed_until=None
    )
    log.error("recording of call %s failed: %s", rec.call_id, error)  # type: ignore[attr-defined]
    recs.log_status(rec.call_id, rec.org_id, RecordingStatus.FAILED, error=error)  # type: ignore[attr-defined]


async def recover_from_spool(settings: Settings, storages: Storages, rec: Recording) -> str:
    """Finalize a recording from what its spool holds; returns what happened."""
    path = Path(rec.spool_path)
    if not rec.spool_path or not await asyncio.to_thread(path.is_file):
        await _fail(rec, "the spool file of this recording is gone")
        return "failed"
    try:
        await asyncio.to_thread(repair_mp3_tail, path)
        summary = await asyncio.to_thread(peaks_from_mp3, path)
    except EmptyAudio:
        await recs.drop_row(rec)
        return "empty"
    except AudioError as exc:
        await _fail(rec, f"the spool cannot be decoded: {exc}")
        return "failed"
    peaks = await asyncio.to_thread(summary.peaks.overview_json)
    done = recs.Finished(path, peaks, summary.duration_ms, summary.size_bytes, summary.sha256)
    published = await recs.publish(settings, storages, rec, done)
    return "available" if published else "postponed"


async def recover_streams(state: Any) -> int:
    """Finalize, from the spool, recordings whose owning process on this host is gone."""
    settings: Settings = state.settings
    me = recs.identity(settings)
    rows = await Recording.filter(status__in=_LIVE, spool_node=me.node, next_attempt_at=None).all()
    done = 0
    for rec in rows:
        if not recs.owner_is_dead(me, rec.claimed_by, rec.claimed_until):
            continue
        if not await _claim_from(rec, me):
            continue
        outcome = await recover_from_spool(settings, state.storages, rec)
        log.info("recovered the recording of call %s: %s", rec.call_id, outcome)  # type: ignore[attr-defined]
        done += 1
    return done


async def retry_uploads(state: Any) -> int:
    """Upload again the recordings whose upload failed, once their retry time has come."""
    settings: Settings = state.settings
    me = recs.identity(settings)
    now = datetime.now(UTC)
    rows = await Recording.filter(
        status=RecordingStatus.PROCESSING, spool_node=me.node, next_attempt_at__lte=now
    ).all()
    done = 0
    for rec in rows:
        if not await recs.claim(rec.id, me, next_attempt_at__lte=now):
            continue
        UPLOAD_RETRIES.inc()
        mp3 = Path(rec.spool_path)
        peaks_file = mp3.with_suffix(".peaks.json")
        if not await asyncio.to_thread(_both_exist, mp3, peaks_file):
            await _fail(rec, "the spool of this recording is gone; the upload cannot be retried")
            continue
        sha = rec.sha256 or ""
        done_ = recs.Finished(
            mp3,
            await asyncio.to_thread(peaks_file.read_bytes),
            int(rec.duration_ms or 0),
            int(rec.size_bytes or 0),
            sha,
        )
        if await recs.publish(settings, state.storages, rec, done_):
            done += 1
    return done


def _both_exist(a: Path, b: Path) -> bool:
    return a.is_file() and b.is_file()


async def _storages_to_clean(storages: Storages) -> list[Storage]:
    found = [storages.platform()]
    for org in await Org.filter(bucket_name__isnull=False).all():
        try:
            found.append(await storages.for_org(org))
        except (StorageUnavailable, ValueError):
            continue
    return found


async def cleanup_multipart(state: Any, *, force: bool = False) -> int:
    """Abort multipart uploads that no recording in progress owns."""
    now = time.monotonic()
    last = _last_cleanup.get(id(state))
    if not force and last is not None and now - last < CLEANUP_INTERVAL_S:
        return 0
    _last_cleanup[id(state)] = now
    aborted = 0
    for storage in await _storages_to_clean(state.storages):
        try:
            uploads = await storage.list_multipart_uploads()
        except StorageUnavailable:
            continue
        for key, upload_id in uploads:
            owner = await Recording.filter(storage_key=key, status__in=_LIVE).first()
            # Kept while a live row owns it, or may still be about to note its id.
            if owner is not None and owner.multipart_upload_id in (None, upload_id):
                continue
            try:
                await storage.abort_multipart(key, upload_id)
            except StorageUnavailable:
                break
            aborted += 1
            log.info("aborted an orphaned multipart upload of %s", key)
    return aborted


async def empty_spool_trash(state: Any) -> int:
    """Delete published spools that a crash left in the trash before their deletion."""
    return await asyncio.to_thread(recs.empty_trash, state.settings)


def register(jobs: Any) -> None:
    """Add this module's jobs to the worker's registry."""
    jobs.add("recover_streams", recover_streams)
    jobs.add("retry_uploads", retry_uploads)
    jobs.add("cleanup_multipart", cleanup_multipart)
    jobs.add("empty_spool_trash", empty_spool_trash)
