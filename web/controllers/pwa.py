"""The installable app: web manifest, the service worker at the root scope, the offline page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Controller, Response, get
from litestar.response import Template

_STATIC = Path(__file__).resolve().parent.parent.parent / "static"

THEME_COLOR = "#1e1b2e"
BACKGROUND_COLOR = "#f6f7f9"

MANIFEST: dict[str, Any] = {
    "name": "Talkturo Recordings",
    "short_name": "Talkturo",
    "description": "Listen to and review your assistants' calls.",
    "id": "/calls",
    "start_url": "/calls",
    "scope": "/",
    "display": "standalone",
    "orientation": "any",
    "theme_color": THEME_COLOR,
    "background_color": BACKGROUND_COLOR,
    "icons": [
        {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
        {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
        {
            "src": "/static/icons/maskable-192.png",
            "sizes": "192x192",
            "type": "image/png",
            "purpose": "maskable",
        },
        {
            "src": "/static/icons/maskable-512.png",
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        },
    ],
}


class PwaController(Controller):
    """Public, cookie-free routes: a browser fetches them before anyone signs in."""

    include_in_schema = False

    @get("/manifest.webmanifest")
    async def manifest(self) -> Response[dict[str, Any]]:
        """The web app manifest (makes the dashboard installable on tablets)."""
        return Response(
            MANIFEST,
            media_type="application/manifest+json",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    @get("/sw.js")
    async def service_worker(self) -> Response[bytes]:
        """The service worker, from the root so its scope is the whole app."""
        body = (_STATIC / "sw.js").read_bytes()
        return Response(
            body,
            media_type="text/javascript",
            headers={
                "Cache-Control": "no-cache",
                "Service-Worker-Allowed": "/",
                "X-Content-Type-Options": "nosniff",
            },
        )

    @get("/offline")
    async def offline(self) -> Template:
        """What the service worker shows when a page cannot be reached."""
        return Template("offline.html", headers={"Cache-Control": "no-cache"})
