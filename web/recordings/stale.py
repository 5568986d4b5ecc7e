"""Objects that must leave storage (the bytes a redaction replaced), deleted until gone.

The list is written in the transaction that moves a recording off the objects
(:func:`web.recordings.lifecycle.redacted`). The request that caused it deletes them at
once; whatever it could not delete (storage down, an object version still locked) stays
on the list, and the worker's ``delete_stale_objects`` job tries again with a growing
delay until every version is gone. Deleting what is already gone is not an error, so two
processes working on the same row do no harm.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Q

from web.interval import Interval
from web.models import StaleObject
from web.services.org_storage import own_bucket
from web.storage import TARGET_ORG, Storage, Storages
from web.tenancy import get_org

log = logging.getLogger("talkturo.recordings")

# The worker looks for due rows this often; a failed row waits longer after each attempt.
SWEEP_INTERVAL_S = 30.0
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
_PAGE = 200
_every = Interval(SWEEP_INTERVAL_S)


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most an hour."""
    delay: timedelta = FIRST_RETRY * (2 ** max(0, attempts - 1))
    return min(delay, MAX_RETRY)


async def _storage(storages: Storages, row: StaleObject) -> Storage:
    if row.storage_target != TARGET_ORG:
        return storages.platform()
    org = await get_org(row.org_id)  # type: ignore[attr-defined]
    return await storages.for_stored(row.storage_target, row.storage_bucket, own_bucket(org))


async def delete_one(storages: Storages, row: StaleObject, now: datetime | None = None) -> bool:
    """Delete every version of the row's object; True (and the row gone) when it worked."""
    try:
        storage = await _storage(storages, row)
        await storage.delete_every_version(row.key)
    except Exception as exc:  # any failure is retried later
        attempts = row.attempts + 1
        when = (now or datetime.now(UTC)) + retry_delay(attempts)
        await StaleObject.filter(id=row.id).update(
            attempts=attempts,
            last_error=str(exc)[:1000] or type(exc).__name__,
            next_attempt_at=when,
        )
        log.warning(
            "could not delete the replaced object %s (attempt %d, again after %s): %s",
            row.key,
            attempts,
            when.isoformat(),
            exc,
        )
        return False
    await StaleObject.filter(id=row.id).delete()
    return True


async def delete_keys(storages: Storages, org_id: uuid.UUID, keys: Iterable[str]) -> int:
    """Delete the listed objects of ``org_id`` now (what fails stays listed); how many went."""
    rows = await StaleObject.filter(org_id=org_id, key__in=[k for k in keys if k])
    done = 0
    for row in rows:
        done += await delete_one(storages, row)
    return done


async def sweep(storages: Storages, *, now: datetime | None = None, limit: int = 1000) -> int:
    """Delete every listed object that is due; returns how many went."""
    now = now or datetime.now(UTC)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    rows = await StaleObject.filter(due).order_by("created_at").limit(min(limit, _PAGE))
    done = 0
    for row in rows:
        done += await delete_one(storages, row, now)
    return done


async def delete_stale_objects(state: Any, *, force: bool = False) -> int:
    """Worker job: the sweep, at most every :data:`SWEEP_INTERVAL_S` per process."""
    if not _every.due(state, force=force):
        return 0
    count = await sweep(state.storages)
    if count:
        log.info("deleted %d replaced object(s)", count)
    return count
