"""The Twilio dialect alone: frames in, typed events or refusals out, no I/O."""

from __future__ import annotations

import base64
import json

import pytest

from web.recordings.live.events import POLICY, UNSUPPORTED, Dtmf, Ignored, Media, Start, Stop
from web.recordings.live.twilio import StreamRefused, Twilio

DIALECT = Twilio()


def _frame(event: str, **body: object) -> str:
    return json.dumps({"event": event, **body})


def test_start_carries_the_token_and_each_legs_format() -> None:
    start = DIALECT.parse(
        _frame(
            "start",
            start={
                "customParameters": {"token": "tt_key"},
                "mediaFormats": {"outbound": {"encoding": "audio/x-l16", "sampleRate": 24000}},
            },
        ),
        started=False,
    )
    assert isinstance(start, Start)
    assert start.token == "tt_key"
    assert start.format_error is None
    assert (start.caller.encoding, start.caller.sample_rate) == ("mulaw", 8000)
    assert (start.assistant.encoding, start.assistant.sample_rate) == ("l16", 24000)


def test_a_bad_format_is_kept_for_after_authentication() -> None:
    start = DIALECT.parse(_frame("start", start={"mediaFormat": {"channels": 2}}), started=False)
    assert isinstance(start, Start)
    assert start.format_error is not None
    assert start.format_error.code == UNSUPPORTED


def test_media_is_decoded_to_its_leg() -> None:
    payload = base64.b64encode(b"\xff" * 160).decode()
    media = DIALECT.parse(
        _frame("media", media={"track": "outbound", "timestamp": "40", "payload": payload}),
        started=True,
    )
    assert media == Media("outbound", "assistant", 40, b"\xff" * 160)


@pytest.mark.parametrize(
    ("raw", "started", "code", "reason"),
    [
        (b"{}", True, UNSUPPORTED, "binary frames"),
        ("{", True, UNSUPPORTED, "malformed JSON"),
        ("[1]", True, UNSUPPORTED, "JSON object with an event"),
        (_frame("media", media={}), False, POLICY, "media before start"),
        (_frame("start", start={}), True, POLICY, "already started"),
        (_frame("media", media={"track": "both"}), True, UNSUPPORTED, "unknown track"),
        (_frame("media", media={"timestamp": True}), True, UNSUPPORTED, "milliseconds"),
        (
            _frame("media", media={"timestamp": 0, "payload": "**"}),
            True,
            UNSUPPORTED,
            "not valid base64",
        ),
        (_frame("hello"), True, UNSUPPORTED, "unknown event"),
    ],
)
def test_refusals_name_the_close_code(
    raw: str | bytes, started: bool, code: int, reason: str
) -> None:
    with pytest.raises(StreamRefused) as refused:
        DIALECT.parse(raw, started=started)
    assert refused.value.code == code
    assert reason in refused.value.reason


def test_keepalives_are_ignored_and_stop_ends() -> None:
    for event in ("connected", "mark"):
        assert isinstance(DIALECT.parse(_frame(event), started=True), Ignored)
    assert isinstance(DIALECT.parse(_frame("dtmf"), started=False), Ignored)
    assert isinstance(DIALECT.parse(_frame("stop"), started=False), Stop)


def test_dtmf_events_carry_the_digit() -> None:
    frame = json.dumps({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "7"}})
    assert DIALECT.parse(frame, started=True) == Dtmf("7")
    assert DIALECT.parse(_frame("dtmf"), started=True) == Dtmf("")
