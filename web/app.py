"""The app factory: every plugin, controller, middleware and handler is wired here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
from litestar import Litestar, MediaType, Request, Response
from litestar.config.compression import CompressionConfig
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.middleware.session.client_side import CookieBackendConfig
from litestar.openapi import OpenAPIConfig
from litestar.plugins.htmx import HTMXPlugin
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from web.controllers.api_assistants import ApiAssistantsController
from web.controllers.api_calls import ApiCallsController
from web.controllers.api_compliance import ApiComplianceController
from web.controllers.api_org import ApiLegalHoldController, ApiOrgController
from web.controllers.api_webhooks import ApiWebhooksController
from web.controllers.auth import AuthController
from web.controllers.dashboard import DashboardController
from web.controllers.export import ApiExportController, ExportDashboardController
from web.controllers.ingest import IngestController, media_stream, put_recording
from web.controllers.ops import OpsController
from web.controllers.playback import ApiPlaybackController, PlaybackController
from web.controllers.pwa import PwaController
from web.controllers.redact import RedactDashboardController
from web.controllers.review import ApiNotesController, ReviewController
from web.controllers.settings import SettingsController
from web.controllers.settings_webhooks import SettingsWebhooksController
from web.db import close_db, open_db
from web.dependencies import APP_DEPENDENCIES
from web.errors import DomainError, NotAuthenticated, RateLimited
from web.middleware import SameOriginMiddleware, SecureCookiesMiddleware, security_headers
from web.observability import RequestLogMiddleware
from web.ratelimit import ApiRateLimitMiddleware
from web.recordings import decoding
from web.recordings.presentation import delay_reason
from web.runtime import worker_lifespan
from web.security import csrf_secret, session_secret
from web.services.review import SPEEDS, highlight
from web.settings import Settings
from web.storage import Storages

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("talkturo")

# Paths for programs, not people: errors are JSON and a missing login is a 401, not a redirect.
MACHINE_PATHS = ("/api/", "/metrics")

# Every route handler of the service. One list, so nothing is registered elsewhere.
ROUTE_HANDLERS: list[ControllerRouterHandler] = [
    AuthController,
    DashboardController,
    RedactDashboardController,
    ExportDashboardController,
    SettingsController,
    SettingsWebhooksController,
    ApiAssistantsController,
    ApiCallsController,
    ApiComplianceController,
    ApiOrgController,
    ApiLegalHoldController,
    ApiExportController,
    ApiWebhooksController,
    IngestController,
    media_stream,
    PlaybackController,
    ApiPlaybackController,
    PwaController,
    OpsController,
    ApiNotesController,
    ReviewController,
    # Last: after any controller serving the same path (see put_recording).
    put_recording,
]


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith(MACHINE_PATHS) or (
        "text/html" not in request.headers.get("accept", "")
        and request.headers.get("hx-request") != "true"
    )


def _error_response(
    request: Request[Any, Any, Any], status: int, detail: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    if _wants_json(request):
        return Response(
            {"status_code": status, "detail": detail},
            status_code=status,
            media_type=MediaType.JSON,
            headers=headers,
        )
    return Template(
        "error.html",
        context={"status_code": status, "detail": detail},
        status_code=status,
        headers=headers,
    )


def _login_redirect(request: Request[Any, Any, Any]) -> Response[Any]:
    target = "/login?next=" + quote(
        request.url.path + (f"?{request.url.query}" if request.url.query else "")
    )
    if request.headers.get("hx-request") == "true":
        return Response(b"", status_code=401, headers={"HX-Redirect": target})
    return Response(b"", status_code=303, headers={"Location": target})


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    """Map the domain's exceptions to HTTP, once."""
    if isinstance(exc, NotAuthenticated) and not request.url.path.startswith(MACHINE_PATHS):
        return _login_redirect(request)
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
    if isinstance(exc, NotAuthenticated):
        headers = {"WWW-Authenticate": "Bearer"}
    return _error_response(request, exc.status_code, exc.detail, headers)


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own 4xx (routing, validation, CSRF) in our error shape."""
    detail = exc.detail or "Request refused."
    if exc.status_code == 400 and exc.extra:
        detail = f"{detail}: {exc.extra}"
    return _error_response(request, exc.status_code, detail, exc.headers)


def _bad_input(exc: BaseException) -> str | None:
    """What was wrong with the request, when an error deep down is the input's fault."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, RecursionError):
            return "The request nests too deeply."
        if isinstance(seen, UnicodeDecodeError):
            return "The request is not valid UTF-8."
        if isinstance(seen, OverflowError):
            return "A number or a date in the request is out of range."
        if isinstance(seen, asyncpg.exceptions.DataError):
            return (
                "A value in the request cannot be stored: text may not contain NUL"
                " characters, and whole numbers must fit in 64 bits."
            )
        seen = seen.__cause__ or seen.__context__
    return None


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Log the traceback; the user sees one sentence. Input that broke something deeper
    (nesting, encoding, a number too large for its column) is still the caller's 400."""
    detail = _bad_input(exc)
    if detail is not None:
        log.warning("bad input on %s %s: %s", request.method, request.url.path, exc)
        return _error_response(request, 400, detail)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_response(
        request,
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Something went wrong on our side; it has been logged.",
    )


LifespanHook = Callable[[Litestar], Any]


def _localtime(value: datetime, tz: tzinfo | None = None) -> datetime:
    """A stored (UTC) time on the viewer's wall clock."""
    return value.astimezone(tz or UTC)


def _template_helpers(engine: JinjaTemplateEngine) -> None:
    engine.engine.globals["recording_delay"] = delay_reason
    engine.engine.filters["localtime"] = _localtime
    engine.engine.filters["highlight"] = highlight
    # One list of speeds: the player's menu and the preference's validation.
    engine.engine.globals["playback_speeds"] = SPEEDS


def create_app(settings: Settings, *, extra_lifespan: list[Any] | None = None) -> Litestar:
    """Build the ASGI app for ``settings``."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await open_db(settings.database)
            stack.push_async_callback(close_db)
            stack.callback(decoding.shutdown)
            # Before any hook: the worker and every request find the storages open.
            app.state.storages = await stack.enter_async_context(Storages(settings))
            hooks = list(extra_lifespan or [])
            if settings.server.embedded_worker:
                hooks.append(worker_lifespan)
            for hook in hooks:
                await stack.enter_async_context(hook(app))
            yield

    session = CookieBackendConfig(
        secret=session_secret(settings.secret_key),
        key="talkturo_session",
        httponly=True,
        samesite="lax",
        max_age=12 * 3600,
        exclude=["^/api/", "^/static/"],
    )
    csrf = CSRFConfig(
        secret=csrf_secret(settings.secret_key),
        cookie_name="talkturo_csrf",
        header_name="x-csrftoken",
        cookie_samesite="lax",
        exclude=["^/api/"],
    )
    templates = TemplateConfig(
        directory=ROOT / "templates",
        engine=JinjaTemplateEngine,
        engine_callback=_template_helpers,
    )
    static = create_static_files_router(
        path="/static", directories=[ROOT / "static"], include_in_schema=False
    )
    app = Litestar(
        route_handlers=[*ROUTE_HANDLERS, static],
        dependencies=APP_DEPENDENCIES,
        lifespan=[lifespan],
        middleware=[
            DefineMiddleware(RequestLogMiddleware),
            DefineMiddleware(SecureCookiesMiddleware),
            DefineMiddleware(SameOriginMiddleware),
            DefineMiddleware(ApiRateLimitMiddleware),
            session.middleware,
        ],
        csrf_config=csrf,
        # Every response, unmatched paths and errors included: CSP, framing, no-store, HSTS.
        before_send=[security_headers],
        # Pages, fragments, CSS and JS go gzipped; never MP3 (Range) nor peaks (stored gzipped).
        compression_config=CompressionConfig(
            backend="gzip",
            gzip_compress_level=6,
            exclude=[
                r"\.mp3$",
                r"/peaks\.json$",
                r"^/api/v1/calls/[^/]+/recording$",
                r"/media$",
                # Export archives hold MP3 (stored entries): gzip would only cost CPU.
                r"/export$",
            ],
        ),
        template_config=templates,
        plugins=[HTMXPlugin()],
        exception_handlers={
            DomainError: domain_error_handler,
            HTTPException: http_error_handler,
            Exception: internal_error_handler,
        },
        openapi_config=OpenAPIConfig(
            title="Talkturo Recordings API", version="1.0.0", path="/schema"
        ),
        debug=False,
        # Logging is configured once by the process (web.observability), not per app.
        logging_config=None,
    )
    app.state.settings = settings
    return app
