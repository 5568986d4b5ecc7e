"""Twilio Media Streams (plus L16 and per-track formats) as events: a pure parser."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from audio import AudioError, LegFormat
from audio.formats import Leg
from web.recordings.live.events import (
    POLICY,
    UNSUPPORTED,
    Dtmf,
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

# Twilio's track names, and the leg each one is.
TRACKS: dict[str, Leg] = {"inbound": "caller", "outbound": "assistant"}
# A timestamp beyond this is refused: no call is longer than the audio engine accepts.
MAX_CALL_MS = 4 * 3600 * 1000
_IGNORED = Ignored()
_STOP = Stop()
ALAW = "audio/x-alaw"


class Twilio:
    """The Twilio dialect: JSON text frames ``connected``, ``start``, ``media``, ``stop``...

    A track in ``audio/x-alaw`` is decoded here to 16-bit PCM (the recorder takes mu-law
    and L16 as they come).
    """

    def __init__(self) -> None:
        self._decoders: dict[Leg, Transcoder] = {}

    def parse(self, raw: str | bytes | None, *, started: bool) -> Event:
        """The event one frame carries; StreamRefused if it is not acceptable now."""
        msg = decode_frame(raw)
        event = msg["event"]
        if event == "media":
            if not started:
                raise StreamRefused(POLICY, "media before start")
            media = _media(msg.get("media"))
            decode = self._decoders.get(media.leg)
            return media if decode is None else replace(media, payload=decode(media.payload))
        if event == "start":
            if started:
                raise StreamRefused(POLICY, "the stream has already started")
            return _start(msg.get("start"), self._decoders)
        if event == "dtmf" and started:
            return dtmf_event(msg.get("dtmf"))
        if event in ("connected", "dtmf", "mark"):
            return _IGNORED
        if event == "stop":
            return _STOP
        raise StreamRefused(UNSUPPORTED, f"unknown event {event[:40]!r}")

    def held(self) -> list[Media]:
        """Nothing: every frame goes to the recorder as it comes."""
        return []


def _start(start: Any, decoders: dict[Leg, Transcoder]) -> Start:
    token = start_token(start, "customParameters")
    try:
        caller, assistant = _formats(start, decoders)
    except StreamRefused as exc:
        return Start(token, format_error=exc)
    return Start(token, caller, assistant)


def _formats(start: dict[str, Any], decoders: dict[Leg, Transcoder]) -> tuple[LegFormat, LegFormat]:
    per_track = start.get("mediaFormats") or {}
    if not isinstance(per_track, dict) or set(per_track) - set(TRACKS):
        raise StreamRefused(UNSUPPORTED, "start.mediaFormats names inbound and outbound only")
    formats: list[LegFormat] = []
    for track, leg in TRACKS.items():
        if track in per_track:
            spec, what = per_track.get(track), f"mediaFormats.{track}"
        else:
            spec, what = start.get("mediaFormat"), "start.mediaFormat"
        formats.append(_leg_format(spec, what, leg, decoders))
    return formats[0], formats[1]


def _leg_format(spec: Any, what: str, leg: Leg, decoders: dict[Leg, Transcoder]) -> LegFormat:
    if spec is None:
        return LegFormat()
    if not isinstance(spec, dict):
        raise StreamRefused(UNSUPPORTED, f"{what} must be an object")
    channels = spec.get("channels", 1)
    if channels != 1:
        raise StreamRefused(UNSUPPORTED, f"{what}: only mono tracks are supported")
    encoding = spec.get("encoding", "audio/x-mulaw")
    if isinstance(encoding, str) and encoding.strip().lower() == ALAW:
        # A decoder per track: each leg's payloads go through their own.
        decoders[leg] = transcoder(encoding, spec.get("sampleRate", 8000), 1, what)
        return decoders[leg].leg_format
    try:
        return LegFormat(
            encoding=encoding,
            sample_rate=spec.get("sampleRate", 8000),
        )
    except AudioError as exc:
        raise StreamRefused(UNSUPPORTED, f"{what}: {exc}") from None


def _media(media: Any) -> Media:
    if not isinstance(media, dict):
        raise StreamRefused(UNSUPPORTED, "media must be an object")
    track = media.get("track", "inbound")
    leg = TRACKS.get(track)
    if leg is None:
        raise StreamRefused(UNSUPPORTED, "unknown track: use inbound or outbound")
    ts = _timestamp(media.get("timestamp"))
    return Media(track, leg, ts, media_payload(media))


def _timestamp(value: Any) -> int:
    if isinstance(value, bool):
        raise StreamRefused(UNSUPPORTED, "media.timestamp must be milliseconds")
    try:
        ms = int(value) if isinstance(value, int | str) else -1
    except ValueError:
        ms = -1
    if not 0 <= ms <= MAX_CALL_MS:
        raise StreamRefused(UNSUPPORTED, "media.timestamp must be milliseconds since the start")
    return ms


def dtmf_event(dtmf: Any) -> Dtmf:
    """A ``dtmf`` event (Twilio's or Telnyx's) carries the digit but no time: it is placed
    where the audio is."""
    digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
    return Dtmf(digit[:1] if isinstance(digit, str) else "")
