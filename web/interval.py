"""A worker job that runs at most once per interval in each app state (each process)."""

from __future__ import annotations

import time
from typing import Any


class Interval:
    """Remembers, per app state, when a periodic job last ran."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: dict[int, float] = {}

    def due(self, state: Any, *, force: bool = False) -> bool:
        """True (and the clock restarts) if the job should run now for ``state``."""
        now = time.monotonic()
        last = self._last.get(id(state))
        if not force and last is not None and now - last < self.seconds:
            return False
        self._last[id(state)] = now
        return True
