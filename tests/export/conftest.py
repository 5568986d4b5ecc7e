"""Export fixtures: recordings with distinct bytes stored through the app's real storage.

``storage_kind`` (local directory or S3 on moto_server) and ``speech`` come from the
playback fixtures.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import Tenant
from tests.playback.conftest import env, speech, storage_kind
from web.models import Assistant, Call, CallStatus, Direction, Recording, RecordingStatus
from web.services.calls import new_call
from web.storage import recording_key

__all__ = ["env", "speech", "storage_kind"]

BASE_TIME = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


@dataclass
class Stored:
    """A call whose recording is stored, with the bytes that were stored."""

    call: Call
    rec: Recording
    data: bytes


async def store_call(
    app: Any,
    tenant: Tenant,
    data: bytes,
    *,
    assistant: Assistant | None = None,
    started_at: datetime | None = None,
    direction: Direction = Direction.INBOUND,
    from_number: str = "+14155550101",
    to_number: str = "+14155550100",
    status: RecordingStatus = RecordingStatus.AVAILABLE,
    sha256: str | None = None,
) -> Stored:
    """A completed call of ``tenant`` with ``data`` stored as its recording."""
    assistant = assistant or await Assistant.create(org=tenant.org, name="Support bot")
    started = started_at or BASE_TIME
    call = await new_call(
        tenant.org.id,
        assistant,
        direction,
        from_number,
        to_number,
        started,
        status=CallStatus.COMPLETED,
        ended_at=started + timedelta(seconds=30),
        duration_ms=30_000,
        recording_enabled=True,
        has_recording=status == RecordingStatus.AVAILABLE,
    )
    storage = app.state.storages.platform()
    key = recording_key(tenant.org.id, started, call.id, "mp3")
    await storage.put_bytes(key, data, "audio/mpeg")
    rec = await Recording.create(
        call=call,
        org=tenant.org,
        status=status,
        storage_key=key,
        storage_bucket=getattr(storage, "bucket", ""),
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        duration_ms=29_500,
        available_at=datetime.now(UTC),
    )
    return Stored(call, rec, data)


def payload(size: int) -> bytes:
    """Random bytes of ``size``: every entry differs from every other."""
    return os.urandom(size)


async def export_zip(
    client: httpx.AsyncClient, tenant: Tenant, query: str = "", role: str = "admin"
) -> zipfile.ZipFile:
    """GET the export with the tenant's key; the archive, opened."""
    resp = await client.get(f"/api/v1/recordings/export{query}", headers=tenant.api(role))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(resp.content))


def new_id() -> str:
    return str(uuid.uuid4())
