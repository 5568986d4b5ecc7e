"""Bulk export: an org's recordings as one streamed ZIP with a signed manifest.

The archive is written while it is read. Each MP3 is read from storage chunk by chunk and
passed into the ZIP as a stored entry: zipstream-ng computes the CRC-32 as the bytes go
through and writes it in a data descriptor after them, so one chunk per export is all
that is held in memory, whatever the archive's size. ZIP64 is used past 4 GiB or
65,535 entries. After the recordings come ``manifest.json`` (one object per recording)
and ``manifest.sig``: the raw 64-byte Ed25519 signature of the manifest's exact bytes
with the org's export key, which is created on first use and stored encrypted with the
secret key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import uuid
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import zipstream.ng
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from tortoise.exceptions import IntegrityError

from web import tenancy
from web.auth import Principal
from web.errors import Conflict, InvalidInput
from web.models import Call, OrgExportKey, Recording, RecordingStatus, Role
from web.recordings import placement
from web.security import decrypt_secret, encrypt_secret
from web.services import audit, call_query
from web.services.accounts import get_org
from web.services.call_query import CallFilters, Cursor
from web.settings import Settings
from web.storage import Storages
from web.storage.base import ObjectNotFound

log = logging.getLogger("talkturo.export")

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
ZIP_TYPE = "application/zip"
# Manifest keys, in the order they are written (the contract's order).
MANIFEST_FIELDS = (
    "call_id",
    "file",
    "started_at",
    "assistant_id",
    "from_number",
    "to_number",
    "duration_ms",
    "size_bytes",
    "sha256",
)
# Bytes handed to the server per send: few sends per MB, little memory per export.
SEND_CHUNK = 256 * 1024
# Storage chunks at least this big are hashed off the event loop; at most this many wait.
_HASH_OFFLOAD = 32 * 1024
_HASH_BACKLOG = 8


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


async def signing_key(org_id: uuid.UUID, secret_key: str) -> Ed25519PrivateKey:
    """The org's export key, created (and stored encrypted) on first use."""
    row = await OrgExportKey.get_or_none(org_id=org_id)
    if row is None:
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        try:
            row = await OrgExportKey.create(
                org_id=org_id,
                public_key=base64.b64encode(_raw_public(key.public_key())).decode(),
                private_key_encrypted=encrypt_secret(secret_key, base64.b64encode(raw).decode()),
            )
        except IntegrityError:
            # Another request created it first: everyone signs with that one.
            row = await OrgExportKey.get(org_id=org_id)
    try:
        raw_private = base64.b64decode(decrypt_secret(secret_key, row.private_key_encrypted))
    except ValueError:
        raise Conflict(
            "The org's export key cannot be decrypted with this TALKTURO_SECRET_KEY (was it"
            " changed?); restore the previous secret key to export."
        ) from None
    return Ed25519PrivateKey.from_private_bytes(raw_private)


def public_key_view(key: Ed25519PublicKey) -> dict[str, str]:
    """The public key in the forms the API offers: raw base64, PEM, and a fingerprint."""
    raw = _raw_public(key)
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return {
        "algorithm": "Ed25519",
        "public_key": base64.b64encode(raw).decode(),
        "public_key_pem": pem,
        "fingerprint": f"sha256:{hashlib.sha256(raw).hexdigest()}",
        "signature_file": SIGNATURE_NAME,
        "signature_format": "raw 64-byte Ed25519 signature of manifest.json's bytes",
    }


async def public_key(org_id: uuid.UUID, secret_key: str) -> dict[str, str]:
    """The org's export public key (the key pair is created on first use)."""
    return public_key_view((await signing_key(org_id, secret_key)).public_key())


async def recordings(
    org_id: uuid.UUID, filters: CallFilters
) -> AsyncGenerator[tuple[Call, Recording], None]:
    """The org's calls matching ``filters`` (newest first) that have an available recording."""
    f = call_query.without_cursor(filters)
    while True:
        page = await call_query.query_calls(org_id, f, call_query.MAX_PAGE_SIZE)
        recs = await tenancy.recordings_of(page.calls)
        for call in page.calls:
            rec = recs.get(call.id)
            # The org check again: the archive must never hold another org's audio.
            if (
                rec is not None
                and rec.status == RecordingStatus.AVAILABLE
                and call.org_id == org_id  # type: ignore[attr-defined]
                and rec.org_id == org_id  # type: ignore[attr-defined]
            ):
                yield call, rec
        if page.next_cursor is None:
            return
        f = replace(f, cursor=Cursor.decode(page.next_cursor))


async def summary(org_id: uuid.UUID, filters: CallFilters) -> tuple[int, int]:
    """How many recordings an export with ``filters`` holds, and their total bytes."""
    count = total = 0
    async for _, rec in recordings(org_id, filters):
        count += 1
        total += rec.size_bytes or 0
    return count, total


def entry_name(call: Call) -> str:
    """The archive name of a call's MP3."""
    return f"{call.id}.mp3"


@contextmanager
def zip64_thresholds(size: int, entries: int) -> Iterator[None]:
    """Test hook: switch to ZIP64 past ``size`` bytes and ``entries`` entries.

    The format's limits are 4 GiB and 65,535 entries; tests lower them to check ZIP64
    archives without writing gigabytes.
    """
    saved = (zipstream.ng.ZIP64_LIMIT, zipstream.ng.ZIP_FILECOUNT_LIMIT)
    zipstream.ng.ZIP64_LIMIT, zipstream.ng.ZIP_FILECOUNT_LIMIT = size, entries
    try:
        yield
    finally:
        zipstream.ng.ZIP64_LIMIT, zipstream.ng.ZIP_FILECOUNT_LIMIT = saved


class _Feed:
    """One entry's bytes for the ZIP writer, which pulls them synchronously.

    When no chunk is ready it gets ``b""`` (which writes nothing and comes straight back
    out of the writer); the archive then awaits the next chunk from storage and resumes it.
    """

    def __init__(self) -> None:
        self._chunk: bytes | None = None
        self.ended = False
        self.starved = False

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> bytes:
        if self._chunk is not None:
            chunk, self._chunk = self._chunk, None
            return chunk
        if self.ended:
            raise StopIteration
        if self.starved:
            raise RuntimeError("the ZIP writer asked twice for data without handing back")
        self.starved = True
        return b""

    def put(self, chunk: bytes) -> None:
        self._chunk, self.starved = chunk, False

    def end(self) -> None:
        self.ended, self.starved = True, False


class _Hasher:
    """The sha256 of an entry, computed on a thread of the export's own as the bytes go out.

    hashlib lets go of the GIL on large buffers, so the event loop goes on sending while
    the hash is computed; updates stay in order (one thread) and at most
    :data:`_HASH_BACKLOG` chunks wait for it.
    """

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool
        self._digest = hashlib.sha256()
        self._pending: deque[asyncio.Future[None]] = deque()
        self.size = 0

    async def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if not self._pending and len(chunk) < _HASH_OFFLOAD:
            # A small piece costs less to hash than to hand over.
            self._digest.update(chunk)
            return
        loop = asyncio.get_running_loop()
        self._pending.append(loop.run_in_executor(self._pool, self._digest.update, chunk))
        if len(self._pending) > _HASH_BACKLOG:
            await self._pending.popleft()

    async def hexdigest(self) -> str:
        while self._pending:
            await self._pending.popleft()
        return self._digest.hexdigest()


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # an async generator that yields nothing


@dataclass
class ExportStats:
    """What an export has written so far."""

    entries: int = 0
    bytes_in: int = 0
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


ProgressHook = Callable[[ExportStats, str], None]


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def manifest_entry(call: Call, rec: Recording) -> dict[str, Any]:
    """The manifest's facts about one exported recording (its stored size and sha256)."""
    return {
        "call_id": str(call.id),
        "file": entry_name(call),
        "started_at": _iso(call.started_at),
        "assistant_id": str(call.assistant_id),  # type: ignore[attr-defined]
        "from_number": call.from_number,
        "to_number": call.to_number,
        "duration_ms": rec.duration_ms if rec.duration_ms is not None else call.duration_ms,
        "size_bytes": rec.size_bytes,
        "sha256": rec.sha256,
    }


def manifest_bytes(entries: list[bytes]) -> bytes:
    """The manifest document: a JSON array, one entry per line."""
    if not entries:
        return b"[]\n"
    return b"[\n" + b",\n".join(entries) + b"\n]\n"


class Archive:
    """One export: iterate :meth:`chunks` for the ZIP's bytes; :meth:`aclose` always.

    Closing it (a client that went away) closes the storage body being read at once and
    stops the work: no later recording is read or audited.
    """

    def __init__(
        self,
        storages: Storages,
        org_id: uuid.UUID,
        filters: CallFilters,
        key: Ed25519PrivateKey,
        principal: Principal,
        *,
        progress: ProgressHook | None = None,
    ) -> None:
        self._storages = storages
        self._org_id = org_id
        self._key = key
        self._principal = principal
        self._progress = progress
        self.export_id = uuid.uuid4()
        self.stats = ExportStats()
        self._gen: AsyncIterator[bytes] | None = None
        # The calls to export, read page by page as the archive goes out.
        self._rows: AsyncGenerator[tuple[Call, Recording], None] = recordings(org_id, filters)

    def chunks(self) -> AsyncIterator[bytes]:
        """The archive's bytes, in pieces of about :data:`SEND_CHUNK`."""
        if self._gen is None:
            self._gen = self._generate()
        return self._gen

    async def aclose(self) -> None:
        """Stop the export and close whatever storage body is open; safe to call twice."""
        gen, self._gen = self._gen, None
        closer = getattr(gen, "aclose", None)
        if closer is not None:
            await closer()

    async def _generate(self) -> AsyncIterator[bytes]:
        pool = ThreadPoolExecutor(1, thread_name_prefix="export-sha256")
        entries = self._entries(pool)
        try:
            async for chunk in entries:
                yield chunk
        finally:
            # Closed here, not left to the garbage collector: the storage body closes now.
            await entries.aclose()
            await self._rows.aclose()
            pool.shutdown(wait=False, cancel_futures=True)

    async def _open(
        self, stack: AsyncExitStack, rec: Recording
    ) -> tuple[AsyncIterator[bytes], int]:
        """The recording's bytes from storage (closed with ``stack``) and their size."""
        storage = await placement.storage_of(self._storages, rec)
        size = rec.size_bytes
        if size is None:
            size = (await storage.head(rec.storage_key)).size
        if size == 0:
            return _nothing(), 0
        body = await stack.enter_async_context(storage.open_range(rec.storage_key, 0, None))
        closer = getattr(body, "aclose", None)
        if closer is not None:
            stack.push_async_callback(closer)
        return body, size

    async def _entries(self, pool: ThreadPoolExecutor) -> AsyncGenerator[bytes, None]:
        zs = zipstream.ng.ZipStream(compress_type=zipstream.ng.ZIP_STORED)
        manifest: list[bytes] = []
        pending: list[bytes] = []
        held = 0
        async for call, rec in self._rows:
            async with AsyncExitStack() as stack:
                try:
                    body, size = await self._open(stack, rec)
                except ObjectNotFound:
                    log.warning("export %s: %s is missing from storage", self.export_id, call.id)
                    self.stats.missing.append(str(call.id))
                    continue
                feed = _Feed()
                hasher = _Hasher(pool)
                zs.add(feed, entry_name(call), size=size)
                for out in zs.file():
                    if out:
                        pending.append(out)
                        held += len(out)
                        if held >= SEND_CHUNK:
                            yield b"".join(pending)
                            pending, held = [], 0
                    elif feed.starved:
                        try:
                            chunk = await anext(body)
                        except StopAsyncIteration:
                            feed.end()
                        else:
                            await hasher.update(chunk)
                            feed.put(chunk)
            entry = manifest_entry(call, rec)
            sha, streamed = await hasher.hexdigest(), hasher.size
            ok = sha == rec.sha256 and streamed == size
            if not ok:
                # The bytes went out already: the manifest keeps the stored facts and says so.
                entry["error"] = (
                    f"the stored object ({streamed} bytes, sha256 {sha}) does"
                    " not match the recording's size and sha256"
                )
                self.stats.mismatched.append(str(call.id))
                log.warning("export %s: %s does not match its sha256", self.export_id, call.id)
            manifest.append(json.dumps(entry, ensure_ascii=False).encode())
            # The entry is out before it is audited: a client gone mid-entry audits nothing.
            if pending:
                yield b"".join(pending)
                pending, held = [], 0
            await audit.record(
                self._org_id,
                call.id,
                audit.Action.EXPORT,
                self._principal,
                {"export_id": str(self.export_id), "size_bytes": streamed, "sha256_ok": ok},
            )
            self.stats.entries += 1
            self.stats.bytes_in += streamed
            if self._progress is not None:
                self._progress(self.stats, entry_name(call))
        document = manifest_bytes(manifest)
        zs.add(document, MANIFEST_NAME)
        zs.add(self._key.sign(document), SIGNATURE_NAME)
        pending.extend(zs.all_files())
        pending.extend(zs.footer())
        yield b"".join(pending)


def archive_name(org_id: uuid.UUID, now: datetime | None = None) -> str:
    """The download's file name: ``talkturo-export-{org}-{UTC time}.zip``."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    return f"talkturo-export-{str(org_id)[:8]}-{when:%Y%m%d-%H%M%S}.zip"


async def open_archive(
    storages: Storages,
    principal: Principal,
    filters: CallFilters,
    secret_key: str,
    *,
    progress: ProgressHook | None = None,
) -> Archive:
    """An export of the principal's org for ``filters`` (admins only), ready to stream."""
    principal.require_admin()
    key = await signing_key(principal.org_id, secret_key)
    return Archive(storages, principal.org_id, filters, key, principal, progress=progress)


async def export_to_file(
    settings: Settings,
    org_id: str,
    out: Path,
    date_from: str | None,
    date_to: str | None,
    *,
    progress: TextIO,
) -> ExportStats:
    """``talkturo export``: write the org's archive to ``out``, progress lines on ``progress``.

    The file appears only when it is complete (it is written beside it, then renamed).
    """
    org = await get_org(org_id)
    params = {"date_from": date_from or "", "date_to": date_to or ""}
    filters = call_query.parse_filters(params).or_raise()
    if not out.parent.is_dir():
        raise InvalidInput(f"--out: the directory {str(out.parent)!r} does not exist.")
    count, total = await summary(org.id, filters)
    mb = total / 1e6
    progress.write(f"export: {count} recording(s), {mb:.1f} MB, to {out}\n")
    progress.flush()

    def step(stats: ExportStats, name: str) -> None:
        progress.write(
            f"export: {stats.entries}/{count} {name} ({stats.bytes_in / 1e6:.1f}/{mb:.1f} MB)\n"
        )
        progress.flush()

    principal = Principal(org_id=org.id, role=Role.ADMIN, label="command line (talkturo export)")
    partial = out.with_name(f".{out.name}.part")
    async with Storages(settings) as storages:
        archive = await open_archive(
            storages, principal, filters, settings.secret_key, progress=step
        )
        try:
            with partial.open("wb") as fh:
                async for chunk in archive.chunks():
                    await asyncio.to_thread(fh.write, chunk)
            partial.replace(out)
        finally:
            await archive.aclose()
            partial.unlink(missing_ok=True)
    key = await public_key(org.id, settings.secret_key)
    for call_id in archive.stats.missing:
        progress.write(f"export: {call_id}: the recording is missing from storage (left out)\n")
    for call_id in archive.stats.mismatched:
        progress.write(f"export: {call_id}: stored bytes do not match its sha256 (flagged)\n")
    progress.write(
        f"export: wrote {archive.stats.entries} recording(s) to {out}. Verify with:"
        f" talkturo export verify {out} --public-key {key['public_key']}\n"
    )
    progress.flush()
    return archive.stats
