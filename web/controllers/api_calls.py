"""API v1: call lifecycle and reading calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from litestar import Controller, Request, get, post
from litestar.di import Provide
from msgspec import Struct

from web.auth import Principal, api_principal, require_ingest, require_reader
from web.models import Role
from web.openapi import CALL_EXAMPLE, Call, CallList, error_responses, ok_response
from web.services import call_query
from web.services import calls as svc
from web.settings import Settings
from web.tenancy import get_call, recording_of, recordings_of


class CallStart(Struct, forbid_unknown_fields=True):
    assistant_id: str
    direction: Literal["inbound", "outbound"]
    from_number: str
    to_number: str
    started_at: datetime | None = None
    campaign: str | None = None


class CallEnd(Struct, forbid_unknown_fields=True):
    status: Literal["completed", "no-answer", "busy", "failed"]
    ended_at: datetime | None = None


class ApiCallsController(Controller):
    path = "/api/v1/calls"
    tags = ["calls"]
    dependencies = {"principal": Provide(api_principal)}

    @post(
        "/",
        status_code=201,
        guards=[require_ingest],
        responses={
            **ok_response(
                Call,
                "The call, started.",
                {
                    **CALL_EXAMPLE,
                    "status": "in-progress",
                    "ended_at": None,
                    "duration_ms": None,
                    "recording": None,
                },
                201,
            ),
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    async def start_call(
        self, settings: Settings, principal: Principal, data: CallStart
    ) -> dict[str, Any]:
        """Start a call; it records if its assistant has recording enabled right now."""
        call = await svc.start_call(
            principal.org_id,
            data.assistant_id,
            data.direction,
            data.from_number,
            data.to_number,
            data.started_at,
            data.campaign,
        )
        return svc.call_to_dict(call, None, settings.secret_key)

    @get(
        "/",
        guards=[require_reader],
        responses={
            **ok_response(
                CallList, "A page of calls.", {"items": [CALL_EXAMPLE], "next_cursor": None}
            ),
            **error_responses(400, 401, 403, 429),
        },
    )
    async def list_calls(
        self,
        request: Request[Any, Any, Any],
        settings: Settings,
        principal: Principal,
        assistant: str | None = None,
        status: str | None = None,
        direction: str | None = None,
        phone: str | None = None,
        from_number: str | None = None,
        to_number: str | None = None,
        campaign: str | None = None,
        q: str | None = None,
        recording: str | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        min_duration: str | None = None,
        cursor: str | None = None,
        limit: str | None = None,
    ) -> dict[str, Any]:
        """The org's calls, newest first, with the Call Logs filters; ``next_cursor`` pages on."""
        # The parameters above document the query; they are parsed together, as the page does.
        filters = call_query.parse_filters(request.query_params).or_raise()
        page = await call_query.query_calls(
            principal.org_id, filters, call_query.parse_limit(limit)
        )
        recs = await recordings_of(page.calls)
        secret = settings.secret_key
        return {
            "items": [svc.call_to_dict(c, recs.get(c.id), secret) for c in page.calls],
            "next_cursor": page.next_cursor,
        }

    @post(
        "/{call_id:str}/end",
        status_code=200,
        guards=[require_ingest],
        responses={
            **ok_response(Call, "The call, ended.", CALL_EXAMPLE),
            **error_responses(400, 401, 403, 404, 409, 429),
        },
    )
    async def end_call(
        self, settings: Settings, principal: Principal, call_id: str, data: CallEnd
    ) -> dict[str, Any]:
        """Set the call's final status (independent of the media stream's stop)."""
        call = await svc.end_call(principal.org_id, call_id, data.status, data.ended_at)
        rec = await recording_of(call)
        out = svc.call_to_dict(call, rec, settings.secret_key)
        if principal.role is Role.INGEST and out["recording"]:
            # An ingest key cannot read recordings: no download link.
            out["recording"]["url"] = None
        return out

    @get(
        "/{call_id:str}",
        guards=[require_reader],
        responses={
            **ok_response(Call, "The call.", CALL_EXAMPLE),
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    async def get_call(
        self, settings: Settings, principal: Principal, call_id: str
    ) -> dict[str, Any]:
        """One call, with its recording's state and a signed download link."""
        call = await get_call(principal.org_id, call_id)
        rec = await recording_of(call)
        return svc.call_to_dict(call, rec, settings.secret_key)
