"""API v1: the org's storage (plan, retention, own bucket) and legal hold on recordings."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get, patch, put
from litestar.di import Provide
from litestar.openapi.spec import Example
from litestar.params import Body
from msgspec import UNSET, Struct, UnsetType

from web.auth import Principal, api_admin, api_principal
from web.models import Org
from web.openapi import error_responses, given_fields, ok_response
from web.services import org_storage, retention
from web.settings import Settings
from web.tenancy import get_org


class OrgStorage(Struct):
    """The org's plan, retention and where its new recordings are stored."""

    plan: str
    retention_days: int | None
    storage: str
    bucket: str | None
    prefix: str | None
    region: str | None
    endpoint_url: str | None
    access_key_id: str | None
    secret_access_key_last4: str | None
    kms_key_id: str | None


class OrgStoragePatch(Struct, forbid_unknown_fields=True):
    """Enterprise only. Omitted fields stay as they are; ``bucket: null`` goes back to the
    platform's storage; ``retention_days: null`` keeps recordings forever. The bucket is
    checked with a probe object before anything is saved. An omitted
    ``secret_access_key`` keeps the stored one when ``access_key_id`` is unchanged."""

    retention_days: int | UnsetType | None = UNSET
    bucket: str | UnsetType | None = UNSET
    prefix: str | UnsetType = UNSET
    region: str | UnsetType | None = UNSET
    endpoint_url: str | UnsetType | None = UNSET
    access_key_id: str | UnsetType = UNSET
    secret_access_key: str | UnsetType = UNSET
    kms_key_id: str | UnsetType | None = UNSET


class LegalHoldIn(Struct, forbid_unknown_fields=True):
    """Whether the call's recording is under legal hold."""

    legal_hold: bool


class LegalHold(Struct):
    """A recording's legal hold: while it is on, retention never purges the recording."""

    call_id: str
    legal_hold: bool
    status: str
    purge_at: str | None


_STORAGE_EXAMPLE: dict[str, Any] = {
    "plan": "enterprise",
    "retention_days": 90,
    "storage": "own bucket",
    "bucket": "acme-call-recordings",
    "prefix": "talkturo",
    "region": "eu-west-1",
    "endpoint_url": None,
    "access_key_id": "AKIAEXAMPLE",
    "secret_access_key_last4": "x9Qz",
    "kms_key_id": None,
}
_PATCH_EXAMPLE = Example(
    summary="Own bucket and 90 days",
    value={
        "retention_days": 90,
        "bucket": "acme-call-recordings",
        "prefix": "talkturo",
        "region": "eu-west-1",
        "access_key_id": "AKIAEXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    },
)


def _storage(org: Org, settings: Settings) -> OrgStorage:
    view = org_storage.view(org, settings.secret_key)
    return msgspec.convert(view, OrgStorage)


class ApiOrgController(Controller):
    """The org's storage settings (admin keys)."""

    path = "/api/v1/org"
    tags = ["org"]
    dependencies = {"principal": Provide(api_principal)}
    guards = [api_admin]

    @get(
        "/storage",
        responses={
            **ok_response(OrgStorage, "The org's storage settings.", _STORAGE_EXAMPLE),
            **error_responses(401, 403, 429),
        },
    )
    async def get_storage(self, settings: Settings, principal: Principal) -> OrgStorage:
        """Plan, retention in days (null: kept forever) and the bucket new recordings go to."""
        org = await get_org(principal.org_id)
        return _storage(org, settings)

    @patch(
        "/storage",
        responses={
            **ok_response(OrgStorage, "The settings as saved.", _STORAGE_EXAMPLE),
            **error_responses(400, 401, 403, 409, 422, 429),
        },
    )
    async def patch_storage(
        self,
        settings: Settings,
        principal: Principal,
        data: Annotated[OrgStoragePatch, Body(examples=[_PATCH_EXAMPLE])],
    ) -> OrgStorage:
        """Change retention and/or the own bucket (enterprise plan, admin key).

        The bucket is validated by writing, reading and deleting a probe object with the
        given credentials; a failure is a 422 naming the problem, and nothing is saved.
        """
        changes = given_fields(data)
        org = await org_storage.update(
            principal.org_id, settings.secret_key, changes, settings.endpoints
        )
        return _storage(org, settings)


class ApiLegalHoldController(Controller):
    """Legal hold on a call's recording (admin keys)."""

    path = "/api/v1/calls"
    tags = ["calls"]
    dependencies = {"principal": Provide(api_principal)}
    guards = [api_admin]

    @put(
        "/{call_id:str}/legal-hold",
        status_code=200,
        responses=error_responses(400, 401, 403, 404, 409, 429),
    )
    async def put_legal_hold(
        self, principal: Principal, call_id: str, data: LegalHoldIn
    ) -> LegalHold:
        """Put the recording under legal hold (retention skips it) or release it."""
        rec = await retention.set_legal_hold(principal.org_id, call_id, data.legal_hold)
        return LegalHold(
            call_id=str(rec.call_id),  # type: ignore[attr-defined]
            legal_hold=rec.legal_hold,
            status=str(rec.status.value),
            purge_at=rec.purge_at.isoformat() if rec.purge_at else None,
        )
