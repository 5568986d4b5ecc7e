"""Objects in an S3 bucket (AWS or any S3-compatible server) through one aiobotocore client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiobotocore.config import AioConfig
from aiohttp.abc import AbstractResolver
from botocore.exceptions import BotoCoreError, ClientError

from web.storage.base import CHUNK_SIZE, ObjectInfo, ObjectNotFound, StorageUnavailable, check_key

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


def client_config(resolver: AbstractResolver | None = None) -> AioConfig:
    """Client settings: checksums only when required (many S3-compatible servers need it).

    ``resolver`` pins a customer's endpoint to the addresses the guard checked.
    """
    extra: dict[str, Any] = {"connector_args": {"resolver": resolver}} if resolver else {}
    return AioConfig(
        **extra,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 2, "mode": "standard"},
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _translate(exc: Exception, key: str) -> Exception:
    """ObjectNotFound for a missing object; StorageUnavailable for anything else."""
    if isinstance(exc, ClientError) and _code(exc) in _MISSING:
        return ObjectNotFound(key)
    if isinstance(exc, ClientError):
        return StorageUnavailable(f"storage refused the request ({_code(exc) or 'error'})")
    return StorageUnavailable(f"storage is unreachable: {type(exc).__name__}")


_FAILURES = (ClientError, BotoCoreError, aiohttp.ClientError, OSError, TimeoutError)


def sse_args(sse: str | None) -> dict[str, str]:
    """The write arguments of a server-side encryption setting (``AES256``, ``aws:kms[:key]``)."""
    if not sse:
        return {}
    if sse == "AES256":
        return {"ServerSideEncryption": "AES256"}
    key = sse.removeprefix("aws:kms").removeprefix(":")
    return {"ServerSideEncryption": "aws:kms", **({"SSEKMSKeyId": key} if key else {})}


class S3Storage:
    """A :class:`~web.storage.base.Storage` on ``bucket`` under ``prefix`` (may be empty).

    ``sse``: every object (and multipart upload) is written with this server-side encryption.
    """

    def __init__(
        self, client: S3Client, bucket: str, prefix: str = "", sse: str | None = None
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._sse: Any = sse_args(sse)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _unkey(self, full: str) -> str | None:
        if not self.prefix:
            return full
        head = self.prefix + "/"
        return full[len(head) :] if full.startswith(head) else None

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """One PUT streamed from the file."""
        full = self._key(key)
        body = await asyncio.to_thread(Path(path).open, "rb")
        try:
            await self._client.put_object(
                Bucket=self.bucket, Key=full, Body=body, ContentType=content_type, **self._sse
            )
        except _FAILURES as exc:
            raise _translate(exc, key) from exc
        finally:
            body.close()

    async def probe(self) -> None:
        """Raise StorageUnavailable unless the bucket exists and answers."""
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in _MISSING or _code(exc) == "NoSuchBucket":
                raise StorageUnavailable(f"bucket {self.bucket!r} does not exist") from None
            raise _translate(exc, "") from None
        except _FAILURES as exc:
            raise _translate(exc, "") from None

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """One PUT of ``data``."""
        try:
            await self._client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                ContentType=content_type,
                **self._sse,
            )
        except _FAILURES as exc:
            raise _translate(exc, key) from exc

    async def head(self, key: str) -> ObjectInfo:
        """HEAD the object."""
        try:
            resp = await self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except _FAILURES as exc:
            raise _translate(exc, key) from exc
        return ObjectInfo(
            size=int(resp["ContentLength"]),
            etag=str(resp.get("ETag", "")).strip('"'),
            last_modified=resp["LastModified"],
            content_type=str(resp.get("ContentType") or "application/octet-stream"),
        )

    @asynccontextmanager
    async def open_range(
        self, key: str, start: int, end: int | None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """A ranged GET whose body is closed on exit, however far the consumer read."""
        if start < 0:
            raise ValueError("range start must not be negative")
        wanted = f"bytes={start}-{'' if end is None else end}"
        try:
            resp = await self._client.get_object(
                Bucket=self.bucket, Key=self._key(key), Range=wanted
            )
        except ClientError as exc:
            if _code(exc) == "InvalidRange":
                raise ValueError(f"range {wanted} is beyond the object") from exc
            raise _translate(exc, key) from exc
        except _FAILURES as exc:
            raise _translate(exc, key) from exc
        async with resp["Body"] as body:

            async def chunks() -> AsyncIterator[bytes]:
                try:
                    async for data in body.iter_chunks(CHUNK_SIZE):
                        yield data
                except _FAILURES as exc:
                    raise _translate(exc, key) from exc

            yield chunks()

    async def delete(self, key: str) -> None:
        """DELETE (S3 answers success for missing keys too)."""
        try:
            await self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except _FAILURES as exc:
            err = _translate(exc, key)
            if not isinstance(err, ObjectNotFound):
                raise err from exc

    async def delete_every_version(self, key: str) -> None:
        """Every version and delete marker of the key (a versioned bucket), then the key."""
        full = self._key(key)
        try:
            paginator = self._client.get_paginator("list_object_versions")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    if entry["Key"] == full:
                        await self._client.delete_object(
                            Bucket=self.bucket, Key=full, VersionId=entry["VersionId"]
                        )
        except _FAILURES as exc:
            err = _translate(exc, key)
            if not isinstance(err, ObjectNotFound):
                raise err from exc
        await self.delete(key)

    async def start_multipart(self, key: str, content_type: str) -> str:
        """CreateMultipartUpload."""
        try:
            resp = await self._client.create_multipart_upload(
                Bucket=self.bucket, Key=self._key(key), ContentType=content_type, **self._sse
            )
        except _FAILURES as exc:
            raise _translate(exc, key) from exc
        return str(resp["UploadId"])

    async def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        """UploadPart; returns the part's etag."""
        try:
            resp = await self._client.upload_part(
                Bucket=self.bucket,
                Key=self._key(key),
                UploadId=upload_id,
                PartNumber=part_number,
                Body=data,
            )
        except _FAILURES as exc:
            raise _translate(exc, key) from exc
        return str(resp["ETag"])

    async def complete_multipart(
        self, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        """CompleteMultipartUpload with the parts in order."""
        try:
            await self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self._key(key),
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": etag} for n, etag in sorted(parts)]
                },
            )
        except _FAILURES as exc:
            raise _translate(exc, key) from exc

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """AbortMultipartUpload; an upload that is already gone is fine."""
        try:
            await self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=self._key(key), UploadId=upload_id
            )
        except _FAILURES as exc:
            err = _translate(exc, key)
            if not isinstance(err, ObjectNotFound):
                raise err from exc

    async def list_multipart_uploads(self) -> list[tuple[str, str]]:
        """ListMultipartUploads under the prefix, every page."""
        found: list[tuple[str, str]] = []
        args: dict[str, Any] = {"Bucket": self.bucket}
        if self.prefix:
            args["Prefix"] = self.prefix + "/"
        try:
            while True:
                resp = await self._client.list_multipart_uploads(**args)
                for upload in resp.get("Uploads", []):
                    key = self._unkey(str(upload["Key"]))
                    if key is not None:
                        found.append((key, str(upload["UploadId"])))
                if not resp.get("IsTruncated"):
                    return found
                args["KeyMarker"] = resp.get("NextKeyMarker", "")
                args["UploadIdMarker"] = resp.get("NextUploadIdMarker", "")
        except _FAILURES as exc:
            raise _translate(exc, "") from exc
