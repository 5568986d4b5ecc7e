"""A recording's states and claims: the only writer of ``Recording.status`` and the claim.

States: ``recording`` (a live stream) or ``processing`` (an upload, or a hung-up stream
whose upload waits for a retry) → ``available`` → ``purged`` or ``deleted``; ``failed`` when
the audio is lost. A stream whose objects are stored at once at its hang-up goes from
``recording`` to ``available`` in one transaction. Every change of state goes through
:func:`transition`, inside a transaction its caller gives (a change that writes nothing
else may be its single UPDATE, see :func:`move`), and passes :func:`_state_changed`, the
one place that notes it.

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
    it commits or rolls back with it (only :func:`move` passes the plain connection, for a
    change that writes nothing else). Returns False when the row no longer matched.
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


def _records_event(to: RecordingStatus, note: Mapping[str, Any] | None) -> bool:
    """Whether :func:`_state_changed` writes beside a change to ``to`` (a webhook event)."""
    return bool((note or {}).get("webhook_event") or _WEBHOOK_EVENTS.get(to))


async def move(
    rec: Recording, to: RecordingStatus, *, note: Mapping[str, Any] | None = None, **fields: Any
) -> bool:
    """:func:`transition` in a transaction of its own.

    A change that writes nothing beside the row (no webhook event) is one UPDATE, atomic
    by itself: it runs without BEGIN and COMMIT, sparing the database round trips.
    """
    if not _records_event(to, note):
        return await transition(rec, to, conn=Recording._meta.db, note=note, **fields)
    async with transaction() as conn:
        return await transition(rec, to, conn=conn, note=note, **fields)


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


def backoff_s(attempts: int) -> float:
    """Delay before retry number ``attempts`` (1-based)."""
    return float(min(MAX_BACKOFF_S, 2 ** max(0, attempts - 1)))


async def postpone(rec: Recording, error: str, measures: Mapping[str, Any]) -> int:
    """A failed upload: count the attempt, set the retry time, release the claim.

    ``measures`` (the finished MP3's ``duration_ms``, ``size_bytes``, ``sha256`` and
    ``redactions``) are kept on the row: the retry publishes the spool as they describe it.
    The row stays (or becomes) ``processing``; returns the number of attempts so far.
    """
    fresh = await Recording.get(id=rec.id)
    attempts = fresh.upload_attempts + 1
    fields: dict[str, Any] = {
        **measures,
        "upload_attempts": attempts,
        "last_error": error[:1000],
        "next_attempt_at": datetime.now(UTC) + timedelta(seconds=backoff_s(attempts)),
        "claimed_by": None,
        "claimed_until": None,
    }
    if RecordingStatus(fresh.status) is RecordingStatus.PROCESSING:
        await Recording.filter(id=rec.id).update(**fields)
    else:
        await move(rec, RecordingStatus.PROCESSING, **fields)
    return attempts


async def mark_available(
    rec: Recording,
    *,
    duration_ms: int,
    size_bytes: int,
    sha256: str,
    redactions: Sequence[Mapping[str, Any]] = (),
    purge_at: datetime | None,
) -> None:
    """The objects are stored: the recording is ``available`` and the call has one.

    The row with its measures, the call and the webhook event commit in one transaction.
    Recordings that become available at the same moment (many calls hanging up at once)
    share it: one commit, one sync to disk, instead of one each in turn.
    """
    fields: dict[str, Any] = {
        "duration_ms": duration_ms,
        "size_bytes": size_bytes,
        "sha256": sha256,
        "redactions": [dict(span) for span in redactions],
        "purge_at": purge_at,
        "spool_path": "",
        "multipart_upload_id": None,
        "next_attempt_at": None,
        "last_error": "",
        "claimed_by": None,
        "claimed_until": None,
    }
    await _available_commits().add(rec, fields)


_Waiting = tuple[Recording, dict[str, Any], "asyncio.Future[None]"]


async def _make_available(conn: BaseDBAsyncClient, batch: Sequence[_Waiting]) -> None:
    """Each recording of ``batch`` ``available``, and their calls have one (on ``conn``)."""
    for rec, fields, _ in batch:
        await transition(
            rec,
            RecordingStatus.AVAILABLE,
            conn=conn,
            note={"duration_ms": fields["duration_ms"]},
            available_at=datetime.now(UTC),
            **fields,
        )
    calls = [rec.call_id for rec, _, _ in batch]  # type: ignore[attr-defined]
    await Call.filter(id__in=calls).using_db(conn).update(has_recording=True)


class _AvailableCommits:
    """Group commit of :func:`mark_available`: whoever waits while a commit runs goes next.

    A lone recording commits at once; while one transaction runs, the next ones queue and
    then commit together. If a shared transaction fails, each of its recordings is tried
    again in a transaction of its own, so one bad row fails only itself.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: list[_Waiting] = []
        self.task: asyncio.Task[None] | None = None

    async def add(self, rec: Recording, fields: dict[str, Any]) -> None:
        entry: _Waiting = (rec, fields, self.loop.create_future())
        self.waiting.append(entry)
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._run())
        try:
            await asyncio.shield(entry[2])
        except asyncio.CancelledError:
            # Not taken yet: nothing is written (as if the transaction never began).
            if entry in self.waiting:
                self.waiting.remove(entry)
            raise

    async def _run(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting, []
            try:
                await self._commit(batch)
            except BaseException as exc:
                # Cancelled (the loop is closing): nobody is left waiting on a commit.
                queued, self.waiting = self.waiting, []
                _settle(batch + queued, exc)
                raise

    @staticmethod
    async def _commit(batch: list[_Waiting]) -> None:
        try:
            async with transaction() as conn:
                await _make_available(conn, batch)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch, exc)
                return
            log.warning("a shared commit of %d recordings failed; each alone", len(batch))
            for entry in batch:
                try:
                    async with transaction() as conn:
                        await _make_available(conn, [entry])
                except Exception as alone:
                    _settle([entry], alone)
                else:
                    _settle([entry], None)
        else:
            _settle(batch, None)


def _settle(entries: list[_Waiting], error: BaseException | None) -> None:
    for _, _, done in entries:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        elif isinstance(error, asyncio.CancelledError):
            done.cancel()
        else:
            done.set_exception(error)


_COMMITS: _AvailableCommits | None = None


def _available_commits() -> _AvailableCommits:
    """The group commit of this event loop (a new loop, as in tests, gets its own)."""
    global _COMMITS
    loop = asyncio.get_running_loop()
    if _COMMITS is None or _COMMITS.loop is not loop:
        _COMMITS = _AvailableCommits(loop)
    return _COMMITS


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
