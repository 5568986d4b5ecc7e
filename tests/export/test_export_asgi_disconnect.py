"""A client that stops reading and goes away mid-archive, at the ASGI level in this process:
the storage file being read is closed at once and no later recording is read or audited."""

from __future__ import annotations

import asyncio
import io
import os
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant
from tests.export.conftest import BASE_TIME, payload, store_call
from web.models import AuditEvent

ENTRIES = 6


def _open_files_under(root: Path) -> list[str]:
    """Paths under ``root`` this process holds open (from /proc/self/fd)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(root)):
            held.append(target)
    return held


@pytest.mark.parametrize("storage_kind", ["local"])
async def test_going_away_mid_archive_closes_the_storage_file(
    client: httpx.AsyncClient, app: Any, tenant: Tenant, settings: Any
) -> None:
    for i in range(ENTRIES):
        await store_call(app, tenant, payload(1_000_000), started_at=BASE_TIME + timedelta(i))
    root = settings.storage.local_path.resolve()
    gone = asyncio.Event()
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            # The first bytes arrived; the client stops reading, then goes away.
            assert _open_files_under(root), "an entry is being read from storage"
            gone.set()
            await asyncio.Event().wait()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/recordings/export",
        "raw_path": b"/api/v1/recordings/export",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver.local"),
            (b"authorization", tenant.api()["Authorization"].encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver.local", 80),
    }
    await asyncio.wait_for(app(scope, receive, send), 30)
    assert sent[0]["status"] == 200
    assert _open_files_under(root) == []
    # Nothing more is read or audited after the client left.
    await asyncio.sleep(0.2)
    assert await AuditEvent.filter(action="recording.export").count() < ENTRIES
    assert _open_files_under(root) == []
    # And the app serves the next export in full.
    resp = await client.get("/api/v1/recordings/export", headers=tenant.api())
    assert resp.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(resp.content)).namelist()
    assert len([n for n in names if n.endswith(".mp3")]) == ENTRIES
