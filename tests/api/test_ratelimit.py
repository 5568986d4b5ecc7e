"""Rate limits: sign-in and the API answer 429 with Retry-After, whatever X-Forwarded-For says."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import PASSWORD, Tenant
from web import ratelimit
from web.models import RateCounter


async def _csrf(client: httpx.AsyncClient) -> str:
    page = await client.get("/login")
    token = page.cookies.get("talkturo_csrf") or client.cookies.get("talkturo_csrf")
    assert token
    return str(token)


async def _attempt(
    client: httpx.AsyncClient, token: str, email: str, password: str, spoof: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": spoof} if spoof else {}
    return await client.post(
        "/login",
        data={"email": email, "password": password, "_csrf_token": token},
        headers=headers,
        follow_redirects=False,
    )


async def test_login_by_email_then_429_even_with_spoofed_forwarded_for(
    client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    token = await _csrf(client)
    n = ratelimit.LOGIN_PER_EMAIL.count
    for i in range(n):
        resp = await _attempt(client, token, tenant.admin.email, "wrong", spoof=f"10.0.0.{i}")
        assert resp.status_code == 401, resp.text
    over = await _attempt(client, token, tenant.admin.email, PASSWORD, spoof="203.0.113.9")
    assert over.status_code == 429
    retry = int(over.headers["retry-after"])
    assert 1 <= retry <= ratelimit.LOGIN_PER_EMAIL.window_s
    assert over.json()["detail"].startswith("Too many requests")
    # A browser gets a readable page, with the same header.
    page = await client.post(
        "/login",
        data={"email": tenant.admin.email, "password": PASSWORD, "_csrf_token": token},
        headers={"Accept": "text/html", "X-Forwarded-For": "198.51.100.1"},
    )
    assert page.status_code == 429
    assert "Too many requests" in page.text
    assert "retry-after" in page.headers
    # Another email from the same address is still let through (until the address limit).
    other = await _attempt(client, token, tenant.agent.email, PASSWORD)
    assert other.status_code == 303
    # The table never holds the email in the clear.
    keys = await RateCounter.all().values_list("key", flat=True)
    assert all(tenant.admin.email not in k for k in keys)


async def test_login_by_address_whatever_the_email(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await _csrf(client)
    n = ratelimit.LOGIN_PER_ADDRESS.count
    for i in range(n):
        resp = await _attempt(client, token, f"nobody{i}@example.com", "x", spoof=f"10.1.0.{i}")
        assert resp.status_code == 401
    over = await _attempt(client, token, "someone-else@example.com", "x", spoof="10.9.9.9")
    assert over.status_code == 429
    assert int(over.headers["retry-after"]) >= 1


async def test_fixed_window_resets(client: httpx.AsyncClient) -> None:
    limit = ratelimit.Limit("test", 2, 60)
    await ratelimit.hit(limit, "x", now_ms=1_000_000)
    await ratelimit.hit(limit, "x", now_ms=1_001_000)
    with pytest.raises(ratelimit.RateLimited) as info:
        await ratelimit.hit(limit, "x", now_ms=1_030_000)
    assert info.value.retry_after_s == 30
    # The next window starts fresh.
    await ratelimit.hit(limit, "x", now_ms=1_061_000)


async def test_api_by_key_then_429(
    client: httpx.AsyncClient,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    db_backend: str,
) -> None:
    monkeypatch.setattr(ratelimit, "API_PER_KEY", ratelimit.Limit("api-key", 5, 60))
    for i in range(5):
        ok = await client.get(
            "/api/v1/assistants", headers={**tenant.api(), "X-Forwarded-For": f"10.2.0.{i}"}
        )
        assert ok.status_code == 200
    over = await client.get(
        "/api/v1/assistants", headers={**tenant.api(), "X-Forwarded-For": "10.3.0.1"}
    )
    assert over.status_code == 429
    assert over.json()["status_code"] == 429
    assert int(over.headers["retry-after"]) >= 1
    # Another key of the same org has its own budget.
    other = await client.get("/api/v1/assistants", headers=tenant.api("agent"))
    assert other.status_code == 200


async def test_api_by_address_without_key(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "API_PER_ADDRESS", ratelimit.Limit("api-address", 3, 60))
    for i in range(3):
        resp = await client.get("/api/v1/assistants", headers={"X-Forwarded-For": f"10.4.0.{i}"})
        assert resp.status_code == 401
    over = await client.get(
        "/api/v1/assistants",
        headers={"X-Forwarded-For": "10.5.0.1", "Authorization": "Bearer tk_abcdef12_nope"},
    )
    assert over.status_code == 429


def test_key_prefix() -> None:
    assert ratelimit.key_prefix("Bearer tk_0123abcd_secretpart") == "tk_0123abcd"
    assert ratelimit.key_prefix("Bearer something") is None
    assert ratelimit.key_prefix("Basic tk_0123abcd_x") is None
    assert ratelimit.key_prefix(None) is None


async def test_a_whole_office_signs_in_from_one_address(
    client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    """Only failed attempts count: more agents than the address limit sign in at once."""
    from web.models import Org, Role
    from web.services.accounts import create_user

    org = await Org.get(id=tenant.org.id)
    n = ratelimit.LOGIN_PER_ADDRESS.count + 5
    emails = [f"shift-{i}@example.com" for i in range(n)]
    for email in emails:
        await create_user(org, email, PASSWORD, Role.AGENT)
    token = await _csrf(client)
    for email in emails:
        resp = await _attempt(client, token, email, PASSWORD)
        assert resp.status_code == 303, (email, resp.text)
    # A few typos among them are fine too.
    assert (await _attempt(client, token, emails[0], "typo")).status_code == 401
    assert (await _attempt(client, token, emails[0], PASSWORD)).status_code == 303


async def test_the_limit_message_sits_on_a_usable_login_form(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await _csrf(client)
    for _ in range(ratelimit.LOGIN_PER_EMAIL.count):
        assert (await _attempt(client, token, tenant.admin.email, "wrong")).status_code == 401
    page = await client.post(
        "/login",
        data={"email": tenant.admin.email, "password": PASSWORD, "_csrf_token": token},
        headers={"Accept": "text/html"},
    )
    assert page.status_code == 429
    assert int(page.headers["retry-after"]) >= 1
    assert 'role="alert"' in page.text
    assert "Too many requests" in page.text
    # The form is there, with the email kept, ready for another try (or another user).
    assert 'name="password"' in page.text
    assert f'value="{tenant.admin.email}"' in page.text
    other = await client.post(
        "/login",
        data={"email": tenant.agent.email, "password": PASSWORD, "_csrf_token": token},
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )
    assert other.status_code == 303
