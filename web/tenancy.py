"""Every lookup of an org's object goes through here, with the org: nothing leaks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from web.errors import NotFound
from web.models import ApiKey, Assistant, Call, Org, Recording, WebhookDelivery, WebhookEndpoint


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


async def get_org(org_id: uuid.UUID) -> Org:
    """The org of an authenticated caller or of a row (it always exists)."""
    return await Org.get(id=org_id)


async def recording_of(call: Call) -> Recording | None:
    """The recording row of a call already looked up through its org, if it has one."""
    return await Recording.get_or_none(call_id=call.id)


async def recordings_of(calls: list[Call]) -> dict[uuid.UUID, Recording]:
    """The recording rows of ``calls`` (one query), by call id."""
    rows = await Recording.filter(call_id__in=[c.id for c in calls])
    return {r.call_id: r for r in rows}  # type: ignore[attr-defined]


async def calls_by_ids(org_id: uuid.UUID, ids: Sequence[str | uuid.UUID]) -> list[Call]:
    """The org's calls among ``ids``, in the order of ``ids`` (others' ids are left out)."""
    by_id = {str(c.id): c for c in await Call.filter(id__in=ids, org_id=org_id)}
    return [by_id[str(i)] for i in ids if str(i) in by_id]


async def call_by_signed_link(call_id: str) -> Call:
    """The call a verified signed link names: the signature stands for the org."""
    call = await Call.get_or_none(id=parse_id(call_id, "call"))
    if call is None:
        raise NotFound("No such call.")
    return call


async def api_keys_of(org_id: uuid.UUID) -> list[ApiKey]:
    """The org's API keys, live ones first, newest first."""
    return await ApiKey.filter(org_id=org_id).order_by("revoked_at", "-created_at")


async def get_webhook_endpoint(org_id: uuid.UUID, endpoint_id: str | uuid.UUID) -> WebhookEndpoint:
    """The org's webhook endpoint, or NotFound (also when it belongs to another org)."""
    found = await WebhookEndpoint.get_or_none(
        id=parse_id(endpoint_id, "webhook endpoint"), org_id=org_id
    )
    if found is None:
        raise NotFound("No such webhook endpoint.")
    return found


async def webhook_endpoints_of(org_id: uuid.UUID) -> list[WebhookEndpoint]:
    """The org's webhook endpoints, oldest first."""
    return await WebhookEndpoint.filter(org_id=org_id).order_by("created_at", "id")


async def get_delivery(endpoint: WebhookEndpoint, delivery_id: str | uuid.UUID) -> WebhookDelivery:
    """A delivery of an endpoint already looked up through its org, or NotFound."""
    found = await WebhookDelivery.get_or_none(
        id=parse_id(delivery_id, "delivery"),
        endpoint_id=endpoint.id,
        org_id=endpoint.org_id,  # type: ignore[attr-defined]
    )
    if found is None:
        raise NotFound("No such delivery.")
    return found
