"""What the dashboard's player needs to play a call: signed URLs and the peaks location."""

from __future__ import annotations

from typing import Any

from web.models import Call, Recording, RecordingStatus
from web.security import signed_query


def player_context(secret_key: str, call: Call, rec: Recording | None) -> dict[str, Any] | None:
    """URLs for the player, or None when there is nothing to play."""
    if rec is None or rec.status != RecordingStatus.AVAILABLE:
        return None
    path = f"/calls/{call.id}/recording.mp3"
    return {
        "mp3_url": f"{path}?{signed_query(secret_key, path)}",
        "download_url": f"{path}?download=1&{signed_query(secret_key, path)}",
        "peaks_url": f"/calls/{call.id}/peaks.json",
        "duration_ms": rec.duration_ms,
    }
