"""How long each plan keeps recordings."""

from __future__ import annotations

from datetime import datetime, timedelta

from web.models import Org, Plan

PLAN_RETENTION_DAYS: dict[Plan, int | None] = {
    Plan.FREE: 30,
    Plan.PRO: 365,
    Plan.BUSINESS: 730,
    Plan.ENTERPRISE: None,
}


def retention_days(org: Org) -> int | None:
    """Days a recording is kept, or None for forever (enterprise without a limit)."""
    if org.plan == Plan.ENTERPRISE:
        return org.retention_days if org.retention_set else None
    return PLAN_RETENTION_DAYS[Plan(org.plan)]


def purge_date(org: Org, started_at: datetime) -> datetime | None:
    """When a recording of a call started at ``started_at`` is purged, if ever."""
    days = retention_days(org)
    return None if days is None else started_at + timedelta(days=days)
