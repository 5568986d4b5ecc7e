"""Retention purge: exactly the expired recordings go, from the bucket they are in.

Calls are made with ``started_at`` in the past ("time travel"), on every plan, an hour on
each side of each plan's boundary; their recordings are published for real to the platform
bucket or to an enterprise's own bucket, both on moto_server.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar

from tests.conftest import MotoServer, Tenant, create_bucket, login, make_tenant, s3_keys
from tests.retention.conftest import SeedRecording, give_own_bucket
from web.models import AuditEvent, Call, Plan, Recording, RecordingStatus
from web.recordings.jobs import purge
from web.services import retention
from web.settings import Settings

HOUR = timedelta(hours=1)


async def test_exactly_the_expired_recordings_are_purged(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    moto_server: MotoServer,
    platform_bucket: str,
    seed: SeedRecording,
    db_backend: str,
) -> None:
    storages = app.state.storages
    now = datetime.now(UTC)
    tenants: dict[str, Tenant] = {}
    for plan in Plan:
        tenants[plan.value] = await make_tenant(f"{plan.value} org", plan)
    own_bucket = create_bucket(moto_server.endpoint)
    ent_limited = await make_tenant("enterprise with limit", Plan.ENTERPRISE)
    await give_own_bucket(ent_limited.org, moto_server.endpoint, own_bucket)
    await retention.set_retention(ent_limited.org.id, 10)
    ent_limited.org = await type(ent_limited.org).get(id=ent_limited.org.id)

    expired: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    for plan, days in (("free", 30), ("pro", 365), ("business", 730)):
        org = tenants[plan].org
        old, _ = await seed(org, now - timedelta(days=days) - HOUR)
        young, _ = await seed(org, now - timedelta(days=days) + HOUR)
        expired[f"{plan} past"] = old.id
        kept[f"{plan} not yet"] = young.id
    # Enterprise without a limit keeps everything, however old.
    forever, _ = await seed(tenants["enterprise"].org, now - timedelta(days=3000))
    kept["enterprise forever"] = forever.id
    # Enterprise with 10 days, on its own bucket.
    old, _ = await seed(ent_limited.org, now - timedelta(days=10) - HOUR)
    young, _ = await seed(ent_limited.org, now - timedelta(days=10) + HOUR)
    expired["enterprise own bucket past"] = old.id
    kept["enterprise own bucket not yet"] = young.id
    # Legal hold wins over retention.
    held, _ = await seed(
        tenants["free"].org,
        now - timedelta(days=400),
        legal_hold=True,
    )
    kept["free legal hold"] = held.id

    recs = {r.call_id: r for r in await Recording.all()}  # type: ignore[attr-defined]
    own_keys_before = s3_keys(moto_server.endpoint, own_bucket)
    platform_keys_before = s3_keys(moto_server.endpoint, platform_bucket)
    assert any(
        recs[expired["enterprise own bucket past"]].storage_key in k for k in own_keys_before
    )

    dry = io.StringIO()
    assert await purge.purge_pass(settings, dry_run=True, out=dry, progress=io.StringIO()) == 4
    assert {line.split()[0] for line in dry.getvalue().splitlines()} == {
        str(c) for c in expired.values()
    }
    assert await Recording.filter(status=RecordingStatus.PURGED).count() == 0

    out = io.StringIO()
    done = await purge.purge_due(settings, storages, out=out)
    assert done == 4
    assert {line.split()[0] for line in out.getvalue().splitlines()} == {
        str(c) for c in expired.values()
    }

    for label, call_id in expired.items():
        rec = await Recording.get(call_id=call_id)
        assert rec.status == RecordingStatus.PURGED, label
        assert rec.purged_at is not None
        call = await Call.get(id=call_id)
        assert call.has_recording is False
        events = await AuditEvent.filter(call_id=call_id, action="recording.purge").count()
        assert events == 1, label
    for label, call_id in kept.items():
        rec = await Recording.get(call_id=call_id)
        assert rec.status == RecordingStatus.AVAILABLE, label

    own_after = s3_keys(moto_server.endpoint, own_bucket)
    platform_after = s3_keys(moto_server.endpoint, platform_bucket)
    own_rec = recs[expired["enterprise own bucket past"]]
    assert own_rec.storage_target == "org"
    assert own_keys_before - own_after == {
        f"own/{own_rec.storage_key}",
        f"own/{own_rec.peaks_key}",
    }
    gone_platform = {
        f"platform/{recs[c].storage_key}"
        for k, c in expired.items()
        if not k.startswith("enterprise")
    } | {
        f"platform/{recs[c].peaks_key}"
        for k, c in expired.items()
        if not k.startswith("enterprise")
    }
    assert platform_keys_before - platform_after == gone_platform
    for call_id in kept.values():
        rec = recs[call_id]
        prefix = "own/" if rec.storage_target == "org" else "platform/"
        assert prefix + rec.storage_key in (own_after | platform_after)

    # A second pass finds nothing: purging is idempotent.
    assert await purge.purge_due(settings, storages) == 0

    # Downloads of purged recordings answer 404 saying why; the panel says it too.
    free = tenants["free"]
    free_purged = expired["free past"]
    api = await client.get(f"/api/v1/calls/{free_purged}/recording", headers=free.api())
    assert api.status_code == 404
    assert "purged on" in api.json()["detail"]
    meta = await client.get(f"/api/v1/calls/{free_purged}", headers=free.api())
    assert meta.json()["recording"]["status"] == "purged"
    await login(client, free.admin.email)
    panel = await client.get(f"/calls/{free_purged}", headers={"HX-Request": "true"})
    assert panel.status_code == 200
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert "deleted by the retention policy" in panel.text
    assert today in panel.text
    kept_panel = await client.get(f"/calls/{kept['free not yet']}", headers={"HX-Request": "true"})
    assert "Purges on" in kept_panel.text


async def test_plan_change_applies_to_existing_recordings(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    seed: SeedRecording,
) -> None:
    storages = app.state.storages
    now = datetime.now(UTC)
    t = await make_tenant("upgrader", Plan.PRO)
    call, rec = await seed(t.org, now - timedelta(days=100))
    assert rec.purge_at == call.started_at + timedelta(days=365)
    assert await purge.purge_due(settings, storages) == 0

    await retention.change_plan(t.org.id, Plan.ENTERPRISE)
    assert (await Recording.get(id=rec.id)).purge_at is None
    await retention.set_retention(t.org.id, 200)
    fresh = await Recording.get(id=rec.id)
    assert fresh.purge_at == call.started_at + timedelta(days=200)

    await retention.change_plan(t.org.id, Plan.FREE)
    fresh = await Recording.get(id=rec.id)
    assert fresh.purge_at == call.started_at + timedelta(days=30)
    assert await purge.purge_due(settings, storages) == 1
    # Once purged, a later upgrade does not bring a purge date back.
    await retention.change_plan(t.org.id, Plan.BUSINESS)
    fresh = await Recording.get(id=rec.id)
    assert fresh.status == RecordingStatus.PURGED


async def test_crashed_claims_are_resumed_and_storage_failures_wait(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    seed: SeedRecording,
    db_backend: str,
) -> None:
    storages = app.state.storages
    now = datetime.now(UTC)
    t = await make_tenant("crashy", Plan.FREE)
    old = now - timedelta(days=40)
    crashed, _ = await seed(
        t.org,
        old,
        claimed_by="dead-host|1|x",
        claimed_until=now - timedelta(seconds=1),
    )
    busy, _ = await seed(
        t.org,
        old,
        claimed_by="live-host|1|x",
        claimed_until=now + timedelta(minutes=5),
    )
    broken, _ = await seed(
        t.org,
        old,
        # Its org's own bucket is not configured (any more): storage cannot be reached.
        storage_target="org",
    )
    out = io.StringIO()
    assert await purge.purge_due(settings, storages, out=out) == 1
    assert out.getvalue().split()[0] == str(crashed.id)
    assert (await Recording.get(call_id=crashed.id)).status == RecordingStatus.PURGED
    # Held by a live worker: left to it.
    assert (await Recording.get(call_id=busy.id)).status == RecordingStatus.AVAILABLE
    # Storage failed: still available, claim released, the error noted, tried again next pass.
    b = await Recording.get(call_id=broken.id)
    assert b.status == RecordingStatus.AVAILABLE
    assert b.claimed_by is None
    assert "purge failed" in b.last_error
    assert await AuditEvent.filter(call_id=broken.id).count() == 0


async def test_worker_job_purges(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    seed: SeedRecording,
) -> None:
    from web.worker import JOBS, run_pass

    assert "purge" in [name for name, _ in JOBS.jobs]
    t = await make_tenant("worker org", Plan.FREE)
    call, _ = await seed(t.org, datetime.now(UTC) - timedelta(days=31))
    done = await run_pass(app.state)
    assert done["purge"] == 1
    assert (await Recording.get(call_id=call.id)).status == RecordingStatus.PURGED


@pytest.mark.parametrize("bad", [0, -5, 36501, True])
async def test_bad_retention_days(client: httpx.AsyncClient, bad: Any) -> None:
    from web.errors import InvalidInput

    t = await make_tenant("ent", Plan.ENTERPRISE)
    with pytest.raises(InvalidInput):
        await retention.set_retention(t.org.id, bad)


@pytest.mark.postgres
@pytest.mark.parametrize("db_backend", ["postgres"])
async def test_two_purge_processes_at_once_purge_each_recording_once(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    env: dict[str, str],
    seed: SeedRecording,
    db_backend: str,
) -> None:
    import asyncio
    import os
    import sys

    from tests.conftest import ROOT

    now = datetime.now(UTC)
    t = await make_tenant("busy org", Plan.FREE)
    expired: set[str] = set()
    for i in range(30):
        call, _ = await seed(t.org, now - timedelta(days=31, minutes=i))
        expired.add(str(call.id))
    kept, _ = await seed(t.org, now - timedelta(days=29))

    full_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env}

    async def run_purge(*extra: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "web",
            "purge",
            *extra,
            env=full_env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        return int(proc.returncode or 0), out.decode(), err.decode()

    rc, dry_out, dry_err = await run_purge("--dry-run")
    assert rc == 0, dry_err
    assert {line.split()[0] for line in dry_out.splitlines()} == expired
    assert "nothing was changed" in dry_err
    assert await Recording.filter(status=RecordingStatus.PURGED).count() == 0

    (rc1, out1, err1), (rc2, out2, err2) = await asyncio.gather(run_purge(), run_purge())
    assert rc1 == 0, err1
    assert rc2 == 0, err2
    first = {line.split()[0] for line in out1.splitlines()}
    second = {line.split()[0] for line in out2.splitlines()}
    assert not first & second, "no recording is purged by both"
    assert first | second == expired, "none is missed"
    assert "purged" in err1
    assert "purged" in err2
    for call_id in expired:
        assert await AuditEvent.filter(call_id=call_id, action="recording.purge").count() == 1
    assert (await Recording.get(call_id=kept.id)).status == RecordingStatus.AVAILABLE
    assert await Recording.filter(status=RecordingStatus.PURGED).count() == 30
