"""Sessions end on the server: sign-out, password change, role change, 12 h from sign-in."""

from __future__ import annotations

from datetime import timedelta

import httpx
from litestar import Litestar

from tests.conftest import PASSWORD, Tenant, login
from web.models import Role, User, UserSession
from web.services import accounts, sessions


def _session_cookie(client: httpx.AsyncClient) -> str:
    value = client.cookies.get("talkturo_session")
    assert value, "signed in: a session cookie is set"
    return str(value)


def _second_client(app: Litestar) -> httpx.AsyncClient:
    """Another browser on the app whose lifespan the ``client`` fixture already runs."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver.local"
    )


async def _with_cookie(app: Litestar, cookie: str, path: str = "/calls") -> httpx.Response:
    """A request from another client that only has a copy of the session cookie."""
    async with _second_client(app) as other:
        other.cookies.set("talkturo_session", cookie)
        return await other.get(path, follow_redirects=False)


async def test_copied_cookie_stops_working_after_logout(
    app: Litestar, client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    token = await login(client, tenant.agent.email)
    copied = _session_cookie(client)
    assert (await _with_cookie(app, copied)).status_code == 200
    resp = await client.post("/logout", headers={"X-CSRFToken": token}, follow_redirects=False)
    assert resp.status_code == 303
    again = await _with_cookie(app, copied)
    assert again.status_code == 303
    assert again.headers["location"].startswith("/login")
    assert await UserSession.filter(user_id=tenant.agent.id).count() == 0


async def test_session_lasts_12_hours_from_sign_in_however_used(
    app: Litestar, client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    await login(client, tenant.agent.email)
    row = await UserSession.get(user_id=tenant.agent.id)
    assert row.expires_at - row.created_at == timedelta(hours=12)
    for _ in range(3):
        assert (await client.get("/calls")).status_code == 200
    same = await UserSession.get(id=row.id)
    assert same.expires_at == row.expires_at, "use does not extend the session"
    # Signed in 12 hours ago (and busy all along): the session is over.
    signed_in = row.created_at - timedelta(hours=12, seconds=1)
    await UserSession.filter(id=row.id).update(
        created_at=signed_in, expires_at=signed_in + sessions.LIFETIME
    )
    resp = await client.get("/calls", follow_redirects=False)
    assert resp.status_code == 303
    assert (await _with_cookie(app, _session_cookie(client))).status_code == 303


async def test_password_change_ends_the_users_other_sessions(
    app: Litestar, client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    async with _second_client(app) as laptop:
        await login(laptop, tenant.agent.email)
        token = await login(client, tenant.agent.email)
        admin_cookie = None
        async with _second_client(app) as admin:
            await login(admin, tenant.admin.email)
            admin_cookie = _session_cookie(admin)
        page = await client.get("/settings/password")
        assert page.status_code == 200
        assert 'name="current_password"' in page.text
        resp = await client.post(
            "/settings/password",
            data={
                "current_password": PASSWORD,
                "new_password": "a-brand-new-passphrase",
                "_csrf_token": token,
            },
        )
        assert resp.status_code == 200, resp.text
        assert "Password changed" in resp.text
        assert (await client.get("/calls")).status_code == 200, "this session stays"
        assert (await laptop.get("/calls", follow_redirects=False)).status_code == 303
    # Another user's session is untouched.
    assert (await _with_cookie(app, admin_cookie)).status_code == 200
    assert await accounts.authenticate(tenant.agent.email, PASSWORD) is None
    assert await accounts.authenticate(tenant.agent.email, "a-brand-new-passphrase")


async def test_password_change_refusals_come_back_in_the_form(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await login(client, tenant.admin.email)
    cases = [
        ({"current_password": "not-it", "new_password": "long-enough-1"}, "not right"),
        ({"current_password": PASSWORD, "new_password": "short"}, "at least 8"),
        ({"current_password": PASSWORD, "new_password": PASSWORD}, "the same"),
    ]
    for form, message in cases:
        resp = await client.post(
            "/settings/password",
            data={**form, "_csrf_token": token},
            headers={"HX-Request": "true"},
        )
        assert resp.status_code == 400, form
        assert message in resp.text
        assert 'role="alert"' in resp.text
    assert await accounts.authenticate(tenant.admin.email, PASSWORD)
    # Without the CSRF token nothing changes.
    refused = await client.post(
        "/settings/password",
        data={"current_password": PASSWORD, "new_password": "long-enough-2"},
    )
    assert refused.status_code == 403
    assert await accounts.authenticate(tenant.admin.email, PASSWORD)


async def test_password_page_needs_sign_in(client: httpx.AsyncClient) -> None:
    resp = await client.get("/settings/password", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/login")


async def test_role_change_or_removal_ends_sessions(
    app: Litestar, client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    await login(client, tenant.agent.email)
    await accounts.set_role(tenant.agent.id, Role.ADMIN)
    assert (await client.get("/calls", follow_redirects=False)).status_code == 303
    # A change made straight in the database ends the session too.
    await login(client, tenant.agent.email)
    await User.filter(id=tenant.agent.id).update(role=Role.AGENT)
    assert (await client.get("/calls", follow_redirects=False)).status_code == 303
    await login(client, tenant.agent.email)
    cookie = _session_cookie(client)
    await accounts.remove_user(tenant.agent.id)
    assert (await _with_cookie(app, cookie)).status_code == 303
