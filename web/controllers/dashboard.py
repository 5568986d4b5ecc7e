"""Dashboard pages: Call Logs (list and detail panel) and Assistants (recording switch)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import Provide
from litestar.response import Template
from markupsafe import Markup

from web.auth import Principal, dashboard_principal
from web.errors import DomainError
from web.forms import form_bool
from web.models import Assistant, CallStatus, Direction, Recording
from web.recordings.playback import peaks, player_context
from web.rendering import is_htmx, render
from web.services import assistants as assistants_svc
from web.services import review
from web.services.call_query import (
    CallFilters,
    count_calls,
    load_detail,
    parse_filters,
    query_calls,
)
from web.settings import Settings
from web.tenancy import get_assistant

# The browser's IANA zone, written by the dashboard's script; a user's choice overrides it.
TZ_COOKIE = "talkturo_tz"


async def viewer(request: Request[Any, Any, Any], principal: Principal) -> dict[str, Any]:
    """Who is looking, in which zone and at which speed: shared by every dashboard page."""
    # Read with the session's user for this request; a query only when they were not.
    prefs = principal.preferences
    chosen, speed = prefs if prefs is not None else await review.user_preferences(principal.user_id)
    tz, label = review.viewer_zone(chosen, request.cookies.get(TZ_COOKIE))
    return {"tz": tz, "tz_label": label, "tz_chosen": bool(chosen), "speed": speed}


# Shown next to a bad filter value; the keys are the query parameters.
FILTER_LABELS = {
    "assistant": "Assistant",
    "status": "Status",
    "direction": "Direction",
    "phone": "Phone number",
    "from_number": "From",
    "to_number": "To",
    "campaign": "Campaign",
    "q": "Search",
    "recording": "Recording",
    "date_from": "From date",
    "date_to": "To date",
    "min_duration": "Minimum duration",
    "cursor": "Page",
}


# Peaks up to this size ride along in the panel: one round trip fewer before the waveform.
INLINE_PEAKS_MAX = 64 * 1024


async def _inline_peaks(request: Request[Any, Any, Any], rec: Recording) -> Markup | None:
    """The overview peaks as text for a JSON data block in the panel, or None (then fetched)."""
    try:
        doc = await peaks(request.app.state.storages, rec, accept_encoding="", if_none_match=None)
    except DomainError:
        return None
    if len(doc.body) > INLINE_PEAKS_MAX:
        return None
    # A JSON data block ends at "</": numbers never contain it, but escape it anyway.
    text = doc.body.decode("utf-8", errors="replace").replace("</", "<\\/")
    return Markup(text)  # noqa: S704


def _start_at(raw: str | None) -> float | None:
    """Where ``?t=SECONDS`` asks the player to start; None when absent or not a time."""
    try:
        seconds = float(raw or "")
    except ValueError:
        return None
    return round(seconds, 3) if 0 <= seconds < 86_400 else None


def _list_query(filters: CallFilters) -> str:
    """The list's own query string (filters and page), for links that must come back to it."""
    return filters.query_string(cursor=filters.raw.get("cursor") or None)


async def _list_context(request: Request[Any, Any, Any], principal: Principal) -> dict[str, Any]:
    """What Call Logs shows for the filters in the request's query string."""
    who = await viewer(request, principal)
    parsed = parse_filters(request.query_params, who["tz"])
    f = parsed.filters
    assistants = await assistants_svc.list_assistants(principal.org_id)
    page = None if parsed.errors else await query_calls(principal.org_id, f)
    total = None
    if page is not None and (page.next_cursor or f.cursor):
        total = await count_calls(principal.org_id, f)
    return {
        **who,
        "total_estimate": total,
        "snippets": review.snippets(page.calls, f.q) if page else {},
        "principal": principal,
        "nav": "calls",
        "filters": f,
        "errors": parsed.errors,
        "labels": FILTER_LABELS,
        "assistants": assistants,
        "assistant_names": {a.id: a.name for a in assistants},
        "statuses": [s.value for s in CallStatus],
        "directions": [d.value for d in Direction],
        "calls": page.calls if page else [],
        "next_cursor": page.next_cursor if page else None,
        "list_query": _list_query(f),
        "partial": is_htmx(request),
    }


class DashboardController(Controller):
    include_in_schema = False
    dependencies = {"principal": Provide(dashboard_principal)}

    @get("/calls")
    async def calls(self, request: Request[Any, Any, Any], principal: Principal) -> Template:
        """Call Logs; with HX-Request only the rows. Bad filters: a message and status 400."""
        ctx = await _list_context(request, principal)
        status = 400 if ctx["errors"] else 200
        resp = render(request, "calls/index.html", "calls/_rows.html", ctx, status_code=status)
        # Page and fragment share a URL: caches must keep them apart.
        resp.headers["Vary"] = "HX-Request"
        return resp

    @get("/calls/{call_id:str}")
    async def call_detail(
        self,
        request: Request[Any, Any, Any],
        settings: Settings,
        principal: Principal,
        call_id: str,
    ) -> Template:
        """The Call Detail panel; without HX-Request the list with the panel open."""
        detail = await load_detail(principal.org_id, call_id)
        secret = settings.secret_key
        parsed = parse_filters(request.query_params)
        ctx: dict[str, Any] = {
            **(await viewer(request, principal)),
            "notes": await review.notes_of(detail.call),
            "start_at": _start_at(request.query_params.get("t")),
            "terms": review.highlight_terms(parsed.filters.q),
            "principal": principal,
            "call": detail.call,
            "assistant": detail.assistant,
            "recording": detail.recording,
            "messages": detail.messages,
            "analysis": detail.analysis,
            "player": player_context(secret, detail.call, detail.recording),
        }
        if ctx["player"] is not None and detail.recording is not None:
            ctx["inline_peaks"] = await _inline_peaks(request, detail.recording)
        if is_htmx(request):
            ctx["list_query"] = _list_query(parsed.filters)
        else:
            ctx.update(await _list_context(request, principal))
            ctx["partial"] = False
        resp = render(request, "calls/detail.html", "calls/_detail.html", ctx)
        resp.headers["Vary"] = "HX-Request"
        return resp

    @get("/assistants")
    async def assistants(self, request: Request[Any, Any, Any], principal: Principal) -> Template:
        """Every assistant of the org with its recording switch (admins may flip it)."""
        ctx = await _assistants_context(request, principal, changed=None, partial=False)
        return render(request, "assistants/index.html", "assistants/_list.html", ctx)

    @post("/assistants/{assistant_id:str}/recording", status_code=200)
    async def set_recording(
        self, request: Request[Any, Any, Any], principal: Principal, assistant_id: str
    ) -> Template:
        """Turn recording on or off (``enabled=true|false``); answers the updated row."""
        return await _toggle(
            request, principal, assistant_id, "recording_enabled", "turn recording on or off"
        )

    @post("/assistants/{assistant_id:str}/dtmf", status_code=200)
    async def set_dtmf(
        self, request: Request[Any, Any, Any], principal: Principal, assistant_id: str
    ) -> Template:
        """Remove keypad tones or keep them (``enabled=true|false``); answers the updated row."""
        return await _toggle(
            request, principal, assistant_id, "redact_dtmf", "change keypad-tone removal"
        )


async def _toggle(
    request: Request[Any, Any, Any], principal: Principal, assistant_id: str, switch: str, what: str
) -> Template:
    """Set one of an assistant's switches from the form's ``enabled``; the updated row."""
    # Looked up first: another org's assistant is "not found" for everyone alike.
    await get_assistant(principal.org_id, assistant_id)
    principal.require_admin(f"Only admins can {what}.")
    on = await form_bool(request, "enabled")
    assistant: Assistant = await assistants_svc.update_assistant(
        principal.org_id,
        assistant_id,
        recording_enabled=on if switch == "recording_enabled" else None,
        redact_dtmf=on if switch == "redact_dtmf" else None,
    )
    ctx = await _assistants_context(
        request,
        principal,
        assistant=assistant,
        changed=assistant,
        changed_dtmf=switch == "redact_dtmf",
        partial=is_htmx(request),
    )
    return render(request, "assistants/index.html", "assistants/_row.html", ctx)


async def _assistants_context(
    request: Request[Any, Any, Any], principal: Principal, **extra: Any
) -> dict[str, Any]:
    """What the Assistants page shows: every assistant of the org, and ``extra``."""
    items = await assistants_svc.list_assistants(principal.org_id)
    return {
        **(await viewer(request, principal)),
        "principal": principal,
        "nav": "assistants",
        "assistants": items,
        **extra,
    }
