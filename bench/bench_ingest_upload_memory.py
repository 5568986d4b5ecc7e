"""Whole-file upload memory: peak RSS growth of the server while it takes a 60-minute WAV pair.

A ``talkturo serve`` process (SQLite, local storage) receives ``PUT /api/v1/calls/{id}/recording``
with multipart fields ``caller`` (8 kHz) and ``assistant`` (24 kHz), 60 minutes each of
espeak-ng speech (about 230 MB of WAV). The server's RSS is sampled every 10 ms from before
the request until its answer; the growth must stay <= 64 MB. The decode runs in a child
process of the server; its peak is printed too, for information. The reference is the body
size: the ratio printed is growth / body.
"""

from __future__ import annotations

import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import numpy as np

from bench._common import PeakRss, make_call, post_call, progress, start_local_server, verdict

MINUTES = 60
TARGET_MB = 64


def write_wav(path: Path, rate: int, minute: bytes, minutes: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        for _ in range(minutes):
            out.writeframes(minute)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        progress("making 60-minute WAV files ...")
        caller, assistant, _ = make_call(60)
        from audio.formats import MULAW_TABLE

        caller_pcm = (MULAW_TABLE[np.frombuffer(caller, dtype=np.uint8)] * 32767).astype("<i2")
        write_wav(work / "caller.wav", 8000, caller_pcm.tobytes(), MINUTES)
        write_wav(work / "assistant.wav", 24000, assistant, MINUTES)
        body = (work / "caller.wav").stat().st_size + (work / "assistant.wav").stat().st_size
        local = start_local_server(work)
        server, key, asst = local.server, local.key, local.assistant_id
        try:
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=900) as http:

                def new_call() -> str:
                    return post_call(http, asst)

                # Warm-up: a small upload so lazy imports and pools are in the baseline.
                warm = work / "warm.wav"
                write_wav(warm, 8000, caller_pcm[:80000].tobytes(), 1)
                with warm.open("rb") as c, warm.open("rb") as a:
                    http.put(
                        f"/api/v1/calls/{new_call()}/recording", files={"caller": c, "assistant": a}
                    ).raise_for_status()
                call_id = new_call()
                progress(f"uploading {body / 1e6:.0f} MB (60-minute pair) ...")
                with (
                    PeakRss(server.proc.pid, interval=0.01) as sampler,
                    (work / "caller.wav").open("rb") as c,
                    (work / "assistant.wav").open("rb") as a,
                ):
                    t0 = time.perf_counter()
                    resp = http.put(
                        f"/api/v1/calls/{call_id}/recording",
                        files={
                            "caller": ("caller.wav", c, "audio/wav"),
                            "assistant": ("assistant.wav", a, "audio/wav"),
                        },
                    )
                    elapsed = time.perf_counter() - t0
                resp.raise_for_status()
                rec = resp.json()
        finally:
            server.stop()
    baseline = sampler.baseline
    growth_mb = (sampler.peak - baseline) / 1e6
    print(
        f"body: {body / 1e6:.0f} MB; answered in {elapsed:.1f} s; recording {rec['status']},"
        f" {rec['duration_ms'] / 60000:.1f} min, {rec['size_bytes'] / 1e6:.1f} MB MP3"
    )
    print(
        f"server RSS: baseline {baseline / 1e6:.0f} MB, peak {sampler.peak / 1e6:.0f} MB,"
        f" growth {growth_mb:.1f} MB"
    )
    print(
        "decoder child peak RSS (separate process, for information):"
        f" {sampler.child_peak / 1e6:.0f} MB"
    )
    print(f"ratio growth/body: {growth_mb * 1e6 / body:.3f}")
    return 0 if verdict("server RSS growth MB", growth_mb, TARGET_MB, at_most=True) else 1


if __name__ == "__main__":
    sys.exit(main())
