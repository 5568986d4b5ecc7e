"""API v1: compliance controls of a call's recording (pause a live stream, redact a stored one)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, post
from litestar.di import Provide
from msgspec import Struct

from web.auth import Principal, api_admin, api_principal, require_ingest
from web.openapi import CALL_EXAMPLE, Call, PauseState, error_responses, ok_response
from web.recordings import redaction
from web.recordings.live import pause
from web.services import calls
from web.settings import Settings
from web.storage import Storages
from web.tenancy import get_call

PAUSE_EXAMPLE = {"paused": True, "pauses": [{"start_ms": 42000, "end_ms": None}]}


class RedactionSpan(Struct, forbid_unknown_fields=True):
    start_ms: int
    end_ms: int
    channel: str = "both"


class RedactionRequest(Struct, forbid_unknown_fields=True):
    spans: list[RedactionSpan]
    mode: str = "silence"
    reason: str | None = None


def _pause_route(path: str, description: str, *, paused: bool) -> post:
    """POST ``path`` for an ingest (or admin) key, answering the pause state it leaves."""
    return post(
        path,
        status_code=200,
        guards=[require_ingest],
        responses={
            **ok_response(PauseState, description, {**PAUSE_EXAMPLE, "paused": paused}),
            **error_responses(400, 401, 403, 404, 409, 429),
        },
    )


class ApiComplianceController(Controller):
    path = "/api/v1/calls/{call_id:str}/recording"
    tags = ["recordings"]
    dependencies = {"principal": Provide(api_principal)}

    @_pause_route("/pause", "Paused (within 500 ms of this answer).", paused=True)
    async def pause_recording(self, principal: Principal, call_id: str) -> dict[str, Any]:
        """Store silence in both channels from now until resumed; only while the stream is live."""
        return dict(await pause.request(principal.org_id, call_id, True, principal))

    @_pause_route("/resume", "Recording again.", paused=False)
    async def resume_recording(self, principal: Principal, call_id: str) -> dict[str, Any]:
        """Store the audio again; only while the stream is live."""
        return dict(await pause.request(principal.org_id, call_id, False, principal))

    @post(
        "/redactions",
        status_code=200,
        guards=[api_admin],
        opt={"admin_reason": "Only an admin key can redact a recording."},
        responses={
            **ok_response(Call, "The call, its recording redacted.", CALL_EXAMPLE),
            **error_responses(400, 401, 403, 404, 409, 422, 429),
        },
    )
    async def redact_recording(
        self,
        settings: Settings,
        storages: Storages,
        principal: Principal,
        call_id: str,
        data: RedactionRequest,
    ) -> dict[str, Any]:
        """Replace spans of the stored recording with silence (or a tone); old bytes deleted."""
        spans = [redaction.Span(s.start_ms, s.end_ms, s.channel) for s in data.spans]
        rec = await redaction.redact(
            storages, principal.org_id, call_id, spans, data.mode, data.reason, principal
        )
        call = await get_call(principal.org_id, call_id)
        return calls.call_to_dict(call, rec, settings.secret_key)
