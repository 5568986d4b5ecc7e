"""Security headers on every page, fragment, JSON answer and error."""

from __future__ import annotations

import httpx
from litestar import Litestar

from tests.conftest import PASSWORD, Tenant, app_client, login


def _check_common(resp: httpx.Response) -> None:
    where = f"{resp.request.method} {resp.request.url.path} -> {resp.status_code}"
    csp = resp.headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ") if d}
    assert directives.get("frame-ancestors") == ["'none'"], where
    assert directives.get("script-src") == ["'self'"], where
    assert "'unsafe-inline'" not in csp, where
    assert "'unsafe-eval'" not in csp, where
    assert resp.headers.get("x-frame-options") == "DENY", where
    assert resp.headers.get("referrer-policy") == "same-origin", where
    assert resp.headers.get("x-content-type-options") == "nosniff", where


async def test_pages_fragments_and_json_carry_the_headers(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    anonymous = [
        await client.get("/login"),
        await client.get("/calls", follow_redirects=False),
        await client.get("/no/such/page", headers={"Accept": "text/html"}),
        await client.get("/api/v1/calls"),
    ]
    await login(client, tenant.admin.email)
    signed_in = [
        await client.get("/calls"),
        await client.get("/calls", headers={"HX-Request": "true"}),
        await client.get("/calls?date_from=bad", headers={"HX-Request": "true"}),
        await client.get("/assistants"),
        await client.get("/settings/storage"),
        await client.get("/settings/api-keys"),
        await client.get("/settings/password"),
        await client.get("/api/v1/calls", headers=tenant.api()),
    ]
    for resp in anonymous + signed_in:
        _check_common(resp)
        # Customer data (and anything that might be) is never stored by a browser or proxy.
        assert resp.headers.get("cache-control") == "no-store", resp.request.url
    assert "strict-transport-security" not in signed_in[0].headers, "not over plain http"
    static = await client.get("/static/css/app.css")
    _check_common(static)
    assert static.headers.get("cache-control") != "no-store"


async def test_hsts_over_https(app: Litestar, tenant: Tenant) -> None:
    async with app_client(app, base_url="https://secure.example") as c:
        page = await c.get("/login")
        assert page.headers["strict-transport-security"].startswith("max-age=")
        token = page.cookies["talkturo_csrf"]
        signed_in = await c.post(
            "/login",
            data={"email": tenant.admin.email, "password": PASSWORD, "_csrf_token": token},
            follow_redirects=False,
        )
        assert "max-age=" in signed_in.headers["strict-transport-security"]
        _check_common(signed_in)
