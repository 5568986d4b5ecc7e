"""The webhook endpoints API: shapes per the contract, admins only, orgs apart, no SSRF."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.conftest import Tenant
from tests.webhooks.conftest import add_endpoint
from web.models import WebhookEndpoint


async def test_create_shows_the_secret_once_and_crud_follows_the_contract(
    client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    resp = await client.post(
        "/api/v1/webhooks",
        json={
            "url": "https://8.8.8.8/hooks",
            "events": ["recording.failed", "recording.available"],
            "description": "CRM sync",
        },
        headers=tenant.api(),
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert set(created) >= {"id", "url", "events", "description", "secret", "created_at"}
    assert created["events"] == ["recording.available", "recording.failed"]
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    # Stored encrypted, never in the clear.
    row = await WebhookEndpoint.get(id=created["id"])
    assert secret not in row.secret_encrypted

    one = await client.get(f"/api/v1/webhooks/{created['id']}", headers=tenant.api())
    assert one.status_code == 200
    assert "secret" not in one.json()
    listed = await client.get("/api/v1/webhooks", headers=tenant.api())
    assert [w["id"] for w in listed.json()["items"]] == [created["id"]]
    assert "secret" not in listed.json()["items"][0]

    changed = await client.patch(
        f"/api/v1/webhooks/{created['id']}",
        json={"enabled": False, "events": ["recording.purged"], "description": "off"},
        headers=tenant.api(),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False
    assert changed.json()["events"] == ["recording.purged"]

    rolled = await client.post(
        f"/api/v1/webhooks/{created['id']}/roll-secret", headers=tenant.api()
    )
    assert rolled.status_code == 200
    assert rolled.json()["secret"].startswith("whsec_")
    assert rolled.json()["secret"] != secret

    deliveries = await client.get(
        f"/api/v1/webhooks/{created['id']}/deliveries", headers=tenant.api()
    )
    assert deliveries.json() == {"items": [], "next_cursor": None}

    gone = await client.delete(f"/api/v1/webhooks/{created['id']}", headers=tenant.api())
    assert gone.status_code == 204
    again = await client.get(f"/api/v1/webhooks/{created['id']}", headers=tenant.api())
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"url": "https://8.8.8.8/", "events": []}, 400, "events"),
        ({"url": "https://8.8.8.8/", "events": ["call.started"]}, 400, "events"),
        ({"url": "ftp://8.8.8.8/", "events": ["recording.failed"]}, 422, "url"),
        ({"url": "not a url", "events": ["recording.failed"]}, 422, "url"),
        ({"url": "https://8.8.8.8/", "events": ["recording.failed"], "x": 1}, 400, ""),
        ({"url": "https://no-such-host.invalid/", "events": ["recording.failed"]}, 422, "resolve"),
    ],
)
async def test_bad_input_is_refused_with_a_detail(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, object], status: int, words: str
) -> None:
    resp = await client.post("/api/v1/webhooks", json=body, headers=tenant.api())
    assert resp.status_code == status, resp.text
    assert words in resp.json()["detail"]
    assert await WebhookEndpoint.filter(org_id=tenant.org.id).count() == 0


async def test_agents_get_403_and_other_orgs_404_on_every_route(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, db_backend: str
) -> None:
    created = await add_endpoint(client, tenant, "https://8.8.8.8/hook")
    wid = created["id"]
    base = f"/api/v1/webhooks/{wid}"
    fake_delivery = "00000000-0000-4000-8000-000000000000"
    routes: list[tuple[str, str, dict[str, object] | None]] = [
        ("GET", "/api/v1/webhooks", None),
        ("POST", "/api/v1/webhooks", {"url": "https://8.8.8.8/", "events": ["recording.failed"]}),
        ("GET", base, None),
        ("PATCH", base, {"enabled": False}),
        ("DELETE", base, None),
        ("POST", f"{base}/roll-secret", None),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/deliveries/{fake_delivery}/retry", None),
    ]
    for method, path, body in routes:
        as_agent = await client.request(method, path, json=body, headers=tenant.api("agent"))
        assert as_agent.status_code == 403, (method, path, as_agent.text)
        if path != "/api/v1/webhooks":
            as_other = await client.request(method, path, json=body, headers=other_tenant.api())
            assert as_other.status_code == 404, (method, path, as_other.text)
    # Nothing changed for the owner.
    row = await WebhookEndpoint.get(id=wid)
    assert row.enabled
    listed = await client.get("/api/v1/webhooks", headers=other_tenant.api())
    assert listed.json()["items"] == []
