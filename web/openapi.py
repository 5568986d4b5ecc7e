"""OpenAPI helpers: the error shape every 4xx of API v1 answers with, and its examples."""

from __future__ import annotations

from typing import Any

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from msgspec import UNSET, Struct


class ErrorBody(Struct):
    """What every API error answers: the HTTP status and a sentence naming the problem."""

    status_code: int
    detail: str


# A typical detail per status, shown as the example of each documented error.
ERROR_EXAMPLES: dict[int, tuple[str, str]] = {
    400: ("Bad request", "retention_days must be a whole number of days from 1 to 36500."),
    401: ("No valid API key", "A valid API key is required: Authorization: Bearer <key>."),
    403: ("Not allowed", "This needs an admin."),
    404: ("Not found (also another org's object)", "No such call."),
    409: ("Conflict with the current state", "The call already ended as completed."),
    413: ("Too large", "The upload is larger than the limit."),
    416: ("Range not satisfiable", "The requested range is beyond the end of the recording."),
    422: ("Cannot be processed", "No such bucket: bucket 'acme' does not exist at this endpoint."),
    429: ("Rate limited (see Retry-After)", "Too many requests; try again in 42 seconds."),
    507: (
        "The server's disk is full",
        "The server's disk is full: the upload was not stored. Try again later.",
    ),
}


def given_fields(data: Struct) -> dict[str, Any]:
    """The fields a PATCH body sets: those not left ``UNSET`` (``None`` included)."""
    return {f: getattr(data, f) for f in data.__struct_fields__ if getattr(data, f) is not UNSET}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """Response specs for ``codes``, each with the ``{"status_code", "detail"}`` shape."""
    specs: dict[int, ResponseSpec] = {}
    for code in codes:
        summary, detail = ERROR_EXAMPLES[code]
        specs[code] = ResponseSpec(
            data_container=ErrorBody,
            description=summary,
            generate_examples=False,
            examples=[Example(summary=summary, value={"status_code": code, "detail": detail})],
        )
    return specs


def ok_response(
    model: Any, description: str, example: dict[str, Any], code: int = 200
) -> dict[int, ResponseSpec]:
    """The success response of a route with a documented example."""
    return {
        code: ResponseSpec(
            data_container=model,
            description=description,
            generate_examples=False,
            examples=[Example(summary=description, value=example)],
        )
    }


class Assistant(Struct):
    """An AI voice agent of the org."""

    id: str
    name: str
    recording_enabled: bool
    redact_dtmf: bool
    created_at: str


class AssistantList(Struct):
    """The org's assistants (one page: ``next_cursor`` is null)."""

    items: list[Assistant]
    next_cursor: str | None


class Redaction(Struct):
    """A span of the stored audio replaced by silence (``reason`` ``dtmf``: a keypad tone)."""

    start_ms: int
    end_ms: int
    channel: str
    reason: str


class Pause(Struct):
    """A span of a live recording stored as silence in both channels (``end_ms`` null: now)."""

    start_ms: int
    end_ms: int | None


class PauseState(Struct):
    """Whether the live recording is paused, and every paused span so far."""

    paused: bool
    pauses: list[Pause]


class Recording(Struct):
    """A call's recording. ``sha256``, ``size_bytes``, ``duration_ms`` and ``url`` are set
    once it is ``available``; ``url`` is signed and works without a key for 15 minutes."""

    status: str
    duration_ms: int | None
    size_bytes: int | None
    sha256: str | None
    url: str | None
    created_at: str
    purge_at: str | None
    redactions: list[Redaction]
    pauses: list[Pause]


class Call(Struct):
    """One phone conversation; ``recording`` is null while the call has no audio."""

    id: str
    assistant_id: str
    direction: str
    from_number: str
    to_number: str
    status: str
    started_at: str
    ended_at: str | None
    duration_ms: int | None
    recording_enabled: bool
    recording: Recording | None
    campaign: str | None = None


class CallList(Struct):
    """A page of calls, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[Call]
    next_cursor: str | None


class TranscriptSaved(Struct):
    """How many messages the call's transcript now has."""

    call_id: str
    messages: int


class AnalysisSaved(Struct):
    """The call's analysis as stored."""

    summary: str
    success: bool | None
    data: dict[str, Any]


ASSISTANT_EXAMPLE: dict[str, Any] = {
    "id": "8c1f5a9e-2f6b-4d7c-9a51-0b7f3f2e4a10",
    "name": "Support bot",
    "recording_enabled": True,
    "redact_dtmf": True,
    "created_at": "2025-01-15T09:30:00+00:00",
}
RECORDING_EXAMPLE: dict[str, Any] = {
    "status": "available",
    "duration_ms": 184250,
    "size_bytes": 737280,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "url": "/api/v1/calls/3b0c6f52-8f0e-4d55-a1f4-2f1f0b6a7c21/recording"
    "?expires=1736935200&signature=m2w9…",
    "created_at": "2025-01-15T10:02:11+00:00",
    "purge_at": "2026-01-15T10:02:11+00:00",
    "redactions": [{"start_ms": 61230, "end_ms": 61410, "channel": "both", "reason": "dtmf"}],
    "pauses": [{"start_ms": 42000, "end_ms": 75500}],
}
CALL_EXAMPLE: dict[str, Any] = {
    "id": "3b0c6f52-8f0e-4d55-a1f4-2f1f0b6a7c21",
    "assistant_id": ASSISTANT_EXAMPLE["id"],
    "direction": "inbound",
    "from_number": "+14155550101",
    "to_number": "+14155550100",
    "status": "completed",
    "started_at": "2025-01-15T10:02:11+00:00",
    "ended_at": "2025-01-15T10:05:15+00:00",
    "duration_ms": 184250,
    "recording_enabled": True,
    "campaign": "spring-renewals",
    "recording": RECORDING_EXAMPLE,
}


def binary_response(media_type: str, description: str) -> dict[int, ResponseSpec]:
    """A 200 whose body is bytes of ``media_type`` (and its 206 partial form)."""
    return {
        code: ResponseSpec(
            data_container=bytes, media_type=media_type, description=desc, generate_examples=False
        )
        for code, desc in ((200, description), (206, f"{description} (a byte range)"))
    }
