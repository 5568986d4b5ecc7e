"""Metrics (Prometheus) and structured logs: one JSON line per request and per state change."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge, Histogram

# What the current request is about; filled in by auth and by the path.
log_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "talkturo_log_context", default=None
)

LIVE_CALLS = Gauge("talkturo_live_calls", "Media streams being recorded by this process")
MEDIA_FRAMES = Counter("talkturo_media_frames_total", "Media frames received", ["track"])
ENCODER_LAG = Histogram(
    "talkturo_encoder_lag_seconds",
    "How far encoded MP3 trails the newest audio received",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)
RECORDINGS = Gauge("talkturo_recordings", "Recordings by status", ["status"])
UPLOAD_RETRIES = Counter("talkturo_upload_retries_total", "Recording uploads retried")
PURGED = Counter("talkturo_purged_total", "Recordings purged by retention")
WEBHOOK_ATTEMPTS = Counter(
    "talkturo_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retrying, failed)",
    ["outcome"],
)
WEBHOOK_FAILURES = Counter(
    "talkturo_webhook_delivery_failures_total", "Webhook attempts that got no 2xx answer"
)
WEBHOOK_OLDEST_PENDING = Gauge(
    "talkturo_webhook_oldest_pending_seconds", "Age of the oldest webhook delivery still pending"
)
REQUEST_LATENCY = Histogram(
    "talkturo_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)

_CALL_IN_PATH = re.compile(r"/calls/([0-9a-fA-F-]{36})")
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


def note(**fields: str) -> None:
    """Attach fields (org_id, call_id) to the current request's log line."""
    ctx = log_context.get()
    if ctx is not None:
        ctx.update(fields)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"))


class HumanFormatter(logging.Formatter):
    """For a terminal: the message followed by its extra fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _RESERVED and not k.startswith("_")
        )
        base = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.getMessage()}"
        text = f"{base}  {extra}" if extra else base
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(json_lines: bool | None = None) -> None:
    """JSON lines when stderr is not a terminal (production), readable lines when it is."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else HumanFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("tortoise", "aiobotocore", "botocore", "uvicorn.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


request_log = logging.getLogger("talkturo.request")


def _route_of(scope: Scope) -> str:
    handler = scope.get("route_handler")
    paths = getattr(handler, "paths", None)
    if paths:
        return str(sorted(paths)[0])
    # Unrouted paths share one label, so the label set stays bounded.
    return "unmatched"


class RequestLogMiddleware:
    """One log line and one latency sample per HTTP request (path only: no query, no secrets)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        ctx: dict[str, str] = {}
        match = _CALL_IN_PATH.search(scope["path"])
        if match:
            ctx["call_id"] = match.group(1).lower()
        token = log_context.set(ctx)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_of(scope)
            method = str(scope.get("method", ""))
            REQUEST_LATENCY.labels(method, route, str(status)).observe(elapsed)
            if route not in {"/healthz", "/metrics"} and not route.startswith("/static"):
                request_log.info(
                    "%s %s %d",
                    method,
                    scope["path"],
                    status,
                    extra={"status": status, "ms": round(elapsed * 1000, 1), **ctx},
                )
            log_context.reset(token)
