"""Telnyx media streaming on ``WS /api/v1/calls/{id}/media`` against a real server.

Frames follow Telnyx's published examples (``connected``, ``start`` with ``media_format``
and ``custom_parameters``, ``media`` with ``track``/``chunk``/``timestamp``/``payload``,
``stop``; string ``sequence_number`` and ``stream_id`` on each). The audio is espeak-ng
speech encoded by ffmpeg in each codec and cut into 20 ms RTP payloads.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from audio import ENCODER_DELAY_SAMPLES, MP3_RATES
from tests.ingest.conftest import (
    Live,
    Voice,
    create_call,
    ffmpeg_decode,
    frames,
    read_object,
    rms_db,
    start_message,
    stream,
)
from web.models import Recording, RecordingStatus

STREAM_ID = "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"
AUTH_HEADER = "x-telnyx-streaming-auth-token"


@dataclass
class Wire:
    """One leg in one codec: its 20 ms payloads and the ``media_format`` announcing them."""

    encoding: str
    sample_rate: int
    payloads: list[bytes]


def _ffmpeg(*args: str) -> bytes:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", *args], capture_output=True, check=True
    )
    return done.stdout


def _cut(wire: bytes, size: int) -> list[bytes]:
    return [wire[i : i + size] for i in range(0, len(wire), size)]


def encode(voice: Voice, codec: str, tmp_path: Path) -> Wire:
    """``voice`` in ``codec`` as Telnyx would send it (RTP payloads of 20 ms)."""
    src = str(voice.wav)
    if codec == "PCMU":
        return Wire(codec, 8000, _cut(_ffmpeg("-i", src, "-ar", "8000", "-f", "mulaw", "-"), 160))
    if codec == "PCMA":
        return Wire(codec, 8000, _cut(_ffmpeg("-i", src, "-ar", "8000", "-f", "alaw", "-"), 160))
    if codec == "L16":
        # RTP's network byte order: big-endian.
        wire = _ffmpeg("-i", src, "-ar", "16000", "-f", "s16be", "-")
        return Wire(codec, 16000, _cut(wire, 640))
    if codec == "G722":
        wire = _ffmpeg("-i", src, "-ar", "16000", "-c:a", "g722", "-f", "g722", "-")
        return Wire(codec, 16000, _cut(wire, 160))
    ogg = tmp_path / f"{voice.wav.stem}.ogg"
    _ffmpeg(
        "-y", "-i", src, "-ar", "48000", "-c:a", "libopus", "-b:a", "24k",
        "-frame_duration", "20", "-application", "voip", str(ogg),
    )  # fmt: skip
    with av.open(str(ogg)) as container:
        packets = [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]
    return Wire(codec, 48000, packets)


def start(wire: Wire, token: str | None = None, encoding: str | None = None) -> dict[str, Any]:
    """A Telnyx ``start`` frame, shaped like the published example."""
    params: dict[str, Any] = {"customer_id": "customer_123"}
    if token:
        params["token"] = token
    return {
        "event": "start",
        "sequence_number": "1",
        "start": {
            "user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
            "call_control_id": "v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ",
            "call_session_id": "ff55a038-6f5d-11ef-9692-02420aeffb1f",
            "from": "+13122010094",
            "to": "+13122123456",
            "tags": ["TAG1", "TAG2"],
            "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
            "custom_parameters": params,
            "media_format": {
                "encoding": encoding or wire.encoding,
                "sample_rate": wire.sample_rate,
                "channels": 1,
            },
        },
        "stream_id": STREAM_ID,
    }


def media(track: str, payloads: list[bytes], start_ms: int = 0) -> list[dict[str, Any]]:
    """``media`` frames of 20 ms each from ``start_ms`` (sequence numbers set later)."""
    return [
        {
            "event": "media",
            "sequence_number": "0",
            "media": {
                "track": track,
                "chunk": str(i + 1),
                "timestamp": str(start_ms + 20 * i),
                "payload": base64.b64encode(p).decode(),
            },
            "stream_id": STREAM_ID,
        }
        for i, p in enumerate(payloads)
    ]


def numbered(frames_: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Frames in timestamp order, numbered from 2 (the start is 1), then ``stop``."""
    ordered = sorted(frames_, key=lambda f: int(f["media"]["timestamp"]))
    for n, frame in enumerate(ordered, start=2):
        frame["sequence_number"] = str(n)
    stop = {
        "event": "stop",
        "sequence_number": str(len(ordered) + 2),
        "stop": {"user_id": "3E6F995F-85F7-4705-9741-53B116D28237"},
        "stream_id": STREAM_ID,
    }
    return [*ordered, stop]


def call(caller: Wire, assistant: Wire) -> tuple[list[dict[str, Any]], int]:
    """The caller speaks, the assistant answers 300 ms after; returns frames and the split."""
    caller_ms = 20 * len(caller.payloads)
    frames_ = media("inbound", caller.payloads) + media(
        "outbound", assistant.payloads, start_ms=caller_ms + 300
    )
    return numbered(frames_), caller_ms


async def recorded(live: Live, call_id: str) -> tuple[Recording, Any]:
    rec = await Recording.get(call_id=call_id)
    assert rec.status == RecordingStatus.AVAILABLE
    return rec, ffmpeg_decode(await read_object(live.app, rec, rec.storage_key))


CODECS = ["PCMU", "PCMA", "L16", "G722", "OPUS"]


def mp3_rate(audio: Any, duration_ms: int) -> int:
    """The MP3's sample rate: the Layer III rate nearest to samples per second."""
    measured = audio.shape[1] * 1000 / duration_ms
    return min(MP3_RATES, key=lambda r: abs(r - measured))


def as_heard(voice: Voice, rate: int) -> Any:
    """The voice's original WAV at ``rate`` (what its channel should hold)."""
    raw = _ffmpeg("-i", str(voice.wav), "-ar", str(rate), "-ac", "1", "-f", "f32le", "-")
    return np.frombuffer(raw, dtype="<f4")


def alignment(original: Any, channel: Any, rate: int, max_lag_ms: int = 400) -> tuple[float, float]:
    """(normalised correlation, lag in ms) of ``channel`` against ``original`` at the best lag."""
    n = len(original)
    seg = channel[: n + rate * max_lag_ms // 1000]
    size = 1 << (len(seg) + n).bit_length()
    corr = np.fft.irfft(np.fft.rfft(seg, size) * np.conj(np.fft.rfft(original, size)), size)
    max_lag = rate * max_lag_ms // 1000
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([corr[: max_lag + 1], corr[size - max_lag :]])
    best = int(np.argmax(values))
    norm = float(np.linalg.norm(original) * np.linalg.norm(channel[:n])) + 1e-12
    return float(values[best]) / norm, float(lags[best]) * 1000 / rate


@pytest.mark.parametrize("codec", CODECS)
async def test_each_codec_records_both_legs_in_place(
    live: Live, voices: tuple[Voice, Voice], codec: str, tmp_path: Path
) -> None:
    caller, assistant = (encode(v, codec, tmp_path) for v in voices)
    frames_, caller_ms = call(caller, assistant)
    call_id = await create_call(live.http, live.tenant)
    # The key in Telnyx's header instead of Authorization.
    closed = await stream(
        live.ws(call_id),
        [start(caller), *frames_],
        headers={AUTH_HEADER: live.tenant.admin_key},
    )
    assert closed.code == 1000, closed
    rec, audio = await recorded(live, call_id)
    expected_ms = caller_ms + 300 + 20 * len(assistant.payloads)
    assert abs((rec.duration_ms or 0) - expected_ms) < 200
    rate = audio.shape[1] * 1000 / rec.duration_ms
    split = int(caller_ms / 1000 * rate)
    # Caller speech on the left while the right is silent, then the reverse.
    assert rms_db(audio[0, :split]) > -40
    assert rms_db(audio[1, : split - int(0.1 * rate)]) < -60
    assert rms_db(audio[1, split + int(0.3 * rate) :]) > -40
    assert rms_db(audio[0, split + int(0.4 * rate) :]) < -60
    # The words themselves, each leg against its original, both shifted alike.
    exact = mp3_rate(audio, rec.duration_ms)
    left, left_lag = alignment(as_heard(voices[0], exact), audio[0], exact)
    start_at = (caller_ms + 300) * exact // 1000
    right, right_lag = alignment(as_heard(voices[1], exact), audio[1, start_at:], exact)
    assert left > 0.7, left
    assert right > 0.7, right
    assert abs(left_lag - right_lag) < 5, (left_lag, right_lag)


async def test_frames_out_of_order_make_the_same_recording(
    live: Live, voices: tuple[Voice, Voice], tmp_path: Path
) -> None:
    caller, assistant = (encode(v, "L16", tmp_path) for v in voices)
    in_order, _ = call(caller, assistant)
    # Neighbours swapped, as the network may deliver them; numbers and timestamps kept.
    shuffled = list(in_order[:-1])
    for i in range(0, len(shuffled) - 1, 2):
        shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    shuffled.append(in_order[-1])
    assert shuffled != in_order
    digests = []
    for frames_ in (in_order, shuffled):
        call_id = await create_call(live.http, live.tenant)
        token = live.tenant.admin_key
        closed = await stream(live.ws(call_id), [start(caller, token), *frames_])
        assert closed.code == 1000, closed
        rec, _ = await recorded(live, call_id)
        digests.append(hashlib.sha256(await read_object(live.app, rec, rec.storage_key)))
    assert digests[0].hexdigest() == digests[1].hexdigest()


@pytest.mark.parametrize("codec", ["G722", "OPUS"])
async def test_stateful_codecs_out_of_order_keep_the_words_in_place(
    live: Live, voices: tuple[Voice, Voice], codec: str, tmp_path: Path
) -> None:
    caller = encode(voices[0], codec, tmp_path)
    frames_ = numbered(media("inbound", caller.payloads))
    body = frames_[:-1]
    for i in range(0, len(body) - 1, 2):
        body[i], body[i + 1] = body[i + 1], body[i]
    call_id = await create_call(live.http, live.tenant)
    closed = await stream(
        live.ws(call_id),
        [start(caller), *body, frames_[-1]],
        headers={AUTH_HEADER: live.tenant.admin_key},
    )
    assert closed.code == 1000, closed
    rec, audio = await recorded(live, call_id)
    assert abs((rec.duration_ms or 0) - 20 * len(caller.payloads)) < 200
    exact = mp3_rate(audio, rec.duration_ms)
    score, _ = alignment(as_heard(voices[0], exact), audio[0], exact)
    # Put back in order before the decoder, as if they had come in order.
    assert score > 0.7, score


async def test_a_malformed_frame_after_opus_keeps_the_frames_held_for_ordering(
    live: Live, voices: tuple[Voice, Voice], tmp_path: Path
) -> None:
    caller = encode(voices[0], "OPUS", tmp_path)
    frames_ = numbered(media("inbound", caller.payloads[:101]))[:-1]
    frames_[-1] = _bad(frames_[-1], payload="@@not base64@@")
    call_id = await create_call(live.http, live.tenant)
    closed = await stream(
        live.ws(call_id), [start(caller), *frames_], headers={AUTH_HEADER: live.tenant.admin_key}
    )
    assert closed.code == 1003, closed
    rec, _ = await recorded(live, call_id)
    # All 100 good packets (20 ms each), the last few of them held back until the end.
    assert 2000 <= (rec.duration_ms or 0) < 2100, rec.duration_ms


async def test_the_key_in_custom_parameters_and_a_bad_header(
    live: Live, voices: tuple[Voice, Voice], tmp_path: Path
) -> None:
    caller = encode(voices[0], "PCMU", tmp_path)
    frames_ = numbered(media("inbound", caller.payloads[:50]))
    ok = await create_call(live.http, live.tenant)
    closed = await stream(live.ws(ok), [start(caller, live.tenant.admin_key), *frames_])
    assert closed.code == 1000
    assert (await Recording.get(call_id=ok)).status == RecordingStatus.AVAILABLE

    refused = await create_call(live.http, live.tenant)
    closed = await stream(
        live.ws(refused), [start(caller), *frames_], headers={AUTH_HEADER: "tk_not_a_key"}
    )
    assert (closed.code, "API key" in closed.reason) == (1008, True), closed
    assert await Recording.get_or_none(call_id=refused) is None


async def test_unknown_encoding_is_refused_and_leaves_nothing(
    live: Live, voices: tuple[Voice, Voice], tmp_path: Path
) -> None:
    caller = encode(voices[0], "PCMU", tmp_path)
    call_id = await create_call(live.http, live.tenant)
    closed = await stream(
        live.ws(call_id),
        [start(caller, encoding="AMR-WB"), *numbered(media("inbound", caller.payloads[:10]))],
        headers={AUTH_HEADER: live.tenant.admin_key},
    )
    assert (closed.code, "encoding" in closed.reason) == (1003, True), closed
    assert await Recording.get_or_none(call_id=call_id) is None


def _bad(frame: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**frame, "media": {**frame["media"]}}
    for key, value in changes.items():
        if key == "sequence_number":
            out[key] = value
        else:
            out["media"][key] = value
    return out


# (name, how the 101st frame is spoiled, close code, words of the reason)
MALFORMED: list[tuple[str, dict[str, Any], int, str]] = [
    ("sequence number", {"sequence_number": "two"}, 1003, "sequence_number"),
    ("timestamp", {"timestamp": "soon"}, 1003, "timestamp"),
    ("track", {"track": "both"}, 1003, "track"),
    ("payload", {"payload": "@@not base64@@"}, 1003, "base64"),
    ("odd L16 payload", {"payload": base64.b64encode(b"\x00\x01\x02").decode()}, 1003, "L16"),
]


@pytest.mark.parametrize(
    ("name", "change", "code", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
async def test_a_malformed_frame_closes_and_keeps_what_came(
    live: Live,
    voices: tuple[Voice, Voice],
    tmp_path: Path,
    name: str,
    change: dict[str, Any],
    code: int,
    reason: str,
) -> None:
    caller = encode(voices[0], "L16", tmp_path)
    frames_ = numbered(media("inbound", caller.payloads[:101]))[:-1]
    frames_[-1] = _bad(frames_[-1], **change)
    call_id = await create_call(live.http, live.tenant)
    closed = await stream(
        live.ws(call_id), [start(caller), *frames_], headers={AUTH_HEADER: live.tenant.admin_key}
    )
    assert closed.code == code, closed
    assert reason.lower() in closed.reason.lower(), closed.reason
    # The 2 s before the bad frame are kept and published at once.
    rec, audio = await recorded(live, call_id)
    assert abs((rec.duration_ms or 0) - 2000) < 250, name
    assert rms_db(audio[0]) > -40


async def test_media_before_start_is_a_policy_close(
    live: Live, voices: tuple[Voice, Voice], tmp_path: Path
) -> None:
    caller = encode(voices[0], "PCMU", tmp_path)
    call_id = await create_call(live.http, live.tenant)
    closed = await stream(
        live.ws(call_id),
        numbered(media("inbound", caller.payloads[:5])),
        headers={AUTH_HEADER: live.tenant.admin_key},
    )
    assert (closed.code, "before start" in closed.reason) == (1008, True), closed
    assert await Recording.get_or_none(call_id=call_id) is None


async def test_twilio_takes_alaw(live: Live, voices: tuple[Voice, Voice], tmp_path: Path) -> None:
    caller, assistant = voices
    caller_wire = b"".join(encode(caller, "PCMA", tmp_path).payloads)
    assistant_wire = b"".join(encode(assistant, "PCMA", tmp_path).payloads)
    caller_ms = len(caller_wire) // 8
    msgs = [
        start_message(
            live.tenant.admin_key,
            media_format={"encoding": "audio/x-alaw", "sampleRate": 8000, "channels": 1},
        ),
        *sorted(
            frames("inbound", caller_wire, 8000, 1)
            + frames("outbound", assistant_wire, 8000, 1, start_ms=caller_ms + 300),
            key=lambda m: int(m["media"]["timestamp"]),
        ),
        {"event": "stop", "stop": {"accountSid": "AC0001", "callSid": "CA0001"}},
    ]
    call_id = await create_call(live.http, live.tenant)
    assert (await stream(live.ws(call_id), msgs)).code == 1000
    rec, audio = await recorded(live, call_id)
    rate = audio.shape[1] * 1000 / rec.duration_ms
    split = int(caller_ms / 1000 * rate)
    assert rms_db(audio[0, :split]) > -40
    assert rms_db(audio[1, : split - int(0.1 * rate)]) < -60
    assert rms_db(audio[1, split + int(0.3 * rate) :]) > -40


async def test_a_dtmf_frame_silences_the_tone_it_reports(
    live: Live, voices: tuple[Voice, Voice], tmp_path: Path
) -> None:
    """Telnyx's ``dtmf`` frame, like Twilio's event: its span is silent in both channels."""
    caller, assistant = (encode(v, "PCMU", tmp_path) for v in voices)
    frames_, caller_ms = call(caller, assistant)
    reported_at = caller_ms // 2 // 20 * 20
    cut = next(
        i
        for i, f in enumerate(frames_)
        if f["event"] == "media" and int(f["media"]["timestamp"]) >= reported_at
    )
    dtmf = {
        "event": "dtmf",
        "sequence_number": frames_[cut]["sequence_number"],
        "dtmf": {"digit": "7"},
        "stream_id": STREAM_ID,
    }
    frames_.insert(cut, dtmf)
    call_id = await create_call(live.http, live.tenant)
    closed = await stream(live.ws(call_id), [start(caller, live.tenant.admin_key), *frames_])
    assert closed.code == 1000, closed
    rec, audio = await recorded(live, call_id)
    [span] = rec.redactions
    assert span["reason"] == "dtmf"
    assert span["channel"] == "both"
    assert reported_at - 300 <= span["start_ms"] < span["end_ms"] <= reported_at + 100
    rate = mp3_rate(audio, rec.duration_ms or 1)
    # The decoded MP3 starts with the encoder's delay.
    offset = ENCODER_DELAY_SAMPLES
    lo = offset + (span["start_ms"] + 30) * rate // 1000
    hi = offset + (span["end_ms"] - 30) * rate // 1000
    assert rms_db(audio[:, lo:hi]) < -50
    # The caller's speech around it is kept.
    assert rms_db(audio[0, offset : lo - rate // 10]) > -40
