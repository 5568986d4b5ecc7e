"""Opening a call's panel in Chromium: time to the first waveform paint, and bytes fetched
before play is pressed (the peaks, and of the MP3 only its first 8 KB, so Play starts at once).

Reference measured in the same run: the MP3's size, which a player that decodes audio to
draw its waveform would have to fetch first. Target: bytes before play <= 10% of the MP3.
"""

from __future__ import annotations

import sys
import tempfile
import wave
from pathlib import Path

from _common import chromium, make_call, median_spread, progress, served_sqlite, verdict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MINUTES = 5
OPENS = 5


def main() -> int:
    import numpy as np

    from audio import encode_files
    from tests.browser.conftest import sign_in
    from tests.browser.test_player import _seed
    from tests.playback.conftest import SpeechRecording

    work = Path(tempfile.mkdtemp(prefix="bench-panel-"))
    progress(f"making a {MINUTES}-minute two-voice call")
    _, _, stereo = make_call(MINUTES * 60)
    wav = work / "call.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(24000)
        out.writeframes((np.clip(stereo.T, -1, 1) * 32767).astype("<i2").tobytes())
    mp3 = work / "call.mp3"
    result = encode_files(stereo=wav, dest=mp3)
    speech = SpeechRecording(
        mp3=mp3.read_bytes(),
        peaks_json=result.peaks.overview_json(),
        sha256=result.sha256,
        duration_ms=result.duration_ms,
    )
    paint_ms: list[float] = []
    fetched: list[int] = []
    with (
        served_sqlite(work, lambda root: _seed(root, speech)) as (url, (call_id, email)),
        chromium() as (_, page),
    ):
        sign_in(page, url, email)
        for i in range(OPENS):
            sizes: dict[str, int] = {}

            def on_response(resp, sizes=sizes):  # type: ignore[no-untyped-def]
                try:
                    sizes[resp.url] = len(resp.body())
                except Exception:  # redirects and aborted requests have no body
                    sizes[resp.url] = 0

            page.on("response", on_response)
            page.goto(f"{url}/calls/{call_id}", wait_until="domcontentloaded")
            page.wait_for_selector("[data-player][data-painted='1']", timeout=30000)
            ms = page.evaluate(
                "() => performance.getEntriesByName('talkturo:waveform-painted')[0].startTime"
            )
            page.wait_for_load_state("networkidle")
            page.remove_listener("response", on_response)
            transfer = page.evaluate(
                """() => performance.getEntriesByType('resource')
                    .filter(e => e.name.includes('/peaks.json') || e.name.includes('.mp3'))
                    .reduce((n, e) => n + e.transferSize, 0)"""
            )
            mp3_bytes = sum(v for u, v in sizes.items() if ".mp3" in u)
            assert mp3_bytes <= 8192, f"{mp3_bytes} MP3 bytes fetched before play"
            paint_ms.append(float(ms))
            fetched.append(int(transfer))
            progress(
                f"open {i + 1}/{OPENS}: waveform painted at {ms:.0f} ms, "
                f"peaks on the wire {transfer} bytes"
            )
    _, paint = median_spread(paint_ms)
    wire = max(fetched)
    print(
        f"call: {MINUTES} min, MP3 {len(speech.mp3)} bytes,"
        f" peaks JSON {len(speech.peaks_json)} bytes"
    )
    print(f"time to first waveform paint over {OPENS} opens: {paint}")
    print(
        f"bytes fetched before play: {wire} (peaks, gzip, and the MP3's first 8 KB; "
        "later opens hit the HTTP cache)"
    )
    return (
        0
        if verdict("bytes before play / MP3 size", wire / len(speech.mp3), 0.1, at_most=True)
        else 1
    )


if __name__ == "__main__":
    raise SystemExit(main())
