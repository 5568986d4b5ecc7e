"""Memory: peak RSS recording a 60-minute call minus a 1-minute call (separate processes).

Target: <= 16 MB. Each child records speech fed in 20 ms chunks and discards the MP3 bytes.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

from _common import progress, verdict

HERE = Path(__file__).resolve().parent


def child(minutes: int) -> None:
    import psutil
    from _common import make_call

    from audio import LegFormat, Recorder

    caller, assistant, stereo = make_call(60)  # one minute of speech, repeated
    del stereo
    recorder = Recorder(LegFormat("mulaw", 8000), LegFormat("l16", 24000))
    size = 0
    for minute in range(minutes):
        base = minute * 60_000
        for k in range(len(caller) // 160):
            size += len(recorder.add("caller", base + 20 * k, caller[160 * k : 160 * (k + 1)]))
            size += len(
                recorder.add("assistant", base + 20 * k, assistant[960 * k : 960 * (k + 1)])
            )
    result = recorder.finish()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    end_kb = psutil.Process().memory_info().rss // 1024
    print(f"{peak_kb} {size + len(result.mp3_tail)} {result.duration_ms} {end_kb}")


def measure(minutes: int) -> int:
    progress(f"recording a {minutes}-minute call in a child process...")
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(minutes)],
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE,
    ).stdout.split()
    peak_kb, size, duration, end_kb = (int(v) for v in out[:4])
    print(
        f"{minutes:>3} min: peak RSS {peak_kb / 1024:.1f} MB, "
        f"RSS at finish {end_kb / 1024:.1f} MB, "
        f"MP3 {size / 1e6:.1f} MB, {duration} ms"
    )
    return peak_kb


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(int(sys.argv[2]))
        return 0
    short = measure(1)
    long = measure(60)
    growth_mb = (long - short) / 1024
    print(f"peak RSS growth 60 min - 1 min: {growth_mb:.1f} MB")
    return 0 if verdict("RSS growth (MB)", growth_mb, 16, at_most=True) else 1


if __name__ == "__main__":
    sys.exit(main())
