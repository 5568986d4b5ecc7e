"""Retention purge: delete recordings past their org's retention."""

from __future__ import annotations

from typing import TextIO

from web.settings import Settings


async def purge_pass(settings: Settings, *, dry_run: bool, out: TextIO, progress: TextIO) -> int:
    """One retention pass; prints one line per recording purged. Returns how many."""
    # Retention is not wired to storage yet: nothing is ever due.
    progress.write("Nothing is due for purge.\n")
    return 0
