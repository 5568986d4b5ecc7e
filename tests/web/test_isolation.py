"""Tenancy: another org's objects answer 404, exactly like objects that do not exist.

Every route that names an org's object is listed here; add new routes to the tables.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant, api_call, login

# (method, path template, JSON body) of every API route that names a call or an assistant.
API_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/assistants/{assistant_id}", None),
    ("PATCH", "/api/v1/assistants/{assistant_id}", {"recording_enabled": False}),
    ("PATCH", "/api/v1/assistants/{assistant_id}", {"redact_dtmf": False}),
    ("GET", "/api/v1/calls/{call_id}", None),
    ("POST", "/api/v1/calls/{call_id}/end", {"status": "completed"}),
    # GET /api/v1/calls/{call_id}/recording: the owner's call has no recording here (404),
    # so its other-org case lives in tests/playback/test_recording_http.py.
    ("DELETE", "/api/v1/calls/{call_id}/recording", None),
    ("PUT", "/api/v1/calls/{call_id}/recording", None),
    ("PUT", "/api/v1/calls/{call_id}/transcript", {"messages": []}),
    ("PUT", "/api/v1/calls/{call_id}/analysis", {"summary": "x"}),
    ("PUT", "/api/v1/calls/{call_id}/legal-hold", {"legal_hold": True}),
    ("GET", "/api/v1/calls/{call_id}/notes", None),
    ("POST", "/api/v1/calls/{call_id}/notes", {"at_ms": 0, "text": "x"}),
    ("POST", "/api/v1/calls/{call_id}/recording/pause", None),
    ("POST", "/api/v1/calls/{call_id}/recording/resume", None),
    (
        "POST",
        "/api/v1/calls/{call_id}/recording/redactions",
        {"spans": [{"start_ms": 0, "end_ms": 100, "channel": "both"}]},
    ),
]

# (method, path template, form data) of every dashboard route that names a call or an assistant.
DASHBOARD_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/calls/{call_id}/recording.mp3", None),
    ("HEAD", "/calls/{call_id}/recording.mp3", None),
    ("GET", "/calls/{call_id}/peaks.json", None),
    ("GET", "/calls/{call_id}/recording-url", None),
    ("GET", "/calls/{call_id}/audit", None),
    ("GET", "/calls/{call_id}", None),
    ("POST", "/assistants/{assistant_id}/recording", {"enabled": "false"}),
    ("POST", "/assistants/{assistant_id}/dtmf", {"enabled": "false"}),
    ("POST", "/calls/{call_id}/legal-hold", {"legal_hold": "true"}),
    ("POST", "/calls/{call_id}/notes", {"at": "0:01", "text": "x"}),
    ("POST", "/calls/{call_id}/redactions", {"start": "0:00", "end": "0:01", "channel": "both"}),
]


async def _setup(client: httpx.AsyncClient, a: Tenant) -> dict[str, str]:
    assistant_id, call_id = await api_call(client, a, name="A's assistant")
    return {"assistant_id": assistant_id, "call_id": call_id}


@pytest.mark.parametrize(("method", "path", "body"), API_ROUTES)
async def test_api_other_org_gets_404(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    method: str,
    path: str,
    body: Any,
    db_backend: str,
) -> None:
    ids = await _setup(client, tenant)
    url = path.format(**ids)
    missing = path.format(**{k: str(uuid.uuid4()) for k in ids})
    for key in ("admin", "agent"):
        theirs = await client.request(method, url, json=body, headers=other_tenant.api(key))
        nothing = await client.request(method, missing, json=body, headers=other_tenant.api(key))
        if key == "agent" and method != "GET":
            # An agent is refused writes before the lookup, in both cases alike.
            assert theirs.status_code == nothing.status_code
            continue
        assert theirs.status_code == 404, (key, theirs.text)
        assert theirs.json() == nothing.json()
    # Still intact for its owner.
    mine = await client.get(
        path.format(**ids) if method == "GET" else f"/api/v1/calls/{ids['call_id']}",
        headers=tenant.api(),
    )
    assert mine.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "form"),
    DASHBOARD_ROUTES
    or [
        pytest.param(
            "GET", "", None, marks=pytest.mark.skip(reason="no dashboard object routes yet")
        )
    ],
)
async def test_dashboard_other_org_gets_404(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    method: str,
    path: str,
    form: Any,
) -> None:
    ids = await _setup(client, tenant)
    for user in (other_tenant.admin, other_tenant.agent):
        client.cookies.clear()
        token = await login(client, user.email)
        headers = {"X-CSRFToken": token}
        theirs = await client.request(method, path.format(**ids), data=form, headers=headers)
        missing = path.format(**{k: str(uuid.uuid4()) for k in ids})
        nothing = await client.request(method, missing, data=form, headers=headers)
        assert theirs.status_code == 404, (user.email, theirs.status_code)
        assert nothing.status_code == 404
