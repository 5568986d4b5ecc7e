"""Playback: signed player URLs, Range streams from storage, peaks, audit, deletion.

Nothing here holds a recording in memory: a stream is a storage range passed through in
pieces of :data:`SEND_CHUNK`, and the storage body is closed even when the client leaves.
"""

from __future__ import annotations

import gzip
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from web.auth import Principal
from web.errors import Conflict, NotFound, PermissionDenied
from web.models import AuditEvent, Call, Recording, RecordingStatus
from web.ranges import RangeDecision, evaluate
from web.recordings import lifecycle, placement
from web.recordings.presentation import unavailable_reason
from web.security import check_signature, signed_query_until
from web.services import audit
from web.storage import ObjectNotFound, Storage, Storages
from web.tenancy import get_call, recording_of

# The dashboard player's URL lives an hour (the session is required too); it is renewed
# by the player well before that, see static/js/player/renewal.js.
PLAYER_URL_TTL_S = 3600
PEAKS_MAX_AGE_S = 3600
MP3_TYPE = "audio/mpeg"
# Bytes handed to the server per send: few sends per MB, little memory per client.
SEND_CHUNK = 256 * 1024
# A gzip stream's first two bytes (JSON never starts with them).
GZIP_MAGIC = b"\x1f\x8b"


def mp3_path(call_id: uuid.UUID | str) -> str:
    """The dashboard path of a call's MP3 (what the player's signature covers)."""
    return f"/calls/{call_id}/recording.mp3"


def api_path(call_id: uuid.UUID | str) -> str:
    """The API path of a call's MP3 (what a signed API link covers)."""
    return f"/api/v1/calls/{call_id}/recording"


def signed_player_urls(
    secret_key: str, call_id: uuid.UUID | str, ttl_s: int = PLAYER_URL_TTL_S
) -> dict[str, Any]:
    """Fresh signed URLs for the player: inline, download, and when they expire (unix s)."""
    path = mp3_path(call_id)
    query, expires = signed_query_until(secret_key, path, ttl_s)
    return {
        "mp3_url": f"{path}?{query}",
        "download_url": f"{path}?download=1&{query}",
        "expires": expires,
    }


def player_context(secret_key: str, call: Call, rec: Recording | None) -> dict[str, Any] | None:
    """Everything the player template needs, or None when there is nothing to play."""
    if rec is None or rec.status != RecordingStatus.AVAILABLE:
        return None
    return {
        **signed_player_urls(secret_key, call.id),
        "peaks_url": f"/calls/{call.id}/peaks.json",
        "renew_url": f"/calls/{call.id}/recording-url",
        "duration_ms": rec.duration_ms or 0,
        "filename": f"{call.id}.mp3",
    }


def check_player_signature(
    secret_key: str, path: str, expires: str | None, signature: str | None
) -> None:
    """PermissionDenied unless ``expires``/``signature`` sign ``path`` and have not expired."""
    if not expires or not signature:
        raise PermissionDenied("This link is not signed; reload the page for a fresh one.")
    if not check_signature(secret_key, path, expires, signature):
        raise PermissionDenied("This link has expired or was altered; reload the page.")


async def playable(call: Call) -> Recording:
    """The call's recording if it can be played, else NotFound saying why."""
    rec = await recording_of(call)
    reason = unavailable_reason(rec)
    if reason is not None or rec is None:
        raise NotFound(reason or "This call has no recording.")
    return rec


def http_date(when: datetime) -> str:
    """An IMF-fixdate for Last-Modified (whole seconds, GMT)."""
    return format_datetime(when.astimezone(UTC).replace(microsecond=0), usegmt=True)


@dataclass
class Mp3Stream:
    """A decided answer to a GET/HEAD of a recording, with the storage body not yet opened."""

    decision: RangeDecision
    headers: dict[str, str]
    storage: Storage
    key: str
    _cm: AbstractAsyncContextManager[AsyncIterator[bytes]] | None = field(default=None)
    _body: AsyncIterator[bytes] | None = field(default=None)

    @property
    def status(self) -> int:
        return self.decision.status

    async def open(self) -> None:
        """Open the storage range now, so a missing object is a 404 before any header is sent."""
        if self.decision.status == 416 or self.decision.length == 0:
            return
        cm = self.storage.open_range(self.key, self.decision.start, self.decision.end)
        try:
            self._body = await cm.__aenter__()
        except ObjectNotFound:
            raise NotFound("The recording's audio is missing from storage.") from None
        self._cm = cm

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in pieces of about :data:`SEND_CHUNK` (empty for 416 or HEAD).

        Storage reads arrive in small pieces; coalescing them cuts the per-send cost of the
        ASGI stack several times over, with at most one piece per client held in memory.
        """
        if self._body is None:
            return
        pending: list[bytes] = []
        held = 0
        async for chunk in self._body:
            pending.append(chunk)
            held += len(chunk)
            if held >= SEND_CHUNK:
                yield b"".join(pending)
                pending, held = [], 0
        if pending:
            yield b"".join(pending)

    async def aclose(self) -> None:
        """Close the storage body; safe to call twice, and when it was never opened."""
        cm, body, self._cm, self._body = self._cm, self._body, None, None
        closer = getattr(body, "aclose", None)
        if closer is not None:
            await closer()
        if cm is not None:
            await cm.__aexit__(None, None, None)


def recording_etag(rec: Recording) -> str:
    """The strong ETag of a recording: its quoted sha256 (the same on every storage)."""
    return f'"{rec.sha256}"'


async def prepare_stream(
    storages: Storages,
    rec: Recording,
    *,
    range_header: str | None,
    if_range: str | None,
    download_name: str | None,
) -> Mp3Stream:
    """Decide the Range answer and the headers; the caller opens (GET) and closes the body."""
    storage = await placement.storage_of(storages, rec)
    size = rec.size_bytes
    if size is None:
        try:
            size = (await storage.head(rec.storage_key)).size
        except ObjectNotFound:
            raise NotFound("The recording's audio is missing from storage.") from None
    etag = recording_etag(rec)
    modified = rec.available_at or rec.created_at
    decision = evaluate(range_header, size, if_range=if_range, etag=etag, last_modified=modified)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Last-Modified": http_date(modified),
        "Cache-Control": "private",
        "X-Content-Type-Options": "nosniff",
        "Content-Type": MP3_TYPE,
        "Content-Length": str(decision.length),
    }
    if decision.content_range:
        headers["Content-Range"] = decision.content_range
    if download_name:
        headers["Content-Disposition"] = f'attachment; filename="{download_name}"'
    return Mp3Stream(decision, headers, storage, rec.storage_key)


def is_listen(method: str, stream: Mp3Stream) -> bool:
    """A listen starts at byte 0 (a full GET or the first range); seeks and HEAD are not listens."""
    return method == "GET" and stream.decision.from_start


async def audit_access(
    call: Call, principal: Principal | None, *, download: bool, stream: Mp3Stream
) -> None:
    """Audit one listen or download (the caller decided it is one, see :func:`is_listen`)."""
    action = audit.Action.DOWNLOAD if download else audit.Action.LISTEN
    detail = {"status": stream.status}
    await audit.record(call.org_id, call.id, action, principal, detail)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PeaksBody:
    """The peaks document, encoded for this request, with its validators."""

    body: bytes
    headers: dict[str, str]
    not_modified: bool


async def peaks(
    storages: Storages, rec: Recording, *, accept_encoding: str, if_none_match: str | None
) -> PeaksBody:
    """The overview peaks JSON, gzipped when accepted; 304 material when the ETag matches."""
    if not rec.peaks_key:
        raise NotFound("This recording has no waveform.")
    etag = f'"{rec.sha256}-peaks"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"private, max-age={PEAKS_MAX_AGE_S}",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if if_none_match and etag in {t.strip() for t in if_none_match.split(",")}:
        return PeaksBody(b"", headers, not_modified=True)
    storage = await placement.storage_of(storages, rec)
    parts: list[bytes] = []
    try:
        async with storage.open_range(rec.peaks_key, 0, None) as body:
            parts.extend([chunk async for chunk in body])
    except ObjectNotFound:
        raise NotFound("The recording's waveform is missing from storage.") from None
    data = b"".join(parts)
    stored_gzipped = data[:2] == GZIP_MAGIC
    if _accepts_gzip(accept_encoding):
        # Stored gzipped since peaks were first compressed at publish; older ones are JSON.
        if not stored_gzipped:
            data = gzip.compress(data, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    elif stored_gzipped:
        data = gzip.decompress(data)
    return PeaksBody(data, headers, not_modified=False)


def _accepts_gzip(accept_encoding: str) -> bool:
    for item in accept_encoding.lower().split(","):
        name, _, params = item.strip().partition(";")
        if name.strip() in {"gzip", "*"}:
            q = params.strip()
            return not (q.startswith("q=") and q[2:].strip() in {"0", "0.0", "0.00", "0.000"})
    return False


async def recent_events(principal: Principal, call: Call) -> list[AuditEvent]:
    """The call's recent audit events, for admins only."""
    principal.require_admin()
    return await audit.recent_for_call(principal.org_id, call.id)


async def delete_recording(storages: Storages, principal: Principal, call_id: str) -> Recording:
    """Delete a recording's objects now, then mark it deleted (the route admits admins only).

    Objects go first: if storage fails the row still says where they are, and a retry
    finishes the job (deleting what is already gone is not an error).
    """
    call = await get_call(principal.org_id, call_id)
    rec = await recording_of(call)
    if rec is None:
        raise NotFound("This call has no recording.")
    status = RecordingStatus(rec.status)
    if status in {RecordingStatus.RECORDING, RecordingStatus.PROCESSING}:
        raise Conflict("The recording is still being made; delete it once it is available.")
    if status in {RecordingStatus.PURGED, RecordingStatus.DELETED}:
        raise NotFound(unavailable_reason(rec) or "The recording is gone.")
    storage = await placement.storage_of(storages, rec)
    for key in (rec.storage_key, rec.peaks_key):
        if key:
            await storage.delete(key)
    async with lifecycle.transaction() as conn:
        await lifecycle.deleted(rec, conn=conn)
        await audit.record(
            principal.org_id,
            call.id,
            audit.Action.DELETE,
            principal,
            {"size_bytes": rec.size_bytes},
        )
    return rec
