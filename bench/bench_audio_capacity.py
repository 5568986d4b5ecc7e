"""Live capacity: how many real-time calls one core can record (both legs, 50 chunks/s each).

Runs N recorders side by side in one thread, chunk by chunk in arrival order, the way one
server process interleaves its calls, and measures CPU time. Target: >= 200 calls per core.
"""

from __future__ import annotations

import sys
import time

from _common import chunked, make_call, progress, verdict

from audio import LegFormat, Recorder

CALLS = 20
SECONDS = 120


def main() -> int:
    progress(f"making a {SECONDS} s call from espeak-ng speech...")
    caller, assistant, _ = make_call(SECONDS)
    stream = chunked(caller, assistant)
    per_tick = 2
    best = float("inf")
    for attempt in range(3):
        recorders = [
            Recorder(LegFormat("mulaw", 8000), LegFormat("l16", 24000)) for _ in range(CALLS)
        ]
        started = time.process_time()
        for index in range(0, len(stream), per_tick):
            tick = stream[index : index + per_tick]
            for recorder in recorders:
                for leg, ts, payload in tick:
                    recorder.push(leg, ts, payload)  # type: ignore[arg-type]
                if recorder.encode_due:
                    recorder.encode()
            if index % (len(stream) // 4) == 0:
                progress(f"  attempt {attempt + 1}: {index * 100 // len(stream)}%")
        for recorder in recorders:
            recorder.finish()
        best = min(best, time.process_time() - started)
    call_seconds = CALLS * SECONDS
    per_call_second_ms = best / call_seconds * 1000
    capacity = call_seconds / best
    print(
        f"{CALLS} calls x {SECONDS} s: {best:.2f} s CPU "
        f"({per_call_second_ms:.2f} ms per call-second)"
    )
    print(f"capacity: {capacity:.0f} real-time calls per core")
    return 0 if verdict("calls per core", capacity, 200, at_most=False) else 1


if __name__ == "__main__":
    sys.exit(main())
