"""Telnyx media streaming as events: a parser that keeps one decoder per track.

Frames are JSON text: ``connected``, ``start`` (``media_format`` and ``custom_parameters``),
``media`` (base64 RTP payloads with ``track``, ``chunk`` and ``timestamp``), ``dtmf`` (a
keypad tone: silenced in both channels, as Twilio's), ``mark``, ``error``, ``stop``; each
carries ``sequence_number`` and ``stream_id``. Payloads other than PCMU are decoded here
(:mod:`web.recordings.live.transcode`) so the recorder gets 16-bit PCM; it places every
chunk by its timestamp, whatever order frames came in.
"""

from __future__ import annotations

import heapq
from dataclasses import replace
from typing import Any

from audio import AudioError, LegFormat
from audio.codecs import ENCODINGS
from audio.formats import Leg
from web.recordings.live.events import (
    POLICY,
    UNSUPPORTED,
    Event,
    Ignored,
    Media,
    Start,
    Stop,
    StreamRefused,
    decode_frame,
    media_payload,
    start_token,
)
from web.recordings.live.transcode import Transcoder, transcoder
from web.recordings.live.twilio import MAX_CALL_MS, TRACKS, dtmf_event

# What tells a Telnyx frame from a Twilio one (Twilio spells them sequenceNumber, streamSid).
MARKERS = ("sequence_number", "stream_id")
_IGNORED = Ignored()
_STOP = Stop()
_PASSIVE = ("connected", "dtmf", "mark", "error", "clear")
# Frames per track held back so a stateful decoder gets its packets in order (80 ms).
HOLD = 4


class Telnyx:
    """The Telnyx dialect; one instance per stream (it holds the tracks' decoders)."""

    def __init__(self) -> None:
        self._decoders: dict[Leg, Transcoder] = {}
        self._waiting: dict[Leg, list[tuple[int, int, int, Media]]] = {}
        self._arrivals = 0

    def parse(self, raw: str | bytes | None, *, started: bool) -> Event:
        """The event one frame carries; StreamRefused if it is not acceptable now."""
        msg = decode_frame(raw)
        seq = _sequence_number(msg)
        event = msg["event"]
        if event == "media":
            if not started:
                raise StreamRefused(POLICY, "media before start")
            return self._media(msg.get("media"), seq)
        if event == "start":
            if started:
                raise StreamRefused(POLICY, "the stream has already started")
            return self._start(msg.get("start"))
        if event == "dtmf" and started and isinstance(msg.get("dtmf"), dict):
            # Like Twilio's: the digit, no time; the tone is silenced where the audio is.
            return dtmf_event(msg["dtmf"])
        if event in _PASSIVE:
            return _IGNORED
        if event == "stop":
            return _STOP
        raise StreamRefused(UNSUPPORTED, f"unknown event {event[:40]!r}")

    def held(self) -> list[Media]:
        """The frames still held back, decoded in order, track by track (once)."""
        out: list[Media] = []
        for leg, waiting in self._waiting.items():
            decode = self._decoders[leg]
            while waiting:
                media = heapq.heappop(waiting)[3]
                try:
                    out.append(replace(media, payload=decode(media.payload)))
                except StreamRefused:
                    continue  # an undecodable packet: the rest is still audio
        return out

    def _start(self, start: Any) -> Start:
        token = start_token(start, "custom_parameters")
        try:
            fmt = self._formats(start.get("media_format"))
        except StreamRefused as exc:
            return Start(token, format_error=exc)
        return Start(token, fmt, fmt)

    def _formats(self, spec: Any) -> LegFormat:
        """Both tracks' format (Telnyx sends one for the stream); decoders if not PCMU."""
        what = "start.media_format"
        if not isinstance(spec, dict):
            raise StreamRefused(UNSUPPORTED, f"{what} must be an object")
        encoding = spec.get("encoding")
        rate = spec.get("sample_rate", 8000)
        channels = spec.get("channels", 1)
        if not isinstance(encoding, str) or encoding.strip().lower() not in ENCODINGS:
            shown = encoding[:20] if isinstance(encoding, str) else encoding
            raise StreamRefused(
                UNSUPPORTED, f"{what}: unsupported encoding {shown!r} (PCMU, PCMA, L16, G722, OPUS)"
            )
        if isinstance(channels, bool) or channels not in (1, 2):
            raise StreamRefused(UNSUPPORTED, f"{what}: channels must be 1 or 2")
        if ENCODINGS[encoding.strip().lower()] == "pcmu" and channels == 1:
            try:
                return LegFormat("mulaw", rate)
            except AudioError as exc:
                raise StreamRefused(UNSUPPORTED, f"{what}: {exc}") from None
        # Decoders keep state from packet to packet: one per track.
        for leg in TRACKS.values():
            self._decoders[leg] = transcoder(encoding, rate, channels, what)
        return self._decoders["caller"].leg_format

    def _media(self, media: Any, seq: int) -> Event:
        if not isinstance(media, dict):
            raise StreamRefused(UNSUPPORTED, "media must be an object")
        track = media.get("track", "inbound")
        leg = TRACKS.get(track) if isinstance(track, str) else None
        if leg is None:
            raise StreamRefused(UNSUPPORTED, "unknown media.track: use inbound or outbound")
        ts = _whole(media.get("timestamp"), MAX_CALL_MS, "media.timestamp")
        if "chunk" in media:
            _whole(media["chunk"], 2**53, "media.chunk")
        data = media_payload(media)
        decode = self._decoders.get(leg)
        if decode is None:
            return Media(track, leg, ts, data)
        if not decode.stateful:
            return Media(track, leg, ts, decode(data))
        # In order of timestamp (then sequence number), HOLD frames behind the newest.
        waiting = self._waiting.setdefault(leg, [])
        self._arrivals += 1
        heapq.heappush(waiting, (ts, seq, self._arrivals, Media(track, leg, ts, data)))
        if len(waiting) <= HOLD:
            return _IGNORED
        first = heapq.heappop(waiting)[3]
        return replace(first, payload=decode(first.payload))


def is_telnyx(msg: dict[str, Any]) -> bool:
    """Whether a decoded frame is Telnyx's (its snake_case fields), not Twilio's."""
    return any(key in msg for key in MARKERS)


def _sequence_number(msg: dict[str, Any]) -> int:
    if "sequence_number" in msg:
        return _whole(msg["sequence_number"], 2**53, "sequence_number")
    return 0


def _whole(value: Any, limit: int, what: str) -> int:
    """A whole number from a JSON number or a decimal string (Telnyx sends strings)."""
    number = -1
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 16:
        number = int(value)
    if not 0 <= number <= limit:
        raise StreamRefused(UNSUPPORTED, f"{what} must be a whole number")
    return number
