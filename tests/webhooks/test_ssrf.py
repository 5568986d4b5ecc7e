"""With the guard on (the default), no webhook URL may reach our own network."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import Tenant, make_env
from tests.webhooks.conftest import FAST
from web.models import WebhookEndpoint

SSRF_URLS = [
    "http://127.0.0.1/hook",
    "http://localhost:8000/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://0x7f.1/hook",
    "http://0177.0.0.1/hook",
    "http://127.1/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::127.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.0.1/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://[fe80::1]/",
    "http://[ff02::1]/",
]


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    """The production default: private endpoints refused."""
    return make_env(tmp_path / "data", db_url, **FAST, TALKTURO_ALLOW_PRIVATE_ENDPOINTS="0")


async def test_every_ssrf_form_is_refused_on_create_and_on_change(
    client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    ok = await client.post(
        "/api/v1/webhooks",
        json={"url": "https://8.8.8.8/hook", "events": ["recording.available"]},
        headers=tenant.api(),
    )
    assert ok.status_code == 201, ok.text
    wid = ok.json()["id"]
    for url in SSRF_URLS:
        body = {"url": url, "events": ["recording.available"]}
        created = await client.post("/api/v1/webhooks", json=body, headers=tenant.api())
        assert created.status_code == 422, (url, created.text)
        assert "public internet address" in created.json()["detail"], url
        changed = await client.patch(
            f"/api/v1/webhooks/{wid}", json={"url": url}, headers=tenant.api()
        )
        assert changed.status_code == 422, (url, changed.text)
    assert [e.url for e in await WebhookEndpoint.filter(org_id=tenant.org.id)] == [
        "https://8.8.8.8/hook"
    ]
