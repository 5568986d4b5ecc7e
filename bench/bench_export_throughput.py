"""Export throughput and memory through a real server on moto_server (S3), in one run.

1. Throughput: GET /api/v1/recordings/export of 20 recordings of 10 MB against plain
   downloads of the same 20 recordings (GET /api/v1/calls/{id}/recording, one after
   another) from the same server, read by the same HTTP client. Five rounds alternating
   which goes first, after one untimed run of each; target: the median of the rounds'
   ratios export/download >= 0.8.
2. Memory: peak RSS growth of the server process (sampled from /proc every 50 ms) while
   one client exports 1 GB (100 recordings of 10 MB). Target <= 32 MB.
"""

from __future__ import annotations

import hashlib
import io
import os
import statistics
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from _common import progress, verdict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OBJECT_SIZE = 10 * 1024 * 1024
DISTINCT = 10
THROUGHPUT_CALLS = 20
MEMORY_CALLS = 100
ROUNDS = 5


def _rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes, from /proc."""
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> int:
    import boto3
    import httpx

    from tests.conftest import (
        _spawn_moto,
        create_bucket,
        free_port,
        in_thread,
        make_env,
        make_tenant,
        start_server,
    )
    from tests.playback.conftest import add_call_for_object
    from web.db import close_db, migrate, open_db
    from web.settings import DatabaseSettings

    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    moto_port = free_port()
    moto = _spawn_moto(moto_port)
    endpoint = f"http://127.0.0.1:{moto_port}"
    server = None
    try:
        bucket = create_bucket(endpoint)
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        progress(f"uploading {DISTINCT} objects of {OBJECT_SIZE >> 20} MB to moto_server")
        objects = []
        for i in range(DISTINCT):
            data = os.urandom(OBJECT_SIZE)
            key = f"bench/{i}.mp3"
            s3.put_object(Bucket=bucket, Key=f"rec/{key}", Body=data)
            objects.append((key, hashlib.sha256(data).hexdigest()))
            del data

        db_url = f"sqlite://{work}/talkturo.sqlite3"

        async def seed() -> tuple[str, str, list[str]]:
            await migrate(DatabaseSettings(db_url))
            await close_db()
            await open_db(DatabaseSettings(db_url))
            try:
                small = await make_tenant("Bench export")
                big = await make_tenant("Bench export 1 GB")
                ids = []
                for i in range(THROUGHPUT_CALLS):
                    key, sha = objects[i % DISTINCT]
                    call = await add_call_for_object(
                        small, key, sha256=sha, size=OBJECT_SIZE, duration_ms=600_000
                    )
                    ids.append(str(call.id))
                for i in range(MEMORY_CALLS):
                    key, sha = objects[i % DISTINCT]
                    await add_call_for_object(
                        big, key, sha256=sha, size=OBJECT_SIZE, duration_ms=600_000
                    )
                return small.admin_key, big.admin_key, ids
            finally:
                await close_db()

        small_key, big_key, call_ids = in_thread(seed())
        env = make_env(
            work / "data",
            db_url,
            TALKTURO_STORAGE_URL=f"s3://{bucket}/rec",
            TALKTURO_S3_ENDPOINT_URL=endpoint,
        )
        server = start_server(env, work / "server.log")
        headers = {"Authorization": f"Bearer {small_key}"}
        total = THROUGHPUT_CALLS * OBJECT_SIZE

        def export(key: str = small_key) -> tuple[float, int]:
            got = 0
            t0 = time.perf_counter()
            with (
                httpx.Client(base_url=server.url, timeout=600) as c,
                c.stream(
                    "GET", "/api/v1/recordings/export", headers={"Authorization": f"Bearer {key}"}
                ) as r,
            ):
                r.raise_for_status()
                for chunk in r.iter_raw(1 << 20):
                    got += len(chunk)
            return got / (time.perf_counter() - t0), got

        def downloads() -> tuple[float, int]:
            got = 0
            t0 = time.perf_counter()
            with httpx.Client(base_url=server.url, timeout=600) as c:
                for call_id in call_ids:
                    with c.stream(
                        "GET", f"/api/v1/calls/{call_id}/recording", headers=headers
                    ) as r:
                        r.raise_for_status()
                        for chunk in r.iter_raw(1 << 20):
                            got += len(chunk)
            return got / (time.perf_counter() - t0), got

        # Untimed: check the archive once, and warm both paths.
        with httpx.Client(base_url=server.url, timeout=600) as c:
            resp = c.get("/api/v1/recordings/export", headers=headers)
        zf = zipfile.ZipFile(io.BytesIO(resp.content))
        shas = {hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist() if ".mp3" in n}
        assert shas == {sha for _, sha in objects}, "archive entries differ from the objects"
        del resp, zf
        downloads()

        ratios = []
        for i in range(ROUNDS):
            order = (downloads, export) if i % 2 == 0 else (export, downloads)
            rates = {}
            for fetch in order:
                rate, got = fetch()
                assert got >= total
                rates[fetch] = rate
            ratios.append(rates[export] / rates[downloads])
            progress(
                f"round {i + 1}/{ROUNDS}: downloads {rates[downloads] / 2**20:.0f} MB/s, "
                f"export {rates[export] / 2**20:.0f} MB/s, ratio {ratios[-1]:.3f}"
            )
        print(f"ratio export/downloads per round: {' '.join(f'{r:.2f}' for r in ratios)}")
        ratio = statistics.median(ratios)
        ok = verdict("throughput ratio export/downloads (median)", ratio, 0.8, at_most=False)

        pid = server.proc.pid
        baseline = _rss(pid)
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _rss(pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        progress(f"exporting {MEMORY_CALLS * OBJECT_SIZE >> 20} MB in one archive")
        rate, got = export(big_key)
        done.set()
        sampler.join()
        assert got >= MEMORY_CALLS * OBJECT_SIZE
        growth = (peak - baseline) / 2**20
        print(
            f"1 GB export: {got / 2**20:.0f} MB at {rate / 2**20:.0f} MB/s, "
            f"server RSS {baseline / 2**20:.0f} MB -> peak {peak / 2**20:.0f} MB"
        )
        ok = verdict("server peak RSS growth exporting 1 GB, MB", growth, 32, at_most=True) and ok
        return 0 if ok else 1
    finally:
        if server is not None:
            server.stop()
        moto.terminate()
        moto.wait(10)


if __name__ == "__main__":
    raise SystemExit(main())
