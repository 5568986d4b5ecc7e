"""Live load: how many concurrent real-time calls one server process keeps up with.

One ``talkturo serve`` process (SQLite, local storage) on loopback; a separate load-generator
process opens N media streams and sends both legs of a call (caller mu-law 8 kHz, assistant
L16 24 kHz, espeak-ng speech) as 20 ms Twilio frames at real-time pace, then ``stop``.
A level passes when every frame went out less than 1 s behind its schedule, every stream
closed normally, every recording is ``available`` with the full duration, and the p99 from
``stop`` to ``available`` (the row's ``available_at``, read after the level so no polling
loads the server) is at most 1 s. The
generator's own CPU is printed so it is never the bottleneck. N grows until a level fails;
prints the largest N that passed (target >= 150). The level of 60 calls is also the
hang-up burst: 60 calls hanging up within 20 ms, stop -> ``available`` p99 (target <= 300 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LEVELS = (25, 50, 60, 100, 150, 200, 300)
# The level whose p99 is the simultaneous hang-up figure, and its target.
BURST = 60
BURST_TARGET_MS = 300.0


def _frames(seconds: int) -> list[tuple[str, str]]:
    from bench._common import make_call

    caller, assistant, _ = make_call(max(seconds, 10))
    out = []
    for k in range(seconds * 50):
        msgs = []
        for track, data, step in (("inbound", caller, 160), ("outbound", assistant, 960)):
            payload = base64.b64encode(data[k * step : (k + 1) * step]).decode()
            media = {"track": track, "timestamp": str(k * 20), "payload": payload}
            msgs.append(json.dumps({"event": "media", "media": media}))
        out.append((msgs[0], msgs[1]))
    return out


START = {
    "event": "start",
    "start": {
        "mediaFormats": {
            "inbound": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "outbound": {"encoding": "audio/x-l16", "sampleRate": 24000, "channels": 1},
        },
        "customParameters": {},
    },
}


async def _generate(url: str, key: str, calls: list[str], seconds: int) -> dict[str, float]:
    import websockets

    from bench._common import send_paced

    frames = _frames(seconds)
    start = json.dumps({**START, "start": {**START["start"], "customParameters": {"token": key}}})
    worst = 0.0
    drain = 0.0
    bad = 0
    stops: dict[str, float] = {}

    def late(lag: float) -> None:
        nonlocal worst
        worst = max(worst, lag)

    async def one(call_id: str, offset: float) -> None:
        nonlocal drain, bad
        await asyncio.sleep(offset)
        # No keepalive pings: on a busy machine a late pong must not end a stream.
        url_ = f"{url}/api/v1/calls/{call_id}/media"
        async with websockets.connect(url_, ping_interval=None) as ws:
            await ws.send(start)
            await send_paced(ws, frames, late)
            loop = asyncio.get_running_loop()
            sent = loop.time()
            stops[call_id] = time.time()
            await ws.send(json.dumps({"event": "stop"}))
            await ws.wait_closed()
            drain = max(drain, loop.time() - sent)
            if ws.close_code != 1000:
                bad += 1

    n = len(calls)
    cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    wall0 = asyncio.get_running_loop().time()
    # Calls start spread over one frame period, as real calls do not all tick together.
    await asyncio.gather(*(one(c, 0.02 * i / n) for i, c in enumerate(calls)))
    cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu0
    return {
        "max_send_lag_s": worst,
        "max_stop_to_close_s": drain,
        "bad_closes": bad,
        "gen_cores": cpu / (asyncio.get_running_loop().time() - wall0),
        "stops": stops,
    }


def generator_main(args: argparse.Namespace) -> int:
    calls = Path(args.calls_file).read_text().split()
    result = asyncio.run(_generate(args.url, args.key, calls, args.seconds))
    print(json.dumps(result))
    return 0


async def _stop_to_available(settings: object, stops: dict[str, float]) -> list[float]:
    """Seconds from each call's ``stop`` to its recording's ``available_at`` (inf if never)."""
    from web.db import close_db, open_db
    from web.models import Recording

    await open_db(settings.database)  # type: ignore[attr-defined]
    try:
        rows = await Recording.filter(call_id__in=list(stops)).values("call_id", "available_at")
    finally:
        await close_db()
    # Stored in UTC; a naive value from the database is UTC too.
    at = {
        str(r["call_id"]): r["available_at"].replace(tzinfo=r["available_at"].tzinfo or UTC)
        for r in rows
        if r["available_at"] is not None
    }
    return sorted(
        at[c].timestamp() - t if at.get(c) is not None else float("inf") for c, t in stops.items()
    )


def run_level(
    settings: object, base: str, key: str, asst: str, n: int, seconds: int, work: Path
) -> tuple[bool, str, float]:
    import httpx

    from bench._common import generator_command

    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        calls, command = generator_command(
            __file__, http, asst, n, work / f"calls-{n}.txt", base=base, key=key, seconds=seconds
        )
        gen = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds * 10 + 120,
        )
        if gen.returncode != 0:
            return False, f"generator failed: {gen.stderr[-500:]}", float("inf")
        stats = json.loads(gen.stdout.strip().splitlines()[-1])
        short = 0
        for call_id in calls:
            rec = http.get(f"/api/v1/calls/{call_id}").json()["recording"]
            if not rec or rec["status"] != "available" or rec["duration_ms"] < seconds * 1000 - 100:
                short += 1
    waits = asyncio.run(_stop_to_available(settings, stats["stops"]))
    stats["stop_to_available_p50_s"] = waits[len(waits) // 2]
    stats["stop_to_available_p99_s"] = waits[min(len(waits) - 1, round(0.99 * (len(waits) - 1)))]
    ok = (
        stats["max_send_lag_s"] < 1.0
        and stats["stop_to_available_p99_s"] <= 1.0
        and stats["bad_closes"] == 0
        and short == 0
    )
    detail = (
        f"max send lag {stats['max_send_lag_s'] * 1000:.0f} ms, "
        f"max stop->close {stats['max_stop_to_close_s'] * 1000:.0f} ms, "
        f"stop->available p50 {stats['stop_to_available_p50_s'] * 1000:.0f} ms "
        f"p99 {stats['stop_to_available_p99_s'] * 1000:.0f} ms, "
        f"generator {stats['gen_cores']:.2f} cores, "
        f"bad closes {stats['bad_closes']}, incomplete recordings {short}"
    )
    return ok, detail, stats["stop_to_available_p99_s"] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url")
    parser.add_argument("--key")
    parser.add_argument("--calls-file")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    args = parser.parse_args()
    if args.generate:
        return generator_main(args)

    from bench._common import progress, start_local_server, verdict

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        local = start_local_server(work)
        settings, server, key, asst = local.settings, local.server, local.key, local.assistant_id
        best = 0
        burst_ms: float | None = None
        try:
            for n in (int(x) for x in args.levels.split(",")):
                progress(f"{n} concurrent calls x {args.seconds} s at real-time pace ...")
                ok, detail, p99_ms = run_level(
                    settings, server.url, key, asst, n, args.seconds, work
                )
                progress(f"  {'ok' if ok else 'FAILED'}: {detail}")
                print(f"N={n}: {'kept up' if ok else 'fell behind'} ({detail})")
                if n == BURST:
                    burst_ms = p99_ms
                    print(
                        f"{BURST} simultaneous hang-ups: stop->available p99 {p99_ms:.0f} ms"
                        f" (target {BURST_TARGET_MS:.0f}): ratio {p99_ms / BURST_TARGET_MS:.2f}"
                    )
                if not ok:
                    break
                best = n
        finally:
            server.stop()
    print(f"largest N kept up with: {best}")
    passed = verdict("concurrent real-time calls", best, 150, at_most=False)
    if burst_ms is not None:
        name = f"{BURST} simultaneous hang-ups, stop->available p99 (ms)"
        passed = verdict(name, burst_ms, BURST_TARGET_MS, at_most=True) and passed
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
