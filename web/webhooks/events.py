"""The events a webhook endpoint can subscribe to."""

from __future__ import annotations

RECORDING_AVAILABLE = "recording.available"
RECORDING_FAILED = "recording.failed"
RECORDING_REDACTED = "recording.redacted"
RECORDING_DELETED = "recording.deleted"
RECORDING_PURGED = "recording.purged"

EVENT_TYPES: tuple[str, ...] = (
    RECORDING_AVAILABLE,
    RECORDING_FAILED,
    RECORDING_REDACTED,
    RECORDING_DELETED,
    RECORDING_PURGED,
)
