"""Whole-file decoding for uploads, in a bounded pool of its own.

Each decode runs in a child process (CPU- and time-limited, lower priority; see
:func:`audio.decode_untrusted_to_mp3`) waited on by a thread of this pool, never by the
default thread pool that live streams use for their spool writes: however many uploads
decode, a live stream's writes never queue behind them. Uploads beyond the pool's size wait
their turn without holding any thread.
"""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from audio import RecordingResult, decode_untrusted_to_mp3
from web.settings import Settings

_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    # Per process id too: a forked worker must not inherit its parent's threads.
    key = (os.getpid(), workers)
    pool = _pools.get(key)
    if pool is None:
        pool = _pools[key] = ThreadPoolExecutor(workers, thread_name_prefix="upload-decode")
    return pool


async def decode_upload(
    settings: Settings,
    *,
    dest: Path,
    stereo: Path | None = None,
    caller: Path | None = None,
    assistant: Path | None = None,
    redact_dtmf: bool = True,
) -> RecordingResult:
    """Decode an uploaded file (or pair) to an MP3 at ``dest`` in the upload pool."""
    limits = settings.recording
    job = functools.partial(
        decode_untrusted_to_mp3,
        caller,
        assistant,
        stereo=stereo,
        dest=dest,
        timeout_s=limits.decode_timeout_s,
        redact_dtmf=redact_dtmf,
    )
    return await asyncio.get_running_loop().run_in_executor(_pool(limits.decode_workers), job)


def shutdown() -> None:
    """Stop this process's decode threads (their children end with their time limit)."""
    for key in [k for k in _pools if k[0] == os.getpid()]:
        _pools.pop(key).shutdown(wait=False, cancel_futures=True)
