"""The worker's jobs on recordings: recovery, upload retries, purge, multipart sweep, trash,
and the objects a redaction replaced."""

from __future__ import annotations

from typing import Any

from web.recordings import stale
from web.recordings.jobs import multipart, purge, recovery, trash


def register(jobs: Any) -> None:
    """Add every recording job to the worker's registry."""
    jobs.add("recover_streams", recovery.recover_streams)
    jobs.add("retry_uploads", recovery.retry_uploads)
    jobs.add("cleanup_multipart", multipart.cleanup_multipart)
    jobs.add("empty_spool_trash", trash.empty_spool_trash)
    jobs.add("purge", purge.purge_job)
    jobs.add("delete_stale_objects", stale.delete_stale_objects)
