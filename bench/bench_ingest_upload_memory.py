"""Whole-file upload memory: peak RSS growth of the server while it takes a 60-minute WAV pair.

A ``talkturo serve`` process (SQLite, local storage) receives ``PUT /api/v1/calls/{id}/recording``
with multipart fields ``caller`` (8 kHz) and ``assistant`` (24 kHz), 60 minutes each of
espeak-ng speech (about 230 MB of WAV). The server's RSS is sampled every 10 ms from before
the request until its answer; the growth must stay <= 64 MB. The decode runs in a child
process of the server; its peak is printed too, for information. The reference is the body
size: the ratio printed is growth / body.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import numpy as np
import psutil

from bench._common import make_call, post_call, progress, verdict
from bench.bench_ingest_load import _setup
from tests.conftest import start_server
from web.settings import load_settings

MINUTES = 60
TARGET_MB = 64


def write_wav(path: Path, rate: int, minute: bytes, minutes: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        for _ in range(minutes):
            out.writeframes(minute)


class Sampler(threading.Thread):
    """Samples the RSS of a process (and, separately, the peak of its children)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = self.proc.memory_info().rss
        self.child_peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
                for child in self.proc.children():
                    self.child_peak = max(self.child_peak, child.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.01)


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
        env = {
            "TALKTURO_DATA_DIR": str(work / "data"),
            "TALKTURO_SECRET_KEY": "bench-secret-key-0123456789",
            "TALKTURO_EMBEDDED_WORKER": "0",
        }
        key, asst = asyncio.run(_setup(load_settings(env)))
        server = start_server(env, work / "server.log")
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
                sampler = Sampler(server.proc.pid)
                baseline = sampler.peak
                sampler.start()
                progress(f"uploading {body / 1e6:.0f} MB (60-minute pair) ...")
                t0 = time.perf_counter()
                with (
                    (work / "caller.wav").open("rb") as c,
                    (work / "assistant.wav").open("rb") as a,
                ):
                    resp = http.put(
                        f"/api/v1/calls/{call_id}/recording",
                        files={
                            "caller": ("caller.wav", c, "audio/wav"),
                            "assistant": ("assistant.wav", a, "audio/wav"),
                        },
                    )
                elapsed = time.perf_counter() - t0
                sampler.stop.set()
                sampler.join()
                resp.raise_for_status()
                rec = resp.json()
        finally:
            server.stop()
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
