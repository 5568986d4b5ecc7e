"""An org's webhook endpoints: create, change, roll the secret, and their delivery log.

Every lookup takes the org, so another org's endpoint or delivery is simply not found.
The signing secret is stored encrypted and shown only when it is made (create, roll).
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Q

from web import netguard
from web.errors import InvalidInput
from web.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from web.security import decrypt_secret, encrypt_secret
from web.settings import Settings
from web.tenancy import get_delivery, get_webhook_endpoint, webhook_endpoints_of
from web.webhooks.events import EVENT_TYPES

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# After a roll the previous secret keeps signing for this long.
PREVIOUS_SECRET_GRACE = timedelta(hours=24)
MAX_URL = 2000
MAX_DESCRIPTION = 500
DEFAULT_PAGE = 50
MAX_PAGE = 100


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes (Standard Webhooks' secret format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_events(events: Any) -> list[str]:
    """The subscribed events as a list in the contract's order, or InvalidInput."""
    if not isinstance(events, list) or not events:
        raise InvalidInput(f"events must be a non-empty list of: {', '.join(EVENT_TYPES)}.")
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(f"Unknown event {unknown[0]!r}; events are: {', '.join(EVENT_TYPES)}.")
    return [e for e in EVENT_TYPES if e in events]


def check_description(description: Any) -> str:
    """A description of at most 500 characters."""
    text = "" if description is None else str(description).strip()
    if len(text) > MAX_DESCRIPTION:
        raise InvalidInput(f"description must be at most {MAX_DESCRIPTION} characters.")
    return text


async def check_url(url: Any, settings: Settings) -> str:
    """An http(s) URL whose host is a public address (the address guard), or 4xx."""
    text = str(url or "").strip()
    if not text or len(text) > MAX_URL:
        raise InvalidInput(f"url must be an http(s) URL of at most {MAX_URL} characters.")
    await netguard.check_url(text, field="url", allow_private=settings.endpoints.allow_private)
    return text


def to_dict(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    """The API shape of an endpoint; ``secret`` only when it was just made."""
    out: dict[str, Any] = {
        "id": str(endpoint.id),
        "url": endpoint.url,
        "events": list(endpoint.events or []),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "created_at": endpoint.created_at.isoformat(),
    }
    if secret is not None:
        out["secret"] = secret
    return out


def delivery_to_dict(d: WebhookDelivery) -> dict[str, Any]:
    """The API shape of one delivery."""
    return {
        "id": str(d.id),
        "event_id": d.event_id,
        "type": d.type,
        "status": str(DeliveryStatus(d.status).value),
        "attempts": d.attempts,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error or None,
        "next_attempt_at": (
            d.next_attempt_at.isoformat()
            if d.next_attempt_at and d.status == DeliveryStatus.PENDING
            else None
        ),
        "created_at": d.created_at.isoformat(),
        "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
    }


async def get_endpoint(org_id: uuid.UUID, endpoint_id: str | uuid.UUID) -> WebhookEndpoint:
    """The org's endpoint, or NotFound (also when it belongs to another org)."""
    return await get_webhook_endpoint(org_id, endpoint_id)


async def list_endpoints(org_id: uuid.UUID) -> list[WebhookEndpoint]:
    """The org's endpoints, oldest first."""
    return await webhook_endpoints_of(org_id)


async def create(
    org_id: uuid.UUID,
    settings: Settings,
    url: Any,
    events: Any,
    description: Any = None,
) -> tuple[WebhookEndpoint, str]:
    """A new enabled endpoint and its secret (the only time the secret is returned)."""
    clean_events = check_events(events)
    clean_description = check_description(description)
    clean_url = await check_url(url, settings)
    secret = new_secret()
    endpoint = await WebhookEndpoint.create(
        org_id=org_id,
        url=clean_url,
        events=clean_events,
        description=clean_description,
        enabled=True,
        secret_encrypted=encrypt_secret(settings.secret_key, secret),
    )
    return endpoint, secret


async def update(
    org_id: uuid.UUID, endpoint_id: str, settings: Settings, changes: dict[str, Any]
) -> WebhookEndpoint:
    """Change ``url``, ``events``, ``description`` and/or ``enabled`` (keys present)."""
    endpoint = await get_endpoint(org_id, endpoint_id)
    fields: list[str] = []
    if "events" in changes:
        endpoint.events = check_events(changes["events"])
        fields.append("events")
    if "description" in changes:
        endpoint.description = check_description(changes["description"])
        fields.append("description")
    if "enabled" in changes:
        if not isinstance(changes["enabled"], bool):
            raise InvalidInput("enabled must be true or false.")
        endpoint.enabled = changes["enabled"]
        fields.append("enabled")
    if "url" in changes:
        endpoint.url = await check_url(changes["url"], settings)
        fields.append("url")
    if fields:
        await endpoint.save(update_fields=[*fields, "updated_at"])
    return endpoint


async def delete(org_id: uuid.UUID, endpoint_id: str) -> None:
    """Delete the endpoint and its delivery log."""
    endpoint = await get_endpoint(org_id, endpoint_id)
    await endpoint.delete()


async def roll_secret(
    org_id: uuid.UUID, endpoint_id: str, settings: Settings
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the previous one keeps signing beside it for 24 hours."""
    endpoint = await get_endpoint(org_id, endpoint_id)
    secret = new_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_until = datetime.now(UTC) + PREVIOUS_SECRET_GRACE
    endpoint.secret_encrypted = encrypt_secret(settings.secret_key, secret)
    await endpoint.save(
        update_fields=[
            "previous_secret_encrypted",
            "previous_secret_until",
            "secret_encrypted",
            "updated_at",
        ]
    )
    return endpoint, secret


def signing_secrets(endpoint: WebhookEndpoint, secret_key: str, now: datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous within 24 h."""
    out = [decrypt_secret(secret_key, endpoint.secret_encrypted)]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_until
        and endpoint.previous_secret_until > now
    ):
        out.append(decrypt_secret(secret_key, endpoint.previous_secret_encrypted))
    return out


@dataclass(frozen=True)
class DeliveryPage:
    """One page of an endpoint's delivery log, newest first."""

    items: list[WebhookDelivery]
    next_cursor: str | None


def _cursor(d: WebhookDelivery) -> str:
    raw = f"{d.created_at.isoformat()}|{d.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        return datetime.fromisoformat(when), uuid.UUID(ident)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this API gave out.") from None


async def deliveries(
    org_id: uuid.UUID, endpoint_id: str, cursor: str | None = None, limit: int = DEFAULT_PAGE
) -> DeliveryPage:
    """The endpoint's deliveries, newest first, ``limit`` at a time."""
    endpoint = await get_endpoint(org_id, endpoint_id)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}.")
    query = WebhookDelivery.filter(endpoint_id=endpoint.id, org_id=org_id)
    if cursor:
        when, ident = _parse_cursor(cursor)
        query = query.filter(Q(created_at__lt=when) | Q(created_at=when, id__lt=ident))
    rows = await query.order_by("-created_at", "-id").limit(limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(rows, _cursor(rows[-1]) if more and rows else None)


async def retry(org_id: uuid.UUID, endpoint_id: str, delivery_id: str) -> WebhookDelivery:
    """Send a delivery again now (whatever its state); the event id stays the same."""
    endpoint = await get_endpoint(org_id, endpoint_id)
    found = await get_delivery(endpoint, delivery_id)
    await WebhookDelivery.filter(id=found.id).update(
        status=DeliveryStatus.PENDING, next_attempt_at=datetime.now(UTC)
    )
    return await WebhookDelivery.get(id=found.id)
