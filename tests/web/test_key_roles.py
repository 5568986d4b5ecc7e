"""API key roles: admin (everything), agent (read only), ingest (a voice pipeline's writes).

Every API route is tried with every role: a key outside its role gets 403, inside it
anything but 401/403.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute, WebSocketRoute

from tests.conftest import Tenant, login, make_env, talkturo
from web.models import ApiKey, Role
from web.security import hash_api_key
from web.services import assistants as assistants_svc
from web.services import calls as calls_svc

ADMIN = {"admin"}
READ = {"admin", "agent"}
INGEST = {"admin", "ingest"}

# (method, path template, JSON body or None, roles allowed)
MATRIX: list[tuple[str, str, Any, set[str]]] = [
    ("GET", "/api/v1/assistants", None, READ),
    ("POST", "/api/v1/assistants", {"name": "New"}, ADMIN),
    ("GET", "/api/v1/assistants/{aid}", None, READ),
    ("PATCH", "/api/v1/assistants/{aid}", {"name": "Renamed"}, ADMIN),
    ("GET", "/api/v1/calls", None, READ),
    ("POST", "/api/v1/calls", "new-call", INGEST),
    ("GET", "/api/v1/calls/{cid}", None, READ),
    ("PUT", "/api/v1/calls/{cid}/transcript", {"messages": []}, INGEST),
    ("PUT", "/api/v1/calls/{cid}/analysis", {"summary": "ok"}, INGEST),
    ("PUT", "/api/v1/calls/{cid}/recording", b"not audio", INGEST),
    ("POST", "/api/v1/calls/{cid}/end", {"status": "completed"}, INGEST),
    ("GET", "/api/v1/calls/{cid}/recording", None, READ),
    ("HEAD", "/api/v1/calls/{cid}/recording", None, READ),
    ("DELETE", "/api/v1/calls/{cid}/recording", None, ADMIN),
    ("PUT", "/api/v1/calls/{cid}/legal-hold", {"legal_hold": True}, ADMIN),
    ("GET", "/api/v1/org/storage", None, ADMIN),
    ("PATCH", "/api/v1/org/storage", {}, ADMIN),
]

# Routes whose role check is not a guard, and where it is instead.
NOT_GUARDED = {
    # A signed link needs no key; a key's role is checked in the handler.
    ("GET", "/api/v1/calls/{call_id:str}/recording"),
    ("HEAD", "/api/v1/calls/{call_id:str}/recording"),
}


async def _call_on(tenant: Tenant) -> tuple[str, str]:
    assistant = await assistants_svc.create_assistant(tenant.org.id, "Ava", True)
    call = await calls_svc.start_call(
        tenant.org.id, str(assistant.id), "inbound", "+1 415 555 0101", "+1 415 555 0100", None
    )
    return str(assistant.id), str(call.id)


async def test_every_route_enforces_the_key_roles(
    client: httpx.AsyncClient, tenant: Tenant, db_backend: str
) -> None:
    aid, cid = await _call_on(tenant)
    for method, template, body, allowed in MATRIX:
        for role in ("agent", "ingest", "admin"):
            path = template.format(aid=aid, cid=cid)
            kwargs: dict[str, Any] = {}
            if body == "new-call":
                kwargs["json"] = {
                    "assistant_id": aid,
                    "direction": "inbound",
                    "from_number": "+1 415 555 0102",
                    "to_number": "+1 415 555 0100",
                }
            elif isinstance(body, bytes):
                kwargs["content"] = body
                kwargs["headers"] = {"Content-Type": "audio/wav"}
            elif body is not None:
                kwargs["json"] = body
            headers = {**kwargs.pop("headers", {}), **tenant.api(role)}
            resp = await client.request(method, path, headers=headers, **kwargs)
            where = f"{role} {method} {template}: {resp.status_code} {resp.text[:200]}"
            if role in allowed:
                assert resp.status_code not in (401, 403), where
            else:
                assert resp.status_code == 403, where
                if method != "HEAD" and allowed != ADMIN:
                    assert f"this is a{'n' if role == 'ingest' else ''}" in resp.json()["detail"]


def test_every_api_route_has_a_role_guard(app: Litestar) -> None:
    """A new API route without a role guard fails here (add it to NOT_GUARDED with a reason)."""
    unguarded = []
    for route in app.routes:
        if not route.path.startswith("/api/"):
            continue
        if isinstance(route, WebSocketRoute):
            # The media socket checks the key's role at ``start`` (tests/ingest/test_live.py).
            continue
        assert isinstance(route, HTTPRoute)
        for handler in route.route_handlers:
            for method in handler.http_methods:
                if method == "OPTIONS" or (method, route.path) in NOT_GUARDED:
                    continue
                if not handler.resolve_guards():
                    unguarded.append(f"{method} {route.path}")
    assert not unguarded, unguarded


async def test_another_orgs_call_is_404_for_an_ingest_key(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    _, cid = await _call_on(other_tenant)
    resp = await client.put(
        f"/api/v1/calls/{cid}/transcript", json={"messages": []}, headers=tenant.api("ingest")
    )
    assert resp.status_code == 404


async def test_api_keys_page_shows_and_picks_the_role(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = await login(client, tenant.admin.email)
    page = await client.get("/settings/api-keys")
    assert '<option value="ingest">' in page.text
    made = await client.post(
        "/settings/api-keys", data={"name": "voice bot", "role": "ingest", "_csrf_token": token}
    )
    assert made.status_code == 200, made.text
    row = await ApiKey.get(org_id=tenant.org.id, name="voice bot")
    assert row.role == Role.INGEST
    assert f'data-key-id="{row.id}"' in made.text
    cell = made.text.split(f'data-key-id="{row.id}"', 1)[1].split("</tr>", 1)[0]
    assert "<td>ingest</td>" in cell
    bad = await client.post(
        "/settings/api-keys", data={"name": "x", "role": "root", "_csrf_token": token}
    )
    assert bad.status_code == 400
    assert "Unknown role" in bad.text


async def test_agent_user_cannot_create_keys(client: httpx.AsyncClient, tenant: Tenant) -> None:
    token = await login(client, tenant.agent.email)
    resp = await client.post(
        "/settings/api-keys", data={"name": "x", "role": "ingest", "_csrf_token": token}
    )
    assert resp.status_code == 403
    assert not await ApiKey.exists(org_id=tenant.org.id, name="x")


@pytest.mark.parametrize("role", ["ingest", "agent", "admin"])
async def test_cli_creates_a_key_with_its_role(
    tmp_path: Any, db_url: str, role: str, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    env = make_env(tmp_path / "cli-data", db_url)
    done = talkturo(env, "apikey", "create", "--org", str(tenant.org.id), "--role", role)
    assert done.returncode == 0, done.stderr
    row = await ApiKey.get(key_hash=hash_api_key(done.stdout.strip()))
    assert row.role == Role(role)


async def test_cli_refuses_an_unknown_role(tmp_path: Any, db_url: str) -> None:
    env = make_env(tmp_path / "cli-data", db_url)
    done = talkturo(env, "apikey", "create", "--org", "x", "--role", "root")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "role" in done.stderr
