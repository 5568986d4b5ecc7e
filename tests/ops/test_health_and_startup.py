"""Operations: liveness, readiness with real faults, metrics access, start-up validation."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import MotoServer, Tenant, create_bucket, make_env, make_s3_env, talkturo


class TcpProxy:
    """A loopback TCP proxy: stopping it is, for the app, the database going away."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.port = 0
        self.pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.pipes):
            task.cancel()
        await asyncio.gather(*self.pipes, return_exceptions=True)
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    w.close()

        for t in (pipe(reader, up_w), pipe(up_r, writer)):
            task = asyncio.ensure_future(t)
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    live = await client.get("/healthz")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"


METRICS_TOKEN = "operator-metrics-token-0123456789"


async def test_metrics_are_404_without_the_setting(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    for headers in ({}, tenant.api(), tenant.api("agent")):
        resp = await client.get("/metrics", headers=headers)
        assert resp.status_code == 404, headers
        assert "talkturo_" not in resp.text


async def test_metrics_need_the_operators_token(tmp_path: Path, db_url: str) -> None:
    from tests.conftest import app_client, make_tenant
    from web.app import create_app
    from web.settings import load_settings

    env = make_env(tmp_path / "data", db_url, TALKTURO_METRICS_TOKEN=METRICS_TOKEN)
    async with app_client(create_app(load_settings(env))) as client:
        tenant = await make_tenant("Org A")
        assert (await client.get("/metrics")).status_code == 401
        # An org's admin key is not the operator's token: platform-wide figures stay hidden.
        for headers in (tenant.api(), tenant.api("agent"), {"Authorization": "Bearer nope"}):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 403, headers
            assert "talkturo_" not in refused.text
        resp = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert resp.status_code == 200
    for name in (
        "talkturo_live_calls",
        "talkturo_media_frames_total",
        "talkturo_encoder_lag_seconds",
        'talkturo_recordings{status="available"}',
        "talkturo_upload_retries_total",
        "talkturo_purged_total",
        "talkturo_request_duration_seconds_bucket",
    ):
        assert name in resp.text, name


@pytest.fixture
async def pg_proxy(pg_database: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    """The session's PostgreSQL database, reached through a proxy the test can stop."""
    proxy = TcpProxy(5432)
    await proxy.start()
    yield proxy, pg_database.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    if proxy.server is not None and proxy.server.is_serving():
        await proxy.stop()


@pytest.mark.postgres
async def test_readyz_names_the_database_when_postgres_is_gone(
    tmp_path: Path, pg_proxy: tuple[TcpProxy, str], server_factory: object
) -> None:
    proxy, url = pg_proxy
    env = make_env(tmp_path / "data", url)
    server = await asyncio.to_thread(server_factory, env)  # type: ignore[operator]
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        assert (await http.get("/readyz")).status_code == 200
        await proxy.stop()
        resp = await http.get("/readyz")
        assert resp.status_code == 503
        assert "database" in resp.json()["problems"]
        assert "storage" not in resp.json()["problems"]
        assert (await http.get("/healthz")).status_code == 200


async def test_readyz_names_storage_when_s3_is_gone(
    tmp_path: Path, db_url: str, moto_server_private: MotoServer, server_factory: object
) -> None:
    bucket = create_bucket(moto_server_private.endpoint)
    env = make_s3_env(tmp_path / "data", db_url, moto_server_private.endpoint, bucket)
    server = await asyncio.to_thread(server_factory, env)  # type: ignore[operator]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        assert (await http.get("/readyz")).status_code == 200
        moto_server_private.stop()
        resp = await http.get("/readyz")
        assert resp.status_code == 503
        assert list(resp.json()["problems"]) == ["storage"]


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"TALKTURO_DATABASE_URL": "mysql://x"}, "TALKTURO_DATABASE_URL"),
        (
            {"TALKTURO_DATABASE_URL": "postgres://postgres@127.0.0.1:1/nothing"},
            "TALKTURO_DATABASE_URL",
        ),
        ({"TALKTURO_STORAGE_URL": "ftp://files"}, "TALKTURO_STORAGE_URL"),
        ({"TALKTURO_STORAGE_URL": "s3://"}, "TALKTURO_STORAGE_URL"),
        ({"TALKTURO_PORT": "http"}, "TALKTURO_PORT"),
        ({"TALKTURO_STREAM_TIMEOUT": "-5"}, "TALKTURO_STREAM_TIMEOUT"),
    ],
)
@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_bad_setting_stops_the_process_with_one_line(
    tmp_path: Path, db_url: str, override: dict[str, str], named: str, command: str
) -> None:
    env = make_env(tmp_path / "data", db_url, **override)
    result = talkturo(env, command, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(named)


def test_a_missing_bucket_stops_the_process(
    tmp_path: Path, db_url: str, moto_server: MotoServer
) -> None:
    env = make_env(
        tmp_path / "data",
        db_url,
        TALKTURO_STORAGE_URL="s3://no-such-bucket-here",
        TALKTURO_S3_ENDPOINT_URL=moto_server.endpoint,
    )
    result = talkturo(env, "serve", timeout=60)
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "TALKTURO_STORAGE_URL: bucket 'no-such-bucket-here' does not exist"
    )


def test_a_data_dir_that_is_a_file_stops_the_process(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    env = make_env(not_a_dir, f"sqlite://{tmp_path}/x.sqlite3")
    result = talkturo(env, "serve", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("TALKTURO_DATA_DIR")


async def test_request_log_is_json_with_ids_and_no_secrets(
    tmp_path: Path, db_url: str, server_factory: object
) -> None:
    env = make_env(tmp_path / "data", db_url)
    server = await asyncio.to_thread(server_factory, env)  # type: ignore[operator]
    call_id = "0b9f4b1e-2d7c-4c55-9d35-1f0a7b1c2d3e"
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        await http.get(
            f"/api/v1/calls/{call_id}", headers={"Authorization": "Bearer tk_secret_value"}
        )
        await http.get("/api/v1/calls/x/recording?expires=1&signature=topsecret")
    await asyncio.sleep(0.2)
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("logger") == "talkturo.request"]
    assert any(r.get("call_id") == call_id and r["status"] == 401 for r in requests), requests
    text = server.log()
    assert "tk_secret_value" not in text
    assert "topsecret" not in text


def test_a_short_metrics_token_is_refused(tmp_path: Path) -> None:
    from web.settings import SettingsError, load_settings

    env = make_env(tmp_path / "data", "sqlite://x.sqlite3", TALKTURO_METRICS_TOKEN="short")
    with pytest.raises(SettingsError, match="TALKTURO_METRICS_TOKEN"):
        load_settings(env)
