"""The audit trail of recordings: who listened, downloaded or deleted what, and when."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from web.auth import Principal
from web.models import AuditEvent

# How many events an admin sees in a call's panel.
RECENT_LIMIT = 20


class Action(StrEnum):
    LISTEN = "recording.listen"
    DOWNLOAD = "recording.download"
    DELETE = "recording.delete"
    EXPORT = "recording.export"
    PAUSE = "recording.pause"
    RESUME = "recording.resume"
    REDACT = "recording.redact"


SIGNED_LINK_ACTOR = "signed link"


async def record(
    org_id: uuid.UUID,
    call_id: uuid.UUID,
    action: Action,
    principal: Principal | None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one event; ``principal`` None means a signed link without a key or session."""
    return await AuditEvent.create(
        org_id=org_id,
        call_id=call_id,
        user_id=principal.user_id if principal else None,
        api_key_id=principal.api_key_id if principal else None,
        action=str(action),
        actor=principal.label if principal else SIGNED_LINK_ACTOR,
        detail=detail or {},
    )


async def recent_for_call(
    org_id: uuid.UUID, call_id: uuid.UUID, limit: int = RECENT_LIMIT
) -> list[AuditEvent]:
    """The call's latest events, newest first (scoped by org)."""
    return (
        await AuditEvent.filter(org_id=org_id, call_id=call_id)
        .order_by("-created_at", "-id")
        .limit(limit)
    )
