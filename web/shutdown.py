"""Graceful shutdown of a web process: drain the live media streams, then stop.

On SIGTERM (or a first Ctrl+C) the process keeps listening but refuses new media streams
(accepted, then closed with 1012 "service restart" so the pipeline reconnects elsewhere) and
keeps recording the live ones until they end or ``TALKTURO_DRAIN_TIMEOUT`` passes. Then each
remaining stream is closed with 1012 and finalized here with every frame it received; one
cut short leaves its spool whole and its claim free, and a worker finalizes it. Only then does
uvicorn's own shutdown begin. A second Ctrl+C exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger("talkturo.shutdown")

SERVICE_RESTART = 1012
REFUSED_REASON = "service restart: this server is shutting down, reconnect to another"
# After the drain timeout, how long the cut streams get to publish before uvicorn stops.
HANDOFF_S = 15.0


class Reader:
    """Reads one media socket; the drain interrupts it between messages, never inside one."""

    def __init__(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._waiting = False
        self._cancelled_by_drain = False
        self.stopped = False

    async def receive(self, socket: Any) -> Any:
        """The next ASGI message, or None once the drain has stopped this stream."""
        if self.stopped:
            return None
        self._waiting = True
        try:
            return await socket.receive()
        except asyncio.CancelledError:
            if self._cancelled_by_drain:
                self._cancelled_by_drain = False
                # Only our own cancel is swallowed; a real one (server exit) goes on.
                if self._task.uncancel() == 0:
                    return None
            raise
        finally:
            self._waiting = False

    def interrupt(self) -> None:
        """Stop after the message being handled, or now if waiting for one."""
        self.stopped = True
        if self._waiting and not self._cancelled_by_drain:
            self._cancelled_by_drain = True
            self._task.cancel()


class _Drain:
    def __init__(self) -> None:
        self.draining = False
        self.readers: set[Reader] = set()
        self.empty: asyncio.Event | None = None


_STATE = _Drain()


def draining() -> bool:
    """Whether this process is shutting down (new media streams are refused)."""
    return _STATE.draining


def register(reader: Reader) -> None:
    """A live media stream: the drain waits for it, then stops it."""
    _STATE.readers.add(reader)


def unregister(reader: Reader) -> None:
    """The stream is over and its recording handled."""
    _STATE.readers.discard(reader)
    if not _STATE.readers and _STATE.empty is not None:
        _STATE.empty.set()


def live_streams() -> int:
    """Media streams open in this process."""
    return len(_STATE.readers)


def reset() -> None:
    """Forget a previous drain (tests run several servers in one process)."""
    _STATE.draining = False
    _STATE.readers.clear()
    _STATE.empty = None


async def _until_no_streams(seconds: float) -> None:
    empty = _STATE.empty
    if empty is None or not _STATE.readers:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(empty.wait(), max(0.0, seconds))


async def drain(timeout_s: float, handoff_s: float = HANDOFF_S) -> None:
    """Refuse new streams, let live ones run up to ``timeout_s``, stop and hand off the rest."""
    _STATE.draining = True
    # Made here: an Event belongs to the loop that first waits on it.
    _STATE.empty = asyncio.Event()
    log.info(
        "draining: %d live media streams, up to %.0f s",
        live_streams(),
        timeout_s,
        extra={"live_streams": live_streams()},
    )
    await _until_no_streams(timeout_s)
    if _STATE.readers:
        log.info("drain timeout: stopping %d live media streams", live_streams())
        for reader in list(_STATE.readers):
            reader.interrupt()
    await _until_no_streams(handoff_s)
    log.info("drained; %d streams left to the worker", live_streams())


class DrainingServer(uvicorn.Server):
    """uvicorn whose first SIGTERM/SIGINT drains media streams before the usual shutdown."""

    def __init__(self, config: uvicorn.Config, drain_timeout_s: float) -> None:
        super().__init__(config)
        self.drain_timeout_s = drain_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None

    async def serve(self, sockets: Any = None) -> None:
        """Serve until told to exit (see :meth:`handle_exit`)."""
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: drain, then exit. Any later one: uvicorn's default (Ctrl+C forces)."""
        if self._drain_task is not None or self._loop is None or self.should_exit:
            super().handle_exit(sig, frame)
            return
        self._captured_signals.append(sig)
        # Signal handlers run between bytecodes; start the drain from the loop itself.
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        if self._drain_task is not None:
            return
        self._drain_task = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await drain(self.drain_timeout_s)
        except Exception:
            log.exception("the drain failed; shutting down anyway")
        finally:
            self.should_exit = True
