"""Assistants and their recording switches (recording, keypad-tone redaction)."""

from __future__ import annotations

import uuid
from typing import Any

from web.errors import InvalidInput
from web.models import Assistant
from web.tenancy import get_assistant


def assistant_to_dict(a: Assistant) -> dict[str, Any]:
    """The API shape of an assistant."""
    return {
        "id": str(a.id),
        "name": a.name,
        "recording_enabled": a.recording_enabled,
        "redact_dtmf": a.redact_dtmf,
        "created_at": a.created_at.isoformat(),
    }


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("name must be 1 to 200 characters.")
    return name


async def list_assistants(org_id: uuid.UUID) -> list[Assistant]:
    """The org's assistants by name."""
    return await Assistant.filter(org_id=org_id).order_by("name", "id")


async def create_assistant(
    org_id: uuid.UUID, name: str, recording_enabled: bool, redact_dtmf: bool = True
) -> Assistant:
    """A new assistant of the org."""
    return await Assistant.create(
        org_id=org_id,
        name=_clean_name(name),
        recording_enabled=recording_enabled,
        redact_dtmf=redact_dtmf,
    )


async def update_assistant(
    org_id: uuid.UUID,
    assistant_id: str | uuid.UUID,
    *,
    recording_enabled: bool | None = None,
    name: str | None = None,
    redact_dtmf: bool | None = None,
) -> Assistant:
    """Change an assistant. Calls already running keep the setting they started with."""
    assistant = await get_assistant(org_id, assistant_id)
    changed: list[str] = []
    if name is not None:
        assistant.name = _clean_name(name)
        changed.append("name")
    if recording_enabled is not None:
        assistant.recording_enabled = recording_enabled
        changed.append("recording_enabled")
    if redact_dtmf is not None:
        assistant.redact_dtmf = redact_dtmf
        changed.append("redact_dtmf")
    if changed:
        await assistant.save(update_fields=changed)
    return assistant
