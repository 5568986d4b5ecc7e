"""Peaks size: the overview JSON of a 60-minute call, gzipped. Target: <= 40 KB.

Records a full hour of turn-taking speech through the recorder and measures both levels.
"""

from __future__ import annotations

import gzip
import json
import sys

from _common import make_call, progress, verdict

from audio import LegFormat, Recorder


def main() -> int:
    caller, assistant, _ = make_call(60)
    recorder = Recorder(LegFormat("mulaw", 8000), LegFormat("l16", 24000))
    for minute in range(60):
        if minute % 10 == 0:
            progress(f"  recording minute {minute}/60...")
        base = minute * 60_000
        for k in range(len(caller) // 160):
            recorder.add("caller", base + 20 * k, caller[160 * k : 160 * (k + 1)])
            recorder.add("assistant", base + 20 * k, assistant[960 * k : 960 * (k + 1)])
    peaks = recorder.finish().peaks
    overview = peaks.overview_json()
    zoom_dat = peaks.zoom_dat()
    document = json.loads(overview)
    packed = len(gzip.compress(overview, 6))
    print(
        f"overview: {document['length']} points/channel, samples_per_pixel "
        f"{document['samples_per_pixel']}, {len(overview) / 1000:.1f} KB JSON, "
        f"{packed / 1000:.1f} KB gzipped"
    )
    print(
        f"zoom (10 ms): {peaks.length} points/channel, {len(zoom_dat) / 1e6:.2f} MB .dat, "
        f"{len(gzip.compress(zoom_dat, 6)) / 1e6:.2f} MB gzipped"
    )
    return 0 if verdict("overview gzipped (KB)", packed / 1000, 40, at_most=True) else 1


if __name__ == "__main__":
    sys.exit(main())
