"""Recordings under the customer's own KMS key, and the platform bucket's encryption setting."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from audio.formats import MULAW_TABLE
from tests.conftest import (
    MotoServer,
    Tenant,
    api_call,
    app_client,
    aws_client,
    create_bucket,
    make_tenant,
    s3_client,
)
from tests.ingest.conftest import Voice
from tests.ingest.test_keypad_tones import _stereo_wav
from web.app import create_app
from web.models import Plan, Recording
from web.settings import SettingsError, load_settings


def kms_client(endpoint: str) -> Any:
    return aws_client("kms", endpoint)


def _wav(voices: tuple[Voice, Voice]) -> bytes:
    caller = MULAW_TABLE[np.frombuffer(voices[0].mulaw8k, dtype=np.uint8)]
    return _stereo_wav(caller, np.zeros_like(caller))


async def _upload(http: httpx.AsyncClient, tenant: Tenant, wav: bytes) -> Recording:
    _, call_id = await api_call(http, tenant)
    resp = await http.put(
        f"/api/v1/calls/{call_id}/recording",
        content=wav,
        headers={**tenant.api(), "Content-Type": "audio/wav"},
    )
    assert resp.status_code == 200, resp.text
    return await Recording.get(call_id=call_id)


async def test_own_bucket_kms_key_checked_and_used(
    client: httpx.AsyncClient,
    moto_server: MotoServer,
    voices: tuple[Voice, Voice],
    db_backend: str,
) -> None:
    endpoint = moto_server.endpoint
    bucket = create_bucket(endpoint)
    kms = kms_client(endpoint)
    good = kms.create_key(Description="recordings")["KeyMetadata"]["KeyId"]
    disabled = kms.create_key(Description="old")["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    tenant = await make_tenant("Enterprise", Plan.ENTERPRISE)
    body = {
        "bucket": bucket,
        "prefix": "calls",
        "region": "us-east-1",
        "endpoint_url": endpoint,
        "access_key_id": "testing",
        "secret_access_key": "testing",
    }
    url = "/api/v1/org/storage"
    missing = await client.patch(
        url, json={**body, "kms_key_id": "no-such-key"}, headers=tenant.api()
    )
    assert missing.status_code == 422
    assert "does not exist" in missing.json()["detail"]
    off = await client.patch(url, json={**body, "kms_key_id": disabled}, headers=tenant.api())
    assert off.status_code == 422
    assert "disabled" in off.json()["detail"]
    assert (await client.get(url, headers=tenant.api())).json()["storage"] == "platform"
    agent = await client.patch(url, json={**body, "kms_key_id": good}, headers=tenant.api("agent"))
    assert agent.status_code == 403
    saved = await client.patch(url, json={**body, "kms_key_id": good}, headers=tenant.api())
    assert saved.status_code == 200, saved.text
    assert saved.json()["kms_key_id"] == good
    assert (await client.get(url, headers=tenant.api())).json()["kms_key_id"] == good

    rec = await _upload(client, tenant, _wav(voices))
    s3 = s3_client(endpoint)
    for key in (rec.storage_key, rec.peaks_key):
        head = s3.head_object(Bucket=bucket, Key=f"calls/{key}")
        assert head["ServerSideEncryption"] == "aws:kms"
        assert good in head["SSEKMSKeyId"]

    # Changing only the key keeps the bucket and the stored secret; a disabled one is refused.
    again = await client.patch(url, json={"kms_key_id": disabled}, headers=tenant.api())
    assert again.status_code == 422
    cleared = await client.patch(url, json={"kms_key_id": None}, headers=tenant.api())
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["kms_key_id"] is None
    assert cleared.json()["bucket"] == bucket


async def test_platform_bucket_server_side_encryption(
    env: dict[str, str], moto_server: MotoServer, voices: tuple[Voice, Voice], db_backend: str
) -> None:
    endpoint = moto_server.endpoint
    bucket = create_bucket(endpoint)
    key_id = kms_client(endpoint).create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(SettingsError, match="TALKTURO_S3_SSE"):
        load_settings({**env, "TALKTURO_S3_SSE": "rot13"})
    s3 = s3_client(endpoint)
    for sse, expect in (("AES256", "AES256"), (f"aws:kms:{key_id}", "aws:kms")):
        settings = load_settings(
            {
                **env,
                "TALKTURO_STORAGE_URL": f"s3://{bucket}/rec",
                "TALKTURO_S3_ENDPOINT_URL": endpoint,
                "TALKTURO_S3_SSE": sse,
            }
        )
        async with app_client(create_app(settings)) as http:
            tenant = await make_tenant("Org")
            rec = await _upload(http, tenant, _wav(voices))
        head = s3.head_object(Bucket=bucket, Key=f"rec/{rec.storage_key}")
        assert head["ServerSideEncryption"] == expect
        if expect == "aws:kms":
            assert key_id in head["SSEKMSKeyId"]
