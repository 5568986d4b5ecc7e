"""ASGI middleware of our own: same-origin checks and Secure cookies over https."""

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
