"""A bare ASGI app that accepts every WebSocket and drops every message: the floor.

``bench_ingest_cpu`` serves it with uvicorn, configured as ``talkturo serve`` configures it,
and streams the same calls at it: what that costs is the server stack's own price of reading
the frames (kernel, event loop, WebSocket parsing, ASGI), before any of our code runs. The
stream ends as a real one does: ``stop``, then the server closes.
"""

from __future__ import annotations

from typing import Any

_STOP = '{"event": "stop"}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == _STOP:
            await send({"type": "websocket.close", "code": 1000})
            return
