"""An org's storage settings: its plan's retention, and an enterprise's own bucket.

An own bucket is checked BEFORE it is saved: with exactly the credentials given, a probe
object is written, read back and deleted. Whatever fails is named (wrong credentials, no
such bucket, no permission to write, read or delete, unreachable endpoint) and nothing is
saved. The secret is stored encrypted and never shown again: only its last 4 characters.

New recordings go to the bucket saved last; existing ones stay where they were written
(``Recording.storage_target`` / ``storage_bucket``).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ClientError
from tortoise.transactions import in_transaction

from web import netguard
from web.errors import Conflict, InvalidInput, PermissionDenied, Unprocessable
from web.models import Org, Plan, Recording, RecordingStatus
from web.security import decrypt_secret, encrypt_secret
from web.services import retention
from web.settings import EndpointSettings
from web.storage import OwnBucket
from web.storage.s3 import client_config
from web.tenancy import get_org

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

# S3's bucket naming rules (lower case, digits, dots and dashes, 3 to 63 characters).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z0-9\-]{2,50}$")
_WRONG_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
}
_NO_BUCKET = {"NoSuchBucket"}
_DENIED = {"AccessDenied", "AllAccessDisabled", "Forbidden", "403"}
_WRONG_REGION = {
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
    "301",
}
_UNREACHABLE = (BotoCoreError, aiohttp.ClientError, OSError, TimeoutError)
PROBE_BODY = b"talkturo storage check\n"
_BUCKET_COLUMNS = (
    "bucket_name",
    "bucket_prefix",
    "bucket_region",
    "bucket_endpoint_url",
    "bucket_access_key_id",
    "bucket_secret_encrypted",
    "bucket_kms_key_id",
)


# The own-bucket fields as the API and the Storage form name them.
BUCKET_FIELDS = (
    "bucket",
    "prefix",
    "region",
    "endpoint_url",
    "access_key_id",
    "secret_access_key",
)


@dataclass(frozen=True)
class BucketConfig:
    """An own bucket as the admin typed it (the secret in the clear, only in memory)."""

    bucket: str
    prefix: str
    region: str
    endpoint_url: str | None
    access_key_id: str
    secret_access_key: str
    # SSE-KMS: every object is written under this key (checked by the probe first).
    kms_key_id: str | None = None


def own_bucket(org: Org) -> OwnBucket | None:
    """The org's own bucket as stored, or None when its recordings go to the platform's."""
    if not org.bucket_name:
        return None
    return OwnBucket(
        bucket=org.bucket_name,
        prefix=org.bucket_prefix or "",
        region=org.bucket_region,
        endpoint_url=org.bucket_endpoint_url,
        access_key_id=org.bucket_access_key_id,
        secret_encrypted=org.bucket_secret_encrypted,
        kms_key_id=org.bucket_kms_key_id,
    )


def last4(secret: str) -> str:
    """What is ever shown of a secret: its last 4 characters."""
    return secret[-4:] if len(secret) >= 8 else ""


def _clean(value: str | None) -> str:
    return (value or "").strip()


def check_config(
    bucket: str | None,
    prefix: str | None,
    region: str | None,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    kms_key_id: str | None = None,
) -> BucketConfig:
    """A :class:`BucketConfig` from raw fields, or InvalidInput naming the bad field."""
    name = _clean(bucket)
    if not _BUCKET.match(name) or ".." in name:
        raise InvalidInput(
            f"bucket {name!r} is not a valid bucket name (3-63 lower-case letters, digits,"
            " dots and dashes)."
        )
    clean_prefix = _clean(prefix).strip("/")
    segments = clean_prefix.split("/") if clean_prefix else []
    if len(clean_prefix) > 500 or any(not p or p.startswith(".") for p in segments):
        raise InvalidInput(
            "prefix must be up to 500 characters of path segments like 'calls/2024'."
        )
    reg = _clean(region) or "us-east-1"
    if not _REGION.match(reg):
        raise InvalidInput(f"region {reg!r} is not a region name such as eu-west-1.")
    endpoint = _clean(endpoint_url) or None
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in {"http", "https"} or not parts.hostname or len(endpoint) > 500:
            raise InvalidInput(
                "endpoint_url must be an http(s) URL such as https://s3.example.com."
            )
    key_id = _clean(access_key_id)
    if not key_id or len(key_id) > 200:
        raise InvalidInput("access_key_id is required.")
    secret = (secret_access_key or "").strip()
    if not secret or len(secret) > 500:
        raise InvalidInput("secret_access_key is required.")
    kms = _clean(kms_key_id) or None
    if kms is not None and (len(kms) > 2048 or any(c.isspace() for c in kms)):
        raise InvalidInput("kms_key_id must be a KMS key id, ARN or alias (up to 2048 characters).")
    return BucketConfig(name, clean_prefix, reg, endpoint, key_id, secret, kms)


def _code(exc: ClientError) -> str:
    err = exc.response.get("Error", {})
    code = str(err.get("Code", ""))
    if not code:
        code = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code


def _explain(exc: Exception, cfg: BucketConfig, step: str) -> Unprocessable:
    """A sentence naming what is wrong with the bucket settings."""
    where = f"bucket {cfg.bucket!r}"
    if isinstance(exc, ClientError):
        code = _code(exc)
        if code in _WRONG_CREDENTIALS:
            return Unprocessable(
                f"Wrong credentials: the storage did not accept access key {cfg.access_key_id!r}"
                f" with this secret ({code})."
            )
        if code in _NO_BUCKET or (code in {"404", "NotFound"} and step == "write"):
            return Unprocessable(f"No such bucket: {where} does not exist at this endpoint.")
        if code in _DENIED:
            return Unprocessable(
                f"No permission: this key may not {step} objects in {where} ({code})."
                " It needs s3:PutObject, s3:GetObject and s3:DeleteObject."
            )
        if code in _WRONG_REGION:
            return Unprocessable(f"Wrong region: {where} is not in region {cfg.region!r} ({code}).")
        return Unprocessable(f"The storage refused to {step} a test object in {where} ({code}).")
    # One sentence whatever went wrong, so the answer does not tell what listens where.
    return Unprocessable(
        "The storage endpoint cannot be reached or did not answer as S3 does; check"
        " endpoint_url and region."
    )


async def probe_bucket(cfg: BucketConfig, endpoints: EndpointSettings | None = None) -> None:
    """Write, read back and delete a probe object with ``cfg``'s credentials.

    A custom ``endpoint_url`` goes through the address guard and the client connects only
    to the checked addresses; the whole probe has a total time limit. Raises Unprocessable
    naming the problem; leaves no probe object behind when it can.
    """
    limits = endpoints or EndpointSettings()
    try:
        async with asyncio.timeout(limits.probe_timeout_s):
            await _probe(cfg, limits)
    except TimeoutError:
        raise Unprocessable(
            f"The storage endpoint did not answer within {limits.probe_timeout_s:g} s;"
            " check endpoint_url and region."
        ) from None


async def _probe(cfg: BucketConfig, limits: EndpointSettings) -> None:
    resolver = None
    if cfg.endpoint_url:
        checked = await netguard.check_url(
            cfg.endpoint_url, field="endpoint_url", allow_private=limits.allow_private
        )
        resolver = netguard.PinnedResolver(checked)
    args: dict[str, Any] = {
        "config": client_config(resolver),
        "region_name": cfg.region,
        "aws_access_key_id": cfg.access_key_id,
        "aws_secret_access_key": cfg.secret_access_key,
    }
    if cfg.endpoint_url:
        args["endpoint_url"] = cfg.endpoint_url
    name = f"talkturo-probe-{uuid.uuid4().hex}.txt"
    key = f"{cfg.prefix}/{name}" if cfg.prefix else name
    sse: Any = {}
    if cfg.kms_key_id:
        await _check_kms_key(cfg, args)
        sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": cfg.kms_key_id}
    client: S3Client
    async with AioSession().create_client("s3", **args) as client:
        step = "write"
        written = False
        try:
            await client.put_object(Bucket=cfg.bucket, Key=key, Body=PROBE_BODY, **sse)
            written = True
            step = "read"
            resp = await client.get_object(Bucket=cfg.bucket, Key=key)
            async with resp["Body"] as body:
                data = await body.read()
            if data != PROBE_BODY:
                raise Unprocessable(
                    f"bucket {cfg.bucket!r} did not give back what was written to it."
                )
            step = "delete"
            await client.delete_object(Bucket=cfg.bucket, Key=key)
            written = False
        except (ClientError, *_UNREACHABLE) as exc:
            raise _explain(exc, cfg, step) from None
        finally:
            if written:
                # Best effort, and bounded: the probe's own limit may already be spent.
                with suppress(ClientError, *_UNREACHABLE):
                    async with asyncio.timeout(5):
                        await client.delete_object(Bucket=cfg.bucket, Key=key)


async def _check_kms_key(cfg: BucketConfig, args: dict[str, Any]) -> None:
    """422 unless the KMS key exists, is enabled and is for encryption (same credentials)."""
    key = cfg.kms_key_id
    try:
        async with AioSession().create_client("kms", **args) as kms:
            meta = (await kms.describe_key(KeyId=str(key)))["KeyMetadata"]
    except ClientError as exc:
        code = _code(exc)
        if code in {"NotFoundException", "InvalidArnException"}:
            raise Unprocessable(f"KMS key {key!r} does not exist for these credentials.") from None
        if code in _WRONG_CREDENTIALS:
            raise _explain(exc, cfg, "read") from None
        raise Unprocessable(
            f"KMS key {key!r} cannot be used: the key service said {code}."
        ) from None
    except _UNREACHABLE as exc:
        raise _explain(exc, cfg, "read") from None
    state = str(meta.get("KeyState", ""))
    if not meta.get("Enabled", False) or state not in {"", "Enabled"}:
        raise Unprocessable(f"KMS key {key!r} is {(state or 'disabled').lower()}: enable it first.")
    if meta.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
        raise Unprocessable(f"KMS key {key!r} is not an encryption key (ENCRYPT_DECRYPT).")


def _require_enterprise(org: Org, what: str) -> None:
    if org.plan != Plan.ENTERPRISE:
        raise PermissionDenied(
            f"{what} is for the enterprise plan; this org is on the {Plan(org.plan).value} plan."
        )


def view(org: Org, settings_secret: str) -> dict[str, Any]:
    """The org's storage settings as the API and the Storage page show them (no secrets)."""
    secret_tail = ""
    if org.bucket_secret_encrypted:
        try:
            secret_tail = last4(decrypt_secret(settings_secret, org.bucket_secret_encrypted))
        except ValueError:
            secret_tail = ""
    own = bool(org.bucket_name)
    return {
        "plan": Plan(org.plan).value,
        "retention_days": retention.retention_days(org),
        "storage": "own bucket" if own else "platform",
        "bucket": org.bucket_name if own else None,
        "prefix": org.bucket_prefix if own else None,
        "region": org.bucket_region if own else None,
        "endpoint_url": org.bucket_endpoint_url if own else None,
        "access_key_id": org.bucket_access_key_id if own else None,
        "secret_access_key_last4": secret_tail if own else None,
        "kms_key_id": org.bucket_kms_key_id if own else None,
    }


def _stored_secret(org: Org, settings_secret: str) -> str | None:
    if not org.bucket_secret_encrypted:
        return None
    try:
        return decrypt_secret(settings_secret, org.bucket_secret_encrypted)
    except ValueError:
        return None


async def _recordings_in_own_bucket(org: Org) -> int:
    return await Recording.filter(
        org_id=org.id,
        storage_target="org",
        status__in=(
            RecordingStatus.RECORDING,
            RecordingStatus.PROCESSING,
            RecordingStatus.AVAILABLE,
        ),
    ).count()


async def update(
    org_id: uuid.UUID,
    settings_secret: str,
    changes: dict[str, Any],
    endpoints: EndpointSettings | None = None,
) -> Org:
    """Apply ``changes`` (keys present = fields to change) after checking them all.

    Keys: ``retention_days`` (int or None = forever), and the bucket fields ``bucket``,
    ``prefix``, ``region``, ``endpoint_url``, ``access_key_id``, ``secret_access_key``.
    ``bucket: None`` goes back to the platform's storage. An omitted secret keeps the
    stored one when the access key id is unchanged.
    """
    org = await get_org(org_id)
    touched = {*BUCKET_FIELDS, "kms_key_id"} & changes.keys()
    if "retention_days" in changes:
        _require_enterprise(org, "Setting retention_days")
        retention.check_retention_days(changes["retention_days"])
    cfg: BucketConfig | None = None
    remove = False
    if touched:
        _require_enterprise(org, "Storing recordings in your own bucket")
        if "bucket" in changes and changes["bucket"] is None:
            if touched - {"bucket"}:
                raise InvalidInput(
                    "bucket: null goes back to platform storage; send no other bucket field."
                )
            remove = True
        else:
            merged = {
                "bucket": org.bucket_name,
                "prefix": org.bucket_prefix,
                "region": org.bucket_region,
                "endpoint_url": org.bucket_endpoint_url,
                "access_key_id": org.bucket_access_key_id,
                "secret_access_key": None,
                "kms_key_id": org.bucket_kms_key_id,
            }
            merged.update({k: changes[k] for k in touched})
            if (
                "secret_access_key" not in touched
                and merged["access_key_id"] == org.bucket_access_key_id
            ):
                merged["secret_access_key"] = _stored_secret(org, settings_secret)
            cfg = check_config(**merged)
        moves = remove or (
            cfg is not None
            and org.bucket_name is not None
            and (cfg.bucket, cfg.prefix, cfg.endpoint_url)
            != (org.bucket_name, org.bucket_prefix or "", org.bucket_endpoint_url)
        )
        if moves and org.bucket_name and (count := await _recordings_in_own_bucket(org)):
            raise Conflict(
                f"{count} recording(s) are stored in bucket {org.bucket_name!r}: they are read"
                " with its settings, so the bucket, prefix and endpoint cannot change while they"
                " are there. Rotating the access key and secret is fine."
            )
        if cfg is not None:
            await probe_bucket(cfg, endpoints)
    # Everything is checked: save it all at once.
    saved: dict[str, Any] = {}
    if remove:
        saved = dict.fromkeys(_BUCKET_COLUMNS)
        saved["bucket_prefix"] = ""
    elif cfg is not None:
        saved = {
            "bucket_name": cfg.bucket,
            "bucket_prefix": cfg.prefix,
            "bucket_region": cfg.region,
            "bucket_endpoint_url": cfg.endpoint_url,
            "bucket_access_key_id": cfg.access_key_id,
            "bucket_secret_encrypted": encrypt_secret(settings_secret, cfg.secret_access_key),
            "bucket_kms_key_id": cfg.kms_key_id,
        }
    async with in_transaction():
        if saved:
            await Org.filter(id=org.id).update(**saved)
        if "retention_days" in changes:
            await retention.set_retention(org.id, changes["retention_days"])
    return await get_org(org.id)
