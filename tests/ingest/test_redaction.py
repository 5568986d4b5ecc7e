"""Redacting a stored recording: new bytes under new keys, the old ones (every version) gone."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import MotoServer, s3_client
from tests.ingest.conftest import (
    Live,
    Voice,
    call_frames,
    create_call,
    rms_db,
    stereo_start,
    stream,
)
from tests.ingest.test_keypad_tones import decode
from web.models import AuditEvent, Call, Recording, WebhookDelivery, WebhookEndpoint

STOP = {"event": "stop"}


@pytest.mark.parametrize("storage_kind", ["s3"], indirect=True)
async def test_redaction_replaces_the_bytes_and_deletes_every_old_version(
    live: Live,
    voices: tuple[Voice, Voice],
    moto_server: MotoServer,
    ingest_env: dict[str, str],
    db_backend: str,
) -> None:
    bucket = ingest_env["TALKTURO_STORAGE_URL"].removeprefix("s3://").split("/")[0]
    s3 = s3_client(moto_server.endpoint)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    call_id = await create_call(live.http, live.tenant)
    # An endpoint subscribed to redactions only (the org is found through the recording row).
    await WebhookEndpoint.create(
        org_id=(await Call.get(id=call_id)).org_id,  # type: ignore[attr-defined]
        url="https://hooks.example.com/x",
        events=["recording.redacted"],
        secret_encrypted="unused",
    )
    closed = await stream(
        live.ws(call_id), [stereo_start(live.tenant.admin_key), *call_frames(voices), STOP]
    )
    assert closed.code == 1000
    rec = await Recording.get(call_id=call_id)
    old_key = f"rec/{rec.storage_key}"
    old_peaks = f"rec/{rec.peaks_key}"
    # An older version of the same object, as a bucket that keeps versions would hold.
    original = s3.get_object(Bucket=bucket, Key=old_key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=old_key, Body=original)
    assert len(s3.list_object_versions(Bucket=bucket, Prefix=old_key)["Versions"]) == 2
    url = f"/api/v1/calls/{call_id}/recording/redactions"
    span = {"start_ms": 1000, "end_ms": 2500, "channel": "caller"}
    async with httpx.AsyncClient(base_url=live.http, timeout=60) as http:
        agent = await http.post(url, json={"spans": [span]}, headers=live.tenant.api("agent"))
        assert agent.status_code == 403
        foreign = await http.post(url, json={"spans": [span]}, headers=live.other.api())
        assert foreign.status_code == 404
        for bad in (
            {"spans": []},
            {"spans": [{**span, "end_ms": 1000}]},
            {"spans": [{**span, "end_ms": rec.duration_ms + 1}]},
            {"spans": [{**span, "channel": "left"}]},
            {"spans": [span], "mode": "bleep"},
        ):
            refused = await http.post(url, json=bad, headers=live.tenant.api())
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["detail"]
        hold = f"/api/v1/calls/{call_id}/legal-hold"
        assert (
            await http.put(hold, json={"legal_hold": True}, headers=live.tenant.api())
        ).status_code == 200
        held = await http.post(url, json={"spans": [span]}, headers=live.tenant.api())
        assert held.status_code == 409
        assert "legal hold" in held.json()["detail"]
        await http.put(hold, json={"legal_hold": False}, headers=live.tenant.api())

        resp = await http.post(
            url,
            json={"spans": [span], "mode": "silence", "reason": "card number"},
            headers=live.tenant.api(),
        )
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()["recording"]
        assert body["redactions"] == [{**span, "reason": "card number"}]
        assert body["sha256"] != rec.sha256
        assert body["duration_ms"] == rec.duration_ms
        new = await http.get(f"/api/v1/calls/{call_id}/recording", headers=live.tenant.api())
        assert new.status_code == 200
    assert len(new.content) == body["size_bytes"]
    # The previous bytes are gone, every version of them, and the peaks too.
    assert s3.list_object_versions(Bucket=bucket, Prefix=old_key).get("Versions", []) == []
    assert s3.list_object_versions(Bucket=bucket, Prefix=old_peaks).get("Versions", []) == []
    row = await Recording.get(call_id=call_id)
    assert row.storage_key != rec.storage_key
    assert row.peaks_key != rec.peaks_key
    assert s3.head_object(Bucket=bucket, Key=f"rec/{row.peaks_key}")["ContentLength"] > 0
    assert await AuditEvent.filter(call_id=call_id, action="recording.redact").count() == 1
    # The redaction's webhook event is in the outbox (and not a second "available").
    sent = await WebhookDelivery.filter(call_id=call_id).values_list("type", flat=True)
    assert list(sent) == ["recording.redacted"]
    before, rate = decode(original)
    after, _ = decode(new.content)
    assert after.shape == before.shape
    per_ms = rate // 1000
    inside = slice(1030 * per_ms, 2470 * per_ms)
    assert rms_db(before[0, inside]) > -40
    assert rms_db(after[0, inside]) < -60
    # The other channel, and both outside the span (beyond a frame of its edges), as before.
    assert np.allclose(after[1], before[1], atol=1e-3) or (
        np.corrcoef(after[1], before[1])[0, 1] > 0.999
    )
    outside = np.ones(before.shape[1], dtype=bool)
    outside[(1000 - 60) * per_ms : (2500 + 60) * per_ms] = False
    assert np.corrcoef(after[0, outside], before[0, outside])[0, 1] > 0.99
