"""An org's own bucket is reached through the address guard at run time too.

A saved endpoint whose name later resolves to our own network (DNS rebinding, or saved
before the guard existed) gets no request: every connection is checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MotoServer, create_bucket, make_env, s3_keys
from web.security import encrypt_secret
from web.settings import Settings, load_settings
from web.storage import OwnBucket, Storages, StorageUnavailable


def _settings(tmp_path: Path, allow: str) -> Settings:
    return load_settings(
        make_env(tmp_path / "data", "sqlite://:memory:", TALKTURO_ALLOW_PRIVATE_ENDPOINTS=allow)
    )


def _own(settings: Settings, endpoint: str, bucket: str) -> OwnBucket:
    return OwnBucket(
        bucket=bucket,
        prefix="own",
        region="us-east-1",
        endpoint_url=endpoint,
        access_key_id="testing",
        secret_encrypted=encrypt_secret(settings.secret_key, "testing"),
    )


async def test_a_name_resolving_to_loopback_gets_no_request(
    tmp_path: Path, moto_server: MotoServer
) -> None:
    bucket = create_bucket(moto_server.endpoint)
    by_name = f"http://localhost:{moto_server.port}"
    settings = _settings(tmp_path, "0")
    async with Storages(settings) as storages:
        storage = await storages.for_new(_own(settings, by_name, bucket))
        with pytest.raises(StorageUnavailable):
            await storage.put_bytes("a/b.mp3", b"audio", "audio/mpeg")
        with pytest.raises(StorageUnavailable):
            await storages.for_new(_own(settings, moto_server.endpoint, bucket))
    assert s3_keys(moto_server.endpoint, bucket) == set()

    # The same bucket with the guard lifted: the request goes through.
    lifted = _settings(tmp_path, "1")
    async with Storages(lifted) as storages:
        storage = await storages.for_new(_own(lifted, by_name, bucket))
        await storage.put_bytes("a/b.mp3", b"audio", "audio/mpeg")
    assert s3_keys(moto_server.endpoint, bucket) == {"own/a/b.mp3"}
