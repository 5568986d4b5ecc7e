"""Every lookup of an org's object goes through here, with the org: nothing leaks."""

from __future__ import annotations

import uuid

from web.errors import NotFound
from web.models import Assistant, Call


def parse_id(raw: str | uuid.UUID, what: str) -> uuid.UUID:
    """A UUID from a path, or NotFound (a malformed id names nothing)."""
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw)
    except (ValueError, AttributeError):
        raise NotFound(f"No such {what}.") from None


async def get_call(org_id: uuid.UUID, call_id: str | uuid.UUID) -> Call:
    """The org's call, or NotFound (also when it belongs to another org)."""
    call = await Call.get_or_none(id=parse_id(call_id, "call"), org_id=org_id)
    if call is None:
        raise NotFound("No such call.")
    return call


async def get_assistant(org_id: uuid.UUID, assistant_id: str | uuid.UUID) -> Assistant:
    """The org's assistant, or NotFound (also when it belongs to another org)."""
    assistant = await Assistant.get_or_none(id=parse_id(assistant_id, "assistant"), org_id=org_id)
    if assistant is None:
        raise NotFound("No such assistant.")
    return assistant
