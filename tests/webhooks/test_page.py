"""Settings → Webhooks: admins manage endpoints; the secret is shown once; agents get 403."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Tenant, login
from tests.webhooks.conftest import Receiver, deliver_until, new_call, upload
from web.models import WebhookDelivery, WebhookEndpoint
from web.webhooks.delivery import Dispatcher

SECRET = re.compile(r"data-new-secret>(whsec_[A-Za-z0-9+/=]+)</code>")


async def test_admin_manages_endpoints_and_redelivers_from_the_page(
    client: httpx.AsyncClient,
    tenant: Tenant,
    receiver: Receiver,
    dispatcher: Dispatcher,
    speech_wav: bytes,
    db_backend: str,
) -> None:
    token = await login(client, tenant.admin.email)
    page = await client.get("/settings/webhooks")
    assert page.status_code == 200
    assert 'href="/settings/webhooks" aria-current="page"' in page.text
    assert "No endpoints yet." in page.text
    assert "<script>" not in page.text
    assert "onclick" not in page.text
    assert '<script src="/static/js/webhooks.js" defer></script>' in page.text

    refused = await client.post(
        "/settings/webhooks",
        data={"_csrf_token": token, "url": "ftp://example.com/", "events": "recording.failed"},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 422
    assert 'role="alert"' in refused.text
    assert "url must be an http/https URL" in refused.text

    created = await client.post(
        "/settings/webhooks",
        data={
            "_csrf_token": token,
            "url": receiver.url,
            "description": "CRM",
            "events": ["recording.available", "recording.deleted"],
        },
    )
    assert created.status_code == 200, created.text
    match = SECRET.search(created.text)
    assert match is not None
    secret = match.group(1)
    assert "data-copy=" in created.text
    endpoint = await WebhookEndpoint.get(org_id=tenant.org.id)
    assert endpoint.events == ["recording.available", "recording.deleted"]
    again = await client.get("/settings/webhooks")
    assert secret not in again.text
    assert receiver.url in again.text

    rolled = await client.post(
        f"/settings/webhooks/{endpoint.id}/roll-secret", data={"_csrf_token": token}
    )
    assert rolled.status_code == 200
    new = SECRET.search(rolled.text)
    assert new is not None
    assert new.group(1) != secret

    await upload(client, tenant, await new_call(client, tenant), speech_wav)
    await deliver_until(dispatcher, lambda: receiver.received)
    log = await client.get("/settings/webhooks")
    row = await WebhookDelivery.get(endpoint_id=endpoint.id)
    assert f'data-delivery-id="{row.id}" data-status="delivered"' in log.text
    assert "HTTP 200" in log.text

    redo = await client.post(
        f"/settings/webhooks/{endpoint.id}/deliveries/{row.id}/retry",
        data={"_csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert redo.status_code == 200
    assert f'data-delivery-id="{row.id}" data-status="pending"' in redo.text
    await deliver_until(dispatcher, lambda: len(receiver.received) == 2)
    assert receiver.ids()[0] == receiver.ids()[1]

    off = await client.post(
        f"/settings/webhooks/{endpoint.id}/enabled",
        data={"_csrf_token": token, "enabled": "false"},
    )
    assert off.status_code == 200
    assert not (await WebhookEndpoint.get(id=endpoint.id)).enabled
    gone = await client.post(
        f"/settings/webhooks/{endpoint.id}/delete", data={"_csrf_token": token}
    )
    assert gone.status_code == 200
    assert await WebhookEndpoint.filter(org_id=tenant.org.id).count() == 0


async def test_agents_get_403_and_other_orgs_404_on_the_page(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, db_backend: str
) -> None:
    token = await login(client, other_tenant.admin.email)
    await client.post(
        "/settings/webhooks",
        data={"_csrf_token": token, "url": "https://8.8.8.8/x", "events": "recording.failed"},
    )
    theirs = await WebhookEndpoint.get(org_id=other_tenant.org.id)
    client.cookies.clear()

    token = await login(client, tenant.agent.email)
    page = await client.get("/settings/webhooks")
    assert page.status_code == 403
    assert "Only admins" in page.text
    for action in ("roll-secret", "delete", "enabled"):
        resp = await client.post(
            f"/settings/webhooks/{theirs.id}/{action}",
            data={"_csrf_token": token, "enabled": "false"},
        )
        assert resp.status_code == 403
    client.cookies.clear()

    token = await login(client, tenant.admin.email)
    assert "8.8.8.8" not in (await client.get("/settings/webhooks")).text
    for action in ("roll-secret", "delete", "enabled"):
        resp = await client.post(
            f"/settings/webhooks/{theirs.id}/{action}",
            data={"_csrf_token": token, "enabled": "false"},
        )
        assert resp.status_code == 404, action
    fake = "00000000-0000-4000-8000-000000000000"
    resp = await client.post(
        f"/settings/webhooks/{theirs.id}/deliveries/{fake}/retry", data={"_csrf_token": token}
    )
    assert resp.status_code == 404
    still = await WebhookEndpoint.get(id=theirs.id)
    assert still.enabled
    assert still.secret_encrypted == theirs.secret_encrypted
