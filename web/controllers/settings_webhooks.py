"""Settings → Webhooks (admins): endpoints, their secret shown once, and the delivery log."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import Provide
from litestar.response import Template

from web.auth import Principal, dashboard_admin, dashboard_principal
from web.errors import DomainError
from web.forms import form_bool
from web.rendering import render
from web.settings import Settings
from web.webhooks import endpoints as svc
from web.webhooks.events import EVENT_TYPES

# How many deliveries each endpoint's log shows on the page.
LOG_ROWS = 20
PAGE = "settings/webhooks.html"
FRAGMENT = "settings/_webhooks.html"


_ADMIN_REASON = "Only admins can see or change webhooks. Ask an admin of your org."


async def _context(principal: Principal, **extra: Any) -> dict[str, Any]:
    rows = await svc.list_endpoints(principal.org_id)
    hooks = []
    for endpoint in rows:
        page = await svc.deliveries(principal.org_id, str(endpoint.id), limit=LOG_ROWS)
        hooks.append(
            {
                **svc.to_dict(endpoint),
                "deliveries": [svc.delivery_to_dict(d) for d in page.items],
            }
        )
    return {
        "principal": principal,
        "nav": "webhooks",
        "hooks": hooks,
        "event_types": EVENT_TYPES,
        "form": {"url": "", "description": "", "events": list(EVENT_TYPES)},
        "error": None,
        "saved": None,
        "new_secret": None,
        "secret_for": None,
        **extra,
    }


async def _page(
    request: Request[Any, Any, Any], principal: Principal, status_code: int = 200, **extra: Any
) -> Template:
    """The page (or its fragment, for HTMX) as it is now, with ``extra`` in its context."""
    ctx = await _context(principal, **extra)
    return render(request, PAGE, FRAGMENT, ctx, status_code=status_code)


class SettingsWebhooksController(Controller):
    """The Webhooks settings page and its actions (HTMX fragments or full pages)."""

    include_in_schema = False
    path = "/settings/webhooks"
    dependencies = {"principal": Provide(dashboard_principal)}
    guards = [dashboard_admin]
    opt = {"admin_reason": _ADMIN_REASON}

    @get("/")
    async def page(self, request: Request[Any, Any, Any], principal: Principal) -> Template:
        """Endpoints, the form to add one, and each endpoint's recent deliveries."""
        return await _page(request, principal)

    @post("/", status_code=200)
    async def create(
        self, request: Request[Any, Any, Any], settings: Settings, principal: Principal
    ) -> Template:
        """Add an endpoint; its secret is shown on this answer only."""
        form = await request.form()
        chosen = [str(e) for e in form.getall("events")] if "events" in form else []
        url = str(form.get("url", ""))
        description = str(form.get("description", ""))
        try:
            endpoint, secret = await svc.create(
                principal.org_id, settings, url, chosen, description
            )
        except DomainError as exc:
            return await _page(
                request,
                principal,
                exc.status_code,
                error=exc.detail,
                form={"url": url, "description": description, "events": chosen},
            )
        return await _page(request, principal, new_secret=secret, secret_for=str(endpoint.id))

    @post("/{webhook_id:str}/roll-secret", status_code=200)
    async def roll(
        self,
        request: Request[Any, Any, Any],
        settings: Settings,
        principal: Principal,
        webhook_id: str,
    ) -> Template:
        """A new secret, shown once; the old one still signs for 24 hours."""
        endpoint, secret = await svc.roll_secret(principal.org_id, webhook_id, settings)
        return await _page(
            request,
            principal,
            new_secret=secret,
            secret_for=str(endpoint.id),
            saved="New secret made. For 24 hours deliveries are signed with both the old and"
            " the new secret.",
        )

    @post("/{webhook_id:str}/enabled", status_code=200)
    async def set_enabled(
        self,
        request: Request[Any, Any, Any],
        settings: Settings,
        principal: Principal,
        webhook_id: str,
    ) -> Template:
        """Turn an endpoint on or off (``enabled=true|false``)."""
        enabled = await form_bool(request, "enabled")
        endpoint = await svc.update(principal.org_id, webhook_id, settings, {"enabled": enabled})
        state = "on" if endpoint.enabled else "off: no new events are queued for it"
        return await _page(request, principal, saved=f"Endpoint {endpoint.url} is {state}.")

    @post("/{webhook_id:str}/delete", status_code=200)
    async def remove(
        self, request: Request[Any, Any, Any], principal: Principal, webhook_id: str
    ) -> Template:
        """Delete an endpoint and its delivery log."""
        await svc.delete(principal.org_id, webhook_id)
        return await _page(request, principal, saved="Endpoint deleted.")

    @post("/{webhook_id:str}/deliveries/{delivery_id:str}/retry", status_code=200)
    async def redeliver(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        webhook_id: str,
        delivery_id: str,
    ) -> Template:
        """Send a delivery again now."""
        d = await svc.retry(principal.org_id, webhook_id, delivery_id)
        saved = f"Delivery of {d.type} ({d.event_id}) queued again."
        return await _page(request, principal, saved=saved)
