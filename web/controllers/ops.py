"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Controller, Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from web.errors import NotAuthenticated, NotFound, PermissionDenied
from web.observability import RECORDINGS
from web.services.health import readiness, recordings_by_status
from web.settings import Settings
from web.shutdown import draining
from web.storage import Storages


class OpsController(Controller):
    include_in_schema = False

    @get("/healthz")
    async def healthz(self) -> dict[str, str]:
        """The process is alive (no dependency is checked)."""
        return {"status": "ok"}

    @get("/readyz")
    async def readyz(self, storages: Storages, settings: Settings) -> Response[dict[str, Any]]:
        """Database and storage reachable, migrations applied, data directory writable;
        503 naming what is not."""
        problems = await readiness(storages, settings.data_dir)
        if draining():
            # Load balancers stop routing here while live calls finish.
            problems["process"] = "shutting down: draining live media streams"
        if problems:
            return Response({"status": "unavailable", "problems": problems}, status_code=503)
        return Response({"status": "ready"}, status_code=200)

    @get("/metrics")
    async def metrics(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """Prometheus text format for the operator (figures of every org): needs
        ``Authorization: Bearer <TALKTURO_METRICS_TOKEN>``; without that setting, 404."""
        token = request.app.state.settings.metrics_token
        if not token:
            raise NotFound("Not Found")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise NotAuthenticated("Metrics need the metrics token: Authorization: Bearer <token>.")
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise PermissionDenied("This is not the metrics token.")
        for status, n in (await recordings_by_status()).items():
            RECORDINGS.labels(status).set(n)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
