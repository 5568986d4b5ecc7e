"""Storage of recordings: the platform's (local directory or S3 bucket) and enterprise orgs' own.

One :class:`Storages` per process, opened in the app's lifespan (and the worker's), held at
``app.state.storages``. It opens one aiobotocore client for the platform bucket and one per
distinct org bucket configuration, and closes them all at shutdown.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiobotocore.session import AioSession

from web import netguard
from web.security import decrypt_secret
from web.settings import Settings
from web.storage.base import (
    CHUNK_SIZE,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageUnavailable,
    recording_key,
)
from web.storage.local import LocalStorage
from web.storage.s3 import S3Storage, client_config

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

__all__ = [
    "CHUNK_SIZE",
    "TARGET_ORG",
    "TARGET_PLATFORM",
    "LocalStorage",
    "ObjectInfo",
    "ObjectNotFound",
    "OwnBucket",
    "S3Storage",
    "Storage",
    "StorageUnavailable",
    "Storages",
    "recording_key",
]

TARGET_PLATFORM = "platform"
TARGET_ORG = "org"


@dataclass(frozen=True)
class OwnBucket:
    """An org's own bucket as its settings store it (the secret still encrypted)."""

    bucket: str
    prefix: str
    region: str | None
    endpoint_url: str | None
    access_key_id: str | None
    secret_encrypted: str | None
    # Objects are written with SSE-KMS under this key when set.
    kms_key_id: str | None = None


class Storages:
    """Every storage this process talks to, opened once and closed at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stack = AsyncExitStack()
        self._session = AioSession()
        self._platform: Storage | None = None
        self._clients: dict[tuple[Any, ...], S3Client] = {}
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Storages:
        cfg = self.settings.storage
        if cfg.kind == "s3":
            client = await self._open_client(
                cfg.s3_endpoint_url,
                cfg.aws_region,
                cfg.aws_access_key_id,
                cfg.aws_secret_access_key,
            )
            self._platform = S3Storage(client, cfg.bucket, cfg.prefix, cfg.s3_sse)
        else:
            cfg.local_path.mkdir(parents=True, exist_ok=True)
            self._platform = LocalStorage(cfg.local_path)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._clients.clear()
        await self._stack.aclose()

    async def _open_client(
        self,
        endpoint: str | None,
        region: str | None,
        access_key: str | None,
        secret: str | None,
        *,
        pin: bool = False,
    ) -> S3Client:
        resolver = None
        if endpoint and pin:
            # Checked at every connection, not now: a DNS hiccup delays an upload (it is
            # retried) instead of failing the recording.
            allow = self.settings.endpoints.allow_private
            try:
                netguard.refuse_literal(endpoint, field="endpoint_url", allow_private=allow)
            except netguard.EndpointRefused as exc:
                raise StorageUnavailable(
                    f"the org's bucket endpoint is refused: {exc.detail}"
                ) from None
            resolver = netguard.GuardedResolver(allow_private=allow)
        args: dict[str, Any] = {
            "config": client_config(resolver),
            "region_name": region or "us-east-1",
        }
        if endpoint:
            args["endpoint_url"] = endpoint
        if access_key and secret:
            args["aws_access_key_id"] = access_key
            args["aws_secret_access_key"] = secret
        client: S3Client = await self._stack.enter_async_context(
            self._session.create_client("s3", **args)
        )
        return client

    def platform(self) -> Storage:
        """The platform's storage (``TALKTURO_STORAGE_URL``)."""
        if self._platform is None:
            raise RuntimeError("Storages is not open")
        return self._platform

    async def _own(self, own: OwnBucket, bucket: str) -> Storage:
        cache_key = (own.region, own.endpoint_url, own.access_key_id, own.secret_encrypted)
        async with self._lock:
            client = self._clients.get(cache_key)
            if client is None:
                encrypted = own.secret_encrypted
                secret = decrypt_secret(self.settings.secret_key, encrypted) if encrypted else None
                # An org's endpoint is the customer's: checked and pinned like any other.
                client = await self._open_client(
                    own.endpoint_url, own.region, own.access_key_id, secret, pin=True
                )
                self._clients[cache_key] = client
        sse = f"aws:kms:{own.kms_key_id}" if own.kms_key_id else None
        return S3Storage(client, bucket, own.prefix, sse)

    async def for_new(self, own: OwnBucket | None) -> Storage:
        """Where new recordings go: the org's own bucket if it set one, else the platform."""
        if own is None:
            return self.platform()
        return await self._own(own, own.bucket)

    @staticmethod
    def target_for(own: OwnBucket | None) -> str:
        """``"org"`` when new recordings go to the org's own bucket, else ``"platform"``."""
        return TARGET_ORG if own is not None else TARGET_PLATFORM

    async def for_stored(self, target: str, bucket: str, own: OwnBucket | None) -> Storage:
        """Where stored objects are (``target``/``bucket`` as written), even after a switch."""
        if target != TARGET_ORG:
            return self.platform()
        if own is None:
            raise StorageUnavailable("the org's own bucket is no longer configured")
        # The org's current credentials, on the bucket the recording was written to.
        return await self._own(own, bucket or own.bucket)
