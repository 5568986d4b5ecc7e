"""Values read from the dashboard's HTML forms, checked once."""

from __future__ import annotations

from typing import Any

from litestar import Request

from web.errors import InvalidInput


async def form_bool(request: Request[Any, Any, Any], name: str) -> bool:
    """The form field ``name`` as ``true`` or ``false`` (any case); else 400 saying so."""
    raw = str((await request.form()).get(name, "")).strip().lower()
    if raw not in {"true", "false"}:
        raise InvalidInput(f"{name} must be true or false.")
    return raw == "true"
