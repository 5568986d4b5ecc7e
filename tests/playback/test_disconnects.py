"""A real ``talkturo serve`` on S3 (moto_server): clients that hang up mid-download leave
nothing open behind them. The S3 client's pool holds 10 connections, so a leaked body per
hang-up would make the requests after the tenth wait forever; they must all still work."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    MotoServer,
    create_bucket,
    in_thread,
    make_s3_env,
    make_tenant,
    s3_client,
)
from tests.playback.conftest import add_call_for_object
from web.db import close_db, open_db
from web.settings import DatabaseSettings

SIZE = 8 * 1024 * 1024


async def _seed(db_url: str, sha: str) -> tuple[str, str, str]:
    await open_db(DatabaseSettings(db_url))
    try:
        tenant = await make_tenant("Org Disconnect")
        key = f"{tenant.org.id}/{uuid.uuid4()}.mp3"
        call = await add_call_for_object(tenant, key, sha256=sha, size=SIZE, duration_ms=60_000)
        return str(call.id), key, tenant.admin_key
    finally:
        await close_db()


def _hang_up_after_first_chunk(port: int, path: str, key: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            "Range: bytes=0-\r\n\r\n".encode()
        )
        first = sock.recv(65536)
        # RST instead of FIN: the harshest way a browser tab can go away.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return len(first)


@pytest.mark.slow
def test_fifty_hang_ups_then_everything_still_works(
    tmp_path: Path, db_url: str, moto_server: MotoServer, server_factory: Any
) -> None:
    payload = os.urandom(SIZE)
    sha = hashlib.sha256(payload).hexdigest()
    call_id, key, api_key = in_thread(_seed(db_url, sha))
    bucket = create_bucket(moto_server.endpoint)
    s3_client(moto_server.endpoint).put_object(Bucket=bucket, Key=f"rec/{key}", Body=payload)
    env = make_s3_env(tmp_path / "data", db_url, moto_server.endpoint, bucket)
    server = server_factory(env)
    path = f"/api/v1/calls/{call_id}/recording"

    for _ in range(50):
        assert _hang_up_after_first_chunk(server.port, path, api_key) > 0

    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        whole = client.get(path, headers=headers)
        assert whole.status_code == 200
        assert hashlib.sha256(whole.content).hexdigest() == sha
        tail = client.get(path, headers={**headers, "Range": f"bytes={SIZE - 5}-"})
        assert tail.status_code == 206
        assert tail.content == payload[-5:]

    # More simultaneous downloads than the S3 pool has connections: nothing was leaked.
    def fetch(_: int) -> str:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            return hashlib.sha256(c.get(path, headers=headers).content).hexdigest()

    with ThreadPoolExecutor(12) as pool:
        assert set(pool.map(fetch, range(12))) == {sha}
    assert "Traceback" not in server.log()
    assert uuid.UUID(call_id)
