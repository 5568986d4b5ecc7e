"""Weight of the dashboard on the wire: the first load of /calls (HTML and every file it
references) and one Call Detail fragment, gzip-compressed as the server sends them.

Reference measured in the same run: the same bytes uncompressed.
Targets: first load of /calls <= 100 KB transferred; detail fragment <= 30 KB.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import progress, signed_in_client, verdict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-0123"
EMAIL = "weight-admin@example.com"
CALLS = 60
TURNS = 40


async def seed(db_url: str) -> str:
    """A full first page of calls; the newest has a long transcript, analysis and recording."""
    from web.db import close_db, migrate, open_db
    from web.models import (
        Analysis,
        Assistant,
        CallStatus,
        Direction,
        Message,
        MessageRole,
        Plan,
        Recording,
        RecordingStatus,
        Role,
    )
    from web.services.accounts import create_org, create_user
    from web.services.calls import new_call
    from web.settings import DatabaseSettings

    settings = DatabaseSettings(db_url)
    await migrate(settings)
    await open_db(settings)
    try:
        org = await create_org("Weight org", Plan.PRO)
        await create_user(org, EMAIL, PASSWORD, Role.ADMIN)
        assistants = [await Assistant.create(org=org, name=f"Assistant {k}") for k in range(5)]
        now = datetime(2025, 6, 1, tzinfo=UTC)
        newest = None
        for i in range(CALLS):
            started = now - timedelta(minutes=7 * i)
            call = await new_call(
                org.id,
                assistants[i % 5],
                Direction.INBOUND if i % 3 else Direction.OUTBOUND,
                f"+1 415-555-{1000 + i:04d}",
                "+1 415-555-0100",
                started,
                status=CallStatus.COMPLETED,
                ended_at=started + timedelta(minutes=4),
                duration_ms=240_000,
                recording_enabled=True,
                has_recording=True,
                transcript_text="",
            )
            await Recording.create(
                call=call,
                org=org,
                status=RecordingStatus.AVAILABLE,
                duration_ms=240_000,
                size_bytes=950_000,
                sha256="0" * 64,
                purge_at=started + timedelta(days=365),
            )
            newest = newest or call
        assert newest is not None
        turns = [
            Message(
                call=newest,
                seq=k,
                role=MessageRole.USER if k % 2 == 0 else MessageRole.ASSISTANT,
                text="I am calling about my order, it has not arrived and I need it by Friday."
                if k % 2 == 0
                else "Thanks for waiting. I found the order; it ships today and arrives Thursday.",
                start_ms=k * 6000,
                end_ms=k * 6000 + 5000,
            )
            for k in range(TURNS)
        ]
        await Message.bulk_create(turns)
        newest.transcript_text = "\n".join(m.text for m in turns)
        await newest.save(update_fields=["transcript_text"])
        await Analysis.create(
            call=newest,
            summary="The caller asked about a late order; it ships today.",
            success=True,
            data={"order_id": "A-1001", "eta": "Thursday", "items": [{"sku": "X1", "qty": 2}]},
        )
        return str(newest.id)
    finally:
        await close_db()


async def measure(db_url: str, data: Path, call_id: str) -> dict[str, Any]:
    gz = {"Accept-Encoding": "gzip"}
    plain = {"Accept-Encoding": "identity"}
    out: dict[str, Any] = {"files": []}
    async with signed_in_client(db_url, data, EMAIL, PASSWORD) as client:

        async def weigh(url: str, headers: dict[str, str] | None = None) -> tuple[int, int, str]:
            zipped = await client.get(url, headers={**gz, **(headers or {})})
            raw = await client.get(url, headers={**plain, **(headers or {})})
            assert zipped.status_code == 200, (url, zipped.status_code)
            return zipped.num_bytes_downloaded, raw.num_bytes_downloaded, zipped.text

        z, r, html = await weigh("/calls")
        out["files"].append(("/calls", z, r))
        refs = re.findall(r'<(?:link|script)[^>]+(?:href|src)="(/[^"]+)"', html)
        for ref in dict.fromkeys(refs):
            fz, fr, _ = await weigh(ref)
            out["files"].append((ref, fz, fr))
        dz, dr, detail = await weigh(f"/calls/{call_id}", {"HX-Request": "true"})
        assert "data-seek-ms" in detail
        out["detail"] = (dz, dr)
    return out


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-weight-"))
    try:
        db_url = f"sqlite://{work}/talkturo.sqlite3"
        progress(f"seeding {CALLS} calls, one with {TURNS} transcript turns")
        call_id = asyncio.run(seed(db_url))
        progress("fetching /calls, what it references, and one detail fragment")
        result = asyncio.run(measure(db_url, work / "data", call_id))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total_z = total_r = 0
    for url, z, r in result["files"]:
        total_z += z
        total_r += r
        print(f"  {url:40} {z / 1024:7.1f} KB gzip  {r / 1024:7.1f} KB plain")
    dz, dr = result["detail"]
    print(
        f"first load of /calls: {total_z / 1024:.1f} KB transferred "
        f"({total_r / 1024:.1f} KB uncompressed, ratio {total_z / total_r:.2f})"
    )
    print(
        f"detail fragment: {dz / 1024:.1f} KB transferred "
        f"({dr / 1024:.1f} KB uncompressed, ratio {dz / dr:.2f})"
    )
    ok = verdict("first load of /calls KB", total_z / 1024, 100, at_most=True)
    ok &= verdict("detail fragment KB", dz / 1024, 30, at_most=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
