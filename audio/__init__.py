"""Audio engine: two call legs in, one stereo MP3 (ch 0 caller, ch 1 assistant) and peaks out.

Pure: numpy and pedalboard only, no I/O beyond the files it is handed, no asyncio.
"""

from audio.convert import decode_untrusted_to_mp3
from audio.errors import (
    AudioError,
    AudioTooLong,
    BadSampleRate,
    CorruptAudio,
    EmptyAudio,
    InvalidChunk,
    InvalidRedaction,
    NotAudio,
    NotStereo,
    TooManyChannels,
    TruncatedAudio,
    UnreadableAudio,
    UnsupportedEncoding,
)
from audio.files import Mp3Summary, encode_files, peaks_from_mp3
from audio.formats import MP3_RATES, LegFormat, output_rate_for
from audio.mp3 import DEFAULT_BITRATE_KBPS, ENCODER_DELAY_SAMPLES, repair_mp3_tail
from audio.peaks import OVERVIEW_MAX_POINTS, Peaks
from audio.recorder import Recorder
from audio.redact import RedactedRecording, redact_mp3
from audio.writer import RecordingResult

__all__ = [
    "DEFAULT_BITRATE_KBPS",
    "ENCODER_DELAY_SAMPLES",
    "MP3_RATES",
    "OVERVIEW_MAX_POINTS",
    "AudioError",
    "AudioTooLong",
    "BadSampleRate",
    "CorruptAudio",
    "EmptyAudio",
    "InvalidChunk",
    "InvalidRedaction",
    "LegFormat",
    "Mp3Summary",
    "NotAudio",
    "NotStereo",
    "Peaks",
    "Recorder",
    "RecordingResult",
    "RedactedRecording",
    "TooManyChannels",
    "TruncatedAudio",
    "UnreadableAudio",
    "UnsupportedEncoding",
    "decode_untrusted_to_mp3",
    "encode_files",
    "output_rate_for",
    "peaks_from_mp3",
    "redact_mp3",
    "repair_mp3_tail",
]
