"""API v1: compliance controls of a call's recording (pause and resume a live stream)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, post
from litestar.di import Provide

from web.auth import Principal, api_admin, api_principal
from web.openapi import PauseState, error_responses, ok_response
from web.recordings.live import pause

PAUSE_EXAMPLE = {"paused": True, "pauses": [{"start_ms": 42000, "end_ms": None}]}


class ApiComplianceController(Controller):
    path = "/api/v1/calls/{call_id:str}/recording"
    tags = ["recordings"]
    dependencies = {"principal": Provide(api_principal)}

    @post(
        "/pause",
        status_code=200,
        guards=[api_admin],
        opt={"admin_reason": "Only an admin key can pause a recording."},
        responses={
            **ok_response(PauseState, "Paused (within 500 ms of this answer).", PAUSE_EXAMPLE),
            **error_responses(401, 403, 404, 409, 429),
        },
    )
    async def pause_recording(self, principal: Principal, call_id: str) -> dict[str, Any]:
        """Store silence in both channels from now until resumed; only while the stream is live."""
        return dict(await pause.request(principal.org_id, call_id, True, principal))

    @post(
        "/resume",
        status_code=200,
        guards=[api_admin],
        opt={"admin_reason": "Only an admin key can resume a recording."},
        responses={
            **ok_response(PauseState, "Recording again.", {**PAUSE_EXAMPLE, "paused": False}),
            **error_responses(401, 403, 404, 409, 429),
        },
    )
    async def resume_recording(self, principal: Principal, call_id: str) -> dict[str, Any]:
        """Store the audio again; only while the stream is live."""
        return dict(await pause.request(principal.org_id, call_id, False, principal))
