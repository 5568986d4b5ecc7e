"""The outbox: one delivery row per matching endpoint, written with the state change.

Call :func:`record` inside the transaction that changes the recording's status, so the
event exists exactly when the change does: a crash after the commit loses nothing, a
rollback leaves no event behind.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from web.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from web.webhooks.events import EVENT_TYPES


def new_event_id() -> str:
    """A Standard Webhooks message id: the same on every attempt of one event."""
    return f"msg_{uuid.uuid4().hex}"


async def record(
    event_type: str,
    org_id: Any,
    call_id: Any,
    *,
    using_db: BaseDBAsyncClient | None = None,
) -> int:
    """Queue ``event_type`` about ``call_id`` for every enabled endpoint of ``org_id`` that
    subscribed to it; returns how many deliveries were queued."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event {event_type!r}")
    query = WebhookEndpoint.filter(org_id=org_id, enabled=True)
    if using_db is not None:
        query = query.using_db(using_db)
    endpoints = [e for e in await query if event_type in (e.events or [])]
    if not endpoints:
        return 0
    event_id = new_event_id()
    now = datetime.now(UTC)
    rows = [
        WebhookDelivery(
            id=uuid.uuid4(),
            org_id=org_id,
            endpoint_id=e.id,
            event_id=event_id,
            type=event_type,
            call_id=call_id,
            occurred_at=now,
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
        )
        for e in endpoints
    ]
    await WebhookDelivery.bulk_create(rows, using_db=using_db)
    return len(rows)
