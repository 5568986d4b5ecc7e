"""Worker job: delete published spools that a crash left in the trash before their deletion."""

from __future__ import annotations

import asyncio
from typing import Any

from web.recordings.spool import empty_trash


async def empty_spool_trash(state: Any) -> int:
    """Delete published spools that a crash left in the trash before their deletion."""
    return await asyncio.to_thread(empty_trash, state.settings)
