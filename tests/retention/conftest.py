"""Retention fixtures: the platform bucket and orgs' own buckets on a real moto_server.

``seed_recording`` makes a call started in the past and publishes its recording through the
real recordings service (spool → storage → ``available`` with its ``purge_at``), so every
stored object is real and lands in the bucket its org points at.
"""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MotoServer, create_bucket, make_s3_env
from tests.playback.conftest import SpeechRecording, completed_call, make_speech_recording
from web.models import Assistant, Call, Org, Recording, RecordingStatus
from web.recordings.publish import Finished, begin, publish
from web.security import encrypt_secret
from web.settings import Settings
from web.storage import Storages

TEST_SECRET = "test-secret-key-0123456789abcdef"


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechRecording:
    """One real two-voice recording for the whole session (espeak-ng, sox, the audio engine)."""
    return make_speech_recording(tmp_path_factory.mktemp("retention-speech"))


@pytest.fixture
def platform_bucket(moto_server: MotoServer) -> str:
    """The platform's bucket for this test."""
    return create_bucket(moto_server.endpoint)


@pytest.fixture
def env(
    tmp_path: Path, db_url: str, moto_server: MotoServer, platform_bucket: str
) -> dict[str, str]:
    """The app's environment: the platform storage is an S3 bucket on moto_server."""
    return make_s3_env(tmp_path / "data", db_url, moto_server.endpoint, platform_bucket, "platform")


async def give_own_bucket(org: Org, endpoint: str, bucket: str, prefix: str = "own") -> None:
    """Point ``org``'s new recordings at its own bucket (as a saved Storage form would)."""
    org.bucket_name = bucket
    org.bucket_prefix = prefix
    org.bucket_region = "us-east-1"
    org.bucket_endpoint_url = endpoint
    org.bucket_access_key_id = "testing"
    org.bucket_secret_encrypted = encrypt_secret(TEST_SECRET, "testing")
    await org.save()


async def seed_recording(
    settings: Settings,
    storages: Storages,
    org: Org,
    speech: SpeechRecording,
    started_at: datetime,
    workdir: Path,
    **rec_fields: Any,
) -> tuple[Call, Recording]:
    """A completed call of ``org`` started at ``started_at``, its recording published for real."""
    assistant = await Assistant.filter(org_id=org.id).first()
    call = await completed_call(
        org, started_at, assistant=assistant, ended_at=started_at, duration_ms=speech.duration_ms
    )
    spool = workdir / f"{uuid.uuid4().hex}.mp3"
    spool.write_bytes(speech.mp3)
    rec = (await begin(settings, storages, call, RecordingStatus.PROCESSING, spool)).row
    done = Finished(
        spool, gzip.compress(speech.peaks_json), speech.duration_ms, len(speech.mp3), speech.sha256
    )
    assert await publish(settings, storages, rec, done)
    if rec_fields:
        await Recording.filter(id=rec.id).update(**rec_fields)
    return call, await Recording.get(id=rec.id)


SeedRecording = Callable[..., Awaitable[tuple[Call, Recording]]]


def seeder(
    settings: Settings, storages: Storages, speech: SpeechRecording, workdir: Path
) -> SeedRecording:
    """``seed_recording`` with these settings, storages, speech and folder:
    ``await seed(org, started_at, **recording_fields)``."""

    async def seed_one(org: Org, started_at: datetime, **fields: Any) -> tuple[Call, Recording]:
        return await seed_recording(settings, storages, org, speech, started_at, workdir, **fields)

    return seed_one


@pytest.fixture
def seed(app: Any, settings: Settings, speech: SpeechRecording, tmp_path: Path) -> SeedRecording:
    """Recordings of this test's app (see :func:`seeder`)."""
    return seeder(settings, app.state.storages, speech, tmp_path)
