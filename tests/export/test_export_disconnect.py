"""A real ``talkturo serve`` on S3 (moto_server): clients that hang up mid-archive stop the
export. Their S3 bodies are closed (the S3 client's pool holds 10 connections, so a leaked
body per hang-up would make the exports after the tenth wait forever), no recording after
the hang-up is read or audited, and the server goes on serving."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import MotoServer, create_bucket, in_thread, make_s3_env, make_tenant, s3_client
from tests.playback.conftest import add_call_for_object
from web.db import close_db, open_db
from web.models import AuditEvent
from web.settings import DatabaseSettings

ENTRIES = 20
SIZE = 1024 * 1024
HANG_UPS = 12


async def _seed(db_url: str, shas: list[str]) -> tuple[str, list[str], str]:
    await open_db(DatabaseSettings(db_url))
    try:
        tenant = await make_tenant("Org Export Disconnect")
        keys = []
        for sha in shas:
            key = f"{tenant.org.id}/{uuid.uuid4()}.mp3"
            await add_call_for_object(tenant, key, sha256=sha, size=SIZE, duration_ms=60_000)
            keys.append(key)
        return str(tenant.org.id), keys, tenant.admin_key
    finally:
        await close_db()


async def _export_events(db_url: str) -> dict[str, int]:
    """Export audit events per export id."""
    await open_db(DatabaseSettings(db_url))
    try:
        counts: dict[str, int] = {}
        for event in await AuditEvent.filter(action="recording.export"):
            export_id = event.detail["export_id"]
            counts[export_id] = counts.get(export_id, 0) + 1
        return counts
    finally:
        await close_db()


def _hang_up_after_first_chunk(port: int, api_key: str) -> str:
    """Start an export, read its first bytes, stall, reset the connection; the export's id."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"GET /api/v1/recordings/export HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {api_key}\r\n\r\n".encode()
        )
        first = b""
        while b"\r\n\r\n" not in first:
            first += sock.recv(65536)
        # Reading nothing more for a moment: the server fills the socket and waits to send.
        time.sleep(0.5)
        # RST instead of FIN: the harshest way a client can go away.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    head = first.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 200"), head
    return next(
        line.split(":", 1)[1].strip()
        for line in head.split("\r\n")
        if line.lower().startswith("x-export-id:")
    )


def _settled(db_url: str) -> dict[str, int]:
    """The audit counts once they stop changing (the server has noticed every hang-up)."""
    last = in_thread(_export_events(db_url))
    for _ in range(120):
        time.sleep(1.0)
        now = in_thread(_export_events(db_url))
        if now == last:
            return now
        last = now
    raise AssertionError(f"exports went on after their clients left: {last}")


@pytest.mark.slow
def test_hang_ups_stop_the_export_and_leak_nothing(
    tmp_path: Path, db_url: str, moto_server: MotoServer, server_factory: Any
) -> None:
    payloads = [os.urandom(SIZE) for _ in range(ENTRIES)]
    shas = [hashlib.sha256(p).hexdigest() for p in payloads]
    _, keys, api_key = in_thread(_seed(db_url, shas))
    bucket = create_bucket(moto_server.endpoint)
    s3 = s3_client(moto_server.endpoint)
    for key, data in zip(keys, payloads, strict=True):
        s3.put_object(Bucket=bucket, Key=f"rec/{key}", Body=data)
    env = make_s3_env(tmp_path / "data", db_url, moto_server.endpoint, bucket)
    server = server_factory(env)

    cut = [_hang_up_after_first_chunk(server.port, api_key) for _ in range(HANG_UPS)]
    after_hang_ups = _settled(db_url)
    # Each export stopped with its client: far from all of its recordings were audited.
    for export_id in cut:
        assert after_hang_ups.get(export_id, 0) < ENTRIES // 2, after_hang_ups

    # More simultaneous exports than the S3 pool has connections: nothing was leaked.
    headers = {"Authorization": f"Bearer {api_key}"}

    def export(_: int) -> tuple[str, set[str]]:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            resp = c.get("/api/v1/recordings/export", headers=headers)
        assert resp.status_code == 200
        zf = zipfile.ZipFile(io.BytesIO(resp.content))
        assert zf.testzip() is None
        digests = {
            hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist() if n.endswith(".mp3")
        }
        return resp.headers["x-export-id"], digests

    with ThreadPoolExecutor(HANG_UPS) as pool:
        results = list(pool.map(export, range(HANG_UPS)))
    assert all(digests == set(shas) for _, digests in results)

    final = in_thread(_export_events(db_url))
    # The cut exports wrote nothing more; every complete one audited every recording once.
    assert {k: final.get(k) for k in after_hang_ups} == after_hang_ups
    assert all(final[export_id] == ENTRIES for export_id, _ in results)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get("/healthz").status_code == 200
    assert "Traceback" not in server.log()
