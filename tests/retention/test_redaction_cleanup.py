"""Redaction from the panel's route, and the replaced bytes deleted even when storage refuses.

The platform bucket is a real moto_server bucket that keeps versions and has Object Lock:
an S3 legal hold on an older version of the MP3 makes its deletion fail (as a locked or
unreachable bucket would). The redaction still succeeds, the object stays on the list of
objects to delete, and once the lock is released the worker's job deletes every version.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from tests.conftest import MotoServer, login, make_tenant, s3_client
from tests.playback.conftest import SpeechRecording
from tests.retention.conftest import seed_recording
from web.models import AuditEvent, Recording, StaleObject
from web.recordings import stale
from web.recordings.jobs import register
from web.settings import Settings


@pytest.fixture
def platform_bucket(moto_server: MotoServer) -> str:
    """This module's platform bucket: versioned, with Object Lock (so a version can be held)."""
    name = f"tt-lock-{uuid.uuid4().hex[:10]}"
    s3_client(moto_server.endpoint).create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def _versions(s3: Any, bucket: str, key: str) -> list[str]:
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return [
        str(v["VersionId"])
        for v in [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]
        if v["Key"] == key
    ]


@asynccontextmanager
async def _signed_in(app: Litestar, email: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A browser-like client of its own, signed in through the form: (client, CSRF token)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        yield c, await login(c, email)


async def test_a_failed_deletion_is_finished_by_the_worker(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    moto_server: MotoServer,
    platform_bucket: str,
    speech: SpeechRecording,
    tmp_path: Path,
    db_backend: str,
) -> None:
    storages = app.state.storages
    tenant = await make_tenant("Org Redact")
    call, rec = await seed_recording(
        settings, storages, tenant.org, speech, datetime.now(UTC) - timedelta(hours=1), tmp_path
    )
    s3 = s3_client(moto_server.endpoint)
    old_mp3, old_peaks = f"platform/{rec.storage_key}", f"platform/{rec.peaks_key}"
    original = s3.get_object(Bucket=platform_bucket, Key=old_mp3)["Body"].read()
    held = _versions(s3, platform_bucket, old_mp3)[0]
    s3.put_object(Bucket=platform_bucket, Key=old_mp3, Body=original)  # a newer version
    assert len(_versions(s3, platform_bucket, old_mp3)) == 2
    s3.put_object_legal_hold(
        Bucket=platform_bucket, Key=old_mp3, VersionId=held, LegalHold={"Status": "ON"}
    )

    async with _signed_in(app, tenant.admin.email) as (admin, token):
        resp = await admin.post(
            f"/calls/{call.id}/redactions",
            data={
                "start": "0:01",
                "end": "0:02.5",
                "channel": "caller",
                "mode": "silence",
                "_csrf_token": token,
            },
            headers={"Accept": "application/json"},
        )
    assert resp.status_code == 200, resp.text
    assert resp.json()["redactions"] == [
        {"start_ms": 1000, "end_ms": 2500, "channel": "caller", "reason": "redacted"}
    ]
    row = await Recording.get(id=rec.id)
    assert row.storage_key != rec.storage_key
    assert await AuditEvent.filter(call_id=call.id, action="recording.redact").count() == 1
    # The peaks went at once; the held version of the MP3 could not, and is still listed.
    assert _versions(s3, platform_bucket, old_peaks) == []
    assert _versions(s3, platform_bucket, old_mp3) == [held]
    listed = await StaleObject.all()
    assert [(r.key, r.attempts) for r in listed] == [(rec.storage_key, 1)]
    assert listed[0].last_error
    assert listed[0].next_attempt_at is not None
    now = datetime.now(UTC)
    assert listed[0].next_attempt_at > now
    # Not due yet: the sweep leaves it.
    assert await stale.sweep(storages, now=now) == 0
    # Due, still held: it fails again and waits longer.
    later = listed[0].next_attempt_at + timedelta(seconds=1)
    assert await stale.sweep(storages, now=later) == 0
    again = await StaleObject.get(id=listed[0].id)
    assert again.attempts == 2
    assert again.next_attempt_at is not None
    assert again.next_attempt_at - later >= stale.retry_delay(2) - timedelta(seconds=1)
    assert _versions(s3, platform_bucket, old_mp3) == [held]

    s3.put_object_legal_hold(
        Bucket=platform_bucket, Key=old_mp3, VersionId=held, LegalHold={"Status": "OFF"}
    )
    assert await stale.sweep(storages, now=again.next_attempt_at + timedelta(seconds=1)) == 1
    assert _versions(s3, platform_bucket, old_mp3) == []
    assert await StaleObject.all().count() == 0
    # The new objects stay.
    assert s3.head_object(Bucket=platform_bucket, Key=f"platform/{row.storage_key}")
    assert s3.head_object(Bucket=platform_bucket, Key=f"platform/{row.peaks_key}")


async def test_the_job_is_the_workers(app: Litestar) -> None:
    """The worker runs ``delete_stale_objects`` with the other recording jobs."""

    class Jobs:
        def __init__(self) -> None:
            self.names: list[str] = []

        def add(self, name: str, job: Any) -> None:
            self.names.append(name)

    jobs = Jobs()
    register(jobs)
    assert "delete_stale_objects" in jobs.names


async def test_panel_route_refuses_agents_other_orgs_and_bad_input(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    speech: SpeechRecording,
    tmp_path: Path,
    db_backend: str,
) -> None:
    storages = app.state.storages
    tenant = await make_tenant("Org Panel")
    other = await make_tenant("Org Elsewhere")
    call, rec = await seed_recording(
        settings, storages, tenant.org, speech, datetime.now(UTC) - timedelta(hours=1), tmp_path
    )
    url = f"/calls/{call.id}/redactions"
    span = {"start": "0:01", "end": "0:02", "channel": "both", "mode": "tone"}
    json = {"Accept": "application/json"}
    async with _signed_in(app, tenant.agent.email) as (agent, token):
        refused = await agent.post(url, data={**span, "_csrf_token": token}, headers=json)
        assert refused.status_code == 403
        assert "admin" in refused.json()["detail"]
    async with _signed_in(app, other.admin.email) as (foreign, token):
        missing = await foreign.post(url, data={**span, "_csrf_token": token}, headers=json)
        assert missing.status_code == 404
    async with _signed_in(app, tenant.admin.email) as (admin, token):
        # Without the CSRF token the dashboard refuses, as for every dashboard POST.
        assert (await admin.post(url, data=span, headers=json)).status_code == 403
        for bad, status in (
            ({**span, "start": "soon"}, 400),
            ({**span, "end": "0:01"}, 422),
            ({**span, "end": "59:00"}, 422),
            ({**span, "channel": "left"}, 422),
            ({**span, "mode": "bleep"}, 422),
        ):
            resp = await admin.post(url, data={**bad, "_csrf_token": token}, headers=json)
            assert resp.status_code == status, (bad, resp.text)
            assert resp.json()["detail"]
        hold = await admin.post(
            f"/calls/{call.id}/legal-hold",
            data={"legal_hold": "true", "_csrf_token": token},
        )
        assert hold.status_code == 200
        held = await admin.post(url, data={**span, "_csrf_token": token}, headers=json)
        assert held.status_code == 409
        assert "legal hold" in held.json()["detail"]
    assert (await Recording.get(id=rec.id)).sha256 == rec.sha256
    assert await AuditEvent.filter(call_id=call.id, action="recording.redact").count() == 0
