"""Redaction of a stored recording: new MP3 and peaks under new keys, then the old bytes go.

A reader sees either the old objects or the new ones, never a half state: the new objects
are written first, the row moves to them in one transaction (which also lists the old
objects in ``stale_object``), and only then are the old objects (with every older version
a versioned bucket keeps) deleted. A deletion that fails stays listed, and the worker's
``delete_stale_objects`` job finishes it.
"""

from __future__ import annotations

import asyncio
import gzip
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from audio import AudioError
from audio.redact import redact_mp3
from web.auth import Principal
from web.errors import Conflict, Unprocessable
from web.models import Recording, RecordingStatus
from web.recordings import lifecycle, placement, stale
from web.recordings.parts import MP3_TYPE
from web.recordings.publish import PEAKS_TYPE
from web.services import audit
from web.storage import Storage, Storages
from web.tenancy import get_call, recording_of

CHANNELS = ("caller", "assistant", "both")
MODES = ("silence", "tone")
MAX_SPANS = 1000


@dataclass(frozen=True)
class Span:
    """One span to redact, in call time."""

    start_ms: int
    end_ms: int
    channel: str


def check_spans(spans: list[Span], duration_ms: int) -> None:
    """422 for no spans, an empty or reversed span, one outside the recording, a bad channel."""
    if not spans:
        raise Unprocessable("spans must name at least one span to redact.")
    if len(spans) > MAX_SPANS:
        raise Unprocessable(f"At most {MAX_SPANS} spans at a time.")
    for i, span in enumerate(spans):
        if span.channel not in CHANNELS:
            raise Unprocessable(f"spans[{i}].channel must be caller, assistant or both.")
        if span.start_ms < 0 or span.end_ms <= span.start_ms:
            raise Unprocessable(f"spans[{i}] is empty: need 0 <= start_ms < end_ms.")
        if span.end_ms > duration_ms:
            raise Unprocessable(
                f"spans[{i}] ends at {span.end_ms} ms, after the recording ({duration_ms} ms)."
            )


async def _read(storage: Storage, key: str) -> bytes:
    out = bytearray()
    async with storage.open_range(key, 0, None) as chunks:
        async for chunk in chunks:
            out += chunk
    return bytes(out)


def _new_key(key: str, ext: str) -> str:
    """A fresh key beside ``key`` (``{call_id}.r{random}.{ext}``)."""
    stem = key.rsplit("/", 1)
    name = stem[-1].split(".", 1)[0]
    prefix = f"{stem[0]}/" if len(stem) == 2 else ""
    return f"{prefix}{name}.r{secrets.token_hex(6)}.{ext}"


async def redact(
    storages: Storages,
    org_id: uuid.UUID,
    call_id: str,
    spans: list[Span],
    mode: str,
    reason: str | None,
    principal: Principal,
) -> Recording:
    """Replace the stored MP3 and peaks with ones where ``spans`` are silence (or a tone)."""
    call = await get_call(org_id, call_id)
    rec = await recording_of(call)
    if rec is None or rec.status != RecordingStatus.AVAILABLE:
        raise Conflict("Only an available recording can be redacted.")
    if rec.legal_hold:
        raise Conflict("The recording is under legal hold: it cannot be changed.")
    if mode not in MODES:
        raise Unprocessable("mode must be silence or tone.")
    if reason is not None and len(reason) > 500:
        raise Unprocessable("reason must be at most 500 characters.")
    check_spans(spans, int(rec.duration_ms or 0))
    storage = await placement.storage_of(storages, rec)
    original = await _read(storage, rec.storage_key)
    try:
        done = await asyncio.to_thread(
            redact_mp3,
            original,
            [(s.start_ms, s.end_ms, s.channel) for s in spans],
            mode,  # type: ignore[arg-type]
        )
    except AudioError as exc:
        raise Unprocessable(f"The recording could not be redacted: {exc}.") from None
    mp3_key = _new_key(rec.storage_key, "mp3")
    peaks_key = _new_key(rec.storage_key, "peaks.json")
    peaks_gz = gzip.compress(done.peaks.overview_json(), compresslevel=6, mtime=0)
    await asyncio.gather(
        storage.put_bytes(mp3_key, done.mp3, MP3_TYPE),
        storage.put_bytes(peaks_key, peaks_gz, PEAKS_TYPE),
    )
    entries: list[dict[str, Any]] = [
        {
            "start_ms": s.start_ms,
            "end_ms": s.end_ms,
            "channel": s.channel,
            "reason": reason or "redacted",
        }
        for s in spans
    ]
    old_mp3, old_peaks = rec.storage_key, rec.peaks_key
    moved = await lifecycle.redacted(
        rec,
        old_key=old_mp3,
        storage_key=mp3_key,
        peaks_key=peaks_key,
        size_bytes=done.size_bytes,
        sha256=done.sha256,
        redactions=[*(rec.redactions or []), *entries],
        stale_keys=[old_mp3, old_peaks],
    )
    if not moved:
        await asyncio.gather(storage.delete(mp3_key), storage.delete(peaks_key))
        raise Conflict("The recording changed meanwhile (deleted, on hold or redacted): retry.")
    await audit.record(
        org_id,
        call.id,
        audit.Action.REDACT,
        principal,
        {"spans": entries, "mode": mode, "sha256_before": rec.sha256, "sha256": done.sha256},
    )
    # Listed with the move: what cannot be deleted now, the worker deletes later.
    await stale.delete_keys(storages, org_id, [old_mp3, old_peaks])
    return await Recording.get(id=rec.id)
