"""API v1: recording webhooks (Standard Webhooks) — endpoints and their delivery log (admin)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import Provide
from litestar.params import Parameter
from msgspec import UNSET, Struct, UnsetType

from web.auth import Principal, api_admin, api_principal
from web.models import WebhookEndpoint
from web.openapi import error_responses, given_fields, ok_response
from web.settings import Settings
from web.webhooks import endpoints as svc

EventType = Literal[
    "recording.available",
    "recording.failed",
    "recording.redacted",
    "recording.deleted",
    "recording.purged",
]


class WebhookIn(Struct, forbid_unknown_fields=True):
    """A new endpoint: where to POST, and which events."""

    url: str
    events: list[EventType]
    description: str | None = None


class WebhookPatch(Struct, forbid_unknown_fields=True):
    """Omitted fields stay as they are."""

    url: str | UnsetType = UNSET
    events: list[EventType] | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    enabled: bool | UnsetType = UNSET


class Webhook(Struct):
    """An endpoint (its secret is shown only when it is created or rolled)."""

    id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    created_at: str


class WebhookWithSecret(Webhook):
    """An endpoint with its signing secret: copy it now, it is not shown again."""

    secret: str


class WebhookList(Struct):
    items: list[Webhook]


class Delivery(Struct):
    """One event sent (or being sent) to the endpoint."""

    id: str
    event_id: str
    type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None
    created_at: str
    delivered_at: str | None


class DeliveryList(Struct):
    items: list[Delivery]
    next_cursor: str | None


_EXAMPLE: dict[str, Any] = {
    "id": "6f1c0a52-3b7e-4a55-9a0e-0c8f2b9f1d11",
    "url": "https://hooks.example.com/talkturo",
    "events": ["recording.available", "recording.failed"],
    "description": "CRM sync",
    "enabled": True,
    "created_at": "2026-03-01T09:30:00+00:00",
}
_SECRET_EXAMPLE = {**_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
_DELIVERY_EXAMPLE: dict[str, Any] = {
    "items": [
        {
            "id": "0b9a8d5e-1c2f-4e3a-8b7c-6d5e4f3a2b1c",
            "event_id": "msg_5f0c1e2d3c4b5a69788796a5b4c3d2e1",
            "type": "recording.available",
            "status": "delivered",
            "attempts": 1,
            "last_status_code": 200,
            "last_error": None,
            "next_attempt_at": None,
            "created_at": "2026-03-01T09:41:07+00:00",
            "delivered_at": "2026-03-01T09:41:08+00:00",
        }
    ],
    "next_cursor": None,
}


def _out(endpoint: WebhookEndpoint) -> Webhook:
    return msgspec.convert(svc.to_dict(endpoint), Webhook)


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> WebhookWithSecret:
    return msgspec.convert(svc.to_dict(endpoint, secret), WebhookWithSecret)


class ApiWebhooksController(Controller):
    """Webhook endpoints of the caller's org (admin keys only)."""

    path = "/api/v1/webhooks"
    tags = ["webhooks"]
    dependencies = {"principal": Provide(api_principal)}
    guards = [api_admin]
    opt = {"admin_reason": "Webhooks are managed by admins."}

    @post(
        "/",
        status_code=201,
        responses={
            **ok_response(WebhookWithSecret, "The endpoint and its secret.", _SECRET_EXAMPLE, 201),
            **error_responses(400, 401, 403, 422, 429),
        },
    )
    async def create_webhook(
        self, settings: Settings, principal: Principal, data: WebhookIn
    ) -> WebhookWithSecret:
        """Add an endpoint. Its host must resolve to public addresses only (else 422).

        The ``secret`` (``whsec_…``) signs every delivery; it is in this answer only.
        """
        return _with_secret(
            *await svc.create(
                principal.org_id, settings, data.url, list(data.events), data.description
            )
        )

    @get(
        "/",
        responses={
            **ok_response(WebhookList, "The org's endpoints.", {"items": [_EXAMPLE]}),
            **error_responses(401, 403, 429),
        },
    )
    async def list_webhooks(self, principal: Principal) -> WebhookList:
        """The org's webhook endpoints, oldest first."""
        rows = await svc.list_endpoints(principal.org_id)
        return WebhookList(items=[_out(e) for e in rows])

    @get(
        "/{webhook_id:str}",
        responses={
            **ok_response(Webhook, "The endpoint.", _EXAMPLE),
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    async def get_webhook(self, principal: Principal, webhook_id: str) -> Webhook:
        """One endpoint (without its secret)."""
        return _out(await svc.get_endpoint(principal.org_id, webhook_id))

    @patch(
        "/{webhook_id:str}",
        responses={
            **ok_response(Webhook, "The endpoint as saved.", _EXAMPLE),
            **error_responses(400, 401, 403, 404, 422, 429),
        },
    )
    async def patch_webhook(
        self,
        settings: Settings,
        principal: Principal,
        webhook_id: str,
        data: WebhookPatch,
    ) -> Webhook:
        """Change ``url``, ``events``, ``description`` or ``enabled``."""
        changes = given_fields(data)
        if "events" in changes:
            changes["events"] = list(changes["events"])
        return _out(await svc.update(principal.org_id, webhook_id, settings, changes))

    @delete(
        "/{webhook_id:str}",
        status_code=204,
        responses=error_responses(400, 401, 403, 404, 429),
    )
    async def delete_webhook(self, principal: Principal, webhook_id: str) -> None:
        """Delete the endpoint and its delivery log; nothing more is sent to it."""
        await svc.delete(principal.org_id, webhook_id)

    @post(
        "/{webhook_id:str}/roll-secret",
        status_code=200,
        responses={
            **ok_response(WebhookWithSecret, "The endpoint and its new secret.", _SECRET_EXAMPLE),
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    async def roll_secret(
        self, settings: Settings, principal: Principal, webhook_id: str
    ) -> WebhookWithSecret:
        """A new secret. For 24 hours deliveries carry two signatures, new and old."""
        return _with_secret(*await svc.roll_secret(principal.org_id, webhook_id, settings))

    @get(
        "/{webhook_id:str}/deliveries",
        responses={
            **ok_response(DeliveryList, "Deliveries, newest first.", _DELIVERY_EXAMPLE),
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    async def list_deliveries(
        self,
        principal: Principal,
        webhook_id: str,
        cursor: str | None = None,
        limit: int = Parameter(default=svc.DEFAULT_PAGE, ge=1, le=svc.MAX_PAGE),
    ) -> DeliveryList:
        """The endpoint's deliveries, newest first; ``next_cursor`` pages on."""
        page = await svc.deliveries(principal.org_id, webhook_id, cursor, limit)
        return DeliveryList(
            items=[msgspec.convert(svc.delivery_to_dict(d), Delivery) for d in page.items],
            next_cursor=page.next_cursor,
        )

    @post(
        "/{webhook_id:str}/deliveries/{delivery_id:str}/retry",
        status_code=200,
        responses={
            **ok_response(Delivery, "The delivery, due now.", _DELIVERY_EXAMPLE["items"][0]),
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    async def retry_delivery(
        self, principal: Principal, webhook_id: str, delivery_id: str
    ) -> Delivery:
        """Send the delivery again now (same event id, body built afresh)."""
        d = await svc.retry(principal.org_id, webhook_id, delivery_id)
        return msgspec.convert(svc.delivery_to_dict(d), Delivery)
