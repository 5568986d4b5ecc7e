"""Which storage holds a recording: chosen from its org once per stream, upload or request."""

from __future__ import annotations

from web.models import Org, Recording
from web.services.org_storage import own_bucket
from web.storage import TARGET_ORG, Storage, Storages
from web.tenancy import get_org


async def for_new(storages: Storages, org: Org) -> tuple[str, Storage]:
    """Where the org's new recordings go now: the target's name and the storage."""
    own = own_bucket(org)
    return storages.target_for(own), await storages.for_new(own)


async def storage_of(storages: Storages, rec: Recording, org: Org | None = None) -> Storage:
    """Where ``rec``'s objects are, even after its org switched buckets since.

    The org is looked up only for a recording in an org's own bucket (pass it when known).
    """
    if rec.storage_target != TARGET_ORG:
        return storages.platform()
    if org is None:
        org = await get_org(rec.org_id)  # type: ignore[attr-defined]
    return await storages.for_stored(rec.storage_target, rec.storage_bucket, own_bucket(org))
