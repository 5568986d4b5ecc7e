"""API v1 ingest: the live media WebSocket and the PUTs of recording, transcript and analysis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from litestar import Controller, Request, WebSocket, put, websocket
from litestar.di import Provide
from litestar.exceptions import WebSocketDisconnect
from msgspec import Struct

from web import shutdown
from web.auth import Principal, api_principal, require_ingest
from web.errors import InvalidInput
from web.models import Role
from web.openapi import (
    RECORDING_EXAMPLE,
    AnalysisSaved,
    Recording,
    TranscriptSaved,
    error_responses,
    ok_response,
)
from web.recordings import upload
from web.recordings.live.events import POLICY
from web.recordings.live.session import MediaSession, StreamRefused
from web.services import calls
from web.services.calls import recording_to_dict
from web.settings import Settings
from web.storage import Storages

log = logging.getLogger("talkturo.ingest")

# Telnyx sends the stream's auth token in this header (its ``stream_auth_token``).
TELNYX_AUTH_HEADER = "x-telnyx-streaming-auth-token"

MAX_DATA_DEPTH = 32


def _depth(value: Any) -> int:
    """How deeply a JSON value nests (iteratively: no recursion limit to hit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DATA_DEPTH:
            break
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, level + 1) for child in children)
    return deepest


class TranscriptIn(Struct, forbid_unknown_fields=True):
    messages: list[calls.TranscriptMessage]


class AnalysisIn(Struct, forbid_unknown_fields=True):
    summary: str = ""
    success: bool | None = None
    data: dict[str, Any] = {}


@websocket("/api/v1/calls/{call_id:str}/media")
async def media_stream(
    socket: WebSocket[Any, Any, Any], settings: Settings, storages: Storages, call_id: str
) -> None:
    """Live audio of a call: Twilio Media Streams (plus L16 and per-track formats) or Telnyx
    media streaming, recognised from the frames."""
    session = MediaSession(settings, storages, call_id, _authorization(socket))
    await socket.accept()
    if shutdown.draining():
        await socket.close(code=shutdown.SERVICE_RESTART, reason=shutdown.REFUSED_REASON)
        return
    reader = shutdown.Reader()
    shutdown.register(reader)
    try:
        await _serve_stream(socket, session, reader, call_id)
    finally:
        shutdown.unregister(reader)


def _authorization(socket: WebSocket[Any, Any, Any]) -> str | None:
    """``Authorization``, else Telnyx's ``x-telnyx-streaming-auth-token`` (the bare key)."""
    header = socket.headers.get("authorization")
    if header:
        return header
    token = socket.headers.get(TELNYX_AUTH_HEADER, "").strip()
    return f"Bearer {token}" if token else None


async def _serve_stream(
    socket: WebSocket[Any, Any, Any],
    session: MediaSession,
    reader: shutdown.Reader,
    call_id: str,
) -> None:
    settings = session.settings
    deadline = asyncio.get_running_loop().time() + settings.recording.stream_start_timeout_s

    async def close_idle() -> None:
        timeout = settings.recording.stream_timeout_s
        await socket.close(code=POLICY, reason=f"no media for {timeout:g} s; recording finalized")

    session.on_idle = close_idle
    try:
        while True:
            event = await _next_event(socket, session, reader, deadline)
            if event is None:
                # The process is shutting down: the pipeline reconnects, we keep what came.
                with contextlib.suppress(Exception):
                    await socket.close(code=shutdown.SERVICE_RESTART, reason="service restart")
                await session.hand_off()
                return
            if event["type"] == "websocket.disconnect":
                session.detach()
                return
            raw: Any = event.get("text")
            if raw is None:
                raw = event.get("bytes")
            if await session.handle(raw):
                break
    except StreamRefused as exc:
        await session.abort()
        await socket.close(code=exc.code, reason=exc.reason)
        return
    except WebSocketDisconnect:
        session.detach()
        return
    except Exception:
        log.exception("media stream of call %s failed", call_id)
        session.detach()
        await socket.close(code=1011, reason="internal error")
        return
    await socket.close(code=1000)


async def _next_event(
    socket: WebSocket[Any, Any, Any],
    session: MediaSession,
    reader: shutdown.Reader,
    deadline: float,
) -> Any:
    """The next message; until the stream has started, only until ``deadline`` (then 1008)."""
    if session.started:
        return await reader.receive(socket)
    try:
        async with asyncio.timeout_at(deadline):
            return await reader.receive(socket)
    except TimeoutError:
        limit = session.settings.recording.stream_start_timeout_s
        raise StreamRefused(POLICY, f"no valid start within {limit:g} s") from None


@put(
    "/api/v1/calls/{call_id:str}/recording",
    status_code=200,
    request_max_body_size=upload.MAX_UPLOAD_BYTES,
    dependencies={"principal": Provide(api_principal)},
    guards=[require_ingest],
    tags=["ingest"],
    responses={
        **ok_response(Recording, "The stored recording.", RECORDING_EXAMPLE),
        **error_responses(400, 401, 403, 404, 409, 413, 422, 429, 507),
    },
)
async def put_recording(
    request: Request[Any, Any, Any],
    settings: Settings,
    storages: Storages,
    principal: Principal,
    call_id: str,
) -> dict[str, Any]:
    """The whole audio at once: a stereo file, or multipart fields caller and assistant.

    A function, not a controller method: Litestar 2 refuses a second controller on a path
    another controller already serves (GET/DELETE of the recording), so register it after.
    """
    rec = await upload.upload_recording(
        settings,
        storages,
        principal.org_id,
        call_id,
        request.headers.get("content-type", ""),
        request.stream(),
    )
    out = recording_to_dict(rec, settings.secret_key)
    # An ingest key cannot read recordings: no download link.
    return {**out, "url": None} if principal.role is Role.INGEST else out


class IngestController(Controller):
    path = "/api/v1/calls"
    tags = ["ingest"]
    dependencies = {"principal": Provide(api_principal)}
    guards = [require_ingest]

    @put(
        "/{call_id:str}/transcript",
        status_code=200,
        responses={
            **ok_response(
                TranscriptSaved,
                "The transcript was replaced.",
                {"call_id": "3b0c6f52-8f0e-4d55-a1f4-2f1f0b6a7c21", "messages": 12},
            ),
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    async def put_transcript(
        self, principal: Principal, call_id: str, data: TranscriptIn
    ) -> dict[str, Any]:
        """Replace the call's transcript."""
        call = await calls.put_transcript(principal.org_id, call_id, data.messages)
        return {"call_id": str(call.id), "messages": len(data.messages)}

    @put(
        "/{call_id:str}/analysis",
        status_code=200,
        responses={
            **ok_response(
                AnalysisSaved,
                "The analysis was replaced.",
                {
                    "summary": "Order status check; resolved.",
                    "success": True,
                    "data": {"order_id": "A-1042"},
                },
            ),
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    async def put_analysis(
        self, principal: Principal, call_id: str, data: AnalysisIn
    ) -> dict[str, Any]:
        """Replace the call's analysis."""
        if _depth(data.data) > MAX_DATA_DEPTH:
            raise InvalidInput(f"data may nest at most {MAX_DATA_DEPTH} levels deep.")
        analysis = await calls.put_analysis(
            principal.org_id, call_id, data.summary, data.success, data.data
        )
        return {"summary": analysis.summary, "success": analysis.success, "data": analysis.data}
