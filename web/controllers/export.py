"""Bulk export: the ZIP of an org's recordings (API and dashboard) and the key that signs it."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from litestar import Controller, Request, get
from litestar.datastructures import Cookie
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import Receive, Scope, Send, TypeEncodersMap
from msgspec import Struct

from web.auth import Principal, api_admin, api_principal, dashboard_principal
from web.errors import PermissionDenied
from web.openapi import error_responses, ok_response
from web.recordings import export as svc
from web.services import call_query


class ExportKey(Struct):
    """The public half of the org's export key. ``public_key`` is the raw 32-byte Ed25519
    key in base64, ``public_key_pem`` the same key as SubjectPublicKeyInfo PEM.
    ``manifest.sig`` holds the raw 64-byte signature of ``manifest.json``'s bytes."""

    algorithm: str
    public_key: str
    public_key_pem: str
    fingerprint: str
    signature_file: str
    signature_format: str


_KEY_EXAMPLE = {
    "algorithm": "Ed25519",
    "public_key": "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=",
    "public_key_pem": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA...\n-----END PUBLIC KEY-----\n",
    "fingerprint": "sha256:3f0a…",
    "signature_file": "manifest.sig",
    "signature_format": "raw 64-byte Ed25519 signature of manifest.json's bytes",
}


class _ClosingStreamResponse(ASGIStreamingResponse):
    """Streams the archive and always closes it, however the client left."""

    __slots__ = ("_archive",)

    def __init__(self, *, archive: svc.Archive, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._archive = archive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._archive.aclose()


class ZipResponse(Stream):
    """The export archive as an attachment, written while it is sent."""

    def __init__(self, archive: svc.Archive, filename: str) -> None:
        headers = {
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Export-Id": str(archive.export_id),
        }
        super().__init__(archive.chunks(), headers=headers, media_type=svc.ZIP_TYPE)
        self.archive = archive

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: Any = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: Any = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        merged = {**headers, **self.headers} if headers is not None else self.headers
        all_cookies = self.cookies if cookies is None else itertools.chain(self.cookies, cookies)
        return _ClosingStreamResponse(
            archive=self.archive,
            iterator=self.iterator,
            background=self.background or background,
            cookies=all_cookies,
            encoded_headers=encoded_headers,
            headers=merged,
            is_head_response=is_head_response,
            media_type=svc.ZIP_TYPE,
            status_code=self.status_code,
        )


async def _archive(request: Request[Any, Any, Any], principal: Principal) -> ZipResponse:
    """Check the caller and the filters, then answer the archive (nothing read yet)."""
    principal.require_admin()
    filters = call_query.without_cursor(call_query.parse_filters(request.query_params).or_raise())
    archive = await svc.open_archive(
        request.app.state.storages,
        principal,
        filters,
        request.app.state.settings.secret_key,
    )
    return ZipResponse(archive, svc.archive_name(principal.org_id))


class ApiExportController(Controller):
    """API v1: the export archive and the org's export public key (admin keys)."""

    path = "/api/v1"
    dependencies = {"principal": Provide(api_principal)}
    # A role guard like every API route (an agent or ingest key gets 403 before any lookup).
    guards = [api_admin]

    @get(
        "/recordings/export",
        tags=["recordings"],
        responses={
            200: ResponseSpec(
                data_container=bytes,
                media_type=svc.ZIP_TYPE,
                description=(
                    "A ZIP (stored entries, ZIP64 when needed): {call_id}.mp3 per available"
                    " recording, manifest.json and manifest.sig."
                ),
                generate_examples=False,
            ),
            **error_responses(400, 401, 403, 429),
        },
    )
    async def export(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        assistant: str | None = None,
        status: str | None = None,
        direction: str | None = None,
        phone: str | None = None,
        q: str | None = None,
        recording: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        min_duration: str | None = None,
    ) -> ZipResponse:
        """Every available recording matching the ``/api/v1/calls`` filters, as one ZIP
        streamed while it is written, with a manifest signed by the org's export key."""
        # The parameters above document the query; they are parsed together, as for /calls.
        return await _archive(request, principal)

    @get(
        "/org/export-key",
        tags=["org"],
        responses={
            **ok_response(ExportKey, "The org's export public key.", _KEY_EXAMPLE),
            **error_responses(401, 403, 429),
        },
    )
    async def export_key(self, request: Request[Any, Any, Any], principal: Principal) -> ExportKey:
        """The Ed25519 public key that verifies ``manifest.sig`` of the org's exports
        (the key pair is created on first use)."""
        principal.require_admin()
        view = await svc.public_key(principal.org_id, request.app.state.settings.secret_key)
        return ExportKey(**view)


class ExportDashboardController(Controller):
    """The Call Logs export: the current filters, with the session (admins)."""

    include_in_schema = False
    dependencies = {"principal": Provide(dashboard_principal)}

    @get("/calls/export")
    async def export(self, request: Request[Any, Any, Any], principal: Principal) -> ZipResponse:
        """The archive of the recordings Call Logs lists with these filters."""
        if not principal.is_admin:
            raise PermissionDenied("Only admins can export recordings.")
        return await _archive(request, principal)
