"""The media socket's dialects as pure parsers: which one a stream speaks, and refusals."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from web.recordings.live.events import Dtmf, Ignored, Media, Start, Stop, StreamRefused
from web.recordings.live.recognise import Recognising
from web.recordings.live.telnyx import Telnyx
from web.recordings.live.twilio import Twilio


def _telnyx_start(**media_format: Any) -> str:
    fmt = {"encoding": "PCMU", "sample_rate": 8000, "channels": 1, **media_format}
    return json.dumps(
        {
            "event": "start",
            "sequence_number": "1",
            "start": {"custom_parameters": {"token": "tk_x"}, "media_format": fmt},
            "stream_id": "S1",
        }
    )


def _telnyx_media(payload: bytes, ts: int = 0, seq: int = 2, track: str = "inbound") -> str:
    media = {"track": track, "chunk": "1", "timestamp": str(ts)}
    media["payload"] = base64.b64encode(payload).decode()
    return json.dumps(
        {"event": "media", "sequence_number": str(seq), "media": media, "stream_id": "S1"}
    )


def test_recognised_from_the_frames() -> None:
    telnyx = Recognising()
    assert isinstance(
        telnyx.parse('{"event": "connected", "version": "1.0.0"}', started=False), Ignored
    )
    assert telnyx.chosen is None
    start = telnyx.parse(_telnyx_start(), started=False)
    assert isinstance(telnyx.chosen, Telnyx)
    assert isinstance(start, Start)
    assert start.token == "tk_x"

    twilio = Recognising()
    twilio.parse(
        json.dumps({"event": "start", "sequenceNumber": "1", "start": {}, "streamSid": "MZ1"}),
        started=False,
    )
    assert isinstance(twilio.chosen, Twilio)


@pytest.mark.parametrize(
    ("fmt", "words"),
    [
        ({"encoding": "AMR-WB"}, "encoding"),
        ({"encoding": 7}, "encoding"),
        ({"channels": 3}, "channels"),
        ({"encoding": "G722", "sample_rate": 44100}, "G.722"),
        ({"encoding": "L16", "sample_rate": 7}, "sample rate"),
    ],
)
def test_bad_media_formats_are_1003_after_auth(fmt: dict[str, Any], words: str) -> None:
    start = Telnyx().parse(_telnyx_start(**fmt), started=False)
    assert isinstance(start, Start)
    assert start.format_error is not None
    assert start.format_error.code == 1003
    assert words.lower() in start.format_error.reason.lower()


def test_l16_big_endian_becomes_the_recorders_little_endian() -> None:
    dialect = Telnyx()
    start = dialect.parse(_telnyx_start(encoding="L16", sample_rate=16000), started=False)
    assert isinstance(start, Start)
    assert (start.caller.encoding, start.caller.sample_rate) == ("l16", 16000)
    media = dialect.parse(_telnyx_media(b"\x01\x02\xff\xfe"), started=True)
    assert isinstance(media, Media)
    assert media.payload == b"\x02\x01\xfe\xff"


def test_pcmu_passes_through() -> None:
    dialect = Telnyx()
    start = dialect.parse(_telnyx_start(), started=False)
    assert isinstance(start, Start)
    assert start.caller.encoding == "mulaw"
    media = dialect.parse(_telnyx_media(b"\x7f\xff", track="outbound"), started=True)
    assert isinstance(media, Media)
    assert (media.leg, media.payload) == ("assistant", b"\x7f\xff")


@pytest.mark.parametrize(
    "frame",
    [
        '{"event": "media", "sequence_number": "-1", "media": {}}',
        '{"event": "media", "sequence_number": "2", "media": {"track": "both", "timestamp": "0",'
        ' "payload": ""}}',
        '{"event": "media", "sequence_number": "2", "media": {"timestamp": "1.5", "payload": ""}}',
        '{"event": "media", "sequence_number": "2", "media": {"timestamp": "0", "chunk": "x",'
        ' "payload": ""}}',
        '{"event": "dance", "sequence_number": "2"}',
        "[]",
    ],
)
def test_malformed_frames_are_1003(frame: str) -> None:
    dialect = Telnyx()
    dialect.parse(_telnyx_start(), started=False)
    with pytest.raises(StreamRefused) as refused:
        dialect.parse(frame, started=True)
    assert refused.value.code == 1003


def test_stop_and_passive_events() -> None:
    dialect = Telnyx()
    for event in ("dtmf", "mark", "error", "clear"):
        frame = json.dumps({"event": event, "sequence_number": "3", "stream_id": "S1"})
        assert isinstance(dialect.parse(frame, started=True), Ignored)
    assert isinstance(
        dialect.parse('{"event": "stop", "sequence_number": "9"}', started=True), Stop
    )
    with pytest.raises(StreamRefused) as refused:
        Telnyx().parse(_telnyx_media(b"\xff"), started=False)
    assert refused.value.code == 1008


def test_a_telnyx_dtmf_frame_reports_its_digit() -> None:
    """A ``dtmf`` frame with its ``dtmf`` object is a keypad tone (silenced like Twilio's)."""
    frame = {"event": "dtmf", "sequence_number": "4", "dtmf": {"digit": "#"}, "stream_id": "S1"}
    event = Telnyx().parse(json.dumps(frame), started=True)
    assert isinstance(event, Dtmf)
    assert event.digit == "#"
    # Before the start there is no stream to silence.
    assert isinstance(Telnyx().parse(json.dumps(frame), started=False), Ignored)
