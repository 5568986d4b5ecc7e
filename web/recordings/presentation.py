"""A recording's state in words, for the dashboard and for error messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from web.models import Recording, RecordingStatus

# A recording in progress that nobody has worked on for this long is waiting for something.
STALLED_AFTER = timedelta(minutes=2)
HOST_AWAY = (
    "Waiting for the server that recorded this call: it holds the audio, and the recording"
    " is finished as soon as that server is back."
)


def delay_reason(rec: Recording, now: datetime | None = None) -> str | None:
    """Why a recording still in progress is late, in words; None while it is simply underway.

    A failed upload says so (it is retried from the spool). A spool lives on the disk of the
    host that recorded the call and only that host can finish it, so a row that no process
    has touched for a while is waiting for that host.
    """
    if RecordingStatus(rec.status) not in (RecordingStatus.RECORDING, RecordingStatus.PROCESSING):
        return None
    now = now or datetime.now(UTC)
    if rec.next_attempt_at is not None:
        if rec.next_attempt_at >= now - STALLED_AFTER:
            tries = "1 attempt" if rec.upload_attempts == 1 else f"{rec.upload_attempts} attempts"
            return (
                f"Storage has not taken the recording yet ({tries}); it is retried"
                " automatically and the audio is kept until then."
            )
        return HOST_AWAY
    if rec.last_error:
        return (
            f"Waiting: {rec.last_error.rstrip('.')}. The audio received so far is kept, and the"
            " recording is finished as soon as the server can write it."
        )
    touched = rec.claimed_until or rec.last_activity_at
    if touched is not None and touched < now - STALLED_AFTER:
        return HOST_AWAY
    return None


def unavailable_reason(rec: Recording | None) -> str | None:
    """Why a recording cannot be played, in words; None when it can."""
    if rec is None:
        return "This call has no recording."
    status = RecordingStatus(rec.status)
    if status is RecordingStatus.AVAILABLE:
        return None
    if status is RecordingStatus.PURGED:
        when = rec.purged_at or rec.purge_at
        on = f" on {when:%Y-%m-%d}" if when else ""
        return f"The recording was purged{on} under the retention policy."
    if status is RecordingStatus.DELETED:
        on = f" on {rec.deleted_at:%Y-%m-%d}" if rec.deleted_at else ""
        return f"The recording was deleted{on}."
    if status is RecordingStatus.RECORDING:
        return "The call is still being recorded."
    if status is RecordingStatus.PROCESSING:
        return "The recording is still processing; try again in a moment."
    return "The recording failed and cannot be played."


def busy_reason(rec: Recording) -> str:
    """Why a call that already has a recording row cannot take an upload."""
    if rec.status == RecordingStatus.RECORDING:
        return "The call is streaming its audio live right now."
    if rec.status in (RecordingStatus.DELETED, RecordingStatus.PURGED):
        return f"The call's recording was {rec.status}; it cannot be replaced."
    return "The call already has a recording."
