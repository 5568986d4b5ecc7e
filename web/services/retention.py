"""How long each plan keeps recordings, and keeping ``purge_at`` in step with it.

Retention counts from the call's ``started_at``. A change of plan or of an enterprise's
``retention_days`` applies to the org's existing recordings from then on: their
``purge_at`` is recomputed (a recording already purged stays purged).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from web.errors import Conflict, InvalidInput, NotFound
from web.models import Org, Plan, Recording, RecordingStatus
from web.tenancy import get_call, get_org, recording_of

PLAN_RETENTION_DAYS: dict[Plan, int | None] = {
    Plan.FREE: 30,
    Plan.PRO: 365,
    Plan.BUSINESS: 730,
    Plan.ENTERPRISE: None,
}
# An enterprise's own limit: at least a day, at most a century.
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 36500
# Recordings whose purge date still matters (purged and deleted ones have none left).
_LIVE_STATUSES = (RecordingStatus.RECORDING, RecordingStatus.PROCESSING, RecordingStatus.AVAILABLE)
_BATCH = 500


def retention_days(org: Org) -> int | None:
    """Days a recording is kept, or None for forever (enterprise without a limit)."""
    if org.plan == Plan.ENTERPRISE:
        return org.retention_days if org.retention_set else None
    return PLAN_RETENTION_DAYS[Plan(org.plan)]


def purge_date(org: Org, started_at: datetime) -> datetime | None:
    """When a recording of a call started at ``started_at`` is purged, if ever."""
    days = retention_days(org)
    return None if days is None else started_at + timedelta(days=days)


def describe(plan: Plan) -> str:
    """The plan's retention in words, as the Storage page and the README state it."""
    days = PLAN_RETENTION_DAYS[plan]
    if days is None:
        return "set by you (or kept forever)"
    return f"{days} days"


def check_retention_days(value: int | None) -> int | None:
    """An enterprise's ``retention_days`` (None = forever), or InvalidInput."""
    if value is None:
        return None
    if isinstance(value, bool) or not MIN_RETENTION_DAYS <= value <= MAX_RETENTION_DAYS:
        raise InvalidInput(
            f"retention_days must be a whole number of days from {MIN_RETENTION_DAYS}"
            f" to {MAX_RETENTION_DAYS}, or null to keep recordings forever."
        )
    return value


async def recompute_purge_dates(org: Org) -> int:
    """Set ``purge_at`` of every live recording of ``org`` from its current retention.

    Returns how many rows were updated.
    """
    days = retention_days(org)
    if days is None:
        return await Recording.filter(org_id=org.id, status__in=_LIVE_STATUSES).update(
            purge_at=None
        )
    rows = await Recording.filter(org_id=org.id, status__in=_LIVE_STATUSES).values_list(
        "id", "call__started_at"
    )
    delta = timedelta(days=days)
    changed = 0
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        async with in_transaction():
            for rec_id, started_at in batch:
                changed += await Recording.filter(id=rec_id, status__in=_LIVE_STATUSES).update(
                    purge_at=started_at + delta
                )
    return changed


async def change_plan(org_id: uuid.UUID, plan: Plan) -> Org:
    """Put the org on ``plan``; its existing recordings follow the new retention from now on."""
    org = await get_org(org_id)
    org.plan = plan
    await org.save(update_fields=["plan"])
    await recompute_purge_dates(org)
    return org


async def set_retention(org_id: uuid.UUID, days: int | None) -> Org:
    """An enterprise's own retention (None = keep forever); existing recordings follow it."""
    org = await get_org(org_id)
    org.retention_days = check_retention_days(days)
    org.retention_set = True
    await org.save(update_fields=["retention_days", "retention_set"])
    await recompute_purge_dates(org)
    return org


async def set_legal_hold(org_id: uuid.UUID, call_id: str | uuid.UUID, hold: bool) -> Recording:
    """Put the call's recording under legal hold (retention skips it) or release it.

    NotFound when the call (of this org) has no recording; Conflict when it is already gone.
    """
    call = await get_call(org_id, call_id)
    rec = await recording_of(call)
    if rec is None:
        raise NotFound("This call has no recording to hold.")
    if rec.status in (RecordingStatus.PURGED, RecordingStatus.DELETED):
        raise Conflict(f"The recording was already {rec.status.value}; there is nothing to hold.")
    await Recording.filter(id=rec.id).update(legal_hold=hold)
    rec.legal_hold = hold
    return rec
