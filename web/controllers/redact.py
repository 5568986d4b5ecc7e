"""Redaction from the Call Detail panel: an admin picks a span on the waveform and confirms.

The same service as ``POST /api/v1/calls/{id}/recording/redactions``, behind the dashboard's
session, CSRF token and same-origin check. Another org's call is 404 for everyone; an agent
gets 403. Answers JSON (the recording's redactions) to the panel's script, or sends a browser
without it back to the call.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.di import Provide
from litestar.response import Redirect

from web.auth import Principal, dashboard_principal
from web.errors import InvalidInput
from web.recordings import redaction
from web.storage import Storages
from web.tenancy import get_call

# "m:ss", "m:ss.fff", "h:mm:ss.f" or plain seconds ("75.5").
_CLOCK = re.compile(r"^(?:(\d{1,2}):)?(?:(\d{1,3}):)?(\d{1,5})(?:\.(\d{1,3}))?$")


def parse_moment(raw: str, what: str) -> int:
    """Milliseconds from a moment as the panel writes it; InvalidInput naming the field."""
    text = raw.strip()
    match = _CLOCK.match(text)
    if not text or match is None:
        raise InvalidInput(f"{what}: give a time as m:ss.s, for example 1:05.2.")
    first, second, seconds, fraction = match.groups()
    hours, minutes = (int(first), int(second)) if second is not None else (0, int(first or 0))
    if (second is not None and int(second) >= 60) or (first is not None and int(seconds) >= 60):
        raise InvalidInput(f"{what}: minutes and seconds go up to 59.")
    ms = int((fraction or "0").ljust(3, "0"))
    return ((hours * 60 + minutes) * 60 + int(seconds)) * 1000 + ms


class RedactDashboardController(Controller):
    include_in_schema = False
    dependencies = {"principal": Provide(dashboard_principal)}

    @post("/calls/{call_id:str}/redactions", status_code=200)
    async def redact(
        self,
        request: Request[Any, Any, Any],
        storages: Storages,
        principal: Principal,
        call_id: str,
    ) -> Response[Any]:
        """Redact one span (``start``, ``end`` as m:ss.s, ``channel``, ``mode``, ``reason``)."""
        # Looked up first: another org's call is "not found" for admins and agents alike.
        call = await get_call(principal.org_id, call_id)
        principal.require_admin("Only admins can redact a recording.")
        form = await request.form()
        start = parse_moment(str(form.get("start", "")), "Start")
        end = parse_moment(str(form.get("end", "")), "End")
        channel = str(form.get("channel", "both"))
        mode = str(form.get("mode", "silence"))
        reason = str(form.get("reason", "")).strip() or None
        span = redaction.Span(start, end, channel)
        rec = await redaction.redact(
            storages, principal.org_id, call_id, [span], mode, reason, principal
        )
        if "application/json" not in request.headers.get("accept", ""):
            return Redirect(f"/calls/{call.id}", status_code=303)
        return Response(
            {"redactions": list(rec.redactions or []), "sha256": rec.sha256},
            headers={"Cache-Control": "no-store"},
        )
