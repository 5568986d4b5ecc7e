"""Page or fragment: one helper decides, so handlers never do."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.plugins.htmx import HTMXRequest, HTMXTemplate
from litestar.response import Template


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    """Whether HTMX sent this request (and did not ask for a full page via boost)."""
    if isinstance(request, HTMXRequest):
        return bool(request.htmx) and not request.htmx.boosted
    return request.headers.get("hx-request") == "true" and "hx-boosted" not in request.headers


def render(
    request: Request[Any, Any, Any],
    page: str,
    fragment: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    push_url: str | None = None,
) -> Template:
    """The fragment for an HTMX request, else the full page (which includes the fragment)."""
    if is_htmx(request):
        return HTMXTemplate(
            template_name=fragment,
            context=context,
            status_code=status_code,
            push_url=push_url,
        )
    return Template(template_name=page, context=context, status_code=status_code)
