"""Call review: notes (API and panel) and the reviewer's own preferences."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import Provide
from litestar.response import Template
from msgspec import Struct

from web.auth import Principal, api_principal, dashboard_principal, require_reader
from web.errors import DomainError, InvalidInput
from web.openapi import error_responses
from web.rendering import render
from web.services import review
from web.tenancy import get_call


class NoteIn(Struct, forbid_unknown_fields=True):
    at_ms: int
    text: str


class NoteOut(Struct):
    """A note pinned to a moment of the call."""

    id: str
    at_ms: int
    text: str
    author: str
    created_at: str


class NoteList(Struct):
    items: list[NoteOut]


class ApiNotesController(Controller):
    """Notes over the API: reviewers (admin and agent keys) add and read; the author or an
    admin deletes. Ingest keys have no part in review."""

    path = "/api/v1/calls/{call_id:str}/notes"
    tags = ["notes"]
    dependencies = {"principal": Provide(api_principal)}
    guards = [require_reader]

    @post("/", status_code=201, responses=error_responses(400, 401, 403, 404, 429))
    async def create(self, principal: Principal, call_id: str, data: NoteIn) -> NoteOut:
        """Pin a note to ``at_ms`` of the call."""
        note = await review.add_note(principal, call_id, data.at_ms, data.text)
        return NoteOut(**note.to_dict())  # type: ignore[arg-type]

    @get("/", responses=error_responses(400, 401, 403, 404, 429))
    async def list(self, principal: Principal, call_id: str) -> NoteList:
        """The call's notes, in the order of the recording."""
        notes = await review.list_notes(principal.org_id, call_id)
        return NoteList([NoteOut(**n.to_dict()) for n in notes])  # type: ignore[arg-type]

    @delete("/{note_id:str}", status_code=204, responses=error_responses(400, 401, 403, 404, 429))
    async def remove(self, principal: Principal, call_id: str, note_id: str) -> None:
        """Delete a note (its author or an admin)."""
        await review.delete_note(principal, call_id, note_id)


async def _notes_fragment(
    request: Request[Any, Any, Any], principal: Principal, call_id: str, error: str | None = None
) -> Template:
    call = await get_call(principal.org_id, call_id)
    notes = await review.list_notes(principal.org_id, call.id)
    ctx = {
        "principal": principal,
        "call": call,
        "notes": notes,
        "note_error": error,
        "notes_partial": True,
    }
    return Template(
        "calls/_notes.html",
        context=ctx,
        status_code=400 if error else 200,
        headers={"Cache-Control": "no-store"},
    )


class ReviewController(Controller):
    """The panel's notes form and the preferences page (every signed-in user)."""

    include_in_schema = False
    dependencies = {"principal": Provide(dashboard_principal)}

    @post("/calls/{call_id:str}/notes", status_code=200)
    async def add_note(
        self, request: Request[Any, Any, Any], principal: Principal, call_id: str
    ) -> Template:
        """Add a note from the panel (``at`` as m:ss, ``text``); answers the notes list."""
        await get_call(principal.org_id, call_id)
        form = await request.form()
        try:
            at_ms = review.parse_clock(str(form.get("at", "")))
            await review.add_note(principal, call_id, at_ms, str(form.get("text", "")))
        except InvalidInput as exc:
            return await _notes_fragment(request, principal, call_id, exc.detail)
        return await _notes_fragment(request, principal, call_id)

    @post("/calls/{call_id:str}/notes/{note_id:str}/delete", status_code=200)
    async def delete_note(
        self, request: Request[Any, Any, Any], principal: Principal, call_id: str, note_id: str
    ) -> Template:
        """Delete a note from the panel (its author or an admin)."""
        await review.delete_note(principal, call_id, note_id)
        return await _notes_fragment(request, principal, call_id)

    @get("/settings/preferences")
    async def preferences(self, request: Request[Any, Any, Any], principal: Principal) -> Template:
        """The signed-in user's time zone and playback speed."""
        return await self._page(request, principal)

    @post("/settings/preferences", status_code=200)
    async def save_preferences(
        self, request: Request[Any, Any, Any], principal: Principal
    ) -> Response[Any]:
        """Save ``speed`` and/or ``time_zone`` ("" = the browser's). From the player: 204."""
        if principal.user_id is None:
            raise InvalidInput("Preferences belong to a signed-in user.")
        form = await request.form()
        speed = form.get("speed")
        zone = form.get("time_zone")
        try:
            await review.set_preferences(
                principal.user_id,
                speed=None if speed is None else str(speed),
                time_zone=None if zone is None else str(zone).strip(),
            )
        except DomainError as exc:
            if zone is None:
                raise
            return await self._page(request, principal, error=exc.detail, status=400)
        if zone is None:
            return Response(b"", status_code=204)
        return await self._page(request, principal, saved=True)

    async def _page(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        *,
        error: str | None = None,
        saved: bool = False,
        status: int = 200,
    ) -> Template:
        zone, speed = await review.user_preferences(principal.user_id)
        ctx = {
            "principal": principal,
            "nav": "preferences",
            "zones": review.zone_names(),
            "zone": zone or "",
            "speed": speed,
            "error": error,
            "saved": saved,
        }
        return render(
            request,
            "settings/preferences.html",
            "settings/preferences.html",
            ctx,
            status_code=status,
        )
