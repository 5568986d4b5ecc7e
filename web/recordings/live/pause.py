"""Pausing a live recording from any process: the wish goes through the recording's row.

The API (on whichever process the request reaches) writes ``pause_requested`` and bumps
``pause_version``; the session holding the stream polls the version, applies the change to
its recorder at the current call time, and writes back the spans and the version applied.
The API waits (briefly) for that, so its answer carries the span as stored.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tortoise.expressions import F

from web.auth import Principal
from web.errors import Conflict
from web.models import Recording, RecordingStatus
from web.services import audit
from web.tenancy import get_call

# How often a live session looks for a pause request (the contract allows 500 ms).
POLL_S = 0.2
# How long the API waits for the holding session to apply a request before answering.
APPLY_WAIT_S = 5.0

NOT_LIVE = "No media stream is live for this call: only a live recording can be paused."


async def request(org_id: uuid.UUID, call_id: str, paused: bool, principal: Principal) -> Any:
    """Ask the holding session to pause (or resume); the state once applied. Idempotent."""
    call = await get_call(org_id, call_id)
    rec = await Recording.get_or_none(call_id=call.id)
    if rec is None or rec.status != RecordingStatus.RECORDING:
        raise Conflict(NOT_LIVE)
    if rec.pause_requested != paused:
        changed = await Recording.filter(
            id=rec.id, status=RecordingStatus.RECORDING, pause_requested=not paused
        ).update(pause_requested=paused, pause_version=F("pause_version") + 1)
        if changed:
            action = audit.Action.PAUSE if paused else audit.Action.RESUME
            await audit.record(org_id, call.id, action, principal)
        elif not await Recording.filter(id=rec.id, status=RecordingStatus.RECORDING).exists():
            raise Conflict(NOT_LIVE)
    row = await _applied(rec.id)
    return {"paused": paused, "pauses": list(row.pauses or [])}


async def _applied(rec_id: uuid.UUID) -> Recording:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + APPLY_WAIT_S
    while True:
        row = await Recording.get(id=rec_id)
        if row.pause_applied >= row.pause_version or row.status != RecordingStatus.RECORDING:
            return row
        if loop.time() > deadline:
            return row
        await asyncio.sleep(0.02)


async def wished(rec_id: uuid.UUID, known_version: int) -> tuple[int, bool] | None:
    """A newer pause request than ``known_version``: (version, paused), else None."""
    rows = await Recording.filter(id=rec_id, pause_version__gt=known_version).values_list(
        "pause_version", "pause_requested"
    )
    return (int(rows[0][0]), bool(rows[0][1])) if rows else None


async def applied(rec_id: uuid.UUID, version: int, pauses: list[dict[str, Any]]) -> None:
    """The holding session applied ``version``: store the spans as they now are."""
    await Recording.filter(id=rec_id).update(pause_applied=version, pauses=pauses)
