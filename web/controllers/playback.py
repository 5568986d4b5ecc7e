"""Playback routes: the MP3 with HTTP Range, peaks, signed-URL renewal, audit, deletion."""

from __future__ import annotations

from typing import Any

from litestar import Controller, HttpMethod, Request, Response, delete, get, route
from litestar.di import Provide
from litestar.response import Template

from web.auth import (
    READ_ROLES,
    Principal,
    api_admin,
    api_principal,
    check_roles,
    dashboard_principal,
    key_principal,
)
from web.errors import NotAuthenticated, PermissionDenied
from web.openapi import binary_response, error_responses
from web.recordings import playback as svc
from web.settings import Settings
from web.storage import Storages
from web.streaming import ClosingStream
from web.tenancy import call_by_signed_link, get_call

_TRUE = {"1", "true", "yes"}


class Mp3Response(ClosingStream):
    """The recording's bytes (or none, for HEAD and 416) with the Range headers decided."""

    def __init__(self, mp3: svc.Mp3Stream) -> None:
        super().__init__(
            mp3, mp3.chunks(), status_code=mp3.status, headers=mp3.headers, media_type=svc.MP3_TYPE
        )


async def _serve(
    request: Request[Any, Any, Any],
    storages: Storages,
    call: Any,
    principal: Principal | None,
    *,
    download: bool,
) -> Mp3Response:
    """Stream the call's recording for this request; audit it if it is a listen/download."""
    rec = await svc.playable(call)
    mp3 = await svc.prepare_stream(
        storages,
        rec,
        range_header=request.headers.get("range"),
        if_range=request.headers.get("if-range"),
        download_name=f"{call.id}.mp3" if download else None,
    )
    if request.method == "GET":
        await mp3.open()
    try:
        if svc.is_listen(request.method, mp3):
            await svc.audit_access(call, principal, download=download, stream=mp3)
    except BaseException:
        await mp3.aclose()
        raise
    return Mp3Response(mp3)


class PlaybackController(Controller):
    """Dashboard playback: session required; the MP3 URL must also be signed."""

    include_in_schema = False
    dependencies = {"principal": Provide(dashboard_principal)}

    @route("/calls/{call_id:str}/recording.mp3", http_method=[HttpMethod.GET, HttpMethod.HEAD])
    async def recording(
        self,
        request: Request[Any, Any, Any],
        settings: Settings,
        storages: Storages,
        principal: Principal,
        call_id: str,
        download: str | None = None,
        expires: str | None = None,
        signature: str | None = None,
    ) -> Mp3Response:
        """The MP3, inline or as an attachment, with HTTP Range."""
        call = await get_call(principal.org_id, call_id)
        svc.check_player_signature(settings.secret_key, svc.mp3_path(call.id), expires, signature)
        return await _serve(request, storages, call, principal, download=(download or "") in _TRUE)

    @get("/calls/{call_id:str}/recording-url")
    async def recording_url(
        self, settings: Settings, principal: Principal, call_id: str
    ) -> Response[dict[str, Any]]:
        """Fresh signed player URLs, so a long session keeps playing."""
        call = await get_call(principal.org_id, call_id)
        await svc.playable(call)
        urls = svc.signed_player_urls(settings.secret_key, call.id)
        return Response(urls, headers={"Cache-Control": "no-store"})

    @get("/calls/{call_id:str}/peaks.json")
    async def peaks(
        self,
        request: Request[Any, Any, Any],
        storages: Storages,
        principal: Principal,
        call_id: str,
    ) -> Response[bytes]:
        """The overview peaks (audiowaveform JSON v2), gzipped when accepted, cacheable."""
        call = await get_call(principal.org_id, call_id)
        rec = await svc.playable(call)
        result = await svc.peaks(
            storages,
            rec,
            accept_encoding=request.headers.get("accept-encoding", ""),
            if_none_match=request.headers.get("if-none-match"),
        )
        if result.not_modified:
            return Response(b"", status_code=304, headers=result.headers)
        return Response(result.body, media_type="application/json", headers=result.headers)

    @get("/calls/{call_id:str}/audit")
    async def audit(
        self, request: Request[Any, Any, Any], principal: Principal, call_id: str
    ) -> Template:
        """The call's recent listens, downloads and deletions (admins)."""
        call = await get_call(principal.org_id, call_id)
        events = await svc.recent_events(principal, call)
        return Template(
            "calls/_audit_events.html",
            context={"events": events, "call": call},
            headers={"Cache-Control": "no-store"},
        )


class ApiPlaybackController(Controller):
    """API v1 recording download (Bearer key or signed link) and deletion."""

    path = "/api/v1/calls"
    tags = ["calls"]

    @route(
        "/{call_id:str}/recording",
        http_method=[HttpMethod.GET, HttpMethod.HEAD],
        responses={
            **binary_response("audio/mpeg", "The MP3, as an attachment {call_id}.mp3."),
            **error_responses(400, 401, 403, 404, 416, 429),
        },
    )
    async def download(
        self,
        request: Request[Any, Any, Any],
        settings: Settings,
        storages: Storages,
        call_id: str,
        expires: str | None = None,
        signature: str | None = None,
    ) -> Mp3Response:
        """The MP3 as an attachment ``{call_id}.mp3``, with Range. A Bearer key, or a signed
        link (``expires`` + ``signature``, from the call's ``recording.url``) without one."""
        authorization = request.headers.get("authorization")
        principal = await key_principal(authorization)
        if principal is not None:
            check_roles(principal, READ_ROLES)
            call = await get_call(principal.org_id, call_id)
        elif authorization:
            raise NotAuthenticated("A valid API key is required: Authorization: Bearer <key>.")
        elif expires is None and signature is None:
            raise NotAuthenticated(
                "A valid API key (Authorization: Bearer <key>) or a signed link is required."
            )
        else:
            try:
                svc.check_player_signature(
                    settings.secret_key, svc.api_path(call_id), expires, signature
                )
            except PermissionDenied:
                raise PermissionDenied("This link has expired or was altered.") from None
            call = await call_by_signed_link(call_id)
        return await _serve(request, storages, call, principal, download=True)

    @delete(
        "/{call_id:str}/recording",
        status_code=204,
        dependencies={"principal": Provide(api_principal)},
        guards=[api_admin],
        responses=error_responses(400, 401, 403, 404, 409, 429),
    )
    async def delete_recording(
        self, storages: Storages, principal: Principal, call_id: str
    ) -> None:
        """Delete the recording's audio and peaks now (admin key); the call stays."""
        await svc.delete_recording(storages, principal, call_id)
