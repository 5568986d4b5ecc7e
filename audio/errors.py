"""One hierarchy of audio errors, each carrying a message fit to show an API client."""

from __future__ import annotations


class AudioError(Exception):
    """Base class: the audio could not be accepted. ``str(err)`` is a client-safe message."""

    default_message = "the audio could not be processed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        """The human message (same as ``str(err)``)."""
        return str(self)


class EmptyAudio(AudioError):
    """The input holds no audio samples at all."""

    default_message = "the audio is empty"


class NotAudio(AudioError):
    """The input is not an audio file in any format we read."""

    default_message = "the file is not audio in a supported format (WAV, FLAC, MP3, OGG)"


class CorruptAudio(AudioError):
    """The input looks like audio but could not be decoded (damaged, truncated, crashing)."""

    default_message = "the audio file is damaged and could not be decoded"


UnreadableAudio = CorruptAudio


class TruncatedAudio(CorruptAudio):
    """The file's header promises more audio than its bytes hold (a lying length, a cut file)."""

    default_message = "the audio file holds less audio than its header says: truncated?"


class UnsupportedEncoding(AudioError):
    """A wire encoding other than mu-law or 16-bit linear PCM."""

    default_message = "unsupported audio encoding (use audio/x-mulaw or audio/x-l16)"


class BadSampleRate(AudioError):
    """A sample rate outside 8000..192000 Hz (or not a whole number)."""

    default_message = "unsupported sample rate"


class TooManyChannels(AudioError):
    """More channels than the input shape allows (a leg is mono or stereo, a call file stereo)."""

    default_message = "too many audio channels"


class NotStereo(AudioError):
    """A single call file must have two channels: caller left, assistant right."""

    default_message = "a single call file must be stereo (channel 0 caller, channel 1 assistant)"


class InvalidChunk(AudioError):
    """A live chunk that cannot be placed: unknown leg, negative timestamp, odd-length L16."""

    default_message = "invalid audio chunk"


class AudioTooLong(AudioError):
    """The audio exceeds the maximum duration a recording may have."""

    default_message = "the audio is too long"


class InvalidRedaction(AudioError):
    """Redaction spans that are empty, reversed, outside the recording, or name an unknown
    channel or mode."""

    default_message = "invalid redaction spans"


ERRORS_BY_NAME: dict[str, type[AudioError]] = {
    cls.__name__: cls
    for cls in (
        AudioError,
        EmptyAudio,
        NotAudio,
        CorruptAudio,
        TruncatedAudio,
        UnsupportedEncoding,
        BadSampleRate,
        TooManyChannels,
        NotStereo,
        InvalidChunk,
        AudioTooLong,
        InvalidRedaction,
    )
}
