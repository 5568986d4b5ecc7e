"""Worker job: abort multipart uploads that no recording in progress owns."""

from __future__ import annotations

import logging
from typing import Any

from web.interval import Interval
from web.models import Org, Recording, RecordingStatus
from web.services.org_storage import own_bucket
from web.storage import Storage, Storages, StorageUnavailable

log = logging.getLogger("talkturo.recovery")

# Incomplete multipart uploads are looked for at start-up and then this often.
CLEANUP_INTERVAL_S = 300.0
_LIVE = (RecordingStatus.RECORDING, RecordingStatus.PROCESSING)
_cleanup = Interval(CLEANUP_INTERVAL_S)


async def _storages_to_clean(storages: Storages) -> list[Storage]:
    found = [storages.platform()]
    for org in await Org.filter(bucket_name__isnull=False).all():
        try:
            found.append(await storages.for_new(own_bucket(org)))
        except (StorageUnavailable, ValueError):
            continue
    return found


async def cleanup_multipart(state: Any, *, force: bool = False) -> int:
    """Abort multipart uploads that no recording in progress owns."""
    if not _cleanup.due(state, force=force):
        return 0
    aborted = 0
    for storage in await _storages_to_clean(state.storages):
        try:
            uploads = await storage.list_multipart_uploads()
        except StorageUnavailable:
            continue
        for key, upload_id in uploads:
            owner = await Recording.filter(storage_key=key, status__in=_LIVE).first()
            # Kept while a live row owns it, or may still be about to note its id.
            if owner is not None and owner.multipart_upload_id in (None, upload_id):
                continue
            try:
                await storage.abort_multipart(key, upload_id)
            except StorageUnavailable:
                break
            aborted += 1
            log.info("aborted an orphaned multipart upload of %s", key)
    return aborted
