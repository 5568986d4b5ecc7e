"""Retention purge: delete the audio of recordings past their org's retention.

A recording is due when it is ``available``, not under legal hold, and its ``purge_at``
has come. Purging deletes its MP3 and peaks from the bucket they are in, then marks the
row ``purged`` (the call, transcript and analysis stay) with one ``recording.purge``
audit event, in one transaction.

Any number of processes may purge at once: each row is claimed first by an atomic
``UPDATE … WHERE claim is free or expired``, so two workers never purge the same row.
A worker that dies midway leaves its claim to expire after :data:`PURGE_LEASE`; the
next pass deletes again (deleting what is gone is not an error) and finishes. A storage
failure releases the claim at once, and the row waits for the next pass.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from tortoise.expressions import Q

from web.interval import Interval
from web.models import AuditEvent, Recording, RecordingStatus
from web.observability import PURGED
from web.recordings import lifecycle, placement
from web.recordings.node import identity
from web.settings import Settings
from web.storage import Storages, StorageUnavailable

log = logging.getLogger("talkturo.purge")

PURGE_ACTION = "recording.purge"
PURGE_ACTOR = "retention"
# Long enough for two deletes on a slow bucket; a dead worker's rows are retried after it.
PURGE_LEASE = timedelta(minutes=2)
# The worker looks for due recordings this often (retention is counted in days).
PURGE_INTERVAL_S = 60.0
# Rows read per query, and at most this many purged per worker pass.
_PAGE = 200
WORKER_PASS_LIMIT = 1000
_every = Interval(PURGE_INTERVAL_S)


@dataclass(frozen=True)
class Due:
    """A recording whose retention has run out."""

    rec_id: uuid.UUID
    call_id: uuid.UUID
    org_id: uuid.UUID
    purge_at: datetime
    storage_target: str
    storage_bucket: str

    def line(self, verb: str) -> str:
        """One output line, starting with the call id (as the CLI contract says)."""
        where = f"{self.storage_target} bucket {self.storage_bucket}".strip()
        return (
            f"{self.call_id} {verb} org={self.org_id} due={self.purge_at:%Y-%m-%d} storage={where}"
        )


def _due_filter(now: datetime) -> Q:
    return Q(status=RecordingStatus.AVAILABLE, legal_hold=False, purge_at__lte=now)


async def find_due(
    now: datetime, *, after: uuid.UUID | None = None, limit: int = _PAGE
) -> list[Due]:
    """Due recordings in id order, starting after ``after`` (claimed ones included)."""
    query = Recording.filter(_due_filter(now))
    if after is not None:
        query = query.filter(id__gt=after)
    rows = await query.order_by("id").limit(limit)
    return [
        Due(
            rec_id=r.id,
            call_id=r.call_id,  # type: ignore[attr-defined]
            org_id=r.org_id,  # type: ignore[attr-defined]
            purge_at=r.purge_at or now,
            storage_target=r.storage_target,
            storage_bucket=r.storage_bucket,
        )
        for r in rows
    ]


async def _claim(due: Due, worker: str, now: datetime) -> Recording | None:
    """Take the row for this worker if it is still due and nobody holds it; else None."""
    taken = await lifecycle.claim(
        due.rec_id, worker, lease=PURGE_LEASE, now=now, where=_due_filter(now)
    )
    if not taken:
        return None
    return await Recording.get_or_none(id=due.rec_id, claimed_by=worker)


async def purge_one(storages: Storages, due: Due, worker: str, now: datetime) -> bool:
    """Purge one due recording if this worker can claim it; True if it did."""
    rec = await _claim(due, worker, now)
    if rec is None:
        return False
    try:
        storage = await placement.storage_of(storages, rec)
        # Objects first: if storage fails, the row still says where they are.
        for key in (rec.storage_key, rec.peaks_key):
            if key:
                await storage.delete(key)
    except (StorageUnavailable, ValueError) as exc:
        await lifecycle.release(rec.id, worker, last_error=f"purge failed: {exc}"[:1000])
        log.warning("purge of the recording of call %s failed: %s", due.call_id, exc)
        return False
    async with lifecycle.transaction() as conn:
        if not await lifecycle.purged(rec, worker, conn=conn):
            # Deleted by an admin meanwhile, or the lease ran out and another worker finished.
            return False
        await AuditEvent.create(
            using_db=conn,
            org_id=due.org_id,
            call_id=due.call_id,
            action=PURGE_ACTION,
            actor=PURGE_ACTOR,
            detail={
                "purge_at": due.purge_at.isoformat(),
                "size_bytes": rec.size_bytes,
                "storage": rec.storage_target,
                "bucket": rec.storage_bucket,
            },
        )
    PURGED.inc()
    return True


async def purge_due(
    settings: Settings,
    storages: Storages,
    *,
    now: datetime | None = None,
    limit: int | None = None,
    out: TextIO | None = None,
    progress: TextIO | None = None,
) -> int:
    """Purge every due recording this process can claim; returns how many it purged."""
    now = now or datetime.now(UTC)
    worker = identity(settings).worker
    purged = seen = 0
    after: uuid.UUID | None = None
    while limit is None or purged < limit:
        page = await find_due(now, after=after)
        if not page:
            break
        for due in page:
            seen += 1
            if await purge_one(storages, due, worker, now):
                purged += 1
                if out is not None:
                    out.write(due.line("purged") + "\n")
                    out.flush()
            if limit is not None and purged >= limit:
                break
        after = page[-1].rec_id
        if progress is not None:
            progress.write(f"purge: {purged} purged of {seen} due so far\n")
            progress.flush()
    return purged


async def purge_pass(
    settings: Settings,
    *,
    dry_run: bool,
    out: TextIO,
    progress: TextIO,
    now: datetime | None = None,
) -> int:
    """One retention pass for the CLI; prints one line per recording. Returns how many.

    With ``dry_run`` nothing is touched: the lines say what would be purged.
    """
    now = now or datetime.now(UTC)
    if dry_run:
        count = 0
        after: uuid.UUID | None = None
        while page := await find_due(now, after=after):
            for due in page:
                out.write(due.line("would-purge") + "\n")
                count += 1
            after = page[-1].rec_id
        out.flush()
        progress.write(f"purge --dry-run: {count} recording(s) due; nothing was changed.\n")
        progress.flush()
        return count
    progress.write(f"purge: looking for recordings due before {now:%Y-%m-%d %H:%M} UTC\n")
    async with Storages(settings) as storages:
        purged = await purge_due(settings, storages, now=now, out=out, progress=progress)
    left = len(await find_due(now))
    tail = f"; {left} still due (storage failed or another worker holds them)" if left else ""
    progress.write(f"purge: {purged} recording(s) purged{tail}.\n")
    progress.flush()
    return purged


async def purge_job(state: Any, *, force: bool = False) -> int:
    """Worker job: purge what is due, at most every :data:`PURGE_INTERVAL_S` per process."""
    if not _every.due(state, force=force):
        return 0
    count = await purge_due(state.settings, state.storages, limit=WORKER_PASS_LIMIT)
    if count:
        log.info("retention purged %d recording(s)", count)
    return count
