"""What a media-stream dialect turns frames into: typed events, whatever the protocol.

A dialect (see :mod:`web.recordings.live.twilio`) is pure: it parses one frame into one
event, or raises :class:`StreamRefused`. The session acts on the events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

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
