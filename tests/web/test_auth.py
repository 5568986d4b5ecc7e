"""Accounts: sign in, sign out, CSRF, same-origin, API keys, roles."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import PASSWORD, Tenant, app_client, login, login_response
from web.models import Call
from web.services.accounts import revoke_api_key


async def test_dashboard_requires_login(client: httpx.AsyncClient) -> None:
    resp = await client.get("/calls", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/login?next=/calls"


async def test_htmx_request_without_session_gets_hx_redirect(client: httpx.AsyncClient) -> None:
    resp = await client.get("/calls", headers={"HX-Request": "true"}, follow_redirects=False)
    assert resp.status_code == 401
    assert resp.headers["hx-redirect"].startswith("/login")


async def test_login_and_logout(client: httpx.AsyncClient, tenant: Tenant, db_backend: str) -> None:
    token = await login(client, tenant.admin.email)
    cookie = [h for h in client.cookies.jar if h.name == "talkturo_session"]
    assert cookie, "a session cookie is set"
    page = await client.get("/calls")
    assert page.status_code == 200
    assert "Call Logs" in page.text
    resp = await client.post("/logout", headers={"X-CSRFToken": token}, follow_redirects=False)
    assert resp.status_code == 303
    again = await client.get("/calls", follow_redirects=False)
    assert again.status_code == 303


async def test_session_cookie_flags(client: httpx.AsyncClient, tenant: Tenant) -> None:
    resp, _ = await login_response(client, tenant.admin.email)
    set_cookie = ";".join(v for k, v in resp.headers.multi_items() if k == "set-cookie")
    assert "talkturo_session=" in set_cookie
    assert "HttpOnly" in set_cookie
    assert "SameSite=lax" in set_cookie


async def test_secure_cookie_over_https(app: Any, tenant: Tenant) -> None:
    async with app_client(app, base_url="https://secure.example") as c:
        resp, _ = await login_response(c, tenant.admin.email)
        cookies = [v for k, v in resp.headers.multi_items() if k == "set-cookie"]
        assert cookies
        assert all("Secure" in v for v in cookies)


async def test_wrong_password_is_refused(client: httpx.AsyncClient, tenant: Tenant) -> None:
    resp, _ = await login_response(client, tenant.admin.email, "not-the-password")
    assert resp.status_code == 401
    assert "Wrong email or password" in resp.text
    assert (await client.get("/calls", follow_redirects=False)).status_code == 303


async def test_login_post_without_csrf_token_is_refused(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await client.get("/login")
    resp = await client.post(
        "/login", data={"email": tenant.admin.email, "password": PASSWORD}, follow_redirects=False
    )
    assert resp.status_code == 403
    assert (await client.get("/calls", follow_redirects=False)).status_code == 303


async def test_unsafe_request_without_csrf_header_is_refused(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await login(client, tenant.admin.email)
    resp = await client.post("/logout", follow_redirects=False)
    assert resp.status_code == 403
    assert (await client.get("/calls")).status_code == 200, "still signed in"


async def test_cross_site_post_is_refused_even_with_token(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await login(client, tenant.admin.email)
    for headers in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ):
        resp = await client.post(
            "/logout", headers={"X-CSRFToken": token, **headers}, follow_redirects=False
        )
        assert resp.status_code == 403, headers
    assert (await client.get("/calls")).status_code == 200


async def test_login_next_is_local_only(client: httpx.AsyncClient, tenant: Tenant) -> None:
    page = await client.get("/login")
    token = page.cookies["talkturo_csrf"]
    resp = await client.post(
        "/login",
        data={
            "email": tenant.admin.email,
            "password": PASSWORD,
            "_csrf_token": token,
            "next": "//evil.example/x",
        },
        follow_redirects=False,
    )
    assert resp.headers["location"] == "/calls"


async def test_api_key_auth(client: httpx.AsyncClient, tenant: Tenant, db_backend: str) -> None:
    ok = await client.get("/api/v1/assistants", headers=tenant.api())
    assert ok.status_code == 200
    for header in (
        {},
        {"Authorization": "Bearer tk_nope"},
        {"Authorization": f"Basic {tenant.admin_key}"},
    ):
        resp = await client.get("/api/v1/assistants", headers=header)
        assert resp.status_code == 401
        assert resp.json()["status_code"] == 401
        assert "API key" in resp.json()["detail"]


async def test_revoked_api_key_is_refused(client: httpx.AsyncClient, tenant: Tenant) -> None:
    from web.models import ApiKey
    from web.security import hash_api_key

    row = await ApiKey.get(key_hash=hash_api_key(tenant.admin_key))
    await revoke_api_key(tenant.org.id, row.id)
    resp = await client.get("/api/v1/assistants", headers=tenant.api())
    assert resp.status_code == 401


async def test_api_key_last_used_is_recorded(client: httpx.AsyncClient, tenant: Tenant) -> None:
    from web.models import ApiKey
    from web.security import hash_api_key

    await client.get("/api/v1/assistants", headers=tenant.api())
    row = await ApiKey.get(key_hash=hash_api_key(tenant.admin_key))
    assert row.last_used_at is not None
    assert row.prefix.startswith("tk_")
    assert tenant.admin_key.startswith(row.prefix)
    assert tenant.admin_key not in (row.key_hash, row.prefix)


async def test_agent_key_cannot_change_assistants(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await client.post(
        "/api/v1/assistants",
        json={"name": "Front desk", "recording_enabled": True},
        headers=tenant.api(),
    )
    assert created.status_code == 201
    aid = created.json()["id"]
    denied = await client.patch(
        f"/api/v1/assistants/{aid}", json={"recording_enabled": False}, headers=tenant.api("agent")
    )
    assert denied.status_code == 403
    assert "admin" in denied.json()["detail"]
    read = await client.get(f"/api/v1/assistants/{aid}", headers=tenant.api("agent"))
    assert read.json()["recording_enabled"] is True


async def test_redact_dtmf_on_assistants_api(
    client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    """``redact_dtmf`` defaults to true, is set on create and PATCH, and snapshotted per call."""
    created = await client.post("/api/v1/assistants", json={"name": "Desk"}, headers=tenant.api())
    assert created.status_code == 201
    aid = created.json()["id"]
    assert created.json()["redact_dtmf"] is True
    off = await client.post(
        "/api/v1/assistants", json={"name": "Off", "redact_dtmf": False}, headers=tenant.api()
    )
    assert off.json()["redact_dtmf"] is False
    denied = await client.patch(
        f"/api/v1/assistants/{aid}", json={"redact_dtmf": False}, headers=tenant.api("agent")
    )
    assert denied.status_code == 403
    bad = await client.patch(
        f"/api/v1/assistants/{aid}", json={"redact_dtmf": "no"}, headers=tenant.api()
    )
    assert bad.status_code == 400
    assert "redact_dtmf" in bad.json()["detail"]
    call = {"assistant_id": aid, "direction": "inbound", "from_number": "1", "to_number": "2"}
    before = await client.post("/api/v1/calls", json=call, headers=tenant.api())
    changed = await client.patch(
        f"/api/v1/assistants/{aid}", json={"redact_dtmf": False}, headers=tenant.api()
    )
    assert changed.status_code == 200
    assert changed.json() == {**created.json(), "redact_dtmf": False}
    after = await client.post("/api/v1/calls", json=call, headers=tenant.api())
    assert (await Call.get(id=before.json()["id"])).redact_dtmf is True
    assert (await Call.get(id=after.json()["id"])).redact_dtmf is False
