"""Keypad tones never reach storage: a live stream and a whole-file upload with real tones."""

from __future__ import annotations

import io
import json
import subprocess
import wave
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from litestar import Litestar

from audio import ENCODER_DELAY_SAMPLES
from audio.dtmf import detect_tones
from audio.formats import MULAW_TABLE
from tests.audio._dtmf import NUMBER, mulaw_encode, with_number
from tests.conftest import Tenant, api_call, post_call
from tests.ingest.conftest import (
    Live,
    Voice,
    ffmpeg_decode,
    frames,
    interleave,
    read_object,
    rms_db,
    stereo_start,
    stream,
)
from web.models import Recording

STOP = {"event": "stop", "stop": {"accountSid": "AC0001", "callSid": "CA0001"}}


def caller_with_tones(caller: Voice) -> tuple[npt.NDArray[np.float32], list[tuple[int, int]]]:
    """The caller's speech (8 kHz) with a typed number in the middle; each tone's [start, end)."""
    speech = MULAW_TABLE[np.frombuffer(caller.mulaw8k, dtype=np.uint8)]
    return with_number(speech, speech.shape[0] // 2 // 160 * 160)


def decode(mp3: bytes) -> tuple[npt.NDArray[np.float32], int]:
    """(2, n) float32 samples in call time (the encoder's delay removed) and the rate."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", "pipe:0"],
        input=mp3,
        capture_output=True,
        check=True,
    )
    rate = int(json.loads(probe.stdout)["streams"][0]["sample_rate"])
    return ffmpeg_decode(mp3)[:, ENCODER_DELAY_SAMPLES:].copy(), rate


def check_redacted(
    audio: npt.NDArray[np.float32], rate: int, spans: list[Any], tones: list[tuple[int, int]]
) -> None:
    """No tone left in either channel; each tone inside a reported span that is silent."""
    assert [span["reason"] for span in spans] == ["dtmf"] * len(spans)
    assert {span["channel"] for span in spans} == {"both"}
    for channel in (0, 1):
        assert detect_tones(audio[channel], rate) == []
    per_ms = rate // 1000
    for start, end in tones:
        covering = [s for s in spans if s["start_ms"] <= start - 30 and s["end_ms"] >= end + 30]
        assert len(covering) == 1, (start, end, spans)
        for channel in (0, 1):
            assert rms_db(audio[channel, (start - 10) * per_ms : (end + 10) * per_ms]) < -50
    # Speech before the number is kept.
    first = tones[0][0]
    assert rms_db(audio[0, (first - 1200) * per_ms : (first - 250) * per_ms]) > -40


async def _call(http: httpx.AsyncClient, tenant: Tenant, redact: bool) -> str:
    assistant_id, _ = await api_call(http, tenant)
    if not redact:
        resp = await http.patch(
            f"/api/v1/assistants/{assistant_id}", json={"redact_dtmf": False}, headers=tenant.api()
        )
        assert resp.status_code == 200
    call = await post_call(http, tenant, assistant_id)
    assert call.status_code == 201, call.text
    return str(call.json()["id"])


@pytest.mark.parametrize("redact", [True, False])
async def test_live_stream_tones_never_stored(
    live: Live, voices: tuple[Voice, Voice], redact: bool, db_backend: str
) -> None:
    """Tones typed while the assistant speaks: silent in both channels, spans in the JSON."""
    caller, assistant = voices
    signal, tones = caller_with_tones(caller)
    messages: list[Any] = interleave(
        frames("inbound", mulaw_encode(signal).tobytes(), 8000, 1),
        frames("outbound", assistant.l16, 24000, 2, start_ms=tones[0][0] - 1500),
    )
    # A reported tone late in the call, where the audio holds none.
    reported_at = tones[-1][1] + 1500
    cut = next(i for i, m in enumerate(messages) if int(m["media"]["timestamp"]) >= reported_at)
    messages.insert(cut, {"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "5"}})
    async with httpx.AsyncClient(base_url=live.http) as http:
        call_id = await _call(http, live.tenant, redact)
        closed = await stream(
            live.ws(call_id), [stereo_start(live.tenant.admin_key), *messages, STOP]
        )
        assert closed.code == 1000
        body = (await http.get(f"/api/v1/calls/{call_id}", headers=live.tenant.api())).json()
    rec = await Recording.get(call_id=call_id)
    assert body["recording"]["status"] == "available"
    assert body["recording"]["redactions"] == rec.redactions
    audio, rate = decode(await read_object(live.app, rec, rec.storage_key))
    if not redact:
        # The same stream without redaction stores the tones (so the check above can fail).
        assert rec.redactions == []
        assert "".join(t.digit for t in detect_tones(audio[0], rate)) == NUMBER
        return
    spans = body["recording"]["redactions"]
    assert len(spans) == len(NUMBER) + 1
    check_redacted(audio, rate, spans, tones)
    reported = spans[-1]
    assert reported_at - 300 <= reported["start_ms"] < reported["end_ms"] <= reported_at + 100
    per_ms = rate // 1000
    middle = (reported["start_ms"] + 30) * per_ms, (reported["end_ms"] - 30) * per_ms
    assert rms_db(audio[1, middle[0] : middle[1]]) < -50


def _stereo_wav(left: npt.NDArray[np.float32], right: npt.NDArray[np.float32]) -> bytes:
    n = max(left.shape[0], right.shape[0])
    both = np.zeros((n, 2), dtype=np.float32)
    both[: left.shape[0], 0] = left
    both[: right.shape[0], 1] = right
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes((np.clip(both, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


@pytest.mark.parametrize("redact", [True, False])
async def test_upload_tones_never_stored(
    client: httpx.AsyncClient,
    app: Litestar,
    tenant: Tenant,
    voices: tuple[Voice, Voice],
    redact: bool,
    db_backend: str,
) -> None:
    """A whole stereo file with tones on the caller's side: same outcome as a live stream."""
    caller, assistant = voices
    signal, tones = caller_with_tones(caller)
    other = np.zeros_like(signal)
    speech = MULAW_TABLE[np.frombuffer(assistant.mulaw8k, dtype=np.uint8)]
    offset = (tones[0][0] - 1500) * 8
    other[offset : offset + speech.shape[0]] = speech[: other.shape[0] - offset]
    call_id = await _call(client, tenant, redact)
    resp = await client.put(
        f"/api/v1/calls/{call_id}/recording",
        content=_stereo_wav(signal, other),
        headers={**tenant.api(), "Content-Type": "audio/wav"},
    )
    assert resp.status_code == 200, resp.text
    rec = await Recording.get(call_id=call_id)
    body = (await client.get(f"/api/v1/calls/{call_id}", headers=tenant.api())).json()
    assert body["recording"]["redactions"] == rec.redactions == resp.json()["redactions"]
    audio, rate = decode(await read_object(app, rec, rec.storage_key))
    if not redact:
        assert rec.redactions == []
        assert "".join(t.digit for t in detect_tones(audio[0], rate)) == NUMBER
        return
    assert len(rec.redactions) == len(NUMBER)
    check_redacted(audio, rate, rec.redactions, tones)
