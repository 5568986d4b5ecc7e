"""Bulk export: the ZIP of an org's recordings (API and dashboard) and the key that signs it."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from msgspec import Struct

from web.auth import Principal, api_admin, api_principal, dashboard_principal
from web.errors import PermissionDenied
from web.openapi import error_responses, ok_response
from web.recordings import export as svc
from web.services import call_query
from web.streaming import ClosingStream


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


class ZipResponse(ClosingStream):
    """The export archive as an attachment, written while it is sent."""

    def __init__(self, archive: svc.Archive, filename: str) -> None:
        headers = {
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Export-Id": str(archive.export_id),
        }
        super().__init__(archive, archive.chunks(), headers=headers, media_type=svc.ZIP_TYPE)


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
