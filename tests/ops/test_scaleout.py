"""Scale-out: two web processes and one worker on one PostgreSQL database and one S3 bucket."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import ROOT, MotoServer, create_bucket, login, make_tenant, s3_client
from tests.ingest.conftest import (  # noqa: F401
    Voice,
    call_frames,
    create_call,
    frames,
    settled,
    stereo_start,
    voices,
)
from tests.ops.test_sigterm import wait_available
from web.models import Recording

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def db_backend() -> str:
    """PostgreSQL only: SQLite is one file on one host, not for several processes."""
    return "postgres"


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[Any]:
    """Start ``talkturo worker`` subprocesses; each is stopped after the test."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(env: dict[str, str]) -> Path:
        log_path = tmp_path / f"worker-{len(started)}.log"
        full_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", ""), **env}
        with log_path.open("ab") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "web", "worker"],
                env=full_env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        started.append((proc, log_path))
        return log_path

    yield start
    for proc, _ in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _object(endpoint: str, bucket: str, key: str) -> bytes:
    s3 = s3_client(endpoint)
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


async def test_two_web_processes_and_a_worker_share_one_database_and_bucket(
    env: dict[str, str],
    db: None,
    server_factory: Any,
    worker_process: Any,
    moto_server: MotoServer,
    voices: tuple[Voice, Voice],  # noqa: F811
) -> None:
    bucket = create_bucket(moto_server.endpoint)
    shared = {
        **env,
        "TALKTURO_EMBEDDED_WORKER": "0",
        "TALKTURO_STORAGE_URL": f"s3://{bucket}/rec",
        "TALKTURO_S3_ENDPOINT_URL": moto_server.endpoint,
        "TALKTURO_METRICS_TOKEN": "operator-metrics-token-0123456789",
    }
    tenant = await make_tenant("Org A")
    web_a = server_factory(shared)
    web_b = server_factory(shared)
    worker_log = worker_process(shared)

    # A call streamed to web A, whole, with a stop.
    call_id = await create_call(web_a.url, tenant)
    ws_a = web_a.url.replace("http://", "ws://")
    async with websockets.connect(f"{ws_a}/api/v1/calls/{call_id}/media", max_size=None) as ws:
        await ws.send(json.dumps(stereo_start(tenant.admin_key)))
        for message in call_frames(voices):
            await ws.send(json.dumps(message))
        await ws.send(json.dumps({"event": "stop"}))
        await asyncio.wait_for(ws.wait_closed(), 60)
        assert ws.close_code == 1000
    rec = await wait_available(call_id, within=60)
    stored = _object(moto_server.endpoint, bucket, f"rec/{rec.storage_key}")
    assert hashlib.sha256(stored).hexdigest() == rec.sha256

    async with (
        httpx.AsyncClient(base_url=web_a.url) as a,
        httpx.AsyncClient(base_url=web_b.url) as b,
    ):
        # Web A counted the stream: frames per track, encoder lag samples, no call left live.
        token = {"Authorization": f"Bearer {shared['TALKTURO_METRICS_TOKEN']}"}
        metrics = (await a.get("/metrics", headers=token)).text
        samples = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line and not line.startswith("#")
        }
        assert samples['talkturo_media_frames_total{track="inbound"}'] > 0
        assert samples['talkturo_media_frames_total{track="outbound"}'] > 0
        assert samples["talkturo_encoder_lag_seconds_count"] > 0
        assert samples["talkturo_live_calls"] == 0

        # Listed by web B; the signed API link web A made downloads from web B.
        listed = await b.get("/api/v1/calls", headers=tenant.api())
        assert listed.status_code == 200, listed.text
        assert call_id in json.dumps(listed.json())
        detail = await a.get(f"/api/v1/calls/{call_id}", headers=tenant.api())
        url = detail.json()["recording"]["url"]
        download = await b.get(url)
        assert download.status_code == 200, download.text
        assert download.content == stored

        # A session from web A plays on web B, with exact Range bytes.
        await login(a, tenant.admin.email)
        b.cookies.update(a.cookies)
        urls = await b.get(f"/calls/{call_id}/recording-url")
        assert urls.status_code == 200, urls.text
        part = await b.get(urls.json()["mp3_url"], headers={"Range": "bytes=1000-4999"})
        assert part.status_code == 206
        assert part.content == stored[1000:5000]

    # kill -9 of web A mid-call: the worker on the same host finalizes it, exactly once.
    lost_call = await create_call(web_b.url, tenant)
    caller, _ = voices
    wire = (caller.mulaw8k * (12 * 8000 // len(caller.mulaw8k) + 1))[: 12 * 8000]
    spool = Path(shared["TALKTURO_DATA_DIR"]) / "spool" / "calls" / f"{lost_call}.mp3"
    async with websockets.connect(f"{ws_a}/api/v1/calls/{lost_call}/media") as ws:
        await ws.send(json.dumps(stereo_start(tenant.admin_key)))
        for message in frames("inbound", wire, 8000, 1):
            await ws.send(json.dumps(message))
        await settled(spool)
        web_a.kill9()
    rec = await wait_available(lost_call, within=60)
    assert 12000 - 1500 <= (rec.duration_ms or 0) <= 12000 + 300
    assert await Recording.filter(call_id=lost_call).count() == 1
    stored = _object(moto_server.endpoint, bucket, f"rec/{rec.storage_key}")
    assert hashlib.sha256(stored).hexdigest() == rec.sha256
    recovered = f"recovered the recording of call {lost_call}"
    logs = worker_log.read_text() + web_b.log()
    assert logs.count(recovered) == 1, logs[-3000:]
