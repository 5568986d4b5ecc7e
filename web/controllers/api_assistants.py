"""API v1: assistants."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, patch, post
from litestar.di import Provide
from msgspec import Struct

from web.auth import Principal, api_admin, api_principal, require_reader
from web.openapi import ASSISTANT_EXAMPLE, Assistant, AssistantList, error_responses, ok_response
from web.services import assistants as svc
from web.tenancy import get_assistant


class AssistantCreate(Struct, forbid_unknown_fields=True):
    name: str
    recording_enabled: bool = True
    redact_dtmf: bool = True


class AssistantPatch(Struct, forbid_unknown_fields=True):
    recording_enabled: bool | None = None
    name: str | None = None
    redact_dtmf: bool | None = None


class ApiAssistantsController(Controller):
    path = "/api/v1/assistants"
    tags = ["assistants"]
    dependencies = {"principal": Provide(api_principal)}

    @get(
        "/",
        guards=[require_reader],
        responses={
            **ok_response(
                AssistantList,
                "The org's assistants.",
                {"items": [ASSISTANT_EXAMPLE], "next_cursor": None},
            ),
            **error_responses(400, 401, 403, 429),
        },
    )
    async def list_assistants(self, principal: Principal) -> dict[str, Any]:
        """The org's assistants."""
        items = await svc.list_assistants(principal.org_id)
        return {"items": [svc.assistant_to_dict(a) for a in items], "next_cursor": None}

    @post(
        "/",
        status_code=201,
        guards=[api_admin],
        responses={
            **ok_response(Assistant, "The new assistant.", ASSISTANT_EXAMPLE, 201),
            **error_responses(400, 401, 403, 429),
        },
    )
    async def create_assistant(self, principal: Principal, data: AssistantCreate) -> dict[str, Any]:
        """Create an assistant (admin key)."""
        a = await svc.create_assistant(
            principal.org_id, data.name, data.recording_enabled, data.redact_dtmf
        )
        return svc.assistant_to_dict(a)

    @get(
        "/{assistant_id:str}",
        guards=[require_reader],
        responses={
            **ok_response(Assistant, "The assistant.", ASSISTANT_EXAMPLE),
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    async def get_assistant(self, principal: Principal, assistant_id: str) -> dict[str, Any]:
        """One assistant."""
        return svc.assistant_to_dict(await get_assistant(principal.org_id, assistant_id))

    @patch(
        "/{assistant_id:str}",
        guards=[api_admin],
        responses={
            **ok_response(Assistant, "The assistant as changed.", ASSISTANT_EXAMPLE),
            **error_responses(400, 401, 403, 404, 429),
        },
    )
    async def patch_assistant(
        self, principal: Principal, assistant_id: str, data: AssistantPatch
    ) -> dict[str, Any]:
        """Change recording_enabled, redact_dtmf and/or the name (admin key).

        Running calls keep the switches they started with.
        """
        a = await svc.update_assistant(
            principal.org_id,
            assistant_id,
            recording_enabled=data.recording_enabled,
            name=data.name,
            redact_dtmf=data.redact_dtmf,
        )
        return svc.assistant_to_dict(a)
