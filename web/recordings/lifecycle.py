"""A recording's states and claims: the only writer of ``Recording.status`` and the claim.

States: ``recording`` (a live stream) or ``processing`` (an upload, or a stream that hung
up) → ``available`` → ``purged`` or ``deleted``; ``failed`` when the audio is lost. Every
change of state goes through :func:`transition`, inside a transaction its caller gives, and
passes :func:`_state_changed`, the one place that notes it.

Work on a row is claimed in the database (``claimed_by``/``claimed_until``), never only in
memory, so any number of processes can run side by side; :func:`claim` is the one way to
take a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from web.models import Call, Recording, RecordingStatus, StaleObject
from web.recordings.node import Identity
from web.recordings.spool import remove_spool
from web.webhooks import events
from web.webhooks import outbox as webhook_outbox

log = logging.getLogger("talkturo.recordings")
status_log = logging.getLogger("talkturo.recording")

# A claim lasts this long unless renewed; live streams renew it every HEARTBEAT_S.
LEASE = timedelta(seconds=30)
HEARTBEAT_S = 5.0
# Retry delays after a failed upload: 1 s, 2 s, 4 s, ... at most a minute.
MAX_BACKOFF_S = 60.0

transaction = in_transaction


def log_status(call_id: Any, org_id: Any, status: RecordingStatus, **extra: Any) -> None:
    """One structured log line per state change of a recording."""
    status_log.info(
        "recording of call %s is %s",
        call_id,
        status.value,
        extra={"call_id": str(call_id), "org_id": str(org_id), "status": status.value, **extra},
    )


# The states a customer's webhook endpoints hear about, and the event each one is.
_WEBHOOK_EVENTS = {
    RecordingStatus.AVAILABLE: events.RECORDING_AVAILABLE,
    RecordingStatus.FAILED: events.RECORDING_FAILED,
    RecordingStatus.DELETED: events.RECORDING_DELETED,
    RecordingStatus.PURGED: events.RECORDING_PURGED,
}


async def _state_changed(
    conn: BaseDBAsyncClient, rec: Recording, to: RecordingStatus, note: Mapping[str, Any]
) -> None:
    """Every state change passes here, inside its transaction (``conn``); it logs the change.

    An event that must commit or roll back with the change is recorded here, on ``conn``:
    the webhook outbox gets its event exactly when the change commits.
    """
    # A change that keeps the state names its own event (a redaction stays available).
    event = note.get("webhook_event") or _WEBHOOK_EVENTS.get(to)
    if event is not None:
        await webhook_outbox.record(event, rec.org_id, rec.call_id, using_db=conn)  # type: ignore[attr-defined]
    log_status(rec.call_id, rec.org_id, to, **note)  # type: ignore[attr-defined]


async def transition(
    rec: Recording,
    to: RecordingStatus,
    *,
    conn: BaseDBAsyncClient,
    where: Q | None = None,
    note: Mapping[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Move ``rec`` to state ``to`` (with ``fields``) if its row still matches ``where``.

    Runs on ``conn``, a transaction the caller opened, so whatever the caller writes beside
    it commits or rolls back with it. Returns False when the row no longer matched.
    """
    query = Recording.filter(id=rec.id)
    if where is not None:
        query = query.filter(where)
    changed = await query.using_db(conn).update(status=to, **fields)
    if not changed:
        return False
    rec.status = to
    await _state_changed(conn, rec, to, note or {})
    return True


async def move(rec: Recording, to: RecordingStatus, **fields: Any) -> bool:
    """:func:`transition` in a transaction of its own."""
    async with transaction() as conn:
        return await transition(rec, to, conn=conn, **fields)


async def new_row(
    call: Call,
    status: RecordingStatus,
    me: Identity,
    *,
    storage_target: str,
    storage_bucket: str,
    storage_key: str,
    peaks_key: str,
    spool: Path,
) -> Recording:
    """Create the recording row of ``call``, claimed by this process. IntegrityError if one exists.

    The row is the lock: a call has at most one, so a second stream or upload is refused.
    """
    now = datetime.now(UTC)
    async with transaction() as conn:
        row = await Recording.create(
            using_db=conn,
            call_id=call.id,
            org_id=call.org_id,  # type: ignore[attr-defined]
            status=status,
            storage_target=storage_target,
            storage_bucket=storage_bucket,
            storage_key=storage_key,
            peaks_key=peaks_key,
            spool_path=str(spool),
            spool_node=me.node,
            last_activity_at=now,
            claimed_by=me.worker,
            claimed_until=now + LEASE,
        )
        await _state_changed(conn, row, status, {})
    return row


async def drop_row(rec: Recording) -> None:
    """Forget a recording that never got audio (and its spool)."""
    await Recording.filter(id=rec.id).delete()
    if rec.spool_path:
        await asyncio.to_thread(remove_spool, Path(rec.spool_path))


def free_claim(now: datetime) -> Q:
    """Rows nobody holds: never claimed, released, or whose claim has expired by ``now``."""
    return Q(claimed_by=None) | Q(claimed_until=None) | Q(claimed_until__lt=now)


_FREE = object()


async def claim(
    rec_id: uuid.UUID,
    worker: str,
    *,
    lease: timedelta = LEASE,
    now: datetime | None = None,
    where: Q | None = None,
    from_owner: object = _FREE,
    **match: Any,
) -> bool:
    """Take a row for ``worker`` (atomically); True if this process got it.

    By default only a free or expired claim is taken; ``from_owner`` takes the row from
    that (dead) owner instead, only if nobody changed its claim in between.
    """
    now = now or datetime.now(UTC)
    query = Recording.filter(id=rec_id, **match)
    if from_owner is _FREE:
        query = query.filter(free_claim(now))
    else:
        query = query.filter(claimed_by=from_owner)
    if where is not None:
        query = query.filter(where)
    taken = await query.update(claimed_by=worker, claimed_until=now + lease)
    return bool(taken)


async def renew(rec_id: uuid.UUID, worker: str, last_activity: datetime | None) -> None:
    """Extend this process's claim on a row (and note the stream's last activity)."""
    update: dict[str, Any] = {"claimed_until": datetime.now(UTC) + LEASE}
    if last_activity is not None:
        update["last_activity_at"] = last_activity
    await Recording.filter(id=rec_id, claimed_by=worker).update(**update)


@contextlib.asynccontextmanager
async def held(rec_id: uuid.UUID, worker: str) -> AsyncIterator[None]:
    """Keep this process's claim on a row renewed for as long as the block runs."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await renew(rec_id, worker, None)
            except Exception:  # a database hiccup: the next beat tries again
                log.warning("could not renew the claim on recording %s", rec_id, exc_info=True)

    keeper = asyncio.create_task(beat())
    try:
        yield
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def release(rec_id: uuid.UUID, worker: str, **fields: Any) -> None:
    """Give up this process's claim on a row, so a worker can take it at once."""
    await Recording.filter(id=rec_id, claimed_by=worker).update(
        claimed_by=None, claimed_until=None, **fields
    )


async def note_error(rec: Recording, error: str) -> None:
    """Say why a recording in progress is stuck (shown in the panel); its state is unchanged."""
    rec.last_error = error[:1000]
    await Recording.filter(id=rec.id).update(last_error=rec.last_error)


async def hang_up(rec: Recording) -> None:
    """A live stream ended: the recording is ``processing`` from now on."""
    await move(rec, RecordingStatus.PROCESSING)


async def measured(
    rec: Recording,
    duration_ms: int,
    size_bytes: int,
    sha256: str,
    *,
    redactions: list[dict[str, Any]] | None = None,
) -> None:
    """Note a finished MP3's measures (and the spans its encoder silenced).

    A row still ``recording`` becomes ``processing``.
    """
    fields: dict[str, Any] = {
        "duration_ms": duration_ms,
        "size_bytes": size_bytes,
        "sha256": sha256,
        "redactions": redactions or [],
    }
    if RecordingStatus(rec.status) is RecordingStatus.PROCESSING:
        await Recording.filter(id=rec.id).update(**fields)
        return
    await move(rec, RecordingStatus.PROCESSING, **fields)


def backoff_s(attempts: int) -> float:
    """Delay before retry number ``attempts`` (1-based)."""
    return float(min(MAX_BACKOFF_S, 2 ** max(0, attempts - 1)))


async def postpone(rec: Recording, error: str) -> int:
    """A failed upload: count the attempt, set the retry time, release the claim.

    The row stays ``processing``; returns the number of attempts so far.
    """
    fresh = await Recording.get(id=rec.id)
    attempts = fresh.upload_attempts + 1
    await Recording.filter(id=rec.id).update(
        upload_attempts=attempts,
        last_error=error[:1000],
        next_attempt_at=datetime.now(UTC) + timedelta(seconds=backoff_s(attempts)),
        claimed_by=None,
        claimed_until=None,
    )
    return attempts


async def mark_available(
    rec: Recording,
    *,
    duration_ms: int,
    size_bytes: int,
    sha256: str,
    purge_at: datetime | None,
) -> None:
    """The objects are stored: the recording is ``available`` and the call has one."""
    async with transaction() as conn:
        await transition(
            rec,
            RecordingStatus.AVAILABLE,
            conn=conn,
            note={"duration_ms": duration_ms},
            duration_ms=duration_ms,
            size_bytes=size_bytes,
            sha256=sha256,
            purge_at=purge_at,
            available_at=datetime.now(UTC),
            spool_path="",
            multipart_upload_id=None,
            next_attempt_at=None,
            last_error="",
            claimed_by=None,
            claimed_until=None,
        )
        await Call.filter(id=rec.call_id).using_db(conn).update(has_recording=True)  # type: ignore[attr-defined]


async def redacted(
    rec: Recording,
    *,
    old_key: str,
    storage_key: str,
    peaks_key: str,
    size_bytes: int,
    sha256: str,
    redactions: list[dict[str, Any]],
    stale_keys: Sequence[str] = (),
) -> bool:
    """The redacted objects are stored under new keys: point the row at them.

    Only while the row is still ``available``, not under legal hold and still on
    ``old_key`` (a concurrent redaction wins once). The ``recording.redacted`` event is
    recorded with the change, and ``stale_keys`` (the replaced objects) are put on the list
    of objects to delete, so that their deletion survives a failure or a crash.
    """
    async with transaction() as conn:
        moved = await transition(
            rec,
            RecordingStatus.AVAILABLE,
            conn=conn,
            where=Q(status=RecordingStatus.AVAILABLE, legal_hold=False, storage_key=old_key),
            note={"webhook_event": events.RECORDING_REDACTED, "spans": len(redactions)},
            storage_key=storage_key,
            peaks_key=peaks_key,
            size_bytes=size_bytes,
            sha256=sha256,
            redactions=redactions,
        )
        if moved:
            for key in stale_keys:
                if key:
                    await StaleObject.create(
                        using_db=conn,
                        org_id=rec.org_id,  # type: ignore[attr-defined]
                        storage_target=rec.storage_target,
                        storage_bucket=rec.storage_bucket,
                        key=key,
                        reason="redacted",
                    )
        return moved


async def fail(rec: Recording, error: str) -> None:
    """The audio is lost: the recording is ``failed`` with why."""
    log.error("recording of call %s failed: %s", rec.call_id, error)  # type: ignore[attr-defined]
    await move(
        rec,
        RecordingStatus.FAILED,
        note={"error": error},
        last_error=error,
        claimed_by=None,
        claimed_until=None,
    )


async def purged(rec: Recording, worker: str, *, conn: BaseDBAsyncClient) -> bool:
    """Retention deleted the objects: ``purged``, if ``worker`` still holds the available row."""
    done = await transition(
        rec,
        RecordingStatus.PURGED,
        conn=conn,
        where=Q(claimed_by=worker, status=RecordingStatus.AVAILABLE),
        purged_at=datetime.now(UTC),
        claimed_by=None,
        claimed_until=None,
        last_error="",
    )
    if done:
        await Call.filter(id=rec.call_id).using_db(conn).update(has_recording=False)  # type: ignore[attr-defined]
    return done


async def deleted(rec: Recording, *, conn: BaseDBAsyncClient) -> None:
    """An admin deleted the objects: ``deleted`` now, and the call has no recording."""
    now = datetime.now(UTC)
    await transition(rec, RecordingStatus.DELETED, conn=conn, deleted_at=now)
    rec.deleted_at = now
    await Call.filter(id=rec.call_id).using_db(conn).update(has_recording=False)  # type: ignore[attr-defined]
