"""Both storage implementations behind one fixture: a local directory and S3 on moto_server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import MotoServer, create_bucket, make_env
from web.settings import load_settings
from web.storage import Storage, Storages


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """The platform storage of a real :class:`Storages`: local directory, or a moto bucket."""
    extra: dict[str, str] = {}
    if request.param == "s3":
        moto: MotoServer = request.getfixturevalue("moto_server")
        bucket = create_bucket(moto.endpoint)
        extra = {
            "TALKTURO_STORAGE_URL": f"s3://{bucket}/some/prefix",
            "TALKTURO_S3_ENDPOINT_URL": moto.endpoint,
        }
    settings = load_settings(make_env(tmp_path / "data", "sqlite://:memory:", **extra))
    async with Storages(settings) as storages:
        yield storages.platform()
