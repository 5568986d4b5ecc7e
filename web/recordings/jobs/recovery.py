"""Worker jobs that make sure no recording is lost.

- ``recover_streams``: a stream whose process died (kill -9, crash, restart) is finalized
  from its spool on this host: the cut frame is trimmed, peaks are rebuilt from the MP3.
- ``retry_uploads``: a recording whose upload failed is uploaded again, with backoff.

Streams whose socket dropped while their process lives are finalized by that process
after ``TALKTURO_STREAM_TIMEOUT`` (it holds the audio not yet encoded). Every job claims its
rows in the database first, so several processes never do the same work.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audio import AudioError, EmptyAudio, peaks_from_mp3, repair_mp3_tail
from web.models import Recording, RecordingStatus
from web.observability import UPLOAD_RETRIES
from web.recordings import lifecycle
from web.recordings.node import identity, owner_is_dead
from web.recordings.publish import finished, finished_from_row, publish
from web.recordings.spool import peaks_file, read_spans
from web.settings import Settings
from web.storage import Storages

log = logging.getLogger("talkturo.recovery")

_LIVE = (RecordingStatus.RECORDING, RecordingStatus.PROCESSING)


async def recover_from_spool(settings: Settings, storages: Storages, rec: Recording) -> str:
    """Finalize a recording from what its spool holds; returns what happened."""
    path = Path(rec.spool_path)
    if not rec.spool_path or not await asyncio.to_thread(path.is_file):
        await lifecycle.fail(rec, "the spool file of this recording is gone")
        return "failed"
    try:
        await asyncio.to_thread(repair_mp3_tail, path)
        summary = await asyncio.to_thread(peaks_from_mp3, path)
    except EmptyAudio:
        await lifecycle.drop_row(rec)
        return "empty"
    except AudioError as exc:
        await lifecycle.fail(rec, f"the spool cannot be decoded: {exc}")
        return "failed"
    # The spans noted beside the spool while the stream lived are kept (the audio holds no
    # tones, the paused spans are silence); without that file, those the row has.
    noted = await asyncio.to_thread(read_spans, path)
    redactions = noted["redactions"] if noted is not None else list(rec.redactions or [])
    pauses = noted["pauses"] if noted is not None else list(rec.pauses or [])
    end_ms = summary.duration_ms
    redactions = [
        {**span, "end_ms": min(int(span["end_ms"]), end_ms)}
        for span in redactions
        if int(span.get("start_ms", end_ms)) < end_ms
    ]
    # A pause still open when the process died lasts to the end of what was kept.
    pauses = [
        {**span, "end_ms": end_ms if span.get("end_ms") is None else span["end_ms"]}
        for span in pauses
    ]
    if pauses != list(rec.pauses or []):
        await Recording.filter(id=rec.id).update(pauses=pauses)
    done = await asyncio.to_thread(finished, path, summary, redactions)
    published = await publish(settings, storages, rec, done)
    return "available" if published else "postponed"


async def recover_streams(state: Any) -> int:
    """Finalize, from the spool, recordings whose owning process on this host is gone."""
    settings: Settings = state.settings
    me = identity(settings)
    rows = await Recording.filter(status__in=_LIVE, spool_node=me.node, next_attempt_at=None).all()
    done = 0
    for rec in rows:
        if not owner_is_dead(me, rec.claimed_by, rec.claimed_until):
            continue
        # Taken from the dead owner only if nobody changed the row's claim in between.
        taken = await lifecycle.claim(
            rec.id, me.worker, from_owner=rec.claimed_by, status=rec.status, next_attempt_at=None
        )
        if not taken:
            continue
        outcome = await recover_from_spool(settings, state.storages, rec)
        log.info("recovered the recording of call %s: %s", rec.call_id, outcome)  # type: ignore[attr-defined]
        done += 1
    return done


async def retry_uploads(state: Any) -> int:
    """Upload again the recordings whose upload failed, once their retry time has come."""
    settings: Settings = state.settings
    me = identity(settings)
    now = datetime.now(UTC)
    rows = await Recording.filter(
        status=RecordingStatus.PROCESSING, spool_node=me.node, next_attempt_at__lte=now
    ).all()
    done = 0
    for rec in rows:
        if not await lifecycle.claim(rec.id, me.worker, next_attempt_at__lte=now):
            continue
        UPLOAD_RETRIES.inc()
        mp3 = Path(rec.spool_path)
        peaks = peaks_file(mp3)
        if not await asyncio.to_thread(_both_exist, mp3, peaks):
            await lifecycle.fail(
                rec, "the spool of this recording is gone; the upload cannot be retried"
            )
            continue
        retry = finished_from_row(rec, await asyncio.to_thread(peaks.read_bytes))
        if await publish(settings, state.storages, rec, retry):
            done += 1
    return done


def _both_exist(a: Path, b: Path) -> bool:
    return a.is_file() and b.is_file()
