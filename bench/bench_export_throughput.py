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
import time
import zipfile
from pathlib import Path

from _common import PeakRss, alternating_ratios, drain, progress, s3_site, seed_sqlite, verdict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OBJECT_SIZE = 10 * 1024 * 1024
DISTINCT = 10
THROUGHPUT_CALLS = 20
MEMORY_CALLS = 100
ROUNDS = 5


def main() -> int:
    import httpx

    from tests.conftest import make_tenant
    from tests.playback.conftest import add_call_for_object

    with s3_site("bench-export-") as site:
        progress(f"uploading {DISTINCT} objects of {OBJECT_SIZE >> 20} MB to moto_server")
        objects = []
        for i in range(DISTINCT):
            data = os.urandom(OBJECT_SIZE)
            key = f"bench/{i}.mp3"
            site.s3.put_object(Bucket=site.bucket, Key=f"rec/{key}", Body=data)
            objects.append((key, hashlib.sha256(data).hexdigest()))
            del data

        async def seed() -> tuple[str, str, list[str]]:
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

        small_key, big_key, call_ids = seed_sqlite(site.db_url, seed)
        server = site.serve()
        headers = {"Authorization": f"Bearer {small_key}"}
        total = THROUGHPUT_CALLS * OBJECT_SIZE

        def export(key: str = small_key) -> tuple[float, int]:
            t0 = time.perf_counter()
            with httpx.Client(base_url=server.url, timeout=600) as c:
                got, _ = drain(c, "/api/v1/recordings/export", {"Authorization": f"Bearer {key}"})
            return got / (time.perf_counter() - t0), got

        def downloads() -> tuple[float, int]:
            got = 0
            t0 = time.perf_counter()
            with httpx.Client(base_url=server.url, timeout=600) as c:
                for call_id in call_ids:
                    got += drain(c, f"/api/v1/calls/{call_id}/recording", headers)[0]
            return got / (time.perf_counter() - t0), got

        # Untimed: check the archive once, and warm both paths.
        with httpx.Client(base_url=server.url, timeout=600) as c:
            resp = c.get("/api/v1/recordings/export", headers=headers)
        zf = zipfile.ZipFile(io.BytesIO(resp.content))
        shas = {hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist() if ".mp3" in n}
        assert shas == {sha for _, sha in objects}, "archive entries differ from the objects"
        del resp, zf
        downloads()

        def complete(got: int) -> None:
            assert got >= total

        ratios = alternating_ratios(export, downloads, ROUNDS, ("downloads", "export"), complete)
        print(f"ratio export/downloads per round: {' '.join(f'{r:.2f}' for r in ratios)}")
        ratio = statistics.median(ratios)
        ok = verdict("throughput ratio export/downloads (median)", ratio, 0.8, at_most=False)

        progress(f"exporting {MEMORY_CALLS * OBJECT_SIZE >> 20} MB in one archive")
        with PeakRss(server.proc.pid) as rss:
            rate, got = export(big_key)
        assert got >= MEMORY_CALLS * OBJECT_SIZE
        print(
            f"1 GB export: {got / 2**20:.0f} MB at {rate / 2**20:.0f} MB/s, "
            f"server RSS {rss.baseline / 2**20:.0f} MB -> peak {rss.peak / 2**20:.0f} MB"
        )
        ok = (
            verdict("server peak RSS growth exporting 1 GB, MB", rss.growth_mb, 32, at_most=True)
            and ok
        )
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
