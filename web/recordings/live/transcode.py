"""A track whose codec the recorder does not take (A-law, big-endian L16, G.722, Opus).

Its payloads are decoded as they arrive (:mod:`audio.codecs`) and handed on as the
recorder's 16-bit PCM at the decoder's rate; the recorder still places them by timestamp.
"""

from __future__ import annotations

from audio import AudioError, LegFormat
from audio.codecs import FFmpegDecoder, PayloadDecoder, decoder_for, pcm16le
from web.recordings.live.events import UNSUPPORTED, StreamRefused


class Transcoder:
    """One track's payloads in, the recorder's 16-bit little-endian PCM out."""

    def __init__(self, decoder: PayloadDecoder) -> None:
        self.decoder = decoder
        # Fixed at the start: the recorder's leg rate cannot change mid-stream.
        self.leg_format = LegFormat("l16", decoder.sample_rate)
        # G.722 and Opus carry state from packet to packet: feed them in order.
        self.stateful = isinstance(decoder, FFmpegDecoder)

    def __call__(self, payload: bytes) -> bytes:
        """The PCM of one payload; an undecodable one refuses the stream (1003)."""
        try:
            return pcm16le(self.decoder.decode(payload))
        except AudioError as exc:
            raise StreamRefused(UNSUPPORTED, f"bad media: {exc}") from None


def transcoder(encoding: str, sample_rate: int, channels: int, what: str) -> Transcoder:
    """A transcoder for one track, or StreamRefused (1003) naming ``what`` and the problem."""
    try:
        return Transcoder(decoder_for(encoding, sample_rate, channels))
    except AudioError as exc:
        raise StreamRefused(UNSUPPORTED, f"{what}: {exc}") from None
