"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from web.auth import api_admin
from web.observability import RECORDINGS
from web.services.health import readiness, recordings_by_status
from web.shutdown import draining
from web.storage import Storages


class OpsController(Controller):
    include_in_schema = False

    @get("/healthz")
    async def healthz(self) -> dict[str, str]:
        """The process is alive (no dependency is checked)."""
        return {"status": "ok"}

    @get("/readyz")
    async def readyz(self, storages: Storages) -> Response[dict[str, Any]]:
        """Database and storage reachable, migrations applied; 503 naming what is not."""
        problems = await readiness(storages)
        if draining():
            # Load balancers stop routing here while live calls finish.
            problems["process"] = "shutting down: draining live media streams"
        if problems:
            return Response({"status": "unavailable", "problems": problems}, status_code=503)
        return Response({"status": "ready"}, status_code=200)

    @get(
        "/metrics",
        guards=[api_admin],
        opt={
            "unauthenticated": "Metrics need an admin API key: Authorization: Bearer <key>.",
            "admin_reason": "Metrics need an admin API key.",
        },
    )
    async def metrics(self) -> Response[bytes]:
        """Prometheus text format; needs an admin API key (metrics describe every org)."""
        for status, n in (await recordings_by_status()).items():
            RECORDINGS.labels(status).set(n)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
