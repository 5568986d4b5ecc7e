"""ASGI middleware of our own: same-origin checks, Secure cookies over https, and the
security headers of every response."""

from __future__ import annotations

from urllib.parse import urlsplit

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

_SAFE = {"GET", "HEAD", "OPTIONS", "TRACE"}


def _forbidden_body(detail: str) -> bytes:
    return ('{"status_code":403,"detail":"' + detail + '"}').encode()


class SameOriginMiddleware:
    """Refuse unsafe dashboard requests that a browser says come from another site.

    Litestar's CSRF cookie is not bound to the session, so this is the second lock:
    ``Sec-Fetch-Site`` must be same-origin (or none), and ``Origin`` must match ``Host``.
    API routes (Bearer keys, no cookies) are exempt.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == ScopeType.HTTP
            and scope["method"] not in _SAFE
            and not scope["path"].startswith("/api/")
        ):
            reason = self._reason(scope)
            if reason:
                body = _forbidden_body(reason)
                start: HTTPResponseStartEvent = {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
                await send(start)
                end: HTTPResponseBodyEvent = {
                    "type": "http.response.body",
                    "body": body,
                    "more_body": False,
                }
                await send(end)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _reason(scope: Scope) -> str | None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        site = headers.get("sec-fetch-site")
        if site and site not in {"same-origin", "none"}:
            return "Cross-site request refused."
        origin = headers.get("origin")
        if origin and origin != "null":
            host = headers.get("host", "")
            if urlsplit(origin).netloc.lower() != host.lower():
                return "Cross-origin request refused."
        elif origin == "null":
            return "Cross-origin request refused."
        return None


class SecureCookiesMiddleware:
    """Mark every cookie Secure when the request came over https."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                cookies = headers.getall("set-cookie", [])
                if cookies:
                    del headers["set-cookie"]
                    for cookie in cookies:
                        secure = "secure" in cookie.lower()
                        headers.add("set-cookie", cookie if secure else f"{cookie}; Secure")
            await send(message)

        await self.app(scope, receive, send_secure)


# No inline script or style anywhere: every script and stylesheet is a file under /static
# (htmx's own indicator style is turned off by the htmx-config meta in base.html).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        # blob: for the MediaSource the player streams the MP3 into (static/js/player/stream.js).
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_ALWAYS = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("x-content-type-options", "nosniff"),
]
_HSTS = ("strict-transport-security", "max-age=63072000")
# Files that are the same for everyone may be cached; everything else may show customer
# data and is no-store unless its handler chose otherwise (the MP3 and peaks do).
_CACHEABLE_PREFIXES = ("/static/",)


async def security_headers(message: Message, scope: Scope) -> None:
    """A ``before_send`` hook: CSP (no inline script, no framing), Referrer-Policy, nosniff,
    no-store and, over https, HSTS on every HTTP response, unmatched paths included."""
    if scope["type"] != ScopeType.HTTP or message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in _ALWAYS:
        headers[name] = value
    if scope.get("scheme") == "https":
        headers[_HSTS[0]] = _HSTS[1]
    if not scope["path"].startswith(_CACHEABLE_PREFIXES) and "cache-control" not in headers:
        headers["cache-control"] = "no-store"
