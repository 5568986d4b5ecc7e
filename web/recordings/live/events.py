"""What a media-stream dialect turns frames into: typed events, whatever the protocol.

A dialect (see :mod:`web.recordings.live.twilio`) is pure: it parses one frame into one
event, or raises :class:`StreamRefused`. The session acts on the events.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import pybase64

from audio import LegFormat
from audio.formats import Leg

# WebSocket close codes a refusal uses.
POLICY = 1008
UNSUPPORTED = 1003
INTERNAL = 1011


class StreamRefused(Exception):
    """Close the socket with ``code`` and ``reason`` (audio before it is kept)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason[:120]


@dataclass(frozen=True)
class Start:
    """The stream begins: who sends it, and each leg's audio format.

    ``format_error`` is a refusal of the formats, raised by the session only once the
    sender is authenticated (an unauthenticated sender learns nothing more).
    """

    token: str | None
    caller: LegFormat = field(default_factory=LegFormat)
    assistant: LegFormat = field(default_factory=LegFormat)
    format_error: StreamRefused | None = None


@dataclass(frozen=True)
class Media:
    """One chunk of one leg's audio, at ``timestamp_ms`` since the stream's start."""

    track: str
    leg: Leg
    timestamp_ms: int
    payload: bytes


@dataclass(frozen=True)
class Stop:
    """The stream is over: finalize the recording."""


@dataclass(frozen=True)
class Dtmf:
    """The sender reports a keypad tone that just ended: its time is silenced in both legs."""

    digit: str


@dataclass(frozen=True)
class Ignored:
    """A frame that carries nothing for the recording (keepalives, marks)."""


Event = Start | Media | Stop | Dtmf | Ignored


class Dialect(Protocol):
    """A media-stream protocol: frames in, events out, no I/O."""

    def parse(self, raw: str | bytes | None, *, started: bool) -> Event:
        """The event one frame carries; StreamRefused if it is not acceptable now."""
        ...

    def held(self) -> list[Media]:
        """Media held back to be put in order, handed over once when the stream ends."""
        ...


# What every dialect checks the same way.


def decode_frame(raw: str | bytes | None) -> dict[str, Any]:
    """A frame as a JSON object with an ``event``, or StreamRefused (1003)."""
    if raw is None or isinstance(raw, bytes):
        raise StreamRefused(UNSUPPORTED, "binary frames are not accepted: send JSON text")
    try:
        msg = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise StreamRefused(UNSUPPORTED, "malformed JSON") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("event"), str):
        raise StreamRefused(UNSUPPORTED, "a message must be a JSON object with an event")
    return msg


def start_token(start: Any, params_key: str) -> str | None:
    """The sender's token from a start message's custom parameters (``params_key``)."""
    if not isinstance(start, dict):
        raise StreamRefused(UNSUPPORTED, "start must be an object")
    params = start.get(params_key) or {}
    if not isinstance(params, dict):
        raise StreamRefused(UNSUPPORTED, f"start.{params_key} must be an object")
    token = params.get("token")
    return token if isinstance(token, str) and token else None


def media_payload(media: dict[str, Any]) -> bytes:
    """A media message's base64 payload as bytes, or StreamRefused (1003)."""
    payload = media.get("payload")
    if not isinstance(payload, str):
        raise StreamRefused(UNSUPPORTED, "media.payload must be base64 text")
    try:
        # pybase64: the same strict check, several times faster than binascii (SIMD).
        return pybase64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise StreamRefused(UNSUPPORTED, "media.payload is not valid base64") from None
