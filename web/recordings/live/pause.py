"""Pausing a live recording from any process: the wish goes through the recording's row.

The API (on whichever process the request reaches) writes ``pause_requested`` and bumps
``pause_version``; on PostgreSQL it also sends a ``NOTIFY`` naming the recording. Each web
process has one :class:`PauseWatcher` for all the streams it holds: on PostgreSQL it listens
on one dedicated connection and looks at the rows as soon as a notification names one of its
streams; whatever the database, it also reads the versions of all its streams in ONE query
per interval (every :data:`POLL_S` without a listener, every :data:`LISTENING_POLL_S` as a
safety net with one). A newer version is handed to the stream's session, which applies it
to its recorder at the current call time and writes back the spans and the version applied.
The API waits (briefly) for that, so its answer carries the span as stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from typing import Any, Protocol

import asyncpg
from tortoise import connections
from tortoise.expressions import F

from web.auth import Principal
from web.db import asyncpg_dsn
from web.errors import Conflict
from web.models import Recording, RecordingStatus
from web.services import audit
from web.settings import DatabaseSettings
from web.tenancy import get_call

log = logging.getLogger("talkturo.ingest")

# How often the streams' rows are read without a listener (the contract allows 500 ms).
POLL_S = 0.2
# With a working LISTEN connection the rows are still read this often, in case one was missed.
LISTENING_POLL_S = 2.0
# How long after a failed LISTEN connection the next attempt is made.
RELISTEN_S = 5.0
# The NOTIFY channel; the payload is the recording's id.
CHANNEL = "talkturo_recording_pause"
# How long the API waits for the holding session to apply a request before answering.
APPLY_WAIT_S = 5.0

NOT_LIVE = "No media stream is live for this call: only a live recording can be paused."


async def request(org_id: uuid.UUID, call_id: str, paused: bool, principal: Principal) -> Any:
    """Ask the holding session to pause (or resume); the state once applied. Idempotent."""
    call = await get_call(org_id, call_id)
    rec = await Recording.get_or_none(call_id=call.id)
    if rec is None or rec.status != RecordingStatus.RECORDING:
        raise Conflict(NOT_LIVE)
    if rec.pause_requested != paused:
        changed = await Recording.filter(
            id=rec.id, status=RecordingStatus.RECORDING, pause_requested=not paused
        ).update(pause_requested=paused, pause_version=F("pause_version") + 1)
        if changed:
            await _notify(rec.id)
            action = audit.Action.PAUSE if paused else audit.Action.RESUME
            await audit.record(org_id, call.id, action, principal)
        elif not await Recording.filter(id=rec.id, status=RecordingStatus.RECORDING).exists():
            raise Conflict(NOT_LIVE)
    row = await _applied(rec.id)
    return {"paused": paused, "pauses": list(row.pauses or [])}


async def _notify(rec_id: uuid.UUID) -> None:
    """On PostgreSQL, wake the process holding the stream now (the poll is the fallback)."""
    conn = connections.get("default")
    if str(conn.capabilities.dialect) != "postgres":
        return
    try:
        await conn.execute_query("SELECT pg_notify($1, $2)", [CHANNEL, str(rec_id)])
    except Exception:
        log.warning("could not notify the pause of recording %s; it is polled", rec_id)


async def _applied(rec_id: uuid.UUID) -> Recording:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + APPLY_WAIT_S
    while True:
        row = await Recording.get(id=rec_id)
        if row.pause_applied >= row.pause_version or row.status != RecordingStatus.RECORDING:
            return row
        if loop.time() > deadline:
            return row
        await asyncio.sleep(0.02)


async def applied(rec_id: uuid.UUID, version: int, pauses: list[dict[str, Any]]) -> None:
    """The holding session applied ``version``: store the spans as they now are."""
    await Recording.filter(id=rec_id).update(pause_applied=version, pauses=pauses)


class PauseTarget(Protocol):
    """A live session as the watcher sees it."""

    @property
    def pause_version(self) -> int:
        """The newest pause version it has applied."""
        ...

    def pause_wished(self, version: int, paused: bool) -> None:
        """A newer request than :attr:`pause_version`: apply it (repeated until applied)."""
        ...


class PauseWatcher:
    """Pause requests for every stream this process holds: one listener, one query a round."""

    def __init__(self, db: DatabaseSettings) -> None:
        self.db = db
        self.streams: dict[uuid.UUID, PauseTarget] = {}
        self.rounds = 0  # queries made so far (one per round, whatever the number of streams)
        self.listening = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None
        self._relisten_at = 0.0

    def watch(self, rec_id: uuid.UUID, target: PauseTarget) -> None:
        """Follow ``rec_id`` for ``target`` until :meth:`unwatch`."""
        self.streams[rec_id] = target
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def unwatch(self, rec_id: uuid.UUID) -> None:
        """Stop following ``rec_id`` (the watcher stops once it follows nothing)."""
        self.streams.pop(rec_id, None)
        if not self.streams:
            self._wake.set()

    async def _run(self) -> None:
        try:
            while True:
                await self._follow()
                # No stream left: let the listening connection go (a stream that came
                # meanwhile is followed on; no await between this check and the end).
                await self._unlisten()
                if not self.streams:
                    return
        finally:
            await self._unlisten()

    async def _follow(self) -> None:
        """Poll (and listen) while there are streams to follow."""
        loop = asyncio.get_running_loop()
        while self.streams:
            due = loop.time() >= self._relisten_at
            if not self.db.is_sqlite and not self.listening and due:
                await self._listen()
            interval = LISTENING_POLL_S if self.listening else POLL_S
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            self._wake.clear()
            if not self.streams:
                return
            try:
                await self.poll()
            except Exception:
                log.exception("could not read the pause state of the live streams")

    async def poll(self) -> None:
        """One query for every stream followed; hand newer versions to their sessions."""
        ids = list(self.streams)
        if not ids:
            return
        self.rounds += 1
        rows = await Recording.filter(id__in=ids, pause_version__gt=0).values_list(
            "id", "pause_version", "pause_requested"
        )
        for rec_id, version, paused in rows:
            target = self.streams.get(rec_id)
            if target is not None and int(version) > target.pause_version:
                target.pause_wished(int(version), bool(paused))

    async def _listen(self) -> None:
        try:
            conn = await asyncpg.connect(asyncpg_dsn(self.db))
            await conn.add_listener(CHANNEL, self._notified)
        except Exception as exc:
            log.warning("cannot LISTEN for pause requests (%s); polling the database", exc)
            self._relisten_at = asyncio.get_running_loop().time() + RELISTEN_S
            return
        conn.add_termination_listener(self._lost)
        self._listener = conn
        self.listening = True

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            if uuid.UUID(payload) in self.streams:
                self._wake.set()

    def _lost(self, _conn: Any) -> None:
        self.listening = False
        self._listener = None
        self._wake.set()

    async def _unlisten(self) -> None:
        conn, self._listener = self._listener, None
        self.listening = False
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)


# One watcher per event loop (tests run several loops in one process).
_WATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PauseWatcher] = (
    weakref.WeakKeyDictionary()
)


def watcher(db: DatabaseSettings) -> PauseWatcher:
    """This process's watcher (for the running loop)."""
    loop = asyncio.get_running_loop()
    found = _WATCHERS.get(loop)
    if found is None or found.db != db:
        found = _WATCHERS[loop] = PauseWatcher(db)
    return found
